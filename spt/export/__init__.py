"""The training-data export behind scripts/export_training_data.py (docs/data_formats.md §6): selecting the
samples of the tagged stage-3 data (`selection`), splitting them by item, the shortcut
mitigations on system prompts (`shortcuts`), the statistics report (`report`), the output set
written and swapped in whole with its manifest, and the manifest check training runs
(`output_set`), and the run that writes train.jsonl / validation.jsonl (`run`). Tag rules come
from tagging.tags, the filter rule from training_filters.
"""
