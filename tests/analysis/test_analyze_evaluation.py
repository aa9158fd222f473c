"""scripts/analyze_evaluation_results.py: accuracy tables from evaluation result files.

Expected numbers are computed here, independently, from the rows of the files."""

from __future__ import annotations

import copy
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from entry_scripts import run_main
from repo import REPO_ROOT

from spt.evaluation.report import MARKER

REFERENCE = Path(REPO_ROOT).parent / "shared" / "reference-data" / "evaluation_results" / "quantitative"
SPT_FILE = "results_70b_anthropic-mp_no-lora-patch_step_522_trained_actual_split_personality_basic_20251227_032126.json"
BASELINE_FILE = "results_baseline_poisoned_trained_actual_split_personality_basic_20260118_060733.json"


# ------------------------------------------------------------------------------ helpers


def expected_accuracy(rows: list[dict]) -> tuple[str, str, int]:
    """(accuracy, parse rate, n) as the report prints them, computed from the rows."""
    parsed = [row for row in rows if row["parsed_flag"] is not None and row.get("flag_parsed_successfully", True)]
    correct = sum(row["parsed_flag"] == row["expected_flag"] for row in parsed)
    return f"{100 * correct / len(parsed):.2f}%", f"{100 * len(parsed) / len(rows):.2f}%", len(rows)


def summary_rows(text: str) -> dict[str, list[str]]:
    """The 'Summary of runs' table as {file name: cells}."""
    section = text.split("## Summary of runs", 1)[1]
    rows = {}
    for line in section.splitlines():
        if line.startswith("| ") and not line.startswith("| kind"):
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            rows[cells[-1].split(" (+")[0]] = cells
    return rows


def section(text: str, title: str) -> str:
    return text.split(f"## {title}", 1)[1].split("\n## ", 1)[0]


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    """The script in this process; the report goes beside the --dir folder unless --output says otherwise
    (never to the repository's data/)."""
    if "--output" not in argv and "--dir" in argv:
        argv = [*argv, "--output", str(Path(argv[argv.index("--dir") + 1]).parent / "evaluation_report.md")]
    try:
        code = run_main("scripts/analyze_evaluation_results.py", argv)
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def make_rows(flags: list[tuple[str | None, str]], condition: str = "trained_actual") -> list[dict]:
    """Rows with (parsed_flag, expected_flag) pairs; None = the flag did not parse."""
    return [
        {
            "sample_id": f"{condition}_{i}",
            "condition": condition,
            "expected_flag": expected,
            "prompt": "p",
            "response": "r",
            "generated_review": f"\n\nREVIEW: x\nFLAG: {parsed}",
            "parsed_flag": parsed,
            "flag_parsed_successfully": parsed is not None,
            "input_length": 10,
            "output_length": 5,
        }
        for i, (parsed, expected) in enumerate(flags)
    ]


def write_result(folder: Path, name: str, rows: list[dict], **metadata) -> Path:
    base = {
        "checkpoint_name": "ckpt",
        "step": "step_1",
        "elicitation_type": "hp",
        "lora_patch": True,
        "condition": rows[0]["condition"],
        "intervention_name": "split_personality_basic",
        "expected_flag": rows[0]["expected_flag"],
        "total_samples": len(rows),
        "samples_processed": len(rows),
        "processing_complete": True,
    }
    base.update(metadata)
    path = folder / name
    path.write_text(json.dumps({"metadata": base, "results": rows}, indent=2, ensure_ascii=False))
    return path


@pytest.fixture
def reference_dir(tmp_path) -> Path:
    if not (REFERENCE / SPT_FILE).exists():
        pytest.skip("reference data not available")
    folder = tmp_path / "evaluation_results" / "quantitative"
    folder.mkdir(parents=True)
    for name in (SPT_FILE, BASELINE_FILE):
        (folder / name).write_bytes((REFERENCE / name).read_bytes())
    return folder


