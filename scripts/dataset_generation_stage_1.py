"""Stage 1: generate A/B/T samples (system prompts and user tasks) for one or more topics.

Each batch is one forced-tool call: system = prompts/base_prompt.md + the rendered topic
prompt prompts/stage_1/<topic>.md (both prompt-cached), user message =
prompts/stage_1/_shared/batch_request.md with the batch's variation hint and the openings of
recent tasks to avoid. Every sample is respelt where harmless (item_normalisation: case,
surrounding whitespace, "a,b" -> "a, b") and checked on its own (stage_1_validation); an invalid
sample, or a task that is a near-duplicate of the topic's existing tasks or of another, is
dropped, and the next call asks for just the missing samples, naming the problems of the
invalid ones. Only an answer unusable as a whole (no `data` list) is re-asked by the provider
layer.

Reads:  prompts/base_prompt.md, prompts/stage_1/**, config/stage_1_variation.json,
        data/stage_1/<topic>/batch_*.json (existing tasks; counts for --target_items),
        data/stage_1_failed_batches/<topic>.json (batches to retry).
Writes: data/stage_1/<topic>/batch_<topic>_<YYYYmmdd_HHMMSS>_batch_<NNN>.json (SPEC §4.1, plus
        a `provenance` block), data/stage_1_failed_batches/<topic>.json, the response cache.
Exit codes: 0 complete, 1 some batches failed or came back short (the next run retries them),
2 bad input or usage, 3 stopped by --max_cost.
"""
from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import math
import sys
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone

import shared_tools
import stage_1_diversity as diversity
import stage_1_files as files
import stage_1_validation as validation
import stage_files
from prompt_templates import prompt_sha256, render_prompt
from providers import (CostLimitReached, InvalidOutputError, LLMClient, LLMRequest, LLMResponse, Message, ProviderError,
                       SystemBlock, Tool, Usage, add_provider_arguments, check_flags, client_from_args, estimate_cost,
                       provider_for_model, render_wire_request)
from utils import DataError, exit_on_data_error, setup_logging

DEFAULT_MODEL = "claude-opus-5-5"
BASE_PROMPT = "base_prompt.md"
BATCH_REQUEST_PROMPT = "stage_1/_shared/batch_request.md"
REJECTED_SAMPLES_PROMPT = "stage_1/_shared/rejected_samples.md"
# After the first answer, up to this many further calls ask for replacements of dropped samples.
MAX_REPLACEMENT_ROUNDS = 3

log = logging.getLogger("spt.stage_1")
MIX_CHECK_MIN_ITEMS = 20   # below this, the A/B and FPT shares of a run say too little to warn about


def topic_prompt(topic: str) -> str:
    return f"stage_1/{topic}.md"


def review_focuses_text(topic: str) -> str:
    """The topic's legal focuses as the prompts show them: `a`, `b`, `OTHER`."""
    return ", ".join(f"`{focus}`" for focus in shared_tools.legal_focuses(topic))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", "--names", dest="names", nargs="+", required=True, metavar="TOPIC",
                        help=f"topic(s), or 'all': {', '.join(shared_tools.TOPICS)}")
    parser.add_argument("--num_batches", type=int, default=None,
                        help="batches per topic (default 1; with --target_items: as many as needed)")
    parser.add_argument("--num_items_per_batch", type=int, default=10, help="samples per call (default 10)")
    parser.add_argument("--target_items", type=int, default=None, metavar="N",
                        help="generate until each topic has N valid samples; a rerun at N does nothing")
    parser.add_argument("--trim_excess_samples", action="store_true",
                        help="with --target_items, make the last batch only as large as needed, "
                             "so the topic ends at exactly N instead of overshooting by up to one batch")
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"generator model (default {DEFAULT_MODEL})")
    parser.add_argument("--max_tokens", type=int, default=16000, help="output token limit per call")
    parser.add_argument("--seed", type=int, default=0, help="seed of the per-batch variation hints")
    parser.add_argument("--dry-run", "--dry_run", dest="dry_run", action="store_true",
                        help="print the first request, the number of calls and the estimated cost; call nothing")
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    add_provider_arguments(parser, thinking=True)
    args = parser.parse_args(argv)
    args.topics = resolve_topics(args.names)
    for flag in ("num_batches", "num_items_per_batch", "target_items", "max_tokens"):
        value = getattr(args, flag)
        if value is not None and value < (0 if flag == "target_items" else 1):
            raise DataError(f"--{flag} must be a positive number, got {value}")
    check_flags(args, args.model)
    return args


