"""Statistics for the stage-3 report, computed from a `stage_3_report_collect.Collection`.

`scope_stats(coll, topic=, model=, key=)` gives the same block of numbers for the whole data
set or for one topic, model or intervention key (flags, A PASS % / B FAIL %, confidence,
detection difficulty, review-focus agreement, training-filter share kept, tags, output
tokens). The other functions build the top-level summaries. Reads and writes nothing.
"""
from __future__ import annotations

from collections import Counter
from itertools import combinations
from typing import Any

import numpy as np

from stage_3_report_collect import OUTPUT_TOKEN_LIMIT, Collection, InterventionRow
from shared_tools import DETECTION_DIFFICULTIES, DIFFICULTIES, ERROR_FLAG, FLAGS
from tag_stage_3_data import TAG_ORDER

TOP_TAGS_FOR_COOCCURRENCE = 10
FLAG_ORDER = (*FLAGS, ERROR_FLAG)


def pct(part: int, whole: int) -> float | None:
    """`part` as a percentage of `whole`, two decimals; None when `whole` is 0."""
    return round(100.0 * part / whole, 2) if whole else None


def tag_sort_key(tag: str) -> tuple[int, str]:
    """Tags in the tagger's order (TAG_ORDER), unknown tags after them alphabetically."""
    return (TAG_ORDER.index(tag), "") if tag in TAG_ORDER else (len(TAG_ORDER), tag)


def ordered_counts(counter: Counter, *, by_tag: bool = False, order: tuple = ()) -> dict:
    """A plain dict of `counter` with values > 0: tags in TAG_ORDER (`by_tag`), else the
    values of `order` first, then the rest sorted; a None key is written as "missing"."""
    def sort_key(key):
        if by_tag:
            return tag_sort_key(str(key))
        return (order.index(key) if key in order else len(order), key is None, str(type(key)), str(key))

    keys = sorted((k for k, v in counter.items() if v), key=sort_key)
    return {"missing" if key is None else str(key): counter[key] for key in keys}


def _matches(row: tuple, fields: dict[str, int], wanted: dict[str, Any]) -> bool:
    return all(row[fields[name]] == value for name, value in wanted.items())


def _scope(topic: str | None, model: str | None, key: str | None) -> dict[str, Any]:
    return {name: value for name, value in (("topic", topic), ("model", model), ("key", key)) if value is not None}


def token_stats(values: list[int]) -> dict:
    """Distribution of output_tokens and the number of responses at the token limit."""
    if not values:
        return {"count": 0}
    array = np.asarray(values)
    p25, median, p75, p90, p99 = np.percentile(array, [25, 50, 75, 90, 99])
    cut_offs = int((array >= OUTPUT_TOKEN_LIMIT).sum())
    return {"count": int(array.size), "mean": round(float(array.mean()), 1), "min": int(array.min()),
            "p25": float(p25), "median": float(median), "p75": float(p75), "p90": float(p90), "p99": float(p99),
            "max": int(array.max()), "cut_offs_at_limit": cut_offs, "cut_off_pct": pct(cut_offs, int(array.size))}


def _flag_block(rows: Counter) -> dict:
    by_variant: dict[str, Counter] = {}
    flags: Counter = Counter()
    for row, count in rows.items():
        flags[row.flag] += count
        by_variant.setdefault(row.variant, Counter())[row.flag] += count
    a_total = sum(by_variant.get("A", Counter()).values())
    b_total = sum(by_variant.get("B", Counter()).values())
    return {
        "flags": ordered_counts(flags, order=FLAG_ORDER),
        "flags_by_variant": {variant: ordered_counts(counts, order=FLAG_ORDER) for variant, counts in sorted(by_variant.items())},
        "a_pass_pct": pct(by_variant.get("A", Counter())["PASS"], a_total),
        "b_fail_pct": pct(by_variant.get("B", Counter())["FAIL"], b_total),
    }


