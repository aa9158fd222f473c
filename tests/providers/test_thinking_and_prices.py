"""Issue 19 end to end, against a fake whose models think (4,000 tokens per call at the default
effort, an assumption) and bill every call at its own model's price: stage 3 with a generator and a
review model of different prices reports what the calls cost; a current OpenAI reasoning model
writes stage 1 and answers stage 2 with the published --temperature 0.7 never sent; stage 3's dry
run says which thinking it chose; stage 2 stores a Claude 5.5 target's thinking; the verification and
eligibility judges state their answer's budget only, so their thinking room is not counted twice."""

from __future__ import annotations

import json
import re
from pathlib import Path

from fake_provider import FakeProviderServer
from test_model_generations import run
from test_stage_3_helpers import stage_2_item, variants, write_stage_2

from spt.eligibility.requests import JUDGE_MAX_TOKENS
from spt.eligibility.requests import judge_request as eligibility_request
from spt.providers import default_registry, thinking
from spt.verification.requests import JUDGE_TOKENS_BASE, JUDGE_TOKENS_PER_ANSWER, JudgeCase, judge_request

TOPIC = "sycophancy"
UNLIMITED = ("--rpm", "0", "--itpm", "0", "--otpm", "0")
VALID = ("PASS", "FAIL", "AMBIGUOUS")


def interventions(data_dir: Path) -> list[dict]:
    return [
        record
        for path in sorted((data_dir / "stage_3").rglob("*.json"))
        for *_, entry in variants(json.loads(path.read_text()))
        for record in entry.get("interventions", {}).values()
    ]


def test_a_review_model_of_other_prices_is_reported_at_its_own_prices(tmp_path):
    items = [stage_2_item(TOPIC, i, ("qwen/qwen3-32b",)) for i in range(4)]
    write_stage_2(tmp_path, TOPIC, items)
    with FakeProviderServer(thinking_tokens=4000) as server:
        result = run(
            server,
            tmp_path,
            "dataset_generation_stage_3.py",
            "--names",
            TOPIC,
            "--model",
            "claude-opus-5-5",
            "--review_model",
            "claude-sonnet-5-5",
            "--batch_size",
            "2",
            "--intervention_modification",
            "v1",
            *UNLIMITED,
        )
        calls = [entry for entry in server.paid if entry.completed]
        billed = server.cost(calls)
    assert result.returncode == 0, result.stderr[-2000:]
    records = interventions(tmp_path)
    assert len(records) == 16 and all(record["P"] in VALID for record in records)
    assert {entry.body["model"] for entry in calls} == {"claude-opus-5-5", "claude-sonnet-5-5"}
    reported = float(re.findall(r"cost \$([0-9.]+)", result.stdout)[-1])
    assert abs(reported - billed) <= 0.02 * billed, (reported, billed)
    generation = next(entry.body for entry in calls if entry.body["model"] == "claude-opus-5-5")
    assert generation["output_config"]["effort"] == "low"  # the lowest Opus 5.5 allows (it always thinks)
    review = next(entry.body for entry in calls if entry.body["model"] == "claude-sonnet-5-5")
    assert review["thinking"] == {"type": "between_tools"}  # Sonnet 5.5 can switch up-front thinking off


def test_a_current_openai_reasoning_model_writes_stage_1_and_answers_stage_2(tmp_path):
    with FakeProviderServer(thinking_tokens=4000) as server:
        first = run(
            server,
            tmp_path,
            "dataset_generation_stage_1.py",
            "--names",
            TOPIC,
            "--num_batches",
            "2",
            "--num_items_per_batch",
            "3",
            "--model",
            "gpt-6.2-sol",
            *UNLIMITED,
        )
        second = run(
            server,
            tmp_path,
            "dataset_generation_stage_2.py",
            "--names",
            TOPIC,
            "--inference",
            "openai",
            "--model",
            "gpt-6.2-sol",
            "--temperature",
            "0.7",
            *UNLIMITED,
        )
        calls = server.paid
    assert first.returncode == 0, first.stderr[-2000:]
    assert second.returncode == 0, second.stderr[-2000:]
    assert calls and all(entry.status == 200 for entry in calls)  # no request refused
    assert not any("temperature" in entry.body or "max_tokens" in entry.body for entry in calls)
    assert second.stderr.count("--temperature 0.7 is not sent") == 1
    items = [
        item
        for path in sorted((tmp_path / "stage_2" / TOPIC).glob("*.json"))
        for item in json.loads(path.read_text())["data"]
    ]
    assert len(items) == 6
    answers = [entry for item in items for entry in item["inferences"]["gpt-6.2-sol"].values()]
    assert len(answers) == sum(1 + bool(item.get("B")) for item in items)
    assert all(entry["S"] and entry["finish_reason"] == "stop" and entry["temperature"] is None for entry in answers)


