"""Stage 1 of the pipeline: generating the A/B/T samples (system prompts and user tasks) of
each topic into data/stage_1/<topic>/. The package owns the run's planning (plan.py), the
generation of batches and their files (generate.py), the dry run and summary (report.py), the
run itself (run.py, called by scripts/dataset_generation_stage_1.py), the variation hints and
near-duplicate detection (diversity.py), the checks of samples and batch files (validation.py)
and the topic folders with their records of failed and of planned, unfinished batches (files.py).
"""
