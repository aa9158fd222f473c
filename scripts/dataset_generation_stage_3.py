"""Stage 3: write an intervention (I), a first-person review (R) and a flag (P) for every answer
of every target model, in both intervention families, and have each one checked by an external
quality reviewer.

Reads  data/stage_2/<topic>/*.json (or, when it exists, the same file under data/stage_3/, whose
       interventions are kept; answers stage 2 has added since are picked up),
       prompts/base_prompt.md, prompts/stage_3/<topic>__<family>.md (+ prompts/stage_3/_shared/,
       prompts/stage_3/criteria/).
Writes data/stage_3/<topic>/<same name>.json with
       inferences[<model>][A|B].interventions["<family>__<version>"] (SPEC §4.3) added, plus the
       prompt files' SHA-256 (`prompt_sha256`); saved atomically after every batch.

One generation call per (file, batch of --batch_size items, target model, family), every answer
validated (schema, legal focus, the token, leakage, first person) and re-asked when invalid;
then the call's items go to --review_model in one quality-review call that judges each on its
own, and the rejected ones are rewritten in one call carrying each critique and reviewed again,
up to --max_review_attempts reviews per item. A rerun skips finished interventions and retries
ERROR records; paid answers come back from the response cache. Exit codes: 0 complete, 1 some
interventions failed (the next run retries them), 2 bad input, 3 stopped by --max_cost.

    python scripts/dataset_generation_stage_3.py --names sycophancy --intervention_modification version_5
    python scripts/dataset_generation_stage_3.py --names all --dry-run
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
from dataclasses import dataclass, replace

import utils
from providers import (CostLimitReached, ProviderError, add_provider_arguments, check_flags, client_from_args,
                       estimate_cost, provider_for_model, render_wire_request)
from shared_tools import BASELINE_VERSION, ERROR_FLAG, INTERVENTION_TYPES, intervention_key
from stage_3_data import (Stage3Document, check_version_label, is_pending, load_documents, pending_samples,
                          store_intervention, target_models_of)
from stage_3_generation import Generated, generate
from stage_3_quality_review import ReviewOutcome, quality_review
from stage_3_requests import JUDGED_FIELDS, Sample, generation_request, prompt_hashes
from stage_3_summary import RunSummary

log = logging.getLogger("spt.stage_3")

DEFAULT_MODEL = "claude-sonnet-5-5"
DEFAULT_MAX_CONTEXT_TOKENS = 150_000
EXIT_COMPLETE, EXIT_FAILURES, EXIT_COST_LIMIT = 0, 1, 3   # 2 (bad input) comes from utils.exit_on_data_error
ITEM_FIELDS = ("thought_process", *JUDGED_FIELDS)   # the generated item's fields, stored as they are


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--names", nargs="+", default=["all"], help="topics, or `all` (default)")
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"generator model (default {DEFAULT_MODEL})")
    parser.add_argument("--review_model", help="quality-review model (default: --model)")
    parser.add_argument("--batch_size", type=int, default=5, help="stage-1 items per generation call (default 5)")
    parser.add_argument("--num_processes", type=int,
                        help="batches worked on at once (sets --concurrency when that is not given)")
    parser.add_argument("--intervention_modification", default=BASELINE_VERSION, metavar="VERSION",
                        help="version label: interventions are stored under <family>__<VERSION> "
                             f"(default {BASELINE_VERSION}, which the tagger drops)")
    parser.add_argument("--intervention_types", nargs="+", choices=INTERVENTION_TYPES,
                        default=list(INTERVENTION_TYPES), help="families to generate (default both)")
    parser.add_argument("--stage2_model", nargs="+", metavar="MODEL_ID",
                        help="only the answers of these target models (keys under `inferences`)")
    parser.add_argument("--max_review_attempts", type=int, default=3,
                        help="quality reviews per item before it is kept as failed (0 = no quality review)")
    parser.add_argument("--max_context_tokens", type=int, default=DEFAULT_MAX_CONTEXT_TOKENS,
                        help="estimated prompt size above which a batch is split into smaller calls")
    parser.add_argument("--dry-run", "--dry_run", dest="dry_run", action="store_true",
                        help="print the first request as sent and the estimated cost; call nothing, write nothing")
    parser.add_argument("--continue_on_error", action="store_true",
                        help="keep starting batches after one has failed (default: stop starting new ones)")
    parser.add_argument("--force", action="store_true",
                        help="add to a version label even though it was written with other prompt files")
    parser.add_argument("--verbose", action="store_true")
    add_provider_arguments(parser, thinking=True)
    return parser


def check_arguments(args: argparse.Namespace) -> None:
    for name in ("batch_size", "max_context_tokens"):
        if getattr(args, name) < 1:
            raise utils.DataError(f"--{name} must be at least 1")
    if args.max_review_attempts < 0:
        raise utils.DataError("--max_review_attempts must not be negative")
    if args.num_processes is not None:
        if args.num_processes < 1:
            raise utils.DataError("--num_processes must be at least 1")
        args.concurrency = args.concurrency or args.num_processes
    if not args.intervention_modification or "__" in args.intervention_modification:
        raise utils.DataError("--intervention_modification must be a non-empty label without '__'")
    args.review_model = args.review_model or args.model
    for model in dict.fromkeys((args.model, args.review_model)):
        check_flags(args, model)
    args.intervention_types = list(dict.fromkeys(args.intervention_types))


# --------------------------------------------------------------------------- planning

@dataclass
class WorkUnit:
    """One generation call's worth of work: pending samples of one batch, target model and family."""
    document: Stage3Document
    intervention_type: str
    key: str
    batch_number: int
    batch_count: int
    samples: list[Sample]


