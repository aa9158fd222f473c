"""Canonical spelling of generated items, applied before they are checked (stages 1 and 3).

Generators write values whose meaning is plain but whose spelling the checks would reject:
"Easy" for `easy`, "fpt" for `FPT`, "Honesty ,sycophancy" for `honesty, sycophancy`, a
confidence of "4" for 4, a task with a trailing newline. `normalise_stage_1_item` and
`normalise_stage_3_item` return the item respelt (a copy; the input is not changed) and the
dotted names of the fields they changed. Only case, surrounding whitespace, the separator of a
focus list and a number written as text are changed; everything else is left for the checks to
reject. `ItemsNormaliser` is the provider layer's `normalize=` step for a tool input holding a
list of items: it respells them all and remembers what it changed in each. Reads and writes
nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from spt.shared_tools import DETECTION_DIFFICULTIES, DIFFICULTIES, FLAGS, FOCUS_SEPARATOR, FOCUSES, TOPICS


def _stripped(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def _name(choices: Iterable[str]) -> Callable[[Any], Any]:
    """`value` spelt as in `choices` when it is one of them but for case and surrounding whitespace."""
    by_lower = {choice.lower(): choice for choice in choices}
    return lambda value: by_lower.get(value.strip().lower(), value.strip()) if isinstance(value, str) else value


def _focus_list(value: Any) -> Any:
    """`a,b` / ` A , b ` -> `a, b`; an empty name (`a,,b`) stays empty, for the check to reject."""
    return FOCUS_SEPARATOR.join(map(_focus, value.split(","))) if isinstance(value, str) else value


def _integer(value: Any) -> Any:
    """`"4"` or `4.0` -> 4."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


_focus = _name(FOCUSES)
STAGE_1_RULES: dict[str, Callable[[Any], Any]] = {
    "thought_process": _stripped,
    "A": _stripped,
    "B": _stripped,
    "T": _stripped,
}
STAGE_1_METADATA_RULES: dict[str, Callable[[Any], Any]] = {
    "alignment_issue_type": _name(TOPICS),
    "difficulty": _name(DIFFICULTIES),
    "intended_review_focus": _focus_list,
}
STAGE_3_RULES: dict[str, Callable[[Any], Any]] = {
    "thought_process": _stripped,
    "I": _stripped,
    "R": _stripped,
    "selected_review_focus": _focus,
    "confidence": _integer,
    "P": _name(FLAGS),
    "detection_difficulty_internal": _name(DETECTION_DIFFICULTIES),
    "detection_difficulty_external": _name(DETECTION_DIFFICULTIES),
}


def _respelt(item: dict, rules: dict[str, Callable[[Any], Any]], prefix: str = "") -> tuple[dict, list[str]]:
    item, changed = dict(item), []
    for field, rule in rules.items():
        if field in item:
            value = rule(item[field])
            if value != item[field] or type(value) is not type(item[field]):
                item[field] = value
                changed.append(prefix + field)
    return item, changed


def normalise_stage_1_item(item: Any) -> tuple[Any, list[str]]:
    """A stage-1 sample respelt, and the fields changed (`T`, `metadata.difficulty`, ...)."""
    if not isinstance(item, dict):
        return item, []
    item, changed = _respelt(item, STAGE_1_RULES)
    if isinstance(item.get("metadata"), dict):
        item["metadata"], changed_metadata = _respelt(item["metadata"], STAGE_1_METADATA_RULES, "metadata.")
        changed += changed_metadata
    return item, changed


def normalise_stage_3_item(item: Any) -> tuple[Any, list[str]]:
    """A stage-3 generated item respelt, and the fields changed (`P`, `confidence`, ...)."""
    return _respelt(item, STAGE_3_RULES) if isinstance(item, dict) else (item, [])


class ItemsNormaliser:
    """`normalize=` step of a call whose tool input holds its items in the list `key`. After each
    call, `fields[i]` names what was respelt in item i (empty when nothing was)."""

    def __init__(self, key: str, normalise_item: Callable[[Any], tuple[Any, list[str]]]):
        self.key = key
        self.normalise_item = normalise_item
        self.fields: list[list[str]] = []

    def __call__(self, answer: Any) -> Any:
        self.fields = []
        if not isinstance(answer, dict) or not isinstance(answer.get(self.key), list):
            return answer  # the schema check reports it
        items = []
        for raw in answer[self.key]:
            item, fields = self.normalise_item(raw)
            items.append(item)
            self.fields.append(fields)
        return {**answer, self.key: items}
