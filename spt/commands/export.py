"""Export the tagged stage-3 data as training samples (docs/data_formats.md §6).

Reads config/training_config.json (strictly, via training_config.py) and the tagged data
`<data_dir>/<topic>/*.json`. For every item of a train/validation topic, every variant (A, B)
of every model in `data_models` and every intervention whose key is in `intervention_types`,
one sample, unless the intervention's or the variant's tags meet `tags_to_filter`
(training_filters.py). Items are split between train and validation (seeded, by item: all
samples of one item stay on one side). Optional shortcut mitigations replace the system prompt
of a seeded, exact share of eligible samples by nothing or by the other variant's prompt. With off_policy_detection_fraction
> 0, a seeded, exact share of the trained model's (item, variant) answers adds an on-policy
detection sample (its own answer under its own prompt) and an off-policy one each (another
model's answer, or its own answer under the other variant's prompt; reviews from
prompts/off_policy_detection.md), and `off_policy_eval.json` holds on/off-policy rows of every
eligible validation pair for training/evaluate.py --input (export/off_policy.py). The shortcut
measures (export/measures.py) score each view before mitigation and as exported on one fixed
validation set, with item-bootstrap intervals.

Every sample has `policy` "on" only when S is the trained model's own answer (trained_model_data_id,
or base_model) shown with exactly the prompt it was generated under (export/policy.py). Unseen-intent
samples always keep their prompt; samples that show the model the same context before the
split-personality token with different flags are dropped and counted (export/contexts.py).

Writes to `<output_dir>` (default: config `export_dir`): `train.jsonl`, `validation.jsonl`,
`heldout_topics.jsonl` (the topics of the data outside train_topics and validation_topics, for
evaluation only; one sample per line), `export_stats.json` and `export_report.md` (counts per topic,
variant and flag before and after each filter, policy labels, the context check, and a warning when
the flag is predictable from the variant), with leave_topics_out_folds k >= 2 one complete set per
fold in `fold_<i>/`, and `export_manifest.json` (each file's SHA-256 and the export id, which
training checks). The set is written into a fresh sibling folder and swapped in whole, so the folder
never mixes two exports. The folder's `README.md` is its dataset card (export/card.py: the YAML
`configs` that `datasets.load_dataset(<folder>)` reads, and what the set holds); it is rewritten by
each export and is not in the manifest. Then, unless --no_viewer, the sample viewer
`viewer/samples.html` (docs/viewer.md): every sample of the data with what the export did to it
(`sample_decisions.jsonl`). `--push_to_hub REPO` then uploads the set and its card (not the viewer)
to the Hugging Face Hub dataset repo REPO (hub.py; a missing token stops before the export). Exit 2,
nothing written: bad input or config, or a selection that matches nothing (the message names it and
what the data has).

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
