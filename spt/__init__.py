"""Split Personality Training: data generation for an honest persona and its LoRA training.

The library behind the entry scripts in scripts/ and training/ and the `spt` command (spt.cli).
"""
