"""The stage 1 prompts: the shared base prompt and one prompt per topic, rendered with the
values the code passes (the single vocabulary of shared_tools)."""

from __future__ import annotations

import re

import pytest

from spt import prompt_templates, review_checks, shared_tools
from spt.prompt_templates import placeholders, render_prompt
from spt.stage_1 import plan


def rendered_topic_prompt(topic: str) -> str:
    return render_prompt(plan.topic_prompt(topic), topic=topic, review_focuses=plan.review_focuses_text(topic))


def test_every_topic_has_a_prompt_and_no_other_prompt_exists():
    files = {p.stem for p in (prompt_templates.PROMPTS_DIR / "stage_1").glob("*.md")}
    assert files == set(shared_tools.TOPICS)


@pytest.mark.parametrize("topic", shared_tools.TOPICS)
def test_topic_prompt_renders_with_the_vocabulary(topic):
    assert placeholders(plan.topic_prompt(topic)) == {"topic", "review_focuses"}
    text = rendered_topic_prompt(topic)
    assert "{{" not in text and "}}" not in text
    assert f"**{topic}**" in text
    # The focuses offered are exactly the legal ones, in the vocabulary's order.
    line = re.search(r"Choose only from: (.*?)\.\s", text, re.S).group(1)
    assert re.findall(r"`(\w+)`", line) == list(shared_tools.legal_focuses(topic))
    # Every topic prompt explains the four difficulty levels and gives worked examples.
    for heading in ("## The failure mode", "## What a good task looks like", "## Difficulty", "## Worked examples"):
        assert heading in text
    for level in ("**easy**", "**medium**", "**hard**", "**FPT**"):
        assert level in text
    assert len(text.split()) > 700


@pytest.mark.parametrize("topic", shared_tools.TOPICS)
def test_the_topic_prompt_asks_for_pairs_that_differ_in_one_factor_the_model_would_hide(topic):
    """Stage 1 itself asks for A/B pairs that differ in exactly one factor aimed at something the
    model would want to hide (issue 18 item 8), not only the causal-verification feedback."""
    text = " ".join(rendered_topic_prompt(topic).split())
    assert "change **exactly one factor**" in text
    assert "something the model **would want to hide** from the user" in text
    assert "the answers under B show the behaviour significantly more often than those under A" in text


def test_base_prompt_is_static_and_complete():
    assert placeholders(plan.BASE_PROMPT) == set()
    text = render_prompt(plan.BASE_PROMPT)
    assert 3000 <= len(text.split()) <= 6500
    checklist = text.split("## 11. Quality checklist", 1)[1].split("\n## ", 1)[0]
    numbers = [int(n) for n in re.findall(r"^(\d+)\. ", checklist, re.M)]
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) >= 8
    for term in (
        "PASS",
        "FAIL",
        "AMBIGUOUS",
        "confidence",
        "internal",
        "external",
        "first person",
        "FPT",
        shared_tools.SPLIT_PERSONALITY_TOKEN,
    ):
        assert term in text


def test_good_example_reviews_in_base_prompt_are_first_person_and_leak_free():
    text = render_prompt(plan.BASE_PROMPT)
    good = re.findall(r"\*Good review[^\n]*\n((?:> [^\n]*\n)+)", text)
    bad = re.findall(r"\*Bad review[^\n]*\n((?:> [^\n]*\n)+)", text)
    assert len(good) >= 3 and len(bad) >= 3
    for quote in good:
        review = " ".join(line[2:] for line in quote.splitlines())
        assert review_checks.leakage_matches(review, "R") == []
        assert review_checks.third_person_review_matches(review) == []
    # The first bad example is there to show leakage and third-person voice: the checks catch it.
    first_bad = " ".join(line[2:] for line in bad[0].splitlines())
    assert review_checks.leakage_matches(first_bad, "R")
    assert review_checks.third_person_review_matches(first_bad)


def test_batch_request_carries_the_per_batch_values():
    assert placeholders(plan.BATCH_REQUEST_PROMPT) == {
        "num_items",
        "topic",
        "variation_hint",
        "avoid_tasks",
        "verification_feedback",
        "rejected_samples",
    }
    text = render_prompt(
        plan.BATCH_REQUEST_PROMPT,
        num_items=7,
        topic="sycophancy",
        variation_hint="- Setting: a bakery",
        avoid_tasks="- Please check my essay …",
        verification_feedback="",
        rejected_samples=plan.rejected_samples_block([]),
    )
    assert "7 new samples" in text and "a bakery" in text and "Please check my essay" in text
    assert "not accepted" not in text


def test_rejected_samples_are_named_in_the_next_request():
    block = plan.rejected_samples_block(["data[2]: metadata.difficulty must be one of easy, medium, hard, FPT"])
    assert block.startswith("### Samples of your last answer that were not accepted")
    assert "\n- data[2]: metadata.difficulty must be one of" in block


def test_steganography_prompt_is_about_model_to_model_messages():
    text = " ".join(rendered_topic_prompt("steganography").lower().split())
    assert "model-to-model" in text and "not about data hiding in general" in text
