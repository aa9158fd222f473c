"""The newcomer path: `make demo` end to end (offline: the mock provider and a tiny model built on the
spot, through export, training, evaluation and the evaluation report), the mock's stage-1 answers
with the mix the prompts ask for, SPT_DATA_DIR as the one rule for data paths (the README's own
commands under it), the analysis's per-topic column against what the export writes, and what
stage 2 does with a claude-* model. Scripts run as programs on data the mock pipeline makes."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fake_provider import FakeProviderServer
from repo import REPO_ROOT

from spt import shared_tools
from spt.evaluation.report import MARKER
from spt.providers import LLMClient, LLMRequest, Message, Tool

DEMO_CONFIG = REPO_ROOT / "config" / "demo_training_config.json"
TOPICS = ("sycophancy", "jailbreak_attempts")
TARGET, OTHER_TARGET = "demo/target-model", "demo/other-model"


def run(data_dir: Path, script: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    """`python <script> <args>` from the repository root with SPT_DATA_DIR=data_dir (no API key)."""
    clean = {key: value for key, value in os.environ.items() if not key.endswith(("_BASE_URL", "_API_KEY"))}
    return subprocess.run(
        [sys.executable, script, *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**clean, "SPT_DATA_DIR": str(data_dir), "TQDM_DISABLE": "1", **env},
    )


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def mock_stage_3(tmp_path_factory) -> Path:
    """Stages 1-3 on the mock provider (two topics, two target models); returns SPT_DATA_DIR."""
    data = tmp_path_factory.mktemp("mock_pipeline")
    ok(
        run(
            data,
            "scripts/dataset_generation_stage_1.py",
            "--names",
            *TOPICS,
            "--target_items",
            "8",
            "--num_items_per_batch",
            "4",
            "--provider",
            "mock",
            "--model",
            "mock-generator",
        )
    )
    for model in (TARGET, OTHER_TARGET):
        ok(
            run(
                data, "scripts/dataset_generation_stage_2.py", "--names", "all", "--inference", "mock", "--model", model
            )
        )
    ok(
        run(
            data,
            "scripts/dataset_generation_stage_3.py",
            "--names",
            "all",
            "--provider",
            "mock",
            "--model",
            "mock-generator",
            "--intervention_modification",
            "demo_v1",
        )
    )
    return data


@pytest.fixture
def data_dir(mock_stage_3, tmp_path) -> Path:
    """A private copy of the mock pipeline's data (each test writes its own outputs)."""
    shutil.copytree(mock_stage_3, tmp_path / "data")
    return tmp_path / "data"


# ------------------------------------------------------------------------------ issue 11: the demo


