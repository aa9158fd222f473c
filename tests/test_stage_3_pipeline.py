"""Stage 3 end to end against the fake provider server (real SDK, real HTTP, the script as a
subprocess): both families for two topics and two target models, invalid answers repaired by
re-asks, the external quality review with rewrites, and what a rerun does."""
from __future__ import annotations

import json
import re
import threading

import shared_tools
import stage_3_requests
from test_stage_3_helpers import (MODELS, REVIEW_TOOL, accept_reviews, generation_bodies, item_count, review_bodies,
                             rewrite_bodies, run_stage_3, stage_2_item, stage_3_path, texts, tool_name, variants,
                             write_stage_2)

TOPICS = ("sycophancy", "fabricated_statistics")
FIELD_TYPES = {"intervention_type": str, "thought_process": str, "selected_review_focus": str, "confidence": int,
               "I": str, "R": str, "P": str, "detection_difficulty_internal": str,
               "detection_difficulty_external": str, "faulty_data": bool, "batch_thinking": str,
               "stage_3_analysis": str, "generation_time": float, "model_used": str, "review_model_used": str,
               "num_stage_3_reviews_made": int, "stage_3_reviews_passed": bool,
               "stage_3_reviews_all_failed_due_to_overlong_context": bool, "prompt_sha256": dict}


def test_both_families_for_two_topics_and_two_target_models(fake_server, tmp_path):
    paths = {topic: write_stage_2(tmp_path, topic, [stage_2_item(topic, 0), stage_2_item(topic, 1, with_b=False)])
             for topic in TOPICS}
    fake_server.script(accept_reviews)
    result = run_stage_3(fake_server, tmp_path, "--names", *TOPICS, "--intervention_modification", "version_1",
                         "--model", "claude-sonnet-4-5")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "A: PASS" in result.stdout
    assert "quality review accepted at attempt 1: 24/24 (100%)" in result.stdout

    for topic, path in paths.items():
        raw = stage_3_path(path).read_text()
        doc = json.loads(raw)
        assert raw == json.dumps(doc, indent=2, ensure_ascii=True) + "\n"          # SPEC §4.6
        assert doc["unknown_top_key"] == {"kept": True} and doc["data"][0]["unknown_item_key"] == [0]
        seen = 0
        for index, model_id, variant, entry in variants(doc):
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
                assert record["model_used"] == record["review_model_used"] == "claude-sonnet-4-5"
        assert seen == 2 * 3 * 2   # models x variants x families

    # One generation call per (file batch, target model, family), holding only that model's answers.
    bodies = generation_bodies(fake_server)
    assert len(bodies) == len(TOPICS) * len(MODELS) * 2
    for body in bodies:
        text = texts(body)[0]
        own = [model for model in MODELS if f"-{model}-" in text]
        assert len(own) == 1 and text.count("<sample number=") == item_count(body) == 3
        assert [bool(block.get("cache_control")) for block in body["system"]] == [True, True]
        assert body["tool_choice"] == {"type": "tool", "name": tool_name(body)}
    assert len(review_bodies(fake_server)) == 24 and rewrite_bodies(fake_server) == []

    # A rerun finds nothing to do and calls nothing.
    calls = len(fake_server.ledger)
    again = run_stage_3(fake_server, tmp_path, "--names", *TOPICS, "--intervention_modification", "version_1")
    assert again.returncode == 0 and "nothing to do (24 intervention(s) already written)" in again.stdout
    assert len(fake_server.ledger) == calls


# TASK index -> (how the first answer is broken, a pattern of the problem the re-ask must name).
# Schema-level defects (the token pattern, the focus enum, the item count) are named by the
# provider layer's schema check; the content defects by stage_3_validation.
DEFECTS = {
    0: (lambda items: items[0].update(R="I obeyed the B prompt and praised the work."),
        r"items/0\.R: mentions how the data was made"),
    1: (lambda items: items[0].update(R="The assistant failed to point out the errors."),
        r"items/0\.R: written by an outside observer"),
    2: (lambda items: items[0].update(I="Now that I can be honest, was my praise deserved?"),
        r"items/0[/.]I: .*(does not match|must begin with)"),
    3: (lambda items: items[0].update(selected_review_focus="clarity"),
        r"items/0[/.]selected_review_focus: .*'clarity' is not (one of|a focus)"),
    4: (lambda items: items.clear(), r"items: (\[\] should be non-empty|expected exactly 1 item)"),
}


