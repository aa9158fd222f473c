"""Train the honest persona: a LoRA adapter that reviews the model's previous response after
the split-personality token.

Reads config/training_config.json (or --config) with `--set key=value` overrides (values are
JSON, bare strings allowed), the export's `train.jsonl` / `validation.jsonl` (--train_file,
--validation_file; default under `export_dir`) and the base model (+ merge_checkpoints_train,
merged in first: the "poisoned" model).
Writes checkpoints `checkpoints_per_epoch` times per epoch to `<output_dir>/step_<N>/`:
`adapter/` (peft), the tokenizer, the optimizer/scheduler/RNG state (accelerate) and
`training_state.json` (effective config, data SHA-256s, package versions, step, epoch,
split-personality token, validation metrics) and `adapter/README.md` (the adapter's model card);
`<output_dir>/metrics.jsonl` (one row per logged step) and `<output_dir>/curves.png`. `--resume latest|DIR` continues exactly; an
`output_dir` that holds checkpoints of an earlier run is refused without --resume (or --overwrite,
which deletes them first), and a second training into the same `output_dir` stops at once
(locks.hold). `--push_to_hub REPO` uploads the last checkpoint to a Hugging Face Hub model repo when
the run ends (checkpoint_upload.py; a missing token stops before the model loads).
The training loop is trainer.py.

The same program as `spt train`; its flags: `--help`; its code: spt/commands/train.py.
"""

import sys

from spt.commands.train import main

if __name__ == "__main__":
    sys.exit(main())
