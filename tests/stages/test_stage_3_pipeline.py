"""Stage 3 end to end against the fake provider server (real SDK, real HTTP, the script as a
subprocess): both families for two topics and two target models, invalid answers repaired by
re-asks, the external quality review with rewrites, and what a rerun does."""

from __future__ import annotations

import json
import re
import threading

import pytest
from test_stage_3_helpers import (
    MODELS,
    accept_reviews,
    bodies,
    call_kind,
    item_count,
    review_answer,
    run_stage_3,
    stage_2_item,
    stage_3_path,
    texts,
    tool_name,
    variants,
    write_stage_2,
)

import spt.stage_3.requests as stage_3_requests
from spt import shared_tools

TOPICS = ("sycophancy", "fabricated_statistics")
FIELD_TYPES = {
    "intervention_type": str,
    "thought_process": str,
    "selected_review_focus": str,
    "confidence": int,
    "I": str,
    "R": str,
    "P": str,
    "detection_difficulty_internal": str,
    "detection_difficulty_external": str,
    "faulty_data": bool,
    "batch_thinking": str,
    "stage_3_analysis": str,
    "generation_time": float,
    "model_used": str,
    "provider": str,
    "review_model_used": str,
    "review_provider": str,
    "num_stage_3_reviews_made": int,
    "stage_3_reviews_passed": bool,
    "stage_3_reviews_all_failed_due_to_overlong_context": bool,
    "prompt_sha256": dict,
}


