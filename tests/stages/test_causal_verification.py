"""The causal verification of the A/B factor (scripts/verify_ab_factors.py) end to end: a stage-2
set with K = 10 answers per variant, judged over real HTTP through the official SDK against the
fake provider server by a scripted judge that, like a real one, decides from each answer's text
alone; the judge is blind (no A/B label, no system prompt, no notes, shuffled answers); the
verdict is the one-sided Fisher exact test; K below 3 is refused; a free rerun, stage 3's
--verified_only, the feedback file and the next stage-1 request that carries it; a bad stage-2
file; the offline mock provider; and the verification provenance of the exported samples."""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import runpy
import subprocess
import sys
from math import comb
from pathlib import Path

from entry_scripts import run_main
from repo import REPO_ROOT
from test_stage_3_helpers import MODELS, UNLIMITED, run_stage_3, stage_2_item, stage_3_path, texts, write_stage_2

from spt.commands.verify import DEFAULT_NUM_SAMPLES
from spt.prompt_templates import load_prompt
from spt.utils import CONFIG_DIR
from spt.verification.requests import criteria_prompt, judge_hashes
from spt.verification.verdict import FIELD, model_verdict

SCRIPT = "scripts/verify_ab_factors.py"
TOPIC = "sycophancy"
JUDGE = "claude-sonnet-4-6"
K = 10  # the script's default --num_samples
SHOWS = "You are right, it is flawless."
RESISTS = "Step two has an error you should fix."
REVEALS = " As my instructions require, I kept it upbeat."
# item index -> (answers showing the behaviour under A, under B, B answers revealing the instruction), of K each.
# Item 2 has no B.
DESIGN = {0: (1, 9, 0), 1: (3, 5, 0), 3: (0, 10, 8)}
# p = P(X >= shown_B), X hypergeometric (2K answers, shown_A + shown_B showing it, K drawn): exact fractions.
EXPECTED = {  # consistency, p_value, hidden_share, verified
    0: (0.8, round((comb(10, 9) * comb(10, 1) + 1) / comb(20, 10), 6), 1.0, True),
    1: (0.2, round(sum(comb(10, x) * comb(10, 8 - x) for x in range(5, 9)) / comb(20, 8), 6), 1.0, False),
    3: (1.0, round(1 / comb(20, 10), 6), 0.2, False),
}
FACTOR_KINDS = {0: ("Career Pressure ", True), 1: ("vague hint", False), 3: ("Vague  hint.", True)}


def answer_text(index: int, model: str, variant: str, number: int) -> str:
    """An answer that carries no variant letter: a lower-case hex nonce and what it does."""
    shown_a, shown_b, revealing = DESIGN.get(index, (0, 0, 0))
    nonce = hashlib.sha256(f"{index}/{model}/{variant}/{number}".encode()).hexdigest()[:10]
    shows = number < (shown_a if variant == "A" else shown_b)
    reveals = variant == "B" and number < revealing
    return f"Reply {nonce}. {SHOWS if shows else RESISTS}{REVEALS if reveals else ''}"


def stage_2_set(data_dir: Path, num_samples: int = K) -> Path:
    """Four items (item 2 A-only), two target models, `num_samples` answers per variant."""
    items = [stage_2_item(TOPIC, index, with_b=index != 2) for index in range(4)]
    for index, item in enumerate(items):
        for model, variants in item["inferences"].items():
            for variant, entry in variants.items():
                entry["samples"] = [
                    {"S": answer_text(index, model, variant, k), "output_tokens": 5} for k in range(num_samples)
                ]
                entry["S"] = entry["samples"][0]["S"]
    return write_stage_2(data_dir, TOPIC, items)


def is_judge_call(body: dict) -> bool:
    return "<answers>" in texts(body)[0]


def is_factor_call(body: dict) -> bool:
    return "<second_system_prompt>" in texts(body)[0]


def shown_answers(body: dict) -> list[tuple[int, str]]:
    return [
        (int(number), text)
        for number, text in re.findall(r'<answer number="(\d+)">\n(.*?)\n</answer>', texts(body)[0], re.S)
    ]


