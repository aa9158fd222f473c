"""Benchmark: what a 100-item stage-3 run costs, and what prompt caching and the batched quality
review save.

Runs scripts/dataset_generation_stage_3.py as a subprocess against the fake provider server
(100 stage-1 items in 5 files, half with a B prompt, one target model, both families). The
scripted quality reviewer rejects the first version of every --reject_every-th item (0: accepts
everything) and accepts all else, so rewrites happen. Prints, from the server's ledger:

- calls by kind (generation, rewrite, review; re-asks included and also counted apart);
- prompt and output tokens, and the cache writes per distinct cached prefix (the tool and system
  blocks up to the last cache breakpoint): a prefix written more than once was written by calls
  that could have read it;
- cost with caching, as billed (cache writes and reads at their own prices), in all and per
  written intervention;
- cost with caching / cost of the same calls without caching (every prompt token at the input
  price);
- cost with caching / the published pipeline's token usage at the same prices. "Published
  pipeline" = the same work done the way the published data was made: one quality-review call
  and one rewrite call per item, no prompt caching. It is derived from this run's calls: a review
  or rewrite call of n samples counts as n calls that each send the call's cached prefix again,
  every prompt token at the input price; generation calls count as they were made. For a run
  that already reviews item by item the two ratios are the same.

    .venv/bin/python tests/benchmarks/bench_stage_3_caching.py [--items 100] [--batch_size 5] [--reject_every 5]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
import bench_paths

bench_paths.add_test_code()

from fake_provider import FakeProviderServer, anthropic_prompt_parts
from test_stage_3_helpers import (
    call_kind,
    item_count,
    review_answer,
    run_stage_3,
    stage_2_item,
    variants,
    write_stage_2,
)

from spt.providers import Usage, default_registry
from spt.shared_tools import ERROR_FLAG, SPLIT_PERSONALITY_TOKEN

MODEL = "claude-sonnet-5-5"
FILES = 5
KINDS = ("generation", "rewrite", "review")


def rejecting_reviewer(every: int):
    """A review script rejecting the first version of every `every`-th item (per variant and family)."""
    rejected, lock = set(), threading.Lock()

    def verdict(number: int, text: str) -> tuple[str, str]:
        task = int(re.search(r"TASK-(\d+)", text).group(1))
        key = (task, "added pressure" in text.split("</system_prompt_used>")[0], SPLIT_PERSONALITY_TOKEN in text)
        with lock:
            if every and task % every == 0 and key not in rejected:
                rejected.add(key)
                return "reject", "Name the concrete error in the response and say why it matters."
        return "accept", "Specific, first person and correctly flagged."

    return lambda api, body: review_answer(body, verdict) if call_kind(body) == "review" else None


def prefix_id(body: dict) -> str:
    """The identity of a request's cached prefix: its prompt parts up to the last cache breakpoint."""
    parts = anthropic_prompt_parts(body)
    end = max(i for i, (_, breakpoint) in enumerate(parts) if breakpoint) + 1
    return hashlib.sha256(json.dumps([body["model"]] + [text for text, _ in parts[:end]]).encode()).hexdigest()


