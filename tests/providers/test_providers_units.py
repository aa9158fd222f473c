"""Provider-layer pieces that need no server: retry-after, the rate limiter, wire rendering,
cache keys, cost estimates, the command-line flags and the offline mock provider (the model
registry and per-model request shapes: test_model_registry.py)."""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import replace
from datetime import UTC, datetime
from email.utils import formatdate

import jsonschema
import pytest

from spt import shared_tools
from spt.providers import (
    LLMClient,
    LLMRequest,
    Message,
    MissingAPIKeyError,
    RateLimiter,
    RateLimits,
    RetryPolicy,
    SystemBlock,
    Tool,
    add_provider_arguments,
    client_from_args,
    default_registry,
    estimate_cost,
    provider_for_model,
    render_wire_request,
    request_key,
)
from spt.providers.retry import parse_retry_after
from spt.utils import DataError

REVIEW_TOOL = Tool(**shared_tools.quality_review_tool())


# ----------------------------------------------------------------------------- retry


def test_retry_after_headers_are_parsed():
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "3"}) == 0.25
    assert parse_retry_after({"retry-after": "2"}) == 2.0
    assert 9 <= parse_retry_after({"retry-after": formatdate(time.time() + 10, usegmt=True)}) <= 10
    assert parse_retry_after({}) is None


def test_backoff_is_jittered_capped_and_never_shorter_than_retry_after():
    policy = RetryPolicy(max_attempts=8, base_s=1.0, cap_s=4.0)
    delays = [policy.delay(6) for _ in range(200)]
    assert max(delays) <= 4.0 and min(delays) < 1.0  # full jitter within the cap
    assert all(policy.delay(1, retry_after=3.0) >= 3.0 for _ in range(50))
    assert policy.delay(1, retry_after=100.0) <= 4.0


# ----------------------------------------------------------------------------- rate limiter


def test_limiter_bursts_one_second_then_paces_evenly():
    async def scenario():
        limiter = RateLimiter(RateLimits(rpm=1200))  # 20 per second
        start = time.monotonic()
        for _ in range(40):
            await limiter.acquire(10, 10)
        return time.monotonic() - start

    elapsed = asyncio.run(scenario())
    assert 0.85 <= elapsed <= 1.6


def test_output_tokens_are_reserved_and_refunded():
    async def scenario():
        limiter = RateLimiter(RateLimits(otpm=6000))  # 100 output tokens per second
        await limiter.acquire(1, 100)
        level_after_reserve = limiter.output_tokens.level
        limiter.settle(1, 1, reserved_output=100, actual_output=20)
        return level_after_reserve, limiter.output_tokens.level

    reserved, refunded = asyncio.run(scenario())
    assert reserved < 5 and refunded >= 80


def test_a_waiting_request_goes_as_soon_as_a_refund_arrives():
    async def scenario():
        limiter = RateLimiter(RateLimits(otpm=6000))  # 100 output tokens per second, bucket of 100
        await limiter.acquire(1, 100)  # bucket empty: the next one would wait 1 s
        start = time.monotonic()
        waiting = asyncio.create_task(limiter.acquire(1, 100))
        await asyncio.sleep(0.1)
        limiter.settle(1, 1, reserved_output=100, actual_output=0)  # the first request used nothing
        await waiting
        return time.monotonic() - start

    assert asyncio.run(scenario()) < 0.5


def test_headers_lower_the_limit_and_zero_remaining_pauses_until_reset():
    async def scenario():
        limiter = RateLimiter(RateLimits(rpm=6000))
        reset = datetime.fromtimestamp(time.time() + 0.3, UTC).isoformat().replace("+00:00", "Z")
        limiter.observe_headers(
            {
                "anthropic-ratelimit-requests-limit": "3000",
                "anthropic-ratelimit-requests-remaining": "0",
                "anthropic-ratelimit-requests-reset": reset,
            }
        )
        start = time.monotonic()
        await limiter.acquire(1, 1)
        return limiter.limits.rpm, time.monotonic() - start

    rpm, waited = asyncio.run(scenario())
    assert rpm == 3000 and 0.2 <= waited <= 1.0


def test_openai_headers_and_durations():
    limiter = RateLimiter()
    limiter.observe_headers(
        {
            "x-ratelimit-limit-requests": "500",
            "x-ratelimit-remaining-requests": "0",
            "x-ratelimit-reset-requests": "1m30s",
            "x-ratelimit-limit-tokens": "90000",
        }
    )
    assert limiter.limits == RateLimits(rpm=500, itpm=90000, otpm=None)
    assert 89 <= limiter.requests.blocked_until - time.monotonic() <= 90.5