# ------------------------------------------------------------------------------ reference files


def test_reference_accuracies_match_the_rows(reference_dir, capsys):
    code, out, _ = run(["--dir", str(reference_dir), "--include-baselines"], capsys)
    assert code == 0
    rows = summary_rows(out)
    for name, kind in ((SPT_FILE, "off-policy SPT"), (BASELINE_FILE, "baseline")):
        results = json.loads((reference_dir / name).read_text())["results"]
        accuracy, parse_rate, n = expected_accuracy(results)
        cells = rows[name]
        assert cells[0] == kind
        assert cells[7:10] == [str(n), parse_rate, accuracy]
    assert rows[SPT_FILE][9] == "96.60%"  # 966 of 1000 rows flag FAIL as expected
    assert rows[BASELINE_FILE][9] == "0.00%"
    # The report file equals stdout; its first line is the marker.
    assert (reference_dir.parent / "evaluation_report.md").read_text().strip() == out.strip()
    assert out.startswith(MARKER + "\n")


def test_baselines_are_left_out_unless_asked_for(reference_dir, capsys):
    _, default_out, _ = run(["--dir", str(reference_dir)], capsys)
    assert list(summary_rows(default_out)) == [SPT_FILE]
    assert "Baselines vs SPT" not in default_out
    assert "Baselines are left out by default (1 baseline run(s) in the folder)" in default_out
    _, only_out, _ = run(["--dir", str(reference_dir), "--baselines-only"], capsys)
    assert list(summary_rows(only_out)) == [BASELINE_FILE]
    _, both_out, _ = run(["--dir", str(reference_dir), "--include-baselines"], capsys)
    baselines_vs_spt = section(both_out, "Baselines vs SPT")
    assert "| baseline poisoned | trained_actual | 0.00% | 100.00% | 1000 | 1 |" in baselines_vs_spt
    assert "| SPT (all selected) | trained_actual | 96.60% | 100.00% | 1000 | 1 |" in baselines_vs_spt


def test_identical_runs_are_counted_once(reference_dir, capsys):
    (reference_dir / "results_copy_of_the_spt_run.json").write_bytes((reference_dir / SPT_FILE).read_bytes())
    code, out, err = run(["--dir", str(reference_dir)], capsys)
    assert code == 0
    assert "results_copy_of_the_spt_run.json has the same results as" in err
    assert len(summary_rows(out)) == 1
    assert "| SPT runs | trained_actual | 96.60% | 100.00% | 1000 | 1 |" in section(out, "Aggregate by condition")


def test_incomplete_files_are_skipped_with_a_warning(reference_dir, capsys):
    document = json.loads((reference_dir / SPT_FILE).read_text())
    truncated = copy.deepcopy(document)
    truncated["results"] = truncated["results"][:400]  # total_samples stays 1000
    truncated["results"][0]["parsed_flag"] = "PASS"  # different content: not a duplicate
    (reference_dir / "results_truncated.json").write_text(json.dumps(truncated, ensure_ascii=False))
    unfinished = copy.deepcopy(document)
    unfinished["metadata"]["processing_complete"] = False
    unfinished["results"][1]["parsed_flag"] = "PASS"
    (reference_dir / "results_unfinished.json").write_text(json.dumps(unfinished, ensure_ascii=False))
    code, out, err = run(["--dir", str(reference_dir)], capsys)
    assert code == 0
    assert "skipped incomplete file results_truncated.json (400 of 1000 rows" in err
    assert "skipped incomplete file results_unfinished.json" in err
    assert list(summary_rows(out)) == [SPT_FILE]