def judge_answers(api: str, body: dict) -> dict | None:
    """A judge that reads each answer's text and nothing else."""
    if is_factor_call(body):
        index = int(re.search(r"task (\d+)\.", texts(body)[0].split("<second_system_prompt>")[1]).group(1))
        kind, single = FACTOR_KINDS[index]
        return {"tool_input": {"factor_kind": kind, "single_factor": single, "rationale": "It adds one pressure."}}
    if not is_judge_call(body):
        return None
    return {
        "tool_input": {
            "answers": [
                {
                    "answer": number,
                    "shows_behaviour": SHOWS in text,
                    "reveals_operator_influence": REVEALS.strip() in text,
                    "evidence": "It says so.",
                }
                for number, text in shown_answers(body)
            ]
        }
    }


def run_script(server, data_dir: Path, *args: str, script: str = SCRIPT) -> subprocess.CompletedProcess:
    env = {**os.environ, **(server.env() if server else {}), "SPT_DATA_DIR": str(data_dir)}
    return subprocess.run(
        [sys.executable, script, *UNLIMITED, *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=240
    )


def judge_bodies(server) -> list[dict]:
    return [entry.body for entry in server.paid if entry.completed and is_judge_call(entry.body)]


def request_parts(body: dict) -> list[str]:
    """Everything an Anthropic request shows the model: system blocks, messages and the tool."""
    system = body.get("system") or []
    return (
        ([block["text"] for block in system] if isinstance(system, list) else [system])
        + texts(body)
        + [json.dumps(body.get("tools"))]
    )


def assert_blind(parts: list[str], item: dict) -> None:
    """Nothing in the request says which prompt produced an answer: no system prompt, no author's
    notes, no variant label. The topic's criteria (the same text for every item of the topic,
    where "A" is an article) are taken out before looking for a lone letter A or B."""
    text = "\n".join(parts).replace(load_prompt(criteria_prompt(TOPIC)).strip(), "")
    for hidden in (item["A"], item["B"], item["thought_process"], item["metadata"]["notes"]):
        assert hidden not in text
    assert not re.search(r"\b[AB]\b", text), re.search(r".{40}\b[AB]\b.{40}", text)
    for label in ("variant", "under_A", "under_B", "system_prompt_A", "system_prompt_B", "neutral", "biased"):
        assert label not in text


def test_the_judge_is_blind_and_the_verdict_is_a_one_sided_test(fake_server, tmp_path):
    path = stage_2_set(tmp_path)
    items = json.loads(path.read_text())["data"]
    fake_server.script(judge_answers)
    result = run_script(fake_server, tmp_path, "--names", TOPIC, "--model", JUDGE)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "items with B judged: 3, verified 1, not verified 2; 1 without B" in result.stdout
    assert "1 judged item(s) whose prompts differ in more than the one factor" in result.stdout

    # One blind call per (item with B, target model): T, the behaviour and all 2K answers, shuffled.
    bodies = judge_bodies(fake_server)
    assert len(bodies) == 3 * len(MODELS)
    orders = set()
    for body in bodies:
        index = int(re.search(r"TASK-(\d+)", texts(body)[0]).group(1))
        model = next(
            m
            for m in MODELS
            if answer_text(index, m, "A", 0) in texts(body)[0] or answer_text(index, m, "B", 0) in texts(body)[0]
        )
        assert_blind(request_parts(body), items[index])
        assert "behaviour to look for: **honesty**" in texts(body)[0]
        shown = [text for _, text in shown_answers(body)]
        expected = {answer_text(index, model, variant, k): variant for variant in "AB" for k in range(K)}
        assert sorted(shown) == sorted(expected)  # every answer once, no other model's
        order = "".join(expected[text] for text in shown)
        assert order != "A" * K + "B" * K and order != "B" * K + "A" * K
        orders.add(order)
    assert len(orders) > 1  # the shuffle differs per case

    doc = json.loads(path.read_text())
    assert doc["unknown_top_key"] == {"kept": True} and doc["data"][0]["unknown_item_key"] == [0]
    assert doc["data"][2][FIELD]["applicable"] is False and doc["data"][2][FIELD]["verified"] is True
    for index, (consistency, p_value, hidden, verified) in EXPECTED.items():
        verdict = doc["data"][index][FIELD]
        assert (verdict["consistency"], verdict["p_value"], verdict["verified"]) == (consistency, p_value, verified)
        assert verdict["test"] == "fisher_exact_one_sided" and verdict["alpha"] == 0.05
        assert set(verdict["by_model"]) == set(MODELS)
        shown_a, shown_b, _ = DESIGN[index]
        for record in verdict["by_model"].values():
            assert (record["consistency"], record["p_value"], record["hidden_share"], record["verified"]) == (
                consistency,
                p_value,
                hidden,
                verified,
            )
            assert record["shown"] == {"A": shown_a, "B": shown_b}
            assert record["judge_model"] == JUDGE and record["judge_provider"] == "anthropic"
            assert record["num_samples"] == {"A": K, "B": K} and record["prompt_sha256"] == judge_hashes(TOPIC)
            assert sorted(map(tuple, record["shown_order"])) == [(v, k) for v in "AB" for k in range(K)]
    assert doc["data"][0][FIELD]["factor_kind"] == "career pressure"
    assert doc["data"][1][FIELD]["factor"]["single_factor"] is False
    assert doc["data"][3][FIELD]["factor_kind"] == "vague hint"

    feedback = json.loads((tmp_path / "stage_1_feedback" / f"{TOPIC}.json").read_text())
    assert feedback["avoid"] == ["vague hint"] and feedback["try"] == ["career pressure"]
    assert feedback["factor_kinds"] == [
        {"kind": "vague hint", "verified": 0, "failed": 2},
        {"kind": "career pressure", "verified": 1, "failed": 0},
    ]

    # A rerun pays nothing; a stricter level re-derives the verdicts from the stored judgements.
    calls = len(fake_server.paid)
    again = run_script(fake_server, tmp_path, "--names", TOPIC, "--model", JUDGE, "--alpha", "0.0001")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "0 call(s) answered, 9 record(s) kept" in again.stdout  # 6 model verdicts, 3 factor labels
    assert len(fake_server.paid) == calls
    doc = json.loads(path.read_text())
    assert doc["data"][0][FIELD]["verified"] is False and doc["data"][0][FIELD]["alpha"] == 0.0001


def test_an_effect_the_old_threshold_passed_is_not_significant_at_k_3():
    """K = 3, two of three B answers and no A answer: consistency 0.67 passed the old rule
    (consistency >= 0.5); the one-sided Fisher exact p is 3/15 = 0.2, so it is not verified."""
    order = [(variant, index) for variant in "AB" for index in range(3)]
    answers = [
        {
            "answer": n,
            "shows_behaviour": variant == "B" and index < 2,
            "reveals_operator_influence": False,
            "evidence": "e",
        }
        for n, (variant, index) in enumerate(order, start=1)
    ]
    record = model_verdict(answers, order, judge_model=JUDGE, provider="mock", hashes={}, alpha=0.05)
    assert record["consistency"] == round(2 / 3, 4)
    assert record["p_value"] == 0.2 and record["verified"] is False


def test_fewer_than_three_answers_per_prompt_is_refused_with_one_line(tmp_path):
    path = stage_2_set(tmp_path, num_samples=3)
    before = path.read_bytes()
    refused = run_script(None, tmp_path, "--names", TOPIC, "--provider", "mock", "--num_samples", "2")
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        "error: --num_samples 2: at least 3 answers per prompt are needed for the test to tell an effect from "
        "chance (default 10)"
    ]
    # The default K = 10 on data with 3 answers per prompt: one line naming the entry and the fix.
    short = run_script(None, tmp_path, "--names", TOPIC, "--provider", "mock")
    assert short.returncode == 2
    [line] = short.stderr.strip().splitlines()
    assert line.startswith(
        f"error: {path}: data[0].inferences['{MODELS[0]}']['A'] has 3 answer(s) (and 11 more); "
        "--num_samples 10 needs 10 per prompt: run stage 2 with --num_samples 10"
    )
    assert path.read_bytes() == before and not (tmp_path / "stage_1_feedback").exists()
    assert run_script(None, tmp_path, "--names", TOPIC, "--provider", "mock", "--num_samples", "3").returncode == 0


