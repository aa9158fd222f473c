"""Tagging of stage-3 data (docs/data_formats.md §5): `tags` is the one definition of every tag (name, rule,
description, order), of `consensus`, of the `id_string` / `id_numeric` rules and of where the
stage-3 files are; the tagger, the analysis, the export and the config check all import it.
`tagger` is the tagging run behind scripts/tag_stage_3_data.py (per-file tagging, the worker
pool, the all-or-nothing writing of the tagged files).
"""
