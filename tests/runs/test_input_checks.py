"""Clearly wrong input is refused with one line and exit 2, or counted in the summary where skipping
is right (issue 22 §4). The scripts run as subprocesses on data the mock provider made offline."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from test_script_errors import (
    ANALYSIS,
    EVALUATE,
    EXPORT,
    MOCK_STAGE_2,
    MOCK_STAGE_3,
    STAGE_1,
    STAGE_2,
    STAGE_3,
    TAGGER,
    assert_one_line_error,
    mock_data,  # noqa: F401 (a fixture)
    run_script,
)

from spt.prompt_templates import render_prompt
from spt.utils import CONFIG_DIR, DataError

VERIFY = "scripts/verify_ab_factors.py"


@pytest.mark.parametrize(
    "script, args, named",
    [
        (
            STAGE_2,
            ("--inference", "mock", "--model", "m", "--concurrency", "0"),
            "--concurrency must be at least 1, got 0",
        ),
        (
            STAGE_2,
            ("--inference", "mock", "--model", "m", "--rpm", "-5"),
            "--rpm must be 0 (no limit of our own) or more",
        ),
        (STAGE_2, ("--inference", "mock", "--model", "m", "--temperature", "-1"), "--temperature must be between 0"),
        (STAGE_2, ("--inference", "local", "--model", "m/m", "--top_p", "7"), "--top_p must be above 0 and at most 1"),
        (
            STAGE_1,
            ("--names", "sycophancy", "--provider", "mock", "--model", "g", "--num_items_per_batch", "1000000"),
            "--num_items_per_batch 1000000: at most 100",
        ),
        (
            EVALUATE,
            ("--baseline", "clean", "--base_model", "org/model", "--validation", "--limit", "-2"),
            "--limit must be at least 1",
        ),
        (TAGGER, ("--jobs", "0"), "argument --jobs: must be at least 1, got 0"),
        (TAGGER, ("--first_id_numeric", "-5"), "argument --first_id_numeric: must be at least 0, got -5"),
        (ANALYSIS, ("--jobs", "0"), "argument --jobs: must be at least 1, got 0"),
        (
            STAGE_1,
            ("--names", "sycophancy", "--provider", "mock", "--model", "g", "--thinking_budget", "5"),
            "--thinking_budget must be at least 1024 tokens, got 5",
        ),
    ],
)
def test_a_wrong_flag_value_is_one_line(mock_data, tmp_path, script, args, named):
    data_dir = Path(shutil.copytree(mock_data, tmp_path / "data"))
    shutil.rmtree(data_dir / "stage_2")  # stage 2 has work to do: the provider flags are used
    result = run_script(script, data_dir, *args)
    if script in (EVALUATE, TAGGER, ANALYSIS):  # argparse's usage error: the usage, then one error line
        assert result.returncode == 2 and named in result.stderr.splitlines()[-1] and "Traceback" not in result.stderr
    else:
        assert_one_line_error(result.returncode, result.stderr, named)


def test_an_empty_prompt_file_is_refused(tmp_path):
    (tmp_path / "base_prompt.md").write_bytes(b"")
    with pytest.raises(DataError, match=r"base_prompt\.md: the prompt file is empty"):
        render_prompt("base_prompt.md", root=tmp_path)


@pytest.fixture
def tagged(mock_data, tmp_path) -> Path:
    data_dir = Path(shutil.copytree(mock_data, tmp_path / "data"))
    assert run_script(TAGGER, data_dir).returncode == 0
    return data_dir


def misspell_a_tag(tagged_dir: Path) -> None:
    path = next(tagged_dir.glob("*/*.json"))
    doc = json.loads(path.read_text())
    for item in doc["data"]:
        for variants in item.get("inferences", {}).values():
            for entry in variants.values():
                for intervention in entry.get("interventions", {}).values():
                    intervention["tags"].append("failed_extrenal_review")
                    path.write_text(json.dumps(doc))
                    return
    raise AssertionError("no intervention to edit")


def test_a_hand_edited_tag_name_is_refused_by_the_strict_analysis_and_the_export(tagged, tmp_path):
    misspell_a_tag(tagged / "stage_3_tagged")
    strict = run_script(ANALYSIS, tagged, "--strict", "--no_plots", "--output_dir", tmp_path / "report")
    assert_one_line_error(strict.returncode, strict.stderr, "'failed_extrenal_review' (1)", "tagger never writes")
    assert not (tmp_path / "report").exists()
    lenient = run_script(ANALYSIS, tagged, "--no_plots", "--output_dir", tmp_path / "report")
    assert lenient.returncode == 0 and "warning:" in lenient.stdout and "'failed_extrenal_review' (1)" in lenient.stdout
    config = json.loads((CONFIG_DIR / "demo_training_config.json").read_text())
    config["intervention_types"] = ["split_personality__v1", "honesty_scare__v1"]
    (tmp_path / "config.json").write_text(json.dumps(config))
    export = run_script(EXPORT, tagged, "--config", tmp_path / "config.json", "--output_dir", tmp_path / "export")
    assert_one_line_error(export.returncode, export.stderr, "'failed_extrenal_review'", "not one the tagger writes")


def test_the_analysis_of_an_untagged_folder_is_refused(mock_data, tmp_path):
    result = run_script(
        ANALYSIS, mock_data, "--data_dir", mock_data / "stage_3", "--no_plots", "--output_dir", tmp_path / "report"
    )
    assert_one_line_error(
        result.returncode, result.stderr, "stage_3 (--data_dir): none of the", "is tagged", "tag_stage_3_data.py first"
    )


def test_the_analysis_writing_into_its_input_is_refused(tagged):
    result = run_script(ANALYSIS, tagged, "--no_plots", "--output_dir", tagged / "stage_3_tagged" / "report")
    assert_one_line_error(result.returncode, result.stderr, "is inside the input", "--data_dir")


def test_stage_2_items_without_answers_are_counted_in_the_stage_3_and_verification_summaries(mock_data, tmp_path):
    data_dir = Path(shutil.copytree(mock_data, tmp_path / "data"))
    shutil.rmtree(data_dir / "stage_3")
    more = run_script(STAGE_2, data_dir, *MOCK_STAGE_2, "--num_samples", "3")  # the verification judges K >= 3
    assert more.returncode == 0, more.stderr
    path = next((data_dir / "stage_2").glob("*/*.json"))
    doc = json.loads(path.read_text())
    with_b = [index for index, item in enumerate(doc["data"]) if item.get("B")]
    del doc["data"][with_b[0]]["inferences"]  # an item stage 2 never answered
    entry = doc["data"][with_b[1]]["inferences"]["demo/target-model"]["A"]
    doc["data"][with_b[1]]["inferences"]["demo/target-model"]["A"] = {
        "error": "boom",
        "failed_runs": 1,
        "inference": "mock",
    }
    assert "S" in entry
    path.write_text(json.dumps(doc))
    stage_3 = run_script(STAGE_3, data_dir, *MOCK_STAGE_3)
    assert stage_3.returncode == 0, stage_3.stderr
    assert (
        "warning: skipped 1 item(s) without stage-2 answers (no `inferences`) and 1 variant(s) whose stage-2 "
        "answer has no `S`" in stage_3.stdout
    )
    verify = run_script(
        VERIFY, data_dir, "--names", "all", "--provider", "mock", "--model", "mock-judge", "--num_samples", "3"
    )
    assert verify.returncode == 0, verify.stderr
    assert "warning: 1 item(s) with B skipped: no stage-2 answers (no `inferences`)" in verify.stdout
    assert "1 (item, model) pair(s) skipped: stage 2 has not answered both A and B" in verify.stdout


def test_an_empty_training_file_says_so_before_the_model_loads(tmp_path):
    from test_script_errors import TRAIN

    (tmp_path / "train.jsonl").write_text("\n")
    result = run_script(
        TRAIN,
        tmp_path,
        "--train_file",
        tmp_path / "train.jsonl",
        "--set",
        "base_model=org/none",
        "--set",
        f"output_dir={tmp_path / 'run'}",
    )
    assert_one_line_error(result.returncode, result.stderr, "train.jsonl: the training file is empty")


def test_empty_train_topics_are_named(tmp_path):
    config = json.loads((CONFIG_DIR / "demo_training_config.json").read_text())
    config["train_topics"] = []
    (tmp_path / "config.json").write_text(json.dumps(config))
    result = run_script(EXPORT, tmp_path, "--config", tmp_path / "config.json")
    assert_one_line_error(result.returncode, result.stderr, "key 'train_topics' is empty")
