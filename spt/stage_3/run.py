"""The stage-3 run that scripts/dataset_generation_stage_3.py starts: `run(args)` with its parsed
flags.

Checks the flags, loads the documents (stage_3.data), records the SHA-256 of the prompt files of
every topic and family and refuses to extend a version label written with other prompts (unless
--force), plans the work units (stage_3.plan), and either prints the dry run or works the units,
up to --concurrency at a time: each unit's generation call (stage_3.generation), the quality
review of its valid items (stage_3.quality_review), then one intervention record per sample
stored in its document, which is saved atomically. A failed unit stops new ones from
starting unless --continue_on_error; --max_cost stops them all (what the unit paid for stays in
the response cache); a sample the model refused is recorded as refused and stops nothing.
Prints the run summary (stage_3.summary). Reads data/stage_2 and data/stage_3 files and
prompts/; writes data/stage_3 files. Returns the exit code: 0 complete (refused samples are
counted, not failures), 1 some interventions failed or were left, 3 stopped by --max_cost (2,
bad input, is a DataError).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys

from spt import utils
from spt.providers import CostLimitReached, ProviderError, check_flags, client_from_args, provider_for_model
from spt.shared_tools import ERROR_FLAG, REFUSED_ERROR_KIND
from spt.stage_3.data import check_version_label, load_documents, store_intervention
from spt.stage_3.generation import Generated, GenerationSettings, generate
from spt.stage_3.plan import WorkUnit, dry_run, plan_units
from spt.stage_3.quality_review import ReviewOutcome, ReviewSettings, quality_review
from spt.stage_3.requests import JUDGED_FIELDS, prompt_hashes
from spt.stage_3.summary import RunSummary, unverified_line

log = logging.getLogger("spt.stage_3")

EXIT_COMPLETE, EXIT_FAILURES, EXIT_COST_LIMIT = 0, 1, 3  # 2 (bad input) comes from utils.exit_on_data_error
ITEM_FIELDS = ("thought_process", *JUDGED_FIELDS)  # the generated item's fields, stored as they are


def check_arguments(args: argparse.Namespace) -> None:
    for name in ("batch_size", "max_context_tokens"):
        if getattr(args, name) < 1:
            raise utils.DataError(f"--{name} must be at least 1")
    if args.max_review_attempts < 0:
        raise utils.DataError("--max_review_attempts must not be negative")
    if args.num_processes is not None:
        if args.num_processes < 1:
            raise utils.DataError("--num_processes must be at least 1")
        args.concurrency = args.num_processes if args.concurrency is None else args.concurrency
    if not args.intervention_modification or "__" in args.intervention_modification:
        raise utils.DataError("--intervention_modification must be a non-empty label without '__'")
    args.review_model = args.review_model or args.model
    for model in dict.fromkeys((args.model, args.review_model)):
        check_flags(args, model)
    args.intervention_types = list(dict.fromkeys(args.intervention_types))


# --------------------------------------------------------------------------- records


def intervention_record(
    unit: WorkUnit,
    generated: Generated,
    outcome: ReviewOutcome | None,
    generation: GenerationSettings,
    review: ReviewSettings,
    hashes: dict[str, str],
) -> dict:
    """The stored intervention (docs/data_formats.md §4.3) for one sample; an ERROR record when it failed.
    Each model is recorded with the provider that answered for it (`provider`, `review_provider`):
    `mock` marks placeholder text whatever the model's name. A sample the generator or the quality
    reviewer refused is an ERROR with `error_kind` "refused" and `refused_by` naming the step."""
    error = generated.error or (outcome.error if outcome else None)
    overlong = generated.overlong or bool(outcome and outcome.overlong)
    if error:
        record = {
            "intervention_type": unit.intervention_type,
            "P": ERROR_FLAG,
            "error": error,
            "generation_time": generated.generation_time,
            "model_used": generated.model_used or generation.model,
            "provider": generation.client.provider,
        }
        if generated.refused or (outcome and outcome.refused):
            record.update(
                error_kind=REFUSED_ERROR_KIND, refused_by="generator" if generated.refused else "quality_review"
            )
    else:
        item = outcome.item if outcome else generated.item
        record = {
            "intervention_type": unit.intervention_type,
            **{name: item[name] for name in ITEM_FIELDS},
            "batch_thinking": generated.batch_thinking,
            "stage_3_analysis": f"item_{generated.position}_of_{generated.count}_in_batch_"
            f"{unit.batch_number}_of_{unit.batch_count}",
            "generation_time": generated.generation_time,
            "model_used": outcome.model_used if outcome else generated.model_used,
            "provider": generation.client.provider,
        }
        if generated.normalised and item is generated.item:  # respelt before validation (not a rewrite)
            record["normalised"] = generated.normalised
    if outcome is not None and not error:  # reviewed (--max_review_attempts > 0) and not failed
        record.update(
            {
                "review_model_used": review.model,
                "review_provider": review.client.provider,
                "num_stage_3_reviews_made": len(outcome.verdicts),
                "stage_3_reviews_passed": outcome.passed,
            }
        )
    record["stage_3_reviews_all_failed_due_to_overlong_context"] = overlong
    record["prompt_sha256"] = hashes
    return record


# --------------------------------------------------------------------------- running


class _UnitRunner:
    """Works the units of one run, at most the generator's concurrency at a time: generates,
    reviews and stores each unit, and stops starting new ones after a failure (without
    --continue_on_error) or once --max_cost is reached."""

    def __init__(
        self,
        generation: GenerationSettings,
        review: ReviewSettings,
        args: argparse.Namespace,
        hashes: dict,
        summary: RunSummary,
        bar,
    ):
        self.generation, self.review_settings = generation, review
        self.args, self.hashes, self.summary, self.bar = args, hashes, summary, bar
        self.gate = asyncio.Semaphore(generation.client.concurrency)
        self.stop_reason: str | None = None  # why no new unit starts (a failure without --continue_on_error)
        self.cost_limit = False

    async def review(self, unit: WorkUnit, generated: list[Generated]) -> dict[int, ReviewOutcome]:
        """The quality-review outcome of each successfully generated item, by its index."""
        reviewed = [i for i, g in enumerate(generated) if g.error is None] if self.review_settings.max_attempts else []
        if not reviewed:
            return {}
        outcomes = await quality_review(
            self.generation,
            self.review_settings,
            unit.document.topic,
            unit.intervention_type,
            [generated[i] for i in reviewed],
        )
        return dict(zip(reviewed, outcomes))

    async def run_unit(self, unit: WorkUnit) -> None:
        async with self.gate:
            if self.stop_reason or self.cost_limit:
                self.summary.not_finished += len(unit.samples)
                return
            try:
                generated = await generate(self.generation, unit.document.topic, unit.intervention_type, unit.samples)
                outcomes = await self.review(unit, generated)
            except CostLimitReached:  # nothing of the unit is stored; paid answers are in the response cache
                self.cost_limit = True
                self.summary.not_finished += len(unit.samples)
                return
            self.store(unit, generated, outcomes)

    def store(self, unit: WorkUnit, generated: list[Generated], outcomes: dict[int, ReviewOutcome]) -> None:
        """One record per sample of the unit, into its document, which is then saved."""
        family_hashes = self.hashes[unit.document.topic][unit.intervention_type]
        for index, g in enumerate(generated):
            outcome = outcomes.get(index)
            record = intervention_record(unit, g, outcome, self.generation, self.review_settings, family_hashes)
            self.summary.add(g.sample.variant, record, outcome.verdicts if outcome else [])
            store_intervention(g.sample, unit.key, record)
            failed = (
                record["P"] == ERROR_FLAG and record.get("error_kind") != REFUSED_ERROR_KIND
            )  # a refusal is an outcome
            if failed and not self.args.continue_on_error and not self.stop_reason:
                self.stop_reason = record["error"]
                log.error("a batch failed; no new batch starts (--continue_on_error goes on): %s", record["error"])
        unit.document.save()
        self.bar.update(len(generated))


async def run_units(units: list[WorkUnit], args: argparse.Namespace, hashes: dict, summary: RunSummary) -> int:
    async with contextlib.AsyncExitStack() as stack:
        generator = await stack.enter_async_context(client_from_args(args, model=args.model))
        same_provider = (args.provider or provider_for_model(args.review_model)) == generator.provider
        reviewer = (
            generator
            if same_provider
            else await stack.enter_async_context(
                client_from_args(args, model=args.review_model, budget=generator.budget)
            )
        )
        reviewer.require_prices(args.review_model)
        bar = generator.progress_bar(total=sum(len(unit.samples) for unit in units), desc="stage 3")
        runner = _UnitRunner(
            GenerationSettings(generator, args.model, args.max_context_tokens),
            ReviewSettings(reviewer, args.review_model, args.max_review_attempts, args.max_context_tokens),
            args,
            hashes,
            summary,
            bar,
        )
        await asyncio.gather(*(runner.run_unit(unit) for unit in units))
        bar.close()
        print(summary.render([generator, reviewer]))
    if runner.cost_limit:
        print(f"stopped: --max_cost {args.max_cost} reached; rerun to continue", file=sys.stderr)
        return EXIT_COST_LIMIT
    return EXIT_FAILURES if summary.failures or summary.not_finished else EXIT_COMPLETE


def run(args: argparse.Namespace) -> int:
    """The whole run for the parsed flags of scripts/dataset_generation_stage_3.py; the exit code."""
    check_arguments(args)
    utils.setup_logging(args.verbose)
    documents = load_documents(args.names, args.stage2_model)
    topics = sorted({document.topic for document in documents})
    hashes = {topic: {family: prompt_hashes(topic, family) for family in args.intervention_types} for topic in topics}
    if not args.force:
        for family in args.intervention_types:
            check_version_label(
                documents, family, args.intervention_modification, {topic: hashes[topic][family] for topic in topics}
            )
    summary = RunSummary()
    units = plan_units(documents, args, summary)
    if args.dry_run:
        dry_run(units, args)
        return EXIT_COMPLETE
    for document in documents:  # a new causal-verification verdict is kept even where nothing is generated
        if document.verdicts_changed:
            document.save()
    if not units:
        print(f"stage 3: nothing to do ({summary.already_done} intervention(s) already written)")
        if summary.unverified_skipped:
            print(unverified_line(summary.unverified_skipped))
        return EXIT_COMPLETE
    try:
        return asyncio.run(run_units(units, args, hashes, summary))
    except ProviderError as error:  # a missing key, a model that is gone, an exhausted quota
        raise utils.DataError(str(error)) from None
