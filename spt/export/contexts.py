"""Samples a model cannot tell apart (docs/data_formats.md §6): the check every training export runs
after its mitigations and before it writes anything.

What the model reads before the split-personality token is the system prompt as shown, T and S
as shown: all of S in the standard layout; for an unseen-intent sample (layout unseen_intent)
nothing of S, or with unseen_intent_response_tokens N > 0 its first N tokens. The export has no
tokenizer, so it compares the first N characters of S there: a token of the supported tokenizers
holds at least one character (but for the byte pieces of one non-ASCII character), so samples
whose first N tokens agree also agree in their first N characters; the check may drop a group
that training would tell apart, never keep one it could not.

With elicitation_type `ur` the intervention I is an ordinary user message before the token
(docs/data_formats.md §6), so it is part of that context; with `hp` and `up` it comes after the
token and is not.

Samples of one task (review, off-policy detection: the intervention after the token asks a
different question) with the same visible context but different flags form a group; nothing the
model has read or computed before the token can tell them apart, so every sample of such a group
is dropped, wherever it lies (train, validation, heldout_topics). Reads and writes nothing.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from spt.shared_tools import UNSEEN_INTENT


def visible_context(sample: dict[str, Any], response_tokens: int, intervention_first: bool) -> tuple[str, ...]:
    """(task, system prompt shown, T, S shown, and I when it comes before the token) of an exported
    sample (the module docstring)."""
    shown = sample["S"] if sample["layout"] != UNSEEN_INTENT else sample["S"][:response_tokens]
    return sample["task"], sample["system_prompt"], sample["T"], shown, sample["I"] if intervention_first else ""


def drop_indistinguishable(
    splits: dict[str, list[dict]], response_tokens: int, elicitation_type: str = "hp"
) -> dict[str, Any]:
    """Drop (in place) every sample of every group with one visible context and different flags,
    across all `splits`; returns the counts: groups, samples dropped, samples dropped per split."""
    intervention_first = elicitation_type == "ur"
    flags: dict[tuple, set[str]] = defaultdict(set)
    for samples in splits.values():
        for sample in samples:
            flags[visible_context(sample, response_tokens, intervention_first)].add(sample["P"])
    conflicting = {context for context, seen in flags.items() if len(seen) > 1}
    dropped = {}
    for name, samples in splits.items():
        kept = [
            sample
            for sample in samples
            if visible_context(sample, response_tokens, intervention_first) not in conflicting
        ]
        dropped[name] = len(samples) - len(kept)
        samples[:] = kept
    return {"groups": len(conflicting), "samples_dropped": sum(dropped.values()), "samples_dropped_by_split": dropped}
