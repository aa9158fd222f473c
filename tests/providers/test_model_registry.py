"""The model registry (config/models.json) and the request shapes it gives each model generation:
lookups, prices, the checks that refuse an impossible flag before any call, the provider-safe
schema subset, and the rendered bodies of a 2025 model, a 5.5 model, an OpenAI reasoning model
and an OpenRouter model."""

from __future__ import annotations

import argparse
import json
import logging
from datetime import date

import jsonschema
import pytest

from spt import shared_tools
from spt.providers import (
    LLMRequest,
    Message,
    ModelRegistry,
    SystemBlock,
    Tool,
    Usage,
    check_settings,
    default_registry,
    render_wire_request,
)
from spt.providers.models import MODELS_FILE
from spt.providers.schema_subset import DROPPED_KEYWORDS, provider_schema
from spt.utils import DataError

STAGE_1_TOOL = Tool(**shared_tools.stage_1_tool("sycophancy", 10))


def write_registry(tmp_path, models, **extra):
    defaults = json.loads(MODELS_FILE.read_text())["defaults"]
    path = tmp_path / "models.json"
    path.write_text(json.dumps({"defaults": defaults, "models": models, **extra}))
    return path


def request(model, **fields):
    return LLMRequest(
        model=model,
        tool=STAGE_1_TOOL,
        system=(SystemBlock("base", cache=True),),
        messages=(Message("user", "write"),),
        max_tokens=8000,
        **fields,
    )


# ----------------------------------------------------------------------------- lookups and prices


def test_exact_then_longest_pattern_then_provider_default(tmp_path, caplog):
    path = write_registry(
        tmp_path,
        {
            "claude-x*": {"provider": "anthropic", "context_tokens": 1},
            "claude-x-2*": {"provider": "anthropic", "context_tokens": 2},
            "claude-x-2-exact": {"provider": "anthropic", "context_tokens": 3},
        },
    )
    registry = ModelRegistry(path)
    assert registry.lookup("claude-x-2-20270101").context_tokens == 2
    assert registry.lookup("claude-x-9").context_tokens == 1
    assert registry.lookup("claude-x-2-exact").context_tokens == 3
    with caplog.at_level(logging.WARNING):
        unknown = registry.lookup("claude-unknown", "anthropic")
        registry.lookup("claude-unknown", "anthropic")
    assert not unknown.known and unknown.prices is None and unknown.forced_tool is False
    assert caplog.text.count("claude-unknown") == 1
    assert registry.lookup("gpt-own", "openai", self_hosted=True).entry == "defaults.openai-compatible"


def test_project_registry_prices_todays_models_as_published():
    registry = default_registry()
    published = {
        "claude-fable-5-1": (10, 50),
        "claude-opus-5-5": (4, 20),
        "claude-sonnet-5-5": (2, 10),
        "claude-haiku-5-5": (0.1, 0.5),
        "claude-opus-4-8": (5, 25),
        "claude-opus-4-6": (5, 25),
    }
    for model, (input_price, output_price) in published.items():
        prices = registry.lookup(model).prices
        assert (prices.input, prices.output) == (input_price, output_price), model
        assert prices.cache_write_5m == pytest.approx(1.25 * input_price)
        assert prices.cache_write_1h == pytest.approx(2 * input_price)
    assert registry.lookup("claude-sonnet-5-5").prices.cache_read == 0.1  # cut on 2026-10-07
    assert registry.lookup("claude-haiku-4-5-20251001").entry == "claude-haiku-4-5*"


def test_cost_counts_every_token_kind_and_the_batch_discount():
    info = default_registry().lookup("claude-opus-5-5")
    usage = Usage(
        input_tokens=1_000_000,
        output_tokens=1_000_000,
        cache_creation_input_tokens=1_000_000,
        cache_read_input_tokens=1_000_000,
    )
    assert info.cost(usage) == pytest.approx(4 + 20 + 5 + 0.2)
    assert info.cost(usage, batch=True) == pytest.approx((4 + 20 + 5 + 0.2) / 2)


