"""Train the honest persona: a LoRA adapter that reviews the model's previous response after
the split-personality token.

What it reads and writes: the docstring of training/train_lora.py.

Run with `accelerate launch training/train_lora.py ...` (any accelerate config, see
training/accelerate_configs/) or plain `python training/train_lora.py ...`.
Exit codes: 0 done (or --max_steps reached), 2 bad input or usage (checked before the model
loads: the config's keys and ranges, the --push_to_hub repo and token, the output folder, the base model's
name, the training file), 130 stopped by Ctrl-C
(the message says `--resume latest` when a checkpoint exists to continue from, else that nothing was saved).
Beside the checkpoints: `metrics.jsonl` (a row per logged step), `curves.png` and, with config key
`report_to`, accelerate's trackers (docs/training.md "Training curves").
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from spt.training.trainer import run
from spt.utils import ArgumentParser, DataError, data_path, exit_on_data_error, setup_logging


def parse_overrides(pairs: list[str]) -> dict:
    """`--set key=value` pairs as config overrides (a value that is not JSON is a string)."""
    overrides = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise DataError(f"--set {pair!r}: expected key=value")
        try:
            overrides[key] = json.loads(raw)
        except json.JSONDecodeError:
            overrides[key] = raw  # a bare string such as a path
    return overrides


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line; `overrides` comes back as a dict (parse_overrides)."""
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", help="training config JSON (default config/training_config.json)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config key (JSON value), repeatable",
    )
    parser.add_argument(
        "--train_file", type=data_path, help="JSONL training samples (default <export_dir>/train.jsonl)"
    )
    parser.add_argument(
        "--validation_file",
        type=data_path,
        help="JSONL validation samples (default <export_dir>/validation.jsonl when it exists)",
    )
    parser.add_argument(
        "--resume",
        nargs="?",
        const="latest",
        metavar="CHECKPOINT|latest",
        help="continue from a checkpoint directory or the latest one in output_dir",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="delete the checkpoints an earlier run left in output_dir and start afresh",
    )
    parser.add_argument("--max_steps", type=int, help="stop (with a checkpoint) after this many optimizer steps")
    parser.add_argument(
        "--push_to_hub",
        metavar="REPO",
        help="then upload the last checkpoint (adapter, tokenizer, training_state.json, card; not the "
        "optimizer state) to this Hugging Face Hub model repo (needs HF_TOKEN)",
    )
    args = parser.parse_args(argv)
    args.overrides = parse_overrides(args.overrides)
    return args


@exit_on_data_error(resume="nothing was saved; rerun the same command")  # trainer.run says more
def main(argv: list[str] | None = None) -> int:
    setup_logging()
    logging.getLogger("accelerate").setLevel(logging.WARNING)
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