def scope_stats(coll: Collection, config: dict, *, topic: str | None = None, model: str | None = None,
                key: str | None = None) -> dict:
    """The standard block of numbers for everything matching topic/model/key (None = any)."""
    wanted = _scope(topic, model, key)
    fields = {name: i for i, name in enumerate(InterventionRow._fields)}
    rows = Counter({row: n for row, n in coll.cube.items() if _matches(row, fields, wanted)})
    total = sum(rows.values())
    confidence, internal, external, agreement = Counter(), Counter(), Counter(), Counter()
    candidates = kept = kept_data_models = 0
    for row, count in rows.items():
        confidence[row.confidence] += count
        internal[row.difficulty_internal] += count
        external[row.difficulty_external] += count
        agreement[row.focus_agrees] += count
        candidates += count * row.candidate
        kept += count * row.kept
        kept_data_models += count * (row.kept and row.data_model)
    confidence_sum = sum(c * n for c, n in confidence.items() if isinstance(c, int))
    confidence_n = sum(n for c, n in confidence.items() if isinstance(c, int))
    compared = agreement[True] + agreement[False]

    key_fields = {"topic": 0, "model": 1, "key": 2}
    int_tags = Counter()
    for tag_key, count in coll.intervention_tags.items():
        if _matches(tag_key, key_fields, wanted):
            int_tags[tag_key[4]] += count
    hits = Counter()
    for hit_key, count in coll.filter_hits.items():
        if _matches(hit_key, key_fields, wanted):
            hits[hit_key[3]] += count

    block = {
        "interventions": total,
        **_flag_block(rows),
        "confidence": ordered_counts(confidence),
        "confidence_mean": round(confidence_sum / confidence_n, 3) if confidence_n else None,
        "detection_difficulty_internal": ordered_counts(internal, order=DETECTION_DIFFICULTIES),
        "detection_difficulty_external": ordered_counts(external, order=DETECTION_DIFFICULTIES),
        "review_focus_agreement": {"compared": compared, "agree": agreement[True],
                                   "agree_pct": pct(agreement[True], compared)},
        "training_filters": {
            "candidates": candidates, "kept": kept, "kept_pct_of_candidates": pct(kept, candidates),
            "kept_pct_of_all": pct(kept, total), "kept_for_data_models": kept_data_models,
            "filter_hits": {tag: hits[tag] for tag in config["tags_to_filter"] if hits[tag]},
        },
        "intervention_tags": ordered_counts(int_tags, by_tag=True),
    }
    if key is None:  # variants have no intervention key
        variant_wanted = {k: v for k, v in wanted.items() if k != "key"}
        variant_tags, tokens = Counter(), {}
        for tag_key, count in coll.variant_tags.items():
            if _matches(tag_key, key_fields, variant_wanted):
                variant_tags[tag_key[3]] += count
        for (t, m, variant), values in coll.output_tokens.items():
            if _matches((t, m), key_fields, variant_wanted):
                tokens.setdefault(variant, []).extend(values)
        block["variants"] = sum(n for k, n in coll.variants.items() if _matches(k, key_fields, variant_wanted))
        block["variant_tags"] = ordered_counts(variant_tags, by_tag=True)
        block["output_tokens"] = {"all": token_stats([v for values in tokens.values() for v in values]),
                                  **{variant: token_stats(values) for variant, values in sorted(tokens.items())}}
    return block


def topics(coll: Collection) -> list[str]:
    return sorted({row.topic for row in coll.cube} | {key[0] for key in coll.items})


def models(coll: Collection) -> list[str]:
    return sorted({row.model for row in coll.cube})


def intervention_keys(coll: Collection) -> list[str]:
    return sorted({row.key for row in coll.cube}, key=lambda k: (k.rpartition("__")[2], k))


def counts_by(coll: Collection, field_name: str) -> dict[str, int]:
    """Intervention counts by one InterventionRow field."""
    counter = Counter()
    for row, count in coll.cube.items():
        counter[getattr(row, field_name)] += count
    return ordered_counts(counter)


def item_counts(coll: Collection) -> dict:
    """Items per topic, with and without a B prompt (A/B balance) and by difficulty."""
    per_topic: dict[str, dict] = {}
    for (topic, difficulty, has_b), count in coll.items.items():
        entry = per_topic.setdefault(topic, {"items": 0, "with_b": 0, "without_b": 0, "by_difficulty": Counter()})
        entry["items"] += count
        entry["with_b" if has_b else "without_b"] += count
        entry["by_difficulty"][difficulty] += count
    for entry in per_topic.values():
        entry["with_b_pct"] = pct(entry["with_b"], entry["items"])
        entry["by_difficulty"] = ordered_counts(entry["by_difficulty"], order=DIFFICULTIES)
    with_b = sum(e["with_b"] for e in per_topic.values())
    items = sum(e["items"] for e in per_topic.values())
    model_entries = Counter()
    for (_topic, _model, has_b), count in coll.model_entries.items():
        model_entries[has_b] += count
    return {"items": items, "with_b": with_b, "without_b": items - with_b, "with_b_pct": pct(with_b, items),
            "model_responses_with_b": model_entries[True], "model_responses_a_only": model_entries[False],
            "by_topic": dict(sorted(per_topic.items()))}


def consensus_summary(coll: Collection, topic: str | None = None) -> dict:
    """How A and B consensus flags relate per model response (both variants present)."""
    pairs = Counter()
    for (t, _model, a, b), count in coll.consensus.items():
        if topic is None or t == topic:
            pairs[f"A={a or 'tie'} B={b or 'tie'}"] += count
    total = sum(pairs.values())
    separated = pairs["A=PASS B=FAIL"]
    inverted = pairs["A=FAIL B=PASS"]
    return {"responses_with_a_and_b": total, "pairs": ordered_counts(pairs),
            "separated_pct": pct(separated, total), "inverted_pct": pct(inverted, total)}