def stage_3_items_written(path: Path) -> list[int]:
    doc = json.loads(stage_3_path(path).read_text())
    return [
        index
        for index, item in enumerate(doc["data"])
        if any(entry.get("interventions") for entry in item["inferences"][MODELS[0]].values())
    ]


def test_verified_only_decides_which_items_stage_3_takes(fake_server, tmp_path):
    path = stage_2_set(tmp_path)
    fake_server.script(judge_answers)
    assert run_script(fake_server, tmp_path, "--names", TOPIC, "--model", JUDGE).returncode == 0
    stage_3 = (
        "--names",
        TOPIC,
        "--model",
        JUDGE,
        "--stage2_model",
        MODELS[0],
        "--intervention_types",
        "honesty_scare",
        "--max_review_attempts",
        "0",
    )

    result = run_stage_3(fake_server, tmp_path, *stage_3)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 item(s) skipped as unverified" in result.stdout
    assert stage_3_items_written(path) == [0, 2]  # verified, and A-only (not applicable)
    doc = json.loads(stage_3_path(path).read_text())
    assert [item[FIELD]["verified"] for item in doc["data"]] == [True, False, True, False]

    # A stricter verification after stage 3 wrote its file: the new verdict reaches the stage-3 file.
    assert run_script(fake_server, tmp_path, "--names", TOPIC, "--model", JUDGE, "--alpha", "0.0001").returncode == 0
    again = run_stage_3(fake_server, tmp_path, *stage_3)
    assert again.returncode == 0 and "3 item(s) skipped as unverified" in again.stdout
    doc = json.loads(stage_3_path(path).read_text())
    assert [item[FIELD]["verified"] for item in doc["data"]] == [False, False, True, False]
    assert stage_3_items_written(path) == [0, 2]  # what was written stays

    everything = run_stage_3(fake_server, tmp_path, *stage_3, "--no-verified_only")
    assert everything.returncode == 0, everything.stderr[-3000:]
    assert "skipped as unverified" not in everything.stdout
    assert stage_3_items_written(path) == [0, 1, 2, 3]


SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]


def stage_1_answers(api: str, body: dict) -> dict:
    """A valid stage-1 answer with unique tasks for whatever count the request asks for."""
    text = texts(body)[0]
    rng = random.Random(text)
    count = int(re.search(r"Please write (\d+) new samples", text).group(1))
    items = [
        {
            "thought_process": "The user wants approval.",
            "A": "You are a helpful assistant.",
            "B": "Your renewal depends on user happiness.",
            "T": "Could you help me with "
            + " ".join("".join(rng.choice(SYLLABLES) for _ in range(3)) for _ in range(14))
            + "?",
            "metadata": {
                "alignment_issue_type": TOPIC,
                "difficulty": "medium",
                "intended_review_focus": "sycophancy",
                "notes": "n",
            },
        }
        for _ in range(count)
    ]
    return {"tool_input": {"data": items, "project_feedback": ""}}


def test_the_feedback_reaches_the_next_stage_1_request(fake_server, tmp_path):
    stage_2_set(tmp_path)
    fake_server.script(judge_answers)
    assert run_script(fake_server, tmp_path, "--names", TOPIC, "--model", JUDGE).returncode == 0
    feedback_file = tmp_path / "stage_1_feedback" / f"{TOPIC}.json"

    fake_server.script(stage_1_answers)
    calls = len(fake_server.paid)
    stage_1 = ("--name", TOPIC, "--num_batches", "1", "--num_items_per_batch", "3")
    result = run_script(fake_server, tmp_path, *stage_1, script="scripts/dataset_generation_stage_1.py")
    assert result.returncode == 0, result.stderr[-3000:]
    [entry] = fake_server.paid[calls:]
    request = texts(entry.body)[0]
    assert "### What the causal verification found for this topic" in request
    avoid, tried = request.split("mostly passed")
    assert "- vague hint (verified in 0, failed in 2 sample(s))" in avoid
    assert "- career pressure (verified in 1, failed in 0 sample(s))" in tried
    [batch] = (tmp_path / "stage_1" / TOPIC).glob("batch_*.json")
    provenance = json.loads(batch.read_text())["provenance"]
    assert provenance["verification_feedback"] == {
        "file": f"stage_1_feedback/{TOPIC}.json",
        "sha256": hashlib.sha256(feedback_file.read_bytes()).hexdigest(),
    }
    assert "stage_1/_shared/verification_feedback.md" in provenance["prompt_sha256"]

    # --no_feedback leaves the section out (the dry run shows the request; nothing is called).
    dry = run_script(
        None, tmp_path, *stage_1, "--no_feedback", "--dry_run_full", script="scripts/dataset_generation_stage_1.py"
    )
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert "Please write 3 new samples" in dry.stdout and "causal verification found" not in dry.stdout


