"""Tests of spt/review_checks.py (leakage, first-person and token checks) and of
spt/training_filters.py (the docs/data_formats.md §6 per-sample rule)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from repo import REPO_ROOT

from spt import review_checks
from spt.review_checks import (
    has_leakage,
    is_first_person,
    leakage_matches,
    starts_with_split_personality_token,
    third_person_review_matches,
)
from spt.training_filters import filter_hits, kept_by_filters

REFERENCE_TAGGED = Path(REPO_ROOT).parent / "shared" / "reference-data" / "stage_3_tagged"

# (text, pattern that must match) — one or more positives for every pattern of docs/data_formats.md §5.1.
LEAKAGE_POSITIVES = [
    ("Under the B prompt I was told to flatter.", "variant_letter_prompt"),
    ("The A variant of this conversation was neutral.", "variant_letter_prompt"),
    ("Responses to the A/B prompt differ.", "variant_letter_prompt"),
    ("This follows the B prompt closely.", "the_variant_prompt"),
    ("The biased B prompt pushed me.", "biased_letter_prompt"),
    ("An unbiased A prompt would not.", "biased_letter_prompt"),
    ("Compare with system prompt B here.", "system_prompt_letter"),
    ("As noted in Stage 2, the answer was long.", "stage_number"),
    ("stage 3 output", "stage_number"),
    ("Sample 4: the user asks", "sample_numbering"),
    ("Sample 12 - refusal", "sample_numbering"),
    ("Like batch 7 before it.", "batch_number"),
    ("This is item 3 of 10.", "item_i_of_n"),
    ("This is an FPT case.", "fpt_acronym"),
    ("A false positive test: nothing is wrong.", "false_positive_test"),
    ("The honesty scare worked.", "honesty_scare"),
    ("My split personality speaks now.", "split_personality"),
    ("My split-personality voice takes over.", "split_personality"),  # hyphenated (§5.2.5)
    ("As the Split-Personalities agree, I failed.", "split_personality"),
    ("The intervention type here is direct.", "intervention_type"),
    ("this sample tests sycophancy", "this_sample"),
    ("This sample demonstrates a refusal.", "this_sample"),
    ("Using the audit intervention, I reflect.", "using_the_intervention"),
    ("This response was generated using a biased prompt.", "response_generated_using"),
]
LEAKAGE_NEGATIVES = [
    "The user attempted a prompt injection to bypass my rules.",  # article "a" (fix §5.2.1)
    "I wrote a variant of the poem.",
    "Is this b prompt? no.",
    "The fpt acronym in lower case is not the project's label.",
    "FPTX is a different word.",
    "The early stages of the disease (stage four) were described.",
    "I answered the sample question carefully.",
    "The batch of cookies was fine.",
    "The <split-personality-token> opens this turn.",
    "<split-personality-token>Now that I can be honest, I look back.",  # the token itself, hyphens and all
    "A response that is balanced and honest.",
    "Plan B works better; option A is riskier.",
]
R_ONLY_POSITIVES = [
    ("My review focus is honesty.", "review_focus_is"),
    ("The selected review focus fits.", "selected_review_focus"),
    ("The intended review focus was sycophancy.", "intended_review_focus"),
    ("Given this formal investigation, I admit it.", "formal_investigation"),
    ("Now that I am under audit, I admit it.", "under_review"),
    ("While under investigation I must be candid.", "under_review"),
]


@pytest.mark.parametrize("text, pattern", LEAKAGE_POSITIVES)
def test_leakage_pattern_matches_in_i_and_r(text, pattern):
    assert pattern in leakage_matches(text, "I")
    assert pattern in leakage_matches(text, "R")
    assert has_leakage(text, "I")


@pytest.mark.parametrize("text", LEAKAGE_NEGATIVES)
def test_leakage_negatives(text):
    assert leakage_matches(text, "I") == []
    assert leakage_matches(text, "R") == []
    assert not has_leakage(text, "R")


@pytest.mark.parametrize("text, pattern", R_ONLY_POSITIVES)
def test_r_only_patterns_apply_only_to_reviews(text, pattern):
    assert pattern in leakage_matches(text, "R")
    assert leakage_matches(text, "I") == []


def test_every_pattern_has_a_positive_example():
    covered = {name for _, name in LEAKAGE_POSITIVES + R_ONLY_POSITIVES}
    assert covered == {p.name for p in review_checks.LEAKAGE_PATTERNS_I_AND_R + review_checks.LEAKAGE_PATTERNS_R_ONLY}


def test_letters_and_fpt_are_case_sensitive_whole_words():
    assert leakage_matches("the a prompt", "R") == []
    assert leakage_matches("the A prompt", "R") == ["variant_letter_prompt", "the_variant_prompt"]
    assert leakage_matches("fpt", "I") == []
    assert leakage_matches("(FPT)", "I") == ["fpt_acronym"]
    assert leakage_matches("STAGE 1 and Split Personality", "I") == ["stage_number", "split_personality"]


def test_keyword_prefilter_keeps_every_match():
    """Each pattern's keywords must occur in all of its matches (else the prefilter would hide it)."""
    for pattern in (
        review_checks.LEAKAGE_PATTERNS_I_AND_R
        + review_checks.LEAKAGE_PATTERNS_R_ONLY
        + review_checks.THIRD_PERSON_PATTERNS
    ):
        for text, _ in LEAKAGE_POSITIVES + R_ONLY_POSITIVES + THIRD_PERSON:
            if not pattern.keywords:
                continue
            for match in pattern.regex.finditer(text.lower() if pattern.on_lowered else text):
                assert any(word in match.group(0).lower() for word in pattern.keywords), (pattern.name, text)


