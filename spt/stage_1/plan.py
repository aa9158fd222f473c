"""What a stage 1 run does for each topic, and the request of one call.

- `plan_topic(topic, args, variation_config)`: the topic's samples on disk and the batches of
  this run: first the unfinished batches of a run that was stopped
  (data/stage_1_planned_batches/<topic>.json, as they were planned), then the topic's failed
  batches (retried under their own numbers), then new ones; how many and how large from --num_batches, --num_items_per_batch, --target_items and
  --trim_excess_samples. Each new batch gets its variation hint and the openings of the last
  tasks on disk to avoid, so its requests depend only on the plan and the answers, never on
  what other batches write meanwhile; and, unless --no_feedback, the causal-verification
  feedback of the topic (data/stage_1_feedback/<topic>.json, written by
  scripts/verify_ab_factors.py) rendered as a section of the request. With the rendered system prompt
  (prompts/base_prompt.md + prompts/stage_1/<topic>.md, both prompt-cached).
- `build_request(args, plan, call)`: one forced-tool call; its user message is
  prompts/stage_1/_shared/batch_request.md with the batch's variation hint, the openings of
  the tasks to avoid, the feedback section (prompts/stage_1/_shared/verification_feedback.md:
  kinds of factor to avoid and to try) and the problems of the last answer's invalid samples.

Reads prompts/base_prompt.md, prompts/stage_1/**, config/stage_1_variation.json,
data/stage_1/<topic>/batch_*.json, data/stage_1_failed_batches/<topic>.json,
data/stage_1_planned_batches/<topic>.json and data/stage_1_feedback/<topic>.json; writes nothing
(stage_1.generate saves the plan).
"""

from __future__ import annotations

import argparse
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from spt import shared_tools
from spt.prompt_templates import prompt_sha256, render_prompt
from spt.providers import LLMRequest, Message, SystemBlock, Tool
from spt.stage_1 import diversity, files
from spt.utils import DATA_DIR
from spt.verification.feedback import feedback_path, hint_lines, read_feedback

BASE_PROMPT = "base_prompt.md"
BATCH_REQUEST_PROMPT = "stage_1/_shared/batch_request.md"
REJECTED_SAMPLES_PROMPT = "stage_1/_shared/rejected_samples.md"
FEEDBACK_PROMPT = "stage_1/_shared/verification_feedback.md"
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
    failed: files.FailedBatches  # earlier runs' failed batches, retried first
    planned: files.PlannedBatches  # the unfinished batches, this run's included once it is saved
    batches: list[files.PlannedBatch]  # this run's, in order: resumed, retried, new
    resumed: int  # how many of them a stopped run had planned
    system: tuple[SystemBlock, ...]
    prompt_hashes: dict[str, str]

    @property
    def existing_items(self) -> int:
        return len(self.existing_tasks)


def plan_topic(topic: str, args: argparse.Namespace, variation_config: dict[str, list[str]]) -> TopicPlan:
    batches_on_disk = files.read_topic_batches(topic)
    existing_tasks = [item["T"] for batch in batches_on_disk for item in batch.items]
    on_disk = {b.batch_number for b in batches_on_disk if b.batch_number is not None}
    failed = files.FailedBatches(topic)
    planned = files.PlannedBatches(topic, on_disk)
    resumed, sizes = batch_sizes(args, len(existing_tasks), planned.unfinished())
    # Then the batches that failed in an earlier run, under their own numbers (same variation), then new ones.
    retry_numbers = [number for number in failed.numbers() if number not in planned.entries]
    fresh = itertools.count(max([*on_disk, *failed.numbers(), *planned.entries], default=0) + 1)
    numbers = retry_numbers[: len(sizes)] + [next(fresh) for _ in sizes[len(retry_numbers) :]]
    avoid = diversity.avoid_openings(existing_tasks)
    feedback = {} if args.no_feedback else verification_feedback(topic)
    new = [
        files.PlannedBatch(
            number, size, diversity.variation_hint(variation_config, args.seed, topic, number), avoid, feedback
        )
        for number, size in zip(numbers, sizes)
    ]
    planned.add(new)
    system_text = render_prompt(topic_prompt(topic), topic=topic, review_focuses=review_focuses_text(topic))
    system = (SystemBlock(render_prompt(BASE_PROMPT), cache=True), SystemBlock(system_text, cache=True))
    hashes = {
        **prompt_sha256(BASE_PROMPT),
        **prompt_sha256(topic_prompt(topic)),
        **prompt_sha256(BATCH_REQUEST_PROMPT),
        **prompt_sha256(REJECTED_SAMPLES_PROMPT),
        **prompt_sha256(FEEDBACK_PROMPT),
    }
    return TopicPlan(topic, existing_tasks, failed, planned, resumed + new, len(resumed), system, hashes)


