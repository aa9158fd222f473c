"""Checks on one stage-3 generation answer before any of its items is accepted.

`generation_problems(answer, topic, intervention_type, expected_items)` lists everything wrong
with the tool input of a stage-3 call, one line per problem naming the item and field: the
docs/data_formats.md §4.3 schema (types, enums, confidence 1-5, a legal focus for the topic), the item count,
the split-personality token at the start of I, training-data leakage in I and R (docs/data_formats.md §5.1)
and a review written in the first person; for unseen_intent also that I and R never treat the
response as written ("my response above", "as I wrote"). Whether R reports a plan that S really
carries out is the quality reviewer's to judge (prompts/stage_3/_shared/family_unseen_intent.md). `generation_validator(...)` wraps it as the
provider layer's `validate=` callback, so a bad answer is re-asked with these lines.
`generation_normaliser()` is the call's `normalize=` step, run before both: it respells what is
plainly meant (`pass` -> `PASS`, `Easy` -> `easy`, confidence "4" -> 4, surrounding whitespace;
item_normalisation) so that it costs no re-ask. Reads and writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

import jsonschema

from spt import review_checks, shared_tools
from spt.item_normalisation import ItemsNormaliser, normalise_stage_3_item


@cache
def _schema_validator(topic: str, intervention_type: str, expected_items: int) -> jsonschema.Draft202012Validator:
    schema = shared_tools.stage_3_tool(topic, intervention_type, expected_items)["input_schema"]
    return jsonschema.Draft202012Validator(schema)


def _schema_problems(answer: Any, topic: str, intervention_type: str, expected_items: int) -> list[str]:
    validator = _schema_validator(topic, intervention_type, expected_items)
    problems = []
    for error in sorted(validator.iter_errors(answer), key=lambda e: [str(p) for p in e.absolute_path]):
        where = "/".join(str(part) for part in error.absolute_path) or "(top level)"
        if error.validator in ("minItems", "maxItems"):
            continue  # reported once, in plain words, by the count check
        if error.validator == "enum" and list(error.absolute_path)[-1:] == ["selected_review_focus"]:
            continue  # reported with the topic's focuses by item_problems
        problems.append(f"{where}: {error.message[:300]}")
    return problems


def item_problems(item: dict, topic: str, intervention_type: str, where: str) -> list[str]:
    """The content problems of one generated item (fields already of the right types)."""
    problems = []
    focus = item.get("selected_review_focus")
    if isinstance(focus, str) and focus not in shared_tools.legal_focuses(topic):
        problems.append(
            f"{where}.selected_review_focus: {focus!r} is not a focus of the topic {topic}; "
            f"choose one of {', '.join(shared_tools.legal_focuses(topic))}"
        )
    intervention = item.get("I")
    if isinstance(intervention, str):
        if (
            intervention_type in shared_tools.TOKEN_INTERVENTION_TYPES
            and not review_checks.starts_with_split_personality_token(intervention)
        ):
            problems.append(f"{where}.I: must begin with {shared_tools.SPLIT_PERSONALITY_TOKEN}")
        leaks = review_checks.leakage_matches(intervention, "I")
        if leaks:
            problems.append(
                f"{where}.I: mentions how the data was made ({', '.join(leaks)}); rewrite it without those words"
            )
    review = item.get("R")
    if isinstance(review, str):
        leaks = review_checks.leakage_matches(review, "R")
        if leaks:
            problems.append(
                f"{where}.R: mentions how the data was made or the review itself "
                f"({', '.join(leaks)}); rewrite it without those words"
            )
        observer = review_checks.third_person_review_matches(review)
        if observer:
            problems.append(
                f"{where}.R: written by an outside observer ({', '.join(observer)}); write it as the "
                'model speaking about its own response ("I ...", "my answer ...")'
            )
        elif not review_checks.is_first_person(review):
            problems.append(
                f"{where}.R: not in the first person; the model must speak about its own response "
                '("I ...", "my answer ...")'
            )
    if intervention_type == shared_tools.UNSEEN_INTENT:
        problems += _unseen_intent_problems(item, where)
    return problems


def _unseen_intent_problems(item: dict, where: str) -> list[str]:
    """An unseen-intent I and R are spoken before the response exists (docs/data_formats.md §4.3)."""
    problems = []
    for field in ("I", "R"):
        text = item.get(field)
        written = review_checks.written_response_matches(text) if isinstance(text, str) else []
        if written:
            problems.append(
                f"{where}.{field}: treats the response as already written or visible "
                f"({', '.join(written)}); the model has not written it yet and never sees it: speak of "
                'what I was about to say and why ("I was going to ...", "my plan was ...")'
            )
    return problems


def generation_problems(answer: Any, topic: str, intervention_type: str, expected_items: int) -> list[str]:
    """Everything wrong with a stage-3 tool input ([] = acceptable)."""
    if not isinstance(answer, dict):
        return ["(top level): the answer must be an object with `batch_thinking` and `items`"]
    problems = _schema_problems(answer, topic, intervention_type, expected_items)
    items = answer.get("items")
    if not isinstance(items, list):
        return problems
    if len(items) != expected_items:
        problems.append(f"items: expected exactly {expected_items} item(s), one per sample in order, got {len(items)}")
    for index, item in enumerate(items):
        if isinstance(item, dict):
            problems.extend(item_problems(item, topic, intervention_type, f"items/{index}"))
    return problems


def generation_normaliser() -> ItemsNormaliser:
    """The `normalize=` step of a stage-3 generation call; afterwards `.fields[i]` names what it
    respelt in item i."""
    return ItemsNormaliser("items", normalise_stage_3_item)


def generation_validator(topic: str, intervention_type: str, expected_items: int) -> Callable[[Any], list[str]]:
    """The `validate=` callback of a stage-3 generation call."""
    return lambda answer: generation_problems(answer, topic, intervention_type, expected_items)
