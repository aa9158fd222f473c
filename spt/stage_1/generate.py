"""Generating the planned batches of a stage 1 run and writing their files.

`generate(args, plans)` saves each topic's plan (stage_1.files.PlannedBatches) and then runs
every planned batch concurrently through the provider layer. One batch (`run_batch`): ask for
its samples, keep the valid ones whose task is no near-duplicate of the topic's tasks
(diversity.NearDuplicateIndex), ask again for just the missing count (naming the problems of
the invalid samples) up to MAX_REPLACEMENT_ROUNDS times, then write the batch file with a
`provenance` block. A batch that came back with nothing is recorded as failed, so the next run
retries it under its number. A call the model refuses (providers.errors.Refused) is never
re-asked: the batch ends there (its samples are not written yet, so there is nothing to split
off), keeps what it has, and is counted as refused. Every request of a batch is built from its plan (variation hint,
openings of the tasks to avoid) and the batch's own answers, so a batch that a stopped run
left unfinished is resumed with byte-identical requests and its paid answers come from the
response cache.

Writes data/stage_1/<topic>/batch_<topic>_<YYYYmmdd_HHMMSS>_batch_<NNN>.json (docs/data_formats.md §4.1, plus
a `provenance` block that names the causal-verification feedback file the requests carried, with
its SHA-256), data/stage_1_failed_batches/<topic>.json,
data/stage_1_planned_batches/<topic>.json and the response cache.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from spt import stage_files
from spt.providers import (
    CostLimitReached,
    InvalidOutputError,
    LLMClient,
    LLMResponse,
    ProviderError,
    Refused,
    Usage,
    client_from_args,
)
from spt.stage_1 import diversity, files, validation
from spt.stage_1.plan import MAX_REPLACEMENT_ROUNDS, BatchCall, TopicPlan, build_request

log = logging.getLogger("spt.stage_1")


@dataclass
class TopicStats:
    batches_ok: int = 0
    batches_failed: int = 0
    batches_refused: int = 0  # failed (or came back short) because the model refused a call
    items: int = 0
    items_with_b: int = 0  # A/B samples; the rest are A-only (the base prompt asks for about half)
    items_fpt: int = 0  # false-positive tests (the base prompt asks for 5-10%)
    duplicates: int = 0
    invalid: int = 0  # generated samples set aside as invalid (stage_1/validation.py)
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0


@dataclass
class Run:
    args: argparse.Namespace
    client: LLMClient
    run_id: str
    timestamp: str
    stats: dict[str, TopicStats]
    cost_limit_reached: bool = False


@dataclass
class BatchProgress:
    """What one batch (its number, the samples it asks for, its variation hint) has gathered over its calls."""

    number: int
    size: int
    variation: str
    verification_feedback: dict  # files.PlannedBatch.feedback
    accepted: list[dict] = field(default_factory=list)
    normalised: list[dict] = field(default_factory=list)  # {"item": index in accepted, "fields": [...]}
    duplicates: list[str] = field(default_factory=list)  # tasks dropped as near-duplicates
    invalid: int = 0  # samples set aside as invalid
    last_problems: list[str] = field(default_factory=list)  # of the last answer's invalid samples
    feedback: list[str] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    cost: float = 0.0
    calls: int = 0
    all_cached: bool = True

    def add_answer(self, response: LLMResponse, triage: validation.AnswerTriage) -> None:
        self.usage += response.usage
        self.cost += response.cost_usd
        self.calls += response.attempts
        self.all_cached = self.all_cached and response.from_cache
        if response.tool_input["project_feedback"].strip():
            self.feedback.append(response.tool_input["project_feedback"].strip())
        self.invalid += len(triage.rejected)
        self.last_problems = [problem for problems in triage.rejected for problem in problems]


async def run_batch(
    run: Run, plan: TopicPlan, index: diversity.NearDuplicateIndex, planned: files.PlannedBatch, bar
) -> None:
    """One batch: ask, keep the valid samples that are no near-duplicates, ask for the missing count, write the file."""
    stats = run.stats[plan.topic]
    batch_number, size, variation = planned.batch_number, planned.num_items, planned.variation
    batch = BatchProgress(batch_number, size, variation, planned.feedback)
    failure = None
    for round_index in range(MAX_REPLACEMENT_ROUNDS + 1):
        need = size - len(batch.accepted)
        if need == 0:
            break
        avoid = [*planned.avoid, *(item["T"] for item in batch.accepted), *batch.duplicates]
        request = build_request(
            run.args,
            plan,
            BatchCall(
                batch_number,
                variation,
                need,
                avoid,
                round_index,
                batch.last_problems,
                planned.feedback.get("section", ""),
            ),
        )
        fpt_accepted = sum(1 for item in batch.accepted if item["metadata"]["difficulty"] == "FPT")
        triage = validation.AnswerTriage(plan.topic, need, validation.max_fpt_items(size) - fpt_accepted)
        try:
            response = await run.client.complete(request, normalize=triage)
        except CostLimitReached:
            run.cost_limit_reached = True
            failure = "stopped by --max_cost"
            break
        except InvalidOutputError as error:
            failure = "invalid answer after re-asking: " + "; ".join(error.problems[:3])
            if isinstance(error.last_response, LLMResponse):  # paid for, though unusable
                batch.usage += error.last_response.usage
                batch.cost += error.last_response.cost_usd
            break
        except Refused as error:  # an outcome, never re-asked: the samples it kept so far are written
            failure = str(error)
            stats.batches_refused += 1
            batch.usage += error.response.usage
            batch.cost += error.response.cost_usd
            break
        except ProviderError as error:
            if error.fatal:  # quota, a model that is gone: every other batch would fail alike
                raise
            failure = f"provider error: {error}"
            break
        batch.add_answer(response, triage)
        for item, fields in zip(response.tool_input["data"], triage.kept_fields):
            duplicate = index.match(item["T"])
            if duplicate is None:
                index.add(item["T"])
                if fields:
                    batch.normalised.append({"item": len(batch.accepted), "fields": fields})
                batch.accepted.append(item)
                bar.update(1)
            else:
                batch.duplicates.append(item["T"])
                log.info(
                    "%s batch %03d: dropped a near-duplicate task (similarity %.0f): %s",
                    plan.topic,
                    batch_number,
                    duplicate[1],
                    diversity.task_summary(item["T"]),
                )
        for problem in batch.last_problems:
            log.info("%s batch %03d: dropped an invalid sample: %s", plan.topic, batch_number, problem)
    stats.usage += batch.usage
    stats.cost_usd += batch.cost
    stats.duplicates += len(batch.duplicates)
    stats.invalid += batch.invalid
    accepted = batch.accepted
    if accepted:
        write_batch_file(run, plan, batch)
        stats.items += len(accepted)
        stats.items_with_b += sum(1 for item in accepted if "B" in stage_files.item_variants(item))
        stats.items_fpt += sum(1 for item in accepted if item["metadata"]["difficulty"] == "FPT")
    short = size - len(accepted)
    if failure is None and short == 0:
        stats.batches_ok += 1
        plan.failed.resolve(batch_number)
    else:
        record_failure(run, plan, batch, failure)
    if accepted or not run.cost_limit_reached:  # written, or recorded as failed: nothing left to resume
        plan.planned.finish(batch_number)


def record_failure(run: Run, plan: TopicPlan, batch: BatchProgress, failure: str | None) -> None:
    """Count and log a batch that failed or came back short; record it for a retry when it got nothing
    (unless --max_cost stopped it: then it stays planned, and the next run resumes it)."""
    stats = run.stats[plan.topic]
    short = batch.size - len(batch.accepted)
    if failure is None:
        failure = (
            f"{short} of {batch.size} samples missing after {batch.calls} calls ({len(batch.duplicates)} "
            f"near-duplicates and {batch.invalid} invalid samples dropped"
            + (f"; last problem: {batch.last_problems[-1]})" if batch.last_problems else ")")
        )
    stats.batches_failed += 1
    log.warning("%s batch %03d: %s", plan.topic, batch.number, failure)
    if not batch.accepted and not run.cost_limit_reached:
        plan.failed.record(batch.number, failure, run.run_id, now_iso())


def write_batch_file(run: Run, plan: TopicPlan, batch: BatchProgress) -> None:
    args = run.args
    batch_id = files.batch_id(plan.topic, run.timestamp, batch.number)
    document = {
        "batch_id": batch_id,
        "generation_timestamp": now_iso(),
        "model_used": args.model,
        "stage": 1,
        "topic": plan.topic,
        "project_feedback": "\n\n".join(batch.feedback),
        "data": batch.accepted,
        "provenance": {
            "run_id": run.run_id,
            "model": args.model,
            "provider": run.client.provider,
            "parameters": {
                "num_items_requested": batch.size,
                "max_tokens": args.max_tokens,
                "thinking_budget": args.thinking_budget,
                "effort": args.effort,
                "seed": args.seed,
                "batch_number": batch.number,
                "variation_hint": batch.variation,
                "batch_api": args.batch_api,
            },
            "prompt_sha256": plan.prompt_hashes,
            "usage": vars(batch.usage).copy(),
            "cost_usd": round(batch.cost, 6),
            "model_calls": batch.calls,
            "from_response_cache": batch.all_cached,
            "near_duplicates_dropped": len(batch.duplicates),
            "invalid_samples_dropped": batch.invalid,
            "normalised": batch.normalised,
            "verification_feedback": (
                {key: batch.verification_feedback[key] for key in ("file", "sha256")}
                if batch.verification_feedback
                else None
            ),
        },
    }
    path = files.write_batch(plan.topic, batch_id, document)
    log.debug("wrote %s", path)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


async def generate(args: argparse.Namespace, plans: list[TopicPlan]) -> Run:
    client = client_from_args(args, model=args.model)
    started = datetime.now(UTC)
    run = Run(
        args,
        client,
        run_id=f"{started:%Y%m%d_%H%M%S}_{uuid.uuid4().hex[:8]}",
        timestamp=f"{started:%Y%m%d_%H%M%S}",
        stats={plan.topic: TopicStats() for plan in plans},
    )
    async with client:
        for plan in plans:  # before the first paid call: a stopped run is resumed from it
            plan.planned.save()
        bar = client.progress_bar(total=sum(b.num_items for plan in plans for b in plan.batches), desc="stage 1")
        jobs = []
        for plan in plans:
            index = diversity.NearDuplicateIndex(plan.existing_tasks)
            jobs += [run_batch(run, plan, index, planned, bar) for planned in plan.batches]
        await asyncio.gather(*jobs)
    bar.close()
    return run
