"""Causal verification of the A/B factor, between stages 2 and 3 (scripts/verify_ab_factors.py):
the blind judge request and the factor label (requests), the one-sided test (significance), the
verdict computed from the judge's answers and the export's provenance (verdict), the per-topic
feedback for stage 1 (feedback) and the run (run)."""
