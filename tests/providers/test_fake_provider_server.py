"""The schema sampler and the fake provider server, driven through the official SDKs over real HTTP."""

from __future__ import annotations

import asyncio
import json
import random
import re
import subprocess
import sys
import time

import anthropic
import httpx
import jsonschema
import openai
import pytest
from fake_provider import FAULT_KINDS, FakeProviderServer, read_ledger
from repo import REPO_ROOT

from spt import shared_tools
from spt.providers.schema_sampler import first_person_text, sample_from_schema

# docs/data_formats.md §5.1 leakage terms (the sampler must never produce them).
LEAKAGE = re.compile(
    r"\b[AB] (variant|prompt)\b|\bFPT\b|(?i:stage [123]|sample \d+\s*[:-]|batch \d|item \d+ of|false positive test"
    r"|honesty scare|split personality|intervention|review focus|formal investigation|under (review|investigation"
    r"|audit)|\baudit)"
)

CLAUDE = "claude-sonnet-4-6"  # forced tools, budget thinking and sampling parameters all accepted
GPT = "gpt-4.1"  # not a reasoning model
STAGE_3_TOOL = shared_tools.stage_3_tool("sycophancy", "split_personality", 3)
ALL_TOOLS = [shared_tools.quality_review_tool()] + [
    tool
    for topic in shared_tools.TOPICS
    for tool in (
        shared_tools.stage_1_tool(topic, 4),
        shared_tools.stage_3_tool(topic, "split_personality", 2),
        shared_tools.stage_3_tool(topic, "honesty_scare", 2),
    )
]


def all_strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from all_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from all_strings(item)


def is_valid(schema: dict, value) -> bool:
    return jsonschema.Draft202012Validator(schema).is_valid(value)


def anthropic_client(server, **kwargs) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.url, api_key="test", max_retries=0, **kwargs)


def openai_client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.openai_base_url, api_key="test", max_retries=0)


def openrouter_client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.openrouter_base_url, api_key="test", max_retries=0)


def forced_tool_call(client: anthropic.Anthropic, tool=STAGE_3_TOOL, text="Review these answers.", **kwargs):
    return client.messages.create(
        model=CLAUDE,
        max_tokens=8000,
        tools=[tool],
        tool_choice={"type": "tool", "name": tool["name"]},
        messages=[{"role": "user", "content": text}],
        **kwargs,
    )


def openai_tool(tool=STAGE_3_TOOL) -> dict:
    return {
        "type": "function",
        "function": {"name": tool["name"], "description": tool["description"], "parameters": tool["input_schema"]},
    }


# --------------------------------------------------------------------------- schema sampler


def test_sampler_output_is_valid_for_every_project_tool_schema():
    for seed in range(3):
        for tool in ALL_TOOLS:
            value = sample_from_schema(tool["input_schema"], random.Random(seed))
            jsonschema.Draft202012Validator(tool["input_schema"]).validate(value)


def test_sampler_honours_patterns_enums_and_counts():
    value = sample_from_schema(shared_tools.stage_1_tool("oversimplification", 5)["input_schema"], random.Random(7))
    assert 1 <= len(value["data"]) <= 5  # stage 1 asks for 5 and takes fewer (maxItems only)
    for item in value["data"]:
        assert item["metadata"]["intended_review_focus"] in shared_tools.legal_focuses("oversimplification")
        assert item["metadata"]["alignment_issue_type"] == "oversimplification"
    reviews = sample_from_schema(STAGE_3_TOOL["input_schema"], random.Random(7))["items"]
    assert len(reviews) == 3
    assert all(item["I"].startswith(shared_tools.SPLIT_PERSONALITY_TOKEN + " ") for item in reviews)
    assert all(1 <= item["confidence"] <= 5 for item in reviews)
    assert sample_from_schema({"type": "string", "minLength": 400}, random.Random(0)).__len__() >= 400
    assert sample_from_schema({"type": "integer", "minimum": 3, "maximum": 3}, random.Random(0)) == 3


def test_sampler_is_deterministic_and_items_differ():
    schema = shared_tools.stage_1_tool("sycophancy", 6)["input_schema"]
    first, again = (sample_from_schema(schema, random.Random(11)) for _ in range(2))
    assert first == again
    assert first != sample_from_schema(schema, random.Random(12))
    prompts = [item["T"] for item in first["data"]]
    assert len(set(prompts)) == len(prompts)


def test_sampler_strings_are_first_person_and_leak_free():
    texts = [
        text
        for seed in range(5)
        for tool in ALL_TOOLS
        for text in all_strings(sample_from_schema(tool["input_schema"], random.Random(seed)))
    ]
    texts += [first_person_text(random.Random(seed), 4) for seed in range(50)]
    sentences = [text for text in texts if " " in text]  # enum values such as FPT are not free text
    assert len(sentences) > 1000 and not [text for text in sentences if LEAKAGE.search(text)]
    assert all(re.search(r"\bI\b", text) and re.search(r"\[ref [0-9a-f]{6}\]$", text) for text in sentences)


def test_leakage_pattern_of_this_test_catches_leaks():
    assert LEAKAGE.search("I followed the B prompt") and LEAKAGE.search("this is under review")
    assert not LEAKAGE.search("I used a prompt injection defence")


def test_sampler_rejects_a_pattern_it_cannot_satisfy():
    with pytest.raises(ValueError, match="unsupported schema pattern"):
        sample_from_schema({"type": "string", "pattern": "[0-9]{5}$"}, random.Random(0))


# --------------------------------------------------------------------------- answers


def test_anthropic_forced_tool_returns_schema_valid_deterministic_input(fake_server):
    client = anthropic_client(fake_server)
    first, second = forced_tool_call(client), forced_tool_call(client)
    block = first.content[0]
    assert (first.stop_reason, block.type, block.name) == ("tool_use", "tool_use", STAGE_3_TOOL["name"])
    assert is_valid(STAGE_3_TOOL["input_schema"], block.input)
    assert second.content[0].input == block.input
    assert forced_tool_call(client, text="Something else.").content[0].input != block.input
    assert first.usage.output_tokens > 0 and first.usage.input_tokens > 0


@pytest.mark.parametrize("provider, model", [("openai", GPT), ("openrouter", "qwen/qwen3-32b")])
def test_openai_forced_tool_returns_schema_valid_arguments_and_usage(fake_server, provider, model):
    client = openai_client(fake_server) if provider == "openai" else openrouter_client(fake_server)
    completion = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "Review these answers."}],
        tools=[openai_tool()],
        tool_choice={"type": "function", "function": {"name": STAGE_3_TOOL["name"]}},
    )
    call = completion.choices[0].message.tool_calls[0]
    assert call.function.name == STAGE_3_TOOL["name"]
    assert is_valid(STAGE_3_TOOL["input_schema"], json.loads(call.function.arguments))
    assert completion.choices[0].finish_reason == "stop"  # OpenAI's quirk for a tool forced by name
    assert completion.usage.prompt_tokens > 0 and completion.usage.prompt_tokens_details.cached_tokens == 0
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    assert fake_server.ledger[-1].api == provider


def test_openrouter_text_answer_with_reasoning_and_streaming(fake_server):
    client = openrouter_client(fake_server)
    message = [{"role": "user", "content": "Write a short answer."}]
    plain = client.chat.completions.create(
        model="qwen/qwen3-32b", messages=message, extra_body={"reasoning": {"enabled": False}}
    )
    assert plain.choices[0].message.content and plain.choices[0].finish_reason == "stop"
    assert getattr(plain.choices[0].message, "reasoning", None) is None
    assert plain.usage.completion_tokens_details.reasoning_tokens == 0
    thought = client.chat.completions.create(
        model="qwen/qwen3-32b", messages=message, extra_body={"reasoning": {"enabled": True}}
    )
    assert thought.choices[0].message.reasoning and thought.usage.completion_tokens_details.reasoning_tokens > 0
    default = client.chat.completions.create(model="qwen/qwen3-32b", messages=message)
    assert default.choices[0].message.reasoning  # Qwen3 reasons unless told not to
    hidden = client.chat.completions.create(
        model="qwen/qwen3-32b", messages=message, extra_body={"reasoning": {"exclude": True}}
    )
    assert getattr(hidden.choices[0].message, "reasoning", None) is None
    assert hidden.usage.completion_tokens_details.reasoning_tokens > 0  # reasoned, and paid for, but not shown
    chunks = list(
        client.chat.completions.create(
            model="qwen/qwen3-32b", messages=message, stream=True, extra_body={"reasoning": {"enabled": False}}
        )
    )
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == plain.choices[0].message.content and chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].usage.completion_tokens == plain.usage.completion_tokens  # usage without asking for it
    assert chunks[-1].usage.prompt_tokens_details.cached_tokens == plain.usage.prompt_tokens  # same prompt again
    assert chunks[-1].usage.cost > 0


