"""The provider layer against the fake provider server over real HTTP, through the official SDKs:
forced tools, re-asks, max_tokens, fail-fast 4xx, injected faults, rate-limit headers, --max_cost,
prompt caching, the response cache, the mock provider and secret hygiene."""

from __future__ import annotations

import asyncio
import json
import logging
import time

import jsonschema
import pytest
from fake_provider import FakeProviderServer

from spt import shared_tools
from spt.providers import (
    CostLimitReached,
    InvalidOutputError,
    LLMClient,
    LLMRequest,
    Message,
    ProviderError,
    RetryPolicy,
    SystemBlock,
    Tool,
    default_registry,
)
from spt.utils import DataError

MODELS = {"anthropic": "claude-sonnet-4-6", "openai": "gpt-4.1", "openrouter": "meta-llama/llama-3.3-70b-instruct"}
FAST_RETRY = RetryPolicy(max_attempts=8, base_s=0.01, cap_s=0.05)
REVIEW_TOOL = Tool(**shared_tools.quality_review_tool())
FAKE_KEY = "sk-fake-key-do-not-leak-7f3a9c"


def make_client(server: FakeProviderServer, provider: str, tmp_path, model: str | None = None, **settings) -> LLMClient:
    base_url = {"anthropic": server.url, "openai": server.openai_base_url, "openrouter": server.openrouter_base_url}[
        provider
    ]
    settings = {"retry": FAST_RETRY, "cache_dir": tmp_path / "cache", **settings}
    return LLMClient(provider, model or MODELS[provider], api_key=FAKE_KEY, base_url=base_url, **settings)


def review_request(provider: str, text: str = "Review this answer.", **fields) -> LLMRequest:
    return LLMRequest(model=MODELS[provider], messages=(Message("user", text),), tool=REVIEW_TOOL, **fields)


def paid_entries(server: FakeProviderServer) -> list:
    return [entry for entry in server.ledger if entry.api in ("anthropic", "openai", "openrouter")]


def first_turn_only(answer: dict):
    """A script that changes only the first answer of a conversation (not the re-asks)."""
    return lambda api, body: answer if len(body["messages"]) == 1 else None


@pytest.mark.parametrize("provider", ["anthropic", "openai", "openrouter"])
def test_json_answer_through_the_official_sdk(fake_server, tmp_path, provider):
    """Each model's registry entry picks the mode: claude-sonnet-4-6 and the OpenRouter Llama a forced tool
    call, gpt-4.1 strict structured output."""

    async def scenario():
        async with make_client(fake_server, provider, tmp_path) as client:
            first = await client.complete(review_request(provider))
            again = await client.complete(review_request(provider))
        return client, first, again

    client, first, again = asyncio.run(scenario())
    jsonschema.validate(first.tool_input, REVIEW_TOOL.input_schema)
    assert first.provider == provider and not first.from_cache
    assert first.usage.output_tokens > 0 and first.cost_usd > 0
    body = paid_entries(fake_server)[0].body
    if provider == "anthropic":
        assert first.stop_reason == "tool_use"
        assert body["tool_choice"] == {"type": "tool", "name": REVIEW_TOOL.name}
        assert body["tools"][0]["cache_control"] == {"type": "ephemeral"}
    elif provider == "openai":
        assert first.stop_reason == "end_turn" and "tools" not in body
        assert body["response_format"]["json_schema"]["strict"] is True
    else:
        assert first.stop_reason == "tool_use" and body["provider"] == {"require_parameters": True}
        assert body["tool_choice"] == {"type": "function", "function": {"name": REVIEW_TOOL.name}}
        assert first.cost_usd == first.extra["provider_cost_usd"]  # OpenRouter's own usage.cost
    # The identical request is answered from the response cache: same answer, nothing paid, nothing sent.
    assert again.from_cache and again.cost_usd == 0 and again.tool_input == first.tool_input
    assert len(paid_entries(fake_server)) == 1
    assert (client.calls_made, client.cache_hits) == (1, 1)


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_malformed_tool_output_is_reasked_and_the_second_answer_used(fake_server, tmp_path, provider):
    fake_server.script(first_turn_only({"fault": "malformed_tool"}))

    async def scenario():
        async with make_client(fake_server, provider, tmp_path) as client:
            return await client.complete(review_request(provider))

    response = asyncio.run(scenario())
    entries = paid_entries(fake_server)
    assert response.attempts == 2 and len(entries) == 2
    jsonschema.validate(response.tool_input, REVIEW_TOOL.input_schema)
    reask = entries[1].body["messages"]
    assert [m["role"] for m in reask] == ["user", "assistant", "user"]
    problems = json.dumps(reask[2]["content"])
    how = "submit_quality_review" if provider == "anthropic" else "as JSON in the required format"  # tool / structured
    assert "problems" in problems and how in problems
    assert response.usage.output_tokens == sum(e.usage["output_tokens"] for e in entries)