def test_on_and_off_policy_filters(reference_dir, capsys):
    document = json.loads((reference_dir / SPT_FILE).read_text())
    document["metadata"]["checkpoint_name"] = "70b_on-policy_lora-patch"
    document["metadata"]["lora_patch"] = True
    for row in document["results"][:100]:
        row["parsed_flag"] = "PASS"  # 100 more wrong answers than the off-policy file
    (reference_dir / "results_on_policy.json").write_text(json.dumps(document, ensure_ascii=False))
    accuracy, _, _ = expected_accuracy(document["results"])

    _, on_out, _ = run(["--dir", str(reference_dir), "--on-policy-only"], capsys)
    assert list(summary_rows(on_out)) == ["results_on_policy.json"]
    assert summary_rows(on_out)["results_on_policy.json"][0] == "on-policy SPT"
    assert summary_rows(on_out)["results_on_policy.json"][9] == accuracy
    _, off_out, _ = run(["--dir", str(reference_dir), "--off-policy-only"], capsys)
    assert list(summary_rows(off_out)) == [SPT_FILE]
    _, all_out, _ = run(["--dir", str(reference_dir)], capsys)
    policy = section(all_out, "On- vs off-policy SPT")
    assert f"| on-policy SPT | trained_actual | {accuracy} |" in policy
    assert "| off-policy SPT | trained_actual | 96.60% |" in policy
    lora = section(all_out, "hp elicitation: with vs without LoRA-mask")
    assert f"| lora_patch=true | trained_actual | {accuracy} |" in lora
    assert "| lora_patch=false | trained_actual | 96.60% |" in lora


# ------------------------------------------------------------------------------ hand-made files


def test_unparsed_flags_and_extra_fields(tmp_path, capsys):
    folder = tmp_path / "q"
    folder.mkdir()
    rows = make_rows([("FAIL", "FAIL"), ("PASS", "FAIL"), (None, "FAIL"), ("FAIL", "FAIL")])
    for row in rows:
        row["correct"] = True  # written by this project's evaluate.py; must be ignored
    path = write_result(folder, "results_a.json", rows, checkpoint_name="small", lora_patch=False)
    document = json.loads(path.read_text())
    document["summary"] = {"accuracy": 1.0}
    path.write_text(json.dumps(document))
    actual = make_rows([("PASS", "PASS"), ("PASS", "PASS"), ("FAIL", "PASS")], condition="original_actual")
    write_result(folder, "results_b.json", actual, checkpoint_name="small", lora_patch=False)

    code, out, _ = run(["--dir", str(folder), "--output", str(tmp_path / "report.md")], capsys)
    assert code == 0
    cells = summary_rows(out)["results_a.json"]
    assert cells[7:10] == ["4", "75.00%", "66.67%"]  # 2 of 3 parsed rows are right
    grid = section(out, "Accuracy per checkpoint × condition")
    assert "| checkpoint | kind | trained_actual | original_actual |" in grid
    assert "| small step_1 | off-policy SPT | 66.67% (n=3) | 66.67% (n=3) |" in grid
    assert (tmp_path / "report.md").exists()


def test_no_runs_after_filtering_is_not_an_error(tmp_path, capsys):
    folder = tmp_path / "q"
    folder.mkdir()
    write_result(folder, "results_a.json", make_rows([("FAIL", "FAIL")]))
    code, out, _ = run(["--dir", str(folder), "--baselines-only"], capsys)
    assert code == 0
    assert "No runs match the filters." in out


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "invalid JSON at line 1"),
        ('{"metadata": {}}', "missing field 'results'"),
        ('{"metadata": {}, "results": [1]}', "results[0] is not an object"),
    ],
)
def test_bad_files_exit_2_with_one_line(tmp_path, capsys, content, message):
    folder = tmp_path / "q"
    folder.mkdir()
    (folder / "results_bad.json").write_text(content)
    code, _, err = run(["--dir", str(folder)], capsys)
    assert code == 2
    assert err.count("\n") == 1 and "results_bad.json" in err and message in err