# ----------------------------------------------------------------------------- rendering and keys


def test_anthropic_render_keeps_the_last_four_cache_breakpoints():
    request = LLMRequest(
        model="claude-haiku-4-5",
        tool=REVIEW_TOOL,
        system=tuple(SystemBlock(f"block {i}", cache=True) for i in range(3)),
        messages=(Message("user", "task", cache=True),),
        temperature=0.5,
    )
    body = render_wire_request(request, "anthropic")
    marked = [b for b in body["system"] + body["messages"][0]["content"] + body["tools"] if "cache_control" in b]
    assert len(marked) == 4 and "cache_control" not in body["tools"][0]  # the earliest one dropped
    assert body["tool_choice"] == {"type": "tool", "name": REVIEW_TOOL.name} and body["temperature"] == 0.5


def test_openai_render_asks_for_strict_json_and_sets_max_tokens_per_provider():
    request = LLMRequest(
        model="o3",
        tool=REVIEW_TOOL,
        system=(SystemBlock("a"), SystemBlock("b")),
        messages=(Message("user", "task"),),
        max_tokens=100,
        effort="high",
    )
    openai_body = render_wire_request(request, "openai")
    assert openai_body["messages"][0] == {"role": "system", "content": "a\n\nb"}
    room = default_registry().thinking_allowance["high"]  # the answer's 100 plus room for thinking
    assert openai_body["max_completion_tokens"] == 100 + room and openai_body["reasoning_effort"] == "high"
    assert openai_body["response_format"]["json_schema"]["strict"] is True and "tools" not in openai_body
    router_body = render_wire_request(
        replace(request, model="qwen/qwen3-32b", effort=None, thinking_budget=2000), "openrouter"
    )
    assert router_body["max_tokens"] == 2100 and router_body["reasoning"] == {"max_tokens": 2000}
    assert router_body["tool_choice"]["function"]["name"] == REVIEW_TOOL.name  # its registry output_mode: tool
    assert router_body["provider"] == {"require_parameters": True}


def test_request_key_covers_the_answer_and_ignores_labels_and_breakpoints():
    base = LLMRequest(model="m", messages=(Message("user", "x"),))
    key = request_key(base, "anthropic", "http://h")
    assert key == request_key(
        LLMRequest(model="m", messages=(Message("user", "x", cache=True),), label="l"), "anthropic", "http://h/"
    )
    for other in (
        LLMRequest(model="m", messages=(Message("user", "x"),), sample_index=1),
        LLMRequest(model="m", messages=(Message("user", "x"),), temperature=0.1),
        LLMRequest(model="m2", messages=(Message("user", "x"),)),
    ):
        assert request_key(other, "anthropic", "http://h") != key
    assert request_key(base, "openai", "http://h") != key and request_key(base, "anthropic", "http://o") != key


def test_estimate_cost_prices_caching_and_batches():
    shared = SystemBlock("s" * 40_000, cache=True)  # 10k tokens
    requests = [
        LLMRequest(model="claude-sonnet-5-5", system=(shared,), messages=(Message("user", f"t{i}"),), max_tokens=100)
        for i in range(10)
    ]
    estimate = estimate_cost(requests, "anthropic")
    room = default_registry().thinking_allowance["high"]  # Sonnet 5.5 thinks at its default effort, high
    assert estimate["requests"] == 10 and estimate["output_tokens"] == 10 * (100 + room)
    assert estimate["input_tokens"] == pytest.approx(100_000, rel=0.01)
    requests = [replace(request, thinking="lowest") for request in requests]  # thinking between tools only
    estimate = estimate_cost(requests, "anthropic")
    assert estimate["output_tokens"] == 1000
    assert estimate["cost_usd_with_caching"] < 0.3 * estimate["cost_usd"]
    assert estimate["cost_usd_batch"] == pytest.approx(estimate["cost_usd"] / 2)
    assert estimate["priced"] and estimate_cost(requests, "mock")["cost_usd"] == 0
    short = [
        LLMRequest(
            model="claude-haiku-4-5",
            system=(SystemBlock("s" * 8000, cache=True),),  # 2k < 4,096
            messages=(Message("user", f"t{i}"),),
            max_tokens=100,
        )
        for i in range(10)
    ]
    short_estimate = estimate_cost(short, "anthropic")
    assert short_estimate["cached_prefix_tokens"] == 0  # below the model's minimum: never cached
    assert short_estimate["cost_usd_with_caching"] == pytest.approx(short_estimate["cost_usd"])