def written_interventions(data_dir: Path) -> int:
    docs = (json.loads(path.read_text()) for path in (data_dir / "stage_3").rglob("*.json"))
    return sum(
        record["P"] != ERROR_FLAG
        for doc in docs
        for *_, entry in variants(doc)
        for record in entry.get("interventions", {}).values()
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--batch_size", type=int, default=5)
    parser.add_argument(
        "--reject_every",
        type=int,
        default=5,
        help="the reviewer rejects the first version of every N-th item (0: none)",
    )
    args = parser.parse_args()
    per_file = -(-args.items // FILES)
    with tempfile.TemporaryDirectory() as tmp, FakeProviderServer(seed=0) as server:
        data_dir = Path(tmp)
        for number in range(FILES):
            items = [
                stage_2_item(
                    "sycophancy", number * per_file + i, ("qwen/qwen3-32b",), with_b=i % 2 == 0, answer_chars=2000
                )
                for i in range(per_file)
            ]
            write_stage_2(data_dir, "sycophancy", items, number=number + 1)
        server.script(rejecting_reviewer(args.reject_every))
        started = time.perf_counter()
        result = run_stage_3(
            server,
            data_dir,
            "--names",
            "sycophancy",
            "--model",
            MODEL,
            "--batch_size",
            str(args.batch_size),
            "--intervention_modification",
            "bench",
            timeout=1800,
        )
        elapsed = time.perf_counter() - started
        if result.returncode != 0:
            sys.exit(f"stage 3 failed ({result.returncode}): {result.stderr[-2000:]}")
        written = written_interventions(data_dir)
        entries = [entry for entry in server.paid if entry.completed and entry.usage]

    usage, published = Usage(), Usage()
    calls, reasks, writes, prefix_kind, prefix_tokens = Counter(), Counter(), Counter(), {}, {}
    for entry in entries:
        call = Usage(
            **{
                k: entry.usage.get(k, 0)
                for k in ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
            }
        )
        usage += call
        kind, prefix = call_kind(entry.body), prefix_id(entry.body)
        calls[kind] += 1
        reasks[kind] += len(entry.body["messages"]) > 1
        cached = call.cache_creation_input_tokens + call.cache_read_input_tokens
        prefix_kind[prefix], prefix_tokens[prefix] = kind if kind != "rewrite" else "generation", cached
        writes[prefix] += call.cache_creation_input_tokens > 0
        repeats = item_count(entry.body) if kind in ("review", "rewrite") else 1
        published += Usage(input_tokens=call.input_tokens + repeats * cached, output_tokens=call.output_tokens)

    model = default_registry().lookup(MODEL)
    prompt = usage.input_tokens + usage.cache_creation_input_tokens + usage.cache_read_input_tokens
    with_caching = model.cost(usage)
    without = model.cost(Usage(input_tokens=prompt, output_tokens=usage.output_tokens))
    published_cost = model.cost(published)
    print(
        f"stage 3, {per_file * FILES} items x 1 target model x 2 families, batch_size {args.batch_size}, "
        f"reviewer rejects the first version of every {args.reject_every or 'no'}-th item; "
        f"{len(entries)} calls in {elapsed:.1f} s (fake server, {MODEL} prices)"
    )
    print("  calls             " + ", ".join(f"{kind} {calls[kind]} ({reasks[kind]} re-asks)" for kind in KINDS))
    print(f"  interventions     {written:>12,}")
    print(
        f"  prompt tokens     {prompt:>12,}  (read from cache {usage.cache_read_input_tokens:,} = "
        f"{100 * usage.cache_read_input_tokens / prompt:.0f}%, written to cache {usage.cache_creation_input_tokens:,})"
    )
    print(f"  output tokens     {usage.output_tokens:>12,}")
    for kind in ("generation", "review"):
        prefixes = sorted((p for p in prefix_kind if prefix_kind[p] == kind), key=lambda p: -writes[p])
        print(
            f"  {kind} prefixes: {len(prefixes)} distinct, {sum(writes[p] for p in prefixes)} cache writes "
            f"(per prefix: {', '.join(f'{writes[p]} x {prefix_tokens[p]:,} tokens' for p in prefixes)})"
        )
    print(f"  cost with caching    ${with_caching:>9.4f}  (${with_caching / written:.5f} per intervention)")
    print(f"  cost without caching ${without:>9.4f}  (same calls; ratio with/without {with_caching / without:.3f})")
    print(
        f"  published pipeline   ${published_cost:>9.4f}  (one review and rewrite call per item, no caching; "
        f"ratio with caching/published {with_caching / published_cost:.3f})"
    )


if __name__ == "__main__":
    main()