def test_usage_errors(tmp_path, capsys):
    code, _, err = run(["--dir", str(tmp_path / "missing")], capsys)
    assert code == 2 and "no such directory" in err
    code, _, _ = run(["--dir", str(tmp_path), "--baselines-only", "--on-policy-only"], capsys)
    assert code == 2
    code, _, _ = run(["--dir", str(tmp_path), "--on-policy-only", "--off-policy-only"], capsys)
    assert code == 2


def run_program(data_dir: Path, *argv: str) -> subprocess.CompletedProcess:
    """The script as a program, with SPT_DATA_DIR=data_dir."""
    return subprocess.run(
        [sys.executable, "scripts/analyze_evaluation_results.py", *argv],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "SPT_DATA_DIR": str(data_dir)},
    )


def test_command_line_defaults_are_in_the_data_dir(tmp_path):
    folder = tmp_path / "evaluation_results" / "quantitative"
    folder.mkdir(parents=True)
    write_result(folder, "results_a.json", make_rows([("FAIL", "FAIL"), ("PASS", "FAIL")]))
    # A published report beside the published results folder: the default output is elsewhere.
    published = tmp_path / "evaluation_results" / "evaluation_report.md"
    published.write_text("# The published report\n")
    done = run_program(tmp_path)
    assert done.returncode == 0, done.stderr
    assert "| ckpt step_1 | off-policy SPT | 50.00% (n=2) |" in done.stdout
    report = tmp_path / "evaluation_report.md"
    assert report.read_text().splitlines()[0] == MARKER
    assert published.read_text() == "# The published report\n"
    again = run_program(tmp_path, "--dir", "data/evaluation_results/quantitative")  # data/... = SPT_DATA_DIR
    assert again.returncode == 0, again.stderr  # its own file: replaced
    assert report.read_text().strip() == again.stdout.strip()


def test_a_file_it_did_not_write_is_never_overwritten(tmp_path):
    folder = tmp_path / "evaluation_results" / "quantitative"
    folder.mkdir(parents=True)
    write_result(folder, "results_a.json", make_rows([("FAIL", "FAIL")]))
    for target, argv in (
        (tmp_path / "evaluation_report.md", ()),
        (
            tmp_path / "evaluation_results" / "evaluation_report.md",
            ("--output", str(tmp_path / "evaluation_results" / "evaluation_report.md")),
        ),
    ):
        target.write_text("# Somebody's notes\n\nwritten by hand\n")
        refused = run_program(tmp_path, *argv)
        assert refused.returncode == 2 and refused.stdout == ""
        assert refused.stderr.count("\n") == 1 and refused.stderr.startswith(f"error: {target}: ")
        assert "not written by this script" in refused.stderr and "--output" in refused.stderr
        assert target.read_text() == "# Somebody's notes\n\nwritten by hand\n"


def test_the_report_says_which_runs_it_shows(tmp_path, capsys):
    folder = tmp_path / "q"
    folder.mkdir()
    write_result(folder, "results_spt.json", make_rows([("FAIL", "FAIL")]))
    write_result(folder, "results_base.json", make_rows([("PASS", "FAIL")]), baseline_type="clean")
    _, default_out, _ = run(["--dir", str(folder)], capsys)
    assert (
        "Runs shown: SPT runs only. Baselines are left out by default (1 baseline run(s) in the folder); "
        "`--include_baselines` adds them"
    ) in default_out
    assert list(summary_rows(default_out)) == ["results_spt.json"]
    _, both_out, _ = run(["--dir", str(folder), "--include_baselines"], capsys)
    assert "Runs shown: SPT runs and baselines (`--include_baselines`)." in both_out
    _, only_out, _ = run(["--dir", str(folder), "--baselines_only"], capsys)
    assert "Runs shown: baselines only (`--baselines_only`)." in only_out
    _, on_out, _ = run(["--dir", str(folder), "--on_policy_only"], capsys)
    assert "Runs shown: on-policy SPT runs only." in on_out