def test_validator_problems_are_listed_back_to_the_model(fake_server, tmp_path):
    fake_server.script(
        first_turn_only({"tool_input": {"items": [{"sample": 1, "verdict": "reject", "critique": "too short"}]}})
    )
    seen = []

    def validate(tool_input):
        seen.append(tool_input["items"][0]["critique"])
        return ["critique: must be longer than two words"] if seen[-1] == "too short" else []

    async def scenario():
        async with make_client(fake_server, "anthropic", tmp_path) as client:
            return await client.complete(review_request("anthropic"), validate=validate)

    response = asyncio.run(scenario())
    assert seen[0] == "too short" and response.tool_input["items"][0]["critique"] != "too short"
    reask_text = json.dumps(paid_entries(fake_server)[1].body["messages"][2])
    assert "must be longer than two words" in reask_text


def test_max_tokens_stop_is_retried_then_raised(fake_server, tmp_path):
    fake_server.script(first_turn_only({"stop_reason": "max_tokens"}))

    async def scenario(request):
        async with make_client(fake_server, "anthropic", tmp_path) as client:
            return await client.complete(request)

    response = asyncio.run(scenario(review_request("anthropic")))
    assert response.attempts == 2 and response.stop_reason == "tool_use"
    jsonschema.validate(response.tool_input, REVIEW_TOOL.input_schema)

    fake_server.script(lambda api, body: {"stop_reason": "max_tokens"})
    with pytest.raises(InvalidOutputError) as raised:
        asyncio.run(scenario(review_request("anthropic", "Another task.")))
    assert "cut off" in str(raised.value) and raised.value.last_response.stop_reason == "max_tokens"
    assert raised.value.last_response.attempts == 3


def test_plain_text_cut_off_can_be_accepted_explicitly(fake_server, tmp_path):
    fake_server.script(lambda api, body: {"stop_reason": "max_tokens"})

    async def scenario():
        async with make_client(fake_server, "openrouter", tmp_path) as client:
            request = LLMRequest(model=MODELS["openrouter"], messages=(Message("user", "Write."),), max_tokens=64)
            return await client.complete(request, accept_max_tokens=True)

    response = asyncio.run(scenario())
    assert response.stop_reason == "max_tokens" and response.text and response.attempts == 1


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_4xx_fails_fast_with_the_providers_message(fake_server, tmp_path, provider):
    fake_server.script(lambda api, body: {"status": 400})

    async def scenario():
        async with make_client(fake_server, provider, tmp_path) as client:
            return await client.complete(review_request(provider))

    with pytest.raises(ProviderError) as raised:
        asyncio.run(scenario())
    assert "400" in str(raised.value) and "scripted error" in str(raised.value)
    assert len(paid_entries(fake_server)) == 1  # not retried


