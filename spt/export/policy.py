"""Whose answer a sample shows, and so its policy label (docs/data_formats.md §6).

A sample is on-policy only when its S was written by the model being trained and it is shown
with exactly the system prompt S was generated under. The trained model's stage-2 id is the
config key `trained_model_data_id`, or, when that is empty, `base_model` itself; either is
compared with the sample's stage-2 model id case-insensitively (stage-2 ids are lower-case
provider style, `meta-llama/llama-3.3-70b-instruct`; a Hugging Face id is `meta-llama/Llama-3.3-70B-Instruct`).
`review_policy` labels a review sample, `review_policy_counts` counts the labels per variant for
the export report. Reads nothing; writes nothing.
"""

from __future__ import annotations

from typing import Any

from spt.shared_tools import REVIEW_TASK


def trained_model_data_id(config: dict[str, Any]) -> str:
    """The stage-2 model id whose answers the trained model wrote (lower-case)."""
    return (config["trained_model_data_id"] or config["base_model"]).strip().lower()


def is_own_answer(model_id: str, config: dict[str, Any]) -> bool:
    """True when the stage-2 answers of `model_id` were written by the model being trained."""
    return model_id.strip().lower() == trained_model_data_id(config)


def review_policy(sample: dict[str, Any], config: dict[str, Any]) -> str:
    """ "on" when a review sample shows the trained model's own answer with exactly the system prompt it
    was generated under (not removed, not swapped: system_prompt_source is its own variant), else "off"."""
    shown_as_generated = sample["system_prompt_source"] == sample["variant"]
    return "on" if shown_as_generated and is_own_answer(sample["model"], config) else "off"


OFF_REASONS = ("another model's answer", "prompt removed", "prompt swapped")


def review_policy_counts(samples: list[dict[str, Any]], config: dict[str, Any]) -> dict[str, dict[str, int]]:
    """The review samples' policy labels per variant (A, B): `on`, `off`, and each reason of OFF_REASONS
    (a sample can have two: another model's answer shown without its prompt)."""
    counts = {letter: {"on": 0, "off": 0, **{reason: 0 for reason in OFF_REASONS}} for letter in ("A", "B")}
    for sample in samples:
        if sample["task"] != REVIEW_TASK:
            continue
        row = counts[sample["variant"]]
        row[sample["policy"]] += 1
        reasons = (
            not is_own_answer(sample["S_source_model"], config),
            sample["system_prompt_source"] == "none",
            "->" in sample["system_prompt_source"],
        )
        for reason, applies in zip(OFF_REASONS, reasons):
            row[reason] += applies
    return counts
