"""One stage 1 run (scripts/dataset_generation_stage_1.py parses and checks the flags, then
calls `run(args)`): plan every topic, then print the dry run, or generate the planned batches
and print the summary. Returns the exit code: 0 complete, 1 some batches failed or came back
short, 3 stopped by --max_cost (a DataError, exit 2, for bad input). Reads and writes what
stage_1.plan and stage_1.generate read and write; a run (not a dry run) holds the lock of each of
its topic folders from planning to the end, so a second run of a topic stops instead of
generating the same batches again.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from spt import locks
from spt.providers import ProviderError
from spt.stage_1.diversity import load_variation_config
from spt.stage_1.files import topic_dir
from spt.stage_1.generate import generate
from spt.stage_1.plan import plan_topic
from spt.stage_1.report import exit_code, feedback_note, print_dry_run, print_summary, resumed_note
from spt.utils import DataError


def run(args: argparse.Namespace) -> int:
    """The run of checked flags (`args.topics`: the topics to generate); returns the exit code."""
    variation_config = load_variation_config()
    with (
        contextlib.nullcontext()
        if args.dry_run
        else locks.hold_all([topic_dir(topic) for topic in args.topics], "stage 1 of this topic", locks.WAIT_OR_RERUN)
    ):
        return _plan_and_generate(args, variation_config)


def _plan_and_generate(args: argparse.Namespace, variation_config) -> int:
    plans = [plan_topic(topic, args, variation_config) for topic in args.topics]
    if args.dry_run:
        print_dry_run(args, plans)
        return 0
    for plan in plans:
        if not plan.batches:
            print(
                f"{plan.topic}: already has {plan.existing_items} samples (target {args.target_items}); nothing to do"
            )
        elif plan.resumed or feedback_note(plan):
            print(f"{plan.topic}: {len(plan.batches)} batch(es) planned{resumed_note(plan)}{feedback_note(plan)}")
    plans = [plan for plan in plans if plan.batches]
    if not plans:
        return 0
    try:
        generation = asyncio.run(generate(args, plans))
    except ProviderError as error:  # e.g. a missing API key: nothing was generated
        raise DataError(str(error)) from None
    print_summary(generation)
    return exit_code(generation)
