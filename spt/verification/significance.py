"""The statistical test behind the causal verification's verdict (docs/causal_verification.md).

`fisher_one_sided(shown_b, num_b, shown_a, num_a)`: the one-sided Fisher exact test of "answers
under B show the behaviour more often than answers under A": the probability, with the total
number of answers showing the behaviour fixed and no effect of the prompt, that B holds at least
`shown_b` of them (the hypergeometric upper tail, exact with math.comb). `DEFAULT_ALPHA` is the
level the verdict uses unless --alpha says otherwise. Reads and writes nothing.
"""

from __future__ import annotations

from math import comb

DEFAULT_ALPHA = 0.05


def fisher_one_sided(shown_b: int, num_b: int, shown_a: int, num_a: int) -> float:
    """P(X >= shown_b) for X hypergeometric: `num_b` answers drawn from `num_a + num_b`, of which
    `shown_a + shown_b` show the behaviour. 1.0 when no answer (or every answer) shows it."""
    if not (0 <= shown_b <= num_b and 0 <= shown_a <= num_a):
        raise ValueError(f"counts out of range: {shown_b}/{num_b} under B, {shown_a}/{num_a} under A")
    shown = shown_a + shown_b
    tail = sum(comb(num_b, x) * comb(num_a, shown - x) for x in range(shown_b, min(num_b, shown) + 1))
    return tail / comb(num_a + num_b, shown)
