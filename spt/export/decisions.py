"""What the training export did to each sample (docs/data_formats.md §6, `sample_decisions.jsonl`): one
record per intervention of the data it read and per off-policy detection sample it made, saying
whether the sample was exported (to which split, with which system prompt shown, which policy
label), set aside (citing its system prompt, mitigation_mode drop_citing) or dropped (by which
selection stage or tag filter, or as indistinguishable). The sample viewer (spt/viewer) shows it
beside each sample. Reads and writes nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from spt.tagging.tags import id_string

DECISIONS_FILE = "sample_decisions.jsonl"
TOPIC_STAGE = "train/validation topics"  # export.selection.stage_order: the stage the held-out walk undoes
CITING = "cites its system prompt (mitigation_mode drop_citing)"
INDISTINGUISHABLE = "indistinguishable (same visible context, different flags)"
ORDER = ("source_file", "item_index", "model", "variant", "intervention_key", "id_string")


def dropped_record(
    intervention: dict,
    source_file: str,
    topic: str,
    item_index: int,
    model: str,
    letter: str,
    key: str,
    stage: str,
    filters_hit: list[str] | None = None,
) -> dict[str, Any]:
    """The record of an intervention that the selection stage `stage` removed; `filters_hit`: every
    tag of tags_to_filter it carries (the stage names the first)."""
    sample_id = intervention.get("id_string")
    if not isinstance(sample_id, str):  # dropped before the check that every kept sample is tagged
        sample_id = id_string(Path(source_file).stem, item_index, model, letter, key)
    return {
        "id_string": sample_id,
        "source_file": source_file,
        "item_index": item_index,
        "topic": topic,
        "model": model,
        "variant": letter,
        "intervention_key": key,
        "decision": "dropped",
        "split": None,
        "dropped_by": stage,
        "filters_hit": filters_hit or [],
        "system_prompt_source": None,
        "policy": None,
        "task": None,
    }


def _sample_record(sample: dict, decision: str, split: str, dropped_by: str | None) -> dict[str, Any]:
    return {
        "id_string": sample["id_string"],
        "source_file": sample["source_file"],
        "item_index": sample["item_index"],
        "topic": sample["topic"],
        "model": sample["model"],
        "variant": sample["variant"],
        "intervention_key": sample["intervention_key"],
        "decision": decision,
        "split": split,
        "dropped_by": dropped_by,
        "filters_hit": [],
        "system_prompt_source": sample["system_prompt_source"],
        "policy": sample["policy"],
        "task": sample["task"],
    }


def sample_decisions(
    dropped: list[dict], before_context_check: dict[str, list[dict]], splits: dict[str, list[dict]], citing: list[dict]
) -> list[dict[str, Any]]:
    """Every decision record, sorted by file, item, model, variant and key. `dropped`: the selection's
    records (dropped_record) of both walks over the data (train/validation topics and held-out
    topics; an intervention the one walk drops at the topic stage is the other walk's); the
    splits as they were before the indistinguishable samples were dropped and as exported;
    `citing`: the samples set aside (each with its `split`)."""
    records: dict[str, dict[str, Any]] = {}
    for record in dropped:
        if record["dropped_by"] != TOPIC_STAGE or record["id_string"] not in records:
            records[record["id_string"]] = record
    exported = {id(sample) for split in splits.values() for sample in split}
    for name, samples in before_context_check.items():
        for sample in samples:
            if id(sample) in exported:
                records[sample["id_string"]] = _sample_record(sample, "exported", name, None)
            else:
                records[sample["id_string"]] = _sample_record(sample, "dropped", name, INDISTINGUISHABLE)
    for sample in citing:
        records[sample["id_string"]] = _sample_record(sample, "set_aside", sample["split"], CITING)
    return sorted(records.values(), key=lambda record: tuple(record[key] for key in ORDER))


def decisions_jsonl(records: list[dict[str, Any]]) -> str:
    return "".join(orjson.dumps(record).decode("utf-8") + "\n" for record in records)
