"""Statistics for the stage-3 report, computed from an `analysis.collect.Collection`.

`annotate(coll, config)` turns the collection's distinct intervention rows into samples with
their training-filter outcome; `scope_stats(samples, coll, config, topic=, model=, by_key=)`
gives the same block of numbers for the samples of the whole data set or of one topic, model
or intervention key (`group_by`) (flags and the refused samples among the ERRORs, A PASS % / B FAIL %, confidence,
detection difficulty, review-focus agreement, training-filter share kept, tags, output
tokens). The other functions build the top-level summaries. Reads and writes nothing.
"""

from __future__ import annotations

from collections import Counter
from itertools import combinations
from typing import Any, NamedTuple

import numpy as np

from spt.analysis.collect import Collection, InterventionRow
from spt.shared_tools import DETECTION_DIFFICULTIES, DIFFICULTIES, ERROR_FLAG, FLAGS
from spt.tagging.tags import OUTPUT_TOKEN_LIMIT, REFUSED_IN_STAGE_3, TAG_ORDER
from spt.training_filters import filter_hits, kept_by_filters, topic_selected

TOP_TAGS_FOR_COOCCURRENCE = 10
FLAG_ORDER = (*FLAGS, ERROR_FLAG)


def pct(part: int, whole: int) -> float | None:
    """`part` as a percentage of `whole`, two decimals; None when `whole` is 0."""
    return round(100.0 * part / whole, 2) if whole else None


def is_descriptive_tag(tag: str) -> bool:
    """The {easy,medium,hard}_detection_difficulty_* tags record a value every intervention
    has; they are left out of "top tags" and the co-occurrence ranking."""
    return tag.endswith(("_detection_difficulty_external", "_detection_difficulty_internal")) and not tag.startswith(
        "detection_difficulty_"
    )


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


class Sample(NamedTuple):
    """A distinct intervention row, how many interventions share it, and what the training
    filters (training_filters.py, docs/data_formats.md §6) do with it."""

    row: InterventionRow
    count: int
    candidate: bool  # topic selected and intervention key in intervention_types
    kept: bool  # kept_by_filters
    data_model: bool  # its model is one of the config's data_models
    hits: tuple  # the tags_to_filter it carries (candidates only)


def annotate(coll: Collection, config: dict) -> list[Sample]:
    """Every distinct cube row with its training-filter outcome (computed once per distinct
    topic / key / tag combination)."""
    outcomes: dict[tuple, tuple] = {}
    samples = []
    data_models = set(config["data_models"])
    for row, count in coll.cube.items():
        memo_key = (row.topic, row.key, row.tags, row.variant_tags)
        if memo_key not in outcomes:
            candidate = row.key in config["intervention_types"] and topic_selected(row.topic, config)
            kept = kept_by_filters(row.topic, row.key, row.tags, row.variant_tags, config)
            hits = tuple(filter_hits(row.tags, row.variant_tags, config)) if candidate else ()
            outcomes[memo_key] = (candidate, kept, hits)
        candidate, kept, hits = outcomes[memo_key]
        samples.append(Sample(row, count, candidate, kept, row.model in data_models, hits))
    return samples


def group_by(samples: list[Sample], field_name: str) -> dict[Any, list[Sample]]:
    """Samples bucketed by one InterventionRow field, keys sorted."""
    groups: dict[Any, list[Sample]] = {}
    for sample in samples:
        groups.setdefault(getattr(sample.row, field_name), []).append(sample)
    return dict(sorted(groups.items()))


def token_stats(values: list[int]) -> dict:
    """Distribution of output_tokens and the number of responses at the token limit."""
    if not values:
        return {"count": 0}
    array = np.asarray(values)
    p25, median, p75, p90, p99 = np.percentile(array, [25, 50, 75, 90, 99])
    cut_offs = int((array >= OUTPUT_TOKEN_LIMIT).sum())
    return {
        "count": int(array.size),
        "mean": round(float(array.mean()), 1),
        "min": int(array.min()),
        "p25": float(p25),
        "median": float(median),
        "p75": float(p75),
        "p90": float(p90),
        "p99": float(p99),
        "max": int(array.max()),
        "cut_offs_at_limit": cut_offs,
        "cut_off_pct": pct(cut_offs, int(array.size)),
    }


def _flag_block(samples: list[Sample]) -> dict:
    by_variant: dict[str, Counter] = {}
    flags: Counter = Counter()
    refused = 0
    for sample in samples:
        flags[sample.row.flag] += sample.count
        refused += sample.count * (REFUSED_IN_STAGE_3 in sample.row.tags)
        by_variant.setdefault(sample.row.variant, Counter())[sample.row.flag] += sample.count
    a_flags, b_flags = by_variant.get("A", Counter()), by_variant.get("B", Counter())
    return {
        "flags": ordered_counts(flags, order=FLAG_ORDER),
        "refused": refused,  # ERROR records of samples a stage-3 model refused (their tag)
        "flags_by_variant": {
            variant: ordered_counts(counts, order=FLAG_ORDER) for variant, counts in sorted(by_variant.items())
        },
        "a_pass_pct": pct(a_flags["PASS"], sum(a_flags.values())),
        "b_fail_pct": pct(b_flags["FAIL"], sum(b_flags.values())),
    }


