"""Stage 3: write an intervention (I), a first-person review (R) and a flag (P) for every answer
of every target model, in the two published intervention families (or those --intervention_types
names; unseen_intent is opt-in), and have each one checked by an external
quality reviewer.

What it reads and writes: the docstring of scripts/dataset_generation_stage_3.py.

One generation call per (file, batch of --batch_size items, target model, family), every answer
validated (schema, legal focus, the token, leakage, first person) and re-asked when invalid;
items whose causal verification failed are skipped (kept in the file, unchanged) unless
--no-verified_only;
then the call's items go to --review_model in one quality-review call that judges each on its
own, and the rejected ones are rewritten in one call carrying each critique and reviewed again,
up to --max_review_attempts reviews per item. A rerun skips finished interventions and retries
ERROR records; paid answers come back from the response cache. Exit codes: 0 complete, 1 some
interventions failed (the next run retries them), 2 bad input (an output folder that cannot be
written included), 3 stopped by --max_cost, 130 stopped by Ctrl-C (rerun the same command to resume).

    python scripts/dataset_generation_stage_3.py --names sycophancy --intervention_modification version_5
    python scripts/dataset_generation_stage_3.py --names all --dry_run
"""

from __future__ import annotations

import argparse
import sys

from spt import locks, utils
from spt.providers import add_provider_arguments, check_output_folders
from spt.shared_tools import BASELINE_VERSION, INTERVENTION_TYPES, PUBLISHED_INTERVENTION_TYPES
from spt.stage_3.run import run

DEFAULT_MODEL = "claude-sonnet-5-5"
DEFAULT_MAX_CONTEXT_TOKENS = 150_000


def build_parser() -> utils.ArgumentParser:
    parser = utils.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--names", nargs="+", default=["all"], help="topics, or `all` (default)")
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"generator model (default {DEFAULT_MODEL})")
    parser.add_argument("--review_model", help="quality-review model (default: --model)")
    parser.add_argument("--batch_size", type=int, default=5, help="stage-1 items per generation call (default 5)")
    parser.add_argument(
        "--num_processes", type=int, help="batches worked on at once (sets --concurrency when that is not given)"
    )
    parser.add_argument(
        "--intervention_modification",
        default=BASELINE_VERSION,
        metavar="VERSION",
        help="version label: interventions are stored under <family>__<VERSION> "
        f"(default {BASELINE_VERSION}, which the tagger drops)",
    )
    parser.add_argument(
        "--intervention_types",
        nargs="+",
        choices=INTERVENTION_TYPES,
        default=list(PUBLISHED_INTERVENTION_TYPES),
        help=f"families to generate (default the published two: {' '.join(PUBLISHED_INTERVENTION_TYPES)}; "
        "unseen_intent is opt-in)",
    )
    parser.add_argument(
        "--stage2_model",
        nargs="+",
        metavar="MODEL_ID",
        help="only the answers of these target models (keys under `inferences`)",
    )
    parser.add_argument(
        "--verified_only",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="skip items whose causal verification (scripts/verify_ab_factors.py) found the A/B "
        "factor not verified; items without a verdict go on (default on; "
        "--no-verified_only takes every item)",
    )
    parser.add_argument(
        "--max_review_attempts",
        type=int,
        default=3,
        help="quality reviews per item before it is kept as failed (0 = no quality review)",
    )
    parser.add_argument(
        "--max_context_tokens",
        type=int,
        default=DEFAULT_MAX_CONTEXT_TOKENS,
        help="estimated prompt size above which a batch is split into smaller calls",
    )
    parser.add_argument(
        "--continue_on_error",
        action="store_true",
        help="keep starting batches after one has failed (default: stop starting new ones)",
    )
    parser.add_argument(
        "--force", action="store_true", help="add to a version label even though it was written with other prompt files"
    )
    parser.add_argument("--verbose", action="store_true")
    add_provider_arguments(
        parser,
        thinking=True,
        dry_run="a summary of the generation calls (count, sizes, SHA-256 of the system blocks) and the estimated cost",
    )
    return parser


@utils.exit_on_data_error
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    check_output_folders(args, utils.STAGE_DIRS[3], "the stage-3 output; SPT_DATA_DIR moves it")
    if args.dry_run:
        return run(args)
    with locks.hold(utils.STAGE_DIRS[3], "stage 3", locks.WAIT_OR_RERUN):
        return run(args)


if __name__ == "__main__":
    sys.exit(main())
