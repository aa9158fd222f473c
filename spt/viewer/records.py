"""The viewer's records of stage-3 data (docs/data_formats.md §4.3–4.4; tagged or not): one record per
item, model and file — the task, both system prompts, both answers — holding one record per sample
(intervention) with I, R, P, confidence, tags and, for an export, the export's decision. Only
what a reader looks at is kept (the generator's batch notes are not). Reads the files it is given;
writes nothing. A file that cannot be read and a part of a file that is not what the format says are
skipped and listed (Problems).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from spt import utils
from spt.shared_tools import VARIANTS
from spt.tagging.tags import id_string
from spt.utils import DataError, display_path

SAMPLE_FIELDS = {  # record key -> intervention field
    "I": "I",
    "R": "R",
    "P": "P",
    "confidence": "confidence",
    "focus": "selected_review_focus",
    "difficulty_internal": "detection_difficulty_internal",
    "difficulty_external": "detection_difficulty_external",
    "faulty_data": "faulty_data",
    "thought_process": "thought_process",
    "error": "error",
}


def _tags(value: Any) -> list[str]:
    """The tags as a list of strings (untagged stage-3 data has none)."""
    return [str(tag) for tag in value] if isinstance(value, list) else []


def _answer(variant: dict) -> dict[str, Any]:
    return {"S": variant.get("S"), "tags": _tags(variant.get("tags")), "output_tokens": variant.get("output_tokens")}


def _sample(
    intervention: dict, sample_id: str, letter: str, key: str, decisions: dict[str, dict] | None
) -> dict[str, Any]:
    record = {
        "id": sample_id,
        "variant": letter,
        "key": key,
        **{name: intervention.get(field) for name, field in SAMPLE_FIELDS.items()},
        "tags": _tags(intervention.get("tags")),
    }
    if decisions is not None:
        record["decision"] = decisions.get(sample_id)
    return record


class Problems:
    """The parts of the data the viewer could not show (an unreadable file, a part that is not a JSON
    object): skipped and listed, as the analysis counts them in its sanity checks, so one broken file
    does not hide the rest."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def check(self, value: Any, where: str) -> bool:
        if isinstance(value, dict):
            return True
        self.lines.append(f"{where} is not a JSON object (skipped)")
        return False


def _item_record(source_file: str, item_index: int, item: dict, model_id: str) -> dict[str, Any]:
    metadata = item.get("metadata") if isinstance(item.get("metadata"), dict) else {}
    return {
        "file": source_file,
        "index": item_index,
        "model": model_id,
        "T": item.get("T"),
        "A": item.get("A"),
        "B": item.get("B"),
        "thought_process": item.get("thought_process"),
        "difficulty": metadata.get("difficulty"),
        "focus": metadata.get("intended_review_focus"),
        "notes": metadata.get("notes"),
        "answers": {},
        "samples": [],
    }


def _models(document: Any, where: str, problems: Problems) -> Iterator[tuple[int, dict, str, dict, str]]:
    """(item index, item, model id, model entry, its place) of every well-formed model entry."""
    items = document.get("data") if isinstance(document, dict) else None
    if not isinstance(items, list):
        problems.lines.append(f"{where}: no 'data' list (skipped)")
        return
    for item_index, item in enumerate(items):
        item_where = f"{where}: data[{item_index}]"
        if not problems.check(item, item_where) or item.get("inferences") is None:
            continue
        if problems.check(item["inferences"], f"{item_where}.inferences"):
            for model_id, entry in item["inferences"].items():
                model_where = f"{item_where}.inferences[{model_id!r}]"
                if problems.check(entry, model_where):
                    yield item_index, item, model_id, entry, model_where


def file_items(
    path: Path, data_dir: Path, problems: Problems, decisions: dict[str, dict] | None = None
) -> list[dict[str, Any]]:
    """The item records of one stage-3 file (one per item and model with answers). `decisions`
    (an export's, by id_string) adds each sample's decision, None where the export has none."""
    try:
        document = utils.read_json(path)
    except DataError as exc:
        problems.lines.append(f"{exc} (skipped)")
        return []
    source_file = path.relative_to(data_dir).as_posix()
    records = []
    for item_index, item, model_id, entry, where in _models(document, display_path(path), problems):
        record = _item_record(source_file, item_index, item, model_id)
        for letter in VARIANTS:
            variant = entry.get(letter)
            if variant is None or not problems.check(variant, f"{where}.{letter}"):
                continue
            record["answers"][letter] = _answer(variant)
            interventions = variant.get("interventions") or {}
            if not problems.check(interventions, f"{where}.{letter}.interventions"):
                continue
            for key, intervention in interventions.items():
                if not problems.check(intervention, f"{where}.{letter}.interventions[{key!r}]"):
                    continue
                sample_id = intervention.get("id_string")
                if not isinstance(sample_id, str):  # untagged stage-3 data: the id the tagger will give it
                    sample_id = id_string(path.stem, item_index, model_id, letter, key)
                record["samples"].append(_sample(intervention, sample_id, letter, key, decisions))
        records.append(record)
    return records


def add_exported_samples(items: list[dict[str, Any]], samples: list[dict]) -> None:
    """Add samples that exist only in an export (the off-policy detection samples: docs/data_formats.md
    §6) to the record of their item and model, each with its own S and the prompt it is shown with;
    an item the data lacks gets a record of its own."""
    by_item = {(item["file"], item["index"], item["model"]): item for item in items}
    for sample in samples:
        where = (sample["source_file"], sample["item_index"], sample["model"])
        if where not in by_item:
            by_item[where] = {
                "file": where[0],
                "index": where[1],
                "model": where[2],
                "T": sample["T"],
                "A": None,
                "B": None,
                "thought_process": None,
                "difficulty": None,
                "focus": None,
                "notes": None,
                "answers": {},
                "samples": [],
            }
            items.append(by_item[where])
        by_item[where]["samples"].append(
            {
                "id": sample["id_string"],
                "variant": sample["variant"],
                "key": sample["intervention_key"],
                "I": sample["I"],
                "R": sample["R"],
                "P": sample["P"],
                "confidence": None,
                "focus": None,
                "difficulty_internal": None,
                "difficulty_external": None,
                "faulty_data": None,
                "thought_process": None,
                "error": None,
                "tags": [],
                "S": sample["S"],
                "S_source_model": sample["S_source_model"],
                "decision": sample["decision"],
            }
        )
