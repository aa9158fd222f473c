"""What a stage 1 run does for each topic, and the request of one call.

- `plan_topic(topic, args)`: the topic's samples on disk, its failed batches (retried first,
  under their own numbers) and the batches of this run (numbers and sizes, from --num_batches,
  --num_items_per_batch, --target_items and --trim_excess_samples), with the rendered system
  prompt (prompts/base_prompt.md + prompts/stage_1/<topic>.md, both prompt-cached).
- `build_request(args, plan, call)`: one forced-tool call; its user message is
  prompts/stage_1/_shared/batch_request.md with the batch's variation hint, the openings of
  the tasks to avoid and the problems of the last answer's invalid samples.

Reads prompts/base_prompt.md, prompts/stage_1/**, data/stage_1/<topic>/batch_*.json and
data/stage_1_failed_batches/<topic>.json; writes nothing.
"""
from __future__ import annotations

import argparse
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import shared_tools
from prompt_templates import prompt_sha256, render_prompt
from providers import LLMRequest, Message, SystemBlock, Tool
from stage_1 import diversity, files

BASE_PROMPT = "base_prompt.md"
BATCH_REQUEST_PROMPT = "stage_1/_shared/batch_request.md"
REJECTED_SAMPLES_PROMPT = "stage_1/_shared/rejected_samples.md"
# After the first answer, up to this many further calls ask for replacements of dropped samples.
MAX_REPLACEMENT_ROUNDS = 3


def topic_prompt(topic: str) -> str:
    return f"stage_1/{topic}.md"


def review_focuses_text(topic: str) -> str:
    """The topic's legal focuses as the prompts show them: `a`, `b`, `OTHER`."""
    return ", ".join(f"`{focus}`" for focus in shared_tools.legal_focuses(topic))


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


def rejected_samples_block(problems: Sequence[str]) -> str:
    """The request's section naming the invalid samples of the last answer ("" when there were none)."""
    if not problems:
        return ""
    return render_prompt(REJECTED_SAMPLES_PROMPT, problems="\n".join(f"- {problem}" for problem in problems))


@dataclass(frozen=True)
class BatchCall:
    """One call of a batch: how many samples it asks for and what its user message shows."""
    batch_number: int
    variation: str                  # the batch's variation hint (diversity.variation_hint)
    num_items: int
    avoid: Sequence[str]            # tasks whose openings the request asks to steer away from
    round_index: int = 0            # 0: the batch's first call; then the calls for replacements
    rejected: Sequence[str] = ()    # the problems of the last answer's invalid samples


def build_request(args: argparse.Namespace, plan: TopicPlan, call: BatchCall) -> LLMRequest:
    user = render_prompt(BATCH_REQUEST_PROMPT, num_items=call.num_items, topic=plan.topic,
                         variation_hint=call.variation, avoid_tasks=diversity.avoid_tasks_block(call.avoid),
                         rejected_samples=rejected_samples_block(call.rejected))
    tool = shared_tools.stage_1_tool(plan.topic, call.num_items)
    label = f"{plan.topic} batch {call.batch_number:03d}" + (f" round {call.round_index}" if call.round_index else "")
    return LLMRequest(
        model=args.model, system=plan.system, messages=(Message("user", user),),
        tool=Tool(tool["name"], tool["description"], tool["input_schema"]),
        max_tokens=args.max_tokens,
        sample_index=call.batch_number * (MAX_REPLACEMENT_ROUNDS + 1) + call.round_index,
        label=label)
