"""Benchmark: does one process saturate a provider's rate limit?

500 forced-tool calls through LLMClient against the fake provider server (its own process, 200 ms
latency, enforcing 3000 requests/minute); the client is told the same limit (--rpm 3000). The
limit-bound time is 500 / 3000 min = 10 s; the target is a ratio of at most 1.11. Prints the wall
time, the ratio and the 429s the server had to send.
Run: .venv/bin/python tests/benchmarks/bench_provider_throughput.py [--calls 500] [--rpm 3000] [--latency 0.2]
Writes only a temporary folder (the response cache and the server ledger).
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
import bench_paths

bench_paths.add_test_code()

from fake_provider import read_ledger

from spt import shared_tools
from spt.providers import LLMClient, LLMRequest, Message, RateLimits, RetryPolicy, Tool


def start_server(args: argparse.Namespace, ledger: Path) -> tuple[subprocess.Popen, str]:
    server = subprocess.Popen(
        [
            sys.executable,
            str(REPO_ROOT / "tests" / "fake_provider"),
            "--port",
            "0",
            "--latency",
            str(args.latency),
            "--rpm",
            str(args.rpm),
            "--ledger_path",
            str(ledger),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    return server, server.stdout.readline().strip()


async def run_calls(args: argparse.Namespace, url: str, cache_dir: Path) -> float:
    tool = Tool(**shared_tools.quality_review_tool())
    requests = [
        LLMRequest(
            model="claude-sonnet-4-6", messages=(Message("user", f"Review item {i}."),), tool=tool, max_tokens=512
        )
        for i in range(args.calls)
    ]
    client = LLMClient(
        "anthropic",
        "claude-sonnet-4-6",
        api_key="bench-key",
        base_url=url,
        cache_dir=cache_dir,
        concurrency=args.concurrency,
        rate_limits=RateLimits(rpm=args.rpm),
        retry=RetryPolicy(max_attempts=8, base_s=0.1, cap_s=2.0),
    )
    async with client:
        await client.complete(requests[0])  # connection set-up and SDK import, not timed
        start = time.perf_counter()
        await asyncio.gather(*(client.complete(r) for r in requests[1:]))
        elapsed = time.perf_counter() - start
    return elapsed * args.calls / (args.calls - 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--rpm", type=int, default=3000)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ledger = Path(tmp) / "ledger.jsonl"
        server, url = start_server(args, ledger)
        try:
            elapsed = asyncio.run(run_calls(args, url, Path(tmp) / "cache"))
        finally:
            server.terminate()
            server.wait(10)
        entries = read_ledger(ledger)
    bound = args.calls / args.rpm * 60
    rejected = sum(1 for e in entries if e.status == 429)
    print(
        f"{args.calls} calls, {args.latency * 1000:.0f} ms latency, limit {args.rpm} rpm: "
        f"{elapsed:.2f} s (limit-bound {bound:.2f} s) -> ratio {elapsed / bound:.3f} (target <= 1.11); "
        f"429s from the server: {rejected}"
    )


if __name__ == "__main__":
    main()
