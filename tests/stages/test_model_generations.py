"""Stages 1 -> 2 -> 3 end to end against the fake provider server (today's rules per model), over
the model generations the registry shapes differently: a Claude 5.5 pair (structured output, always-on
thinking), a 2025 Claude model (forced tool), an OpenAI reasoning model and an OpenRouter model. No
test scripts an answer: the fake answers as a cooperative model, so what is checked is that every
request is accepted, every item is valid and the prompt cache is read. Also: the retired-model
preflight and the dry-run bodies."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fake_provider import FakeProviderServer
from repo import REPO_ROOT

import spt.stage_1.validation as stage_1_validation

UNLIMITED = ("--rpm", "0", "--itpm", "0", "--otpm", "0")
TOPIC = "sycophancy"
# (stage-1 model, stage-3 model, what the stage-1 body must carry)
GENERATIONS = {
    "claude-5.5": ("claude-opus-5-5", "claude-sonnet-5-5", "output_config"),
    "claude-2025": ("claude-haiku-4-5", "claude-haiku-4-5", "tool_choice"),
    "openai-reasoning": ("gpt-6.2-sol", "gpt-6.2-sol", "response_format"),
    "openrouter": ("qwen/qwen3-32b", "qwen/qwen3-32b", "tool_choice"),
}


def run(server: FakeProviderServer, data_dir: Path, script: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **server.env(), "SPT_DATA_DIR": str(data_dir)}
    return subprocess.run(
        [sys.executable, f"scripts/{script}", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def stage_files(data_dir: Path, stage: str) -> list[Path]:
    return sorted((data_dir / stage / TOPIC).glob("batch_*.json"))


@pytest.mark.parametrize("generation", GENERATIONS)
def test_stages_1_to_3_on_each_model_generation(tmp_path, generation):
    stage_1_model, stage_3_model, marker = GENERATIONS[generation]
    with FakeProviderServer(seed=3) as server:
        first = run(
            server,
            tmp_path,
            "dataset_generation_stage_1.py",
            "--names",
            TOPIC,
            "--num_batches",
            "2",
            "--num_items_per_batch",
            "4",
            "--model",
            stage_1_model,
            *UNLIMITED,
        )
        assert first.returncode == 0, first.stderr[-2000:]
        second = run(
            server,
            tmp_path,
            "dataset_generation_stage_2.py",
            "--names",
            TOPIC,
            "--inference",
            "mock",
            "--model",
            "demo/target-model",
        )
        assert second.returncode == 0, second.stderr[-2000:]
        third = run(
            server,
            tmp_path,
            "dataset_generation_stage_3.py",
            "--names",
            TOPIC,
            "--model",
            stage_3_model,
            "--batch_size",
            "4",
            "--intervention_modification",
            "generations",
            *UNLIMITED,
        )
        assert third.returncode == 0, third.stderr[-2000:]
        calls = server.paid

    assert calls and all(entry.status == 200 for entry in calls), [
        (entry.status, entry.path) for entry in calls if entry.status != 200
    ]  # every request accepted
    stage_1_bodies = [entry.body for entry in calls if entry.body["model"] == stage_1_model][:1]
    assert marker in stage_1_bodies[0]
    samples = [item for path in stage_files(tmp_path, "stage_1") for item in json.loads(path.read_text())["data"]]
    assert len(samples) == 8
    for path in stage_files(tmp_path, "stage_1"):
        assert stage_1_validation.file_problems(json.loads(path.read_text()), TOPIC) == []
    interventions = [
        intervention
        for path in stage_files(tmp_path, "stage_3")
        for item in json.loads(path.read_text())["data"]
        for variant in item["inferences"]["demo/target-model"].values()
        for intervention in variant["interventions"].values()
    ]
    assert len(interventions) == 2 * sum(1 + bool(sample.get("B")) for sample in samples)  # both families
    assert all(intervention["P"] in ("PASS", "FAIL", "AMBIGUOUS") for intervention in interventions)
    assert all(intervention["model_used"] == stage_3_model for intervention in interventions)
    if not generation.startswith("openrouter"):  # OpenRouter's upstream caching is not modelled
        assert sum(entry.usage.get("cache_read_input_tokens", 0) for entry in calls if entry.usage) > 0


def test_a_retired_model_stops_before_spending_with_one_line(tmp_path):
    with FakeProviderServer() as server:
        result = run(server, tmp_path, "dataset_generation_stage_1.py", "--names", TOPIC, "--model", "claude-opus-4-1")
        assert server.paid == []
        lookups = [entry.path for entry in server.ledger if entry.api == "model_lookup"]
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: claude-opus-4-1 is retired (404 from the API); current models: ")
    assert "claude-opus-5-5" in lines[-1] and "Traceback" not in result.stderr
    assert lookups == ["/v1/models/claude-opus-4-1"]
    assert not list((tmp_path / "stage_1").glob("**/*.json"))  # only the run lock of the topic may exist


@pytest.mark.parametrize("generation", GENERATIONS)
def test_dry_run_shows_the_body_each_model_receives(tmp_path, generation):
    model, _, marker = GENERATIONS[generation]
    with FakeProviderServer() as server:
        result = run(
            server, tmp_path, "dataset_generation_stage_1.py", "--names", TOPIC, "--model", model, "--dry-run-full"
        )
        assert server.ledger == []  # nothing called, not even a lookup
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout.split("\nfirst stage-1 generation request (", 1)[1].split(":\n", 1)[1])
    assert marker in body and body["model"] == model
    if marker == "output_config":
        assert "minItems" not in json.dumps(body) and "tools" not in body
    if model.startswith("qwen/"):
        assert body["provider"] == {"require_parameters": True}
    if model == "gpt-6.2-sol":
        assert "max_completion_tokens" in body and "temperature" not in body
