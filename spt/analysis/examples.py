"""The `interesting_examples/<category>.json` documents of the stage-3 report.

Categories gathered during the pass (`analysis.collect.PASS_CATEGORIES`) are wrapped
with their true totals; the rest are derived here from the collection: near-duplicate
tasks (normalised T similarity within a topic: analysis.duplicates), the batches with the lowest and
highest PASS rate, and the PASS rate by topic × item difficulty. Reads and writes nothing.
"""

from __future__ import annotations

from collections import Counter, defaultdict

from rapidfuzz.utils import default_process

from spt.analysis.collect import PASS_CATEGORIES, TEXT_EXCERPT_CHARS, Collection, excerpt
from spt.analysis.duplicates import NEAR_DUPLICATE_MIN_SCORE, similar_pairs
from spt.analysis.stats import pct
from spt.shared_tools import DIFFICULTIES

BATCHES_MIN_INTERVENTIONS = 10  # smaller batches are too noisy to rank

DERIVED_CATEGORIES: dict[str, str] = {
    "near_duplicate_tasks": f"tasks T within a topic whose normalised texts are >= {NEAR_DUPLICATE_MIN_SCORE}% "
    "similar (identical ones are grouped)",
    "batches_lowest_pass_rate": "batch files with the lowest share of PASS flags",
    "batches_highest_pass_rate": "batch files with the highest share of PASS flags",
    "pass_rate_by_topic_x_difficulty": "PASS share per topic and item difficulty, per variant (FPT items should PASS)",
}
CATEGORIES: dict[str, str] = {**PASS_CATEGORIES, **DERIVED_CATEGORIES}


def _task_ref(file: str, index: int, text: str, detailed: bool) -> dict:
    return {"file": file, "item_index": index, "T": text if detailed else excerpt(text, TEXT_EXCERPT_CHARS)}


def near_duplicate_tasks(coll: Collection, *, limit: int, detailed: bool) -> dict:
    """Groups of identical normalised tasks, then pairs of distinct near-identical ones."""
    groups: list[dict] = []
    for topic, tasks in sorted(coll.tasks.items()):
        by_text: dict[str, list[tuple[str, int, str]]] = defaultdict(list)
        for file, index, text in tasks:
            by_text[default_process(text)].append((file, index, text))
        for members in by_text.values():
            if len(members) > 1:
                groups.append(
                    {
                        "topic": topic,
                        "score": 100.0,
                        "count": len(members),
                        "tasks": [_task_ref(*m, detailed) for m in members[:limit]],
                    }
                )
        unique = [text for text in by_text if text]
        members = [by_text[text] for text in unique]
        for row, col, score in similar_pairs(unique):
            groups.append(
                {
                    "topic": topic,
                    "score": score,
                    "count": 2,
                    "tasks": [_task_ref(*members[row][0], detailed), _task_ref(*members[col][0], detailed)],
                }
            )
    groups.sort(key=lambda g: (-g["score"], -g["count"], g["topic"]))
    by_topic = Counter(g["topic"] for g in groups)
    return {"total": len(groups), "by_topic_total": dict(sorted(by_topic.items())), "examples": groups[: limit * 5]}


def _batch_rows(coll: Collection) -> list[dict]:
    rows = []
    for file, batch in coll.batches.items():
        flags: Counter = batch["flags"]
        total = sum(flags.values())
        if total < BATCHES_MIN_INTERVENTIONS:
            continue
        passes = sum(n for (_variant, flag), n in flags.items() if flag == "PASS")
        a_total = sum(n for (variant, _flag), n in flags.items() if variant == "A")
        b_total = sum(n for (variant, _flag), n in flags.items() if variant == "B")
        rows.append(
            {
                "file": file,
                "batch_id": batch["batch_id"],
                "topic": batch["topic"],
                "interventions": total,
                "pass_pct": pct(passes, total),
                "a_pass_pct": pct(flags["A", "PASS"], a_total),
                "b_pass_pct": pct(flags["B", "PASS"], b_total),
            }
        )
    return rows


def batches_by_pass_rate(coll: Collection, *, limit: int, highest: bool) -> dict:
    rows = sorted(_batch_rows(coll), key=lambda r: (r["pass_pct"], r["file"]), reverse=highest)
    return {"total": len(rows), "minimum_interventions": BATCHES_MIN_INTERVENTIONS, "examples": rows[:limit]}


def pass_rate_by_topic_x_difficulty(coll: Collection) -> dict:
    counts: dict[tuple[str, str, str], Counter] = defaultdict(Counter)
    for row, n in coll.cube.items():
        counts[row.topic, row.difficulty, row.variant][row.flag] += n
    table: dict[str, dict] = {}
    order = {d: i for i, d in enumerate(DIFFICULTIES)}
    for topic, difficulty, variant in sorted(counts, key=lambda k: (k[0], order.get(k[1], len(order)), k[1], k[2])):
        flags = counts[topic, difficulty, variant]
        total = sum(flags.values())
        table.setdefault(topic, {}).setdefault(difficulty, {})[variant] = {
            "interventions": total,
            "pass_pct": pct(flags["PASS"], total),
            "fail_pct": pct(flags["FAIL"], total),
        }
    return {"table": table}


def build_examples(coll: Collection, categories: list[str], *, limit: int, detailed: bool) -> dict[str, dict]:
    """category -> the document written to interesting_examples/<category>.json."""
    documents = {}
    for category in categories:
        if category in PASS_CATEGORIES:
            totals = {topic: n for (cat, topic), n in sorted(coll.examples.totals.items()) if cat == category}
            body = {
                "total": sum(totals.values()),
                "by_topic_total": totals,
                "shown_per_topic_at_most": coll.examples.per_topic_limit,
                "examples": coll.examples.examples.get(category, []),
            }
        elif category == "near_duplicate_tasks":
            body = near_duplicate_tasks(coll, limit=limit, detailed=detailed)
        elif category == "batches_lowest_pass_rate":
            body = batches_by_pass_rate(coll, limit=limit, highest=False)
        elif category == "batches_highest_pass_rate":
            body = batches_by_pass_rate(coll, limit=limit, highest=True)
        else:
            body = pass_rate_by_topic_x_difficulty(coll)
        documents[category] = {"category": category, "description": CATEGORIES[category], **body}
    return documents