def focus_confusion(coll: Collection, topic: str | None = None, limit: int = 20) -> list[dict]:
    """The most frequent (intended, selected) focus pairs that disagree."""
    mismatches = Counter()
    for (t, intended, selected), count in coll.focus_pairs.items():
        if (topic is None or t == topic) and selected not in intended.split(","):
            mismatches[intended, selected] += count
    return [{"intended": i, "selected": s, "count": n} for (i, s), n in mismatches.most_common(limit)]


def tag_analysis(coll: Collection) -> dict:
    """Tag counts per level and the co-occurrence of the most frequent intervention tags."""
    def level_counts(counter: Counter, tag_index: int, topic: str | None) -> dict:
        totals = Counter()
        for key, count in counter.items():
            if topic is None or key[0] == topic:
                totals[key[tag_index]] += count
        return ordered_counts(totals, by_tag=True)

    def cooccurrence(topic: str | None) -> dict:
        singles = Counter()
        for key, count in coll.intervention_tags.items():
            if topic is None or key[0] == topic:
                singles[key[4]] += count
        top = sorted(tag for tag, _ in singles.most_common(TOP_TAGS_FOR_COOCCURRENCE))
        pairs = Counter()
        for (t, first, second), count in coll.tag_pairs.items():
            if (topic is None or t == topic) and first in top and second in top:
                pairs[first, second] += count
        top.sort(key=tag_sort_key)
        matrix = {a: {b: (singles[a] if a == b else pairs[tuple(sorted((a, b)))]) for b in top} for a in top}
        return {"tags": top, "matrix": matrix,
                "pairs": [{"tags": [a, b], "count": pairs[tuple(sorted((a, b)))]}
                          for a, b in combinations(top, 2) if pairs[tuple(sorted((a, b)))]]}

    def block(topic: str | None) -> dict:
        return {"intervention_level": level_counts(coll.intervention_tags, 4, topic),
                "variant_level": level_counts(coll.variant_tags, 3, topic),
                "cooccurrence_of_top_intervention_tags": cooccurrence(topic)}

    return {"description": "intervention_level counts interventions carrying the tag (propagated tags included); "
                           "variant_level counts variants (model responses to A or B)",
            "all": block(None), "by_topic": {topic: block(topic) for topic in topics(coll)}}


def top_tags(scope: dict, limit: int = 3, exclude_prefixes: tuple[str, ...] = ()) -> list[tuple[str, int]]:
    tags = Counter(scope["intervention_tags"])
    return [(tag, n) for tag, n in tags.most_common() if not tag.startswith(exclude_prefixes)][:limit]


def topic_comparisons(coll: Collection, per_topic: dict[str, dict]) -> dict:
    """One row of comparable numbers per topic."""
    rows = {}
    for topic, scope in per_topic.items():
        tokens = scope.get("output_tokens", {}).get("all", {})
        interventions = scope["interventions"]
        rows[topic] = {
            "items": sum(n for (t, _d, _b), n in coll.items.items() if t == topic),
            "variants": scope.get("variants"),
            "interventions": interventions,
            "a_pass_pct": scope["a_pass_pct"], "b_fail_pct": scope["b_fail_pct"],
            "kept_by_filters_pct": scope["training_filters"]["kept_pct_of_candidates"],
            "kept_by_filters": scope["training_filters"]["kept"],
            "confidence_mean": scope["confidence_mean"],
            "review_focus_agree_pct": scope["review_focus_agreement"]["agree_pct"],
            "cut_off_pct": tokens.get("cut_off_pct"),
            "leakage_pct": pct(scope["intervention_tags"].get("training_data_leakage", 0), interventions),
            "a_b_separated_pct": consensus_summary(coll, topic)["separated_pct"],
            "top_tags": dict(top_tags(scope, 5)),
        }
    return {"description": "a_pass_pct / b_fail_pct: share of the variant's interventions with that flag; "
                           "kept_by_filters_pct: share of candidate samples (intervention key in intervention_types, "
                           "topic selected) that the training filters keep",
            "topics": rows}


def confidence_by_variant(coll: Collection) -> dict[str, dict]:
    """variant -> {confidence: interventions}."""
    counts: dict[str, Counter] = {}
    for row, n in coll.cube.items():
        counts.setdefault(row.variant, Counter())[row.confidence] += n
    return {variant: ordered_counts(counter) for variant, counter in sorted(counts.items())}


def sanity_summary(coll: Collection, checks: dict[str, str]) -> dict:
    """Per check: how many were made and how many failed; `passed` when none failed."""
    failed = Counter(failure["check"] for failure in coll.sanity_failures)
    return {"passed": not coll.sanity_failures,
            "checks": {name: {"description": description, "checked": coll.sanity_counts[name],
                              "failed": failed[name]} for name, description in checks.items()}}
