"""The per-sample selection rule of docs/data_formats.md §6, in one place: the training export, the analysis
report and anyone else who asks "would this sample be trained on?" use these functions.
Reads and writes nothing.

A sample is one intervention of one variant (A or B) of one model's response to one item.
It is kept when its topic is a train or validation topic, its intervention key is one of
`intervention_types`, and neither the intervention's nor the variant's tags meet
`tags_to_filter`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def filter_hits(intervention_tags: Iterable[str], variant_tags: Iterable[str], config: Mapping[str, Any]) -> list[str]:
    """The tags of `tags_to_filter` that the sample carries (intervention ∪ variant), in
    the config's order; empty when no filter drops it."""
    carried = set(intervention_tags) | set(variant_tags)
    return [tag for tag in config["tags_to_filter"] if tag in carried]


def topic_selected(topic: str, config: Mapping[str, Any]) -> bool:
    """True when items of `topic` go to the train or the validation split."""
    return topic in config["train_topics"] or topic in config["validation_topics"]


def kept_by_filters(
    topic: str,
    intervention_key: str,
    intervention_tags: Iterable[str],
    variant_tags: Iterable[str],
    config: Mapping[str, Any],
) -> bool:
    """docs/data_formats.md §6: would this sample be part of the exported training data?"""
    return (
        topic_selected(topic, config)
        and intervention_key in config["intervention_types"]
        and not filter_hits(intervention_tags, variant_tags, config)
    )
