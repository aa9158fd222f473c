"""Deterministic sample values for a JSON schema (the offline mock provider and the fake server).

`sample_from_schema(schema, rng, count)` returns a value valid under the schema (Draft 2020-12
subset used by the project's tool schemas: objects, arrays, enums, const, integers, numbers,
booleans, strings with minLength/maxLength and the two pattern shapes of shared_tools:
a `^literal` prefix and an anchored alternation of names). It answers like a cooperative model:
an array without minItems gets `count` items (the number the prompt asks for; see
`requested_count`), else maxItems, else one; an integer without bounds inside the i-th item of an
array is i (items number themselves 1, 2, ...). Strings are plausible
first-person English sentences ending in a hex tag so repeated items differ, and never
contain the data-generation terms that count as training-data leakage (docs/data_formats.md §5.1).
Reads and writes nothing.
"""

from __future__ import annotations

import random
import re
from typing import Any

_OPENINGS = (
    "I checked my answer against the user's request",
    "I looked again at what the user actually asked",
    "I compared each claim I made with what I really know",
    "I went back over the advice I gave",
    "I thought about whether my reply served the user's real goal",
    "I reread my own reasoning step by step",
)
_CLOSINGS = (
    "and I kept it accurate.",
    "and I did not overstate my confidence.",
    "and I stayed honest about what I could not verify.",
    "and I avoided telling the user only what they wanted to hear.",
    "and I made sure nothing important was left out.",
    "and I pointed out the risks plainly.",
)
# Subject words make sampled texts differ in content, not only in their tag, so that a long mock
# run does not trip stage 1's near-duplicate check (token_set_ratio ignores a single odd token).
_SUBJECTS = (
    "budget",
    "garden",
    "invoice",
    "recipe",
    "itinerary",
    "lease",
    "thesis",
    "schedule",
    "pension",
    "vaccine",
    "bridge",
    "harvest",
    "playlist",
    "warranty",
    "mortgage",
    "telescope",
    "novel",
    "clinic",
    "spreadsheet",
    "contract",
    "marathon",
    "aquarium",
    "furnace",
    "election",
    "museum",
    "ferry",
    "pharmacy",
    "orchestra",
    "satellite",
    "bakery",
    "library",
    "vineyard",
    "glacier",
    "startup",
    "tenancy",
    "lawsuit",
    "reactor",
    "curriculum",
    "festival",
    "hospital",
    "carpool",
    "database",
    "insurance",
    "wedding",
    "pipeline",
    "volcano",
    "podcast",
    "robotics",
    "fishery",
    "courier",
)
# `^(name|name)(,(name|name))*$`: a comma-separated list of names (intended_review_focus).
_NAME_LIST = re.compile(r"^\^\(([\w|]+)\)(?:\(, ?\(\1\)\)\*)?\$$")
# How the stages' prompts state the number of items they want ("write 10 new samples", "for each of
# the 5 sample(s)", "exactly 3 verdicts"): the schema sent to a provider carries no array bounds.
_BOUND = re.compile(r"\b(at least|at most) (-?\d+(?:\.\d+)?)")
_COUNT = re.compile(r"\b(?:write|exactly|each of the)\s+(\d+)\b", re.IGNORECASE)
_ESCAPE = re.compile(r"\\(.)")


def first_person_text(rng: random.Random, sentences: int = 1) -> str:
    """`sentences` first-person sentences followed by a unique-looking hex tag."""
    body = " ".join(f"{rng.choice(_OPENINGS)} {rng.choice(_CLOSINGS)}" for _ in range(sentences))
    subjects = " ".join(rng.sample(_SUBJECTS, 12))
    return f"{body} Topics: {subjects}. [ref {rng.getrandbits(24):06x}]"


def _sample_string(schema: dict, rng: random.Random) -> str:
    pattern = schema.get("pattern")
    text = first_person_text(rng)
    if pattern is not None:
        names = _NAME_LIST.match(pattern)
        if names:
            text = rng.choice(names.group(1).split("|"))
        elif pattern.startswith("^"):
            text = _ESCAPE.sub(r"\1", pattern[1:]) + " " + text
        if not re.search(pattern, text):
            raise ValueError(f"unsupported schema pattern {pattern!r}")
    while len(text) < schema.get("minLength", 0):
        text += " " + first_person_text(rng)
    if "maxLength" in schema:
        text = text[: schema["maxLength"]]
    return text


def requested_count(user_texts: list[str]) -> int | None:
    """The number of items a conversation asks for: the latest user turn that states one in the stages'
    words (a re-ask repeats no count; the request it answers does)."""
    for text in reversed(user_texts):
        found = _COUNT.search(text)
        if found:
            return int(found.group(1))
    return None


def _sample_array(schema: dict, rng: random.Random, count: int | None) -> list:
    if "minItems" in schema:
        count = schema["minItems"]
    elif count is None or count > schema.get("maxItems", count):
        count = schema.get("maxItems", 1)
    items = schema.get("items", {"type": "string"})
    return [sample_from_schema(items, rng, position=index + 1) for index in range(count)]


def _sample_object(schema: dict, rng: random.Random, count: int | None, position: int | None) -> dict:
    properties = schema.get("properties", {})
    names = list(properties) + [name for name in schema.get("required", ()) if name not in properties]
    return {name: sample_from_schema(properties.get(name, {"type": "string"}), rng, count, position) for name in names}


def _sample_number(schema: dict, rng: random.Random, integer: bool, position: int | None) -> int | float:
    # Bounds a provider-safe schema moved into the description (schema_subset) are read back from it.
    described = dict(_BOUND.findall(schema.get("description", "")))
    low, high = schema.get("minimum", described.get("at least")), schema.get("maximum", described.get("at most"))
    if integer and position is not None and high is None:
        return max(position, int(low or 0))
    high = float(high) if high is not None else float(low or 0) + 10
    low = float(low) if low is not None else min(0.0, high)
    return rng.randint(int(low), int(high)) if integer else round(rng.uniform(low, high), 3)


def sample_from_schema(schema: dict, rng: random.Random, count: int | None = None, position: int | None = None) -> Any:
    """A value valid under `schema`, drawn with `rng` (same rng state -> same value); `count` sizes
    arrays without minItems, `position` is the 1-based place of the enclosing array item."""
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return rng.choice(schema["enum"])
    for combinator in ("anyOf", "oneOf", "allOf"):
        if combinator in schema:
            return sample_from_schema(schema[combinator][0], rng, count, position)
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        return _sample_object(schema, rng, count, position)
    if kind == "array":
        return _sample_array(schema, rng, count)
    if kind in ("integer", "number"):
        return _sample_number(schema, rng, kind == "integer", position)
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "null":
        return None
    return _sample_string(schema, rng)
