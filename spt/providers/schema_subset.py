"""The provider-safe subset of a JSON schema: what is sent to a provider's native schema mode.

Strict structured outputs (Anthropic `output_config.format`, OpenAI/OpenRouter `response_format`
with `strict: true`) accept only part of JSON Schema: every object closed
(`additionalProperties: false`) with every property required, and (on Anthropic) no numeric,
string-length or array bounds (simple `pattern`s are accepted, and the project's are simple:
an anchored list of names, a literal prefix). `provider_schema(schema)`
derives that subset from the project's full schema; a dropped numeric bound is restated in the
property's description ("at least 1, at most 5") so the model still reads it, and the full
schema and the stage's own checks still validate every answer on our side, so nothing is lost
by sending less. The item count a stage wants goes into the prompt. Reads and writes nothing.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

# Keywords outside the strict subset (constraints only: the full schema still checks them).
DROPPED_KEYWORDS = frozenset(
    {
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "uniqueItems",
        "minProperties",
        "maxProperties",
    }
)


def provider_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` reduced to the strict structured-output subset (a new object; `schema` is unchanged)."""
    return json.loads(_subset_json(json.dumps(schema, sort_keys=True)))


@lru_cache(maxsize=256)
def _subset_json(schema_json: str) -> str:
    return json.dumps(_subset(json.loads(schema_json)), sort_keys=True)


def _subset(node: Any) -> Any:
    if isinstance(node, list):
        return [_subset(value) for value in node]
    if not isinstance(node, dict):
        return node
    out = {key: _subset(value) for key, value in node.items() if key not in DROPPED_KEYWORDS}
    bounds = [
        f"{words} {node[key]}"
        for key, words in (("minimum", "at least"), ("maximum", "at most"))
        if isinstance(node.get(key), (int, float))
    ]
    if bounds:
        out["description"] = " ".join(filter(None, (node.get("description"), f"({', '.join(bounds)})")))
    if "properties" in node:  # keep property names as they are, subset their schemas
        out["properties"] = {name: _subset(value) for name, value in node["properties"].items()}
    if "anyOf" in out:  # alternatives that differed only in dropped keywords collapse into one
        alternatives = [json.loads(text) for text in dict.fromkeys(json.dumps(a, sort_keys=True) for a in out["anyOf"])]
        if len(alternatives) == 1 and all(out.get(k, v) == v for k, v in alternatives[0].items()):
            del out["anyOf"]
            out.update(alternatives[0])
        else:
            out["anyOf"] = alternatives
    if out.get("type") == "object" or "properties" in out:
        out["additionalProperties"] = False
        out["required"] = list(out.get("properties", {}))
    return out