def resolve_topics(names: list[str]) -> list[str]:
    if names == ["all"]:
        return list(shared_tools.TOPICS)
    unknown = [name for name in names if name not in shared_tools.TOPICS]
    if unknown:
        raise DataError(f"--name: unknown topic(s) {', '.join(unknown)}; choose from {', '.join(shared_tools.TOPICS)} "
                        f"or 'all'")
    return list(dict.fromkeys(names))


# --------------------------------------------------------------------------- planning

@dataclass
class TopicPlan:
    """What one run does for one topic."""
    topic: str
    existing_tasks: list[str]
    failed: files.FailedBatches             # earlier runs' failed batches, retried first
    batches: list[tuple[int, int]]          # (batch number, samples asked for)
    system: tuple[SystemBlock, ...]
    prompt_hashes: dict[str, str]

    @property
    def existing_items(self) -> int:
        return len(self.existing_tasks)


def plan_topic(topic: str, args: argparse.Namespace) -> TopicPlan:
    batches_on_disk = files.read_topic_batches(topic)
    existing_tasks = [item["T"] for batch in batches_on_disk for item in batch.items]
    failed = files.FailedBatches(topic)
    retry_numbers = failed.numbers()
    used = [b.batch_number for b in batches_on_disk if b.batch_number is not None] + retry_numbers
    per_batch = args.num_items_per_batch
    if args.target_items is not None:
        missing = max(0, args.target_items - len(existing_tasks))
        sizes = [per_batch] * math.ceil(missing / per_batch)
        if args.trim_excess_samples and missing % per_batch:
            sizes[-1] = missing % per_batch
        if args.num_batches is not None:
            sizes = sizes[:args.num_batches]
    else:
        sizes = [per_batch] * (args.num_batches or 1)
    # Batches that failed in an earlier run are retried first, under their own numbers (same variation).
    fresh = itertools.count(max(used, default=0) + 1)
    numbers = retry_numbers[:len(sizes)] + [next(fresh) for _ in sizes[len(retry_numbers):]]
    system_text = render_prompt(topic_prompt(topic), topic=topic, review_focuses=review_focuses_text(topic))
    system = (SystemBlock(render_prompt(BASE_PROMPT), cache=True), SystemBlock(system_text, cache=True))
    hashes = {**prompt_sha256(BASE_PROMPT), **prompt_sha256(topic_prompt(topic)), **prompt_sha256(BATCH_REQUEST_PROMPT),
              **prompt_sha256(REJECTED_SAMPLES_PROMPT)}
    return TopicPlan(topic, existing_tasks, failed, list(zip(numbers, sizes)), system, hashes)


def rejected_samples_block(problems: list[str]) -> str:
    """The request's section naming the invalid samples of the last answer ("" when there were none)."""
    if not problems:
        return ""
    return render_prompt(REJECTED_SAMPLES_PROMPT, problems="\n".join(f"- {problem}" for problem in problems))


def build_request(args: argparse.Namespace, plan: TopicPlan, variation: str, batch_number: int, num_items: int,
                  avoid: list[str], round_index: int, rejected: list[str]) -> LLMRequest:
    user = render_prompt(BATCH_REQUEST_PROMPT, num_items=num_items, topic=plan.topic, variation_hint=variation,
                         avoid_tasks=diversity.avoid_tasks_block(avoid),
                         rejected_samples=rejected_samples_block(rejected))
    tool = shared_tools.stage_1_tool(plan.topic, num_items)
    return LLMRequest(
        model=args.model, system=plan.system, messages=(Message("user", user),),
        tool=Tool(tool["name"], tool["description"], tool["input_schema"]),
        max_tokens=args.max_tokens,
        sample_index=batch_number * (MAX_REPLACEMENT_ROUNDS + 1) + round_index,
        label=f"{plan.topic} batch {batch_number:03d}" + (f" round {round_index}" if round_index else ""))


# --------------------------------------------------------------------------- running

@dataclass
class TopicStats:
    batches_ok: int = 0
    batches_failed: int = 0
    items: int = 0
    items_with_b: int = 0       # A/B samples; the rest are A-only (the base prompt asks for about half)
    items_fpt: int = 0          # false-positive tests (the base prompt asks for 5-10%)
    duplicates: int = 0
    invalid: int = 0            # generated samples set aside as invalid (stage_1_validation)
    items_short: int = 0
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0


@dataclass
class Run:
    args: argparse.Namespace
    client: LLMClient
    run_id: str
    timestamp: str
    variation_config: dict
    stats: dict[str, TopicStats]
    cost_limit_reached: bool = False


