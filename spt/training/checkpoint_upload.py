"""What `train_lora.py --push_to_hub REPO` uploads (hub.py): the run's last checkpoint, `<output_dir>/step_<N>/`,
as a Hub model repo, laid out as on disk: the adapter in `adapter/` (peft:
`PeftModel.from_pretrained(base, REPO, subfolder="adapter")`), the tokenizer with the split-personality
token at the top (`AutoTokenizer.from_pretrained(REPO)`), and `training_state.json` (config, data
SHA-256s, validation metrics). The adapter's model card `adapter/README.md` is also uploaded as the
repo's `README.md` (the card the Hub shows) unless the checkpoint has a `README.md` of its own.
accelerate's resume state (RESUME_STATE) is left out: optimizer moments and pickled RNG states serve
only `--resume`, and a pickle is code to whoever loads it. Reads the checkpoint; writes nothing.
"""

from __future__ import annotations

from pathlib import Path

from spt import hub
from spt.training.checkpoints import ADAPTER_DIR

CARD = "README.md"
# accelerate's Accelerator.save_state files (accelerate/utils/constants.py: OPTIMIZER_NAME, SCHEDULER_NAME,
# SAMPLER_NAME, RNG_STATE_NAME, SCALER_NAME; custom_checkpoint_<i>.pkl for registered objects).
RESUME_STATE = (
    "optimizer*.bin",
    "scheduler*.bin",
    "sampler*.bin",
    "random_states_*.pkl",
    "custom_checkpoint_*.pkl",
    "scaler.pt",
)


def checkpoint_plan(checkpoint: Path, repo_id: str) -> hub.UploadPlan:
    """The files of `checkpoint` that --push_to_hub uploads to the model repo `repo_id`."""
    adapter_card = checkpoint / ADAPTER_DIR / CARD
    also = ((adapter_card, CARD),) if adapter_card.is_file() and not (checkpoint / CARD).is_file() else ()
    return hub.upload_plan(checkpoint, repo_id, "model", exclude=RESUME_STATE, also=also)