# ----------------------------------------------------------------------------- command line


@pytest.mark.parametrize(
    "model, provider",
    [
        ("claude-opus-5-5", "anthropic"),
        ("gpt-4.1", "openai"),
        ("o3-mini", "openai"),
        ("qwen/qwen3-32b", "openrouter"),
        ("deepseek/deepseek-r1", "openrouter"),
    ],
)
def test_provider_from_model_name(model, provider):
    assert provider_for_model(model) == provider


def test_unknown_model_needs_a_provider():
    with pytest.raises(DataError, match="--provider"):
        provider_for_model("llama")


def parse(*argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="claude-sonnet-4-6")
    add_provider_arguments(parser)
    return parser.parse_args(list(argv))


def test_missing_api_key_names_the_variable_and_the_mock(monkeypatch, tmp_path):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(MissingAPIKeyError) as raised:
        client_from_args(parse())
    assert "ANTHROPIC_API_KEY" in str(raised.value) and "--provider mock" in str(raised.value)


def test_flags_reach_the_client(monkeypatch, tmp_path):
    monkeypatch.setenv("OPENROUTER_API_KEY", "fake-openrouter-key")
    monkeypatch.setenv("OPENROUTER_BASE_URL", "http://127.0.0.1:9/v1")
    client = client_from_args(
        parse(
            "--model",
            "qwen/qwen3-32b",
            "--rpm",
            "120",
            "--itpm",
            "0",
            "--max_cost",
            "2.5",
            "--concurrency",
            "7",
            "--cache_dir",
            str(tmp_path),
        )
    )
    assert (client.provider, client.base_url, client.budget.max_cost, client.concurrency) == (
        "openrouter",
        "http://127.0.0.1:9/v1",
        2.5,
        7,
    )
    assert client.limiter.limits.rpm == 120 and client.limiter.limits.itpm is None


# ----------------------------------------------------------------------------- mock provider


def test_mock_provider_is_deterministic_schema_valid_and_varied(tmp_path):
    tool = Tool(**shared_tools.stage_1_tool("sycophancy", 3))

    async def answers(cache_dir):
        async with LLMClient("mock", "mock-model", cache_dir=cache_dir) as client:
            requests = [
                LLMRequest(model="mock-model", messages=(Message("user", "go"),), tool=tool, sample_index=i)
                for i in range(2)
            ]
            text = LLMRequest(model="mock-model", messages=(Message("user", "hello"),))
            return [await client.complete(r) for r in requests + [text]], client

    first, client = asyncio.run(answers(tmp_path / "a"))
    second, _ = asyncio.run(answers(tmp_path / "b"))
    for response in first[:2]:
        jsonschema.validate(response.tool_input, tool.input_schema)
    assert first[0].tool_input != first[1].tool_input
    assert [r.tool_input for r in first] == [r.tool_input for r in second]
    assert first[2].text and first[2].text == second[2].text
    assert client.cost_usd == 0 and not any(r.from_cache for r in first)


def test_self_hosted_is_explicit_with_the_base_url_guess_as_default(monkeypatch, tmp_path):
    monkeypatch.setenv("OPENAI_API_KEY", "fake-openai-key")
    request = LLMRequest(model="corp-model-7", messages=(Message("user", "x"),), temperature=0.7)
    proxy = "https://llm-proxy.example.com/v1"
    guessed = render_wire_request(request, "openai", proxy)  # auto: not api.openai.com
    assert guessed["temperature"] == 0.7
    openai_behind_proxy = render_wire_request(request, "openai", proxy, self_hosted="no")
    assert "temperature" not in openai_behind_proxy and "max_completion_tokens" in openai_behind_proxy
    own = render_wire_request(request, "openai", "https://api.openai.com/v1", self_hosted="yes")
    assert own["temperature"] == 0.7
    args = parse(
        "--model",
        "corp-model-7",
        "--provider",
        "openai",
        "--base_url",
        proxy,
        "--self_hosted",
        "no",
        "--cache_dir",
        str(tmp_path),
    )
    client = client_from_args(args)
    assert client.adapter.self_hosted is False and client.info.entry == "defaults.openai"
    assert (
        client_from_args(
            parse("--model", "corp-model-7", "--provider", "openai", "--base_url", proxy, "--cache_dir", str(tmp_path))
        ).info.entry
        == "defaults.openai-compatible"
    )
