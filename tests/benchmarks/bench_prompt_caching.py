"""Benchmark: Anthropic prompt caching of a long shared base prompt.

100 forced-tool calls share a ~15k-token base prompt (a SystemBlock with cache=True) and differ
in the user turn, against the fake provider server (which prices cache writes and reads from the
request's cache breakpoints like the real API). Prints the share of the shared-prefix input
tokens read from the cache (target >= 90%) and the cost with caching against the cost of the same
calls without it. Run: .venv/bin/python tests/benchmarks/bench_prompt_caching.py [--calls 100]
Writes only a temporary folder (the response cache).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
import bench_paths

bench_paths.add_test_code()

from fake_provider import FakeProviderServer

from spt import shared_tools
from spt.providers import LLMClient, LLMRequest, Message, SystemBlock, Tool, Usage

MODEL = "claude-sonnet-4-6"
BASE_PROMPT = ("I explain the project, the topic, the rules for good samples and many worked examples. " * 700)[:60_000]


async def run(calls: int, cache: bool, url: str, cache_dir: Path) -> LLMClient:
    tool = Tool(**shared_tools.quality_review_tool())
    requests = [
        LLMRequest(
            model=MODEL,
            system=(SystemBlock(BASE_PROMPT, cache=cache),),
            messages=(Message("user", f"Review item {i}."),),
            tool=tool,
            max_tokens=512,
        )
        for i in range(calls)
    ]
    client = LLMClient("anthropic", MODEL, api_key="bench-key", base_url=url, cache_dir=cache_dir)
    async with client:
        await asyncio.gather(*(client.complete(r) for r in requests))
    return client


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        with FakeProviderServer() as server:
            cached = asyncio.run(run(args.calls, True, server.url, Path(tmp) / "cached"))
            usages = [e.usage for e in server.paid if e.api == "anthropic"]
        with FakeProviderServer() as server:
            uncached = asyncio.run(run(args.calls, False, server.url, Path(tmp) / "uncached"))
    prefix = usages[0]["cache_creation_input_tokens"]
    read = sum(u["cache_read_input_tokens"] for u in usages)
    no_cache_usage = Usage(
        input_tokens=cached.usage.input_tokens
        + cached.usage.cache_creation_input_tokens
        + cached.usage.cache_read_input_tokens,
        output_tokens=cached.usage.output_tokens,
    )
    print(
        f"{args.calls} calls sharing a {prefix}-token prefix: {read / (prefix * len(usages)):.1%} of the "
        f"shared-prefix input tokens read from the cache (target >= 90%)"
    )
    print(
        f"cost with caching ${cached.cost_usd:.4f}; same tokens priced without caching "
        f"${cached.info.cost(no_cache_usage):.4f}; measured run without breakpoints "
        f"${uncached.cost_usd:.4f}"
    )


if __name__ == "__main__":
    main()
