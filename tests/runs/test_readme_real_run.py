"""The README's real-run block ("Real runs with API keys") works as written (issue 22 §5): parsed from
README.md and run in order, offline, with HF_HUB_OFFLINE=1.

What the test changes, and only that: the API calls go to the mock provider (stage 1 and 3 get
`--provider mock --model mock-generator`, stage 2 `--inference mock` under the same model id, so
the answers land under the key the default config exports); stage 1 makes 24 samples of one
topic instead of 300 of every topic; the export and the training read the default config with
the demo's filters and training sizes (the mock's random answers trip every other filter, and a
tiny random model stands for base_model), and the training stops after one step. The dry run's
estimate is real: `--max_cost` must exceed it.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from repo import REPO_ROOT

from spt.training.tiny_model import build_tiny_model
from spt.utils import CONFIG_DIR

DEMO_KEYS = (
    "tags_to_filter",
    "seq_len",
    "batch_size",
    "micro_batch_size",
    "epochs",
    "lora_r",
    "lora_alpha",
    "lr",
    "log_every",
    "checkpoints_per_epoch",
    "validation_review_samples",
    "validation_review_max_new_tokens",
)


def real_run_block() -> list[str]:
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("## Real runs with API keys", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]


def test_the_block_activates_the_venv_first_and_its_cost_limit_covers_the_dry_run(tmp_path):
    lines = real_run_block()
    assert "source .venv/bin/activate" in lines[0]
    dry_run = next(line for line in lines if "--dry_run" in line)
    limited = next(line for line in lines if "--max_cost" in line)
    result = subprocess.run(
        [sys.executable, *shlex.split(dry_run)[1:]],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "SPT_DATA_DIR": str(tmp_path)},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    estimate = float(re.search(r"estimated cost: \$([\d,.]+) without caching", result.stdout).group(1).replace(",", ""))
    max_cost = float(shlex.split(limited)[shlex.split(limited).index("--max_cost") + 1])
    assert max_cost > estimate, (max_cost, estimate)


def offline_command(line: str, config: Path, model_dir: Path, output_dir: Path) -> list[str] | None:
    words = shlex.split(line)
    if words[0] in ("make", "cp") or "--dry_run" in words:
        return None
    if words[:2] == ["accelerate", "launch"]:
        return [
            sys.executable,
            "-m",
            "accelerate.commands.launch",
            *words[2:],
            "--config",
            str(config),
            "--set",
            f"base_model={model_dir}",
            "--set",
            f"output_dir={output_dir}",
            "--max_steps",
            "1",
        ]
    assert words[0] == "python", line
    command = [sys.executable, *words[1:]]
    script = Path(words[1]).name
    if script == "dataset_generation_stage_1.py":
        command[command.index("--names") + 1] = "sycophancy"
        command[command.index("--target_items") + 1] = "24"
        command += ["--provider", "mock", "--model", "mock-generator"]
    elif script == "dataset_generation_stage_2.py":
        command[command.index("--inference") + 1] = "mock"
    elif script == "dataset_generation_stage_3.py":
        command += ["--provider", "mock", "--model", "mock-generator"]
    elif script == "export_training_data.py":
        command += ["--config", str(config)]
    return command


def test_the_real_run_block_runs_as_written_offline(tmp_path):
    config = json.loads((CONFIG_DIR / "training_config.json").read_text())
    demo = json.loads((CONFIG_DIR / "demo_training_config.json").read_text())
    config.update({key: demo[key] for key in DEMO_KEYS})
    config_path = tmp_path / "training_config.json"
    config_path.write_text(json.dumps(config))
    model_dir = build_tiny_model(tmp_path / "tiny_model", "llama3")
    data_dir, output_dir = tmp_path / "data", tmp_path / "checkpoints"
    env = {key: value for key, value in os.environ.items() if not key.endswith(("_BASE_URL", "_API_KEY"))}
    env.update(SPT_DATA_DIR=str(data_dir), HF_HUB_OFFLINE="1", TQDM_DISABLE="1", OMP_NUM_THREADS="1")
    for line in real_run_block():
        command = offline_command(line, config_path, model_dir, output_dir)
        if command is None:
            continue
        result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, env=env, timeout=600)
        assert result.returncode == 0, (line, result.stderr[-3000:])
        assert "Traceback" not in result.stderr, line
    stats = json.loads((data_dir / "training_export" / "export_stats.json").read_text())
    assert stats["splits"]["train"]["samples"] > 0
    assert (output_dir / "step_1" / "training_state.json").is_file()


def test_accelerate_launch_offline_without_the_model_is_the_projects_one_line(tmp_path):
    launch = next(line for line in real_run_block() if line.startswith("accelerate launch"))
    env = {**os.environ, "SPT_DATA_DIR": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "accelerate.commands.launch",
            *shlex.split(launch)[2:],
            "--set",
            "base_model=no-such-org/no-such-model",
            "--set",
            f"output_dir={tmp_path / 'out'}",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "error: config key base_model no-such-org/no-such-model: not in the local Hugging Face cache, and "
        "HF_HUB_OFFLINE is set; download it first (hf download <id>) or give a model folder"
    )