def test_every_fault_kind_is_survived_without_duplicates(tmp_path):
    """20% of requests fail at random with every fault kind; all 200 calls, 16 in flight, complete, each once.

    Six answer attempts instead of three: with three, one call in ~5,000 legitimately gets three
    malformed answers in a row and ends in InvalidOutputError, which is not what this test is about."""
    with FakeProviderServer(seed=1, fault_rate=0.2, fault_latency_s=0.05, fault_retry_after_s=0.02) as server:

        async def scenario():
            async with make_client(server, "anthropic", tmp_path, concurrency=16, max_answer_attempts=6) as client:
                requests = [review_request("anthropic", f"Review item {i}.") for i in range(200)]
                return client, await asyncio.gather(*(client.complete(r) for r in requests))

        client, responses = asyncio.run(scenario())
        faults = {entry.fault for entry in server.ledger if entry.fault}
    assert faults >= {"429", "529", "500", "drop", "malformed_tool", "truncated_tool", "latency"}
    assert len(responses) == 200
    for response in responses:
        jsonschema.validate(response.tool_input, REVIEW_TOOL.input_schema)
    assert len({json.dumps(r.tool_input, sort_keys=True) for r in responses}) == 200
    assert server.paid_duplicates() == []
    assert client.retries > 0 and client.reasks > 0


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_rate_limit_headers_tighten_the_limiter(tmp_path, provider):
    with FakeProviderServer(rpm=120, itpm=50_000) as server:

        async def scenario():
            async with make_client(server, provider, tmp_path) as client:
                assert client.limiter.limits.rpm is None
                await client.complete(review_request(provider))
                return client.limiter.limits

        limits = asyncio.run(scenario())
    assert limits.rpm == 120 and limits.itpm == 50_000


def test_429_with_retry_after_is_waited_out(fake_server, tmp_path):
    calls = []

    def script(api, body):
        calls.append(time.monotonic())
        return {"status": 429} if len(calls) == 1 else None

    fake_server.script(script)

    async def scenario():
        async with make_client(
            fake_server, "anthropic", tmp_path, retry=RetryPolicy(max_attempts=3, base_s=0.001, cap_s=5)
        ) as client:
            return await client.complete(review_request("anthropic"))

    assert asyncio.run(scenario()).tool_input is not None
    assert calls[1] - calls[0] >= 0.18  # the fake's retry-after-ms is 200


def test_max_cost_stops_new_calls_and_keeps_what_was_paid(fake_server, tmp_path):
    requests = [review_request("anthropic", f"Item {i}.") for i in range(30)]

    async def scenario(max_cost):
        async with make_client(fake_server, "anthropic", tmp_path, max_cost=max_cost, concurrency=2) as client:
            results = await asyncio.gather(*(client.complete(r) for r in requests), return_exceptions=True)
        return client, results

    client, results = asyncio.run(scenario(0.002))
    stopped = [r for r in results if isinstance(r, CostLimitReached)]
    done = [r for r in results if not isinstance(r, Exception)]
    assert stopped and done and len(stopped) + len(done) == 30
    assert client.cost_usd >= 0.002 and "--max_cost" in str(stopped[0])
    assert len(paid_entries(fake_server)) == len(done)  # no new call started after the limit
    # A rerun without the limit pays only for what is missing.
    client, results = asyncio.run(scenario(None))
    assert not [r for r in results if isinstance(r, Exception)]
    assert client.cache_hits == len(done) and fake_server.paid_duplicates() == []


def test_clients_sharing_a_budget_stop_together(fake_server, tmp_path):
    """A generator and a review model on another provider spend one --max_cost between them."""

    async def scenario():
        async with make_client(fake_server, "anthropic", tmp_path, max_cost=0.001) as generator:
            async with make_client(fake_server, "openrouter", tmp_path, budget=generator.budget) as reviewer:
                while generator.budget.spent_usd < 0.001:
                    await generator.complete(review_request("anthropic", f"Item {generator.calls_made}."))
                with pytest.raises(CostLimitReached):
                    await reviewer.complete(review_request("openrouter"))
                return generator, reviewer

    generator, reviewer = asyncio.run(scenario())
    assert reviewer.calls_made == 0 and generator.cost_usd == generator.budget.spent_usd
    assert not [entry for entry in paid_entries(fake_server) if entry.api == "openrouter"]


