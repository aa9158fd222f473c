"""Tables of evaluation accuracy from `data/evaluation_results/quantitative/*.json` (docs/data_formats.md §4.5).

Reads every `*.json` in `--dir` (default data/evaluation_results/quantitative) and classifies
each file by its metadata: a baseline has `baseline_type`; an on-policy SPT model has
`on-policy` in its checkpoint name; every other file is an off-policy SPT model.
Accuracy = share of rows with `parsed_flag == expected_flag` among the rows whose flag parsed;
the parse rate and n are reported beside it. Incomplete files (`processing_complete` false or
fewer rows than `total_samples`) are skipped with a warning; files with identical `results`
are one run, counted once, with a note. Extra fields (e.g. a per-row `correct`, a `summary`
block) are ignored.

Prints Markdown tables (per checkpoint × condition, per intervention name, aggregate by
condition, hp-only with/without LoRA-mask, on- vs off-policy, baselines vs SPT, and a summary
of every run) and writes the same text to `--output` (default `<dir>/../evaluation_report.md`).

Exit codes: 0 done (also when the filters leave nothing); 2 bad input or usage.

Usage: python scripts/analyze_evaluation_results.py [--dir DIR] [--output FILE]
           [--include_baselines | --baselines_only] [--on_policy_only | --off_policy_only]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import utils
from evaluation.report import run


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = utils.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=utils.EVALUATION_RESULTS_DIR, help="folder of results_*.json")
    parser.add_argument("--output", type=Path, help="Markdown file (default <dir>/../evaluation_report.md)")
    baseline = parser.add_mutually_exclusive_group()
    baseline.add_argument("--include_baselines", action="store_true", help="also show baseline runs")
    baseline.add_argument("--baselines_only", action="store_true", help="show only baseline runs")
    policy = parser.add_mutually_exclusive_group()
    policy.add_argument("--on_policy_only", action="store_true", help="only on-policy SPT runs")
    policy.add_argument("--off_policy_only", action="store_true", help="only off-policy SPT runs")
    args = parser.parse_args(argv)
    if args.baselines_only and (args.on_policy_only or args.off_policy_only):
        parser.error("--baselines-only cannot be combined with --on-policy-only/--off-policy-only")
    return args


@utils.exit_on_data_error
def main(argv: list[str] | None = None) -> int:
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
