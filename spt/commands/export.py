"""Export the tagged stage-3 data as training samples (docs/data_formats.md §6).

What it reads and writes: the docstring of scripts/export_training_data.py.

Every sample has `policy` "on" only when S is the trained model's own answer (trained_model_data_id,
or base_model) shown with exactly the prompt it was generated under (export/policy.py). Unseen-intent
samples always keep their prompt; samples that show the model the same context before the
split-personality token with different flags are dropped and counted (export/contexts.py).

Usage: python scripts/export_training_data.py [--config PATH] [--data_dir DIR]
           [--output_dir DIR] [--seed N] [--data_models MODEL ...] [--no_viewer] [--push_to_hub REPO]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from spt import utils
from spt.export.run import run
from spt.training_config import DEFAULT_CONFIG_PATH


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = utils.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG_PATH,
        help="training config (default: config/training_config.json)",
    )
    parser.add_argument("--data_dir", help="tagged data directory (overrides config data_dir)")
    parser.add_argument("--output_dir", help="where the export goes (overrides config export_dir)")
    parser.add_argument("--seed", type=int, help="seed of the split and the mitigations (overrides config seed)")
    parser.add_argument("--data_models", nargs="+", help="stage-2 model ids to export (overrides config data_models)")
    parser.add_argument(
        "--no_viewer",
        action="store_true",
        help="skip the sample viewer viewer/ (docs/viewer.md; about 1 s per 100 MB of data)",
    )
    parser.add_argument(
        "--push_to_hub",
        metavar="REPO",
        help="then upload the export folder (not its viewer) to this Hugging Face Hub dataset repo (needs HF_TOKEN)",
    )
    return parser.parse_args(argv)


@utils.exit_on_data_error
def main(argv: list[str] | None = None) -> int:
    """Export; exit 0 on success, 2 on bad input or config (nothing written)."""
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
