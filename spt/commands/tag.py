"""Tag stage-3 data (docs/data_formats.md §5): quality tags on every variant and intervention, plus
`id_string` and `id_numeric` on every intervention.

What it reads and writes: the docstring of scripts/tag_stage_3_data.py.

Usage: python scripts/tag_stage_3_data.py [--input DIR] [--output DIR | --in_place]
                                          [--jobs N] [--first_id_numeric N] [--list_tags]
"""

from __future__ import annotations

import argparse
import os
import sys

from spt import locks, utils
from spt.tagging.tagger import run


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = utils.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--input",
        type=utils.data_path,
        default=utils.STAGE_DIRS[3],
        help="stage-3 data directory with <topic>/*.json (default: data/stage_3)",
    )
    target = parser.add_mutually_exclusive_group()
    target.add_argument(
        "--output",
        type=utils.data_path,
        default=utils.TAGGED_DIR,
        help="where the tagged files go (default: data/stage_3_tagged)",
    )
    target.add_argument("--in_place", action="store_true", help="replace the input files with their tagged version")
    parser.add_argument(
        "--jobs",
        type=utils.at_least(1),
        default=min(4, os.cpu_count() or 1),
        help="worker processes (default: CPU cores, at most 4); 1 = no pool",
    )
    parser.add_argument("--list_tags", action="store_true", help="print every tag with its rule and exit")
    parser.add_argument(
        "--first_id_numeric",
        type=utils.at_least(0),
        default=0,
        help="id_numeric of the first intervention (default 0); the counter runs in sorted file order",
    )
    return parser.parse_args(argv)


@utils.exit_on_data_error
def main(argv: list[str] | None = None) -> int:
    """Tag the stage-3 data; exit 0 on success, 2 on bad input (nothing written), 130 on Ctrl-C."""
    args = parse_args(argv)
    if args.in_place and args.input.exists():  # a missing --input is the tagger's own error
        utils.check_writable_dir(args.input, "--input with --in_place")
    elif not args.in_place and not args.list_tags:
        utils.check_writable_dir(args.output, "--output")
    if args.list_tags:
        return run(args)
    with locks.hold(args.input if args.in_place else args.output, "the tagged data", locks.WAIT_OR_RERUN):
        return run(args)


if __name__ == "__main__":
    sys.exit(main())
