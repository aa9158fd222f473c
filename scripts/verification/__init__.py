"""Causal verification of the A/B factor, between stages 2 and 3 (scripts/verify_ab_factors.py):
the judge request (requests), the verdict computed from the judge's answer (verdict), the
per-topic feedback for stage 1 (feedback) and the run (run)."""
