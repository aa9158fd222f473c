"""Resuming after a crash: kill -9 in the middle of 200 calls pays nothing twice on the rerun, and
Anthropic Message Batches (--batch_api) round-trip and resume after a restart without a new batch."""
from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import jsonschema
import pytest

import shared_tools
import utils
from fake_provider_server import FakeProviderServer
from providers import LLMClient, LLMRequest, Message, RetryPolicy, Tool
from providers.response_cache import CACHE_FILE_NAME

WORKER = utils.REPO_ROOT / "tests" / "benchmarks" / "provider_kill_worker.py"
REVIEW_TOOL = Tool(**shared_tools.quality_review_tool())
MODEL = "claude-sonnet-4-6"
FAST_RETRY = RetryPolicy(max_attempts=8, base_s=0.01, cap_s=0.05)


def wait_for(condition, timeout_s: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def cached_rows(cache_dir: Path) -> int:
    path = cache_dir / CACHE_FILE_NAME
    if not path.exists():
        return 0
    with sqlite3.connect(path, timeout=10) as db:
        try:
            return db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
        except sqlite3.OperationalError:
            return 0


def run_worker(server: FakeProviderServer, tmp_path: Path) -> subprocess.Popen:
    command = [sys.executable, str(WORKER), "--base_url", server.url, "--cache_dir", str(tmp_path / "cache"),
               "--out", str(tmp_path / "results.json"), "--n", "200", "--concurrency", "16"]
    return subprocess.Popen(command, cwd=utils.REPO_ROOT, env={**os.environ, **server.env()},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_kill_9_mid_run_then_rerun_pays_nothing_twice(tmp_path):
    """The worker is killed with 16 requests in flight. Those in-flight requests are then failed
    (their answer would only reach a dead process) so the ledger isolates the property under test:
    no call that completed before the kill is paid for again by the rerun."""
    gate_closed, killed = threading.Event(), threading.Event()
    kill_after = 80

    with FakeProviderServer(seed=3) as server:
        def script(api, body):
            if len(server.completed_keys()) >= kill_after:
                gate_closed.set()
                killed.wait(30)
                return {"fault": "drop"}
            return None

        server.script(script)
        worker = run_worker(server, tmp_path)
        wait_for(gate_closed.is_set, what="the first 80 answers")
        completed_before_kill = len(server.completed_keys())
        # Every answer the worker received is committed to its cache before complete() returns.
        wait_for(lambda: cached_rows(tmp_path / "cache") >= completed_before_kill, what="the cache commits")
        worker.kill()
        worker.wait(10)
        killed.set()
        assert worker.returncode == -9 and not (tmp_path / "results.json").exists()
        server.script(None)

        rerun = run_worker(server, tmp_path)
        out, err = rerun.communicate(timeout=120)
        assert rerun.returncode == 0, err
        assert server.paid_duplicates() == []
        assert len(set(server.completed_keys())) == 200
        assert f"{completed_before_kill} from the response cache" in out

    results = json.loads((tmp_path / "results.json").read_text())
    assert sorted(results, key=int) == [str(i) for i in range(200)]
    for tool_input in results.values():
        jsonschema.validate(tool_input, REVIEW_TOOL.input_schema)
    assert len({json.dumps(r, sort_keys=True) for r in results.values()}) == 200


def batch_client(server: FakeProviderServer, tmp_path: Path) -> LLMClient:
    return LLMClient("anthropic", MODEL, api_key="fake-anthropic-key", base_url=server.url,
                     cache_dir=tmp_path / "cache", batch_api=True, batch_idle_s=0.1, batch_poll_s=0.05,
                     retry=FAST_RETRY)


def batch_requests(n: int) -> list[LLMRequest]:
    return [LLMRequest(model=MODEL, messages=(Message("user", f"Batch item {i}."),), tool=REVIEW_TOOL)
            for i in range(n)]


def batch_creations(server: FakeProviderServer) -> list:
    return [e for e in server.ledger if e.api == "batch_control" and e.path == "/v1/messages/batches"
            and e.body is not None]


def test_batch_api_round_trip_at_half_price(tmp_path):
    with FakeProviderServer(batch_delay_s=0.2) as server:
        async def scenario():
            async with batch_client(server, tmp_path) as client:
                return client, await asyncio.gather(*(client.complete(r) for r in batch_requests(12)))

        client, responses = asyncio.run(scenario())
        assert len(batch_creations(server)) == 1                # micro-batched into one batch
        assert [e.api for e in server.ledger if e.completed and e.api != "batch_control"] == ["anthropic_batch"] * 12
        assert server.paid_duplicates() == []
    for response in responses:
        jsonschema.validate(response.tool_input, REVIEW_TOOL.input_schema)
    full_price = client.prices.cost(client.usage, MODEL)
    assert abs(client.cost_usd - full_price / 2) < 1e-9
    records = list((tmp_path / "cache" / "batches").glob("*.json"))
    assert len(records) == 1 and json.loads(records[0].read_text())["ended"] is True


def test_batch_resumes_after_restart_without_paying_again(tmp_path):
    with FakeProviderServer(batch_delay_s=1.0) as server:
        async def crash_while_polling():
            async with batch_client(server, tmp_path) as client:
                tasks = [asyncio.create_task(client.complete(r)) for r in batch_requests(8)]
                batches_dir = tmp_path / "cache" / "batches"
                while not list(batches_dir.glob("*.json")) if batches_dir.exists() else True:
                    await asyncio.sleep(0.02)
                for task in tasks:   # the run dies after submitting, before the batch ends
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run(crash_while_polling())
        record = json.loads(next((tmp_path / "cache" / "batches").glob("*.json")).read_text())
        assert record["ended"] is False and len(record["requests"]) == 8

        async def rerun():
            async with batch_client(server, tmp_path) as client:
                return await asyncio.gather(*(client.complete(r) for r in batch_requests(8)))

        responses = asyncio.run(rerun())
        assert len(batch_creations(server)) == 1                 # polled the recorded batch, no new one
        assert server.paid_duplicates() == []
        assert len(server.completed_keys()) == 8
    assert all(r.tool_input for r in responses)
    record = json.loads(next((tmp_path / "cache" / "batches").glob("*.json")).read_text())
    assert record["ended"] is True
