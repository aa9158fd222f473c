"""The stage-3 analysis behind scripts/analyze_stage_3.py: one pass over the tagged data
(`collect`), the statistics computed from it (`stats`), the example files (`examples`, with the
near-duplicate search of `duplicates`), the Markdown report (`markdown`), the plots (`plots`)
and the run that assembles and writes them all (`run`). Tag rules come from tagging.tags.
"""
