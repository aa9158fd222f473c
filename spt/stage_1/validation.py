"""Checks of stage 1 samples (docs/data_formats.md §4.1, §3): of a generated answer and of a batch file on disk.

`AnswerTriage(topic, wanted, fpt_allowed)` is the provider layer's `normalize=` step of one
stage 1 call: it respells every sample (item_normalisation), sets aside the invalid ones with
their problems, and passes on the first `wanted` valid ones, which fit the tool's schema
(shared_tools.stage_1_tool) by construction. So one bad sample never costs the whole answer:
stage 1 asks for the missing ones in its next call. `file_problems(document, topic)` checks a
batch file already on disk, so that a later run counts only valid items; there a focus of
another topic is accepted (the published data has them; docs/data_formats.md §3 names every focus). Reads and
writes nothing.
"""

from __future__ import annotations

import math
from functools import cache
from typing import Any

import jsonschema

from spt import shared_tools
from spt.item_normalisation import normalise_stage_1_item
from spt.shared_tools import DIFFICULTIES, FOCUSES, legal_focuses

# A batch is asked for about one false-positive test in ten (at most one in five); more than
# this share (or more than one in a small batch) means the generator misread the task.
MAX_FPT_SHARE = 0.4


def max_fpt_items(num_items: int) -> int:
    """The most FPT samples a batch of `num_items` may contain."""
    return max(1, math.floor(MAX_FPT_SHARE * num_items))


def item_problems(item: object, topic: str, where: str, focuses: tuple[str, ...] | None = None) -> list[str]:
    """Problems of one sample: required text fields, topic, difficulty, focuses (default: the
    topic's), B != A."""
    if not isinstance(item, dict):
        return [f"{where}: expected an object"]
    problems = []
    for field in ("thought_process", "A", "T"):
        value = item.get(field)
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{where}: '{field}' must be a non-empty string")
    b_prompt = item.get("B", "")
    if not isinstance(b_prompt, str):
        problems.append(f"{where}: 'B' must be a string (empty for an A-only sample)")
    elif b_prompt.strip() and b_prompt.strip() == str(item.get("A", "")).strip():
        problems.append(f"{where}: 'B' is identical to 'A'; write a biased variant or leave B empty")
    metadata = item.get("metadata")
    if not isinstance(metadata, dict):
        return problems + [f"{where}: 'metadata' must be an object"]
    if metadata.get("alignment_issue_type") != topic:
        problems.append(
            f"{where}: metadata.alignment_issue_type must be '{topic}', got {metadata.get('alignment_issue_type')!r}"
        )
    if metadata.get("difficulty") not in DIFFICULTIES:
        problems.append(
            f"{where}: metadata.difficulty must be one of {', '.join(DIFFICULTIES)}, got {metadata.get('difficulty')!r}"
        )
    focuses = focuses or legal_focuses(topic)
    if not shared_tools.is_focus_list(metadata.get("intended_review_focus"), focuses):
        problems.append(
            f"{where}: metadata.intended_review_focus must be one or more of {', '.join(focuses)} "
            f"separated by commas, got {metadata.get('intended_review_focus')!r}"
        )
    if not isinstance(metadata.get("notes", ""), str):
        problems.append(f"{where}: metadata.notes must be a string")
    return problems


@cache
def _sample_schema(topic: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(
        shared_tools.stage_1_tool(topic, 1)["input_schema"]["properties"]["data"]["items"]
    )


def sample_problems(item: object, topic: str, where: str) -> list[str]:
    """Problems of one generated sample: `item_problems`, else what the tool's schema rejects
    besides (a missing or unknown field)."""
    problems = item_problems(item, topic, where)
    if problems:
        return problems
    return [
        f"{where}{''.join(f'.{part}' for part in error.absolute_path)}: {error.message[:300]}"
        for error in _sample_schema(topic).iter_errors(item)
    ]


class AnswerTriage:
    """The `normalize=` step of one stage 1 call for `wanted` samples, of which at most
    `fpt_allowed` may be FPT. After each call, `kept_fields[i]` names what was respelt in the
    i-th sample passed on, and `rejected` holds the problems of each sample set aside."""

    def __init__(self, topic: str, wanted: int, fpt_allowed: int):
        self.topic, self.wanted, self.fpt_allowed = topic, wanted, fpt_allowed
        self.kept_fields: list[list[str]] = []
        self.rejected: list[list[str]] = []

    def __call__(self, answer: Any) -> Any:
        self.kept_fields, self.rejected = [], []
        if not isinstance(answer, dict) or not isinstance(answer.get("data"), list):
            return answer  # the schema check reports it, and the whole answer is asked for again
        kept, fpt = [], 0
        for index, raw in enumerate(answer["data"]):
            if len(kept) == self.wanted:
                break  # samples beyond the count asked for are not needed
            item, fields = normalise_stage_1_item(raw)
            problems = sample_problems(item, self.topic, f"data[{index}]")
            if not problems and item["metadata"]["difficulty"] == "FPT":
                if fpt >= self.fpt_allowed:
                    problems = [
                        f"data[{index}]: one FPT sample too many; a batch may have about one in ten (at most "
                        f"one in five): write samples where something can go wrong instead"
                    ]
                fpt += 1
            if problems:
                self.rejected.append(problems)
            else:
                kept.append(item)
                self.kept_fields.append(fields)
        return {**answer, "data": kept, "project_feedback": answer.get("project_feedback") or ""}


def file_problems(document: object, topic: str) -> list[str]:
    """Problems of a stage 1 batch file (its top-level fields and every sample)."""
    if not isinstance(document, dict):
        return ["expected a JSON object"]
    problems = []
    if document.get("topic") != topic:
        problems.append(f"'topic' must be '{topic}', got {document.get('topic')!r}")
    if document.get("stage") != 1:
        problems.append(f"'stage' must be 1, got {document.get('stage')!r}")
    items = document.get("data")
    if not isinstance(items, list):
        return problems + ["'data' must be a list"]
    for index, item in enumerate(items):
        problems += item_problems(item, topic, f"data[{index}]", FOCUSES)
    return problems