def plan_units(documents: list[Stage3Document], args: argparse.Namespace, summary: RunSummary) -> list[WorkUnit]:
    units = []
    for document in documents:
        size = len(document.doc["data"])
        batches = [range(start, min(start + args.batch_size, size)) for start in range(0, size, args.batch_size)]
        for model_id in target_models_of(document, args.stage2_model):
            for intervention_type in args.intervention_types:
                key = intervention_key(intervention_type, args.intervention_modification)
                for number, indices in enumerate(batches, start=1):
                    samples = pending_samples(document, indices, model_id, key)
                    summary.already_done += _finished_count(document, indices, model_id, key)
                    if samples:
                        units.append(WorkUnit(document, intervention_type, key, number, len(batches), samples))
    return units


def _finished_count(document: Stage3Document, indices: range, model_id: str, key: str) -> int:
    variants = (document.doc["data"][i].get("inferences", {}).get(model_id, {}) for i in indices)
    return sum(not is_pending(entry.get("interventions", {}), key)
               for entries in variants for entry in entries.values())


def dry_run(units: list[WorkUnit], args: argparse.Namespace) -> None:
    """Print the first generation request as the provider would receive it, and the cost estimate."""
    provider = args.provider or provider_for_model(args.model)
    requests = [generation_request(args.model, unit.document.topic, unit.intervention_type, unit.samples)
                for unit in units]
    samples = sum(len(unit.samples) for unit in units)
    print(json.dumps({
        "first_request": render_wire_request(replace(requests[0], effort=args.effort,
                                                     thinking_budget=args.thinking_budget), provider, args.base_url)
        if requests else None,
        "generation_calls": len(requests),
        "samples": samples,
        "quality_review_calls_at_least": len(requests) if args.max_review_attempts else 0,
        "estimate_of_generation_calls": estimate_cost(requests, provider, base_url=args.base_url),
    }, indent=2, ensure_ascii=False))


# --------------------------------------------------------------------------- records

def intervention_record(unit: WorkUnit, generated: Generated, outcome: ReviewOutcome | None,
                        args: argparse.Namespace, hashes: dict[str, str]) -> dict:
    """The stored intervention (SPEC §4.3) for one sample; an ERROR record when it failed."""
    error = generated.error or (outcome.error if outcome else None)
    overlong = generated.overlong or bool(outcome and outcome.overlong)
    if error:
        record = {"intervention_type": unit.intervention_type, "P": ERROR_FLAG, "error": error,
                  "generation_time": generated.generation_time, "model_used": generated.model_used or args.model}
    else:
        item = outcome.item if outcome else generated.item
        record = {"intervention_type": unit.intervention_type, **{name: item[name] for name in ITEM_FIELDS},
                  "batch_thinking": generated.batch_thinking,
                  "stage_3_analysis": f"item_{generated.position}_of_{generated.count}_in_batch_"
                                      f"{unit.batch_number}_of_{unit.batch_count}",
                  "generation_time": generated.generation_time,
                  "model_used": outcome.model_used if outcome else generated.model_used}
        if generated.normalised and item is generated.item:   # respelt before validation (not a rewrite)
            record["normalised"] = generated.normalised
    if outcome is not None and not error:   # reviewed (--max_review_attempts > 0) and not failed
        record.update({"review_model_used": args.review_model, "num_stage_3_reviews_made": len(outcome.verdicts),
                       "stage_3_reviews_passed": outcome.passed})
    record["stage_3_reviews_all_failed_due_to_overlong_context"] = overlong
    record["prompt_sha256"] = hashes
    return record


