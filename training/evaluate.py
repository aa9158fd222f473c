"""Evaluate an SPT checkpoint (or a baseline without adapter) on review-and-flag tasks.

Reads a checkpoint written by train_lora.py (`--checkpoint <output_dir>/step_<N>`: adapter,
tokenizer, training_state.json with the training config) or `--baseline clean|poisoned`
with `--base_model` (+ `--merge_checkpoints`), and the samples to review: `--input FILE` (a
JSON list of samples with `system_prompt`, `prompt`, `response` and optional `sample_id`,
`condition`, `expected_flag`, bias fields, `intervention` (the row's own, used unless
`--intervention_string` is given) and `task`, `policy`, `S_source_model`, `data_model` (copied to
the result row; the export's off_policy_eval.json has them); or `{"samples": [...]}`; or a published result
file `{"metadata", "results"}`, whose rows are re-evaluated) or `--validation [FILE]` (the
export's validation JSONL, its review samples; with the export's heldout_topics.jsonl beside it
when that exists, unless `--no_heldout_topics`: rows carry `topic_set` in-topic/held-out-topic).
Validation samples are asked a FIXED intervention, the same whatever the sample's flag
(`--intervention_string`, one or more, asked in turn; default the evaluation's string), because a
sample's own I can give the flag away; `--own_intervention` asks each its own I, and the result
file then says so (`intervention_source` own). Result rows carry the sample's topic, variant,
intervention_type, data_model, policy and task. `--unseen_intent` evaluates every sample in the unseen-intent
layout (the response not shown, or only its first tokens; the plans intervention by default);
validation samples exported as unseen-intent are always evaluated so.
Writes `results_<checkpoint>_<condition>_<intervention>_<timestamp>.json` (docs/data_formats.md §4.5, plus a
per-row `correct` and a `summary`) under data/evaluation_results/quantitative/ (or
`--output_dir`/`--output`), atomically after every batch; running again with the same
arguments resumes an incomplete file, skipping rows already done. The run is evaluator.py.
Exit codes: 0 done, 2 bad input or usage (an output that cannot be written included), 130 stopped
by Ctrl-C (rerun the same command to resume).

The same program as `spt evaluate`; its flags: `--help`; its code: spt/commands/evaluate.py.
"""

import sys

from spt.commands.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