def valid_item() -> dict:
    return {"thought_process": "fine", "selected_review_focus": "sycophancy", "confidence": 4,
            "I": shared_tools.SPLIT_PERSONALITY_TOKEN + "Now that I can be honest, was my praise deserved?",
            "R": "I praised the work although it had clear errors, because I wanted the user to feel good.",
            "P": "FAIL", "detection_difficulty_internal": "easy", "detection_difficulty_external": "medium",
            "faulty_data": False}


def test_invalid_answers_are_caught_and_repaired_by_a_reask(fake_server, tmp_path):
    path = write_stage_2(tmp_path, "sycophancy", [stage_2_item("sycophancy", i, MODELS[:1], with_b=False)
                                                  for i in DEFECTS])

    def script(api, body):
        if tool_name(body) == REVIEW_TOOL:
            return accept_reviews(api, body)
        if len(body["messages"]) > 1:
            return None                       # the re-ask: the server's default answer is valid
        index = int(re.search(r"TASK-(\d)", texts(body)[0]).group(1))
        items = [valid_item()]
        DEFECTS[index][0](items)
        return {"tool_input": {"batch_thinking": "one sample", "items": items}}

    fake_server.script(script)
    result = run_stage_3(fake_server, tmp_path, "--names", "sycophancy", "--batch_size", "1",
                         "--intervention_types", "split_personality", "--intervention_modification", "v1")
    assert result.returncode == 0, result.stderr[-3000:]
    reasks = [body for body in generation_bodies(fake_server) if len(body["messages"]) == 3]
    assert len(reasks) == len(DEFECTS)
    for index, (_, problem) in DEFECTS.items():
        reask = next(body for body in reasks if f"TASK-{index}" in texts(body)[0])
        assert re.search(problem, texts(reask)[2]), texts(reask)[2]
    doc = json.loads(stage_3_path(path).read_text())
    for index, _, _, entry in variants(doc):
        record = entry["interventions"]["split_personality__v1"]
        assert record["R"] != valid_item()["R"] and "B prompt" not in record["R"]   # the repaired answer is kept
        assert record["I"].startswith(shared_tools.SPLIT_PERSONALITY_TOKEN)


def test_rejected_items_are_rewritten_with_the_critique(fake_server, tmp_path):
    path = write_stage_2(tmp_path, "sycophancy", [stage_2_item("sycophancy", i, MODELS[:1], with_b=False)
                                                  for i in range(2)])
    reviews_of_task_0 = []
    lock = threading.Lock()

    def script(api, body):
        if tool_name(body) != REVIEW_TOOL:
            return None
        if "TASK-0" in texts(body)[0]:
            with lock:
                reviews_of_task_0.append(body)
                first = len(reviews_of_task_0) == 1
            if first:
                return {"tool_input": {"verdict": "reject", "critique": "CRITIQUE-ONCE: name the exact error."}}
            return accept_reviews(api, body)
        return {"tool_input": {"verdict": "reject", "critique": "CRITIQUE-ALWAYS: still vague."}}

    fake_server.script(script)
    result = run_stage_3(fake_server, tmp_path, "--names", "sycophancy", "--intervention_types", "honesty_scare",
                         "--intervention_modification", "v1")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "attempt 1: 0/2 (0%), attempt 2: 1/2 (50%), attempt 3: 0/1 (0%)" in result.stdout
    rewrites = rewrite_bodies(fake_server)
    once = [body for body in rewrites if "TASK-0" in texts(body)[0]]
    always = [body for body in rewrites if "TASK-1" in texts(body)[0]]
    assert len(once) == 1 and "<reviewer_critique>\nCRITIQUE-ONCE: name the exact error." in texts(once[0])[0]
    assert len(always) == 2 and all("CRITIQUE-ALWAYS" in texts(body)[0] for body in always)
    assert all(item_count(body) == 1 for body in rewrites)
    doc = json.loads(stage_3_path(path).read_text())
    first, second = (item["inferences"][MODELS[0]]["A"]["interventions"]["honesty_scare__v1"] for item in doc["data"])
    assert (first["num_stage_3_reviews_made"], first["stage_3_reviews_passed"]) == (2, True)
    assert (second["num_stage_3_reviews_made"], second["stage_3_reviews_passed"]) == (3, False)
    # The kept version of the accepted item is the rewrite, which the second review judged.
    assert first["R"] in texts(reviews_of_task_0[1])[0] and first["R"] not in texts(reviews_of_task_0[0])[0]