def test_retired_models_and_the_current_list():
    registry = default_registry()
    assert registry.lookup("claude-opus-4-1").retired(date(2026, 11, 30))
    assert registry.lookup("claude-sonnet-4-5-20250929").retired(date(2026, 11, 30))
    assert not registry.lookup("claude-sonnet-4-5").retired(date(2026, 11, 29))
    current = registry.current_models("anthropic", date(2026, 11, 30))
    assert "claude-opus-5-5" in current and "claude-opus-4-0" not in current


def test_a_bad_entry_is_named(tmp_path):
    with pytest.raises(DataError, match=r"models\['m'\]: unknown field 'price'"):
        ModelRegistry(write_registry(tmp_path, {"m": {"provider": "anthropic", "price": 1}}))
    with pytest.raises(DataError, match=r"models\['m'\]: thinking must be one of"):
        ModelRegistry(write_registry(tmp_path, {"m": {"provider": "anthropic", "thinking": "always"}}))
    with pytest.raises(DataError, match="prices must be null or have exactly"):
        ModelRegistry(write_registry(tmp_path, {"m": {"provider": "anthropic", "prices": {"input": 1}}}))


# ----------------------------------------------------------------------------- flags checked before any call


def test_flags_a_model_cannot_honour_are_errors_before_any_call():
    registry = default_registry()
    opus_5_5, haiku_4_5 = registry.lookup("claude-opus-5-5"), registry.lookup("claude-haiku-4-5")
    check_settings(opus_5_5, max_tokens=16000, effort="low")
    check_settings(haiku_4_5, max_tokens=16000, thinking_budget=2048, sampling={"temperature": 0.7})
    with pytest.raises(DataError, match="--thinking_budget: claude-opus-5-5 .* does not take a thinking budget"):
        check_settings(opus_5_5, max_tokens=16000, thinking_budget=2048)
    with pytest.raises(DataError, match="--effort: claude-haiku-4-5 .* takes no effort setting"):
        check_settings(haiku_4_5, max_tokens=16000, effort="low")
    with pytest.raises(DataError, match="--temperature: claude-opus-5-5 .* refuses it"):
        check_settings(opus_5_5, max_tokens=16000, sampling={"temperature": 0.7})
    with pytest.raises(DataError, match="at least 1024 and below the 64000 output tokens"):
        check_settings(haiku_4_5, max_tokens=16000, thinking_budget=512)
    check_settings(haiku_4_5, max_tokens=2000, thinking_budget=4000)  # max_tokens is the answer's; thinking on top
    with pytest.raises(DataError, match="--top_p: claude-haiku-4-5 .* takes temperature or top_p, not both"):
        check_settings(haiku_4_5, max_tokens=2000, sampling={"temperature": 0.7, "top_p": 0.9})
    with pytest.raises(DataError, match="served only on OpenAI's Responses API"):
        check_settings(registry.lookup("gpt-5.5-pro"), max_tokens=1000)
    with pytest.raises(DataError, match="accepts low, medium, high, max"):
        check_settings(registry.lookup("claude-opus-4-6"), max_tokens=16000, effort="xhigh")
    with pytest.raises(DataError, match="--top_k: gpt-4.1"):
        check_settings(registry.lookup("gpt-4.1"), max_tokens=1000, sampling={"top_k": 40})


# ----------------------------------------------------------------------------- the schema subset