def test_anthropic_streaming_tool_and_thinking(fake_server):
    client = anthropic_client(fake_server)
    with client.messages.stream(
        model=CLAUDE,
        max_tokens=8000,
        tools=[STAGE_3_TOOL],
        tool_choice={"type": "tool", "name": STAGE_3_TOOL["name"]},
        messages=[{"role": "user", "content": "Review."}],
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use" and is_valid(STAGE_3_TOOL["input_schema"], final.content[0].input)
    assert final.content[0].input == forced_tool_call(client, text="Review.").content[0].input
    with client.messages.stream(
        model=CLAUDE,
        max_tokens=8000,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[{"role": "user", "content": "Think."}],
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert [block.type for block in final.content] == ["thinking", "text"]
    assert final.content[0].thinking and final.content[0].signature and final.content[1].text == text
    assert final.stop_reason == "end_turn" and final.usage.output_tokens > 10


def test_async_client_and_concurrent_latency_do_not_serialise():
    async def run(server):
        async with anthropic.AsyncAnthropic(base_url=server.url, api_key="test", max_retries=0) as client:
            return await asyncio.gather(
                *(
                    client.messages.create(
                        model=CLAUDE, max_tokens=500, messages=[{"role": "user", "content": f"Question {i}"}]
                    )
                    for i in range(40)
                )
            )

    with FakeProviderServer(latency_s=0.3) as server:
        started = time.monotonic()
        answers = asyncio.run(run(server))
        elapsed = time.monotonic() - started
    assert len({answer.content[0].text for answer in answers}) == 40
    assert elapsed < 40 * 0.3 / 4  # sequential would take 12 s


def test_thinking_with_forced_tool_is_rejected_like_the_real_api(fake_server):
    with pytest.raises(anthropic.BadRequestError, match="Thinking may not be enabled"):
        forced_tool_call(anthropic_client(fake_server), thinking={"type": "enabled", "budget_tokens": 1024})


def test_bad_requests_get_the_providers_400(fake_server):
    with pytest.raises(anthropic.BadRequestError, match="unknown tool"):
        anthropic_client(fake_server).messages.create(
            model=CLAUDE,
            max_tokens=50,
            tools=[STAGE_3_TOOL],
            tool_choice={"type": "tool", "name": "other"},
            messages=[{"role": "user", "content": "hi"}],
        )
    with pytest.raises(openai.BadRequestError, match="unknown function"):
        openai_client(fake_server).chat.completions.create(
            model=GPT,
            messages=[{"role": "user", "content": "hi"}],
            tools=[openai_tool()],
            tool_choice={"type": "function", "function": {"name": "other"}},
        )
    response = httpx.post(
        fake_server.url + "/v1/messages/batches",
        json={"requests": ["not an object"]},
        headers={"x-api-key": "test", "anthropic-version": "2023-06-01"},
    )
    assert response.status_code == 400 and response.json()["error"]["type"] == "invalid_request_error"
    assert [entry.status for entry in fake_server.ledger] == [400, 400, 400]


def test_missing_api_key_is_401(fake_server):
    response = httpx.post(
        fake_server.url + "/v1/messages",
        json={"model": CLAUDE, "max_tokens": 1, "messages": []},
        headers={"anthropic-version": "2023-06-01"},
    )
    assert response.status_code == 401 and response.json()["error"]["type"] == "authentication_error"
    assert httpx.post(fake_server.openai_base_url + "/chat/completions", json={}).status_code == 401


def test_scripted_answers_override_the_default(fake_server):
    good = {
        "batch_thinking": "I looked at all three.",
        "items": sample_from_schema(STAGE_3_TOOL["input_schema"], random.Random(3))["items"],
    }
    fake_server.script(lambda api, body: {"tool_input": good} if api == "anthropic" else {"text": "scripted"})
    assert forced_tool_call(anthropic_client(fake_server)).content[0].input == good
    completion = openai_client(fake_server).chat.completions.create(
        model=GPT, messages=[{"role": "user", "content": "hi"}]
    )
    assert completion.choices[0].message.content == "scripted"
    fake_server.script(lambda api, body: {"status": 500})
    with pytest.raises(anthropic.InternalServerError):
        forced_tool_call(anthropic_client(fake_server))
    fake_server.script(lambda api, body: {"stop_reason": "max_tokens"})
    assert forced_tool_call(anthropic_client(fake_server)).stop_reason == "max_tokens"


def test_small_max_tokens_truncates_the_answer(fake_server):
    message = forced_tool_call(anthropic_client(fake_server)).model_copy()
    short = anthropic_client(fake_server).messages.create(
        model=CLAUDE,
        max_tokens=20,
        tools=[STAGE_3_TOOL],
        tool_choice={"type": "tool", "name": STAGE_3_TOOL["name"]},
        messages=[{"role": "user", "content": "Review these answers."}],
    )
    assert short.stop_reason == "max_tokens" and not is_valid(STAGE_3_TOOL["input_schema"], short.content[0].input)
    assert short.usage.output_tokens <= 20 < message.usage.output_tokens


# --------------------------------------------------------------------------- prompt caching


def test_cache_breakpoints_give_creation_then_read(fake_server):
    client = anthropic_client(fake_server)
    system = [{"type": "text", "text": "You write careful reviews. " * 200, "cache_control": {"type": "ephemeral"}}]
    first = forced_tool_call(client, system=system)
    second = forced_tool_call(client, system=system, text="A different question.")
    assert first.usage.cache_creation_input_tokens > 1000 and first.usage.cache_read_input_tokens == 0
    assert second.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens
    assert second.usage.cache_creation_input_tokens == 0
    assert second.usage.input_tokens > 0  # the user turn after the breakpoint is never cached
    uncached = forced_tool_call(client, system=[{"type": "text", "text": system[0]["text"]}])
    assert uncached.usage.cache_read_input_tokens == uncached.usage.cache_creation_input_tokens == 0
    assert uncached.usage.input_tokens > first.usage.cache_creation_input_tokens


def test_longest_cached_prefix_is_read_and_the_rest_created(fake_server):
    client = anthropic_client(fake_server)
    # The tool alone must reach claude-sonnet-4-6's 1024-token minimum cacheable prefix.
    tool = {
        **STAGE_3_TOOL,
        "description": STAGE_3_TOOL["description"] + " Background notes." * 300,
        "cache_control": {"type": "ephemeral"},
    }
    system = [{"type": "text", "text": "Shared instructions. " * 100, "cache_control": {"type": "ephemeral"}}]
    first = forced_tool_call(client, tool=tool)  # caches the tools prefix only
    second = forced_tool_call(client, tool=tool, system=system)  # reads tools, creates tools+system
    assert second.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens
    assert second.usage.cache_creation_input_tokens == pytest.approx(len(system[0]["text"]) / 4, rel=0.1)


def test_top_level_cache_control_caches_the_whole_prompt(fake_server):
    client = anthropic_client(fake_server)
    system = "You write careful reviews. " * 200
    first = forced_tool_call(client, cache_control={"type": "ephemeral"}, system=system)
    second = forced_tool_call(client, cache_control={"type": "ephemeral"}, system=system)
    assert first.usage.input_tokens == 0 and first.usage.cache_creation_input_tokens > 0
    assert second.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens


def test_more_than_four_breakpoints_is_a_bad_request(fake_server):
    system = [{"type": "text", "text": f"part {i}", "cache_control": {"type": "ephemeral"}} for i in range(5)]
    with pytest.raises(anthropic.BadRequestError, match="maximum of 4"):
        forced_tool_call(anthropic_client(fake_server), system=system)


def test_openai_repeated_prefix_reports_cached_tokens(fake_server):
    client = openai_client(fake_server)
    messages = [{"role": "system", "content": "Long shared instructions. " * 200}, {"role": "user", "content": "first"}]
    first = client.chat.completions.create(model=GPT, messages=messages)
    second = client.chat.completions.create(model=GPT, messages=messages[:1] + [{"role": "user", "content": "second"}])
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    assert 1024 < second.usage.prompt_tokens_details.cached_tokens < second.usage.prompt_tokens
    short = [{"role": "system", "content": "Short shared instructions. " * 100}, {"role": "user", "content": "a"}]
    client.chat.completions.create(model=GPT, messages=short)
    again = client.chat.completions.create(model=GPT, messages=short[:1] + [{"role": "user", "content": "b"}])
    assert again.usage.prompt_tokens_details.cached_tokens == 0  # prompts under 1024 tokens are never cached


# --------------------------------------------------------------------------- faults


@pytest.mark.parametrize(
    "kind, error",
    [
        ("429", anthropic.RateLimitError),
        ("529", anthropic.OverloadedError),
        ("500", anthropic.InternalServerError),
        ("drop", anthropic.APIConnectionError),
    ],
)
def test_anthropic_error_faults_raise_the_sdk_error(fake_server, kind, error):
    fake_server.set_faults(1.0, (kind,))
    with pytest.raises(error) as raised:
        forced_tool_call(anthropic_client(fake_server))
    if kind == "429":
        assert float(raised.value.response.headers["retry-after"]) >= 1
        assert raised.value.body["error"]["type"] == "rate_limit_error"
    assert fake_server.ledger[-1].fault == kind and not fake_server.ledger[-1].completed


@pytest.mark.parametrize(
    "kind, error, status",
    [
        ("429", openai.RateLimitError, 429),
        ("529", openai.InternalServerError, 503),
        ("500", openai.InternalServerError, 500),
        ("drop", openai.APIConnectionError, 0),
    ],
)
def test_openai_error_faults_raise_the_sdk_error(fake_server, kind, error, status):
    fake_server.set_faults(1.0, (kind,))
    with pytest.raises(error) as raised:
        openai_client(fake_server).chat.completions.create(model=GPT, messages=[{"role": "user", "content": "hi"}])
    if kind == "429":
        assert raised.value.response.headers["retry-after"] and raised.value.code == "rate_limit_exceeded"
    assert fake_server.ledger[-1].status == status


def test_malformed_and_truncated_tool_faults(fake_server):
    client, schema = anthropic_client(fake_server), STAGE_3_TOOL["input_schema"]
    for seed in range(4):  # different requests break in different places
        fake_server.set_faults(1.0, ("malformed_tool",))
        message = forced_tool_call(client, text=f"request {seed}")
        assert message.stop_reason == "tool_use" and not is_valid(schema, message.content[0].input)
    fake_server.set_faults(1.0, ("truncated_tool",))
    message = forced_tool_call(client)
    assert message.stop_reason == "max_tokens" and not is_valid(schema, message.content[0].input)
    completion = openai_client(fake_server).chat.completions.create(
        model=GPT,
        messages=[{"role": "user", "content": "hi"}],
        tools=[openai_tool()],
        tool_choice={"type": "function", "function": {"name": STAGE_3_TOOL["name"]}},
    )
    assert completion.choices[0].finish_reason == "length"
    with pytest.raises(json.JSONDecodeError):
        json.loads(completion.choices[0].message.tool_calls[0].function.arguments)


def test_latency_fault_delays_the_answer():
    with FakeProviderServer(fault_rate=1.0, fault_kinds=("latency",), fault_latency_s=0.4) as server:
        started = time.monotonic()
        forced_tool_call(anthropic_client(server))
        assert time.monotonic() - started >= 0.4
        assert server.ledger[-1].completed and server.ledger[-1].fault == "latency"


def test_fault_draws_are_seeded_and_mixed():
    def run(seed):
        with FakeProviderServer(seed=seed, fault_rate=0.5, fault_kinds=("500", "529")) as server:
            client = anthropic_client(server)
            for i in range(30):
                try:
                    client.messages.create(model=CLAUDE, max_tokens=50, messages=[{"role": "user", "content": str(i)}])
                except anthropic.InternalServerError:
                    pass
            return [entry.status for entry in server.ledger]

    statuses = run(1)
    assert statuses == run(1) and statuses != run(2)
    assert {200, 500, 529} <= set(statuses)


def test_set_faults_rejects_unknown_kinds(fake_server):
    with pytest.raises(ValueError):
        fake_server.set_faults(0.1, ("explode",))
    assert set(FAULT_KINDS) >= {"429", "529", "500", "drop", "malformed_tool", "truncated_tool", "latency"}


def test_sdk_retries_recover_from_a_rate_limit_fault():
    with FakeProviderServer(fault_rate=0.0, fault_retry_after_s=0.05) as server:
        server.script(lambda api, body: {"fault": "429"} if len(server.ledger) < 2 else None)
        message = forced_tool_call(anthropic.Anthropic(base_url=server.url, api_key="test", max_retries=3))
        assert message.stop_reason == "tool_use"
        assert [entry.status for entry in server.ledger] == [429, 429, 200]


# --------------------------------------------------------------------------- rate limits


def test_rpm_limit_returns_429_with_retry_after_and_headers():
    with FakeProviderServer(rpm=3) as server:
        client = anthropic_client(server)
        remaining = []
        for i in range(3):
            raw = client.messages.with_raw_response.create(
                model=CLAUDE, max_tokens=50, messages=[{"role": "user", "content": str(i)}]
            )
            remaining.append(int(raw.headers["anthropic-ratelimit-requests-remaining"]))
            assert raw.headers["anthropic-ratelimit-requests-limit"] == "3" and raw.headers["request-id"]
        assert remaining == [2, 1, 0]
        with pytest.raises(anthropic.RateLimitError) as raised:
            client.messages.create(model=CLAUDE, max_tokens=50, messages=[{"role": "user", "content": "4"}])
        assert (
            50 <= int(raw.headers["anthropic-ratelimit-input-tokens-limit"])
            and 55 <= float(raised.value.response.headers["retry-after"]) <= 60
        )
        openai_raw = openai_client(server).chat.completions.with_raw_response.create(
            model=GPT, messages=[{"role": "user", "content": "hi"}]
        )  # separate window per provider
        assert openai_raw.headers["x-ratelimit-remaining-requests"] == "2"
        assert openai_raw.headers["x-ratelimit-limit-tokens"] and openai_raw.headers["x-ratelimit-reset-requests"]


def test_input_and_output_token_limits():
    with FakeProviderServer(itpm=1000) as server:
        client = anthropic_client(server)
        client.messages.create(model=CLAUDE, max_tokens=50, messages=[{"role": "user", "content": "x" * 3000}])
        with pytest.raises(anthropic.RateLimitError):
            client.messages.create(model=CLAUDE, max_tokens=50, messages=[{"role": "user", "content": "y" * 1200}])
        client.messages.create(model=CLAUDE, max_tokens=50, messages=[{"role": "user", "content": "short"}])
    with FakeProviderServer(otpm=100) as server:
        client = anthropic_client(server)
        forced_tool_call(client)  # ~300 output tokens: the window is now over its limit
        with pytest.raises(anthropic.RateLimitError):
            forced_tool_call(client, text="next")


# --------------------------------------------------------------------------- ledger


def test_ledger_records_completion_keys_and_paid_duplicates(fake_server):
    client = anthropic_client(fake_server)
    forced_tool_call(client)
    assert fake_server.paid_duplicates() == []
    fake_server.set_faults(1.0, ("500",))
    with pytest.raises(anthropic.InternalServerError):
        forced_tool_call(client)
    assert fake_server.paid_duplicates() == []  # a failed answer is not paid
    fake_server.set_faults(0.0)
    forced_tool_call(client)
    first, failed, repeat = fake_server.ledger
    assert first.key == failed.key == repeat.key and first.completed and not failed.completed
    assert fake_server.paid_duplicates() == [first.key] and fake_server.completed_keys() == [first.key] * 2
    assert first.api == "anthropic" and first.body["tool_choice"]["name"] == STAGE_3_TOOL["name"]
    assert first.usage["output_tokens"] > 0 and first.request_id.startswith("req_")
    assert fake_server.requests("openai") == [] and len(fake_server.requests("anthropic")) == 3


def test_ledger_path_gets_one_json_line_per_request(tmp_path):
    path = tmp_path / "ledger.jsonl"
    with FakeProviderServer(ledger_path=path) as server:
        forced_tool_call(anthropic_client(server))
        openai_client(server).chat.completions.create(model=GPT, messages=[{"role": "user", "content": "hi"}])
        assert read_ledger(path) == server.ledger
    assert [entry.api for entry in read_ledger(path)] == ["anthropic", "openai"]


# --------------------------------------------------------------------------- batches


def test_message_batch_round_trip(fake_server):
    client = anthropic_client(fake_server)
    params = {
        "model": CLAUDE,
        "max_tokens": 8000,
        "tools": [STAGE_3_TOOL],
        "tool_choice": {"type": "tool", "name": STAGE_3_TOOL["name"]},
    }
    batch = client.messages.batches.create(
        requests=[
            {"custom_id": f"item-{i}", "params": {**params, "messages": [{"role": "user", "content": f"Review {i}"}]}}
            for i in range(3)
        ]
    )
    assert batch.processing_status == "in_progress" and batch.request_counts.processing == 3
    while (batch := client.messages.batches.retrieve(batch.id)).processing_status != "ended":
        time.sleep(0.1)
    assert batch.request_counts.succeeded == 3 and batch.results_url
    results = {result.custom_id: result.result for result in client.messages.batches.results(batch.id)}
    assert sorted(results) == ["item-0", "item-1", "item-2"]
    for result in results.values():
        assert result.type == "succeeded" and is_valid(STAGE_3_TOOL["input_schema"], result.message.content[0].input)
        assert result.message.usage.service_tier == "batch"
    paid = fake_server.requests("anthropic_batch")
    assert len(paid) == 3 and all(entry.completed for entry in paid)
    assert fake_server.paid_duplicates() == [] and len(fake_server.completed_keys()) == 3
    assert client.messages.batches.list().data[0].id == batch.id


def test_message_batch_errors_and_cancel():
    with FakeProviderServer(fault_rate=1.0, fault_kinds=("529",), batch_delay_s=0.1) as server:
        client = anthropic_client(server)
        request = {
            "custom_id": "only",
            "params": {"model": CLAUDE, "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]},
        }
        batch = client.messages.batches.create(requests=[request])
        while client.messages.batches.retrieve(batch.id).processing_status != "ended":
            time.sleep(0.05)
        [result] = list(client.messages.batches.results(batch.id))
        assert result.result.type == "errored" and result.result.error.error.type == "overloaded_error"
        server.batch_delay_s = 30
        slow = client.messages.batches.create(requests=[request])
        canceled = client.messages.batches.cancel(slow.id)
        assert canceled.cancel_initiated_at is not None and canceled.request_counts.canceled == 1
        assert [r.result.type for r in client.messages.batches.results(slow.id)] == ["canceled"]
        assert len(server.requests("anthropic_batch")) == 1  # the canceled request was never answered
        with pytest.raises(anthropic.NotFoundError):
            client.messages.batches.retrieve("msgbatch_missing")


def openai_batch_file(server, bodies: dict[str, dict]) -> str:
    """Upload `bodies` (custom id -> Chat Completions body) as a batch input file; its id."""
    lines = "".join(
        json.dumps({"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body}) + "\n"
        for custom_id, body in bodies.items()
    )
    upload = openai_client(server).files.create(
        file=("requests.jsonl", lines.encode(), "application/jsonl"), purpose="batch"
    )
    assert upload.purpose == "batch" and upload.bytes == len(lines.encode())
    return upload.id


def run_openai_batch(server, file_id: str):
    """Create a batch from `file_id` and poll it until it ends; (final batch, statuses seen)."""
    client = openai_client(server)
    batch = client.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h")
    seen = [batch.status]
    while batch.status not in ("completed", "failed", "cancelled"):
        time.sleep(0.02)
        batch = client.batches.retrieve(batch.id)
        seen.append(batch.status)
    return batch, list(dict.fromkeys(seen))


def file_lines(server, file_id: str) -> dict[str, dict]:
    text = openai_client(server).files.content(file_id).text
    return {line["custom_id"]: line for line in map(json.loads, text.splitlines())}


def test_openai_batch_round_trip_answers_like_chat_completions():
    tool = {
        "type": "function",
        "function": {"name": STAGE_3_TOOL["name"], "description": "review", "parameters": STAGE_3_TOOL["input_schema"]},
    }
    bodies = {
        f"item-{i}": {
            "model": GPT,
            "messages": [{"role": "user", "content": f"Review {i}"}],
            "tools": [tool],
            "tool_choice": {"type": "function", "function": {"name": tool["function"]["name"]}},
        }
        for i in range(3)
    }
    with FakeProviderServer(batch_delay_s=0.3) as server:
        batch, statuses = run_openai_batch(server, openai_batch_file(server, bodies))
        assert statuses == ["validating", "in_progress", "completed"]
        assert batch.request_counts.total == batch.request_counts.completed == 3 and batch.error_file_id is None
        lines = file_lines(server, batch.output_file_id)
        assert sorted(lines) == sorted(bodies)
        for custom_id, line in lines.items():
            assert line["error"] is None and line["response"]["status_code"] == 200
            completion = line["response"]["body"]
            arguments = completion["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]
            assert is_valid(STAGE_3_TOOL["input_schema"], json.loads(arguments))
            # the same request sent alone gets the same (seeded) answer
            alone = openai_client(server).chat.completions.create(**bodies[custom_id])
            assert alone.choices[0].message.tool_calls[0].function.arguments == arguments
        paid = server.requests("openai_batch")
        assert len(paid) == 3 and all(entry.completed for entry in paid)
        assert server.paid_duplicates() == sorted(entry.key for entry in paid)  # each asked twice, paid twice
        control = server.requests("batch_control")
        assert len(server.completed_keys()) == 6 and len(control) >= 7  # control calls cost nothing
        assert control[0].body == {
            "purpose": "batch",
            "file": {"filename": "requests.jsonl", "bytes": control[0].body["file"]["bytes"]},
        }


def test_openai_batch_errors_validation_cancel_and_auth():
    body = {"model": GPT, "messages": [{"role": "user", "content": "hi"}]}
    with FakeProviderServer(fault_rate=1.0, fault_kinds=("429",), batch_delay_s=0.05) as server:
        batch, _ = run_openai_batch(server, openai_batch_file(server, {"only": body}))
        assert batch.status == "completed" and batch.output_file_id is None and batch.request_counts.failed == 1
        response = file_lines(server, batch.error_file_id)["only"]["response"]
        assert response["status_code"] == 429 and response["body"]["error"]["code"] == "rate_limit_exceeded"
        assert server.completed_keys() == []

        server.set_faults(0.0)
        bad = openai_client(server).files.create(
            file=("bad.jsonl", b'{"custom_id": "x", "method": "GET"}\nnot json\n', "application/jsonl"), purpose="batch"
        )
        failed, _ = run_openai_batch(server, bad.id)
        assert failed.status == "failed" and [e.line for e in failed.errors.data] == [1, 2]
        assert len(server.requests("openai_batch")) == 1  # nothing of the bad file ran

        server.batch_delay_s = 30
        client = openai_client(server)
        slow = client.batches.create(
            input_file_id=openai_batch_file(server, {"only": body}),
            endpoint="/v1/chat/completions",
            completion_window="24h",
        )
        cancelled = client.batches.cancel(slow.id)
        assert cancelled.status == "cancelled" and cancelled.request_counts.failed == 1
        assert file_lines(server, cancelled.error_file_id)["only"]["error"]["code"] == "batch_cancelled"
        assert len(server.requests("openai_batch")) == 1  # the cancelled request never ran
        with pytest.raises(openai.NotFoundError):
            client.batches.retrieve("batch_missing")
        with pytest.raises(openai.BadRequestError):
            client.batches.create(input_file_id=bad.id, endpoint="/v1/embeddings", completion_window="24h")
        assert httpx.get(server.openai_base_url + f"/batches/{slow.id}").status_code == 401


# --------------------------------------------------------------------------- standalone


def test_standalone_server_prints_its_url_and_serves(tmp_path):
    ledger = tmp_path / "ledger.jsonl"
    process = subprocess.Popen(
        [
            sys.executable,
            "tests/fake_provider",
            "--port",
            "0",
            "--latency",
            "0.01",
            "--rpm",
            "3000",
            "--ledger_path",
            str(ledger),
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = process.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url)
        client = anthropic.Anthropic(base_url=url, api_key="test", max_retries=0)
        raw = client.messages.with_raw_response.create(
            model=CLAUDE, max_tokens=50, messages=[{"role": "user", "content": "hi"}]
        )
        assert raw.headers["anthropic-ratelimit-requests-limit"] == "3000"
        assert read_ledger(ledger)[0].completed
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0


# --------------------------------------------------------------------------- Anthropic model rules

REVIEW_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["verdict", "reasons"],
    "properties": {
        "verdict": {"type": "string", "enum": ["PASS", "FAIL"]},
        "reasons": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["text"],
                "properties": {"text": {"type": "string"}},
            },
        },
    },
}


def ask(client, model, text="Review this.", **kwargs):
    return client.messages.create(
        model=model,
        max_tokens=kwargs.pop("max_tokens", 4000),
        messages=kwargs.pop("messages", [{"role": "user", "content": text}]),
        **kwargs,
    )


def forced(model, **kwargs):
    return {
        "model": model,
        "tools": [STAGE_3_TOOL],
        "tool_choice": {"type": "tool", "name": STAGE_3_TOOL["name"]},
        **kwargs,
    }


@pytest.mark.parametrize("model", ["claude-sonnet-5-5", "claude-opus-5-5", "claude-fable-5-1", "claude-fable-5-2"])
def test_forced_tool_use_is_refused_on_5_5_and_fable_5_1_and_later(fake_server, model):
    with pytest.raises(anthropic.BadRequestError, match="forced tool use"):
        ask(anthropic_client(fake_server), **forced(model))
    assert fake_server.ledger[-1].status == 400 and fake_server.completed_keys() == []


def test_forced_tool_use_where_it_is_accepted(fake_server):
    client = anthropic_client(fake_server)
    # Haiku 5.5 and Opus 5 think by default: forcing a tool needs thinking turned off.
    for model in ("claude-haiku-5-5", "claude-opus-5"):
        with pytest.raises(anthropic.BadRequestError, match="Thinking may not be enabled"):
            ask(client, **forced(model))
        message = ask(client, **forced(model), thinking={"type": "disabled"})
        assert [block.type for block in message.content] == ["tool_use"]
    with pytest.raises(anthropic.BadRequestError, match="is not supported at effort"):
        ask(client, **forced("claude-opus-5"), thinking={"type": "disabled"}, output_config={"effort": "xhigh"})
    # Fable 5 thinks always and still takes a forced tool (refusing it is a Fable 5.1 change).
    message = ask(client, **forced("claude-fable-5"))
    assert message.content[-1].type == "tool_use" and {b.type for b in message.content[:-1]} == {"thinking"}


@pytest.mark.filterwarnings("ignore:The model 'claude-opus-4-5' is deprecated:DeprecationWarning")
def test_budget_thinking_rules(fake_server):
    client = anthropic_client(fake_server)
    for model in ("claude-opus-4-7", "claude-opus-4-8", "claude-sonnet-5", "claude-haiku-5-5"):
        with pytest.raises(anthropic.BadRequestError) as raised:
            ask(client, model, thinking={"type": "enabled", "budget_tokens": 2000})
        assert raised.value.body["error"]["message"] == (
            '"thinking.type.enabled" is not supported for this model. Use "thinking.type.adaptive" and '
            '"output_config.effort" to control thinking behavior.'
        )
    with pytest.raises(anthropic.BadRequestError, match="greater than or equal to 1024"):
        ask(client, "claude-haiku-4-5", thinking={"type": "enabled", "budget_tokens": 500})
    with pytest.raises(anthropic.BadRequestError, match="max_tokens` must be greater"):
        ask(client, "claude-haiku-4-5", max_tokens=2000, thinking={"type": "enabled", "budget_tokens": 2000})
    message = ask(client, "claude-haiku-4-5", thinking={"type": "enabled", "budget_tokens": 1024})
    assert [block.type for block in message.content] == ["thinking", "text"] and message.content[0].thinking
    with pytest.raises(anthropic.BadRequestError, match="thinking.type.adaptive"):
        ask(client, "claude-opus-4-5", thinking={"type": "adaptive"})  # 4.5 and earlier: budget thinking only


def test_thinking_disabled_and_between_tools(fake_server):
    client = anthropic_client(fake_server)
    with pytest.raises(anthropic.BadRequestError) as raised:
        ask(client, "claude-opus-5-5", thinking={"type": "disabled"})
    assert raised.value.body["error"]["message"].startswith(
        '"thinking.type.disabled" is not supported for this model. Use "thinking.type.adaptive" and '
        '"output_config.effort"'
    )
    with pytest.raises(anthropic.BadRequestError, match="between_tools"):
        ask(client, "claude-sonnet-5-5", thinking={"type": "disabled"})
    for effort in ("low", "medium", "high"):
        message = ask(client, "claude-sonnet-5-5", thinking={"type": "between_tools"}, output_config={"effort": effort})
        assert [block.type for block in message.content] == ["text"]  # no tools: text only
    for effort in ("xhigh", "max"):
        with pytest.raises(anthropic.BadRequestError, match="between_tools"):
            ask(client, "claude-sonnet-5-5", thinking={"type": "between_tools"}, output_config={"effort": effort})
    with pytest.raises(anthropic.BadRequestError, match="between_tools"):
        ask(client, "claude-opus-5-5", thinking={"type": "between_tools"})
    # With a tool, between_tools still returns a progress update as a thinking block.
    message = ask(client, "claude-sonnet-5-5", tools=[STAGE_3_TOOL], thinking={"type": "between_tools"})
    assert [block.type for block in message.content] == ["thinking", "tool_use"] and message.content[0].thinking
    message = ask(client, "claude-sonnet-4-6", thinking={"type": "disabled"})
    assert [block.type for block in message.content] == ["text"]


def test_effort_levels_per_model(fake_server):
    client = anthropic_client(fake_server)
    with pytest.raises(anthropic.BadRequestError, match="does not support the effort"):
        ask(client, "claude-haiku-4-5", output_config={"effort": "low"})
    with pytest.raises(anthropic.BadRequestError, match="'xhigh' is not supported"):
        ask(client, "claude-sonnet-4-6", output_config={"effort": "xhigh"})
    for model, effort in (("claude-sonnet-4-6", "max"), ("claude-opus-4-7", "xhigh"), ("claude-opus-5-5", "low")):
        assert ask(client, model, output_config={"effort": effort}).stop_reason == "end_turn"


def test_sampling_parameters_per_model(fake_server):
    client = anthropic_client(fake_server)
    for model in ("claude-opus-4-7", "claude-sonnet-5", "claude-sonnet-5-5", "claude-haiku-5-5"):
        with pytest.raises(anthropic.BadRequestError, match="`temperature` is deprecated for this model"):
            ask(client, model, extra_body={"temperature": 0.2})
        with pytest.raises(anthropic.BadRequestError, match="`top_k`"):
            ask(client, model, extra_body={"top_k": 40})
        # Only non-default values are refused: temperature and top_p at 1.0 pass.
        assert ask(client, model, extra_body={"temperature": 1.0, "top_p": 1.0}).content
    assert ask(client, "claude-sonnet-4-6", extra_body={"temperature": 0.2, "top_k": 40}).content
    with pytest.raises(anthropic.BadRequestError, match="cannot both be specified"):
        ask(client, "claude-haiku-4-5", extra_body={"temperature": 0.2, "top_p": 0.9})
    assert ask(client, "claude-haiku-4-5", extra_body={"temperature": 0.2}).content


def test_assistant_prefill_is_refused_from_4_6_on(fake_server):
    client = anthropic_client(fake_server)
    prefill = [{"role": "user", "content": "Answer in JSON."}, {"role": "assistant", "content": "{"}]
    for model in ("claude-sonnet-5-5", "claude-haiku-5-5", "claude-opus-5", "claude-sonnet-4-6"):
        with pytest.raises(anthropic.BadRequestError, match="does not support assistant message prefill"):
            ask(client, model, messages=prefill)
    assert ask(client, "claude-haiku-4-5", messages=prefill).content


@pytest.mark.filterwarnings("ignore:The model 'claude-sonnet-4-5:DeprecationWarning")
@pytest.mark.parametrize(
    "model",
    [
        "claude-sonnet-4-5",
        "claude-sonnet-4-5-20250929",
        "claude-opus-4-1",
        "claude-opus-4-0",
        "claude-sonnet-4-0",
        "claude-3-7-sonnet-20250219",
        "claude-3-5-haiku-20241022",
        "claude-opus-4-5-latest",
        "claude-test",
    ],
)
def test_retired_and_unknown_models_are_404(fake_server, model):
    with pytest.raises(anthropic.NotFoundError) as raised:
        ask(anthropic_client(fake_server), model)
    assert raised.value.body["error"] == {"type": "not_found_error", "message": f"model: {model}"}


def test_max_tokens_above_the_models_limit(fake_server):
    with pytest.raises(anthropic.BadRequestError, match="maximum allowed number of output tokens"):
        anthropic_client(fake_server).messages.stream(
            model="claude-haiku-4-5", max_tokens=64_001, messages=[{"role": "user", "content": "hi"}]
        ).__enter__()


def test_structured_output_starts_with_thinking_blocks_and_ends_with_valid_json(fake_server):
    client = anthropic_client(fake_server)
    output_config = {"format": {"type": "json_schema", "schema": REVIEW_SCHEMA}}
    for i in range(4):
        message = ask(client, "claude-sonnet-5-5", f"Review item {i}.", output_config=output_config)
        types = [block.type for block in message.content]
        assert types[-1] == "text" and types[:-1] and set(types[:-1]) == {"thinking"}
        assert all(block.thinking == "" and block.signature for block in message.content[:-1])  # display omitted
        jsonschema.validate(json.loads(message.content[-1].text), REVIEW_SCHEMA)
        assert message.usage.output_tokens > len(message.content[-1].text) / 4  # thinking is billed output
    # With the thinking summarised, the first block is a JSON draft: a client reading content[0] gets wrong data.
    message = ask(
        client, "claude-sonnet-5-5", output_config=output_config, thinking={"type": "adaptive", "display": "summarized"}
    )
    draft = json.loads(message.content[0].thinking)
    assert message.content[0].type == "thinking" and not is_valid(REVIEW_SCHEMA, draft)
    jsonschema.validate(json.loads(message.content[-1].text), REVIEW_SCHEMA)
    # The same through the streaming helper.
    with client.messages.stream(
        model="claude-sonnet-5-5",
        max_tokens=4000,
        output_config=output_config,
        thinking={"type": "adaptive", "display": "summarized"},
        messages=[{"role": "user", "content": "Review this."}],
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert final.model_dump()["content"] == message.model_dump()["content"] and text == message.content[-1].text
    with client.messages.stream(
        model="claude-opus-5-5",
        max_tokens=4000,
        output_config=output_config,
        messages=[{"role": "user", "content": "Review this."}],
    ) as stream:
        final = stream.get_final_message()
    assert final.content[0].type == "thinking" and final.content[0].thinking == "" and final.content[0].signature
    jsonschema.validate(json.loads(final.content[-1].text), REVIEW_SCHEMA)
    # Models that do not think by default answer with the text block alone.
    plain = ask(client, "claude-sonnet-4-6", output_config=output_config)
    assert [block.type for block in plain.content] == ["text"]
    jsonschema.validate(json.loads(plain.content[0].text), REVIEW_SCHEMA)


@pytest.mark.parametrize(
    "change, problem",
    [
        ({"maxLength": 20}, "'maxLength' keyword is not supported"),
        ({"minimum": 0}, "'minimum' keyword is not supported"),
        ({"minItems": 2}, "minItems must be 0 or 1"),
        ({"format": "color"}, "string format 'color'"),
    ],
)
def test_structured_output_schema_subset(fake_server, change, problem):
    schema = json.loads(json.dumps(REVIEW_SCHEMA))
    target = (
        schema["properties"]["reasons"]
        if "minItems" in change
        else schema["properties"]["reasons"]["items"]["properties"]["text"]
    )
    target.update(change)
    with pytest.raises(anthropic.BadRequestError, match=re.escape(problem)):
        ask(
            anthropic_client(fake_server),
            "claude-sonnet-5-5",
            output_config={"format": {"type": "json_schema", "schema": schema}},
        )


def test_structured_output_objects_need_additional_properties_false(fake_server):
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    client = anthropic_client(fake_server)
    with pytest.raises(anthropic.BadRequestError, match="additionalProperties"):
        ask(client, "claude-opus-4-8", output_config={"format": {"type": "json_schema", "schema": schema}})
    strict_tool = {**STAGE_3_TOOL, "strict": True}  # strict tools take the same subset (minLength, minimum...)
    with pytest.raises(anthropic.BadRequestError, match="not supported"):
        ask(client, "claude-opus-4-8", tools=[strict_tool])


def test_prompt_cache_minimum_per_model(fake_server):
    client = anthropic_client(fake_server)
    system = [{"type": "text", "text": "Shared rules. " * 800, "cache_control": {"type": "ephemeral"}}]  # ~2800
    below = ask(client, "claude-opus-4-6", system=system)  # Opus 4.6 caches from 4096 tokens
    assert below.usage.cache_creation_input_tokens == 0 and below.usage.cache_read_input_tokens == 0
    assert below.usage.input_tokens > 2500
    above = ask(client, "claude-opus-5-5", system=system)  # Opus 5.5 caches from 512 tokens
    assert above.usage.cache_creation_input_tokens > 2500
    again = ask(client, "claude-opus-5-5", "Another question.", system=system)
    assert again.usage.cache_read_input_tokens == above.usage.cache_creation_input_tokens
    # An alias and its dated id share one cache.
    ask(
        client,
        "claude-haiku-4-5",
        system=[{"type": "text", "text": "Rules. " * 3000, "cache_control": {"type": "ephemeral"}}],
    )
    dated = ask(
        client,
        "claude-haiku-4-5-20251001",
        "Other.",
        system=[{"type": "text", "text": "Rules. " * 3000, "cache_control": {"type": "ephemeral"}}],
    )
    assert dated.usage.cache_read_input_tokens > 4096


def test_models_api_objects_aliases_retirement_and_free_ledger(fake_server):
    client = anthropic_client(fake_server)
    info = client.models.retrieve("claude-sonnet-5-5")
    assert (info.id, info.type, info.lifecycle, info.line) == ("claude-sonnet-5-5", "model", "active", "sonnet")
    assert (info.max_input_tokens, info.max_tokens) == (1_000_000, 128_000)
    types = info.capabilities.thinking.types
    assert (
        types.adaptive.supported,
        types.between_tools.supported,
        types.disabled.supported,
        types.enabled.supported,
    ) == (True, True, False, False)
    assert info.capabilities.effort.xhigh.supported and info.capabilities.structured_outputs.supported
    assert client.models.retrieve("claude-opus-4-5").id == "claude-opus-4-5-20251101"
    opus_45 = client.models.retrieve("claude-opus-4-5-20251101")
    assert opus_45.lifecycle == "deprecated" and opus_45.retires_at.year == 2027
    haiku = client.models.retrieve("claude-haiku-4-5")
    assert not haiku.capabilities.effort.supported and not haiku.capabilities.thinking.types.adaptive.supported
    assert client.models.retrieve("claude-sonnet-4-6").capabilities.effort.xhigh.supported is False
    for model in ("claude-sonnet-4-5", "claude-opus-4-1-20250805", "claude-nope"):
        with pytest.raises(anthropic.NotFoundError, match=f"model: {model}"):
            client.models.retrieve(model)
    listed = [model.id for model in client.models.list(limit=100)]
    assert listed[0] == "claude-fable-5-2" and "claude-sonnet-4-5-20250929" not in listed
    assert "claude-opus-4-5-20251101" in listed and "claude-opus-4-5" not in listed  # dated ids only
    retired = [model.id for model in client.models.list(lifecycle=["retired"])]
    assert "claude-sonnet-4-5-20250929" in retired and "claude-sonnet-5-5" not in retired
    lookups = fake_server.requests("model_lookup")
    assert len(lookups) == len(fake_server.ledger) >= 8 and fake_server.completed_keys() == []
    assert all(entry.usage is None for entry in lookups)


def test_billing_faults_anthropic(fake_server):
    client = anthropic_client(fake_server)
    fake_server.script(lambda api, body: {"fault": "credit_balance"})
    with pytest.raises(anthropic.BadRequestError) as raised:
        ask(client, CLAUDE)
    assert raised.value.body["error"]["type"] == "invalid_request_error"
    assert raised.value.body["error"]["message"].startswith(
        "Your credit balance is too low to access the Anthropic API"
    )
    fake_server.script(lambda api, body: {"fault": "spend_limit"})
    with pytest.raises(anthropic.RateLimitError) as raised:
        anthropic.Anthropic(base_url=fake_server.url, api_key="test", max_retries=2).messages.create(
            model=CLAUDE, max_tokens=100, messages=[{"role": "user", "content": "hi"}]
        )
    assert raised.value.body["error"]["details"] == {"error_code": "enforced_spend_limit_reached"}
    assert "retry-after" not in raised.value.response.headers
    assert [entry.fault for entry in fake_server.ledger] == ["credit_balance"] + ["spend_limit"] * 3  # SDK retried
    fake_server.script(None)
    fake_server.set_faults(1.0, ("credit_balance",))
    with pytest.raises(anthropic.BadRequestError, match="credit balance"):
        ask(client, CLAUDE, "again")


# --------------------------------------------------------------------------- OpenAI model rules


def chat(client, model, **kwargs):
    return client.chat.completions.create(
        model=model, messages=kwargs.pop("messages", [{"role": "user", "content": "Review this."}]), **kwargs
    )


def test_openai_reasoning_model_rules(fake_server):
    client = openai_client(fake_server)
    for model in ("o3", "gpt-5.4", "gpt-5.6", "gpt-6.2-sol"):
        with pytest.raises(openai.BadRequestError) as raised:
            chat(client, model, max_tokens=100)
        assert raised.value.code == "unsupported_parameter" and raised.value.param == "max_tokens"
        assert "Use 'max_completion_tokens' instead." in raised.value.message
        with pytest.raises(openai.BadRequestError, match="Only the default \\(1\\) value is supported") as raised:
            chat(client, model, temperature=0.2)
        assert raised.value.code == "unsupported_value"
        with pytest.raises(openai.BadRequestError, match="'top_p' does not support"):
            chat(client, model, top_p=0.5)
        answer = chat(client, model, max_completion_tokens=4000, temperature=1)
        assert answer.usage.completion_tokens_details.reasoning_tokens > 0
        assert getattr(answer.choices[0].message, "reasoning", None) is None  # OpenAI returns no reasoning text
    with pytest.raises(openai.BadRequestError, match="'reasoning_effort' does not support 'xhigh'"):
        chat(client, "o3", reasoning_effort="xhigh")
    assert chat(client, "gpt-5.4", reasoning_effort="none").usage.completion_tokens_details.reasoning_tokens == 0
    with pytest.raises(openai.BadRequestError, match="'reasoning_effort' does not support 'none'"):
        chat(client, "gpt-6.2-sol", reasoning_effort="none")  # gpt-6.2-sol cannot switch reasoning off
    with pytest.raises(openai.BadRequestError, match="only supported in v1/responses"):
        chat(client, "gpt-5.5-pro", max_completion_tokens=100)
    with pytest.raises(openai.NotFoundError):
        chat(client, "o4-mini")  # shut down on 2026-10-23
    with pytest.raises(openai.BadRequestError, match="'reasoning_effort' is not supported with this model"):
        chat(client, "gpt-4.1", reasoning_effort="low")
    plain = chat(client, "gpt-4.1", max_tokens=100, temperature=0.2)
    assert plain.usage.completion_tokens_details.reasoning_tokens == 0


def test_openai_unknown_arguments_and_models(fake_server):
    client = openai_client(fake_server)
    for model in ("gpt-4.1", "o3"):
        with pytest.raises(openai.BadRequestError, match="Unrecognized request argument supplied: top_k"):
            chat(client, model, extra_body={"top_k": 40})
    with pytest.raises(openai.BadRequestError, match="Unrecognized request argument supplied: reasoning"):
        chat(client, "gpt-4.1", extra_body={"reasoning": {"enabled": False}})  # OpenRouter's shape
    with pytest.raises(openai.NotFoundError) as raised:
        chat(client, "gpt-test")
    assert raised.value.code == "model_not_found" and "`gpt-test` does not exist" in raised.value.message
    assert client.models.retrieve("gpt-5.4").id == "gpt-5.4"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("qwen/qwen3-32b")
    assert {"gpt-4.1", "o3"} <= {model.id for model in client.models.list()}
    assert fake_server.requests("model_lookup") and fake_server.completed_keys() == []


def test_openai_strict_json_schema(fake_server):
    client = openai_client(fake_server)
    schema = json.loads(json.dumps(REVIEW_SCHEMA))
    answer = chat(
        client,
        "gpt-5.4",
        response_format={"type": "json_schema", "json_schema": {"name": "review", "schema": schema, "strict": True}},
    )
    jsonschema.validate(json.loads(answer.choices[0].message.content), REVIEW_SCHEMA)
    schema["properties"]["reasons"]["items"]["properties"]["note"] = {"type": ["string", "null"]}
    with pytest.raises(openai.BadRequestError, match="including every key in properties. Missing 'note'"):
        chat(
            client,
            "gpt-4.1",
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "review", "schema": schema, "strict": True},
            },
        )
    loose = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    with pytest.raises(openai.BadRequestError, match="additionalProperties"):
        chat(
            client,
            "gpt-4.1",
            response_format={"type": "json_schema", "json_schema": {"name": "loose", "schema": loose, "strict": True}},
        )
    answer = chat(
        client, "gpt-4.1", response_format={"type": "json_schema", "json_schema": {"name": "loose", "schema": loose}}
    )  # not strict: accepted
    assert "a" in json.loads(answer.choices[0].message.content)


def test_openai_insufficient_quota(fake_server):
    fake_server.set_faults(1.0, ("insufficient_quota",))
    client = openai.OpenAI(base_url=fake_server.openai_base_url, api_key="test", max_retries=0)
    with pytest.raises(openai.RateLimitError) as raised:
        chat(client, GPT)
    assert raised.value.body["type"] == raised.value.code == "insufficient_quota"
    assert raised.value.body["message"].startswith("You exceeded your current quota")
    assert "retry-after" not in raised.value.response.headers
    with pytest.raises(openai.APIStatusError) as raised:
        chat(openrouter_client(fake_server), "qwen/qwen3-32b")
    assert raised.value.status_code == 402


def test_served_model_answers_like_a_self_hosted_server():
    with FakeProviderServer(served_models=("my-served-model",)) as server:
        answer = chat(
            openai_client(server),
            "my-served-model",
            extra_body={"top_k": 20, "chat_template_kwargs": {"enable_thinking": False}},
        )
        assert answer.choices[0].message.content
        with pytest.raises(openai.NotFoundError):
            chat(openai_client(server), "other-served-model")
        server.serve_models("other-served-model")
        assert chat(openai_client(server), "other-served-model").choices[0].message.content


# --------------------------------------------------------------------------- OpenRouter rules


def test_openrouter_drops_unsupported_parameters_and_records_them(fake_server):
    client = openrouter_client(fake_server)
    base = chat(client, "anthropic/claude-sonnet-5.5")
    sampled = chat(client, "anthropic/claude-sonnet-5.5", temperature=0.2, top_p=0.9, extra_body={"top_k": 5})
    assert sampled.choices[0].message.content == base.choices[0].message.content  # the parameters did nothing
    first, second = fake_server.requests("openrouter")
    assert first.dropped == [] and second.dropped == ["temperature", "top_k", "top_p"]
    assert second.body["temperature"] == 0.2 and second.completed  # the ledger keeps what was sent
    with pytest.raises(openai.NotFoundError) as raised:
        chat(
            client,
            "anthropic/claude-sonnet-5.5",
            temperature=0.2,
            extra_body={"provider": {"require_parameters": True}},
        )
    assert raised.value.body == {"code": 404, "message": "No endpoints found that can handle the requested parameters."}
    assert (
        chat(
            client, "qwen/qwen3-32b", temperature=0.2, extra_body={"top_k": 5, "provider": {"require_parameters": True}}
        )
        .choices[0]
        .message.content
    )
    assert fake_server.ledger[-1].dropped == []


def test_openrouter_reasoning_tools_models_and_cost(fake_server):
    client = openrouter_client(fake_server)
    with pytest.raises(openai.BadRequestError) as raised:
        chat(client, "deepseek/deepseek-r1", extra_body={"reasoning": {"enabled": False}})
    assert raised.value.body["message"] == "Reasoning is mandatory for this endpoint and cannot be disabled."
    reasoned = chat(client, "deepseek/deepseek-r1")
    assert reasoned.choices[0].message.reasoning and reasoned.usage.completion_tokens_details.reasoning_tokens > 0
    with pytest.raises(openai.NotFoundError, match="No endpoints found that support tool use"):
        chat(client, "deepseek/deepseek-r1", tools=[openai_tool()])
    with pytest.raises(openai.NotFoundError, match="tool_choice"):
        chat(client, "anthropic/claude-sonnet-5.5", tools=[openai_tool()], tool_choice="required")
    with pytest.raises(openai.BadRequestError, match="claude-sonnet-5-5 is not a valid model ID"):
        chat(client, "claude-sonnet-5-5")
    answer = chat(client, "meta-llama/llama-3.3-70b-instruct")
    usage = answer.usage
    price = fake_server_prices("meta-llama/llama-3.3-70b-instruct")
    assert usage.cost == pytest.approx(usage.prompt_tokens * price[0] + usage.completion_tokens * price[1])
    assert fake_server.ledger[-1].usage["cost"] == usage.cost
    listing = httpx.get(fake_server.openrouter_base_url + "/models").json()["data"]  # no key needed
    r1 = next(model for model in listing if model["id"] == "deepseek/deepseek-r1")
    assert r1["reasoning"]["mandatory"] and "tools" not in r1["supported_parameters"]
    assert float(r1["pricing"]["prompt"]) > 0 and r1["context_length"] > 0
    with_tools = httpx.get(
        fake_server.openrouter_base_url + "/models", params={"supported_parameters": "tools"}
    ).json()["data"]
    assert "deepseek/deepseek-r1" not in {model["id"] for model in with_tools} and with_tools
    assert fake_server.env()["OPENROUTER_BASE_URL"] == fake_server.url + "/api/v1"


def fake_server_prices(model: str) -> tuple[float, float]:
    from fake_provider import OPENROUTER_MODELS

    return OPENROUTER_MODELS[model].prompt_price, OPENROUTER_MODELS[model].completion_price


def test_every_rule_comment_cites_a_known_source():
    """Rule comments cite their sources as [tag]; every tag must resolve in SOURCES, and every source be cited."""
    from fake_provider import SOURCES

    parts = sorted((REPO_ROOT / "tests" / "fake_provider").glob("*.py"))
    code = ""
    for part in parts:  # every part but the SOURCES table itself
        source = part.read_text()
        if "\nSOURCES = {" in source:
            head, rest = source.split("\nSOURCES = {", 1)
            source = head + rest.split("\n}\n", 1)[1]
        code += source
    comments = [line.split("#", 1)[1] for line in code.splitlines() if "#" in line]
    cited = {tag for comment in comments for tag in re.findall(r"\[([a-z][a-z0-9-]+)\]", comment)} - {"3p"}
    assert cited <= set(SOURCES), cited - set(SOURCES)
    anywhere = set(re.findall(r"\[([a-z][a-z0-9-]+)\]", code))  # comments and docstrings
    assert set(SOURCES) <= anywhere, set(SOURCES) - anywhere


def test_batch_requests_follow_the_same_model_rules():
    with FakeProviderServer(batch_delay_s=0.05) as server:
        client = anthropic_client(server)
        good = {
            "model": "claude-sonnet-5-5",
            "max_tokens": 4000,
            "messages": [{"role": "user", "content": "hi"}],
            "output_config": {"format": {"type": "json_schema", "schema": REVIEW_SCHEMA}},
        }
        batch = client.messages.batches.create(
            requests=[
                {"custom_id": "good", "params": good},
                {"custom_id": "forced", "params": {**good, **forced("claude-sonnet-5-5")}},
                {"custom_id": "retired", "params": {**good, "model": "claude-opus-4-1"}},
            ]
        )
        while client.messages.batches.retrieve(batch.id).processing_status != "ended":
            time.sleep(0.05)
        results = {r.custom_id: r.result for r in client.messages.batches.results(batch.id)}
        assert results["good"].type == "succeeded"
        jsonschema.validate(json.loads(results["good"].message.content[-1].text), REVIEW_SCHEMA)
        assert results["forced"].error.error.type == "invalid_request_error"
        assert results["retired"].error.error.type == "not_found_error"
        lines = openai_batch_file(
            server, {"reasoning": {"model": "o3", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}}
        )
        done, _ = run_openai_batch(server, lines)
        response = file_lines(server, done.error_file_id)["reasoning"]["response"]
        assert response["status_code"] == 400 and response["body"]["error"]["code"] == "unsupported_parameter"


# --------------------------------------------------------------------------- thinking and per-request prices


def test_thinking_counts_toward_max_tokens_and_is_billed_as_output():
    with FakeProviderServer(thinking_tokens=4000) as server:
        client = anthropic_client(server)
        message = [{"role": "user", "content": "Say something."}]
        cut = client.messages.create(model="claude-sonnet-5-5", max_tokens=3000, messages=message)
        room = client.messages.create(model="claude-sonnet-5-5", max_tokens=6000, messages=message)
        low = client.messages.create(
            model="claude-sonnet-5-5",
            max_tokens=6000,
            messages=message,
            extra_body={"output_config": {"effort": "low"}},
        )
        off = client.messages.create(
            model="claude-sonnet-5-5",
            max_tokens=6000,
            messages=message,
            extra_body={"thinking": {"type": "between_tools"}},
        )
        gpt = chat(openai_client(server), "gpt-6.2-sol", max_completion_tokens=6000)
        entries = server.paid
    assert cut.stop_reason == "max_tokens" and cut.usage.output_tokens == 3000  # all thinking, no answer
    assert [block.type for block in cut.content] == ["thinking", "text"] and cut.content[1].text == ""
    assert room.stop_reason == "end_turn" and room.usage.output_tokens > 4000  # 4,000 at default effort (high)
    assert 1000 <= low.usage.output_tokens < 1200  # low: two steps down, 1,000
    assert off.usage.output_tokens < 200  # between_tools: no up-front thinking
    assert gpt.usage.completion_tokens_details.reasoning_tokens == 4000  # at its default effort (medium)
    # every answered request billed at its own model's list price, thinking as output
    assert entries[1].cost_usd == pytest.approx(
        (entries[1].usage["input_tokens"] * 2 + room.usage.output_tokens * 10) / 1e6
    )
    assert entries[4].cost_usd == pytest.approx(
        (entries[4].usage["input_tokens"] * 2 + 4000 * 10 + (gpt.usage.completion_tokens - 4000) * 10) / 1e6
    )
    assert server.cost(entries) == pytest.approx(sum(entry.cost_usd for entry in entries))


def test_prices_follow_each_requests_model_and_the_batch_cache_ttl():
    system = [{"type": "text", "text": "s" * 8000, "cache_control": {"type": "ephemeral"}}]
    with FakeProviderServer(batch_delay_s=0.05) as server:
        client = anthropic_client(server)
        for model in ("claude-opus-5-5", "claude-sonnet-5-5"):
            client.messages.create(
                model=model, max_tokens=500, system=system, messages=[{"role": "user", "content": "Hi."}]
            )
        hour = [{**system[0], "cache_control": {"type": "ephemeral", "ttl": "1h"}}]
        batch = client.messages.batches.create(
            requests=[
                {
                    "custom_id": "a",
                    "params": {
                        "model": "claude-haiku-5-5",
                        "max_tokens": 500,
                        "system": hour,
                        "messages": [{"role": "user", "content": "Hi."}],
                    },
                }
            ]
        )
        while client.messages.batches.retrieve(batch.id).processing_status != "ended":
            time.sleep(0.05)
        opus, sonnet, batched = [entry for entry in server.paid if entry.completed]
    for entry, (price_in, price_out, write) in (
        (opus, (4, 20, 5)),
        (sonnet, (2, 10, 2.5)),
        (batched, (0.1 / 2, 0.5 / 2, 0.2 / 2)),
    ):  # batch: half, 1-hour write
        usage = entry.usage
        assert usage["cache_creation_input_tokens"] >= 2000
        assert entry.cost_usd == pytest.approx(
            (
                usage["input_tokens"] * price_in
                + usage["output_tokens"] * price_out
                + usage["cache_creation_input_tokens"] * write
            )
            / 1e6
        )
