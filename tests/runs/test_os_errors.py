"""Every OS error is one line, and a full disk leaves a consistent state (issue 22).

The full disk is real: a 2 MB tmpfs, mounted when the tests run as root (CI's container does;
skipped elsewhere), filled to the last byte. The tagger, the analysis and the export each stop
with one line naming the path and the cause, and every file they wrote there before is
byte-identical. The other cases (a name too long, a folder that holds no model, a `.env` that is
not UTF-8, a providers.json with a wrong type, a full response cache) need no mount.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from repo import REPO_ROOT
from test_stage_2 import make_items, stage_2_command, stage_2_env, write_stage_1

from spt import utils
from spt.providers.response_cache import ResponseCache
from spt.utils import CONFIG_DIR

REFERENCE_FILE = (
    REPO_ROOT.parent
    / "shared"
    / "reference-data"
    / "stage_3_tagged"
    / "sycophancy"
    / "batch_sycophancy_20250822_192905_batch_002.json"
)
WAIT_S = 300


def one_error_line(result: subprocess.CompletedProcess, *fragments: str) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])
    return errors[0]


def script(path: str, *args, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, path, *map(str, args)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "TQDM_DISABLE": "1", **(env or {})},
        timeout=WAIT_S,
    )


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------- a full disk


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MB tmpfs at tmp_path/disk (root only; skipped where mounting is not permitted)."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=True)


def fill(disk: Path) -> None:
    """Write a file until the disk refuses the next byte."""
    with open(disk / "filler", "wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        except OSError:
            pass
    with pytest.raises(OSError):
        with open(disk / "filler", "ab") as handle:
            handle.write(b"\0" * 4096)
            handle.flush()


@pytest.mark.skipif(not REFERENCE_FILE.is_file(), reason="reference data not available")
def test_on_a_full_disk_tagger_analysis_and_export_stop_with_one_line_and_keep_what_was_there(tmp_path, small_disk):
    source = tmp_path / "stage_3" / "sycophancy"
    source.mkdir(parents=True)
    document = json.loads(REFERENCE_FILE.read_text())
    document["data"] = document["data"][:8]
    (source / REFERENCE_FILE.name).write_text(json.dumps(document))
    config = json.loads((CONFIG_DIR / "training_config.json").read_text())
    config.update(data_models=["qwen/qwen3-32b", "google/gemma-3-27b-it"], validation_fraction=0.3)
    (tmp_path / "config.json").write_text(json.dumps(config))
    tagged, analysis, export = small_disk / "tagged", small_disk / "analysis", small_disk / "export"
    env = {"SPT_DATA_DIR": str(tmp_path / "data")}
    commands = {
        "tagger": ("scripts/tag_stage_3_data.py", "--input", source.parent, "--output", tagged, "--jobs", "1"),
        "analysis": (
            "scripts/analyze_stage_3.py",
            "--data_dir",
            tagged,
            "--output_dir",
            analysis,
            "--no_plots",
            "--no_viewer",
        ),
        "export": (
            "scripts/export_training_data.py",
            "--config",
            tmp_path / "config.json",
            "--data_dir",
            tagged,
            "--output_dir",
            export,
            "--no_viewer",
        ),  # the viewers (docs/viewer.md) do not fit in 2 MB
    }
    for name, command in commands.items():
        result = script(*command, env=env)
        assert result.returncode == 0, (name, result.stderr)
    before = tree_bytes(small_disk)

    fill(small_disk)
    document["data"] = document["data"][:7]  # the tagger has a new file to write
    (source / REFERENCE_FILE.name).write_text(json.dumps(document))
    for name, command in commands.items():
        result = script(*command, "--seed", "3") if name == "export" else script(*command, env=env)
        assert result.returncode == 1, (name, result.returncode, result.stderr)
        one_error_line(result, "disk full (No space left on device)", "free space and rerun")
        after = tree_bytes(small_disk)
        del after["filler"]
        assert after == before, name
    assert not [path.name for path in small_disk.iterdir() if "-new-" in path.name or "-old-" in path.name]


def test_a_full_response_cache_disk_is_not_called_a_corrupt_cache(tmp_path, small_disk):
    cache = ResponseCache(small_disk / "cache")
    from spt.providers.types import LLMResponse, Usage

    fill(small_disk)
    response = LLMResponse(
        text="x" * 200_000,
        tool_input=None,
        stop_reason="end_turn",
        usage=Usage(1, 1),
        request_id=None,
        model="m",
        provider="mock",
    )
    with pytest.raises(OSError) as raised:
        for index in range(20):
            cache.put(f"key-{index}", response)
    assert "No space left" in str(raised.value) and "not a usable response cache" not in str(raised.value)
    cache.close()


# --------------------------------------------------------------------------- other OS errors

LONG = "x" * 300


@pytest.mark.parametrize("case", ["data_folder", "tagger_output", "analysis_output_dir", "train_output_dir"])
def test_a_name_too_long_is_one_line_naming_it(tmp_path, case):
    long_path = tmp_path / LONG
    if case == "data_folder":
        write_stage_1(tmp_path, make_items(1))
        result = subprocess.run(
            stage_2_command("--inference", "mock", "--model", "m"),
            cwd=REPO_ROOT,
            env={**stage_2_env(tmp_path), "SPT_DATA_DIR": str(long_path)},
            capture_output=True,
            text=True,
            timeout=WAIT_S,
        )
    elif case == "tagger_output":
        (tmp_path / "in" / "sycophancy").mkdir(parents=True)
        result = script("scripts/tag_stage_3_data.py", "--input", tmp_path / "in", "--output", long_path)
    elif case == "analysis_output_dir":
        result = script("scripts/analyze_stage_3.py", "--data_dir", tmp_path, "--output_dir", tmp_path.parent / LONG)
    else:
        result = script("training/train_lora.py", "--set", f"output_dir={long_path}", "--set", "base_model=x/y")
    assert result.returncode == 2, result.stderr
    one_error_line(result, "xxxxx", "too long")


@pytest.mark.parametrize("flag", ["base_model", "stage_2_model"])
def test_a_folder_that_holds_no_model_is_one_line(tmp_path, flag):
    empty = tmp_path / "not_a_model"
    empty.mkdir()
    if flag == "base_model":
        result = script(
            "training/train_lora.py",
            "--set",
            f"base_model={empty}",
            "--set",
            f"output_dir={tmp_path / 'run'}",
            "--train_file",
            tmp_path / "none.jsonl",
        )
    else:
        write_stage_1(tmp_path, make_items(1))
        result = subprocess.run(
            stage_2_command("--inference", "local", "--model", str(empty)),
            cwd=REPO_ROOT,
            env=stage_2_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=WAIT_S,
        )
    assert result.returncode == 2, result.stderr
    one_error_line(result, "not_a_model", "no model")


def test_a_dot_env_that_is_not_utf8_is_one_line(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_bytes(b"OPENROUTER_API_KEY=caf\xe9\n")
    with pytest.raises(utils.DataError, match=r"\.env: not UTF-8 \(byte 22\)"):
        utils.load_env(env_file)


@pytest.mark.parametrize(
    "change, named",
    [
        ({"concurrency": "lots"}, "concurrency must be a whole number, got 'lots'"),
        ({"timeout_s": 0}, "timeout_s must be above 0"),
        ({"retry": {"max_attempts": 0}}, "retry: max_attempts must be at least 1"),
        ({"providers": {"mock": []}}, "providers.mock must be an object"),
    ],
)
def test_a_providers_config_with_a_wrong_type_is_one_line(tmp_path, change, named):
    config = json.loads((CONFIG_DIR / "providers.json").read_text())
    for key, value in change.items():
        config[key] = {**config[key], **value} if isinstance(value, dict) and key == "providers" else value
    path = tmp_path / "providers.json"
    path.write_text(json.dumps(config))
    write_stage_1(tmp_path, make_items(1))
    result = subprocess.run(
        stage_2_command("--inference", "mock", "--model", "m"),
        cwd=REPO_ROOT,
        env={**stage_2_env(tmp_path), "SPT_PROVIDERS_CONFIG": str(path)},
        capture_output=True,
        text=True,
        timeout=WAIT_S,
    )
    assert result.returncode == 2
    one_error_line(result, "providers.json", named)