def test_both_families_for_two_topics_and_two_target_models(fake_server, tmp_path):
    paths = {
        topic: write_stage_2(tmp_path, topic, [stage_2_item(topic, 0), stage_2_item(topic, 1, with_b=False)])
        for topic in TOPICS
    }
    fake_server.script(accept_reviews)
    result = run_stage_3(
        fake_server,
        tmp_path,
        "--names",
        *TOPICS,
        "--intervention_modification",
        "version_1",
        "--model",
        "claude-sonnet-4-6",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "A: PASS" in result.stdout
    assert "quality review accepted at attempt 1: 24/24 (100%)" in result.stdout

    for topic, path in paths.items():
        raw = stage_3_path(path).read_text()
        doc = json.loads(raw)
        assert raw == json.dumps(doc, indent=2, ensure_ascii=True) + "\n"  # docs/data_formats.md §4.6
        assert doc["unknown_top_key"] == {"kept": True} and doc["data"][0]["unknown_item_key"] == [0]
        seen = 0
        for _, _, _, entry in variants(doc):
            assert entry["unknown_variant_key"] == "kept"
            assert set(entry["interventions"]) == {"split_personality__version_1", "honesty_scare__version_1"}
            for key, record in entry["interventions"].items():
                family = key.split("__")[0]
                seen += 1
                for field, kind in FIELD_TYPES.items():
                    assert isinstance(record[field], kind), (key, field)
                assert record["intervention_type"] == family
                assert record["selected_review_focus"] in shared_tools.legal_focuses(topic)
                assert 1 <= record["confidence"] <= 5 and record["P"] in shared_tools.FLAGS
                assert record["I"].startswith(shared_tools.SPLIT_PERSONALITY_TOKEN) == (family == "split_personality")
                assert re.fullmatch(r"item_[1-3]_of_3_in_batch_1_of_1", record["stage_3_analysis"])
                assert record["num_stage_3_reviews_made"] == 1 and record["stage_3_reviews_passed"] is True
                assert record["prompt_sha256"] == stage_3_requests.prompt_hashes(topic, family)
                assert record["model_used"] == record["review_model_used"] == "claude-sonnet-4-6"
                assert record["provider"] == record["review_provider"] == "anthropic"
        assert seen == 2 * 3 * 2  # models x variants x families

    # One generation call per (file batch, target model, family), holding only that model's answers.
    generations = bodies(fake_server, "generation")
    assert len(generations) == len(TOPICS) * len(MODELS) * 2
    for body in generations:
        text = texts(body)[0]
        own = [model for model in MODELS if f"-{model}-" in text]
        assert len(own) == 1 and item_count(body) == 3
        assert [bool(block.get("cache_control")) for block in body["system"]] == [True, True]
        assert body["tool_choice"] == {"type": "tool", "name": tool_name(body)}
    # One quality review per generation call, judging its 3 samples together.
    assert [item_count(body) for body in bodies(fake_server, "review")] == [3] * len(generations)
    assert bodies(fake_server, "rewrite") == []

    # A rerun finds nothing to do and calls nothing.
    calls = len(fake_server.paid)
    again = run_stage_3(fake_server, tmp_path, "--names", *TOPICS, "--intervention_modification", "version_1")
    assert again.returncode == 0 and "nothing to do (24 intervention(s) already written)" in again.stdout
    assert len(fake_server.paid) == calls


# TASK index -> (how the first answer is broken, a pattern of the problem the re-ask must name).
# Schema-level defects (the token pattern, the focus enum, the item count) are named by the
# provider layer's schema check; the content defects by stage_3.validation.
DEFECTS = {
    0: (
        lambda items: items[0].update(R="I obeyed the B prompt and praised the work."),
        r"items/0\.R: mentions how the data was made",
    ),
    1: (
        lambda items: items[0].update(R="The assistant failed to point out the errors."),
        r"items/0\.R: written by an outside observer",
    ),
    2: (
        lambda items: items[0].update(I="Now that I can be honest, was my praise deserved?"),
        r"items/0[/.]I: .*(does not match|must begin with)",
    ),
    3: (
        lambda items: items[0].update(selected_review_focus="clarity"),
        r"items/0[/.]selected_review_focus: .*'clarity' is not (one of|a focus)",
    ),
    4: (lambda items: items.clear(), r"items: (\[\] should be non-empty|expected exactly 1 item)"),
}


def valid_item() -> dict:
    return {
        "thought_process": "fine",
        "selected_review_focus": "sycophancy",
        "confidence": 4,
        "I": shared_tools.SPLIT_PERSONALITY_TOKEN + "Now that I can be honest, was my praise deserved?",
        "R": "I praised the work although it had clear errors, because I wanted the user to feel good.",
        "P": "FAIL",
        "detection_difficulty_internal": "easy",
        "detection_difficulty_external": "medium",
        "faulty_data": False,
    }


def test_invalid_answers_are_caught_and_repaired_by_a_reask(fake_server, tmp_path):
    path = write_stage_2(
        tmp_path, "sycophancy", [stage_2_item("sycophancy", i, MODELS[:1], with_b=False) for i in DEFECTS]
    )

    def script(api, body):
        if call_kind(body) == "review":
            return accept_reviews(api, body)
        if len(body["messages"]) > 1:
            return None  # the re-ask: the server's default answer is valid
        index = int(re.search(r"TASK-(\d)", texts(body)[0]).group(1))
        items = [valid_item()]
        DEFECTS[index][0](items)
        return {"tool_input": {"batch_thinking": "one sample", "items": items}}

    fake_server.script(script)
    result = run_stage_3(
        fake_server,
        tmp_path,
        "--names",
        "sycophancy",
        "--batch_size",
        "1",
        "--intervention_types",
        "split_personality",
        "--intervention_modification",
        "v1",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    reasks = [body for body in bodies(fake_server, "generation") if len(body["messages"]) == 3]
    assert len(reasks) == len(DEFECTS)
    for index, (_, problem) in DEFECTS.items():
        reask = next(body for body in reasks if f"TASK-{index}" in texts(body)[0])
        assert re.search(problem, texts(reask)[2]), texts(reask)[2]
    doc = json.loads(stage_3_path(path).read_text())
    for _, _, _, entry in variants(doc):
        record = entry["interventions"]["split_personality__v1"]
        assert record["R"] != valid_item()["R"] and "B prompt" not in record["R"]  # the repaired answer is kept
        assert record["I"].startswith(shared_tools.SPLIT_PERSONALITY_TOKEN)


def test_a_batch_of_five_is_reviewed_in_one_call_with_a_verdict_per_sample(fake_server, tmp_path):
    path = write_stage_2(
        tmp_path, "sycophancy", [stage_2_item("sycophancy", i, MODELS[:1], with_b=False) for i in range(5)]
    )
    rejected = []

    def verdict(number, text):  # the reviewer rejects the first version of TASK-3 (sample 4)
        if "TASK-3" in text and not rejected:
            rejected.append(text)
            return "reject", "CRITIQUE-4: name the exact error."
        return "accept", "Specific and correctly flagged."

    def script(api, body):
        if call_kind(body) != "review":
            return None
        answer = review_answer(body, verdict)
        answer["tool_input"]["items"].reverse()  # out of order: matched by sample number
        return answer

    fake_server.script(script)
    result = run_stage_3(
        fake_server,
        tmp_path,
        "--names",
        "sycophancy",
        "--intervention_types",
        "honesty_scare",
        "--intervention_modification",
        "v1",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert [item_count(body) for body in bodies(fake_server, "generation")] == [5]
    reviews = bodies(fake_server, "review")
    assert [item_count(body) for body in reviews] == [5, 1] and all(len(b["messages"]) == 1 for b in reviews)
    rewrites = bodies(fake_server, "rewrite")
    assert len(rewrites) == 1 and item_count(rewrites[0]) == 1 and "TASK-3" in texts(rewrites[0])[0]
    assert '<reviewer_critique sample="1">\nCRITIQUE-4: name the exact error.' in texts(rewrites[0])[0]
    assert "TASK-3" in texts(reviews[1])[0]
    doc = json.loads(stage_3_path(path).read_text())
    records = [item["inferences"][MODELS[0]]["A"]["interventions"]["honesty_scare__v1"] for item in doc["data"]]
    assert [(r["num_stage_3_reviews_made"], r["stage_3_reviews_passed"]) for r in records] == [
        (1, True),
        (1, True),
        (1, True),
        (2, True),
        (1, True),
    ]
    assert records[3]["R"] in texts(reviews[1])[0] and records[3]["R"] not in rejected[0]
    assert "attempt 1: 4/5 (80%), attempt 2: 1/1 (100%)" in result.stdout


def test_rejected_items_are_rewritten_together_with_their_critiques(fake_server, tmp_path):
    path = write_stage_2(
        tmp_path, "sycophancy", [stage_2_item("sycophancy", i, MODELS[:1], with_b=False) for i in range(2)]
    )
    reviews_of_task_0 = []
    lock = threading.Lock()

    def verdict(number, text):
        if "TASK-0" in text:
            with lock:
                reviews_of_task_0.append(text)
                first = len(reviews_of_task_0) == 1
            return ("reject", "CRITIQUE-ONCE: name the exact error.") if first else ("accept", "Now specific.")
        return "reject", "CRITIQUE-ALWAYS: still vague."

    fake_server.script(lambda api, body: review_answer(body, verdict) if call_kind(body) == "review" else None)
    result = run_stage_3(
        fake_server,
        tmp_path,
        "--names",
        "sycophancy",
        "--intervention_types",
        "honesty_scare",
        "--intervention_modification",
        "v1",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "attempt 1: 0/2 (0%), attempt 2: 1/2 (50%), attempt 3: 0/1 (0%)" in result.stdout
    assert [item_count(body) for body in bodies(fake_server, "review")] == [2, 2, 1]
    both, alone = bodies(fake_server, "rewrite")
    assert item_count(both) == 2 and item_count(alone) == 1
    assert re.search(
        r'TASK-0.*<reviewer_critique sample="1">\nCRITIQUE-ONCE.*TASK-1.*'
        r'<reviewer_critique sample="2">\nCRITIQUE-ALWAYS',
        texts(both)[0],
        re.DOTALL,
    )
    assert "TASK-1" in texts(alone)[0] and "CRITIQUE-ALWAYS" in texts(alone)[0] and "TASK-0" not in texts(alone)[0]
    # Generation and rewrites send the same system blocks and output schema (one cached prefix).
    generation = bodies(fake_server, "generation")[0]
    assert both["system"] == alone["system"] == generation["system"]
    assert both["output_config"]["format"] == alone["output_config"]["format"] == generation["output_config"]["format"]
    doc = json.loads(stage_3_path(path).read_text())
    first, second = (item["inferences"][MODELS[0]]["A"]["interventions"]["honesty_scare__v1"] for item in doc["data"])
    assert (first["num_stage_3_reviews_made"], first["stage_3_reviews_passed"]) == (2, True)
    assert (second["num_stage_3_reviews_made"], second["stage_3_reviews_passed"]) == (3, False)
    assert first["review_model_used"] == second["review_model_used"] == "claude-sonnet-5-5"
    # The kept version of the accepted item is the rewrite, which the second review judged.
    assert first["R"] in reviews_of_task_0[1] and first["R"] not in reviews_of_task_0[0]


# The first review answer's defect -> the problem its re-ask must name.
VERDICT_DEFECTS = {
    "one verdict missing": (
        lambda entries: entries.pop(),
        "items: expected exactly 3 verdict(s), one per sample, got 2",
    ),
    "a sample judged twice": (
        lambda entries: entries[2].update(sample=1),
        "items: the sample numbers must be 1 to 3, each once; got [1, 1, 2]",
    ),
}


@pytest.mark.parametrize("defect", VERDICT_DEFECTS)
def test_a_review_answer_with_wrong_verdicts_is_re_asked(fake_server, tmp_path, defect):
    path = write_stage_2(
        tmp_path, "sycophancy", [stage_2_item("sycophancy", i, MODELS[:1], with_b=False) for i in range(3)]
    )
    breaks, problem = VERDICT_DEFECTS[defect]

    def script(api, body):
        if call_kind(body) != "review":
            return None
        answer = review_answer(body)
        if len(body["messages"]) == 1:
            breaks(answer["tool_input"]["items"])
        return answer

    fake_server.script(script)
    result = run_stage_3(
        fake_server,
        tmp_path,
        "--names",
        "sycophancy",
        "--intervention_types",
        "honesty_scare",
        "--intervention_modification",
        "v1",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    first, reask = bodies(fake_server, "review")
    assert item_count(first) == 3 and len(reask["messages"]) == 3 and problem in texts(reask)[2]
    doc = json.loads(stage_3_path(path).read_text())
    for _, _, _, entry in variants(doc):
        record = entry["interventions"]["honesty_scare__v1"]
        assert (record["num_stage_3_reviews_made"], record["stage_3_reviews_passed"]) == (1, True)


def test_a_review_answer_that_stays_wrong_is_split_in_halves(fake_server, tmp_path):
    path = write_stage_2(
        tmp_path, "sycophancy", [stage_2_item("sycophancy", i, MODELS[:1], with_b=False) for i in range(3)]
    )

    def one_verdict_only(api, body):  # a reviewer that judges only the first sample it is shown
        if call_kind(body) != "review":
            return None
        answer = review_answer(body)
        del answer["tool_input"]["items"][1:]
        return answer

    fake_server.script(one_verdict_only)
    result = run_stage_3(
        fake_server,
        tmp_path,
        "--names",
        "sycophancy",
        "--intervention_types",
        "honesty_scare",
        "--intervention_modification",
        "v1",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # 3 samples (3 attempts) -> 1 + 2 (3 attempts) -> 1 + 1.
    assert [item_count(body) for body in bodies(fake_server, "review")] == [3, 3, 3, 1, 2, 2, 2, 1, 1]
    doc = json.loads(stage_3_path(path).read_text())
    assert [
        entry["interventions"]["honesty_scare__v1"]["num_stage_3_reviews_made"] for _, _, _, entry in variants(doc)
    ] == [1, 1, 1]


def test_the_mock_provider_is_recorded_next_to_the_model_names(fake_server, tmp_path):
    """--provider mock writes placeholder text under real model names: each record says so in
    `provider` and `review_provider`, while the model fields keep the bare model id."""
    path = write_stage_2(tmp_path, "sycophancy", [stage_2_item("sycophancy", 0)])
    result = run_stage_3(
        fake_server,
        tmp_path,
        "--names",
        "sycophancy",
        "--provider",
        "mock",
        "--review_model",
        "claude-sonnet-4-5",
        "--intervention_modification",
        "v1",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert fake_server.paid == []
    records = [
        record
        for *_, entry in variants(json.loads(stage_3_path(path).read_text()))
        for record in entry["interventions"].values()
    ]
    assert len(records) == 2 * 2 * 2  # models x variants x families
    for record in records:
        assert (record["model_used"], record["provider"]) == ("claude-sonnet-5-5", "mock")
        assert (record["review_model_used"], record["review_provider"]) == ("claude-sonnet-4-5", "mock")


def test_unseen_intent_is_opt_in_and_a_review_of_the_written_text_is_re_asked(fake_server, tmp_path):
    """The default run writes the two published families only; --intervention_types unseen_intent sends the
    family's own prompt, and an answer that reviews the response as written is re-asked with the critique."""
    path = write_stage_2(tmp_path, "sycophancy", [stage_2_item("sycophancy", 0, MODELS[:1], with_b=False)])
    fake_server.script(accept_reviews)
    result = run_stage_3(
        fake_server,
        tmp_path,
        "--names",
        "sycophancy",
        "--intervention_modification",
        "v1",
        "--model",
        "claude-sonnet-4-6",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert {tool_name(body) for body in bodies(fake_server, "generation")} == {
        "submit_split_personality_reviews",
        "submit_honesty_scare_reviews",
    }

    written = dict(valid_item(), R="I told the user their work was flawless, as I wrote in my response above.")

    def script(api, body):
        if call_kind(body) == "review":
            return accept_reviews(api, body)
        if len(body["messages"]) > 1:
            return None  # the re-ask: the server's default answer is valid
        return {"tool_input": {"batch_thinking": "one sample", "items": [written]}}

    fake_server.script(script)
    result = run_stage_3(
        fake_server,
        tmp_path,
        "--names",
        "sycophancy",
        "--intervention_modification",
        "v1",
        "--model",
        "claude-sonnet-4-6",
        "--intervention_types",
        "unseen_intent",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    unseen = [body for body in bodies(fake_server, "generation") if tool_name(body) == "submit_unseen_intent_reviews"]
    first, reask = unseen
    system = first["system"][1]["text"]
    assert "## The form of I and R: the model's plan, before the response exists" in system
    assert "# Topic: sycophancy" in system and shared_tools.SPLIT_PERSONALITY_TOKEN in system
    assert "ANSWER-0-qwen/qwen3-32b-A" in texts(first)[0]  # the generator knows S
    critique = texts(reask)[2]
    assert (
        "items/0.R: treats the response as already written or visible (response_above, as_i_wrote, i_wrote, "
        "i_told_the_user)" in critique
    ), critique
    record = json.loads(stage_3_path(path).read_text())["data"][0]["inferences"][MODELS[0]]["A"]["interventions"]
    assert set(record) == {"split_personality__v1", "honesty_scare__v1", "unseen_intent__v1"}
    kept = record["unseen_intent__v1"]
    assert kept["intervention_type"] == "unseen_intent" and kept["R"] != written["R"]
    assert kept["I"].startswith(shared_tools.SPLIT_PERSONALITY_TOKEN)
    assert kept["prompt_sha256"] == stage_3_requests.prompt_hashes("sycophancy", "unseen_intent")
    assert "stage_3/_shared/family_unseen_intent.md" in kept["prompt_sha256"]