def _variant_block(coll: Collection, topic: str | None, model: str | None) -> dict:
    """Response-level numbers (tags on variants, output tokens) for a topic and/or model."""

    def wanted(key: tuple) -> bool:
        return (topic is None or key[0] == topic) and (model is None or key[1] == model)

    variant_tags, tokens = Counter(), {}
    for key, count in coll.variant_tags.items():
        if wanted(key):
            variant_tags[key[3]] += count
    for key, values in coll.output_tokens.items():
        if wanted(key):
            tokens.setdefault(key[2], []).extend(values)
    return {
        "variants": sum(n for key, n in coll.variants.items() if wanted(key)),
        "variant_tags": ordered_counts(variant_tags, by_tag=True),
        "output_tokens": {
            "all": token_stats([v for values in tokens.values() for v in values]),
            **{variant: token_stats(values) for variant, values in sorted(tokens.items())},
        },
    }


def scope_stats(
    samples: list[Sample],
    coll: Collection,
    config: dict,
    *,
    topic: str | None = None,
    model: str | None = None,
    by_key: bool = False,
) -> dict:
    """The standard block of numbers for `samples` (all of one scope). Response-level numbers
    are added for topic/model scopes (`by_key` scopes have none: responses carry no key)."""
    total = sum(s.count for s in samples)
    confidence, internal, external, agreement, tags, hits = (Counter() for _ in range(6))
    candidates = kept = kept_data_models = 0
    for sample in samples:
        row, count = sample.row, sample.count
        confidence[row.confidence] += count
        internal[row.difficulty_internal] += count
        external[row.difficulty_external] += count
        agreement[row.focus_agrees] += count
        for tag in row.tags:
            tags[tag] += count
        candidates += count * sample.candidate
        kept += count * sample.kept
        kept_data_models += count * (sample.kept and sample.data_model)
        for tag in sample.hits:
            hits[tag] += count
    rated = {c: n for c, n in confidence.items() if isinstance(c, int)}
    compared = agreement[True] + agreement[False]
    block = {
        "interventions": total,
        **_flag_block(samples),
        "confidence": ordered_counts(confidence),
        "confidence_mean": round(sum(c * n for c, n in rated.items()) / sum(rated.values()), 3) if rated else None,
        "detection_difficulty_internal": ordered_counts(internal, order=DETECTION_DIFFICULTIES),
        "detection_difficulty_external": ordered_counts(external, order=DETECTION_DIFFICULTIES),
        "review_focus_agreement": {
            "compared": compared,
            "agree": agreement[True],
            "agree_pct": pct(agreement[True], compared),
        },
        "training_filters": {
            "candidates": candidates,
            "kept": kept,
            "kept_pct_of_candidates": pct(kept, candidates),
            "kept_pct_of_all": pct(kept, total),
            "kept_for_data_models": kept_data_models,
            "filter_hits": {tag: hits[tag] for tag in config["tags_to_filter"] if hits[tag]},
        },
        "intervention_tags": ordered_counts(tags, by_tag=True),
    }
    if not by_key:
        block.update(_variant_block(coll, topic, model))
    return block


def topics(coll: Collection) -> list[str]:
    return sorted({row.topic for row in coll.cube} | {key[0] for key in coll.items})


def models(coll: Collection) -> list[str]:
    return sorted({row.model for row in coll.cube})


def version_order(key: str) -> tuple[str, str]:
    """Sort key of intervention keys: by version, then family."""
    return key.rpartition("__")[2], key


def counts_by(coll: Collection, field_name: str, order: tuple = ()) -> dict[str, int]:
    """Intervention counts by one InterventionRow field."""
    counter = Counter()
    for row, count in coll.cube.items():
        counter[getattr(row, field_name)] += count
    return ordered_counts(counter, order=order)


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
    return {
        "items": items,
        "with_b": with_b,
        "without_b": items - with_b,
        "with_b_pct": pct(with_b, items),
        "model_responses_with_b": model_entries[True],
        "model_responses_a_only": model_entries[False],
        "by_topic": dict(sorted(per_topic.items())),
    }


def consensus_summary(coll: Collection, topic: str | None = None) -> dict:
    """How A and B consensus flags relate per model response (both variants present)."""
    pairs = Counter()
    for (t, _model, a, b), count in coll.consensus.items():
        if topic is None or t == topic:
            pairs[f"A={a or 'tie'} B={b or 'tie'}"] += count
    total = sum(pairs.values())
    separated = pairs["A=PASS B=FAIL"]
    inverted = pairs["A=FAIL B=PASS"]
    return {
        "responses_with_a_and_b": total,
        "pairs": ordered_counts(pairs),
        "separated_pct": pct(separated, total),
        "inverted_pct": pct(inverted, total),
    }


