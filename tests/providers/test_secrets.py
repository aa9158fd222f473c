"""API keys never reach an output file, the response cache, a log line or an error message,
even when the provider fails: the API stages run end to end against the fake server with
distinctive keys, some requests answered with errors, and every byte they leave behind is searched."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from repo import REPO_ROOT

KEYS = {
    "ANTHROPIC_API_KEY": "sk-ant-SECRET-3b9f1c7e",
    "OPENAI_API_KEY": "sk-oai-SECRET-88d2a4f0",
    "OPENROUTER_API_KEY": "sk-or-SECRET-51c0e9aa",
}


def run(script: str, data_dir: Path, server, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **server.env(), **KEYS, "SPT_DATA_DIR": str(data_dir)}
    return subprocess.run(
        [sys.executable, f"scripts/{script}", *args, "--itpm", "0", "--otpm", "0"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def leaked(data_dir: Path, *outputs: str) -> list[str]:
    places = [f"output {i}" for i, text in enumerate(outputs) if any(key in text for key in KEYS.values())]
    for path in data_dir.rglob("*"):
        if path.is_file() and any(key.encode() in path.read_bytes() for key in KEYS.values()):
            places.append(str(path.relative_to(data_dir)))
    return places


@pytest.mark.slow
def test_keys_appear_in_no_file_cache_log_or_error(fake_server, tmp_path):
    calls = {"n": 0}

    def every_third_fails(api, body):
        calls["n"] += 1
        if calls["n"] % 3 == 0:
            return {"status": 400 if calls["n"] % 2 else 500}  # fail-fast and retried errors
        return None

    fake_server.script(every_third_fails)
    stage_1 = run(
        "dataset_generation_stage_1.py",
        tmp_path,
        fake_server,
        "--names",
        "sycophancy",
        "--num_batches",
        "3",
        "--num_items_per_batch",
        "3",
        "--verbose",
    )
    stage_2 = run(
        "dataset_generation_stage_2.py",
        tmp_path,
        fake_server,
        "--names",
        "all",
        "--inference",
        "openrouter",
        "--model",
        "qwen/qwen3-32b",
        "--verbose",
    )
    assert (tmp_path / "stage_1" / "sycophancy").is_dir(), stage_1.stderr
    assert stage_1.returncode in (0, 1) and stage_2.returncode in (0, 1), stage_1.stderr + stage_2.stderr
    assert "400" in stage_1.stderr + stage_1.stdout + stage_2.stderr + stage_2.stdout  # errors were reported
    assert (tmp_path / ".response_cache").is_dir()
    assert leaked(tmp_path, stage_1.stdout, stage_1.stderr, stage_2.stdout, stage_2.stderr) == []
