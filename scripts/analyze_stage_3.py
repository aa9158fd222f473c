"""Analyse tagged stage-3 data and write a report for researchers.

Reads every `<data_dir>/<topic>/*.json` (default data/stage_3_tagged) once, and
`config/training_config.json` (or `--config`) to count what the training filters keep.
Writes into `<output_dir>` (default data/stage_3_analysis):
  report.md                       the readable report (headline numbers, tables, plots, sanity checks)
  summary_report.json             counts, A/B balance, token/confidence/difficulty distributions,
                                  review-focus agreement, per-topic quality scores
  tag_analysis.json               tag counts per level, co-occurrence of the top tags, per topic
  topic_comparisons.json          one comparable row per topic
  by_topic/<topic>_analysis.json, by_model.json, by_intervention_version.json
  interesting_examples/<category>.json
  sanity_checks.json              every failed sanity check, keyed by file and item
  plots/*.png
  viewer/samples.html             the sample viewer (scripts/view_samples.py): an index and one page per
                                  topic, A beside B with T, S, I, R, P, confidence and tags, filters
Every file is written atomically, after all the analysis succeeded.

The same program as `spt analyze`; its flags: `--help`; its code: spt/commands/analyze.py.
"""

import sys

from spt.commands.analyze import main

if __name__ == "__main__":
    sys.exit(main())