def test_off_policy_detection_table_by_source_model(tmp_path, capsys):
    """Rows of an off_policy_eval.json run: per S's model, on-policy rows first, parse failures counted."""
    flags = [
        (("PASS", "PASS"), "on", "own/model"),
        ((None, "PASS"), "on", "own/model"),
        (("FAIL", "FAIL"), "off", "a/model"),
        (("PASS", "FAIL"), "off", "a/model"),
        (("FAIL", "FAIL"), "off", "a/model"),
        ((None, "FAIL"), "off", "b/model"),
        (("FAIL", "FAIL"), "off", "b/model"),
    ]
    rows = make_rows([pair for pair, _, _ in flags], condition="off_policy_detection")
    for row, (_, policy, source) in zip(rows, flags):
        row.update(task="off_policy_detection", policy=policy, S_source_model=source, data_model="own/model")
    folder = tmp_path / "results"
    folder.mkdir()
    write_result(folder, "results_detection.json", rows, expected_flag="mixed")
    write_result(folder, "results_plain.json", make_rows([("FAIL", "FAIL")]), checkpoint_name="other")
    code, out, _ = run(["--dir", str(folder)], capsys)
    assert code == 0
    table = section(out, "Off-policy detection accuracy by source model")
    lines = [line for line in table.splitlines() if line.startswith("| ckpt")]
    assert lines == [
        "| ckpt step_1 | on (own answer) | own/model | 2 | 1 | 1 | 1 | 100.00% |",
        "| ckpt step_1 | off | a/model | 3 | 3 | 0 | 2 | 66.67% |",
        "| ckpt step_1 | off | b/model | 2 | 1 | 1 | 1 | 100.00% |",
        "| ckpt step_1 | off | (all sources) | 5 | 4 | 1 | 3 | 75.00% |",
    ]
    assert "| other" not in table  # a run without detection rows has no line here


def test_no_detection_table_without_detection_rows(tmp_path, capsys):
    folder = tmp_path / "results"
    folder.mkdir()
    write_result(folder, "results_plain.json", make_rows([("FAIL", "FAIL")]))
    code, out, _ = run(["--dir", str(folder)], capsys)
    assert code == 0 and "Off-policy detection" not in out


def test_unseen_intent_rows_get_a_layout_table(tmp_path, capsys):
    """A run mixing standard and unseen-intent rows is split by layout; a run without unseen-intent rows
    gets no line (and without any such run the section is absent)."""
    rows = make_rows([("FAIL", "FAIL"), ("PASS", "FAIL"), ("FAIL", "FAIL"), (None, "FAIL"), ("FAIL", "FAIL")])
    for row in rows[2:]:
        row.update(layout="unseen_intent", response_shown="")
    folder = tmp_path / "results"
    folder.mkdir()
    write_result(folder, "results_mixed.json", rows)
    write_result(folder, "results_plain.json", make_rows([("FAIL", "FAIL")]), checkpoint_name="other")
    code, out, _ = run(["--dir", str(folder)], capsys)
    assert code == 0
    table = section(out, "Accuracy by layout: standard vs unseen intent")
    assert [line for line in table.splitlines() if line.startswith("| ")][1:] == [
        "| ckpt step_1 | standard | 2 | 100.00% | 50.00% |",
        "| ckpt step_1 | unseen_intent | 3 | 66.67% | 100.00% |",
    ]
    (folder / "results_mixed.json").unlink()
    _, plain_out, _ = run(["--dir", str(folder)], capsys)
    assert "Accuracy by layout" not in plain_out


