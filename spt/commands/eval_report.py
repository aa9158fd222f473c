"""Tables of evaluation accuracy from `data/evaluation_results/quantitative/*.json` (docs/data_formats.md §4.5).

What it reads and writes: the docstring of scripts/analyze_evaluation_results.py.

Prints Markdown tables (per checkpoint × condition, per intervention name, aggregate by
condition, hp-only with/without LoRA-mask, on- vs off-policy, baselines vs SPT, in-topic vs
held-out-topic accuracy, accuracy per topic, per variant and per expected flag with intervals,
off-policy detection accuracy by source model for rows of the export's off_policy_eval.json, and
a summary of every run, marking runs asked each sample's own intervention) and writes the same text to `--output` (default data/evaluation_report.md, under
SPT_DATA_DIR when it is set), with two pictures beside it that it links: `<name>.accuracy.png`
(accuracy per checkpoint × condition with 95% intervals) and `<name>.topics.png` (per topic, when
the rows carry topics; docs/evaluation.md). The report says which runs it shows: baselines are left out
unless `--include_baselines` or `--baselines_only`. Its first line is a marker; an existing
file without it (one this script did not write) is never overwritten: exit 2, naming `--output`.

Exit codes: 0 done (also when the filters leave nothing); 2 bad input or usage (an output that
cannot be written, or that this script did not write, included); 130 stopped by Ctrl-C.

Usage: python scripts/analyze_evaluation_results.py [--dir DIR] [--output FILE]
           [--include_baselines | --baselines_only] [--on_policy_only | --off_policy_only]
"""

from __future__ import annotations

import argparse
import sys

from spt import utils
from spt.evaluation.report import DEFAULT_OUTPUT, run


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = utils.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--dir", type=utils.data_path, default=utils.EVALUATION_RESULTS_DIR, help="folder of results_*.json"
    )
    parser.add_argument(
        "--output",
        type=utils.data_path,
        default=DEFAULT_OUTPUT,
        help=f"Markdown file (default {utils.display_path(DEFAULT_OUTPUT)}); an existing file "
        "is replaced only when this script wrote it",
    )
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
    args = parse_args(argv)
    if args.output.suffix == ".json":  # the next run would read it as a result file (a Markdown report it skips)
        utils.check_apart(args.output, "--output", args.dir, "--dir")
    utils.check_output_file(args.output, "--output")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