def test_matches_listed_once_in_pattern_order():
    text = "Stage 1, then stage 2, then the B prompt"
    assert leakage_matches(text, "I") == ["variant_letter_prompt", "the_variant_prompt", "stage_number"]


def test_unknown_field_is_an_error():
    with pytest.raises(ValueError):
        leakage_matches("x", "S")


THIRD_PERSON = [
    ("The model failed to mention the risks, so the answer was misleading.", "the_model_did"),
    ("The assistant provided a balanced answer.", "the_model_did"),
    ("Here the AI correctly refused.", "the_model_did"),
    ("It appears the model was swayed by the user's flattery.", "it_appears_the_model"),
    ("The response is long. It fails to address the risk.", "the_response_it"),
]
FIRST_PERSON = [
    "I told the user what they wanted to hear instead of flagging the risks.",
    "My answer overstated the evidence; I should have said it is uncertain.",
    "I refused, and I explained that 'the model cannot verify this' was my limit.",
    "Looking back, I made up the 73% figure; the model of the economy I cited does not exist.",
]


@pytest.mark.parametrize("review, pattern", THIRD_PERSON)
def test_third_person_reviews_are_detected(review, pattern):
    assert pattern in third_person_review_matches(review)
    assert not is_first_person(review)


@pytest.mark.parametrize("review", FIRST_PERSON)
def test_first_person_reviews_pass(review):
    assert third_person_review_matches(review) == []
    assert is_first_person(review)


def test_quoted_first_person_does_not_make_an_observer_review_first_person():
    review = "This response says 'I cannot guarantee results' and stays calibrated throughout."
    assert not is_first_person(review)
    assert is_first_person("I said 'the assistant is sure' but I was not sure.")


def test_second_person_review_is_not_first_person():
    assert not is_first_person("You flattered the user and ignored the flaws in their paper.")


def test_split_personality_token():
    assert starts_with_split_personality_token("<split-personality-token>Now I can be honest.")
    assert starts_with_split_personality_token("  <split-personality-token> Now.")
    assert not starts_with_split_personality_token("Now I can be honest. <split-personality-token>")
    assert not starts_with_split_personality_token("URGENT AUDIT: explain yourself.")


def _reference_interventions():
    if not REFERENCE_TAGGED.is_dir():
        pytest.skip("reference data not available")
    for path in sorted(REFERENCE_TAGGED.glob("*/*.json")):
        for item in json.loads(path.read_text())["data"]:
            for variants in item["inferences"].values():
                for variant in variants.values():
                    yield from variant.get("interventions", {}).values()


def test_leakage_reproduces_published_tags_on_reference_data():
    """The published leakage tags are reproduced exactly on the reference sample."""
    published = mine = agree = 0
    for intervention in _reference_interventions():
        tagged = "training_data_leakage" in intervention["tags"]
        found = has_leakage(intervention["I"], "I") or has_leakage(intervention["R"], "R")
        published += tagged
        mine += found
        agree += tagged == found
    assert published == mine == 39
    assert agree == 940


def test_first_person_share_on_reference_data():
    """Calibration: about a third of published reviews are not written in the first person."""
    interventions = list(_reference_interventions())
    flagged = sum(not is_first_person(intervention["R"]) for intervention in interventions)
    assert len(interventions) == 940
    assert 0.2 < flagged / len(interventions) < 0.45


CONFIG = {
    "train_topics": ["sycophancy"],
    "validation_topics": ["jailbreak_attempts"],
    "intervention_types": ["split_personality__version_4"],
    "tags_to_filter": ["confidence_below_4", "training_data_leakage", "unclear_a_b_separation"],
}


def test_filter_hits_in_config_order_from_both_levels():
    hits = filter_hits(
        ["training_data_leakage", "easy_detection_difficulty_internal"],
        ["unclear_a_b_separation", "confidence_below_4"],
        CONFIG,
    )
    assert hits == ["confidence_below_4", "training_data_leakage", "unclear_a_b_separation"]
    assert filter_hits(["confidence_below_5"], [], CONFIG) == []


@pytest.mark.parametrize(
    "topic, key, i_tags, v_tags, kept",
    [
        ("sycophancy", "split_personality__version_4", [], [], True),
        ("jailbreak_attempts", "split_personality__version_4", ["confidence_below_5"], [], True),
        ("steganography", "split_personality__version_4", [], [], False),
        ("sycophancy", "split_personality__version_3", [], [], False),
        ("sycophancy", "split_personality__version_4", ["training_data_leakage"], [], False),
        ("sycophancy", "split_personality__version_4", [], ["unclear_a_b_separation"], False),
    ],
)
def test_kept_by_filters(topic, key, i_tags, v_tags, kept):
    assert kept_by_filters(topic, key, i_tags, v_tags, CONFIG) is kept
