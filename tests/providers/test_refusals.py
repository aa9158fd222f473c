"""A refusal is an outcome, not a malformed answer (issue 19): the fake provider server refuses in
both wire formats, the provider layer never re-asks a refusal, stage 3 isolates the refusing
sample and writes its batch-mates, stage 1 ends a refused batch, the verification judge's refusal
is a refused verdict and a stage-2 target's refusal is stored as its answer. Official SDKs over
real HTTP against tests/fake_provider/; the stages run as subprocesses."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import anthropic
import openai
import pytest
from entry_scripts import run_main
from fake_provider import ANTHROPIC_REFUSAL_TRIGGER, OPENAI_REFUSAL_TEXT, FakeProviderServer
from repo import REPO_ROOT
from test_causal_verification import is_factor_call, is_judge_call, shown_answers
from test_stage_3_helpers import (
    MODELS,
    UNLIMITED,
    accept_reviews,
    run_stage_3,
    stage_2_item,
    stage_3_path,
    texts,
    variants,
    write_stage_2,
)

from spt import shared_tools
from spt.providers import LLMClient, LLMRequest, Message, Refused, RetryPolicy, Tool, default_registry
from spt.tagging.tags import REFUSED_IN_STAGE_3
from spt.verification.verdict import FIELD, failed_verification, sample_provenance

REVIEW_TOOL = Tool(**shared_tools.quality_review_tool())
FAST_RETRY = RetryPolicy(max_attempts=4, base_s=0.01, cap_s=0.05)
# One model per answer format: structured output on Claude and OpenAI, a forced tool on OpenRouter.
CLIENT_MODELS = {
    "anthropic": "claude-sonnet-4-6",
    "openai": "gpt-4.1",
    "openrouter": "meta-llama/llama-3.3-70b-instruct",
}
REFUSED_TEXT = "Please review: REFUSE-ME"


def make_client(server: FakeProviderServer, provider: str, tmp_path: Path, **settings) -> LLMClient:
    base_url = {"anthropic": server.url, "openai": server.openai_base_url, "openrouter": server.openrouter_base_url}[
        provider
    ]
    return LLMClient(
        provider,
        CLIENT_MODELS[provider],
        api_key="fake-key",
        base_url=base_url,
        cache_dir=tmp_path / "cache",
        retry=FAST_RETRY,
        batch_idle_s=0.1,
        batch_poll_s=0.05,
        **settings,
    )


def review_request(provider: str, text: str) -> LLMRequest:
    return LLMRequest(model=CLIENT_MODELS[provider], messages=(Message("user", text),), tool=REVIEW_TOOL)


# --------------------------------------------------------------------------- the fake's wire formats


def test_the_fake_refuses_in_both_wire_formats_plain_and_streamed(fake_server):
    fake_server.refuse("REFUSE-ME")
    claude = anthropic.Anthropic(api_key="fake-key", base_url=fake_server.url, max_retries=0)
    body = {"model": "claude-sonnet-4-6", "max_tokens": 200, "messages": [{"role": "user", "content": REFUSED_TEXT}]}
    message = claude.messages.create(**body)
    assert message.stop_reason == "refusal" and message.stop_details.type == "refusal"
    assert message.stop_details.explanation and message.usage.output_tokens > 0  # billed up to the refusal
    assert [block.type for block in message.content] == ["text"]
    with claude.messages.stream(**body) as stream:
        streamed = stream.get_final_message()
    assert streamed.stop_reason == "refusal" and streamed.stop_details.type == "refusal"
    # Anthropic's documented test string is refused without any pattern.
    fake_server.refuse(None)
    magic = claude.messages.create(**{**body, "messages": [{"role": "user", "content": ANTHROPIC_REFUSAL_TRIGGER}]})
    assert magic.stop_reason == "refusal"
    assert claude.messages.create(**body).stop_reason == "end_turn"

    fake_server.refuse("REFUSE-ME")
    gpt = openai.OpenAI(api_key="fake-key", base_url=fake_server.openai_base_url, max_retries=0)
    completion = gpt.chat.completions.create(model="gpt-4.1", messages=[{"role": "user", "content": REFUSED_TEXT}])
    choice = completion.choices[0]
    assert choice.message.refusal == OPENAI_REFUSAL_TEXT and choice.message.content is None
    assert choice.message.tool_calls is None and choice.finish_reason == "stop"
    chunks = list(
        gpt.chat.completions.create(model="gpt-4.1", stream=True, messages=[{"role": "user", "content": REFUSED_TEXT}])
    )
    assert "".join(c.choices[0].delta.refusal or "" for c in chunks if c.choices) == OPENAI_REFUSAL_TEXT
    assert [e.fault for e in fake_server.paid] == ["refusal"] * 3 + [None] + ["refusal"] * 2


# --------------------------------------------------------------------------- the provider layer


@pytest.mark.parametrize("provider", ["anthropic", "openai", "openrouter"])
def test_a_refusal_is_never_reasked_and_is_paid_for(fake_server, tmp_path, provider):
    fake_server.refuse("REFUSE-ME")

    async def scenario():
        async with make_client(fake_server, provider, tmp_path) as client:
            with pytest.raises(Refused) as refused:
                await client.complete(review_request(provider, REFUSED_TEXT))
            answered = await client.complete(review_request(provider, "Please review: fine"))
            kept = await client.complete(review_request(provider, REFUSED_TEXT), accept_refusal=True)
            return client, refused.value, answered, kept

    client, error, answered, kept = asyncio.run(scenario())
    assert not isinstance(error.response.tool_input, dict) and error.response.refused
    assert error.response.cost_usd > 0 and error.response.attempts == 1
    assert answered.tool_input is not None and not answered.refused
    assert kept.refused and kept.from_cache and kept.text == error.text  # the paid refusal, from the cache
    if provider != "anthropic":
        assert error.text == OPENAI_REFUSAL_TEXT and "refused by" in str(error)
    else:
        assert error.response.extra["stop_details"]["type"] == "refusal"
    assert client.reasks == 0 and client.refusals == 2
    assert [e.fault for e in fake_server.paid] == ["refusal", None]  # one refused call, never re-asked


def test_a_refused_thinking_request_is_not_asked_again_with_more_room_and_is_priced_at_its_own_model(tmp_path):
    # Opus 5.5 thinks 20,000 tokens here, more than the room its request gets (a max_tokens stop would be asked
    # again with twice the room); the client's own model is Sonnet 5.5, at half Opus's prices.
    with FakeProviderServer(thinking_tokens=20_000) as server:
        server.refuse("REFUSE-ME")

        async def scenario():
            async with LLMClient(
                "anthropic",
                "claude-sonnet-5-5",
                api_key="fake-key",
                base_url=server.url,
                cache_dir=tmp_path / "cache",
                retry=FAST_RETRY,
            ) as client:
                with pytest.raises(Refused) as refused:
                    await client.complete(
                        LLMRequest(
                            model="claude-opus-5-5",
                            messages=(Message("user", REFUSED_TEXT),),
                            tool=REVIEW_TOOL,
                            max_tokens=2000,
                        )
                    )
                return client, refused.value

        client, error = asyncio.run(scenario())
        billed = server.cost()
    [call] = server.paid  # one call: neither re-asked nor given more room
    assert call.fault == "refusal" and call.body["model"] == "claude-opus-5-5"
    assert call.usage["output_tokens"] <= call.body["max_tokens"]
    assert client.max_tokens_retries == 0 and client.reasks == 0 and client.refusals == 1
    assert error.response.attempts == 1 and error.response.refused
    assert error.response.cost_usd == pytest.approx(billed, rel=1e-6) and client.cost_usd == pytest.approx(billed)
    sonnet = default_registry().lookup("claude-sonnet-5-5", "anthropic").cost(error.response.usage)
    assert billed > 0 and error.response.cost_usd == pytest.approx(2 * sonnet, rel=1e-6)  # Opus's prices


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_a_refusal_in_a_provider_batch_fails_only_its_request(fake_server, tmp_path, provider):
    fake_server.refuse("REFUSE-ME")
    fake_server.batch_delay_s = 0.05

    async def scenario():
        async with make_client(fake_server, provider, tmp_path, batch_api=True) as client:
            return await asyncio.gather(
                client.complete(review_request(provider, REFUSED_TEXT)),
                client.complete(review_request(provider, "Please review: fine")),
                return_exceptions=True,
            )

    refused, answered = asyncio.run(scenario())
    assert isinstance(refused, Refused) and refused.response.refused
    assert answered.tool_input is not None
    batch_api = f"{provider}_batch"
    assert sorted(str(e.fault) for e in fake_server.requests(batch_api)) == ["None", "refusal"]


# --------------------------------------------------------------------------- stage 3


def interventions_of(path: Path) -> dict[tuple[int, str], list[dict]]:
    doc = json.loads(stage_3_path(path).read_text())
    found: dict[tuple[int, str], list[dict]] = {}
    for index, _, variant, entry in variants(doc):
        found[index, variant] = list((entry.get("interventions") or {}).values())
    return found


def test_stage_3_isolates_the_refused_sample_and_writes_its_batch_mates(fake_server, tmp_path):
    """Issue 19, must show 2: the fake refuses every request holding one item's T."""
    path = write_stage_2(tmp_path, "sycophancy", [stage_2_item("sycophancy", i, MODELS[:1]) for i in range(6)])
    fake_server.script(accept_reviews)
    fake_server.refuse(r"TASK-3:")
    result = run_stage_3(
        fake_server,
        tmp_path,
        "--names",
        "sycophancy",
        "--batch_size",
        "2",
        "--model",
        "claude-sonnet-5-5",
        "--intervention_modification",
        "v1",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    written = interventions_of(path)
    for (index, _), records in written.items():
        assert len(records) == 2  # both families
        for record in records:
            if index == 3:
                assert record["P"] == "ERROR" and record["error_kind"] == "refused"
                assert record["refused_by"] == "generator" and "refused by claude-sonnet-5-5" in record["error"]
            else:
                assert record["P"] in ("PASS", "FAIL", "AMBIGUOUS"), record
    refused_calls = [e for e in fake_server.paid if e.fault == "refusal"]
    # Per family: the 4-sample request, then the two samples of item 3 alone (A and B share its task).
    assert len(refused_calls) == 6 and all(texts(e.body)[0].count("<sample number=") in (1, 4) for e in refused_calls)
    assert not any("not valid JSON" in json.dumps(e.body) for e in fake_server.paid)  # never re-asked
    assert "(4 ERROR, of them 4 refused by the model" in result.stdout and "6 refused;" in result.stdout
    # Tagged (filtered by default) and counted in the analysis report.
    tagged, report = tmp_path / "tagged", tmp_path / "analysis"
    assert run_main("scripts/tag_stage_3_data.py", ["--input", tmp_path / "stage_3", "--output", tagged]) == 0
    doc = json.loads((tagged / "sycophancy" / path.name).read_text())
    refused_tags = [
        record["tags"]
        for index, _, _, entry in variants(doc)
        if index == 3
        for record in entry["interventions"].values()
    ]
    assert len(refused_tags) == 4 and all(REFUSED_IN_STAGE_3 in tags for tags in refused_tags)
    for name in ("training_config.json", "demo_training_config.json"):
        assert REFUSED_IN_STAGE_3 in json.loads((REPO_ROOT / "config" / name).read_text())["tags_to_filter"]
    assert run_main("scripts/analyze_stage_3.py", ["--data_dir", tagged, "--output_dir", report, "--no_plots"]) == 0
    assert "refused** by a stage-3 model (ERROR, `refused_in_stage_3`): 4" in (report / "report.md").read_text()


def test_stage_3_records_a_quality_reviewers_refusal_for_its_sample_alone(fake_server, tmp_path):
    path = write_stage_2(tmp_path, "sycophancy", [stage_2_item("sycophancy", i, MODELS[:1]) for i in range(4)])
    fake_server.script(accept_reviews)
    # Only a review that judges item 1's own sample (its task, then its example, in one <sample>).
    fake_server.refuse(r"(?s)TASK-1:(?:(?!<sample number).)*<example_to_judge")
    result = run_stage_3(
        fake_server,
        tmp_path,
        "--names",
        "sycophancy",
        "--batch_size",
        "2",
        "--intervention_types",
        "split_personality",
        "--intervention_modification",
        "v1",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for (index, _), (record,) in interventions_of(path).items():
        if index == 1:
            assert record["P"] == "ERROR" and record["refused_by"] == "quality_review"
        else:
            assert record["P"] != "ERROR" and record["stage_3_reviews_passed"] is True
    # The 4-sample review, then item 1's two samples alone.
    assert sum(e.fault == "refusal" for e in fake_server.paid) == 3


# --------------------------------------------------------------------------- stage 2


def test_stage_2_stores_a_target_refusal_as_its_answer(fake_server, tmp_path):
    items = [
        {
            "thought_process": "p",
            "A": f"You are assistant {i}.",
            "B": f"Please the user {i}.",
            "T": f"QUESTION-{i}: is my essay good?",
            "metadata": {
                "alignment_issue_type": "sycophancy",
                "difficulty": "easy",
                "intended_review_focus": "honesty",
                "notes": "",
            },
        }
        for i in range(3)
    ]
    name = "batch_sycophancy_20250101_120000_batch_001.json"
    stage_1 = tmp_path / "stage_1" / "sycophancy" / name
    stage_1.parent.mkdir(parents=True)
    stage_1.write_text(
        json.dumps(
            {
                "batch_id": name[6:-5],
                "generation_timestamp": "x",
                "model_used": "m",
                "stage": 1,
                "topic": "sycophancy",
                "project_feedback": "",
                "data": items,
            }
        )
    )
    fake_server.refuse("QUESTION-1:")
    env = {**os.environ, **fake_server.env(), "SPT_DATA_DIR": str(tmp_path), "TQDM_DISABLE": "1"}
    result = subprocess.run(
        [
            sys.executable,
            "scripts/dataset_generation_stage_2.py",
            "--names",
            "sycophancy",
            "--inference",
            "openrouter",
            "--model",
            "qwen/qwen3-32b",
            *UNLIMITED,
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    doc = json.loads((tmp_path / "stage_2" / "sycophancy" / name).read_text())
    for index, item in enumerate(doc["data"]):
        for entry in item["inferences"]["qwen/qwen3-32b"].values():
            if index == 1:
                assert entry["S"] == OPENAI_REFUSAL_TEXT and entry["refusal"] is True
                assert entry["finish_reason"] == "refusal"
            else:
                assert entry["S"] and "refusal" not in entry and entry["finish_reason"] == "stop"
    assert sum(e.fault == "refusal" for e in fake_server.paid) == 2 and len(fake_server.paid) == 6


# --------------------------------------------------------------------------- stage 1


def test_stage_1_ends_a_refused_batch_without_reasking(fake_server, tmp_path):
    env = {**os.environ, **fake_server.env(), "SPT_DATA_DIR": str(tmp_path)}
    fake_server.refuse(".")  # every request
    result = subprocess.run(
        [
            sys.executable,
            "scripts/dataset_generation_stage_1.py",
            "--name",
            "sycophancy",
            "--num_batches",
            "2",
            "--num_items_per_batch",
            "3",
            *UNLIMITED,
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 1, result.stderr[-3000:]
    assert len(fake_server.paid) == 2 and all(e.fault == "refusal" for e in fake_server.paid)
    assert "2 batch(es) ended by a refusal of the model" in result.stdout and "2 refusals" in result.stdout
    failed = json.loads((tmp_path / "stage_1_failed_batches" / "sycophancy.json").read_text())["failed"]
    assert len(failed) == 2 and all(entry["reason"].startswith("refused by") for entry in failed)


# --------------------------------------------------------------------------- the verification judge

K = 3  # --num_samples of the verification: the smallest it takes
DECLINE = "DECLINE-ME"  # in the answers of one model to item 1: its judge call is refused


def verification_set(tmp_path: Path) -> Path:
    """Two items, both models, K answers per variant: B shows the behaviour (agrees) and hides the
    factor, A never does; MODELS[1]'s answers to item 1 carry DECLINE."""
    items = [stage_2_item("sycophancy", index) for index in range(2)]
    for index, item in enumerate(items):
        for model, entries in item["inferences"].items():
            for variant, entry in entries.items():
                mark = f" {DECLINE}" if (index, model) == (1, MODELS[1]) else ""
                said = "You are right." if variant == "B" else "Step two is wrong."
                entry["samples"] = [
                    {"S": f"Reply {index}-{variant}-{k}: {said}{mark}", "output_tokens": 5} for k in range(K)
                ]
                entry["S"] = entry["samples"][0]["S"]
    return write_stage_2(tmp_path, "sycophancy", items)


def blind_judge(api: str, body: dict) -> dict | None:
    if is_factor_call(body):
        return {"tool_input": {"factor_kind": "pressure", "single_factor": True, "rationale": "One pressure."}}
    if not is_judge_call(body):
        return None
    return {
        "tool_input": {
            "answers": [
                {
                    "answer": number,
                    "shows_behaviour": "You are right." in text,
                    "reveals_operator_influence": False,
                    "evidence": "It says so.",
                }
                for number, text in shown_answers(body)
            ]
        }
    }


def test_the_judges_refusal_is_a_refused_verdict(fake_server, tmp_path):
    path = verification_set(tmp_path)
    # Refused: both judge calls of item 0 (T), MODELS[1]'s judge call of item 1, item 1's factor label (its A/B).
    fake_server.refuse(rf"TASK-0:|{DECLINE}|task 1\.")
    fake_server.script(blind_judge)
    env = {**os.environ, **fake_server.env(), "SPT_DATA_DIR": str(tmp_path)}
    command = [
        sys.executable,
        "scripts/verify_ab_factors.py",
        "--names",
        "sycophancy",
        "--model",
        "claude-sonnet-4-6",
        "--num_samples",
        str(K),
        "--alpha",
        "0.1",
        *UNLIMITED,
    ]
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "0 failed, 4 refused by the judge" in result.stdout
    assert "items with B judged: 1, verified 1, not verified 0" in result.stdout
    assert "1 item(s) whose every judge call was refused" in result.stdout
    assert [e.fault for e in fake_server.paid].count("refusal") == 4 and len(fake_server.paid) == 6
    refused, judged = (item["causal_verification"] for item in json.loads(path.read_text())["data"])
    # Item 0: every judge call refused: neither pass nor fail, though its factor was labelled.
    assert refused["refused"] is True and refused["verified"] is None and refused["p_value"] is None
    assert all(refused["by_model"][m]["refused"] is True and refused["by_model"][m]["verified"] is None for m in MODELS)
    assert refused["factor_kind"] == "pressure"
    # Item 1: verified over the model judged; the refused model and the refused label decide nothing.
    assert judged["verified"] is True and "refused" not in judged and judged["p_value"] == 0.05
    assert judged["by_model"][MODELS[1]]["refused"] is True and judged["by_model"][MODELS[0]]["verified"] is True
    assert judged["factor"]["refused"] is True and judged["factor_kind"] is None
    assert failed_verification({FIELD: refused}) and not failed_verification({FIELD: judged})
    assert [sample_provenance({FIELD: judged}, m)["status"] for m in MODELS] == ["verified", "refused"]
    # The feedback file for stage 1 counts neither item: one is refused, the other's label is.
    feedback = json.loads((tmp_path / "stage_1_feedback" / "sycophancy.json").read_text())
    assert feedback["items_judged"] == 0 and feedback["factor_kinds"] == []

    # A rerun keeps the refused records: no call.
    again = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert again.returncode == 0 and "0 call(s) answered, 6 record(s) kept" in again.stdout
    assert len(fake_server.paid) == 6

    # Stage 3 (--verified_only, the default) skips the refused item and writes the verified one.
    fake_server.refuse(None)
    fake_server.script(accept_reviews)
    stage_3 = run_stage_3(
        fake_server,
        tmp_path,
        "--names",
        "sycophancy",
        "--intervention_types",
        "split_personality",
        "--intervention_modification",
        "v1",
    )
    assert stage_3.returncode == 0, stage_3.stderr[-3000:]
    assert "1 item(s) skipped as unverified" in stage_3.stdout
    written = interventions_of(path)
    assert [len(written[1, v]) for v in "AB"] == [1, 1] and not any(written[0, v] for v in "AB")
