"""Stage 3 of the pipeline: an intervention (I), a first-person review (R) and a flag (P) for every
answer of every target model, each checked by an external quality reviewer. The package owns the
stage-3 data files (data), the requests and prompts sent (requests), the checks on an answer
(validation), the generation call and its splitting in halves (generation), the quality review
and rewrites (quality_review), the end-of-run summary (summary), the planning of work units and
the dry run (plan), and the run itself (run), which scripts/dataset_generation_stage_3.py calls.
"""