def test_stage_3_dry_run_says_which_thinking_it_chose(tmp_path):
    write_stage_2(tmp_path, TOPIC, [stage_2_item(TOPIC, 0, ("qwen/qwen3-32b",))])
    with FakeProviderServer() as server:
        lowest = run(
            server,
            tmp_path,
            "dataset_generation_stage_3.py",
            "--names",
            TOPIC,
            "--model",
            "claude-opus-5-5",
            "--intervention_modification",
            "v1",
            "--dry_run",
        )
        asked = run(
            server,
            tmp_path,
            "dataset_generation_stage_3.py",
            "--names",
            TOPIC,
            "--model",
            "claude-opus-5-5",
            "--intervention_modification",
            "v1",
            "--dry_run",
            "--effort",
            "high",
        )
        assert server.ledger == []
    assert lowest.returncode == 0 and asked.returncode == 0, lowest.stderr + asked.stderr
    assert (
        "thinking: effort low (the lowest setting the model allows); max_tokens 8,544 = answer 4,448 + "
        "thinking 4,096" in lowest.stdout
    )  # 4,096: the registry's room at effort low
    assert "thinking: effort high (as --effort / --thinking_budget ask)" in asked.stdout


def test_stage_2_stores_a_claude_targets_thinking_when_asked(tmp_path):
    with FakeProviderServer(thinking_tokens=500) as server:
        first = run(
            server,
            tmp_path,
            "dataset_generation_stage_1.py",
            "--names",
            TOPIC,
            "--num_batches",
            "1",
            "--num_items_per_batch",
            "2",
            "--model",
            "claude-opus-5-5",
            *UNLIMITED,
        )
        before = len(server.paid)
        result = run(
            server,
            tmp_path,
            "dataset_generation_stage_2.py",
            "--names",
            TOPIC,
            "--inference",
            "openrouter",
            "--model",
            "anthropic/claude-sonnet-5.5",
            "--enable_thinking",
            *UNLIMITED,
        )
        bodies = [entry.body for entry in server.paid[before:]]
    assert first.returncode == 0 and result.returncode == 0, first.stderr[-1000:] + result.stderr[-1000:]
    assert bodies and all(body["reasoning"] == {"enabled": True} for body in bodies)
    stored = [
        entry
        for path in (tmp_path / "stage_2" / TOPIC).glob("*.json")
        for item in json.loads(path.read_text())["data"]
        for entry in item["inferences"]["anthropic/claude-sonnet-5.5"].values()
    ]
    assert stored and all(entry["thinking"] and entry["S"] for entry in stored)


def test_the_judges_state_their_answer_budget_and_get_the_thinking_room_once():
    registry = default_registry()
    info = registry.lookup("claude-sonnet-5-5", "anthropic")  # the judges' default model: thinks at high
    case = JudgeCase("sycophancy_1", 0, "qwen/qwen3-32b", stage_2_item(TOPIC, 0), {"A": ["a"] * 3, "B": ["b"] * 3})
    sample = {
        "topic": TOPIC,
        "system_prompt": "A",
        "T": "T",
        "S": "S",
        "I": "I",
        "R": "R",
        "P": "PASS",
        "id_string": "x",
    }
    for request, answer in (
        (judge_request(info.model, TOPIC, case), JUDGE_TOKENS_BASE + 6 * JUDGE_TOKENS_PER_ANSWER),
        (eligibility_request(info.model, sample), JUDGE_MAX_TOKENS),
    ):
        sent = thinking.resolve(request, info, registry.thinking_allowance)
        assert request.thinking == "default" and request.max_tokens == answer < 4096
        assert sent.max_tokens == answer + registry.thinking_allowance["high"]
