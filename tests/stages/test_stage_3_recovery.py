"""Stage 3 when things go wrong: a killed run, failed calls, requests too long for the context,
the cost limit, a reused version label, bad input, and --dry-run. The script runs as a
subprocess against the fake provider server."""

from __future__ import annotations

import json
import re
import subprocess
import time

import pytest
from fake_provider import FakeProviderServer
from repo import REPO_ROOT
from test_stage_3_helpers import (
    MODELS,
    accept_reviews,
    bodies,
    call_kind,
    command,
    item_count,
    run_stage_3,
    script_env,
    stage_2_item,
    stage_3_path,
    texts,
    variants,
    write_stage_2,
)

from spt.providers.client import estimate_input_tokens
from spt.stage_3.requests import Sample, generation_request

SP = ["--intervention_types", "split_personality", "--intervention_modification", "v1"]


def records(path, key="split_personality__v1"):
    doc = json.loads(stage_3_path(path).read_text())
    return [entry.get("interventions", {}).get(key) for _, _, _, entry in variants(doc)]


@pytest.mark.slow
def test_killed_run_completes_on_rerun_without_paying_twice(tmp_path):
    path = write_stage_2(tmp_path, "sycophancy", [stage_2_item("sycophancy", i) for i in range(4)])
    # One call in flight at a time, each taking 0.4 s at the server: killed once a batch is saved and the
    # next call has reached the server (so the client has stored every earlier answer) but is not answered.
    with FakeProviderServer(seed=0, latency_s=0.4) as server:
        server.script(accept_reviews)
        args = command(
            "--names", "sycophancy", "--batch_size", "1", "--concurrency", "1", "--intervention_modification", "v1"
        )
        process = subprocess.Popen(
            args, cwd=REPO_ROOT, env=script_env(server, tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.time() + 120

        def saved() -> int:
            try:
                return sum(r is not None for r in records(path))
            except (OSError, ValueError):  # not written yet
                return 0

        def in_flight() -> bool:
            return server.paid_requests_received > len(server.paid)

        while (
            (len(server.completed_keys()) < 7 or not saved() or not in_flight())
            and process.poll() is None
            and time.time() < deadline
        ):
            time.sleep(0.01)
        process.kill()
        process.wait()
        assert process.returncode != 0, "the run finished before it could be killed"
        partial = records(path)  # batches finished before the kill were saved (atomically: valid JSON)
        assert 1 <= sum(r is not None for r in partial) < len(partial)
        paid_before = len(server.completed_keys())
        server.latency_s = 0.0
        result = run_stage_3(
            server, tmp_path, "--names", "sycophancy", "--batch_size", "1", "--intervention_modification", "v1"
        )
        assert result.returncode == 0, result.stderr[-3000:]
        assert server.paid_duplicates() == []
        assert len(server.completed_keys()) > paid_before
    written = records(path) + records(path, "honesty_scare__v1")
    assert len(written) == 4 * 2 * 2 * 2 and all(r and r["P"] != "ERROR" for r in written)


def test_failed_calls_are_stored_as_errors_and_retried_by_the_next_run(fake_server, tmp_path):
    path = write_stage_2(tmp_path, "sycophancy", [stage_2_item("sycophancy", i, MODELS[:1]) for i in range(3)])

    def broken_task_1(api, body):
        if call_kind(body) != "review" and "TASK-1" in texts(body)[0]:
            return {"status": 400}
        return accept_reviews(api, body)

    fake_server.script(broken_task_1)
    result = run_stage_3(
        fake_server, tmp_path, "--names", "sycophancy", "--batch_size", "1", "--continue_on_error", *SP
    )
    assert result.returncode == 1, result.stderr[-3000:]
    first = records(path)
    assert [r["P"] == "ERROR" for r in first] == [False, False, True, True, False, False]
    assert "HTTP 400" in first[2]["error"] and first[2]["stage_3_reviews_all_failed_due_to_overlong_context"] is False
    assert "(2 ERROR" in result.stdout

    fake_server.script(accept_reviews)
    again = run_stage_3(fake_server, tmp_path, "--names", "sycophancy", "--batch_size", "1", *SP)
    assert again.returncode == 0, again.stderr[-3000:]
    second = records(path)
    assert all(r["P"] != "ERROR" for r in second)
    assert [second[i] for i in (0, 1, 4, 5)] == [first[i] for i in (0, 1, 4, 5)]  # finished ones untouched
    assert "4 already done" in again.stdout and fake_server.paid_duplicates() == []


def test_without_continue_on_error_no_new_batch_starts_after_a_failure(fake_server, tmp_path):
    write_stage_2(tmp_path, "sycophancy", [stage_2_item("sycophancy", i, MODELS[:1], with_b=False) for i in range(4)])
    fake_server.script(lambda api, body: {"status": 400} if call_kind(body) != "review" else accept_reviews(api, body))
    result = run_stage_3(fake_server, tmp_path, "--names", "sycophancy", "--batch_size", "1", "--concurrency", "1", *SP)
    assert result.returncode == 1
    assert "1 intervention(s) written (1 ERROR" in result.stdout and "3 left for the next run" in result.stdout
    assert len(fake_server.paid) == 1


def test_requests_too_long_for_the_context_are_split_down_to_single_samples(fake_server, tmp_path):
    items = [stage_2_item("sycophancy", i, MODELS[:1], answer_chars=8000) for i in range(2)]
    path = write_stage_2(tmp_path, "sycophancy", items)
    lone_refusal = f"ANSWER-1-{MODELS[0]}-B."

    def too_large(api, body):  # the provider refuses more than one sample, and one sample even alone
        if call_kind(body) == "review":
            return accept_reviews(api, body)
        return {"status": 413} if item_count(body) > 1 or lone_refusal in texts(body)[0] else None

    fake_server.script(too_large)
    result = run_stage_3(fake_server, tmp_path, "--names", "sycophancy", *SP)
    assert result.returncode == 1, result.stderr[-3000:]
    refused = [e.body for e in fake_server.paid if e.status == 413]
    assert sorted(item_count(body) for body in refused) == [1, 2, 2, 4]  # 4 -> 2 + 2 -> 1 + 1 + 1 + 1
    assert [item_count(body) for body in bodies(fake_server, "generation")] == [1, 1, 1]
    split = records(path)
    assert [r["P"] == "ERROR" for r in split] == [False, False, False, True]
    assert split[3]["stage_3_reviews_all_failed_due_to_overlong_context"] is True
    assert {r["stage_3_analysis"] for r in split[:3]} == {"item_1_of_1_in_batch_1_of_1"}

    # Over the --max_context_tokens estimate: split before anything is sent.
    samples = [Sample(path.stem, i, MODELS[0], v, item) for i, item in enumerate(items) for v in ("A", "B")]
    size = {
        n: estimate_input_tokens(generation_request("claude-sonnet-4-6", "sycophancy", "honesty_scare", samples[:n]))
        for n in (1, 2)
    }
    fake_server.script(accept_reviews)
    calls = len(fake_server.paid)
    result = run_stage_3(
        fake_server,
        tmp_path,
        "--names",
        "sycophancy",
        "--max_context_tokens",
        str((size[1] + size[2]) // 2),
        "--intervention_types",
        "honesty_scare",
        "--intervention_modification",
        "v1",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert [item_count(e.body) for e in fake_server.paid[calls:] if call_kind(e.body) != "review"] == [1] * 4

    # Too long even alone by the estimate: an ERROR marked as over the context, and nothing is sent.
    calls = len(fake_server.paid)
    result = run_stage_3(
        fake_server,
        tmp_path,
        "--names",
        "sycophancy",
        "--max_context_tokens",
        str(size[1] - 1),
        "--intervention_types",
        "honesty_scare",
        "--intervention_modification",
        "v2",
    )
    assert result.returncode == 1 and len(fake_server.paid) == calls
    failed = records(path, "honesty_scare__v2")
    assert all(r["P"] == "ERROR" and r["stage_3_reviews_all_failed_due_to_overlong_context"] for r in failed)
    assert "4 over the context limit" in result.stdout


def test_review_requests_too_long_for_the_context_are_split_like_generation(fake_server, tmp_path):
    items = [stage_2_item("sycophancy", i, MODELS[:1], answer_chars=8000) for i in range(2)]
    path = write_stage_2(tmp_path, "sycophancy", items)
    lone_refusal = f"ANSWER-1-{MODELS[0]}-B."

    def review_too_large(api, body):  # the reviewer refuses more than one sample, and one sample even alone
        if call_kind(body) != "review":
            return None
        return {"status": 413} if item_count(body) > 1 or lone_refusal in texts(body)[0] else accept_reviews(api, body)

    fake_server.script(review_too_large)
    result = run_stage_3(fake_server, tmp_path, "--names", "sycophancy", *SP)
    assert result.returncode == 1, result.stderr[-3000:]
    assert [item_count(body) for body in bodies(fake_server, "generation")] == [4]
    refused = [item_count(e.body) for e in fake_server.paid if e.status == 413]
    assert sorted(refused) == [1, 2, 2, 4]
    reviewed = records(path)
    assert [r["P"] == "ERROR" for r in reviewed] == [False, False, False, True]
    assert [r["stage_3_reviews_all_failed_due_to_overlong_context"] for r in reviewed] == [False, False, False, True]
    assert all(r["num_stage_3_reviews_made"] == 1 and r["stage_3_reviews_passed"] for r in reviewed[:3])


def test_cost_limit_stops_cleanly_and_the_rerun_finishes(fake_server, tmp_path):
    path = write_stage_2(tmp_path, "sycophancy", [stage_2_item("sycophancy", i, MODELS[:1]) for i in range(3)])
    fake_server.script(accept_reviews)
    result = run_stage_3(
        fake_server,
        tmp_path,
        "--names",
        "sycophancy",
        "--batch_size",
        "1",
        "--concurrency",
        "1",
        "--max_cost",
        "0.000001",
        *SP,
    )
    assert result.returncode == 3, result.stderr[-3000:]
    assert "stopped: --max_cost" in result.stderr and "left for the next run" in result.stdout
    assert 1 <= len(fake_server.completed_keys()) < 9
    again = run_stage_3(fake_server, tmp_path, "--names", "sycophancy", "--batch_size", "1", *SP)
    assert again.returncode == 0 and all(r["P"] != "ERROR" for r in records(path))
    assert fake_server.paid_duplicates() == []


def test_a_version_label_written_with_other_prompts_is_refused_unless_forced(fake_server, tmp_path):
    item = stage_2_item("sycophancy", 0, MODELS[:1], with_b=False)
    item["inferences"][MODELS[0]]["A"]["interventions"] = {
        "split_personality__v1": {"P": "PASS", "prompt_sha256": {"stage_3/sycophancy__split_personality.md": "0" * 64}}
    }
    path = write_stage_2(tmp_path, "sycophancy", [item, stage_2_item("sycophancy", 1, MODELS[:1], with_b=False)])
    refused = run_stage_3(fake_server, tmp_path, "--names", "sycophancy", *SP)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert refused.stderr.startswith("error: ") and f"stage_2/sycophancy/{path.name}: data[0]" in refused.stderr
    assert "split_personality__v1" in refused.stderr and "--force" in refused.stderr
    assert not stage_3_path(path).exists() and fake_server.paid == []

    forced = run_stage_3(fake_server, tmp_path, "--names", "sycophancy", "--force", "--dry-run", *SP)
    assert forced.returncode == 0, forced.stderr[-2000:]
    out = forced.stdout
    assert out.startswith("stage 3 dry run: 1 generation call(s) for 1 sample(s)")  # the finished variant is skipped
    assert "answer: schema `submit_split_personality_reviews`" in out and '"messages"' not in out
    assert len(re.findall(r"^    [0-9a-f]{64}  .*, prompt-cached, in 1 of 1 call", out, re.MULTILINE)) == 2
    assert float(re.search(r"\$(\d+\.\d+) with prompt caching", out).group(1)) > 0

    full = run_stage_3(fake_server, tmp_path, "--names", "sycophancy", "--force", "--dry-run-full", *SP)
    assert full.returncode == 0, full.stderr[-2000:]
    first = full.stdout.split("\nfirst stage-3 generation (split_personality) request (anthropic):\n", 1)[1]
    body = json.loads(first.split("\n\nall generation calls:")[0])
    assert [bool(block.get("cache_control")) for block in body["system"]] == [True, True]
    assert "TASK-1" in texts(body)[0] and "TASK-0" not in texts(body)[0]
    assert not stage_3_path(path).exists() and fake_server.paid == []


def test_bad_input_is_one_line_naming_the_file(fake_server, tmp_path):
    path = write_stage_2(tmp_path, "sycophancy", [stage_2_item("sycophancy", 0)])
    path.write_text(path.read_text()[:-20])
    result = run_stage_3(fake_server, tmp_path, "--names", "sycophancy")
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert f"sycophancy/{path.name}: invalid JSON at line" in result.stderr

    doc = {"topic": "sycophancy", "data": [stage_2_item("sycophancy", 0)]}
    doc["data"][0]["inferences"][MODELS[0]]["A"]["S"] = 42
    path.write_text(json.dumps(doc))
    result = run_stage_3(fake_server, tmp_path, "--names", "sycophancy")
    assert (
        result.returncode == 2
        and "data[0].inferences['qwen/qwen3-32b']['A']: field 'S' must be a string" in result.stderr
    )
    assert fake_server.paid == []
