"""--batch_api: calls go through the fake server's Anthropic Message Batches or OpenAI Batch API (JSONL
upload + batch), come back at the batch price, and a batch recorded by a run that died is polled by
the rerun instead of being submitted again."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

import jsonschema
import pytest
from fake_provider import PAID_APIS, FakeProviderServer

from spt import shared_tools
from spt.providers import (
    LLMClient,
    LLMRequest,
    Message,
    ProviderError,
    RetryPolicy,
    SystemBlock,
    Tool,
    add_provider_arguments,
    client_from_args,
)
from spt.utils import DataError

REVIEW_TOOL = Tool(**shared_tools.quality_review_tool())
MODELS = {"anthropic": "claude-sonnet-4-6", "openai": "gpt-4.1"}
PAID_API = {"anthropic": "anthropic_batch", "openai": "openai_batch"}
CREATE_PATH = {"anthropic": "/v1/messages/batches", "openai": "/v1/batches"}
MODEL = MODELS["openai"]
FAST_RETRY = RetryPolicy(max_attempts=4, base_s=0.01, cap_s=0.05)


def batch_client(server: FakeProviderServer, tmp_path: Path, provider: str = "openai") -> LLMClient:
    base_url = server.url if provider == "anthropic" else server.openai_base_url
    return LLMClient(
        provider,
        MODELS[provider],
        api_key="fake-key",
        base_url=base_url,
        cache_dir=tmp_path / "cache",
        batch_api=True,
        batch_idle_s=0.1,
        batch_poll_s=0.05,
        retry=FAST_RETRY,
    )


def batch_requests(n: int, provider: str = "openai") -> list[LLMRequest]:
    return [
        LLMRequest(model=MODELS[provider], messages=(Message("user", f"Batch item {i}."),), tool=REVIEW_TOOL)
        for i in range(n)
    ]


def batch_creations(server: FakeProviderServer, provider: str = "openai") -> list:
    return [
        e for e in server.ledger if e.api == "batch_control" and e.path == CREATE_PATH[provider] and e.body is not None
    ]


def batch_records(tmp_path: Path) -> list[dict]:
    return [json.loads(path.read_text()) for path in (tmp_path / "cache" / "batches").glob("*.json")]


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_batch_round_trip_at_half_price(tmp_path, provider):
    with FakeProviderServer(batch_delay_s=0.2) as server:

        async def scenario():
            async with batch_client(server, tmp_path, provider) as client:
                return client, await asyncio.gather(*(client.complete(r) for r in batch_requests(12, provider)))

        client, responses = asyncio.run(scenario())
        assert len(batch_creations(server, provider)) == 1  # micro-batched into one batch
        paid = [e.api for e in server.ledger if e.completed and e.api in PAID_APIS]
        assert paid == [PAID_API[provider]] * 12 and server.paid_duplicates() == []
    for response in responses:
        jsonschema.validate(response.tool_input, REVIEW_TOOL.input_schema)
        assert response.provider == provider
    assert len({json.dumps(r.tool_input, sort_keys=True) for r in responses}) == 12
    full_price = client.info.cost(client.usage)
    assert full_price > 0 and abs(client.cost_usd - full_price / 2) < 1e-9
    [record] = batch_records(tmp_path)
    assert record["ended"] is True and len(record["requests"]) == 12 and record["provider"] == provider
    if provider == "openai":
        assert record["input_file_id"].startswith("file-")  # the requests went up as a JSONL file


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_batch_resumes_after_restart_without_paying_again(tmp_path, provider):
    with FakeProviderServer(batch_delay_s=1.0) as server:

        async def crash_while_polling():
            async with batch_client(server, tmp_path, provider) as client:
                tasks = [asyncio.create_task(client.complete(r)) for r in batch_requests(8, provider)]
                batches_dir = tmp_path / "cache" / "batches"
                while not list(batches_dir.glob("*.json")) if batches_dir.exists() else True:
                    await asyncio.sleep(0.02)
                for task in tasks:  # the run dies after submitting, before the batch ends
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run(crash_while_polling())
        [record] = batch_records(tmp_path)
        assert record["ended"] is False and len(record["requests"]) == 8
        assert server.completed_keys() == []  # the batch had not run yet

        async def rerun():
            async with batch_client(server, tmp_path, provider) as client:
                return client, await asyncio.gather(*(client.complete(r) for r in batch_requests(8, provider)))

        client, responses = asyncio.run(rerun())
        assert len(batch_creations(server, provider)) == 1  # polled the recorded batch, no new one
        assert server.paid_duplicates() == [] and len(server.completed_keys()) == 8
    assert all(r.tool_input for r in responses) and client.calls_made == 8
    [record] = batch_records(tmp_path)
    assert record["ended"] is True


def test_failed_batch_requests_are_resubmitted_and_invalid_ones_fail_fast(tmp_path):
    first_tries: set[str] = set()

    def script(api, body):
        content = body["messages"][-1]["content"]
        if content == "Batch item 0." and content not in first_tries:  # overloaded once, then answered
            first_tries.add(content)
            return {"status": 500}
        if content == "Batch item 1.":  # rejected every time
            return {"status": 400}
        return None

    with FakeProviderServer(batch_delay_s=0.05) as server:
        server.script(script)

        async def scenario():
            async with batch_client(server, tmp_path) as client:
                return await asyncio.gather(*(client.complete(r) for r in batch_requests(3)), return_exceptions=True)

        answered, rejected, plain = asyncio.run(scenario())
        assert len(batch_creations(server)) == 2  # the 500 went into a second batch; the 400 did not
    assert answered.tool_input and plain.tool_input
    assert isinstance(rejected, ProviderError) and "HTTP 400" in str(rejected)


def test_batch_api_flag_reaches_openai_and_is_refused_for_openrouter(monkeypatch, tmp_path):
    monkeypatch.setenv("OPENAI_API_KEY", "fake-openai-key")
    monkeypatch.setenv("OPENROUTER_API_KEY", "fake-openrouter-key")
    parser = argparse.ArgumentParser()
    add_provider_arguments(parser)
    parser.add_argument("--model")
    client = client_from_args(parser.parse_args(["--model", MODEL, "--batch_api", "--cache_dir", str(tmp_path)]))
    assert client.provider == "openai" and client.batch_api
    with pytest.raises(DataError, match=r"not openrouter \(OpenRouter has no batch API\)"):
        client_from_args(parser.parse_args(["--model", "qwen/qwen3-32b", "--batch_api"]))


def test_message_batches_cache_for_an_hour_and_are_priced_so(tmp_path):
    shared = SystemBlock("Judge the review below. " * 200, cache=True)  # ~1,200 tokens: cacheable
    with FakeProviderServer(batch_delay_s=0.2) as server:

        async def scenario():
            client = LLMClient(
                "anthropic",
                "claude-sonnet-5-5",
                api_key="fake-key",
                base_url=server.url,
                cache_dir=tmp_path / "cache",
                batch_api=True,
                batch_idle_s=0.1,
                batch_poll_s=0.05,
                retry=FAST_RETRY,
            )
            async with client:
                await asyncio.gather(
                    *(
                        client.complete(
                            LLMRequest(
                                model="claude-sonnet-5-5",
                                system=(shared,),
                                messages=(Message("user", f"Review {i}."),),
                                tool=REVIEW_TOOL,
                                thinking="lowest",
                            )
                        )
                        for i in range(4)
                    )
                )
            return client

        client = asyncio.run(scenario())
        [creation] = batch_creations(server, "anthropic")
        billed = server.cost()
    marks = [
        block["cache_control"]
        for request in creation.body["requests"]
        for block in request["params"]["system"]
        if "cache_control" in block
    ]
    assert marks and all(mark == {"type": "ephemeral", "ttl": "1h"} for mark in marks)
    assert client.usage.cache_creation_input_tokens > 0
    assert client.cost_usd == pytest.approx(billed, rel=1e-6)  # cache writes at the 1-hour price, half off
