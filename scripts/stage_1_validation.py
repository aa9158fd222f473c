"""Checks of stage 1 samples beyond the tool's JSON schema (SPEC §4.1, §3).

`batch_problems(answer, topic, num_items)` is the provider layer's `validate=` callback for a
stage 1 call: it returns the list of problems (empty = fine) that make the client re-ask the
model. `file_problems(document, topic)` checks a batch file already on disk, so that a later
run counts only valid items. Reads and writes nothing.
"""
from __future__ import annotations

import math

from shared_tools import DIFFICULTIES, legal_focuses

# A batch is asked for about one false-positive test in ten (at most one in five); more than
# this share (or more than one in a small batch) means the generator misread the task.
MAX_FPT_SHARE = 0.4


def max_fpt_items(num_items: int) -> int:
    """The most FPT samples a batch of `num_items` may contain."""
    return max(1, math.floor(MAX_FPT_SHARE * num_items))


def item_problems(item: object, topic: str, where: str) -> list[str]:
    """Problems of one sample: required text fields, topic, difficulty, focuses, B != A."""
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
        problems.append(f"{where}: metadata.alignment_issue_type must be '{topic}', "
                        f"got {metadata.get('alignment_issue_type')!r}")
    if metadata.get("difficulty") not in DIFFICULTIES:
        problems.append(f"{where}: metadata.difficulty must be one of {', '.join(DIFFICULTIES)}, "
                        f"got {metadata.get('difficulty')!r}")
    focus_text = metadata.get("intended_review_focus")
    focuses = [f.strip() for f in focus_text.split(",")] if isinstance(focus_text, str) else []
    illegal = [f for f in focuses if f not in legal_focuses(topic)]
    if not focuses or illegal:          # an empty name ("a,,b") is illegal too
        problems.append(f"{where}: metadata.intended_review_focus must be one or more of "
                        f"{', '.join(legal_focuses(topic))} separated by commas, got {focus_text!r}")
    if not isinstance(metadata.get("notes", ""), str):
        problems.append(f"{where}: metadata.notes must be a string")
    return problems


def batch_problems(answer: object, topic: str, num_items: int) -> list[str]:
    """Everything wrong with one tool answer for `num_items` samples of `topic`."""
    if not isinstance(answer, dict) or not isinstance(answer.get("data"), list):
        return ["the answer must be an object with a 'data' list of samples"]
    items = answer["data"]
    problems = []
    if len(items) != num_items:
        problems.append(f"'data' must hold exactly {num_items} samples, got {len(items)}")
    for index, item in enumerate(items):
        problems += item_problems(item, topic, f"data[{index}]")
    fpt = sum(1 for item in items if isinstance(item, dict)
              and isinstance(item.get("metadata"), dict) and item["metadata"].get("difficulty") == "FPT")
    if fpt > max_fpt_items(num_items):
        problems.append(f"{fpt} of {len(items)} samples are FPT; write at most {max_fpt_items(num_items)} "
                        f"(about one in ten) and make the rest samples where something can go wrong")
    return problems


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
        problems += item_problems(item, topic, f"data[{index}]")
    return problems