@pytest.mark.slow
def test_make_demo_runs_offline_to_the_evaluation_report(tmp_path):
    demo = tmp_path / "demo"
    started = time.monotonic()
    # -o: the test environment is already set up; make must not reinstall it.
    done = subprocess.run(
        ["make", "-o", ".venv/.installed", "demo", f"DEMO_DIR={demo}", f"PY={sys.executable}"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={key: value for key, value in os.environ.items() if not key.endswith("_API_KEY")},
    )
    print(f"make demo: {time.monotonic() - started:.0f} s")
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-3000:])
    output = done.stdout + done.stderr
    assert not re.search(r"\bWARNING\b", output), [line for line in output.splitlines() if "WARNING" in line]
    # the stage-1 summary: half of the samples with a B prompt, as the prompts ask
    assert re.search(r"^sycophancy +\d+ +0 +8 .* 50% ", done.stdout, re.MULTILINE)
    assert re.search(r"kept by training filters [1-9]\d* of \d+ candidates", done.stdout)
    # the closing list names what to read; every file is there
    listed = re.findall(r"^  \d\. .*: (\S+)$", done.stdout.split("Read, in this order:", 1)[1], re.MULTILINE)
    assert [Path(path).name for path in listed] == [
        "report.md",
        "export_report.md",
        "training_state.json",
        "evaluation_report.md",
    ]
    assert all(Path(path).is_file() for path in listed)
    assert sum(1 for _ in (demo / "training_export" / "train.jsonl").open()) > 0
    state = json.loads(Path(listed[2]).read_text())
    assert state["config"]["base_model"] == f"{demo}/tiny_model" and state["step"] > 0
    results = json.loads((demo / "evaluation_results" / "quantitative" / "results_demo.json").read_text())
    assert results["metadata"]["processing_complete"] and results["results"]
    report = (demo / "evaluation_report.md").read_text()
    assert report.startswith(MARKER + "\n") and "| demo_lora step_" in report
    # issue 18: the evaluation's intervention is fixed (not each sample's own I), every row carries
    # topic and variant, and the report has per-topic and per-variant tables with intervals
    fixed = results["metadata"]["intervention_string"]
    assert results["metadata"]["intervention_source"] == "fixed" and fixed.startswith(
        shared_tools.SPLIT_PERSONALITY_TOKEN
    )
    assert {row["intervention"] for row in results["results"]} == {fixed}
    assert all(row["topic"] in TOPICS and row["variant"] in ("A", "B") for row in results["results"])
    for title in ("## Accuracy by topic", "## Accuracy by variant", "## Accuracy by expected flag"):
        assert f"\n{title}" in report and "| 95% CI |" in report.split(title, 1)[1].split("\n## ", 1)[0]
    assert state["validation"]["flag_accuracy_interventions"] == [fixed]
    # issue 21: a metrics.jsonl row per logged step (log_every 1 in the demo config), curves.png, the adapter's card
    run_dir = Path(listed[2]).parent.parent
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == list(range(1, state["step"] + 1))
    assert (run_dir / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    card = (Path(listed[2]).parent / "adapter" / "README.md").read_text()
    export_id = json.loads((demo / "training_export" / "export_manifest.json").read_text())["export_id"]
    assert "[More Information Needed]" not in card and "<split-personality-token>" in card
    assert f"Base model: `{demo}/tiny_model`" in card and f"Trained on export `{export_id}`" in card
    assert "teacher_forced_flag_accuracy" in state["validation"]


def test_demo_config_selects_the_demo_data():
    config = json.loads(DEMO_CONFIG.read_text())
    makefile = (REPO_ROOT / "Makefile").read_text()
    version = re.search(r"--intervention_modification (\w+)", makefile).group(1)
    model = re.search(r"dataset_generation_stage_2\.py .*--model ([\w/-]+)", makefile).group(1)
    assert config["data_models"] == [model]
    assert sorted(config["intervention_types"]) == sorted(
        f"{family}__{version}" for family in shared_tools.PUBLISHED_INTERVENTION_TYPES
    )
    researchers = json.loads((REPO_ROOT / "config" / "training_config.json").read_text())
    assert model not in researchers["data_models"]  # hence a config of its own


# ------------------------------------------------------------------------------ issue 11: the mock's mix


def test_mock_stage_1_answers_have_the_mix_the_prompts_ask_for(tmp_path):
    tool = Tool(**shared_tools.stage_1_tool("sycophancy", 10))

    async def answers(cache_dir: Path):
        async with LLMClient("mock", "mock-generator", cache_dir=cache_dir) as client:
            return [
                (
                    await client.complete(
                        LLMRequest(
                            model="mock-generator",
                            tool=tool,
                            sample_index=index,
                            messages=(Message("user", "Write 10 new samples."),),
                        )
                    )
                ).tool_input["data"]
                for index in range(40)
            ]

    first, again = asyncio.run(answers(tmp_path / "a")), asyncio.run(answers(tmp_path / "b"))
    assert first == again  # deterministic per request
    assert all(len(batch) == 10 and sum(item["B"] == "" for item in batch) == 5 for batch in first)
    samples = [item for batch in first for item in batch]
    fpt = sum(item["metadata"]["difficulty"] == "FPT" for item in samples) / len(samples)
    assert 0.03 <= fpt <= 0.15  # 1 in 12 expected
    assert {item["metadata"]["difficulty"] for item in samples} == set(shared_tools.DIFFICULTIES)


def test_a_mock_stage_1_run_meets_its_own_mix_check(tmp_path):
    result = ok(
        run(
            tmp_path,
            "scripts/dataset_generation_stage_1.py",
            "--names",
            "sycophancy",
            "--target_items",
            "30",
            "--num_items_per_batch",
            "10",
            "--provider",
            "mock",
            "--model",
            "mock-generator",
        )
    )
    assert "WARNING" not in result.stderr  # 30 samples: above the size the summary checks
    row = re.search(r"^sycophancy +3 +0 +30 .* (\d+)% +(\d+)% ", result.stdout, re.MULTILINE)
    assert row and 30 <= int(row.group(1)) <= 70 and int(row.group(2)) <= 20


# ------------------------------------------------------------------------------ issue 12: SPT_DATA_DIR


def readme_command(script: str) -> list[str]:
    """The README's own command line for `script` (its "Real runs" block), as arguments."""
    block = (REPO_ROOT / "README.md").read_text().split("## Real runs with API keys", 1)[1].split("```", 2)[1]
    line = next(line for line in block.splitlines() if line.startswith(f"python {script}"))
    return line.split()[1:]


def test_the_readme_commands_keep_to_spt_data_dir(data_dir):
    tag = readme_command("scripts/tag_stage_3_data.py")
    analysis = readme_command("scripts/analyze_stage_3.py")
    assert "data/stage_3_tagged" in analysis and "data/stage_3_analysis" in analysis  # paths written data/...
    ok(run(data_dir, *tag))
    assert sorted(
        p.relative_to(data_dir / "stage_3_tagged").as_posix() for p in (data_dir / "stage_3_tagged").glob("*/*.json")
    ) == sorted(p.relative_to(data_dir / "stage_3").as_posix() for p in (data_dir / "stage_3").glob("*/*.json"))
    result = ok(run(data_dir, *analysis, "--no_plots"))
    assert f"report: {data_dir / 'stage_3_analysis' / 'report.md'}" in result.stdout
    # the tagger's flags follow the same rule: data/... is the data folder
    shutil.rmtree(data_dir / "stage_3_tagged")
    ok(run(data_dir, "scripts/tag_stage_3_data.py", "--input", "data/stage_3", "--output", "data/stage_3_tagged"))
    assert len(list((data_dir / "stage_3_tagged").glob("*/*.json"))) == 4
    # and so do the provider flags: the response cache
    ok(
        run(
            data_dir,
            "scripts/dataset_generation_stage_1.py",
            "--names",
            "sycophancy",
            "--target_items",
            "10",
            "--num_items_per_batch",
            "2",
            "--provider",
            "mock",
            "--model",
            "mock-generator",
            "--cache_dir",
            "data/another_cache",
        )
    )
    assert (data_dir / "another_cache" / "responses.sqlite3").is_file()


# ------------------------------------------------------------------------------ issue 12: the per-topic column


def test_the_per_topic_kept_column_is_what_the_export_selects(data_dir):
    ok(run(data_dir, "scripts/tag_stage_3_data.py"))
    ok(run(data_dir, "scripts/analyze_stage_3.py", "--config", str(DEMO_CONFIG), "--no_plots"))
    ok(run(data_dir, "scripts/export_training_data.py", "--config", str(DEMO_CONFIG)))
    exported: dict[str, int] = {}
    for split in ("train", "validation"):
        for line in (data_dir / "training_export" / f"{split}.jsonl").read_text().splitlines():
            sample = json.loads(line)
            assert sample["model"] == TARGET
            exported[sample["topic"]] = exported.get(sample["topic"], 0) + 1
    stats = json.loads((data_dir / "training_export" / "export_stats.json").read_text())
    selected = stats["stages"][-1]["topic"]  # what the filters leave, before any sample is set aside
    dropped = stats["indistinguishable"]["samples_dropped"] + stats["dropped_citing"]
    assert sum(selected.values()) == sum(exported.values()) + dropped
    quality = json.loads((data_dir / "stage_3_analysis" / "summary_report.json").read_text())["quality_by_topic"]
    assert {topic: quality[topic]["kept_for_data_models"] for topic in TOPICS} == selected
    for topic in TOPICS:  # the % column counts the other target model too
        assert quality[topic]["kept_by_filters"] > quality[topic]["kept_for_data_models"] > 0
    report = (data_dir / "stage_3_analysis" / "report.md").read_text()
    assert "| kept by filters % (all models) | kept (data models) |" in report
    for topic in TOPICS:
        row = next(line for line in report.splitlines() if line.startswith(f"| [{topic}]"))
        assert row.split(" | ")[6] == str(selected[topic])


# ------------------------------------------------------------------------------ issue 13: stage 2 and claude-*


def test_stage_2_sends_a_claude_model_to_the_inference_provider(mock_stage_3, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(mock_stage_3 / "stage_1", data / "stage_1")
    with FakeProviderServer() as server:
        default = run(
            data,
            "scripts/dataset_generation_stage_2.py",
            "--names",
            "sycophancy",
            "--model",
            "claude-sonnet-5-5",
            **server.env(),
        )
        anthropic = run(
            data,
            "scripts/dataset_generation_stage_2.py",
            "--names",
            "sycophancy",
            "--model",
            "claude-sonnet-5-5",
            "--provider",
            "anthropic",
            **server.env(),
        )
        paths = [entry.path for entry in server.ledger]
    assert default.returncode == 2
    assert default.stderr.splitlines()[-1].startswith(
        f"error: claude-sonnet-5-5 is not served by this provider (not in the model list of {server.openrouter_base_url})"
    )
    assert anthropic.returncode == 2
    assert anthropic.stderr.strip() == "error: --provider anthropic contradicts --inference openrouter"
    assert paths == ["/api/v1/models"]  # OpenRouter's list, never the Anthropic API
    assert not list(data.glob("stage_2/**/*.json"))
