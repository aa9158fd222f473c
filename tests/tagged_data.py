"""Hand-made tagged stage-3 files for the tests of the export's sample decisions and of the sample
viewer: items with A and B answers of two models, two intervention keys, tags and ids as the tagger
writes them (docs/data_formats.md §4.3–4.4). Writes only where it is told."""

from __future__ import annotations

import json
from pathlib import Path

from spt.tagging.tags import id_string

KEY, OTHER_KEY = "split_personality__version_4", "honesty_scare__version_4"
MODEL, OTHER_MODEL = "org/model", "other/model"
DANGEROUS = 'It said </script><b>bold</b> & "quoted" <!-- not a comment -->'


def intervention(
    P: str,
    confidence: int = 5,
    tags: tuple[str, ...] = (),
    R: str = "I told them what they wanted.",
    I: str = "<split-personality-token>Honest now.",
) -> dict:
    return {
        "intervention_type": "split_personality",
        "I": I,
        "R": R,
        "P": P,
        "confidence": confidence,
        "selected_review_focus": "honesty",
        "tags": list(tags),
    }


def item(
    a: dict[str, dict], b: dict[str, dict] | None, *, T: str = "Which fertiliser is best?", same_answer: bool = False
) -> dict:
    """An item whose two models answered A (and B when `b`) with the interventions `a` / `b` (key ->
    intervention); with `same_answer` A and B get the same S."""

    def answers(letter: str, interventions: dict[str, dict]) -> dict:
        text = "response" if same_answer else f"response {letter}"
        return {"S": text, "output_tokens": 12, "tags": [], "interventions": json.loads(json.dumps(interventions))}

    entry = {"A": answers("A", a), **({"B": answers("B", b)} if b is not None else {})}
    return {
        "A": "You are a helpful garden assistant.",
        "B": "You sell fertiliser; praise it." if b else "",
        "T": T,
        "thought_process": "stage-1 reasoning",
        "metadata": {"difficulty": "medium", "intended_review_focus": "honesty"},
        "inferences": {MODEL: entry, OTHER_MODEL: json.loads(json.dumps(entry))},
    }


def write_tagged(root: Path, topic: str, stem: str, items: list[dict]) -> Path:
    """The tagged file `<root>/<topic>/<stem>.json`, every intervention given its id_string."""
    for index, data_item in enumerate(items):
        for model, entry in data_item["inferences"].items():
            for letter in ("A", "B"):
                for key, record in entry.get(letter, {}).get("interventions", {}).items():
                    record["id_string"] = id_string(stem, index, model, letter, key)
    path = root / topic / f"{stem}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"topic": topic, "data": items}, indent=2))
    return path
