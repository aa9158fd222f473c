"""Analyse tagged stage-3 data and write a report for researchers.

What it reads and writes: the docstring of scripts/analyze_stage_3.py.

Exit codes: 0 done (sanity failures are reported); 1 sanity failures with --strict;
2 bad input or usage (an output folder that cannot be written included); 130 stopped by Ctrl-C.

Usage: python scripts/analyze_stage_3.py [--data_dir DIR] [--output_dir DIR] [--detailed]
           [--topic T ...] [--examples CATEGORY ...] [--strict] [--config PATH] [--jobs N]
           [--no_plots] [--no_viewer]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from spt import locks, utils
from spt.analysis.examples import CATEGORIES
from spt.analysis.run import run
from spt.training_config import DEFAULT_CONFIG_PATH


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = utils.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data_dir", type=utils.data_path, default=utils.TAGGED_DIR, help="tagged stage-3 data")
    parser.add_argument("--output_dir", type=utils.data_path, default=utils.ANALYSIS_DIR, help="where the report goes")
    parser.add_argument(
        "--detailed",
        action="store_true",
        help="full texts (A, B, T, S, thought process) and more examples per category",
    )
    parser.add_argument(
        "--topic", action="extend", nargs="+", default=[], metavar="TOPIC", help="only these topic folders (repeatable)"
    )
    parser.add_argument(
        "--examples",
        nargs="+",
        default=["all"],
        choices=["all", *CATEGORIES],
        metavar="CATEGORY",
        help=f"example categories to write (default all): {', '.join(CATEGORIES)}",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a sanity check fails")
    parser.add_argument(
        "--config", type=Path, default=DEFAULT_CONFIG_PATH, help="training config whose filters are counted"
    )
    parser.add_argument("--no_plots", action="store_true", help="skip the PNG plots (faster)")
    parser.add_argument(
        "--no_viewer", action="store_true", help="skip the sample viewer viewer/ (about 1 s per 100 MB of data)"
    )
    parser.add_argument(
        "--jobs",
        type=utils.at_least(1),
        default=min(2, os.cpu_count() or 1),
        help="processes reading the files (default: up to 2)",
    )
    return parser.parse_args(argv)


@utils.exit_on_data_error
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    utils.check_apart(args.output_dir, "--output_dir", args.data_dir, "--data_dir")
    utils.check_writable_dir(args.output_dir, "--output_dir")
    with locks.hold(args.output_dir, "the analysis report", locks.WAIT_OR_ELSEWHERE):
        return run(args)


if __name__ == "__main__":
    sys.exit(main())
