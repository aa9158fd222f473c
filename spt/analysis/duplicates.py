"""Near-duplicate search for the stage-3 report: which normalised tasks are >= 90% similar.

Comparing every pair with rapidfuzz is quadratic and too slow for topics with thousands of
tasks, so candidate pairs are found first with MinHash over word-pair shingles (banded
locality-sensitive hashing: two texts become candidates when one band of 2 MinHash values is
equal, which near-identical texts almost always share), and every candidate is then scored
with rapidfuzz's `fuzz.ratio`. Deterministic (CRC-32 shingle hashes, fixed seed). Reads and
writes nothing.
"""

from __future__ import annotations

import zlib
from itertools import combinations

import numpy as np
from rapidfuzz import fuzz

NEAR_DUPLICATE_MIN_SCORE = 90  # rapidfuzz ratio (0-100) of the normalised texts
SHINGLE_WORDS = 2
BANDS, ROWS_PER_BAND = 12, 2
_PRIME = (1 << 31) - 1
_RANDOM = np.random.default_rng(20250101)
# Universal hashing (h * a + b) mod p with h, a, b < p = 2**31 - 1: below 2**62, no uint64 overflow.
_A = _RANDOM.integers(1, _PRIME, BANDS * ROWS_PER_BAND, dtype=np.uint64)
_B = _RANDOM.integers(0, _PRIME, BANDS * ROWS_PER_BAND, dtype=np.uint64)


def _signature(text: str) -> np.ndarray:
    words = text.split()
    shingles = {" ".join(words[i : i + SHINGLE_WORDS]) for i in range(max(len(words) - SHINGLE_WORDS + 1, 1))}
    hashes = np.fromiter((zlib.crc32(s.encode()) % _PRIME for s in shingles), dtype=np.uint64, count=len(shingles))
    return ((hashes[:, None] * _A + _B) % np.uint64(_PRIME)).min(axis=0)


def similar_pairs(texts: list[str]) -> list[tuple[int, int, float]]:
    """(i, j, score) with i < j for the distinct `texts` whose fuzz.ratio >= NEAR_DUPLICATE_MIN_SCORE."""
    buckets: dict[tuple, list[int]] = {}
    for index, text in enumerate(texts):
        signature = _signature(text)
        for band in range(BANDS):
            rows = signature[band * ROWS_PER_BAND : (band + 1) * ROWS_PER_BAND]
            buckets.setdefault((band, *rows.tolist()), []).append(index)
    candidates = {pair for members in buckets.values() if len(members) > 1 for pair in combinations(members, 2)}
    pairs = []
    for i, j in sorted(candidates):
        score = fuzz.ratio(texts[i], texts[j], score_cutoff=NEAR_DUPLICATE_MIN_SCORE)
        if score:
            pairs.append((i, j, round(score, 1)))
    return pairs
