"""Stage 1: generate A/B/T samples (system prompts and user tasks) for one or more topics.

What it reads and writes: the docstring of scripts/dataset_generation_stage_1.py.

Each batch is one forced-tool call: system = prompts/base_prompt.md + the rendered topic
prompt prompts/stage_1/<topic>.md (both prompt-cached), user message =
prompts/stage_1/_shared/batch_request.md with the batch's variation hint and the openings of
recent tasks to avoid, and (unless --no_feedback) the kinds of A/B factor that passed and failed
the causal verification (data/stage_1_feedback/<topic>.json). Every sample is respelt where
harmless (item_normalisation: case, surrounding whitespace, "a,b" -> "a, b") and checked on its
own (stage_1/validation.py); an invalid sample, or a task that is a near-duplicate of the topic's existing tasks or of another, is
dropped, and the next call asks for just the missing samples, naming the problems of the
invalid ones. Only an answer unusable as a whole (no `data` list) is re-asked by the provider
layer."""

from __future__ import annotations

import argparse
import sys

from spt import shared_tools
from spt.providers import add_provider_arguments, check_flags, check_output_folders
from spt.stage_1.run import run
from spt.utils import STAGE_DIRS, ArgumentParser, DataError, exit_on_data_error, setup_logging

DEFAULT_MODEL = "claude-opus-5-5"
# One call answers with every sample of its batch: a sample takes a few hundred output tokens, so
# beyond this a batch cannot fit any model's output limit (the run would only fail, slowly).
MAX_ITEMS_PER_BATCH = 100


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--name",
        "--names",
        dest="names",
        nargs="+",
        required=True,
        metavar="TOPIC",
        help=f"topic(s), or 'all': {', '.join(shared_tools.TOPICS)}",
    )
    parser.add_argument(
        "--num_batches",
        type=int,
        default=None,
        help="batches per topic (default 1; with --target_items: as many as needed)",
    )
    parser.add_argument("--num_items_per_batch", type=int, default=10, help="samples per call (default 10)")
    parser.add_argument(
        "--target_items",
        type=int,
        default=None,
        metavar="N",
        help="generate until each topic has N valid samples; a rerun at N does nothing",
    )
    parser.add_argument(
        "--trim_excess_samples",
        action="store_true",
        help="with --target_items, make the last batch only as large as needed, "
        "so the topic ends at exactly N instead of overshooting by up to one batch",
    )
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"generator model (default {DEFAULT_MODEL})")
    parser.add_argument(
        "--max_tokens",
        type=int,
        default=16000,
        help="output tokens per call for the answer; room for the model's thinking is added on top "
        "(config/models.json thinking_allowance), up to the model's limit",
    )
    parser.add_argument(
        "--no_feedback",
        action="store_true",
        help="leave out the causal-verification feedback (data/stage_1_feedback/<topic>.json, "
        "written by scripts/verify_ab_factors.py: kinds of factor to avoid and to try)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the per-batch variation hints")
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    add_provider_arguments(
        parser,
        thinking=True,
        dry_run="the plan, a summary of the calls (count, sizes, SHA-256 of the system blocks) and the estimated cost",
    )
    args = parser.parse_args(argv)
    args.topics = resolve_topics(args.names)
    for flag in ("num_batches", "num_items_per_batch", "target_items", "max_tokens"):
        value = getattr(args, flag)
        if value is not None and value < (0 if flag == "target_items" else 1):
            raise DataError(f"--{flag} must be a positive number, got {value}")
    if args.num_items_per_batch > MAX_ITEMS_PER_BATCH:
        raise DataError(
            f"--num_items_per_batch {args.num_items_per_batch}: at most {MAX_ITEMS_PER_BATCH} samples fit "
            "one call's answer; ask for more batches (--num_batches) instead"
        )
    check_flags(args, args.model)
    return args


def resolve_topics(names: list[str]) -> list[str]:
    if names == ["all"]:
        return list(shared_tools.TOPICS)
    unknown = [name for name in names if name not in shared_tools.TOPICS]
    if unknown:
        raise DataError(
            f"--name: unknown topic(s) {', '.join(unknown)}; choose from {', '.join(shared_tools.TOPICS)} or 'all'"
        )
    return list(dict.fromkeys(names))


@exit_on_data_error
def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    args = parse_args(argv)
    setup_logging(args.verbose)
    check_output_folders(args, STAGE_DIRS[1], "the stage-1 output; SPT_DATA_DIR moves it")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
