"""Resuming after a crash: kill -9 in the middle of 200 calls pays nothing twice on the rerun.
(Provider batch jobs resume too: tests/providers/test_providers_batch.py.)"""

from __future__ import annotations

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
from fake_provider import FakeProviderServer
from repo import REPO_ROOT

from spt import shared_tools
from spt.providers import Tool
from spt.providers.response_cache import CACHE_FILE_NAME

WORKER = REPO_ROOT / "tests" / "benchmarks" / "provider_kill_worker.py"
REVIEW_TOOL = Tool(**shared_tools.quality_review_tool())
MODEL = "claude-sonnet-4-6"


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
    command = [
        sys.executable,
        str(WORKER),
        "--base_url",
        server.url,
        "--cache_dir",
        str(tmp_path / "cache"),
        "--out",
        str(tmp_path / "results.json"),
        "--n",
        "200",
        "--concurrency",
        "16",
    ]
    return subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env={**os.environ, **server.env()},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


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
