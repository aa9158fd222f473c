"""The layout of a training checkpoint, shared by the trainer and the evaluation: a
checkpoint is `<output_dir>/step_<N>/` with the adapter in ADAPTER_DIR, the tokenizer, the
accelerate state (optimizer, scheduler, RNG) and STATE_FILE (effective config, data SHA-256s,
package versions, step, split-personality token, validation metrics). Reads directory
listings only; writes nothing except `remove_checkpoints` (train_lora.py --overwrite) and
`remove_partials` (what a killed or failed save left).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from spt.utils import DataError, display_path

STATE_FILE = "training_state.json"
ADAPTER_DIR = "adapter"
STEP_PREFIX = "step_"


def checkpoint_dir(output_dir: Path, step: int) -> Path:
    return output_dir / f"{STEP_PREFIX}{step}"


def step_dirs(output_dir: Path) -> list[Path]:
    """The checkpoint folders (`step_<N>`, complete or not) in `output_dir`."""
    return sorted(p for p in output_dir.glob(f"{STEP_PREFIX}*") if p.name.removeprefix(STEP_PREFIX).isdigit())


def partial_dirs(output_dir: Path) -> list[Path]:
    """The `.step_<N>.partial` folders of saves that did not finish."""
    return sorted(output_dir.glob(f".{STEP_PREFIX}*.partial"))


def remove_checkpoints(output_dir: Path) -> None:
    for path in step_dirs(output_dir) + partial_dirs(output_dir):
        shutil.rmtree(path)


def remove_partials(output_dir: Path) -> None:
    for path in partial_dirs(output_dir):
        shutil.rmtree(path, ignore_errors=True)


def latest_checkpoint(output_dir: Path) -> Path:
    """The complete checkpoint (one with a STATE_FILE) of the highest step in `output_dir`."""
    steps = sorted(
        (int(p.name.removeprefix(STEP_PREFIX)), p)
        for p in output_dir.glob(f"{STEP_PREFIX}*")
        if p.name.removeprefix(STEP_PREFIX).isdigit() and (p / STATE_FILE).exists()
    )
    if not steps:
        raise DataError(f"{display_path(output_dir)}: no checkpoint to resume from")
    return steps[-1][1]