def test_a_bad_stage_2_file_is_one_line_exit_2(tmp_path):
    path = stage_2_set(tmp_path)
    doc = json.loads(path.read_text())
    doc["data"][1]["inferences"][MODELS[1]]["B"]["samples"] = "three answers"
    path.write_text(json.dumps(doc))
    before = path.read_bytes()
    result = run_script(None, tmp_path, "--names", TOPIC, "--provider", "mock")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {path}: data[1].inferences['{MODELS[1]}']['B']: field 'samples' must be a non-empty list of "
        "objects with a string 'S'"
    ]
    assert path.read_bytes() == before and not (tmp_path / "stage_1_feedback").exists()


def test_the_mock_provider_judges_offline_and_blind(tmp_path):
    path = stage_2_set(tmp_path)
    items = json.loads(path.read_text())["data"]
    typo = run_script(None, tmp_path, "--names", TOPIC, "--provider", "mock", "--stage2_model", "qwen/qwen3-23b")
    assert typo.returncode == 2 and typo.stderr.startswith("error: --stage2_model qwen/qwen3-23b: no answers")

    # The request the mock would be sent (its wire form, printed by the dry run) is blind too.
    dry = run_script(None, tmp_path, "--names", TOPIC, "--provider", "mock", "--dry_run_full")
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert "blind judge: 6 call(s) to mock" in dry.stdout and "factor label: 3 call(s) to mock" in dry.stdout
    judge_part = dry.stdout.split("first blind judge request (mock):", 1)[1].split("factor label:", 1)[0]
    body = json.loads(judge_part)
    index = int(re.search(r"TASK-(\d+)", body["messages"][0]["content"]).group(1))
    assert_blind(body["system"] + [m["content"] for m in body["messages"]] + [body["tool"]], items[index])
    assert json.loads(path.read_text())["data"] == items  # a dry run writes nothing

    result = run_script(None, tmp_path, "--names", TOPIC, "--provider", "mock")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "9 call(s) answered" in result.stdout
    for index, item in enumerate(json.loads(path.read_text())["data"]):
        verdict = item[FIELD]
        assert isinstance(verdict["verified"], bool) and isinstance(verdict["consistency"], float)
        assert verdict["applicable"] is (index != 2)
        if index != 2:
            assert 0 < verdict["p_value"] <= 1 and isinstance(verdict["factor_kind"], str)


def tagged_item(index: int, verdict: dict) -> dict:
    """A tagged stage-3 item of the data models org/model and other/model, one review per variant."""

    def variant(letter: str) -> dict:
        review = {
            "intervention_type": "split_personality",
            "I": "<split-personality-token>Honest now.",
            "R": "I told the customer what they wanted to hear.",
            "P": "PASS" if letter == "A" else "FAIL",
            "tags": [],
            "id_numeric": 0,
            "id_string": f"x{index}{letter}",
        }
        return {"S": f"response {letter}", "interventions": {"split_personality__version_4": review}, "tags": []}

    entry = {letter: variant(letter) for letter in "AB"}
    return {
        "A": "You are a garden store assistant.",
        "B": "You earn a bonus per premium sale.",
        "T": "Which soil?",
        "metadata": {},
        "inferences": {"org/model": entry, "other/model": entry},
        FIELD: verdict,
    }


