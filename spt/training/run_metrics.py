"""The training run's metrics outside the checkpoints: `<output_dir>/metrics.jsonl`, one JSON
row per logged step (docs/data_formats.md §4.7), and accelerate's experiment trackers (config key
`report_to`).

A row is written at every step that is a multiple of `log_every` and at every checkpoint step
(where validation runs): `step`, `epoch`, `loss` (mean token loss over the steps since the
previous row, `loss_steps` of them), `lr` (the rate those steps used, the last one's),
`tokens_per_s` and `tokens` (over the same steps, all processes); at a checkpoint with
validation data also `validation_loss`, `validation_samples`, `flag_accuracy` with
`flag_accuracy_ci95` (Wilson, 95 %) over `flag_accuracy_parsed` of `flag_accuracy_reviews`
generated reviews, and `teacher_forced_flag_accuracy` over `teacher_forced_samples`.

Each row is one `os.write` of one line to the file opened for appending: a killed process never
leaves half a line, and a short write (full disk) is cut back before the error is raised. A fresh
run starts the file anew; a resumed run first keeps only the rows up to the checkpoint's step
(rewritten atomically), so steps that ran after the last checkpoint are not counted twice.
`read_metrics` skips a last line without its newline (a reader racing the writer, or a power
loss). Only the main process writes. Reads and writes only these files.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from spt.utils import DataError, atomic_write_text, display_path

METRICS_FILE = "metrics.jsonl"
CURVES_FILE = "curves.png"
TRACKER_DIR = "tracker_logs"  # accelerate's logging_dir for trackers that write files (tensorboard)
TRACKER_PROJECT = "split-personality-training"


def read_metrics(path: Path) -> list[dict]:
    """The complete rows of a metrics file ([] when there is none); a broken complete line is a
    DataError naming it."""
    if not path.is_file():
        return []
    text = path.read_text(encoding="utf-8")
    rows = []
    for number, line in enumerate(text[: text.rfind("\n") + 1].splitlines(), 1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        if not isinstance(row, dict) or not isinstance(row.get("step"), int):
            raise DataError(
                f"{display_path(path)} line {number}: not a metrics row (a JSON object with a step); "
                "delete the line, or the file to start its rows afresh"
            )
        rows.append(row)
    return rows


def start_metrics(path: Path, resumed_step: int | None) -> None:
    """A fresh run (`resumed_step` None) empties the file; a resumed one keeps the rows up to its step."""
    kept = [row for row in read_metrics(path) if row["step"] <= resumed_step] if resumed_step is not None else []
    atomic_write_text(path, "".join(json.dumps(row) + "\n" for row in kept))


def append_metrics(path: Path, row: dict) -> None:
    """Append one row as one line, in one write (see the module's docstring)."""
    line = (json.dumps(row) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        written = os.write(fd, line)
        if written != len(line):
            os.ftruncate(fd, size)
            raise OSError(28, "No space left on device (metrics row cut short and removed)", str(path))
    finally:
        os.close(fd)


def validation_fields(validation: dict | None) -> dict:
    """The row fields of a validation result (trainer.Trainer.validate); {} without one."""
    if not validation:
        return {}
    return {
        "validation_loss": validation["loss"],
        "validation_samples": validation["samples"],
        "flag_accuracy": validation["flag_accuracy"],
        "flag_accuracy_ci95": validation["flag_accuracy_ci95"],
        "flag_accuracy_reviews": validation["flag_accuracy_reviews"],
        "flag_accuracy_parsed": validation["flag_accuracy_parsed"],
        "teacher_forced_flag_accuracy": validation["teacher_forced_flag_accuracy"],
        "teacher_forced_samples": validation["teacher_forced_samples"],
    }


def tracker_values(row: dict) -> dict[str, float | int]:
    """The numbers of a row as trackers take them: no step (given apart), no None, the interval as two values."""
    values = {}
    for key, value in row.items():
        if key == "step" or value is None:
            continue
        if isinstance(value, list):
            values[f"{key}_low"], values[f"{key}_high"] = value
        else:
            values[key] = value
    return values


def tracker_config(config: dict) -> dict[str, str | int | float | bool]:
    """The run's config as trackers store it (tensorboard's hparams take no lists): lists as JSON text."""
    return {key: json.dumps(value) if isinstance(value, (list, dict)) else value for key, value in config.items()}


def check_trackers(names: list[str]) -> None:
    """Every name of config key report_to is an accelerate tracker that is installed (before the model loads)."""
    if not names:
        return
    from accelerate.tracking import LOGGER_TYPE_TO_CLASS, get_available_trackers

    available = {str(tracker) for tracker in get_available_trackers()}
    for name in names:
        if name not in LOGGER_TYPE_TO_CLASS:
            raise DataError(
                f"config key report_to: unknown tracker {name!r} (accelerate's trackers: "
                f"{', '.join(sorted(LOGGER_TYPE_TO_CLASS))})"
            )
        if name not in available:
            raise DataError(f"config key report_to: tracker {name!r} is not installed (pip install {name})")
