"""The loop back to stage 1: which kinds of A/B factor passed and which failed the causal
verification, per topic (docs/data_formats.md §4.2.1).

`write_topic_feedback(topic, items)` counts, over every item of the topic that has an applicable
verdict and a factor label (refused ones left out), the item's `factor_kind` as verified or
failed, and writes data/stage_1_feedback/<topic>.json (atomically; SPT_DATA_DIR moves it): the
counts per kind, `avoid` (kinds that failed more often than they passed) and `try` (kinds that
passed more often than they failed), each sorted by how many items back it. `read_feedback(topic)`
gives that file's document and SHA-256 for stage 1 (None when there is none) and checks the
fields stage 1 uses;
`hint_lines(document, "avoid"|"try")` the lines stage 1's request lists.
Reads and writes data/stage_1_feedback/<topic>.json only.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from spt import utils
from spt.verification.verdict import FIELD

FEEDBACK_DIR = utils.DATA_DIR / "stage_1_feedback"
MAX_KINDS_LISTED = 10  # per list, the best-supported ones


def feedback_path(topic: str) -> Path:
    return FEEDBACK_DIR / f"{topic}.json"


def topic_feedback(topic: str, items: list[dict]) -> dict:
    """The feedback document of `topic` from its items' verdicts."""
    passed, failed = Counter(), Counter()
    judges: dict[str, None] = {}
    for item in items:
        verdict = item.get(FIELD)
        if (
            not isinstance(verdict, dict)
            or not verdict.get("applicable")
            or not verdict.get("factor_kind")
            or verdict.get("verified") is None
        ):
            continue  # not applicable, not labelled (or the label refused), or every judge call refused
        (passed if verdict["verified"] else failed)[verdict["factor_kind"]] += 1
        judges.setdefault(verdict["factor"].get("judge_model"))
    kinds = sorted(set(passed) | set(failed), key=lambda kind: (-(passed[kind] + failed[kind]), kind))

    def listed(wins: Counter, losses: Counter) -> list[str]:
        chosen = [kind for kind in kinds if wins[kind] > losses[kind]]
        return sorted(chosen, key=lambda kind: (-(wins[kind] - losses[kind]), kind))[:MAX_KINDS_LISTED]

    return {
        "topic": topic,
        "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "written_by": "scripts/verify_ab_factors.py",
        "judge_models": [j for j in judges if j],
        "items_judged": sum(passed.values()) + sum(failed.values()),
        "items_verified": sum(passed.values()),
        "factor_kinds": [{"kind": kind, "verified": passed[kind], "failed": failed[kind]} for kind in kinds],
        "avoid": listed(failed, passed),
        "try": listed(passed, failed),
    }


def write_topic_feedback(topic: str, items: list[dict]) -> Path:
    path = feedback_path(topic)
    utils.atomic_write_json(path, topic_feedback(topic, items))
    return path


def read_feedback(topic: str) -> tuple[dict, str] | None:
    """(the topic's feedback document, its file's SHA-256), or None when there is no file."""
    path = feedback_path(topic)
    if not path.exists():
        return None
    document = utils.read_json(path)
    where = utils.display_path(path)
    if not isinstance(document, dict):
        raise utils.DataError(f"{where}: expected a JSON object at the top level")
    for name in ("avoid", "try"):
        value = document.get(name)
        if not isinstance(value, list) or not all(isinstance(kind, str) for kind in value):
            raise utils.DataError(f"{where}: field {name!r} must be a list of strings")
    return document, hashlib.sha256(path.read_bytes()).hexdigest()


def hint_lines(document: dict, which: str) -> list[str]:
    """The kinds of `document[which]` ("avoid" or "try") as Markdown list lines, with their counts."""
    counts = {entry.get("kind"): entry for entry in document.get("factor_kinds", []) if isinstance(entry, dict)}
    lines = []
    for kind in document[which]:
        entry = counts.get(kind, {})
        lines.append(
            f"- {kind} (verified in {entry.get('verified', '?')}, failed in {entry.get('failed', '?')} sample(s))"
        )
    return lines