def test_prompt_cache_is_read_for_a_shared_prefix(fake_server, tmp_path):
    base_prompt = ("I describe the project and its rules in detail. " * 1300)[:60_000]  # ~15k tokens

    async def scenario():
        async with make_client(fake_server, "anthropic", tmp_path) as client:
            requests = [
                LLMRequest(
                    model=MODELS["anthropic"],
                    system=(SystemBlock(base_prompt, cache=True),),
                    messages=(Message("user", f"Task {i}."),),
                    tool=REVIEW_TOOL,
                )
                for i in range(20)
            ]
            await asyncio.gather(*(client.complete(r) for r in requests))
            return client

    client = asyncio.run(scenario())
    usages = [entry.usage for entry in paid_entries(fake_server)]
    prefix = usages[0]["cache_creation_input_tokens"]
    assert prefix >= 15_000
    read = sum(u["cache_read_input_tokens"] for u in usages)
    assert read / (prefix * len(usages)) >= 0.9
    assert client.usage.cache_read_input_tokens == read


def test_thinking_with_a_tool_uses_auto_tool_choice_and_gets_the_tool_call(fake_server, tmp_path):
    async def scenario():
        async with make_client(fake_server, "anthropic", tmp_path) as client:
            return await client.complete(review_request("anthropic", thinking_budget=1024, max_tokens=4096))

    response = asyncio.run(scenario())
    body = paid_entries(fake_server)[0].body
    assert body["tool_choice"] == {"type": "auto"}  # a forced tool is refused with thinking
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert "submit_quality_review" in body["system"][-1]["text"]
    assert response.tool_input is not None and response.thinking
    assert response.thinking not in json.dumps(response.tool_input)


def test_thinking_answer_without_the_tool_is_reasked_then_fails(fake_server, tmp_path):
    fake_server.script(lambda api, body: {"text": "I would rather just talk."})

    async def scenario():
        async with make_client(fake_server, "anthropic", tmp_path) as client:
            return await client.complete(review_request("anthropic", thinking_budget=1024, max_tokens=4096))

    with pytest.raises(InvalidOutputError) as raised:
        asyncio.run(scenario())
    assert len(paid_entries(fake_server)) == 3 and all(e.status == 200 for e in paid_entries(fake_server))
    assert "did not call the tool" in str(raised.value)
    assert raised.value.last_response.thinking  # thinking text kept apart from the answer


@pytest.mark.parametrize("provider", ["anthropic", "openrouter"])
def test_thinking_text_is_returned_separately(fake_server, tmp_path, provider):
    model = "qwen/qwen3-32b" if provider == "openrouter" else MODELS[provider]  # a model that reasons

    async def scenario():
        async with make_client(fake_server, provider, tmp_path, model) as client:
            request = LLMRequest(
                model=model, messages=(Message("user", "Think."),), max_tokens=4096, thinking_budget=1024
            )
            return await client.complete(request)

    response = asyncio.run(scenario())
    assert response.thinking and response.text and response.thinking not in response.text
    body = paid_entries(fake_server)[0].body
    if provider == "openrouter":
        assert body["reasoning"] == {"max_tokens": 1024}


def test_openrouter_reasoning_switch_is_sent_explicitly(fake_server, tmp_path):
    async def scenario():
        async with make_client(fake_server, "openrouter", tmp_path, "qwen/qwen3-32b") as client:
            for enabled in (False, True):
                await client.complete(
                    LLMRequest(model="qwen/qwen3-32b", messages=(Message("user", "Hi."),), reasoning=enabled, top_k=20)
                )

    asyncio.run(scenario())
    bodies = [entry.body for entry in paid_entries(fake_server)]
    assert [b["reasoning"] for b in bodies] == [{"enabled": False}, {"enabled": True}]
    assert bodies[0]["top_k"] == 20


