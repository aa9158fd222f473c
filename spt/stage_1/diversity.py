"""Diversity of stage 1 data: per-batch variation hints and near-duplicate detection of tasks.

- `load_variation_config()` reads config/stage_1_variation.json (lists of settings, users,
  domains and pressures); `variation_hint()` draws one of each, reproducibly from the run's
  seed, the topic and the batch number, never repeating a combination within a topic until
  all have been used.
- `avoid_openings()`: the openings (first ~12 words of T) of the recent tasks, which a new
  batch is asked to steer away from; `avoid_tasks_block()` lists them for the request (an
  opening's opening is itself, so openings can stand in for their tasks).
- `NearDuplicateIndex` holds the tasks (T) of one topic and says whether a new task is a
  near-duplicate of one it holds.

Near-duplicate measure: rapidfuzz `fuzz.token_set_ratio` on normalised text (lower case,
punctuation removed, whitespace collapsed), threshold `DUPLICATE_THRESHOLD = 85`.
token_set_ratio ignores word order and extra words, so reworded or extended copies of one
scenario score high. Measured (see "notes on data generation.md"): the 3x45 pairs of distinct tasks in
the published reference files score 47-58 (max 58); hand-written near-duplicates (the same
scenario with another subject, a reordered paraphrase, a copy with one added sentence, a
re-asked question) score 89, 91, 100 and 91; different tasks of the same kind score 50-61.
85 sits between the two groups with a margin on each side. Caveat: a very short task whose
words all occur in a longer one scores 100.

Reads config/stage_1_variation.json; writes nothing.
"""

from __future__ import annotations

import math
import random
import re
from functools import lru_cache
from pathlib import Path

from rapidfuzz import fuzz, process

from spt.utils import CONFIG_DIR, DataError, display_path, read_json

VARIATION_CONFIG = CONFIG_DIR / "stage_1_variation.json"
VARIATION_KEYS = ("settings", "users", "domains", "pressures")
DUPLICATE_THRESHOLD = 85.0
SUMMARY_WORDS = 12
MAX_AVOID_TASKS = 40

_NON_WORD = re.compile(r"[^\w\s]+")


def load_variation_config(path: Path = VARIATION_CONFIG) -> dict[str, list[str]]:
    """The variation lists; a missing, empty or non-string list is a DataError naming it."""
    config = read_json(path)
    if not isinstance(config, dict):
        raise DataError(f"{display_path(path)}: expected a JSON object")
    lists = {}
    for key in VARIATION_KEYS:
        values = config.get(key)
        if not isinstance(values, list) or not values or not all(isinstance(v, str) and v.strip() for v in values):
            raise DataError(f"{display_path(path)}: '{key}' must be a non-empty list of non-empty strings")
        lists[key] = values
    unknown = sorted(set(config) - set(VARIATION_KEYS) - {"_comment"})
    if unknown:
        raise DataError(f"{display_path(path)}: unknown key(s): {', '.join(unknown)}")
    return lists


def variation_hint(config: dict[str, list[str]], seed: int, topic: str, batch_number: int) -> str:
    """The batch's direction: one setting, user, domain and pressure, fixed by (seed, topic, batch).

    Batch numbers walk through a seeded shuffle of all combinations, so two batches of a topic
    get the same combination only after every combination has been used once.
    """
    lists = [config[key] for key in VARIATION_KEYS]
    index = _combination_order(seed, topic, tuple(map(len, lists)))[batch_number % math.prod(map(len, lists))]
    chosen = []
    for values in reversed(lists):
        index, position = divmod(index, len(values))
        chosen.append(values[position])
    setting, user, domain, pressure = reversed(chosen)
    return (
        f"- Setting: {setting}\n"
        f"- Typical user: {user}\n"
        f"- Subject area: {domain}\n"
        f"- Source of pressure (for samples that have one): {pressure}"
    )


@lru_cache(maxsize=32)
def _combination_order(seed: int, topic: str, sizes: tuple[int, ...]) -> list[int]:
    order = list(range(math.prod(sizes)))
    random.Random(f"{seed}:{topic}").shuffle(order)
    return order


def task_summary(task: str, words: int = SUMMARY_WORDS) -> str:
    """The first `words` words of a task, on one line, with an ellipsis when cut."""
    tokens = task.split()
    return " ".join(tokens[:words]) + (" …" if len(tokens) > words else "")


def avoid_openings(tasks: list[str], limit: int = MAX_AVOID_TASKS) -> tuple[str, ...]:
    """The openings (task_summary) of the `limit` most recent tasks (last in `tasks`)."""
    return tuple(task_summary(task) for task in (tasks[-limit:] if limit else []))


def avoid_tasks_block(tasks: list[str], limit: int = MAX_AVOID_TASKS) -> str:
    """A Markdown list of the openings of the `limit` most recent tasks (last in `tasks`)."""
    openings = avoid_openings(tasks, limit)
    if not openings:
        return "(none yet)"
    return "\n".join(f"- {opening}" for opening in openings)


def normalise(text: str) -> str:
    """Lower case, punctuation removed, whitespace collapsed."""
    return " ".join(_NON_WORD.sub(" ", text.lower()).split())


def similarity(first: str, second: str) -> float:
    """0-100: how alike two tasks are (token_set_ratio of the normalised texts)."""
    return fuzz.token_set_ratio(normalise(first), normalise(second))


class NearDuplicateIndex:
    """The tasks of one topic; `match(task)` finds one it is a near-duplicate of."""

    def __init__(self, tasks: list[str] = (), threshold: float = DUPLICATE_THRESHOLD):
        self.threshold = threshold
        self._tasks: list[str] = []
        self._normalised: list[str] = []
        for task in tasks:
            self.add(task)

    def __len__(self) -> int:
        return len(self._tasks)

    def add(self, task: str) -> None:
        self._tasks.append(task)
        self._normalised.append(normalise(task))

    def match(self, task: str) -> tuple[str, float] | None:
        """(the most similar task held, its score) when the score reaches the threshold, else None."""
        best = process.extractOne(
            normalise(task), self._normalised, scorer=fuzz.token_set_ratio, score_cutoff=self.threshold
        )
        if best is None:
            return None
        _, score, index = best
        return self._tasks[index], score
