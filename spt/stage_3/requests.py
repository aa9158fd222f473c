"""The requests of stage 3: batch generation, the rewrite of rejected items and the quality review.

A `Sample` is one variant (A or B) of one stage-2 item as answered by one target model. Each
request carries two cached system blocks (the project's base prompt, then the rendered
`prompts/stage_3/<topic>__<family>.md` or the quality reviewer's prompt) and one user message
with the samples: the system prompt that was actually used, the other one for reference, T, S,
and the stage-1 author's plan and intended focus. Nothing from other target models or from
earlier interventions goes in. The item count is stated in that message, never in a tool's
description, so the generation and rewrite calls of a topic and family share one cached prefix
(tool + system blocks) once the tool schema is sent without array bounds, and its quality
reviews share another. `prompt_hashes` gives the SHA-256 of every prompt file a generation
depends on, recorded with each intervention. Every request asks for the lowest thinking the model
allows (THINKING) and budgets its answer only; the client adds the room for thinking. Reads prompt
files; writes nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache

from spt import shared_tools, stage_files
from spt.prompt_templates import load_prompt, prompt_sha256, render_prompt
from spt.providers.types import LLMRequest, Message, SystemBlock, Tool

BASE_PROMPT = "base_prompt.md"
QUALITY_REVIEW_PROMPT = "stage_3/_shared/quality_review.md"
# Every stage-3 call thinks as little as the model allows unless --effort / --thinking_budget is given: the
# answer schema has its own place for the generator's reasoning (batch_thinking), and thinking is billed as
# output (providers/thinking.py). The token budgets below are the answer's; the client adds the thinking room.
THINKING = "lowest"
GENERATION_TOKENS_PER_SAMPLE = 1200
GENERATION_TOKENS_BASE = 2048
MAX_GENERATION_TOKENS = 32000
QUALITY_REVIEW_TOKENS_BASE = 1024
QUALITY_REVIEW_TOKENS_PER_SAMPLE = 1024
# The fields of a generated item a quality reviewer judges (provenance is left out).
JUDGED_FIELDS = (
    "selected_review_focus",
    "confidence",
    "I",
    "R",
    "P",
    "detection_difficulty_internal",
    "detection_difficulty_external",
    "faulty_data",
)


@dataclass
class Sample:
    """One variant of one item as answered by one target model (the unit that gets an intervention)."""

    file_stem: str
    item_index: int
    model_id: str
    variant: str
    item: dict = field(repr=False)

    @property
    def inference(self) -> dict:
        return self.item["inferences"][self.model_id][self.variant]

    @property
    def label(self) -> str:
        return f"{self.file_stem}[{self.item_index}] {self.model_id} {self.variant}"


def topic_prompt_path(topic: str, intervention_type: str) -> str:
    """`prompts/`-relative path of the generation prompt of one topic and family."""
    return f"stage_3/{topic}__{intervention_type}.md"


def family_prompt_path(intervention_type: str) -> str:
    return f"stage_3/_shared/family_{intervention_type}.md"


def _family_values(intervention_type: str) -> dict[str, str]:
    if intervention_type in shared_tools.TOKEN_INTERVENTION_TYPES:
        return {"split_personality_token": shared_tools.SPLIT_PERSONALITY_TOKEN}
    return {}


def topic_prompt_values(topic: str, intervention_type: str) -> dict[str, str]:
    """The placeholder values of a topic x family prompt, all from the shared vocabulary."""
    return {
        "review_focuses": ", ".join(shared_tools.legal_focuses(topic)),
        "flags": ", ".join(shared_tools.FLAGS),
        "detection_difficulties": ", ".join(shared_tools.DETECTION_DIFFICULTIES),
        **_family_values(intervention_type),
    }


@cache
def base_prompt() -> str:
    return render_prompt(BASE_PROMPT)


@cache
def generation_system(topic: str, intervention_type: str) -> tuple[SystemBlock, ...]:
    topic_prompt = render_prompt(
        topic_prompt_path(topic, intervention_type), **topic_prompt_values(topic, intervention_type)
    )
    return SystemBlock(base_prompt(), cache=True), SystemBlock(topic_prompt, cache=True)


@cache
def quality_review_system(topic: str, intervention_type: str) -> tuple[SystemBlock, ...]:
    review_prompt = render_prompt(
        QUALITY_REVIEW_PROMPT,
        topic=topic,
        topic_criteria=load_prompt(f"stage_3/criteria/{topic}.md").strip(),
        family_rules=render_prompt(family_prompt_path(intervention_type), **_family_values(intervention_type)).strip(),
    )
    return SystemBlock(base_prompt(), cache=True), SystemBlock(review_prompt, cache=True)


def prompt_hashes(topic: str, intervention_type: str) -> dict[str, str]:
    """SHA-256 of every prompt file a generation of `topic` x `intervention_type` depends on."""
    hashes = {
        **prompt_sha256(BASE_PROMPT),
        **prompt_sha256(topic_prompt_path(topic, intervention_type)),
        **prompt_sha256(QUALITY_REVIEW_PROMPT),
    }
    return dict(sorted(hashes.items()))


# ---------------------------------------------------------------------------- sample text


def sample_text(sample: Sample, number: int) -> str:
    """One sample as the generator and the quality reviewer see it."""
    item = sample.item
    used = item[sample.variant]
    used_kind = "with added pressure" if sample.variant == "B" else "neutral"
    if sample.variant == "B":
        other = f'<other_system_prompt kind="neutral">\n{item["A"]}\n</other_system_prompt>'
    elif "B" in stage_files.item_variants(item):
        other = f'<other_system_prompt kind="with added pressure">\n{item["B"]}\n</other_system_prompt>'
    else:
        other = "<other_system_prompt>(none: this task was only run with the system prompt above)</other_system_prompt>"
    metadata = item.get("metadata") or {}
    return (
        f'<sample number="{number}">\n'
        f'<system_prompt_used kind="{used_kind}">\n{used}\n</system_prompt_used>\n'
        f"{other}\n"
        f"<user_task>\n{item['T']}\n</user_task>\n"
        f"<response>\n{sample.inference['S']}\n</response>\n"
        f"<author_notes>\n"
        f"Intended review focus: {metadata.get('intended_review_focus', 'not given')}; "
        f"designed difficulty: {metadata.get('difficulty', 'not given')}\n"
        f"{item.get('thought_process', '')}\n"
        f"</author_notes>\n"
        f"</sample>"
    )


def _generation_tool(topic: str, intervention_type: str, count: int) -> Tool:
    return Tool(**shared_tools.stage_3_tool(topic, intervention_type, count))


def _generation_max_tokens(count: int) -> int:
    return min(GENERATION_TOKENS_BASE + GENERATION_TOKENS_PER_SAMPLE * count, MAX_GENERATION_TOKENS)


def generation_request(model: str, topic: str, intervention_type: str, samples: list[Sample]) -> LLMRequest:
    """One call writing an intervention for every sample, in order."""
    body = "\n\n".join(sample_text(sample, number) for number, sample in enumerate(samples, start=1))
    text = f"Write one review for each of the {len(samples)} sample(s) below, in the order given.\n\n{body}"
    return LLMRequest(
        model=model,
        system=generation_system(topic, intervention_type),
        messages=(Message("user", text),),
        tool=_generation_tool(topic, intervention_type, len(samples)),
        max_tokens=_generation_max_tokens(len(samples)),
        thinking=THINKING,
        label=f"{topic} {intervention_type} x{len(samples)}",
    )


def judged_part(item: dict) -> str:
    return json.dumps({name: item[name] for name in JUDGED_FIELDS if name in item}, indent=2, ensure_ascii=False)


def rewrite_request(
    model: str, topic: str, intervention_type: str, rejected: list[tuple[Sample, dict, str]], attempt: int
) -> LLMRequest:
    """One call rewriting rejected items, each (sample, previous version, the reviewer's critique).
    Same system blocks and tool as generation_request, so it reads the same cached prefix."""
    body = "\n\n".join(
        f"{sample_text(sample, number)}\n"
        f'<previous_version sample="{number}">\n{judged_part(previous)}\n</previous_version>\n'
        f'<reviewer_critique sample="{number}">\n{critique}\n</reviewer_critique>'
        for number, (sample, previous, critique) in enumerate(rejected, start=1)
    )
    text = (
        f"A quality reviewer rejected your previous version of the review for each of the {len(rejected)} "
        "sample(s) below. Write each one again, in the order given: fix every point of its critique and "
        f"keep what was good.\n\n{body}"
    )
    return LLMRequest(
        model=model,
        system=generation_system(topic, intervention_type),
        messages=(Message("user", text),),
        tool=_generation_tool(topic, intervention_type, len(rejected)),
        max_tokens=_generation_max_tokens(len(rejected)),
        thinking=THINKING,
        label=f"{topic} {intervention_type} x{len(rejected)} rewrite {attempt}",
    )


def quality_review_request(
    model: str, topic: str, intervention_type: str, judged: list[tuple[Sample, dict]]
) -> LLMRequest:
    """One call judging the generated items of several samples, each (sample, item) on its own."""
    body = "\n\n".join(
        f'{sample_text(sample, number)}\n<example_to_judge sample="{number}">\n{judged_part(item)}\n</example_to_judge>'
        for number, (sample, item) in enumerate(judged, start=1)
    )
    text = (
        f"Judge each of the {len(judged)} example(s) below on its own. Answer with exactly {len(judged)} "
        f"verdict(s), one per sample, in sample order, each naming its sample number.\n\n{body}"
    )
    return LLMRequest(
        model=model,
        system=quality_review_system(topic, intervention_type),
        messages=(Message("user", text),),
        tool=Tool(**shared_tools.quality_review_tool()),
        max_tokens=min(
            QUALITY_REVIEW_TOKENS_BASE + QUALITY_REVIEW_TOKENS_PER_SAMPLE * len(judged), MAX_GENERATION_TOKENS
        ),
        thinking=THINKING,
        label=f"{topic} {intervention_type} x{len(judged)} quality review",
    )