def test_api_key_appears_in_no_output_log_or_cache_file(fake_server, tmp_path, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    fake_server.script(lambda api, body: {"status": 401} if "fail" in json.dumps(body) else None)

    async def scenario():
        async with make_client(fake_server, "anthropic", tmp_path) as client:
            client.progress_bar(total=2, desc="secret test")
            await client.complete(review_request("anthropic"))
            with pytest.raises(ProviderError) as raised:
                await client.complete(review_request("anthropic", "please fail"))
            return raised.value

    error = asyncio.run(scenario())
    captured = capsys.readouterr()
    texts = [str(error), repr(error.args), caplog.text, captured.out, captured.err]
    texts += [path.read_bytes().decode("latin-1") for path in (tmp_path / "cache").rglob("*") if path.is_file()]
    assert "401" in str(error)
    assert all(FAKE_KEY not in text for text in texts)


def test_identical_concurrent_calls_are_paid_once(tmp_path):
    with FakeProviderServer(latency_s=0.1) as server:

        async def scenario():
            async with make_client(server, "openai", tmp_path) as client:
                request = LLMRequest(model=MODELS["openai"], messages=(Message("user", "Same question."),))
                return await asyncio.gather(*(client.complete(request) for _ in range(5)))

        responses = asyncio.run(scenario())
        assert len(paid_entries(server)) == 1
    assert sorted(r.from_cache for r in responses) == [False, True, True, True, True]
    assert len({r.text for r in responses}) == 1


def test_a_timed_out_request_is_retried(tmp_path):
    arrivals = []
    with FakeProviderServer(fault_latency_s=1.0) as server:
        server.script(lambda api, body: arrivals.append(api) or ({"fault": "latency"} if len(arrivals) == 1 else None))

        async def scenario():
            async with make_client(server, "anthropic", tmp_path, timeout_s=0.3) as client:
                return client, await client.complete(review_request("anthropic"))

        client, response = asyncio.run(scenario())
    jsonschema.validate(response.tool_input, REVIEW_TOOL.input_schema)
    assert client.retries == 1


@pytest.mark.parametrize("provider, fault", [("openai", "insufficient_quota"), ("anthropic", "spend_limit")])
def test_a_429_no_wait_cures_fails_fast_and_stops_the_run(fake_server, tmp_path, provider, fault):
    fake_server.script(lambda api, body: {"fault": fault})

    async def scenario():
        async with make_client(fake_server, provider, tmp_path) as client:
            return await client.complete(review_request(provider))

    with pytest.raises(ProviderError) as raised:
        asyncio.run(scenario())
    assert raised.value.status == 429 and raised.value.fatal and "not retried" in str(raised.value)
    assert len(paid_entries(fake_server)) == 1  # one call, no retry


def test_a_long_request_streams_above_the_sdk_non_streaming_limit(fake_server, tmp_path):
    async def scenario():
        async with make_client(fake_server, "anthropic", tmp_path, "claude-sonnet-5-5") as client:
            # thinking "lowest" (switched off): no room for thinking is added, max_tokens goes as given
            short = await client.complete(
                LLMRequest(
                    model="claude-sonnet-5-5",
                    messages=(Message("user", "a"),),
                    tool=REVIEW_TOOL,
                    max_tokens=21_333,
                    thinking="lowest",
                )
            )
            long = await client.complete(
                LLMRequest(
                    model="claude-sonnet-5-5",
                    messages=(Message("user", "b"),),
                    tool=REVIEW_TOOL,
                    max_tokens=32_000,
                    thinking="lowest",
                )
            )
            return short, long

    short, long = asyncio.run(scenario())
    streamed = [bool(entry.body.get("stream")) for entry in paid_entries(fake_server)]
    assert streamed == [False, True]
    for response in (short, long):  # the streamed answer is assembled like a plain one
        jsonschema.validate(response.tool_input, REVIEW_TOOL.input_schema)
        assert response.thinking == "" or response.thinking not in response.text


def test_openrouter_never_drops_a_parameter_silently(fake_server, tmp_path):
    """OpenRouter drops parameters a model lacks unless provider.require_parameters is set; the client
    always sets it, so a temperature the model cannot take fails at once instead of being ignored."""
    model = "anthropic/claude-sonnet-5.5"  # takes no sampling parameters (the fake's model list)

    async def scenario():
        async with make_client(fake_server, "openrouter", tmp_path, model) as client:
            return await client.complete(LLMRequest(model=model, messages=(Message("user", "Hi."),), temperature=0.5))

    with pytest.raises(ProviderError, match="404"):
        asyncio.run(scenario())
    calls = paid_entries(fake_server)
    assert len(calls) == 1 and calls[0].body["provider"] == {"require_parameters": True}
    assert not calls[0].dropped


def test_a_thinking_block_that_looks_like_json_is_never_read_as_the_answer(fake_server, tmp_path):
    decoy = {"items": [{"sample": 1, "verdict": "reject", "critique": "DECOY FROM THINKING"}]}
    answer = {"items": [{"sample": 1, "verdict": "accept", "critique": "The real answer."}]}
    fake_server.script(lambda api, body: {"thinking": json.dumps(decoy), "tool_input": answer})

    async def scenario():
        async with make_client(fake_server, "anthropic", tmp_path, "claude-sonnet-5-5") as client:
            return await client.complete(
                LLMRequest(model="claude-sonnet-5-5", messages=(Message("user", "a"),), tool=REVIEW_TOOL)
            )

    response = asyncio.run(scenario())
    assert response.tool_input == answer and response.attempts == 1 and "DECOY" not in response.text


def test_max_cost_refuses_an_unpriced_model_naming_the_registry(tmp_path):
    with pytest.raises(DataError, match=r"--max_cost: claude-next-7 has no prices in config/models\.json"):
        LLMClient(
            "anthropic",
            "claude-next-7",
            api_key=FAKE_KEY,
            base_url="http://127.0.0.1:9",
            max_cost=1.0,
            cache_dir=tmp_path,
        )


# ----------------------------------------------------------------------------- thinking room and per-request prices


def test_thinking_gets_room_and_a_max_tokens_stop_is_asked_again_once_with_more(tmp_path):
    with FakeProviderServer(thinking_tokens=6000) as server:

        async def scenario(model, **fields):
            async with make_client(server, "anthropic", tmp_path, model) as client:
                response = await client.complete(
                    LLMRequest(
                        model=model, messages=(Message("user", "Review."),), tool=REVIEW_TOOL, max_tokens=2000, **fields
                    )
                )
                return response, client.max_tokens_retries, client.summary()

        # Opus 5.5 thinks at medium by default: room for it (the registry's allowance) is added to the answer's 2,000
        response, retries, _ = asyncio.run(scenario("claude-opus-5-5"))
        first = server.paid[0]
        assert first.body["max_tokens"] == 2000 + default_registry().thinking_allowance["medium"]
        assert response.stop_reason == "end_turn" and retries == 0 and response.usage.output_tokens > 6000
        # a model that thinks more than the room allows: 10,000 tokens at effort low, room 2,000 + 4,096
        server.thinking_tokens = 20_000
        response, retries, summary = asyncio.run(scenario("claude-opus-5-5", effort="low"))
    cut, again = server.paid[1:]
    assert cut.body["max_tokens"] == 2000 + default_registry().thinking_allowance["low"]
    assert cut.body["output_config"]["effort"] == "low" and cut.usage["output_tokens"] == cut.body["max_tokens"]
    assert again.body["max_tokens"] == 2 * cut.body["max_tokens"] and len(again.body["messages"]) == 1
    assert response.stop_reason == "end_turn" and retries == 1 and response.attempts == 2
    assert "1 max_tokens stops asked again with a larger budget" in summary


def test_every_call_is_priced_at_its_own_models_prices(tmp_path):
    with FakeProviderServer(thinking_tokens=1000) as server:

        async def scenario():
            async with make_client(server, "anthropic", tmp_path, "claude-opus-5-5") as client:
                for model in ("claude-opus-5-5", "claude-sonnet-5-5", "claude-sonnet-5-5"):
                    await client.complete(
                        LLMRequest(
                            model=model,
                            messages=(Message("user", f"Review {model}."),),
                            tool=REVIEW_TOOL,
                            max_tokens=2000,
                        )
                    )
                return client.cost_usd

        reported = asyncio.run(scenario())
        billed = server.cost()
        opus = server.cost([entry for entry in server.paid if entry.body["model"] == "claude-opus-5-5"])
    assert billed > 0 and reported == pytest.approx(billed, rel=1e-6)
    assert opus < billed < 2.5 * opus  # the two Sonnet calls at Sonnet's prices (half Opus's), not Opus's
