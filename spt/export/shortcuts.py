"""Shortcut mitigations of the training export (docs/data_formats.md §6): a seeded, exact share of the
samples gets its system prompt removed or swapped with the other variant's, so that the flag
cannot be read off the system prompt. A sample whose I or R cites its system prompt is never
changed (`cites_system_prompt`, or with config `eligibility_source` "llm" an LLM judge's verdict:
eligibility.verdicts.mark_citing sets `_needs_system_prompt` on every sample first): with
mitigation_mode "exempt" it keeps its prompt (so a visible prompt marks such samples, mostly FAIL:
a new shortcut), with "drop_citing" it leaves the split (written to cites_system_prompt.jsonl, not
trained on). An unseen-intent sample (layout unseen_intent) always keeps the prompt it was
generated under: S is hidden, so the prompt and T are all it shows, and without the prompt its A
and B samples would look the same with opposite flags. Every sample gets its policy label here
(export.policy). Reads and writes nothing.
"""

from __future__ import annotations

import random
import re
from typing import Any

from spt.export.policy import review_policy
from spt.shared_tools import UNSEEN_INTENT
from spt.utils import DataError

# Words of the system prompt quoted verbatim in I or R: this many in a row count as a citation.
QUOTE_WORDS = 6
_CITES_INSTRUCTIONS = re.compile(
    r"\bsystem\s+(?:prompt|message|instructions?)\b"
    r"|\bmy\s+(?:\w+\s+)?(?:instructions|guidelines|directives)\b"
    r"|\bI\s+(?:was|had\s+been|am|have\s+been)\s+(?:explicitly\s+)?(?:instructed|told|directed)\b"
    r"|\b(?:instructions|guidelines|directives|rules)\s+I\s+(?:was|had\s+been)\s+given\b"
    r"|\b(?:instructions|guidelines)\s+I\s+(?:received|was\s+operating\s+under)\b"
    r"|\bthe\s+(?:operator|deployment)\s+(?:instructions|guidelines)\b",
    re.IGNORECASE,
)
_WORD = re.compile(r"[a-z0-9']+")


def _word_ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    words = _WORD.findall(text.lower())
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def cites_system_prompt(intervention_text: str, review: str, system_prompts: list[str]) -> bool:
    """True when I or R refers to the system prompt: names it ("system prompt", "my
    instructions", "I was told/instructed", "the guidelines I was given", ...) or quotes
    QUOTE_WORDS or more words of one of the item's system prompts in a row. Such a sample
    would not make sense with its system prompt removed or swapped."""
    texts = (intervention_text, review)
    if any(_CITES_INSTRUCTIONS.search(text) for text in texts):
        return True
    quoted = set().union(*(_word_ngrams(prompt, QUOTE_WORDS) for prompt in system_prompts if prompt))
    return bool(quoted) and any(not quoted.isdisjoint(_word_ngrams(text, QUOTE_WORDS)) for text in texts)


def _split_citing(samples: list[dict], config: dict[str, Any]) -> tuple[list[dict], list[dict], list[int]]:
    """(samples kept, citing samples dropped, indices of the kept samples eligible for a mitigation).
    Unseen-intent samples are never eligible nor dropped: they keep their prompt. exempt: citing
    samples stay but keep their prompt; drop_citing (with a mitigation on): they leave the split, so
    a visible prompt no longer marks a citing (mostly FAIL) sample."""
    standard = [s["layout"] != UNSEEN_INTENT for s in samples]
    citing = [is_standard and s["_needs_system_prompt"] for s, is_standard in zip(samples, standard)]  # mark_citing
    mitigating = config["remove_system_prompt_fraction"] > 0 or config["swap_a_b_fraction"] > 0
    if config["mitigation_mode"] == "drop_citing" and mitigating:
        kept = [s for s, cites in zip(samples, citing) if not cites]
        return (
            kept,
            [s for s, cites in zip(samples, citing) if cites],
            [i for i, s in enumerate(kept) if s["layout"] != UNSEEN_INTENT],
        )
    return samples, [], [i for i, (cites, is_standard) in enumerate(zip(citing, standard)) if is_standard and not cites]


def apply_shortcut_mitigations(
    samples: list[dict], config: dict[str, Any], seed: int, split: str
) -> tuple[list[dict], list[dict], dict[str, int]]:
    """Swap and remove system prompts of exact, seeded quotas of eligible samples (in place);
    returns (the split's samples, citing samples dropped by mitigation_mode drop_citing, counts).

    Eligible: standard layout, and I and R do not cite the system prompt. Swappable: eligible and
    the item has a non-empty prompt for the other variant. Quotas: round(swap_a_b_fraction x
    swappable) and round(remove_system_prompt_fraction x eligible); removal draws from the eligible
    samples that were not swapped. Every sample then gets `policy` (export.policy.review_policy):
    "on" only for the trained model's own answer shown with the prompt it was written under.
    """
    samples, dropped, eligible = _split_citing(samples, config)
    swappable = [i for i in eligible if samples[i]["_other_prompt"]]
    swap_quota = round(config["swap_a_b_fraction"] * len(swappable))
    remove_quota = round(config["remove_system_prompt_fraction"] * len(eligible))
    swapped = random.Random(f"{seed}:swap:{split}").sample(swappable, swap_quota)
    remaining = sorted(set(eligible) - set(swapped))
    if remove_quota > len(remaining):
        raise DataError(
            f"{split}: remove_system_prompt_fraction and swap_a_b_fraction together need "
            f"{remove_quota + swap_quota} eligible samples, only {len(eligible)} exist"
        )
    removed = random.Random(f"{seed}:remove:{split}").sample(remaining, remove_quota)
    for index in swapped:
        sample = samples[index]
        other = "B" if sample["variant"] == "A" else "A"
        sample["system_prompt"] = sample["_other_prompt"]
        sample["system_prompt_source"] = f"{sample['variant']}->{other}"
    for index in removed:
        samples[index]["system_prompt"] = ""
        samples[index]["system_prompt_source"] = "none"
    for sample in samples + dropped:
        sample["policy"] = review_policy(sample, config)
    on = sum(sample["policy"] == "on" for sample in samples)
    counts = {
        "eligible": len(eligible),
        "swappable": len(swappable),
        "swapped": len(swapped),
        "removed": len(removed),
        "dropped_citing": len(dropped),
        "unseen_intent_kept_prompt": sum(sample["layout"] == UNSEEN_INTENT for sample in samples),
        "off_policy": len(samples) - on,
        "on_policy": on,
    }
    return samples, dropped, counts
