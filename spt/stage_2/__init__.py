"""Stage 2 of the pipeline: the target model answers every stage-1 sample under its A (and B)
system prompt, into data/stage_2/<topic>/. The package owns the run (run.py, called by
scripts/dataset_generation_stage_2.py), the stage-2 files and what is pending in them
(files.py), what every engine shares (engine.py: sampling settings, `Generation`, batch plan,
thinking split), the engines on this machine (local.py: transformers, vllm.py: vLLM) and their
batched run (batches.py), and the provider-API engine (api.py).
"""
