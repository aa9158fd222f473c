"""How often the causal verification's verdict passes: its null pass rate and its power.

For each rule and K (answers per prompt, the same under A and B) it prints the share of target
models verified when the factor does nothing (p_A = p_B = p: the worst p over a grid of 101
values, and p = 0.5), when it has a strong effect (p_A 0.1 -> p_B 0.9), a medium one (0.2 -> 0.8)
and a weak one (0.3 -> 0.7), and for the strong effect the share of items verified when all six
target models must pass (independent models: the sixth power). Exact: every outcome (x_A, x_B)
of the two binomials is enumerated; a seeded simulation (--trials draws) checks the exact figures
for K = 3 and the default K. The factor is assumed hidden (hidden_share > 0.5), which the test
leaves unchanged. The rules:

- old: consistency = x_B/K - x_A/K >= 0.5 (the rule before issue 18);
- fisher: one-sided Fisher exact p <= alpha (spt/verification/significance.py), the verdict
  of scripts/verify_ab_factors.py at its default --alpha 0.05 and at 0.10.

docs/causal_verification.md quotes this script's output.
Run: PYTHONPATH=scripts .venv/bin/python tests/benchmarks/bench_verification_power.py [--trials 200000]
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Callable
from math import comb

from spt.verification.significance import DEFAULT_ALPHA, fisher_one_sided

DEFAULT_K = 10  # scripts/verify_ab_factors.py --num_samples
MODELS = 6  # the data models of the published data
EFFECTS = {"strong 0.1->0.9": (0.1, 0.9), "medium 0.2->0.8": (0.2, 0.8), "weak 0.3->0.7": (0.3, 0.7)}
Rule = Callable[[int, int, int], bool]  # (x_A, x_B, K) -> verified


def old_rule(x_a: int, x_b: int, k: int) -> bool:
    return (x_b - x_a) / k >= 0.5


def fisher_rule(alpha: float) -> Rule:
    return lambda x_a, x_b, k: fisher_one_sided(x_b, k, x_a, k) <= alpha


def binomial(x: int, k: int, p: float) -> float:
    return comb(k, x) * p**x * (1 - p) ** (k - x)


def pass_rate(rule: Rule, k: int, p_a: float, p_b: float) -> float:
    """Exact probability that `rule` verifies, x_A ~ Bin(K, p_A) and x_B ~ Bin(K, p_B)."""
    return sum(
        binomial(x_a, k, p_a) * binomial(x_b, k, p_b)
        for x_a in range(k + 1)
        for x_b in range(k + 1)
        if rule(x_a, x_b, k)
    )


def simulated(rule: Rule, k: int, p_a: float, p_b: float, trials: int, rng: random.Random) -> float:
    hits = 0
    for _ in range(trials):
        x_a = sum(rng.random() < p_a for _ in range(k))
        x_b = sum(rng.random() < p_b for _ in range(k))
        hits += rule(x_a, x_b, k)
    return hits / trials


def percent(value: float) -> str:
    return f"{100 * value:.1f}%"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=200_000, help="simulated draws per checked cell")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rules = {
        "old (consistency >= 0.5)": old_rule,
        f"fisher alpha {DEFAULT_ALPHA}": fisher_rule(DEFAULT_ALPHA),
        "fisher alpha 0.10": fisher_rule(0.10),
    }
    header = ["rule", "K", "null, worst p", "null, p=0.5", *EFFECTS, f"strong, all {MODELS} models"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for name, rule in rules.items():
        for k in (1, 3, 5, 8, 10, 15):
            null = max(pass_rate(rule, k, p / 100, p / 100) for p in range(101))
            effects = {label: pass_rate(rule, k, *ps) for label, ps in EFFECTS.items()}
            print(
                f"| {name} | {k} | {percent(null)} | {percent(pass_rate(rule, k, 0.5, 0.5))} | "
                + " | ".join(percent(rate) for rate in effects.values())
                + f" | {percent(effects['strong 0.1->0.9'] ** MODELS)} |"
            )
    rng = random.Random(args.seed)
    print(f"\nsimulation check ({args.trials:,} draws each, seed {args.seed}): exact vs simulated")
    for name, rule in rules.items():
        for k in (3, DEFAULT_K):
            for label, (p_a, p_b) in (("null p=0.5", (0.5, 0.5)), ("strong 0.1->0.9", (0.1, 0.9))):
                print(
                    f"  {name}, K={k}, {label}: {percent(pass_rate(rule, k, p_a, p_b))} vs "
                    f"{percent(simulated(rule, k, p_a, p_b, args.trials, rng))}"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
