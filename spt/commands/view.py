"""Write the sample viewer: stage-3 data or a training export as self-contained HTML pages (docs/viewer.md).

PATH is a folder of stage-3 data, tagged or not (`<topic>/*.json`, e.g. data/stage_3_tagged), or an
export folder (with `export_stats.json`; the viewer then reads the tagged data the export was made
from, or `--data_dir`, and shows what the export did to each sample). Writes `--output` (the index:
topics with their counts) and beside it one page per topic, `<stem>.<topic>.html`. Each page shows
its cards (one data model's answers to one item's task) with A beside B: the system prompts, S, and per
intervention I, R, P, confidence, tags (and for an export the decision: split, or the filter that
dropped it, the prompt shown, the policy label), `--page_size` cards at a time, filtered by flag,
variant, data model, tag, intervention, export decision and text. No network: CSS, script and data
are inline. Exit 2 on bad input (one line naming the file or flag).

Usage: python scripts/view_samples.py PATH --output FILE.html [--data_dir DIR] [--page_size N]
"""

from __future__ import annotations

import argparse
import sys

from spt import utils
from spt.viewer.site import DEFAULT_PAGE_SIZE, write_viewer


def build_parser() -> argparse.ArgumentParser:
    parser = utils.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "path", type=utils.data_path, metavar="PATH", help="stage-3 data folder (<topic>/*.json) or export folder"
    )
    parser.add_argument(
        "--output",
        type=utils.data_path,
        required=True,
        metavar="FILE.html",
        help="the index page; topic pages are written beside it",
    )
    parser.add_argument(
        "--data_dir",
        type=utils.data_path,
        help="for an export: the tagged data it was made from (default: data_dir of export_stats.json)",
    )
    parser.add_argument(
        "--page_size",
        type=utils.at_least(1),
        default=DEFAULT_PAGE_SIZE,
        help=f"cards (an item's answers by one data model) per screen (default {DEFAULT_PAGE_SIZE})",
    )
    return parser


@utils.exit_on_data_error
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.path.is_dir():
        raise utils.DataError(f"{utils.display_path(args.path)} (PATH): no such folder")
    utils.check_output_file(args.output, "--output")
    written = write_viewer(args.path, args.output, data_dir=args.data_dir, page_size=args.page_size)
    if written.problems:
        print(
            f"warning: {len(written.problems)} unreadable or malformed parts skipped (listed on the index page), "
            f"the first: {written.problems[0]}"
        )
    print(f"{written.samples} samples in {len(written.pages)} topic pages -> {utils.display_path(written.index)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
