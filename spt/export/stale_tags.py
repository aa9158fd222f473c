"""Filter tags the tagged data may lack. This project's tagger adds tags the published tagger did
not write (docs/data_formats.md §5.2.4); data tagged by the published or an older tagger lacks
them, and a filter on such a tag would silently keep what it should drop. The tags computed from
a sample's own I and R alone are recomputed here on the kept samples with the tagger's rule
(tagging.tags.new_intervention_tags): a kept sample that should carry a filtered tag means the
data was tagged without it. Reads and writes nothing.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from spt.tagging.tags import (
    MENTIONS_BIASED_PROMPT,
    REVIEW_IN_THIRD_PERSON,
    SPLIT_PERSONALITY_MISSING_TOKEN,
    new_intervention_tags,
)

RECOMPUTABLE_TAGS = (REVIEW_IN_THIRD_PERSON, SPLIT_PERSONALITY_MISSING_TOKEN, MENTIONS_BIASED_PROMPT)


def untagged_filter_warnings(samples: list[dict], config: dict[str, Any]) -> list[str]:
    """One warning per filtered, recomputable tag that kept samples should carry but do not."""
    filtered = [tag for tag in config["tags_to_filter"] if tag in RECOMPUTABLE_TAGS]
    if not filtered:
        return []
    missed: Counter = Counter()
    for sample in samples:
        tags = new_intervention_tags(
            {"intervention_type": sample["intervention_type"]}, sample["intervention_key"], sample["I"], sample["R"]
        )
        missed.update(tag for tag in tags if tag in filtered)
    return [
        f"WARNING: {missed[tag]} of {len(samples)} kept samples should carry the filtered tag {tag} but do not: "
        "the data was tagged without it (by the published or an older tagger), so tags_to_filter cannot drop "
        "them; run python scripts/tag_stage_3_data.py on the data and export again"
        for tag in filtered
        if missed[tag]
    ]
