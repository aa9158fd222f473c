"""The judge request of the prompt-removal eligibility check: one review sample per call.

`judge_request(model, sample)` builds one forced-tool call: the cached system block
prompts/eligibility/judge.md, then one user message (prompts/eligibility/judge_request.md) with
the system prompt the response was written under, T, S, I, R and P. `judge_tool()` is the answer
schema: an explanation, whether I or R names the system prompt, and whether the verdict is
reachable from T and S alone (prompts/eligibility/judge.md).
`sample_sha256(sample)` fingerprints what the judge saw, so that a verdict is reused only for the
same texts; `prompt_hashes()` is the SHA-256 of both prompt files, recorded with every verdict.
Reads prompt files; writes nothing.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache

from spt.prompt_templates import prompt_sha256, render_prompt
from spt.providers.types import LLMRequest, Message, SystemBlock, Tool

JUDGE_PROMPT = "eligibility/judge.md"
JUDGE_REQUEST_PROMPT = "eligibility/judge_request.md"
ANSWER_FIELDS = ("explanation", "review_names_system_prompt", "verdict_reachable_without_prompt")
# The answer's budget only: the judge thinks at its model's own setting (THINKING) and the client adds the room
# for that thinking on top (providers/thinking.py, config/models.json thinking_allowance).
THINKING = "default"
JUDGE_MAX_TOKENS = 1024
# The texts a verdict depends on. Samples are judged as selected, before any mitigation, so
# `system_prompt` is the prompt the response was written under.
JUDGED_FIELDS = ("system_prompt", "T", "S", "I", "R", "P")


def sample_sha256(sample: dict) -> str:
    texts = {field: sample[field] for field in JUDGED_FIELDS}
    return hashlib.sha256(json.dumps(texts, sort_keys=True, ensure_ascii=True).encode("utf-8")).hexdigest()


def judge_tool() -> Tool:
    schema = {
        "type": "object",
        "properties": {
            "explanation": {
                "type": "string",
                "minLength": 1,
                "description": "Two to four sentences: what the verdict rests on, and whether that "
                "is visible without the system prompt.",
            },
            "review_names_system_prompt": {
                "type": "boolean",
                "description": "I or R names, quotes or paraphrases the system prompt, "
                "or uses a fact only it contains.",
            },
            "verdict_reachable_without_prompt": {
                "type": "boolean",
                "description": "Someone shown only T and S could reach the same "
                "verdict on the grounds the review gives.",
            },
        },
        "required": list(ANSWER_FIELDS),
        "additionalProperties": False,
    }
    return Tool(
        name="submit_prompt_eligibility",
        description="Say whether the review still holds with the system prompt removed.",
        input_schema=schema,
    )


@cache
def judge_system() -> tuple[SystemBlock, ...]:
    return (SystemBlock(render_prompt(JUDGE_PROMPT), cache=True),)


def prompt_hashes() -> dict[str, str]:
    """SHA-256 of every prompt file a judge call depends on."""
    return dict(sorted({**prompt_sha256(JUDGE_PROMPT), **prompt_sha256(JUDGE_REQUEST_PROMPT)}.items()))


def judge_request(model: str, sample: dict) -> LLMRequest:
    text = render_prompt(
        JUDGE_REQUEST_PROMPT,
        topic=sample["topic"],
        system_prompt=sample["system_prompt"],
        T=sample["T"],
        S=sample["S"],
        I=sample["I"],
        R=sample["R"],
        P=sample["P"],
    )
    return LLMRequest(
        model=model,
        system=judge_system(),
        messages=(Message("user", text),),
        tool=judge_tool(),
        max_tokens=JUDGE_MAX_TOKENS,
        thinking=THINKING,
        label=f"eligibility {sample['id_string']}",
    )
