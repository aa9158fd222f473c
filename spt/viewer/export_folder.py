"""An export folder as the viewer reads it (docs/data_formats.md §6): `sample_decisions.jsonl` (what the
export did to each sample), the tagged data it was made from (`data_dir` of `export_stats.json`, or
the one given) for the texts, confidences and tags of every sample, kept or not, and the off-policy
detection samples of `train.jsonl` and `validation.jsonl`, which exist only in the export. Reads those
files; writes nothing. An export without the decisions file (made before it existed) or whose data
is gone is a DataError naming what to do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import orjson

from spt import utils
from spt.export.decisions import DECISIONS_FILE
from spt.export.output_set import MANIFEST
from spt.shared_tools import DETECTION_TASK
from spt.utils import DataError, display_path

STATS_FILE = "export_stats.json"
DETECTION_SOURCES = ("train.jsonl", "validation.jsonl")


def is_export(path: Path) -> bool:
    return (path / STATS_FILE).is_file()


def decision_label(record: dict[str, Any]) -> str:
    """What the viewer's decision filter offers: the split for an exported sample, else what removed it."""
    if record["decision"] == "exported":
        return f"exported: {record['split']}"
    return f"{record['decision'].replace('_', ' ')}: {record['dropped_by']}"


def _jsonl(path: Path) -> list[dict]:
    records = []
    for number, line in enumerate(path.read_bytes().splitlines(), 1):
        try:
            records.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            raise DataError(f"{display_path(path)}: line {number} is not JSON") from None
    return records


class Export(NamedTuple):
    data_dir: Path  # the tagged data it was made from
    decisions: dict[str, dict[str, Any]]  # id_string -> decision (with its `label`)
    detection: list[dict]  # the off-policy detection samples, each with its `decision`
    export_id: str | None


def read_export(export_dir: Path, data_dir: Path | None) -> Export:
    """The export in `export_dir`; `data_dir` overrides the data folder its stats name."""
    stats = utils.read_json(export_dir / STATS_FILE)
    decisions_path = export_dir / DECISIONS_FILE
    if not decisions_path.is_file():
        raise DataError(
            f"{display_path(export_dir)}: no {DECISIONS_FILE} (made by an older export); run "
            "scripts/export_training_data.py again"
        )
    if data_dir is None:
        if not isinstance(stats, dict) or not isinstance(stats.get("data_dir"), str):
            raise DataError(f"{display_path(export_dir / STATS_FILE)}: field 'data_dir' missing; give --data_dir")
        data_dir = utils.data_path(stats["data_dir"])
    if not data_dir.is_dir():
        raise DataError(f"{display_path(data_dir)}: the export's tagged data is not there; give --data_dir")
    decisions = {}
    for record in _jsonl(decisions_path):
        decisions[record["id_string"]] = {
            **{
                key: record.get(key)
                for key in ("decision", "split", "dropped_by", "filters_hit", "system_prompt_source", "policy", "task")
            },
            "label": decision_label(record),
        }
    detection = [
        {**sample, "decision": decisions.get(sample["id_string"])}
        for name in DETECTION_SOURCES
        if (export_dir / name).is_file()
        for sample in _jsonl(export_dir / name)
        if sample.get("task") == DETECTION_TASK
    ]
    manifest = utils.read_json(export_dir / MANIFEST) if (export_dir / MANIFEST).is_file() else None
    export_id = manifest.get("export_id") if isinstance(manifest, dict) else None
    return Export(data_dir, decisions, detection, export_id if isinstance(export_id, str) else None)
