"""Evaluate an SPT checkpoint (or a baseline without adapter) on review-and-flag tasks.

What it reads and writes: the docstring of training/evaluate.py."""

from __future__ import annotations

import argparse
import sys

from spt.shared_tools import FLAGS
from spt.training.evaluator import (
    DEFAULT_INTERVENTION,
    DEFAULT_INTERVENTION_NAME,
    DEFAULT_UNSEEN_INTENT_INTERVENTION,
    DEFAULT_UNSEEN_INTENT_INTERVENTION_NAME,
    OWN_INTERVENTION_NAME,
    evaluate,
)
from spt.training.spt_model import check_model_name
from spt.utils import (
    EVALUATION_RESULTS_DIR,
    ArgumentParser,
    check_output_file,
    check_writable_dir,
    data_path,
    display_path,
    exit_on_data_error,
    setup_logging,
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument("--checkpoint", help="SPT checkpoint directory (<output_dir>/step_<N>)")
    model.add_argument("--baseline", choices=("clean", "poisoned"), help="no adapter: the base model reviews itself")
    data = parser.add_mutually_exclusive_group(required=True)
    data.add_argument("--input", type=data_path, help="evaluation input JSON or a result file to re-evaluate")
    data.add_argument(
        "--validation",
        nargs="?",
        const=True,
        type=data_path,
        help="the export's validation JSONL (default <export_dir>/validation.jsonl of the checkpoint)",
    )
    parser.add_argument("--base_model", help="base model (default: the checkpoint's base_model)")
    parser.add_argument(
        "--merge_checkpoints",
        nargs="*",
        help="LoRA adapters merged into the base first (default: the checkpoint's merge_checkpoints_train)",
    )
    parser.add_argument(
        "--intervention_string",
        nargs="+",
        metavar="TEXT",
        help=f"the fixed intervention(s); several are asked in turn (sample i gets the (i mod n)-th). "
        f"Default: {DEFAULT_INTERVENTION!r}; with --unseen_intent or for an unseen-intent "
        f"validation sample {DEFAULT_UNSEEN_INTENT_INTERVENTION!r}",
    )
    parser.add_argument(
        "--own_intervention",
        action="store_true",
        help="--validation only: ask each sample its own I instead (it can give the flag away: not a "
        "measure of the model; the result file says so)",
    )
    parser.add_argument(
        "--no_heldout_topics",
        action="store_true",
        help="--validation only: leave out the export's heldout_topics.jsonl",
    )
    parser.add_argument(
        "--intervention_name",
        help=f"default {DEFAULT_INTERVENTION_NAME} ({DEFAULT_UNSEEN_INTENT_INTERVENTION_NAME} with "
        f"--unseen_intent, {OWN_INTERVENTION_NAME} with --own_intervention)",
    )
    parser.add_argument(
        "--unseen_intent",
        action="store_true",
        help="every sample in the unseen-intent layout: the model does not see the response (or only "
        "its first --unseen_intent_response_tokens tokens) and reviews what it was about to say",
    )
    parser.add_argument(
        "--unseen_intent_response_tokens",
        type=int,
        metavar="N",
        help="tokens of the response an unseen-intent sample shows (default: the checkpoint's "
        "unseen_intent_response_tokens, 0 for a baseline)",
    )
    parser.add_argument("--condition", help="condition name for rows that carry none")
    parser.add_argument("--expected_flag", choices=FLAGS, help="expected flag for rows that carry none")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--max_new_tokens", type=int, default=2048)
    parser.add_argument("--limit", type=int, help="evaluate only the first N samples")
    parser.add_argument("--output_dir", type=data_path, help=f"default {display_path(EVALUATION_RESULTS_DIR)}")
    parser.add_argument("--output", type=data_path, help="exact result file (resumed when incomplete)")
    args = parser.parse_args(argv)
    if args.batch_size < 1 or args.max_new_tokens < 1:
        parser.error("--batch-size and --max-new-tokens must be at least 1")
    if args.limit is not None and args.limit < 1:
        parser.error(f"--limit must be at least 1, got {args.limit}")
    if args.unseen_intent_response_tokens is not None and args.unseen_intent_response_tokens < 0:
        parser.error("--unseen-intent-response-tokens must be 0 or more")
    if (args.own_intervention or args.no_heldout_topics) and not args.validation:
        parser.error("--own-intervention and --no-heldout-topics need --validation")
    if args.own_intervention and args.intervention_string:
        parser.error("--own-intervention and --intervention-string exclude each other")
    if args.intervention_name is None:
        args.intervention_name = (
            OWN_INTERVENTION_NAME
            if args.own_intervention
            else DEFAULT_UNSEEN_INTENT_INTERVENTION_NAME
            if args.unseen_intent
            else DEFAULT_INTERVENTION_NAME
        )
    return args


def check_outputs(args: argparse.Namespace) -> None:
    """The result file's folder is writable and the base model can exist, before any model loads."""
    if args.output:
        check_output_file(args.output, "--output")
    else:
        check_writable_dir(args.output_dir or EVALUATION_RESULTS_DIR, "--output_dir")
    if args.base_model:
        check_model_name(args.base_model, "--base_model")


@exit_on_data_error
def main(argv: list[str] | None = None) -> int:
    setup_logging()
    args = parse_args(argv)
    check_outputs(args)
    evaluate(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