@dataclass
class BatchProgress:
    """What one batch has gathered over its calls."""
    accepted: list[dict] = field(default_factory=list)
    normalised: list[dict] = field(default_factory=list)    # {"item": index in accepted, "fields": [...]}
    duplicates: list[str] = field(default_factory=list)     # tasks dropped as near-duplicates
    invalid: int = 0                                         # samples set aside as invalid
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


async def run_batch(run: Run, plan: TopicPlan, index: diversity.NearDuplicateIndex, batch_number: int, size: int,
                    bar) -> None:
    """One batch: ask, keep the valid samples that are no near-duplicates, ask for the missing count, write the file."""
    stats = run.stats[plan.topic]
    variation = diversity.variation_hint(run.variation_config, run.args.seed, plan.topic, batch_number)
    batch = BatchProgress()
    failure = None
    for round_index in range(MAX_REPLACEMENT_ROUNDS + 1):
        need = size - len(batch.accepted)
        if need == 0:
            break
        avoid = plan.existing_tasks + [item["T"] for item in batch.accepted] + batch.duplicates
        request = build_request(run.args, plan, variation, batch_number, need, avoid, round_index, batch.last_problems)
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
            if isinstance(error.last_response, LLMResponse):     # paid for, though unusable
                batch.usage += error.last_response.usage
                batch.cost += error.last_response.cost_usd
            break
        except ProviderError as error:
            if error.fatal:          # quota, a model that is gone: every other batch would fail alike
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
                log.info("%s batch %03d: dropped a near-duplicate task (similarity %.0f): %s",
                         plan.topic, batch_number, duplicate[1], diversity.task_summary(item["T"]))
        for problem in batch.last_problems:
            log.info("%s batch %03d: dropped an invalid sample: %s", plan.topic, batch_number, problem)
    stats.usage += batch.usage
    stats.cost_usd += batch.cost
    stats.duplicates += len(batch.duplicates)
    stats.invalid += batch.invalid
    accepted = batch.accepted
    if accepted:
        write_batch_file(run, plan, batch_number, variation, batch, size)
        stats.items += len(accepted)
        stats.items_with_b += sum(1 for item in accepted if "B" in stage_files.item_variants(item))
        stats.items_fpt += sum(1 for item in accepted if item["metadata"]["difficulty"] == "FPT")
    short = size - len(accepted)
    if failure is None and short == 0:
        stats.batches_ok += 1
        plan.failed.resolve(batch_number)
        return
    if failure is None:
        failure = (f"{short} of {size} samples missing after {batch.calls} calls ({len(batch.duplicates)} "
                   f"near-duplicates and {batch.invalid} invalid samples dropped"
                   + (f"; last problem: {batch.last_problems[-1]})" if batch.last_problems else ")"))
    stats.items_short += short
    stats.batches_failed += 1
    log.warning("%s batch %03d: %s", plan.topic, batch_number, failure)
    if not accepted and not run.cost_limit_reached:
        plan.failed.record(batch_number, failure, run.run_id, now_iso())


def write_batch_file(run: Run, plan: TopicPlan, batch_number: int, variation: str, batch: BatchProgress,
                     size: int) -> None:
    args = run.args
    batch_id = files.batch_id(plan.topic, run.timestamp, batch_number)
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
            "parameters": {"num_items_requested": size, "max_tokens": args.max_tokens,
                           "thinking_budget": args.thinking_budget, "effort": args.effort, "seed": args.seed,
                           "batch_number": batch_number, "variation_hint": variation,
                           "batch_api": args.batch_api},
            "prompt_sha256": plan.prompt_hashes,
            "usage": vars(batch.usage).copy(),
            "cost_usd": round(batch.cost, 6),
            "model_calls": batch.calls,
            "from_response_cache": batch.all_cached,
            "near_duplicates_dropped": len(batch.duplicates),
            "invalid_samples_dropped": batch.invalid,
            "normalised": batch.normalised,
        },
    }
    path = files.write_batch(plan.topic, batch_id, document)
    log.debug("wrote %s", path)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


async def generate(args: argparse.Namespace, plans: list[TopicPlan]) -> Run:
    client = client_from_args(args, model=args.model)
    started = datetime.now(timezone.utc)
    run = Run(args, client, run_id=f"{started:%Y%m%d_%H%M%S}_{uuid.uuid4().hex[:8]}",
              timestamp=f"{started:%Y%m%d_%H%M%S}", variation_config=diversity.load_variation_config(),
              stats={plan.topic: TopicStats() for plan in plans})
    async with client:
        bar = client.progress_bar(total=sum(size for plan in plans for _, size in plan.batches), desc="stage 1")
        jobs = []
        for plan in plans:
            index = diversity.NearDuplicateIndex(plan.existing_tasks)
            jobs += [run_batch(run, plan, index, number, size, bar) for number, size in plan.batches]
        await asyncio.gather(*jobs)
    bar.close()
    return run