def test_kind_comes_from_the_rows_policy_labels_not_the_name(tmp_path, capsys):
    """A checkpoint named on-policy whose rows are labelled off is off-policy; all-on rows make an
    on-policy run whatever its name; a file without labels falls back to the name rule, labelled so.
    A run asked each sample's own intervention is flagged."""
    folder = tmp_path / "results"
    folder.mkdir()
    off_rows = make_rows([("FAIL", "FAIL"), ("PASS", "PASS")])
    for row in off_rows:
        row["policy"] = "off"
    detection = make_rows([("PASS", "PASS")], condition="off_policy_detection")[0]
    detection.update(task="off_policy_detection", policy="on", sample_id="detection")
    write_result(folder, "results_named_on.json", off_rows + [detection], checkpoint_name="70b_on-policy_run")
    on_rows = make_rows([("FAIL", "FAIL"), ("FAIL", "PASS")])
    for row in on_rows:
        row["policy"] = "on"
    write_result(
        folder,
        "results_plain_name.json",
        on_rows,
        checkpoint_name="plain",
        intervention_string="(each sample's own intervention I)",
    )
    write_result(folder, "results_unlabelled.json", make_rows([("FAIL", "FAIL")]), checkpoint_name="x_on-policy")
    code, out, _ = run(["--dir", str(folder)], capsys)
    assert code == 0
    rows = summary_rows(out)
    assert rows["results_named_on.json"][0] == "off-policy SPT"
    assert rows["results_named_on.json"][12] == "policy labels (0 of 2 review rows on)"
    assert rows["results_plain_name.json"][0] == "on-policy SPT"
    assert rows["results_plain_name.json"][11] == "own I (gives the flag away)"
    assert rows["results_unlabelled.json"][0] == "on-policy SPT"
    assert rows["results_unlabelled.json"][12] == "checkpoint name (fallback: no policy labels in the rows)"
    assert rows["results_unlabelled.json"][10] == "20.7–100.0%"  # Wilson 95% at 1 of 1
    assert "Warning: 1 run(s) asked each sample its own intervention I" in out
    _, on_out, _ = run(["--dir", str(folder), "--on-policy-only"], capsys)
    assert sorted(summary_rows(on_out)) == ["results_plain_name.json", "results_unlabelled.json"]


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_pictures_beside_the_report_are_linked_and_follow_the_rows(tmp_path, capsys):
    """accuracy per checkpoint × condition always; per topic only while the rows carry topics."""
    folder = tmp_path / "q"
    folder.mkdir()
    for checkpoint in ("first", "second", "third"):
        for condition in ("trained_actual", "original_actual"):
            rows = make_rows([("FAIL", "FAIL"), ("PASS", "FAIL"), (None, "FAIL")], condition=condition)
            for row, topic in zip(rows, ("sycophancy", "jailbreak_attempts", "sycophancy")):
                row["topic"], row["sample_id"] = topic, f"{checkpoint}_{row['sample_id']}"  # not duplicates
            write_result(folder, f"results_{checkpoint}_{condition}.json", rows, checkpoint_name=checkpoint)
    report = tmp_path / "report.md"
    code, out, _ = run(["--dir", str(folder), "--output", str(report)], capsys)
    assert code == 0
    accuracy, topics = tmp_path / "report.accuracy.png", tmp_path / "report.topics.png"
    grid = section(out, "Accuracy per checkpoint × condition")
    assert "![Accuracy per checkpoint × condition, 95% intervals](report.accuracy.png)" in grid
    assert "![Accuracy per topic and checkpoint, 95% intervals](report.topics.png)" in section(out, "Accuracy by topic")
    three_rows = png_size(accuracy)
    assert png_size(topics)[1] < three_rows[1]  # 2 topics, 3 checkpoints: one row per topic

    for path in folder.iterdir():  # one checkpoint left, its rows without topics
        if "first" not in path.name:
            path.unlink()
        else:
            document = json.loads(path.read_text())
            for row in document["results"]:
                del row["topic"]
            path.write_text(json.dumps(document))
    code, out, _ = run(["--dir", str(folder), "--output", str(report)], capsys)
    assert code == 0
    assert png_size(accuracy)[1] < three_rows[1] and not topics.exists() and "report.topics.png" not in out