def test_provider_schema_closes_objects_requires_everything_and_drops_bounds():
    full = STAGE_1_TOOL.input_schema
    subset = provider_schema(full)

    def walk(node):
        if isinstance(node, dict):
            assert not DROPPED_KEYWORDS & set(node)
            if node.get("type") == "object":
                assert node["additionalProperties"] is False
                assert set(node["required"]) == set(node["properties"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(subset)
    assert full["properties"]["data"]["maxItems"] == 10  # the full schema is unchanged
    assert provider_schema(shared_tools.stage_1_tool("sycophancy", 3)["input_schema"]) == subset  # count-free
    item = subset["properties"]["data"]["items"]
    assert item["properties"]["metadata"]["properties"]["difficulty"]["enum"] == list(shared_tools.DIFFICULTIES)
    focus = item["properties"]["metadata"]["properties"]["intended_review_focus"]
    assert all(alternative["pattern"].startswith("^(") for alternative in focus["anyOf"])  # patterns are kept
    jsonschema.Draft202012Validator.check_schema(subset)


# ----------------------------------------------------------------------------- one body per model generation


def test_2025_model_gets_a_forced_tool_and_budget_thinking_goes_with_tool_choice_auto():
    body = render_wire_request(request("claude-haiku-4-5", temperature=0.3), "anthropic")
    assert body["tool_choice"] == {"type": "tool", "name": STAGE_1_TOOL.name}
    assert "minItems" not in json.dumps(body["tools"][0]["input_schema"])
    assert body["temperature"] == 0.3 and "output_config" not in body and "thinking" not in body
    thinking = render_wire_request(request("claude-haiku-4-5", thinking_budget=2048), "anthropic")
    assert thinking["tool_choice"] == {"type": "auto"}
    assert thinking["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert STAGE_1_TOOL.name in thinking["system"][-1]["text"]


def test_5_5_model_gets_structured_output_and_effort_only():
    body = render_wire_request(request("claude-opus-5-5", effort="medium"), "anthropic")
    assert "tools" not in body and "tool_choice" not in body and "thinking" not in body
    assert body["output_config"]["effort"] == "medium"
    assert body["output_config"]["format"] == {
        "type": "json_schema",
        "schema": provider_schema(STAGE_1_TOOL.input_schema),
    }
    assert not {"temperature", "top_p", "top_k"} & set(body)
    off = render_wire_request(request("claude-sonnet-5-5", reasoning=False), "anthropic")
    assert off["thinking"] == {"type": "between_tools"}
    assert "thinking" not in render_wire_request(request("claude-opus-5-5", reasoning=False), "anthropic")
    adaptive = render_wire_request(request("claude-opus-4-7", effort="high"), "anthropic")
    assert adaptive["thinking"] == {"type": "adaptive"} and adaptive["output_config"]["effort"] == "high"


def test_openai_reasoning_model_gets_max_completion_tokens_and_no_sampling():
    allowance = default_registry().thinking_allowance
    body = render_wire_request(request("o4-mini", effort="low", temperature=0.2, top_k=5), "openai")
    assert body["max_completion_tokens"] == 8000 + allowance["low"] and "max_tokens" not in body
    assert body["reasoning_effort"] == "low" and not {"temperature", "top_k"} & set(body)
    plain = render_wire_request(request("gpt-4.1", temperature=0.2), "openai")
    assert plain["temperature"] == 0.2 and "reasoning_effort" not in plain


def test_openrouter_sends_reasoning_only_when_asked_and_requires_its_parameters():
    quiet = render_wire_request(request("qwen/qwen3-32b", temperature=0.6), "openrouter")
    assert "reasoning" not in quiet and quiet["provider"] == {"require_parameters": True}
    assert quiet["temperature"] == 0.6
    assert render_wire_request(request("qwen/qwen3-32b", reasoning=False), "openrouter")["reasoning"] == {
        "enabled": False
    }
    assert "reasoning" not in render_wire_request(request("deepseek/deepseek-r1", reasoning=False), "openrouter")


# ----------------------------------------------------------------------------- thinking choices, today's OpenAI models


def test_the_lowest_thinking_each_model_allows_and_its_room():
    allowance = default_registry().thinking_allowance
    lowest = {
        model: render_wire_request(request(model, thinking="lowest"), provider)
        for model, provider in (
            ("claude-sonnet-5-5", "anthropic"),
            ("claude-opus-5-5", "anthropic"),
            ("claude-haiku-4-5", "anthropic"),
            ("gpt-6.2-sol", "openai"),
            ("gpt-5.4", "openai"),
            ("qwen/qwen3-32b", "openrouter"),
        )
    }
    assert lowest["claude-sonnet-5-5"]["thinking"] == {"type": "between_tools"}  # switched off
    assert lowest["claude-sonnet-5-5"]["max_tokens"] == 8000  # no room needed
    assert lowest["claude-opus-5-5"]["output_config"]["effort"] == "low"  # always thinks: lowest effort
    assert lowest["claude-opus-5-5"]["max_tokens"] == 8000 + allowance["low"]
    assert (
        lowest["claude-haiku-4-5"]["thinking"] == {"type": "disabled"}
        and lowest["claude-haiku-4-5"]["max_tokens"] == 8000
    )
    assert lowest["gpt-6.2-sol"]["reasoning_effort"] == "low"  # "none" is refused
    assert lowest["gpt-6.2-sol"]["max_completion_tokens"] == 8000 + allowance["low"]
    assert lowest["gpt-5.4"]["reasoning_effort"] == "none" and lowest["gpt-5.4"]["max_completion_tokens"] == 8000
    assert lowest["qwen/qwen3-32b"]["reasoning"] == {"enabled": False}
    default = render_wire_request(request("claude-opus-5-5"), "anthropic")  # its own default effort: medium
    assert "output_config" in default and default["max_tokens"] == 8000 + allowance["medium"]
    capped = render_wire_request(request("claude-haiku-4-5", thinking_budget=60_000), "anthropic")
    assert capped["max_tokens"] == 64_000  # never above the model's limit
    assert (
        render_wire_request(
            render_request := request("claude-opus-5-5", effort="high", thinking="lowest"), "anthropic"
        )["output_config"]["effort"]
        == "high"
    )  # --effort wins over the stage
    assert render_request.thinking == "lowest"


def test_unknown_openai_ids_get_the_reasoning_safe_default_and_pro_is_its_own_entry():
    registry = default_registry()
    unknown = registry.lookup("gpt-9-test", "openai")
    assert unknown.entry == "defaults.openai" and unknown.sampling_params == () and unknown.thinking != "none"
    body = render_wire_request(request("gpt-9-test", temperature=0.7, effort="low"), "openai")
    assert "temperature" not in body and body["reasoning_effort"] == "low" and "max_completion_tokens" in body
    assert registry.lookup("gpt-5.5-pro").entry == "gpt-5.5-pro*" and registry.lookup("gpt-5.5").entry == "gpt-5.5*"
    assert registry.lookup("gpt-5.5-pro").prices.input == 6 * registry.lookup("gpt-5.5").prices.input
    retired = {model: registry.lookup(model).retirement for model in ("o4-mini", "o3", "gpt-5", "gpt-4o", "gpt-4.1")}
    assert retired == {
        "o4-mini": "2026-10-23",
        "o3": "2026-12-11",
        "gpt-5": "2026-12-11",
        "gpt-4o": "2027-01-14",
        "gpt-4.1": "2027-01-14",
    }
    assert registry.lookup("o4-mini").retired(date(2026, 12, 1)) and not registry.lookup("gpt-6.2-sol").retired()


def test_refused_sampling_is_dropped_with_one_warning_or_refused(caplog):
    from spt.providers import check_flags

    args = argparse.Namespace(temperature=0.7, top_p=None, top_k=None, provider="openai", base_url=None)
    with pytest.raises(DataError, match="--temperature: gpt-6.2-sol .* refuses it"):
        check_flags(args, "gpt-6.2-sol")
    with caplog.at_level(logging.WARNING):
        check_flags(args, "gpt-6.2-sol", drop_refused_sampling=True)
    assert args.temperature is None and caplog.text.count("--temperature 0.7 is not sent") == 1


def test_haiku_4_5_gets_one_of_temperature_and_top_p_and_5_x_shows_thinking_when_asked():
    both = render_wire_request(request("claude-haiku-4-5", temperature=0.7, top_p=0.9), "anthropic")
    assert both["temperature"] == 0.7 and "top_p" not in both
    assert render_wire_request(request("claude-haiku-4-5", top_p=0.9), "anthropic")["top_p"] == 0.9
    shown = render_wire_request(request("claude-sonnet-5-5", reasoning=True, show_thinking=True), "anthropic")
    assert shown["thinking"] == {"type": "adaptive", "display": "summarized"}
    assert "thinking" not in render_wire_request(request("claude-sonnet-5-5"), "anthropic")
    assert "display" not in json.dumps(
        render_wire_request(request("claude-haiku-4-5", reasoning=True, show_thinking=True), "anthropic")
    )