def batch_sizes(
    args: argparse.Namespace, existing_items: int, unfinished: list[files.PlannedBatch]
) -> tuple[list[files.PlannedBatch], list[int]]:
    """(the unfinished batches this run resumes, the sizes of its other batches): --num_batches
    batches (default 1), or with --target_items as many as the missing samples need (at most
    --num_batches); the unfinished batches of a stopped run come first and count toward both."""
    per_batch = args.num_items_per_batch
    if args.target_items is None:
        count = args.num_batches or 1
        return unfinished[:count], [per_batch] * max(0, count - len(unfinished))
    missing = max(0, args.target_items - existing_items)
    resumed = []
    for batch in unfinished:
        if sum(b.num_items for b in resumed) >= missing:
            break
        resumed.append(batch)
    missing = max(0, missing - sum(b.num_items for b in resumed))
    sizes = [per_batch] * math.ceil(missing / per_batch)
    if args.trim_excess_samples and missing % per_batch:
        sizes[-1] = missing % per_batch
    if args.num_batches is not None:
        resumed = resumed[: args.num_batches]
        sizes = sizes[: args.num_batches - len(resumed)]
    return resumed, sizes


def verification_feedback(topic: str) -> dict[str, str]:
    """The topic's causal-verification feedback as a batch plans it: the file, its SHA-256 and the
    rendered request section; {} when there is no file or it names no kind to avoid or to try."""
    found = read_feedback(topic)
    if found is None:
        return {}
    document, sha256 = found
    if not document["avoid"] and not document["try"]:
        return {}
    section = render_prompt(
        FEEDBACK_PROMPT,
        avoid_kinds="\n".join(hint_lines(document, "avoid")) or "(none yet)",
        try_kinds="\n".join(hint_lines(document, "try")) or "(none yet)",
    )
    return {"file": feedback_path(topic).relative_to(DATA_DIR).as_posix(), "sha256": sha256, "section": section}


def rejected_samples_block(problems: Sequence[str]) -> str:
    """The request's section naming the invalid samples of the last answer ("" when there were none)."""
    if not problems:
        return ""
    return render_prompt(REJECTED_SAMPLES_PROMPT, problems="\n".join(f"- {problem}" for problem in problems))


@dataclass(frozen=True)
class BatchCall:
    """One call of a batch: how many samples it asks for and what its user message shows."""

    batch_number: int
    variation: str  # the batch's variation hint (diversity.variation_hint)
    num_items: int
    avoid: Sequence[str]  # tasks (or their openings) whose openings the request asks to steer away from
    round_index: int = 0  # 0: the batch's first call; then the calls for replacements
    rejected: Sequence[str] = ()  # the problems of the last answer's invalid samples
    feedback: str = ""  # the causal-verification feedback section ("" when none)


def build_request(args: argparse.Namespace, plan: TopicPlan, call: BatchCall) -> LLMRequest:
    user = render_prompt(
        BATCH_REQUEST_PROMPT,
        num_items=call.num_items,
        topic=plan.topic,
        variation_hint=call.variation,
        avoid_tasks=diversity.avoid_tasks_block(call.avoid),
        verification_feedback=call.feedback,
        rejected_samples=rejected_samples_block(call.rejected),
    )
    tool = shared_tools.stage_1_tool(plan.topic, call.num_items)
    label = f"{plan.topic} batch {call.batch_number:03d}" + (f" round {call.round_index}" if call.round_index else "")
    return LLMRequest(
        model=args.model,
        system=plan.system,
        messages=(Message("user", user),),
        tool=Tool(tool["name"], tool["description"], tool["input_schema"]),
        # The answer's budget; the generator thinks at the model's own setting (the samples' quality is the
        # point of the stage, --effort / --thinking_budget change it) and the client adds the room for it.
        max_tokens=args.max_tokens,
        thinking="default",
        sample_index=call.batch_number * (MAX_REPLACEMENT_ROUNDS + 1) + call.round_index,
        label=label,
    )
