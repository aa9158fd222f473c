"""The stage-2 files of one run: which variants are still to be answered, storing answers and
failures under `inferences[<model key>][A|B]` (docs/data_formats.md §4.2), atomic saves.

`Stage2Files.load(stage_1_paths)` reads each file's stage-2 copy when there is one (so that
several target models accumulate in one file), else the stage-1 file, and lists the `Job`s
left: the variants this model has not answered with --num_samples samples. `store` and
`store_failure` record a job's outcome (a refused answer is an answer: S with `refusal: true`); `save_dirty`
writes the changed files, merged under the folder's write lock with what other runs (other models, the
verification) wrote there meanwhile.

Reads  data/stage_1/<topic>/*.json or data/stage_2/<topic>/<same name>.json.
Writes data/stage_2/<topic>/<same name>.json.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from spt import stage_files
from spt.stage_2.engine import Generation

log = logging.getLogger("spt.stage_2")


@dataclass
class Job:
    """One variant of one item that still needs answers from this model."""

    path: Path  # the stage-2 file it belongs to
    item_index: int
    variant: str
    system: str
    user: str
    sample_indices: list[int]  # which of the --num_samples samples are missing

    @property
    def label(self) -> str:
        return f"{self.path.stem}[{self.item_index}].{self.variant}"


@dataclass
class RunCounts:
    answered: int = 0
    failed: int = 0
    already_done: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None  # API engines only


@dataclass
class Stage2Files:
    """The stage-2 documents of this run: what is pending, storing answers, atomic saves."""

    model_key: str
    num_samples: int
    engine: str
    docs: dict[Path, dict] = field(default_factory=dict)
    dirty: set[Path] = field(default_factory=set)
    counts: RunCounts = field(default_factory=RunCounts)
    recorded_sampling: dict = field(default_factory=dict)  # temperature/top_p/top_k/thinking_enabled

    def load(self, stage_1_paths: list[Path]) -> list[Job]:
        """Read every file (the stage-2 copy when there is one) and list the variants left to answer."""
        jobs: list[Job] = []
        for stage_1_path in stage_1_paths:
            path = stage_files.stage_path(stage_1_path, 2)
            doc = stage_files.load_batch(path if path.exists() else stage_1_path)
            self.docs[path] = doc
            for index, item in enumerate(doc["data"]):
                for variant in stage_files.item_variants(item):
                    entry = item.get("inferences", {}).get(self.model_key, {}).get(variant)
                    have = len(entry.get("samples", [entry])) if entry and "S" in entry else 0
                    if have >= self.num_samples:
                        self.counts.already_done += 1
                        continue
                    jobs.append(
                        Job(
                            path,
                            index,
                            variant,
                            system=item[variant],
                            user=item["T"],
                            sample_indices=list(range(have, self.num_samples)),
                        )
                    )
        return jobs

    def _variants(self, job: Job) -> dict:
        item = self.docs[job.path]["data"][job.item_index]
        return item.setdefault("inferences", {}).setdefault(self.model_key, {})

    def store(self, job: Job, generations: list[Generation]) -> None:
        """Record the answers of `job` (its missing samples, in order)."""
        variants = self._variants(job)
        samples = [_sample_record(generation) for generation in generations]
        existing = variants.get(job.variant)
        if job.sample_indices[0] > 0:  # more samples for an answered variant
            existing["samples"] = existing.get("samples", [_sample_record_of_entry(existing)]) + samples
        else:
            first = generations[0]
            entry = {"S": first.text}
            if first.refused:
                entry["refusal"] = True
            if first.thinking:
                entry["thinking"] = first.thinking
            entry.update(
                input_tokens=first.input_tokens,
                output_tokens=first.output_tokens,
                string_length=len(first.text),
                generation_time=round(first.generation_time, 3),
                **self.recorded_sampling,
                finish_reason=first.finish_reason,
                inference=self.engine,
                generated_at=_now(),
            )
            if self.num_samples > 1:
                entry["samples"] = samples
            variants[job.variant] = entry
        self.counts.answered += 1
        self.counts.input_tokens += sum(generation.input_tokens for generation in generations)
        self.counts.output_tokens += sum(generation.output_tokens for generation in generations)
        self.dirty.add(job.path)

    def store_failure(self, job: Job, message: str) -> None:
        """Record a failed variant (`error`, no S) so the next run retries it; an answered
        variant that only lacked extra samples keeps its answer."""
        message = " ".join(str(message).split())[:500]
        log.warning("%s failed: %s", job.label, message)
        self.counts.failed += 1
        if job.sample_indices[0] == 0:
            variants = self._variants(job)
            previous = variants.get(job.variant) or {}
            variants[job.variant] = {
                "error": message,
                "failed_runs": previous.get("failed_runs", 0) + 1,
                "inference": self.engine,
                "failed_at": _now(),
            }
            self.dirty.add(job.path)

    def save_dirty(self) -> None:
        for path in sorted(self.dirty):
            stage_files.save_merged(path, self.docs[path], self._keep_own_answers)
        self.dirty.clear()

    def _keep_own_answers(self, merged: dict, ours: dict) -> None:
        """This run owns this model's answers: its own entry replaces the file's (other models' stay)."""
        own = ours.get("inferences", {}).get(self.model_key)
        if own is not None:
            merged.setdefault("inferences", {})[self.model_key] = own


def _sample_record(generation: Generation) -> dict:
    record = {"S": generation.text}
    if generation.refused:
        record["refusal"] = True
    if generation.thinking:
        record["thinking"] = generation.thinking
    record.update(output_tokens=generation.output_tokens, finish_reason=generation.finish_reason)
    return record


def _sample_record_of_entry(entry: dict) -> dict:
    return {key: entry[key] for key in ("S", "refusal", "thinking", "output_tokens", "finish_reason") if key in entry}


def _now() -> str:
    return datetime.now().isoformat(timespec="seconds")
