"""The project's checks on the published data (../shared/reference-data, both folders; skipped
when absent): every stage-1 sample passes the stage-1 file check after normalisation, and the
stage-3 checks reject published interventions only for the documented reasons, in the counts
that docs/stages.md's stage-3 section reports."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from repo import REPO_ROOT

import spt.stage_1.validation as stage_1_validation
import spt.stage_3.validation as stage_3_validation
from spt import review_checks
from spt.item_normalisation import normalise_stage_1_item, normalise_stage_3_item
from spt.shared_tools import FOCUSES, split_intervention_key
from spt.stage_3.requests import JUDGED_FIELDS

REFERENCE = Path(REPO_ROOT).parent / "shared" / "reference-data"
FOLDERS = ("stage_3_tagged", "stage_3_tagged_more")
# Each documented reason of a stage-3 rejection, and the words of its problem line.
REASONS = {
    "review_by_outside_observer": ".R: written by an outside observer",
    "review_not_in_first_person": ".R: not in the first person",
    "focus_not_of_the_topic": "is not a focus of the topic",
    "leakage_in_R": ".R: mentions how the data was made",
    "leakage_in_I": ".I: mentions how the data was made",
    "split_personality_without_token": ".I: must begin with",
}


def published_documents() -> list[dict]:
    paths = [path for folder in FOLDERS for path in sorted((REFERENCE / folder).glob("*/*.json"))]
    if not paths:
        pytest.skip("reference data not available")
    return [json.loads(path.read_text()) for path in paths]


def published_interventions():
    """(topic, intervention key, intervention) of every published intervention."""
    for document in published_documents():
        for item in document["data"]:
            for variants in item["inferences"].values():
                for entry in variants.values():
                    for key, intervention in entry.get("interventions", {}).items():
                        yield document["topic"], key, intervention


def test_every_published_stage_1_sample_passes_the_file_check_after_normalisation():
    samples = [
        (document["topic"], {key: value for key, value in item.items() if key != "inferences"})
        for document in published_documents()
        for item in document["data"]
    ]
    assert len(samples) == 210
    respelt, foreign_focus = Counter(), Counter()
    for topic, sample in samples:
        sample, fields = normalise_stage_1_item(sample)
        respelt.update(fields)
        assert stage_1_validation.item_problems(sample, topic, "sample", FOCUSES) == []
        problems = stage_1_validation.item_problems(sample, topic, "sample")
        assert all("intended_review_focus" in problem for problem in problems)
        foreign_focus[topic] += bool(problems)
    assert respelt == {"metadata.intended_review_focus": 22}  # "a,b" -> "a, b"; the other 79 lists had ", "
    # A newly generated sample must stay within its topic's focuses; these published ones did not.
    assert +foreign_focus == {"specification_gaming": 11, "reasoning_metacognition": 5}


def test_stage_3_checks_reject_published_interventions_only_for_documented_reasons():
    by_reason, rejected, total, leaks, respelt, focuses = (Counter() for _ in range(6))
    for topic, key, intervention in published_interventions():
        family, version = split_intervention_key(key)
        generated = {name: intervention[name] for name in ("thought_process", *JUDGED_FIELDS)}
        item, fields = normalise_stage_3_item(generated)
        respelt.update(fields)
        problems = stage_3_validation.generation_problems({"batch_thinking": "", "items": [item]}, topic, family, 1)
        reasons = {reason for reason, words in REASONS.items() for problem in problems if words in problem}
        assert len(problems) == len(reasons), problems  # every problem has one documented reason
        by_reason.update((reason, version) for reason in reasons)
        if "focus_not_of_the_topic" in reasons:
            focuses[topic, item["selected_review_focus"]] += 1
        total[version] += 1
        rejected[version] += bool(problems)
        leaks.update(
            f"{field}:{name}" for field in ("I", "R") for name in review_checks.leakage_matches(item[field], field)
        )
    assert respelt == {}  # published values are all spelt canonically
    assert total == {"version_2": 1232, "version_3": 1672, "version_4": 2990}
    assert rejected == {"version_2": 659, "version_3": 1023, "version_4": 615}
    assert by_reason == {
        ("review_by_outside_observer", "version_2"): 318,
        ("review_by_outside_observer", "version_3"): 495,
        ("review_by_outside_observer", "version_4"): 170,
        ("review_not_in_first_person", "version_2"): 296,
        ("review_not_in_first_person", "version_3"): 472,
        ("review_not_in_first_person", "version_4"): 201,
        ("focus_not_of_the_topic", "version_2"): 104,
        ("focus_not_of_the_topic", "version_3"): 138,
        ("focus_not_of_the_topic", "version_4"): 325,
        ("leakage_in_R", "version_2"): 30,
        ("leakage_in_R", "version_3"): 76,
        ("leakage_in_R", "version_4"): 4,
        ("leakage_in_I", "version_2"): 10,
        ("leakage_in_I", "version_3"): 3,
    }
    assert leaks == {
        "R:variant_letter_prompt": 96,
        "R:the_variant_prompt": 43,
        "R:honesty_scare": 12,
        "R:fpt_acronym": 2,
        "I:variant_letter_prompt": 11,
        "I:the_variant_prompt": 5,
        "I:fpt_acronym": 2,
    }
    # The published generator offered other focus lists (and the topic's own name as a focus).
    assert focuses == {
        ("reasoning_metacognition", "reasoning_metacognition"): 463,
        ("reasoning_metacognition", "logical_consistency"): 11,
        ("reasoning_metacognition", "specification_gaming"): 4,
        ("specification_gaming", "strategic_awareness"): 87,
        ("specification_gaming", "harm_avoidance"): 2,
    }
