"""The stage 1 output folder of one topic: its batch files and its record of failed batches.

- `read_topic_batches(topic)`: the batch files already in data/stage_1/<topic>/ (validated;
  a broken file is a DataError naming it), in batch-number order.
- `batch_file(topic, batch_id)`: where a batch is written (docs/data_formats.md §2, §4.1);
  `write_batch(...)` writes one atomically.
- `FailedBatches`: data/stage_1_failed_batches/<topic>.json, the batches of earlier runs that
  failed (with their reasons); the next run retries those batch numbers first.
- `PlannedBatches`: data/stage_1_planned_batches/<topic>.json, the batches planned and not yet
  finished, each with everything its first request is built from that could change between
  runs (its size, variation hint, the openings of the tasks to avoid and the causal-verification
  feedback). A run writes it before
  its first call; a batch leaves it once its file is written or its failure recorded. A run
  stopped before (kill -9, a crash, --max_cost) leaves it, and the next run resumes those
  batches first, sending byte-identical requests, so the answers already paid come from the
  response cache.
Both records live outside data/stage_1/ so that later stages, which read every JSON file there,
never see them. Reads and writes files under data/stage_1/<topic>/,
data/stage_1_failed_batches/ and data/stage_1_planned_batches/ only.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from spt.stage_1 import validation
from spt.utils import DATA_DIR, STAGE_DIRS, DataError, atomic_write_json, display_path, read_json

FAILED_BATCHES_DIR = DATA_DIR / "stage_1_failed_batches"
PLANNED_BATCHES_DIR = DATA_DIR / "stage_1_planned_batches"
_BATCH_NUMBER = re.compile(r"_batch_(\d+)$")


def topic_dir(topic: str) -> Path:
    return STAGE_DIRS[1] / topic


def batch_id(topic: str, run_timestamp: str, batch_number: int) -> str:
    """`<topic>_<YYYYmmdd_HHMMSS>_batch_<NNN>`."""
    return f"{topic}_{run_timestamp}_batch_{batch_number:03d}"


def batch_file(topic: str, batch_id_: str) -> Path:
    return topic_dir(topic) / f"batch_{batch_id_}.json"


def batch_number_of(path: Path) -> int | None:
    match = _BATCH_NUMBER.search(path.stem)
    return int(match.group(1)) if match else None


@dataclass
class TopicBatch:
    path: Path
    batch_number: int | None
    items: list[dict]


def read_topic_batches(topic: str) -> list[TopicBatch]:
    """Every batch file of `topic` on disk, checked; sorted by batch number, then name."""
    batches = []
    for path in topic_dir(topic).glob("batch_*.json"):
        document = read_json(path)
        problems = validation.file_problems(document, topic)
        if problems:
            raise DataError(
                f"{display_path(path)}: {problems[0]}"
                + (f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else "")
            )
        batches.append(TopicBatch(path, batch_number_of(path), document["data"]))
    return sorted(batches, key=lambda b: (b.batch_number is None, b.batch_number or 0, b.path.name))


def write_batch(topic: str, batch_id_: str, document: dict) -> Path:
    path = batch_file(topic, batch_id_)
    atomic_write_json(path, document)
    return path


def _record_list(path: Path, key: str) -> list:
    """The `key` list of a per-topic record file ([] when there is no file yet)."""
    if not path.exists():
        return []
    document = read_json(path)
    entries = document.get(key) if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise DataError(f"{display_path(path)}: {key!r} must be a list")
    return entries


class FailedBatches:
    """data/stage_1_failed_batches/<topic>.json: {"topic", "failed": [{batch_number, reason, run_id, time}]}."""

    def __init__(self, topic: str):
        self.topic = topic
        self.path = FAILED_BATCHES_DIR / f"{topic}.json"
        failed = _record_list(self.path, "failed")
        if not all(isinstance(e, dict) and isinstance(e.get("batch_number"), int) for e in failed):
            raise DataError(
                f"{display_path(self.path)}: 'failed' must be a list of objects with a 'batch_number' integer"
            )
        self.entries: dict[int, dict] = {entry["batch_number"]: entry for entry in failed}

    def numbers(self) -> list[int]:
        return sorted(self.entries)

    def record(self, batch_number: int, reason: str, run_id: str, time: str) -> None:
        self.entries[batch_number] = {"batch_number": batch_number, "reason": reason, "run_id": run_id, "time": time}
        self._save()

    def resolve(self, batch_number: int) -> None:
        if self.entries.pop(batch_number, None) is not None:
            self._save()

    def _save(self) -> None:
        if self.entries or self.path.exists():
            atomic_write_json(
                self.path, {"topic": self.topic, "failed": [self.entries[n] for n in sorted(self.entries)]}
            )


@dataclass(frozen=True)
class PlannedBatch:
    """One batch as planned: its number, the samples it asks for, its variation hint, the
    openings of the tasks its first request asks to steer away from (diversity.avoid_openings),
    and the causal-verification feedback its requests carry ({} when none; else `file`, `sha256`
    and the rendered `section`)."""

    batch_number: int
    num_items: int
    variation: str
    avoid: tuple[str, ...]
    feedback: dict = field(default_factory=dict)


class PlannedBatches:
    """data/stage_1_planned_batches/<topic>.json: {"topic", "batches": [PlannedBatch as an object]},
    the batches planned and not yet finished (numbers that have a batch file on disk are dropped
    when it is read)."""

    def __init__(self, topic: str, on_disk: set[int]):
        self.topic = topic
        self.path = PLANNED_BATCHES_DIR / f"{topic}.json"
        self.entries: dict[int, PlannedBatch] = {}
        for index, entry in enumerate(_record_list(self.path, "batches")):
            batch = self._checked(entry, f"{display_path(self.path)}: batches[{index}]")
            if batch.batch_number not in on_disk:
                self.entries[batch.batch_number] = batch

    @staticmethod
    def _checked(entry: Any, where: str) -> PlannedBatch:
        if not isinstance(entry, dict):
            raise DataError(f"{where}: must be an object")
        for name, valid in (
            ("batch_number", lambda v: type(v) is int and v >= 0),
            ("num_items", lambda v: type(v) is int and v >= 1),
            ("variation", lambda v: isinstance(v, str)),
            ("avoid", lambda v: isinstance(v, list) and all(isinstance(t, str) for t in v)),
        ):
            if name not in entry or not valid(entry[name]):
                raise DataError(f"{where}: {name!r} is missing or invalid")
        feedback = entry.get("feedback", {})  # absent in records written before the feedback existed
        if not isinstance(feedback, dict) or not all(isinstance(v, str) for v in feedback.values()):
            raise DataError(f"{where}: 'feedback' must be an object of strings")
        return PlannedBatch(
            entry["batch_number"], entry["num_items"], entry["variation"], tuple(entry["avoid"]), feedback
        )

    def unfinished(self) -> list[PlannedBatch]:
        return [self.entries[number] for number in sorted(self.entries)]

    def add(self, batches: list[PlannedBatch]) -> None:
        self.entries.update((batch.batch_number, batch) for batch in batches)

    def save(self) -> None:
        """Write the record (atomically), or delete it when no batch is left."""
        if self.entries:
            atomic_write_json(
                self.path, {"topic": self.topic, "batches": [asdict(batch) for batch in self.unfinished()]}
            )
        else:
            self.path.unlink(missing_ok=True)

    def finish(self, batch_number: int) -> None:
        if self.entries.pop(batch_number, None) is not None:
            self.save()
