"""Who wrote the exported samples and with which prompts (export_stats.json `provenance`, the dataset
card's "Models" and "Prompt hashes"): counted over the exported review samples of every split.

Stage 1 (A, B, T) is named by its file: `model_used` and `provenance.prompt_sha256` of the tagged file
(stages 2 and 3 keep the stage-1 keys, docs/data_formats.md §4.1); the target model (S) is the sample's
`model`; stage 3 (I, R, P) by its intervention: `model_used`, `review_model_used` and `prompt_sha256`
(§4.3), which Selection keeps on each sample as `_generation`. Data that does not record one (the
published files carry no prompt hashes) is counted as NOT_RECORDED. Off-policy detection samples take
I and R from prompts/off_policy_detection.md, listed under `export` when the export adds them. Reads
the prompt file only; writes nothing.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from spt.prompt_templates import prompt_sha256
from spt.shared_tools import REVIEW_TASK

NOT_RECORDED = "not recorded"


def intervention_generation(intervention: dict) -> dict[str, Any]:
    """What an intervention records of its making (kept on the sample as `_generation`)."""
    return {
        "stage_3_generator": intervention.get("model_used"),
        "stage_3_reviewer": intervention.get("review_model_used"),
        "stage_3": intervention.get("prompt_sha256"),
    }


def file_generation(document: Any) -> dict[str, Any]:
    """What a tagged file records of its stage-1 making."""
    if not isinstance(document, dict):
        return {"stage_1_generator": None, "stage_1": None}
    provenance = document.get("provenance")
    return {
        "stage_1_generator": document.get("model_used"),
        "stage_1": provenance.get("prompt_sha256") if isinstance(provenance, dict) else None,
    }


def _name(value: Any) -> str:
    return value if isinstance(value, str) and value else NOT_RECORDED


def generation_provenance(
    samples: list[dict], files: dict[str, dict[str, Any]], detection_prompt: str
) -> dict[str, Any]:
    """Per model role (model -> review samples) and per prompt file (file -> SHA-256 -> samples) over
    `samples`; `files`: source file -> file_generation; `detection_prompt`: the prompt file of the
    detection samples, listed under `export` when there are any."""
    reviews = [sample for sample in samples if sample["task"] == REVIEW_TASK]
    models = {role: Counter() for role in ("stage_1_generator", "target", "stage_3_generator", "stage_3_reviewer")}
    hashes: dict[str, dict[str, Counter]] = {"stage_1": {}, "stage_3": {}}
    for sample in reviews:
        made = {
            **files.get(sample["source_file"], file_generation(None)),
            **sample["_generation"],
            "target": sample["model"],
        }
        for role, counts in models.items():
            counts[_name(made[role])] += 1
        for stage, table in hashes.items():
            recorded = made[stage] if isinstance(made[stage], dict) and made[stage] else {NOT_RECORDED: None}
            for prompt, sha in recorded.items():
                table.setdefault(prompt, Counter())[_name(sha)] += 1
    prompt_hashes = {
        stage: {prompt: dict(sorted(counts.items())) for prompt, counts in sorted(table.items())}
        for stage, table in hashes.items()
    }
    detection = len(samples) - len(reviews)
    if detection:
        prompt_hashes["export"] = {prompt: {sha: detection} for prompt, sha in prompt_sha256(detection_prompt).items()}
    return {
        "review_samples": len(reviews),
        "models": {role: dict(sorted(counts.items())) for role, counts in models.items()},
        "prompt_sha256": prompt_hashes,
    }
