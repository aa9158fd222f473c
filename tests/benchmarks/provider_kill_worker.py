"""Worker for the kill -9 test (tests/providers/test_providers_resume.py): N forced-tool calls through LLMClient.

Usage: python tests/benchmarks/provider_kill_worker.py --provider anthropic --base_url URL --cache_dir DIR
       --out results.json [--n 200] [--concurrency 16]
Reads the API key from the environment; writes the response cache under --cache_dir and, once all
calls are answered, `--out` ({"0": tool_input, ...}) atomically.
"""

from __future__ import annotations

import argparse
import asyncio
import os

from spt import shared_tools, utils
from spt.providers import LLMClient, LLMRequest, Message, RetryPolicy, Tool
from spt.providers.registry import PROVIDERS

MODELS = {"anthropic": "claude-sonnet-4-6", "openai": "gpt-4.1", "openrouter": "qwen/qwen3-32b"}


def requests(n: int, model: str) -> list[LLMRequest]:
    tool = Tool(**shared_tools.quality_review_tool())
    return [
        LLMRequest(model=model, messages=(Message("user", f"Review item number {i}."),), tool=tool, max_tokens=512)
        for i in range(n)
    ]


async def run(args: argparse.Namespace) -> None:
    client = LLMClient(
        args.provider,
        MODELS[args.provider],
        api_key=os.environ[PROVIDERS[args.provider].api_key_variable],
        base_url=args.base_url,
        cache_dir=args.cache_dir,
        concurrency=args.concurrency,
        retry=RetryPolicy(max_attempts=8, base_s=0.01, cap_s=0.1),
    )
    async with client:
        responses = await asyncio.gather(*(client.complete(r) for r in requests(args.n, MODELS[args.provider])))
    utils.atomic_write_json(args.out, {str(i): r.tool_input for i, r in enumerate(responses)})
    print(client.summary(), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--provider", default="anthropic", choices=sorted(MODELS))
    parser.add_argument("--base_url", required=True)
    parser.add_argument("--cache_dir", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
