"""The project as a package: the wheel holds one top-level package with prompts and config, declares
its dependencies and the `spt` command; the `spt` command runs a step from an empty folder without
torch, counting relative paths from that folder."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from repo import REPO_ROOT

from spt.cli import SUBCOMMANDS

PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())

# Run the `spt` command in a fresh interpreter whose imports of torch and transformers fail, as in an
# environment installed without the training extra.
NO_TORCH = """
import importlib.abc, sys
class NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "transformers", "peft", "accelerate"):
            raise ModuleNotFoundError(f"No module named {name!r} (not installed here)")
sys.meta_path.insert(0, NoTorch())
from spt.cli import main
sys.exit(main(sys.argv[1:]))
"""


def spt_stage1_without_torch(cwd: Path, env: dict, target_items: int) -> subprocess.CompletedProcess:
    """`spt stage1` on the mock provider for sycophancy, run in `cwd` with torch's imports failing."""
    return subprocess.run(
        [
            sys.executable,
            "-c",
            NO_TORCH,
            "stage1",
            "--names",
            "sycophancy",
            "--target_items",
            str(target_items),
            "--provider",
            "mock",
            "--model",
            "mock-generator",
        ],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_every_package_under_spt_is_in_the_wheel_list():
    declared = set(PYPROJECT["tool"]["setuptools"]["packages"])
    found = {
        ".".join(folder.relative_to(REPO_ROOT).parts)
        for folder in (REPO_ROOT / "spt").rglob("*")
        if (folder / "__init__.py").is_file()
    } | {"spt"}
    assert declared - {"spt.prompts", "spt.config"} == found


def test_every_subcommand_names_an_entry_script_that_calls_it():
    for name, (module, script, _) in SUBCOMMANDS.items():
        text = (REPO_ROOT / script).read_text()
        assert f"from {module} import main" in text, (name, script)
        assert f"spt {name}`" in text, (name, script)


@pytest.mark.slow
def test_the_wheel_holds_one_package_its_data_its_dependencies_and_the_command(tmp_path):
    source = tmp_path / "source"  # a build writes build/ and *.egg-info/ beside pyproject.toml
    for part in ("spt", "prompts", "config"):
        shutil.copytree(REPO_ROOT / part, source / part, ignore=shutil.ignore_patterns("__pycache__"))
    for part in ("pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / part, source / part)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    wheel = next((tmp_path / "dist").glob("*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names} == {
        "spt",
        wheel.name.split("-")[0] + "-" + wheel.name.split("-")[1] + ".dist-info",
    }
    prompts = {name for name in names if name.startswith("spt/prompts/")}
    assert prompts == {
        f"spt/prompts/{path.relative_to(REPO_ROOT / 'prompts').as_posix()}"
        for path in (REPO_ROOT / "prompts").rglob("*.md")
    }
    assert {f"spt/config/{path.name}" for path in (REPO_ROOT / "config").glob("*.json")} <= set(names)
    assert {"spt/viewer/viewer.css", "spt/viewer/viewer.js"} <= set(names)  # inlined into the viewer's pages
    dist_info = wheel.name.split("-")[0] + "-" + wheel.name.split("-")[1] + ".dist-info"
    metadata = zipfile.ZipFile(wheel).read(f"{dist_info}/METADATA").decode()
    requires = re.findall(r"^Requires-Dist: (.*)$", metadata, re.M)
    plain = [req for req in requires if "extra ==" not in req]
    assert any(req.startswith("anthropic") for req in plain) and any(req.startswith("openai") for req in plain)
    assert not any(req.startswith(("torch", "transformers", "pytest")) for req in plain)
    assert any(req.startswith("torch") and 'extra == "training"' in req for req in requires)
    assert "spt = spt.cli:main" in zipfile.ZipFile(wheel).read(f"{dist_info}/entry_points.txt").decode()


def test_spt_stage1_runs_from_an_empty_folder_without_torch(tmp_path):
    """Prompts come from the installed copy (the empty folder has none), data goes to SPT_DATA_DIR,
    and nothing imports torch."""
    work, data = tmp_path / "empty", tmp_path / "data"
    work.mkdir()
    env = {**os.environ, "SPT_DATA_DIR": str(data), "PYTHONPATH": str(REPO_ROOT), "TQDM_DISABLE": "1"}
    result = spt_stage1_without_torch(work, env, 4)
    assert result.returncode == 0, result.stderr
    [written] = list((data / "stage_1" / "sycophancy").glob("*.json"))
    assert len(json.loads(written.read_text())["data"]) >= 4
    assert list(work.iterdir()) == []


def test_relative_paths_count_from_the_folder_the_command_runs_in(tmp_path):
    """Without SPT_DATA_DIR, data/ is the current folder's, not the clone's the package came from; a
    user's own modules there named like the package's old top-level modules are not imported."""
    for name in ("utils", "training_config", "providers", "export"):
        (tmp_path / f"{name}.py").write_text(f"raise SystemExit('the user\\'s own {name}.py was imported')\n")
    env = {key: value for key, value in os.environ.items() if key != "SPT_DATA_DIR"}
    env.update(PYTHONPATH=str(REPO_ROOT), TQDM_DISABLE="1")
    result = spt_stage1_without_torch(tmp_path, env, 2)
    assert result.returncode == 0, result.stderr
    assert list((tmp_path / "data" / "stage_1" / "sycophancy").glob("*.json"))


def test_the_spt_command_names_its_subcommands_and_refuses_an_unknown_one():
    listing = subprocess.run(
        [sys.executable, "-m", "spt.cli", "--help"], capture_output=True, text=True, timeout=60, cwd=REPO_ROOT
    )
    assert listing.returncode == 0 and all(f"  {name} " in listing.stdout for name in SUBCOMMANDS)
    unknown = subprocess.run(
        [sys.executable, "-m", "spt.cli", "stage9"], capture_output=True, text=True, timeout=60, cwd=REPO_ROOT
    )
    assert unknown.returncode == 2 and "unknown subcommand 'stage9'" in unknown.stderr
    helped = subprocess.run(
        [sys.executable, "-m", "spt.cli", "export", "--help"], capture_output=True, text=True, timeout=60, cwd=REPO_ROOT
    )
    assert helped.returncode == 0 and helped.stdout.startswith("usage: spt export")