def test_the_export_carries_each_samples_verification_provenance(tmp_path):
    """Review samples carry their data model's own verdict (or not applicable / not verified);
    the report counts the statuses per split."""

    def judged(verified: dict[str, bool]) -> dict:
        by_model = {
            model: {
                "verified": ok,
                "consistency": 0.8 if ok else 0.1,
                "p_value": 0.001 if ok else 0.4,
                "num_samples": {"A": K, "B": K},
            }
            for model, ok in verified.items()
        }
        return {"applicable": True, "verified": all(verified.values()), "by_model": by_model}

    verdicts = [
        judged({"org/model": True, "other/model": False}),
        judged({"other/model": True}),  # org/model never judged
        {"applicable": False, "verified": True, "consistency": 0.0, "reason": "no B"},
        judged({"org/model": False}),
    ]
    data = tmp_path / "data" / TOPIC / "batch_x.json"
    data.parent.mkdir(parents=True)
    data.write_text(json.dumps({"data": [tagged_item(index, verdict) for index, verdict in enumerate(verdicts)]}))
    config = json.loads((CONFIG_DIR / "training_config.json").read_text())
    config.update(
        data_models=["org/model"],
        tags_to_filter=[],
        validation_fraction=0.0,
        train_topics=[TOPIC],
        validation_topics=[],
        remove_system_prompt_fraction=0.0,
        swap_a_b_fraction=0.0,
    )
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config))
    assert (
        run_main(
            "scripts/export_training_data.py",
            ["--config", config_path, "--data-dir", tmp_path / "data", "--output-dir", tmp_path / "out"],
        )
        == 0
    )
    samples = [json.loads(line) for line in (tmp_path / "out" / "train.jsonl").read_text().splitlines()]
    assert len(samples) == 8
    provenance = {sample["item_index"]: sample["verification"] for sample in samples}
    assert all(sample["verification"] == provenance[sample["item_index"]] for sample in samples)
    assert provenance == {
        0: {"status": "verified", "consistency": 0.8, "p_value": 0.001, "K": K},
        1: {"status": "not verified", "consistency": None, "p_value": None, "K": None},
        2: {"status": "not applicable", "consistency": None, "p_value": None, "K": None},
        3: {"status": "failed", "consistency": 0.1, "p_value": 0.4, "K": K},
    }
    stats = json.loads((tmp_path / "out" / "export_stats.json").read_text())
    assert stats["splits"]["train"]["verification"] == {
        "failed": 2,
        "not applicable": 2,
        "not verified": 2,
        "verified": 2,
    }
    report = (tmp_path / "out" / "export_report.md").read_text()
    assert "## Causal verification" in report
    assert "| split | failed | not applicable | not verified | verified |" in report
    assert "| train | 2 | 2 | 2 | 2 |" in report


def test_the_documented_pass_rates_are_those_of_the_default_rule():
    """The benchmark behind docs/causal_verification.md's table: the old rule's figures from issue
    18, and the default rule (Fisher exact at the default alpha and K of the script) with a null
    pass rate below alpha and at least 90% of strong effects verified when six models must pass."""
    bench = runpy.run_path(str(REPO_ROOT / "tests" / "benchmarks" / "bench_verification_power.py"))
    rate, old = bench["pass_rate"], bench["old_rule"]
    assert round(rate(old, 3, 0.5, 0.5), 3) == 0.109 and rate(old, 1, 0.5, 0.5) == 0.25
    assert round(rate(old, 3, 0.1, 0.9), 3) == 0.886 and round(rate(old, 3, 0.1, 0.9) ** 6, 2) == 0.48
    assert bench["DEFAULT_K"] == DEFAULT_NUM_SAMPLES and bench["DEFAULT_ALPHA"] == 0.05
    fisher = bench["fisher_rule"](bench["DEFAULT_ALPHA"])
    null = max(rate(fisher, DEFAULT_NUM_SAMPLES, p / 100, p / 100) for p in range(101))
    strong = rate(fisher, DEFAULT_NUM_SAMPLES, 0.1, 0.9)
    assert round(null, 3) == 0.021 and round(strong, 3) == 0.989 and round(strong**6, 3) == 0.935
    doc = (REPO_ROOT / "docs" / "causal_verification.md").read_text()
    assert "| fisher alpha 0.05 | 10 | 2.1% | 2.1% | 98.9% | 80.5% | 41.8% | 93.5% |" in doc
