"""Benchmark: near-duplicate detection of stage 1 tasks at the scale of a large topic.

Builds an index of N realistic-length tasks (pseudo-random words, ~40 words each) and times
`NearDuplicateIndex.match` + `add` for M new tasks, as one stage 1 run does for every sample.
Run: .venv/bin/python tests/benchmarks/bench_stage_1_duplicates.py [N] [M]. Prints numbers only.
"""

from __future__ import annotations

import random
import sys
import time

from spt.stage_1.diversity import NearDuplicateIndex

SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]


def task(rng: random.Random) -> str:
    return " ".join("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 4))) for _ in range(40))


def main() -> None:
    existing = int(sys.argv[1]) if len(sys.argv) > 1 else 2_000
    new = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    rng = random.Random(0)
    start = time.perf_counter()
    index = NearDuplicateIndex([task(rng) for _ in range(existing)])
    built = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(new):
        candidate = task(rng)
        if index.match(candidate) is None:
            index.add(candidate)
    checked = time.perf_counter() - start
    print(f"index of {existing} tasks built in {built:.2f} s")
    print(f"{new} new tasks checked and added in {checked:.2f} s ({1000 * checked / new:.2f} ms per task)")


if __name__ == "__main__":
    main()
