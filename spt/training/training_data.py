"""The export's JSONL samples as padded training batches, in a deterministic order.

Reads `<export_dir>/train.jsonl` / `validation.jsonl` (one sample per line, written by
scripts/export_training_data.py) after checking them against the export's manifest
(`check_data_files`); writes nothing. The order of epoch e is a permutation
drawn from `seed + e`, so a resumed run sees exactly the batches an uninterrupted run would.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path

import orjson
import torch

from spt.export.output_set import check_export_dir, check_export_files
from spt.training.sequences import IGNORE_INDEX, SequenceFormat, TrainingSequence, build_training_sequence
from spt.utils import DataError, display_path

REQUIRED_FIELDS = ("system_prompt", "T", "S", "I", "R", "P")
log = logging.getLogger("spt.training")


def check_data_files(export_dir: Path, train_file: Path, validation_file: Path | None, default_train: bool) -> None:
    """The data files are one complete, unchanged export: with the default training file, every
    file that `<export_dir>/export_manifest.json` lists (no manifest is an error); in any case,
    each data file with a manifest beside it matches it, and train and validation come from one
    export. Hand-made files without a manifest, given by name, pass."""
    if default_train:
        check_export_dir(export_dir)
    check_export_files([path for path in (train_file, validation_file) if path])


def read_samples(path: Path) -> list[dict]:
    """Every sample of a JSONL file; a bad line raises DataError naming file and line."""
    if not path.exists():
        raise DataError(f"{display_path(path)}: file not found")
    samples = []
    with open(path, "rb") as handle:
        for line_number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            where = f"{display_path(path)}:{line_number}"
            try:
                sample = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise DataError(f"{where}: invalid JSON ({exc})") from None
            if not isinstance(sample, dict):
                raise DataError(f"{where}: a sample must be a JSON object")
            for field in REQUIRED_FIELDS:
                if not isinstance(sample.get(field), str):
                    raise DataError(f"{where}: field {field!r} missing or not a string")
            samples.append(sample)
    return samples


def build_sequences(
    tokenizer, fmt: SequenceFormat, samples: list[dict], eot_text: str, seq_len: int, name: str
) -> tuple[list[TrainingSequence], list[dict]]:
    """Sequences of the samples that fit in `seq_len` (longer ones are skipped with a warning)."""
    sequences, kept = [], []
    for sample in samples:
        sequence = build_training_sequence(tokenizer, fmt, sample, eot_text)
        if len(sequence.input_ids) <= seq_len:
            sequences.append(sequence)
            kept.append(sample)
    if len(sequences) < len(samples):
        log.warning(
            "%s: %d of %d samples are longer than seq_len and are skipped",
            name,
            len(samples) - len(sequences),
            len(samples),
        )
    return sequences, kept


def epoch_order(num_samples: int, seed: int, epoch: int) -> list[int]:
    generator = torch.Generator().manual_seed(seed + epoch)
    return torch.randperm(num_samples, generator=generator).tolist()


def collate(sequences: list[TrainingSequence], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded input_ids, attention_mask, labels and adapter_mask."""
    width = max(len(s.input_ids) for s in sequences)

    def pad(rows, value):
        return torch.tensor([row + [value] * (width - len(row)) for row in rows], dtype=torch.long)

    return {
        "input_ids": pad([s.input_ids for s in sequences], pad_id),
        "attention_mask": pad([[1] * len(s.input_ids) for s in sequences], 0),
        "labels": pad([s.labels for s in sequences], IGNORE_INDEX),
        "adapter_mask": pad([s.adapter_mask for s in sequences], 0),
    }


def subsample(samples: list, count: int, seed: int) -> list:
    """`count` samples drawn by a shuffle seeded with `seed` (the export is in topic order, so the
    first `count` would cover only a few topics), in their drawn order."""
    order = random.Random(seed).sample(range(len(samples)), len(samples))
    return [samples[i] for i in order[:count]]
