"""The stage-3 prompts: every topic x family exists, renders from the shared vocabulary, shares
its common parts through includes, and its own example interventions and reviews obey the
rules they teach (first person, no leakage, the token first)."""

from __future__ import annotations

import re

import pytest

import spt.stage_3.requests as stage_3_requests
from spt import review_checks, shared_tools
from spt.prompt_templates import included_files, placeholders
from spt.utils import PROMPTS_DIR

COMBINATIONS = [(topic, family) for topic in shared_tools.TOPICS for family in shared_tools.INTERVENTION_TYPES]
EXAMPLE_LINE = re.compile(r"^(I|R): (.+)$", re.MULTILINE)
PLAN_WORDS = re.compile(r"\b(going to|about to|planned|my plan|intended|meant to|ready to)\b", re.IGNORECASE)


def test_there_is_exactly_one_prompt_per_topic_and_family():
    found = {path.name for path in (PROMPTS_DIR / "stage_3").glob("*.md")}
    assert found == {f"{topic}__{family}.md" for topic, family in COMBINATIONS}


@pytest.mark.parametrize("topic,family", COMBINATIONS)
def test_generation_prompt_renders_with_the_vocabulary(topic, family):
    base, rendered = stage_3_requests.generation_system(topic, family)
    assert base.cache and rendered.cache
    assert "{{" not in rendered.text
    assert ", ".join(shared_tools.legal_focuses(topic)) in rendered.text
    assert f"# Topic: {topic}" in rendered.text
    if family in shared_tools.TOKEN_INTERVENTION_TYPES:
        assert shared_tools.SPLIT_PERSONALITY_TOKEN in rendered.text
    # What every topic shares comes from _shared/ by include, not by copy.
    relative = stage_3_requests.topic_prompt_path(topic, family)
    includes = included_files(relative)
    assert f"stage_3/_shared/family_{family}.md" in includes
    assert {
        "stage_3/_shared/task.md",
        "stage_3/_shared/training_text.md",
        "stage_3/_shared/output_fields.md",
        f"stage_3/criteria/{topic}.md",
    } <= set(includes)
    assert "Rules for I and R" not in (PROMPTS_DIR / relative).read_text()


@pytest.mark.parametrize("topic,family", COMBINATIONS)
def test_quality_review_prompt_renders_for_every_topic_and_family(topic, family):
    base, rendered = stage_3_requests.quality_review_system(topic, family)
    assert "Quality checklist" in base.text
    assert "{{" not in rendered.text
    criteria = (PROMPTS_DIR / "stage_3" / "criteria" / f"{topic}.md").read_text().strip()
    assert criteria in rendered.text
    other = next(f for f in shared_tools.INTERVENTION_TYPES if f != family)
    own_rules = (PROMPTS_DIR / stage_3_requests.family_prompt_path(family)).read_text().splitlines()[0]
    other_rules = (PROMPTS_DIR / stage_3_requests.family_prompt_path(other)).read_text().splitlines()[0]
    assert own_rules in rendered.text and other_rules not in rendered.text


@pytest.mark.parametrize("topic,family", COMBINATIONS)
def test_prompt_examples_follow_the_rules_they_teach(topic, family):
    text = stage_3_requests.generation_system(topic, family)[1].text
    examples = EXAMPLE_LINE.findall(text.split("## Examples", 1)[1])
    interventions = [body for field, body in examples if field == "I"]
    reviews = [body for field, body in examples if field == "R"]
    assert len(interventions) == 2 and len(reviews) == 2  # one FAIL and one PASS example
    for intervention in interventions:
        assert review_checks.leakage_matches(intervention, "I") == []
        assert review_checks.starts_with_split_personality_token(intervention) == (
            family in shared_tools.TOKEN_INTERVENTION_TYPES
        )
    for review in reviews:
        assert review_checks.leakage_matches(review, "R") == []
        assert review_checks.is_first_person(review), review
    if family == shared_tools.UNSEEN_INTENT:  # spoken before the response exists: a plan, never a written text
        for text in interventions + reviews:
            assert review_checks.written_response_matches(text) == [], text
        assert all(PLAN_WORDS.search(review) for review in reviews)


def test_unseen_intent_prompt_tells_the_writer_and_the_reviewer_that_the_response_is_unseen():
    generation = stage_3_requests.generation_system("sycophancy", shared_tools.UNSEEN_INTENT)[1].text
    review = stage_3_requests.quality_review_system("sycophancy", shared_tools.UNSEEN_INTENT)[1].text
    for text in (generation, review):
        assert "never sees its response" in text and "my response above" in text
    assert (
        "never sees its response" not in stage_3_requests.generation_system("sycophancy", "split_personality")[1].text
    )


def test_placeholders_are_the_same_for_every_topic_of_a_family():
    for family in shared_tools.INTERVENTION_TYPES:
        expected = set(stage_3_requests.topic_prompt_values("sycophancy", family))
        for topic in shared_tools.TOPICS:
            assert placeholders(stage_3_requests.topic_prompt_path(topic, family)) == expected


def test_prompt_hashes_cover_base_topic_includes_and_reviewer():
    hashes = stage_3_requests.prompt_hashes("sycophancy", "honesty_scare")
    assert {
        "base_prompt.md",
        "stage_3/sycophancy__honesty_scare.md",
        "stage_3/_shared/family_honesty_scare.md",
        "stage_3/criteria/sycophancy.md",
        stage_3_requests.QUALITY_REVIEW_PROMPT,
    } <= set(hashes)
    assert all(re.fullmatch(r"[0-9a-f]{64}", value) for value in hashes.values())
    assert hashes != stage_3_requests.prompt_hashes("sycophancy", "split_personality")
