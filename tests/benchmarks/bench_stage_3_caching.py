"""Benchmark: what prompt caching saves on a 100-item stage-3 run.

Runs scripts/dataset_generation_stage_3.py as a subprocess against the fake provider server
(100 stage-1 items in 5 files, half with a B prompt, one target model, both families, every
quality review accepting) and prices the token usage the server reported: once as billed with
prompt caching (cache writes and reads at their own prices) and once as the same requests would
cost without it (every prompt token at the input price). Prints the numbers; asserts nothing.

    .venv/bin/python tests/benchmarks/bench_stage_3_caching.py [--items 100] [--batch_size 5]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(TESTS), str(TESTS.parent / "scripts")]

from fake_provider_server import FakeProviderServer  # noqa: E402
from providers import Usage, default_prices  # noqa: E402
from test_stage_3_helpers import accept_reviews, run_stage_3, stage_2_item, write_stage_2  # noqa: E402

MODEL = "claude-sonnet-4-5"
FILES = 5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--batch_size", type=int, default=5)
    args = parser.parse_args()
    per_file = -(-args.items // FILES)
    with tempfile.TemporaryDirectory() as tmp, FakeProviderServer(seed=0) as server:
        data_dir = Path(tmp)
        for number in range(FILES):
            items = [stage_2_item("sycophancy", number * per_file + i, ("qwen/qwen3-32b",), with_b=i % 2 == 0,
                                  answer_chars=2000) for i in range(per_file)]
            write_stage_2(data_dir, "sycophancy", items, number=number + 1)
        server.script(accept_reviews)
        started = time.perf_counter()
        result = run_stage_3(server, data_dir, "--names", "sycophancy", "--model", MODEL,
                             "--batch_size", str(args.batch_size), "--intervention_modification", "bench",
                             timeout=1800)
        elapsed = time.perf_counter() - started
        if result.returncode != 0:
            sys.exit(f"stage 3 failed ({result.returncode}): {result.stderr[-2000:]}")
        usage = Usage()
        calls = 0
        for entry in server.ledger:
            if entry.completed and entry.usage:
                calls += 1
                usage += Usage(**{k: entry.usage.get(k, 0) for k in ("input_tokens", "output_tokens",
                                                                       "cache_creation_input_tokens",
                                                                       "cache_read_input_tokens")})
    prices = default_prices()
    prompt = usage.input_tokens + usage.cache_creation_input_tokens + usage.cache_read_input_tokens
    with_caching = prices.cost(usage, MODEL)
    without = prices.cost(Usage(input_tokens=prompt, output_tokens=usage.output_tokens), MODEL)
    print(f"stage 3, {per_file * FILES} items x 1 target model x 2 families, batch_size {args.batch_size}, "
          f"{calls} calls in {elapsed:.1f} s (fake server, {MODEL} prices)")
    print(f"  prompt tokens     {prompt:>12,}  (read from cache {usage.cache_read_input_tokens:,} = "
          f"{100 * usage.cache_read_input_tokens / prompt:.0f}%, written to cache {usage.cache_creation_input_tokens:,})")
    print(f"  output tokens     {usage.output_tokens:>12,}")
    print(f"  cost with caching    ${with_caching:>9.4f}")
    print(f"  cost without caching ${without:>9.4f}")
    print(f"  saved by caching     ${without - with_caching:>9.4f} ({100 * (1 - with_caching / without):.0f}%)")


if __name__ == "__main__":
    main()
