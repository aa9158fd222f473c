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

The same program as `spt export`; its flags: `--help`; its code: spt/commands/export.py.
"""

import sys

from spt.commands.export import main

if __name__ == "__main__":
    sys.exit(main())
