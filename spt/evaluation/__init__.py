"""Evaluation results: `report` computes the accuracy tables of
scripts/analyze_evaluation_results.py from `data/evaluation_results/quantitative/*.json`
(docs/data_formats.md §4.5), the files training/evaluate.py writes.
"""
