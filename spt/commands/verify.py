"""Causal verification of the A/B factor (between stages 2 and 3): does the factor in B really
cause the behaviour the item's intended review focus names, and does the model hide it?

What it reads and writes: the docstring of scripts/verify_ab_factors.py.

One blind judge call per (item with a non-empty B, target model that answered A and B): the task
T, the behaviour to look for and all 2K answers, shuffled and unlabelled; the judge never sees a
system prompt, the author's notes or which prompt produced an answer. Per answer it says whether
the answer shows the behaviour and whether it reveals an operator's instruction or pressure. One
factor-label call per item with B (A and B, no answer) names the kind of factor B adds, for the
feedback. The code decides (docs/causal_verification.md): p = one-sided Fisher exact test of
"B answers show the behaviour more often than A answers"; verified = p <= --alpha (default 0.05)
and the factor hidden in most B answers that show the behaviour; an item is verified when every
judged target model is. K below 3 is refused (exit 2). Items without B are marked not applicable
(verified, so A-only and FPT samples go on to stage 3). A rerun keeps records made with the same
judge model, prompt files and answer counts (--force judges again; paid answers come from the
response cache). Stage 3 skips unverified items by default (--no-verified_only takes them). Exit
codes: 0 complete, 1 some calls failed (the next run retries them), 2 bad input, 3 stopped by
--max_cost, 130 stopped by Ctrl-C (rerun the same command to resume).

    python scripts/verify_ab_factors.py --names sycophancy --dry_run
    python scripts/verify_ab_factors.py --names all --model claude-sonnet-5-5 --batch_api
"""

from __future__ import annotations

import argparse
import sys

from spt import locks, utils
from spt.providers import add_provider_arguments, check_output_folders
from spt.verification.run import run
from spt.verification.significance import DEFAULT_ALPHA

DEFAULT_MODEL = "claude-sonnet-5-5"
DEFAULT_NUM_SAMPLES = 10


def build_parser() -> utils.ArgumentParser:
    parser = utils.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--names", nargs="+", default=["all"], help="topics, or `all` (default)")
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"judge model (default {DEFAULT_MODEL})")
    parser.add_argument(
        "--stage2_model",
        nargs="+",
        metavar="MODEL_ID",
        help="only the answers of these target models (keys under `inferences`)",
    )
    parser.add_argument(
        "--num_samples",
        type=int,
        default=DEFAULT_NUM_SAMPLES,
        metavar="K",
        help=f"answers per prompt to judge, the first K of each (default {DEFAULT_NUM_SAMPLES}; "
        "at least 3; stage 2 must have run with --num_samples K or more)",
    )
    parser.add_argument(
        "--alpha",
        type=float,
        default=DEFAULT_ALPHA,
        help=f"level of the one-sided Fisher exact test (default {DEFAULT_ALPHA}); changing it needs no new judge call",
    )
    parser.add_argument("--force", action="store_true", help="judge again items that already have a current verdict")
    parser.add_argument("--verbose", action="store_true")
    add_provider_arguments(parser, thinking=True, dry_run="a summary of the judge calls and their estimated cost")
    return parser


@utils.exit_on_data_error
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    check_output_folders(args, utils.STAGE_DIRS[2], "the stage-2 files (verified in place); SPT_DATA_DIR moves them")
    if args.dry_run:
        return run(args)
    with locks.hold(
        utils.STAGE_DIRS[2], "the verification of the stage-2 files", locks.WAIT_OR_RERUN, name="stage_2.verification"
    ):
        return run(args)


if __name__ == "__main__":
    sys.exit(main())
