"""The layout of a training checkpoint, shared by the trainer and the evaluation: a
checkpoint is `<output_dir>/step_<N>/` with the adapter in ADAPTER_DIR, the tokenizer, the
accelerate state (optimizer, scheduler, RNG) and STATE_FILE (effective config, data SHA-256s,
package versions, step, split-personality token, validation metrics). Reads directory
listings only; writes nothing.
"""
from __future__ import annotations

from pathlib import Path

from utils import DataError, display_path

STATE_FILE = "training_state.json"
ADAPTER_DIR = "adapter"
STEP_PREFIX = "step_"


def checkpoint_dir(output_dir: Path, step: int) -> Path:
    return output_dir / f"{STEP_PREFIX}{step}"


def latest_checkpoint(output_dir: Path) -> Path:
    """The complete checkpoint (one with a STATE_FILE) of the highest step in `output_dir`."""
    steps = sorted((int(p.name.removeprefix(STEP_PREFIX)), p) for p in output_dir.glob(f"{STEP_PREFIX}*")
                   if p.name.removeprefix(STEP_PREFIX).isdigit() and (p / STATE_FILE).exists())
    if not steps:
        raise DataError(f"{display_path(output_dir)}: no checkpoint to resume from")
    return steps[-1][1]