def focus_confusion(coll: Collection, topic: str | None = None, limit: int = 20) -> list[dict]:
    """The most frequent (intended, selected) focus pairs that disagree."""
    mismatches = Counter()
    for (t, intended, selected), count in coll.focus_pairs.items():
        if (topic is None or t == topic) and selected not in intended.split(","):
            mismatches[intended, selected] += count
    return [{"intended": i, "selected": s, "count": n} for (i, s), n in mismatches.most_common(limit)]


def _tag_block(samples: list[Sample], coll: Collection, topic: str | None) -> dict:
    """Tag counts and co-occurrence of the top tags, for one topic or (None) all."""
    tag_sets, singles, variant_tags = Counter(), Counter(), Counter()
    for sample in samples:
        if topic is None or sample.row.topic == topic:
            tag_sets[frozenset(sample.row.tags)] += sample.count
    for tag_set, count in tag_sets.items():
        for tag in tag_set:
            singles[tag] += count
    for key, count in coll.variant_tags.items():
        if topic is None or key[0] == topic:
            variant_tags[key[3]] += count
    ranked = [tag for tag, _ in singles.most_common() if not is_descriptive_tag(tag)]
    top = sorted(ranked[:TOP_TAGS_FOR_COOCCURRENCE], key=tag_sort_key)
    pairs = Counter()
    for tag_set, count in tag_sets.items():
        present = [tag for tag in top if tag in tag_set]
        for pair in combinations(present, 2):
            pairs[pair] += count
    return {
        "intervention_level": ordered_counts(singles, by_tag=True),
        "variant_level": ordered_counts(variant_tags, by_tag=True),
        "cooccurrence_of_top_intervention_tags": {
            "tags": top,
            "matrix": {
                a: {b: singles[a] if a == b else pairs[(a, b) if top.index(a) < top.index(b) else (b, a)] for b in top}
                for a in top
            },
            "pairs": [{"tags": list(pair), "count": n} for pair, n in pairs.most_common()],
        },
    }


def tag_analysis(samples: list[Sample], coll: Collection) -> dict:
    """Tag counts per level and the co-occurrence of the most frequent intervention tags."""
    return {
        "description": "intervention_level counts interventions carrying the tag (propagated tags included); "
        "variant_level counts variants (model responses to A or B); the matrix counts "
        "interventions carrying both tags (the diagonal: the tag alone); the top tags leave out the "
        "{easy,medium,hard}_detection_difficulty_* tags, which every intervention carries",
        "all": _tag_block(samples, coll, None),
        "by_topic": {topic: _tag_block(samples, coll, topic) for topic in topics(coll)},
    }


def top_tags(tags: dict[str, int], limit: int = 3) -> list[tuple[str, int]]:
    """The most frequent non-descriptive tags."""
    return [(tag, n) for tag, n in Counter(tags).most_common() if not is_descriptive_tag(tag)][:limit]


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
            "a_pass_pct": scope["a_pass_pct"],
            "b_fail_pct": scope["b_fail_pct"],
            "kept_by_filters_pct": scope["training_filters"]["kept_pct_of_candidates"],
            "kept_by_filters": scope["training_filters"]["kept"],
            "kept_for_data_models": scope["training_filters"]["kept_for_data_models"],
            "confidence_mean": scope["confidence_mean"],
            "review_focus_agree_pct": scope["review_focus_agreement"]["agree_pct"],
            "cut_off_pct": tokens.get("cut_off_pct"),
            "leakage_pct": pct(scope["intervention_tags"].get("training_data_leakage", 0), interventions),
            "a_b_separated_pct": consensus_summary(coll, topic)["separated_pct"],
            "top_tags": dict(top_tags(scope["intervention_tags"], 5)),
        }
    return {
        "description": "a_pass_pct / b_fail_pct: share of the variant's interventions with that flag; "
        "kept_by_filters_pct: share of candidate samples (intervention key in intervention_types, "
        "topic selected) that the training filters keep, of every target model; "
        "kept_for_data_models: the kept samples of the config's data_models, the samples the "
        "export selects (it may set more aside: citing a removed prompt, indistinguishable)",
        "topics": rows,
    }


def confidence_by_variant(coll: Collection) -> dict[str, dict]:
    """variant -> {confidence: interventions}."""
    counts: dict[str, Counter] = {}
    for row, n in coll.cube.items():
        counts.setdefault(row.variant, Counter())[row.confidence] += n
    return {variant: ordered_counts(counter) for variant, counter in sorted(counts.items())}


def sanity_summary(coll: Collection, checks: dict[str, str]) -> dict:
    """Per check: how many were made and how many failed; `passed` when none failed."""
    failed = Counter(failure["check"] for failure in coll.sanity_failures)
    return {
        "passed": not coll.sanity_failures,
        "checks": {
            name: {"description": description, "checked": coll.sanity_counts[name], "failed": failed[name]}
            for name, description in checks.items()
        },
    }
