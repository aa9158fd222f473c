"""Benchmark: stages 1 -> 3 against a fake whose models think, and what stage 3's thinking costs.

Issue 19, must show 1. The fake provider server thinks --thinking_tokens per call at each model's
default effort (an assumption; thinking counts toward max_tokens and is billed as output). Runs,
as subprocesses of the checkout given by --repo (default: this one; point it at an export of an
older commit to measure "before" against the same fake):

- stage 1: 2 batches x 5 items of one topic (--stage_1_model, default claude-opus-5-5);
- stage 2: --target (default qwen/qwen3-32b on OpenRouter);
- stage 3: both families, --batch_size 2 (--model, default claude-sonnet-5-5; --review_model).

Prints, from the server's ledger, for stage 3: interventions valid of written, calls cut off at
max_tokens (and how many interventions still failed), the cost billed at each call's own model's
prices and the cost the run reported (must show 3 with --review_model),
and the cost of the published pipeline's calls on the same model with the same default thinking
(one quality-review and one rewrite call per item, no prompt caching, each call thinking
--thinking_tokens), and their ratio.

    PYTHONPATH=scripts:tests python tests/benchmarks/bench_thinking_cost.py [--repo DIR] [--thinking_tokens 4000]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import bench_paths

bench_paths.add_test_code()

from fake_provider import FakeProviderServer, bill
from test_stage_3_helpers import call_kind, item_count, variants

TOPIC = "sycophancy"
UNLIMITED = ("--rpm", "0", "--itpm", "0", "--otpm", "0")
VALID = ("PASS", "FAIL", "AMBIGUOUS")


def run(repo: Path, server: FakeProviderServer, data_dir: Path, script: str, *args: str) -> str:
    env = {
        **os.environ,
        **server.env(),
        "SPT_DATA_DIR": str(data_dir),
        "PYTHONPATH": os.pathsep.join(str(repo / folder) for folder in ("scripts", "training", ".")),
    }
    result = subprocess.run(
        [sys.executable, str(repo / "scripts" / script), *args],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if result.returncode not in (0, 1):
        sys.exit(f"{script} failed ({result.returncode}): {result.stderr[-3000:]}")
    print(f"  {script}: exit {result.returncode}; " + result.stdout.strip().splitlines()[-1][:150])
    return result.stdout


def published_cost(entries: list, default_thinking: int) -> float:
    """The same work as the published pipeline did it: a review or rewrite call of n samples counts as n
    calls that each send the call's cached prefix again (every prompt token at the input price), every call
    thinking `default_thinking` tokens at the default effort; generation calls count as they were made."""
    total = 0.0
    for entry in entries:
        usage = entry.usage
        repeats = item_count(entry.body) if call_kind(entry.body) in ("review", "rewrite") else 1
        cached = usage["cache_creation_input_tokens"] + usage["cache_read_input_tokens"]
        answer = usage["output_tokens"] - usage.get("thinking_tokens", 0)
        total += bill(
            entry.api,
            entry.body,
            {
                "input_tokens": usage["input_tokens"] + repeats * cached,
                "output_tokens": answer + repeats * default_thinking,
            },
        )
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--repo",
        type=Path,
        default=bench_paths.TESTS.parent,
        help="the checkout whose stage scripts run (default: this one)",
    )
    parser.add_argument("--thinking_tokens", type=int, default=4000)
    parser.add_argument("--stage_1_model", default="claude-opus-5-5")
    parser.add_argument("--target", default="qwen/qwen3-32b")
    parser.add_argument("--model", default="claude-sonnet-5-5")
    parser.add_argument("--review_model", help="stage 3's quality-review model (default: --model)")
    args = parser.parse_args()
    repo = args.repo.resolve()
    print(f"scripts of {repo}; the fake thinks {args.thinking_tokens} tokens per call at the default effort")
    with (
        tempfile.TemporaryDirectory() as tmp,
        FakeProviderServer(seed=0, thinking_tokens=args.thinking_tokens) as server,
    ):
        data_dir = Path(tmp)
        run(
            repo,
            server,
            data_dir,
            "dataset_generation_stage_1.py",
            "--names",
            TOPIC,
            "--num_batches",
            "2",
            "--num_items_per_batch",
            "5",
            "--model",
            args.stage_1_model,
            *UNLIMITED,
        )
        run(
            repo,
            server,
            data_dir,
            "dataset_generation_stage_2.py",
            "--names",
            TOPIC,
            "--inference",
            "openrouter",
            "--model",
            args.target,
            *UNLIMITED,
        )
        before = len(server.paid)
        review = ("--review_model", args.review_model) if args.review_model else ()
        output = run(
            repo,
            server,
            data_dir,
            "dataset_generation_stage_3.py",
            "--names",
            TOPIC,
            "--model",
            args.model,
            *review,
            "--batch_size",
            "2",
            "--intervention_modification",
            "bench",
            *UNLIMITED,
        )
        stage_3 = [entry for entry in server.paid[before:] if entry.completed and entry.usage]
        records = [
            record
            for path in sorted((data_dir / "stage_3").rglob("*.json"))
            for *_, entry in variants(json.loads(path.read_text()))
            for record in entry.get("interventions", {}).values()
        ]
    valid = sum(record["P"] in VALID for record in records)
    cut = [entry for entry in stage_3 if entry.usage["output_tokens"] >= entry.body["max_tokens"]]
    failed_cut = sum("cut off" in record.get("error", "") for record in records)
    cost = sum(entry.cost_usd for entry in stage_3)
    published = published_cost(stage_3, args.thinking_tokens)
    reported = float(re.findall(r"cost \$([0-9.]+)", output)[-1])
    models = args.model + (f", reviews by {args.review_model}" if args.review_model else "")
    print(f"stage 3 ({models}, both families, --batch_size 2): {valid} of {len(records)} interventions valid")
    print(f"  calls {len(stage_3)}, cut off at max_tokens {len(cut)}, interventions failed by a cut-off {failed_cut}")
    print(f"  cost billed at the model's prices  ${cost:.4f}")
    print(
        f"  published pipeline's calls         ${published:.4f}  (default thinking {args.thinking_tokens} tokens "
        "per call, one review and rewrite call per item, no caching)"
    )
    print(f"  ratio                              {cost / published:.3f}")
    print(
        f"  cost the run reported              ${reported:.4f}  "
        f"({100 * (reported - cost) / cost:+.1f}% of the billed cost)"
    )


if __name__ == "__main__":
    main()
