"""Confidence intervals of an accuracy, shared by the training-time validation (spt/training/trainer.py),
the evaluation summary (spt/training/evaluator.py) and the evaluation report (evaluation/report.py).

The interval is the Wilson score interval at 95 % (z = 1.96) over the reviews whose flag parsed:
unlike the normal approximation it stays inside [0, 1] and is not empty at 0 or n correct. It
treats reviews as independent; reviews of one item (its A and B samples, several data models)
are correlated, so the true interval is somewhat wider.
"""

from __future__ import annotations

import math

METHOD = "Wilson score interval, 95%"
Z_95 = 1.959963984540054


def wilson_interval(correct: int, n: int, z: float = Z_95) -> tuple[float, float] | None:
    """(low, high) share of `correct` among `n`; None when n is 0."""
    if n <= 0:
        return None
    share = correct / n
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def accuracy_with_interval(correct: int, n: int) -> dict:
    """{accuracy, ci95: [low, high], n} as the trainer and the evaluation summary record it."""
    interval = wilson_interval(correct, n)
    return {
        "accuracy": correct / n if n else None,
        "ci95": list(interval) if interval else None,
        "n": n,
        "interval": METHOD,
    }