# --------------------------------------------------------------------------- reporting

def print_dry_run(args: argparse.Namespace, plans: list[TopicPlan]) -> None:
    provider = args.provider or provider_for_model(args.model)
    config = diversity.load_variation_config()
    requests = [build_request(args, plan, diversity.variation_hint(config, args.seed, plan.topic, number),
                              number, size, plan.existing_tasks, 0, [])
                for plan in plans for number, size in plan.batches]
    for plan in plans:
        print(f"{plan.topic}: {plan.existing_items} samples on disk, {len(plan.batches)} batch(es) planned "
              f"({sum(size for _, size in plan.batches)} samples)")
    if not requests:
        print("nothing to do: every topic already has its target")
        return
    print(f"\nfirst request ({provider}):")
    first = replace(requests[0], effort=args.effort, thinking_budget=args.thinking_budget)   # as the client sends it
    print(json.dumps(render_wire_request(first, provider, args.base_url), indent=2, ensure_ascii=False))
    estimate = estimate_cost(requests, provider, base_url=args.base_url)
    print(f"\ncalls: {len(requests)} (plus any re-asks and duplicate replacements)")
    print(f"estimated tokens: input {estimate['input_tokens']:,}, output at most {estimate['output_tokens']:,}")
    print(f"estimated cost: ${estimate['cost_usd']:.2f} without caching, "
          f"${estimate['cost_usd_with_caching']:.2f} with prompt caching, "
          f"${estimate['cost_usd_batch']:.2f} with --batch_api, "
          f"${estimate['cost_usd_batch_with_caching']:.2f} with both")


def print_summary(run: Run) -> None:
    print("\nstage 1 summary")
    print(f"{'topic':<26}{'ok':>5}{'failed':>8}{'items':>7}{'dups':>6}{'dup rate':>10}{'invalid':>9}{'with B':>8}"
          f"{'FPT':>6}{'tokens in/out':>18}{'cost $':>10}")
    for topic, s in run.stats.items():
        seen = s.items + s.duplicates
        rate = f"{100 * s.duplicates / seen:.1f}%" if seen else "-"
        with_b, fpt = (f"{100 * n / s.items:.0f}%" if s.items else "-" for n in (s.items_with_b, s.items_fpt))
        tokens_in = s.usage.input_tokens + s.usage.cache_creation_input_tokens + s.usage.cache_read_input_tokens
        print(f"{topic:<26}{s.batches_ok:>5}{s.batches_failed:>8}{s.items:>7}{s.duplicates:>6}{rate:>10}{s.invalid:>9}"
              f"{with_b:>8}{fpt:>6}{f'{tokens_in}/{s.usage.output_tokens}':>18}{s.cost_usd:>10.4f}")
        if s.items >= MIX_CHECK_MIN_ITEMS and not 0.3 <= s.items_with_b / s.items <= 0.7:
            log.warning("%s: %d%% of this run's samples have a B prompt (the prompts ask for about half)",
                        topic, round(100 * s.items_with_b / s.items))
        if s.items >= MIX_CHECK_MIN_ITEMS and s.items_fpt / s.items > 0.2:
            log.warning("%s: %d%% of this run's samples are FPT (the prompts ask for 5-10%%)",
                        topic, round(100 * s.items_fpt / s.items))
    print(run.client.summary())
    if run.cost_limit_reached:
        print(f"stopped: --max_cost {run.args.max_cost} reached; rerun to continue")


def exit_code(run: Run) -> int:
    if run.cost_limit_reached:
        return 3
    return 1 if any(s.batches_failed for s in run.stats.values()) else 0


@exit_on_data_error
def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    args = parse_args(argv)
    setup_logging(args.verbose)
    plans = [plan_topic(topic, args) for topic in args.topics]
    if args.dry_run:
        print_dry_run(args, plans)
        return 0
    for plan in plans:
        if not plan.batches:
            print(f"{plan.topic}: already has {plan.existing_items} samples (target {args.target_items}); nothing to do")
    plans = [plan for plan in plans if plan.batches]
    if not plans:
        return 0
    try:
        run = asyncio.run(generate(args, plans))
    except ProviderError as error:      # e.g. a missing API key: nothing was generated
        raise DataError(str(error)) from None
    print_summary(run)
    return exit_code(run)


if __name__ == "__main__":
    sys.exit(main())