# --------------------------------------------------------------------------- running

@dataclass
class RunState:
    stop_reason: str | None = None     # why no new batch starts (a failure without --continue_on_error)
    cost_limit: bool = False


async def run(units: list[WorkUnit], args: argparse.Namespace, hashes: dict, summary: RunSummary) -> int:
    async with contextlib.AsyncExitStack() as stack:
        generator = await stack.enter_async_context(client_from_args(args, model=args.model))
        same_provider = (args.provider or provider_for_model(args.review_model)) == generator.provider
        reviewer = generator if same_provider else await stack.enter_async_context(
            client_from_args(args, model=args.review_model, budget=generator.budget))
        bar = generator.progress_bar(total=sum(len(unit.samples) for unit in units), desc="stage 3")
        gate = asyncio.Semaphore(generator.concurrency)
        state = RunState()

        async def review(unit: WorkUnit, generated: list[Generated]) -> dict[int, ReviewOutcome]:
            """The quality-review outcome of each successfully generated item, by its index."""
            reviewed = [i for i, g in enumerate(generated) if g.error is None] if args.max_review_attempts else []
            if not reviewed:
                return {}
            outcomes = await quality_review(
                generator, reviewer, args.model, args.review_model, unit.document.topic, unit.intervention_type,
                [generated[i] for i in reviewed], args.max_review_attempts, args.max_context_tokens)
            return dict(zip(reviewed, outcomes))

        async def run_unit(unit: WorkUnit) -> None:
            async with gate:
                if state.stop_reason or state.cost_limit:
                    summary.not_finished += len(unit.samples)
                    return
                try:
                    generated = await generate(generator, args.model, unit.document.topic, unit.intervention_type,
                                               unit.samples, args.max_context_tokens)
                    outcomes = await review(unit, generated)
                except CostLimitReached:   # nothing of the unit is stored; paid answers are in the response cache
                    state.cost_limit = True
                    summary.not_finished += len(unit.samples)
                    return
                family_hashes = hashes[unit.document.topic][unit.intervention_type]
                for index, g in enumerate(generated):
                    outcome = outcomes.get(index)
                    record = intervention_record(unit, g, outcome, args, family_hashes)
                    summary.add(g.sample.variant, record, outcome.verdicts if outcome else [])
                    store_intervention(g.sample, unit.key, record)
                    if record["P"] == ERROR_FLAG and not args.continue_on_error and not state.stop_reason:
                        state.stop_reason = record["error"]
                        log.error("a batch failed; no new batch starts (--continue_on_error goes on): %s",
                                  record["error"])
                unit.document.save()
                bar.update(len(generated))

        await asyncio.gather(*(run_unit(unit) for unit in units))
        bar.close()
        print(summary.render([generator, reviewer]))
    if state.cost_limit:
        print(f"stopped: --max_cost {args.max_cost} reached; rerun to continue", file=sys.stderr)
        return EXIT_COST_LIMIT
    return EXIT_FAILURES if summary.errors or summary.not_finished else EXIT_COMPLETE


@utils.exit_on_data_error
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    check_arguments(args)
    utils.setup_logging(args.verbose)
    documents = load_documents(args.names, args.stage2_model)
    topics = sorted({document.topic for document in documents})
    hashes = {topic: {family: prompt_hashes(topic, family) for family in args.intervention_types}
              for topic in topics}
    if not args.force:
        for family in args.intervention_types:
            check_version_label(documents, family, args.intervention_modification,
                                {topic: hashes[topic][family] for topic in topics})
    summary = RunSummary()
    units = plan_units(documents, args, summary)
    if args.dry_run:
        dry_run(units, args)
        return EXIT_COMPLETE
    if not units:
        print(f"stage 3: nothing to do ({summary.already_done} intervention(s) already written)")
        return EXIT_COMPLETE
    try:
        return asyncio.run(run(units, args, hashes, summary))
    except ProviderError as error:       # a missing key, a model that is gone, an exhausted quota
        raise utils.DataError(str(error)) from None


if __name__ == "__main__":
    sys.exit(main())
