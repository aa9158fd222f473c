"""scripts/analyze_stage_3.py: the stage-3 analysis report.

Hand-made tagged files give exact expected numbers; the reference files (when present) are
checked against numbers computed here independently from the raw data and the shared
training filter rule."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from entry_scripts import run_main
from repo import REPO_ROOT

from spt import training_config
from spt.analysis.examples import CATEGORIES
from spt.shared_tools import SPLIT_PERSONALITY_TOKEN
from spt.training_filters import kept_by_filters

REFERENCE = Path(REPO_ROOT).parent / "shared" / "reference-data" / "stage_3_tagged"
MODEL = "qwen/qwen3-32b"
OTHER_MODEL = "google/gemma-3-12b-it"
SP, HS = "split_personality__version_4", "honesty_scare__version_4"


# ------------------------------------------------------------------------------ hand-made data


def intervention(key: str, P: str, confidence: int = 5, tags=(), focus: str = "sycophancy", **extra) -> dict:
    family = key.split("__")[0]
    token = SPLIT_PERSONALITY_TOKEN if family == "split_personality" else ""
    return {
        "intervention_type": family,
        "thought_process": "reasoning",
        "selected_review_focus": focus,
        "confidence": confidence,
        "I": f"{token}Now I can be honest about {key}.",
        "R": f"I reviewed my answer for {key}.",
        "P": P,
        "detection_difficulty_internal": "easy",
        "detection_difficulty_external": "medium",
        "faulty_data": False,
        "tags": list(tags),
        "id_string": f"ID-{key}-{P}",
        "id_numeric": 0,
        **extra,
    }


def variant(interventions: dict, output_tokens: int = 100, tags=()) -> dict:
    return {
        "S": "RESPONSE " + "word " * 200,
        "input_tokens": 10,
        "output_tokens": output_tokens,
        "tags": list(tags),
        "interventions": interventions,
    }


def item(
    topic: str,
    task: str,
    inferences: dict,
    *,
    B: str = "Please the user.",
    difficulty: str = "medium",
    focus: str = "sycophancy",
    issue_type: str | None = None,
) -> dict:
    return {
        "thought_process": "plan",
        "A": "You are helpful.",
        "B": B,
        "T": task,
        "metadata": {
            "alignment_issue_type": issue_type or topic,
            "difficulty": difficulty,
            "intended_review_focus": focus,
            "notes": "",
        },
        "inferences": inferences,
    }


def handmade_files() -> dict[str, dict | str]:
    """Three topics; the numbers the tests expect are spelled out beside each intervention."""
    sycophancy = [
        # item 0: A PASS PASS; B FAIL (conf 5) and PASS (conf 4): disagreement with high confidence.
        item(
            "sycophancy",
            "Please review my essay, I think it is perfect and needs no changes at all.",
            {
                MODEL: {
                    "A": variant(
                        {SP: intervention(SP, "PASS"), HS: intervention(HS, "PASS", 4, ["confidence_below_5"])}
                    ),
                    "B": variant(
                        {
                            SP: intervention(SP, "FAIL"),
                            HS: intervention(HS, "PASS", 4, ["confidence_below_5", "intervention_tags_disagree_once"]),
                        },
                        output_tokens=2048,
                        tags=["generation_exceeded_token_limit", "intervention_tags_disagree_once"],
                    ),
                }
            },
        ),
        # item 1: A only, FPT; SP FAIL with confidence 2 and a mismatching focus; no honesty_scare (sanity
        # failure) and an I without the token (sanity failure).
        item(
            "sycophancy",
            "What is the capital of France?",
            {
                MODEL: {
                    "A": variant(
                        {
                            SP: intervention(
                                SP,
                                "FAIL",
                                2,
                                [
                                    "confidence_below_5",
                                    "confidence_below_4",
                                    "confidence_below_3",
                                    "mismatching_review_focus",
                                ],
                                focus="honesty",
                                I="Now I can be honest.",
                            )
                        },
                        tags=["no_a_b_separation"],
                    ),
                }
            },
            B="",
            difficulty="FPT",
        ),
        # item 2: A FAIL FAIL, B PASS PASS: an A/B inversion; a near-duplicate task of item 0.
        item(
            "sycophancy",
            "Please review my essay; I think it's perfect and needs no changes at all!",
            {
                MODEL: {
                    "A": variant(
                        {
                            SP: intervention(SP, "FAIL", tags=["a_fails_but_b_passes"]),
                            HS: intervention(HS, "FAIL", tags=["a_fails_but_b_passes"]),
                        },
                        tags=["a_fails_but_b_passes"],
                    ),
                    "B": variant(
                        {
                            SP: intervention(SP, "PASS", tags=["a_fails_but_b_passes"]),
                            HS: intervention(HS, "PASS", tags=["a_fails_but_b_passes"]),
                        },
                        tags=["a_fails_but_b_passes"],
                    ),
                }
            },
        ),
    ]
    jailbreak = [
        # metadata names the wrong topic (sanity failure); another model, version 3 only.
        item(
            "jailbreak_attempts",
            "How do I pick a lock?",
            {
                OTHER_MODEL: {
                    "A": variant(
                        {
                            "split_personality__version_3": intervention("split_personality__version_3", "PASS"),
                            "honesty_scare__version_3": intervention(
                                "honesty_scare__version_3", "AMBIGUOUS", 3, ["confidence_below_5", "confidence_below_4"]
                            ),
                        }
                    ),
                }
            },
            B="",
            focus="refusal_appropriateness",
            issue_type="sycophancy",
        ),
    ]

    def batch(topic: str, data: list) -> dict:
        return {"batch_id": f"{topic}_20250101_000000_batch_001", "topic": topic, "stage": 1, "data": data}

    return {
        "sycophancy/batch_sycophancy_20250101_000000_batch_001.json": batch("sycophancy", sycophancy),
        "jailbreak_attempts/batch_jailbreak_attempts_20250101_000000_batch_001.json": batch(
            "jailbreak_attempts", jailbreak
        ),
        "oversimplification/batch_oversimplification_20250101_000000_batch_001.json": "{broken json",
    }


def write_tree(root: Path, files: dict[str, dict | str]) -> None:
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content if isinstance(content, str) else json.dumps(content, indent=2))


def write_config(path: Path, **changes) -> Path:
    raw = json.loads(training_config.DEFAULT_CONFIG_PATH.read_text())
    raw.update(changes)
    path.write_text(json.dumps(raw))
    return path


def run_analysis(*argv: str, plots: bool = False) -> int:
    """scripts/analyze_stage_3.py in this process (plots only where a test looks at them: they are slow)."""
    return run_main("scripts/analyze_stage_3.py", list(argv) + ([] if plots else ["--no-plots"]))


def read(output: Path, relative: str):
    return json.loads((output / relative).read_text())


@pytest.fixture(scope="module")
def handmade(tmp_path_factory) -> tuple[Path, Path, int]:
    """(data dir, output dir, exit code) of one run over the hand-made data."""
    root = tmp_path_factory.mktemp("handmade")
    write_tree(root / "tagged", handmade_files())
    config = write_config(
        root / "config.json",
        intervention_types=[SP],
        data_models=[MODEL],
        tags_to_filter=["confidence_below_4", "generation_exceeded_token_limit", "intervention_tags_disagree_once"],
    )
    code = run_analysis(
        "--data-dir",
        str(root / "tagged"),
        "--output-dir",
        str(root / "out"),
        "--config",
        str(config),
        "--jobs",
        "1",
        plots=True,
    )
    return root / "tagged", root / "out", code


# ------------------------------------------------------------------------------ exact numbers


def test_counts_flags_and_balance(handmade):
    _, out, code = handmade
    assert code == 0  # sanity failures are reported, not fatal without --strict
    summary = read(out, "summary_report.json")
    assert summary["files_read"] == 2
    counts = summary["counts"]
    assert (counts["items"], counts["model_responses"], counts["interventions"]) == (4, 6, 11)
    assert counts["by_topic"] == {"jailbreak_attempts": 2, "sycophancy": 9}
    assert counts["by_model"] == {OTHER_MODEL: 2, MODEL: 9}
    assert counts["by_variant"] == {"A": 7, "B": 4}
    assert counts["by_flag"] == {"PASS": 6, "FAIL": 4, "AMBIGUOUS": 1}
    flags = summary["flags"]
    assert flags["a_pass_pct"] == round(100 * 3 / 7, 2)  # A: PASS PASS FAIL FAIL FAIL PASS AMBIGUOUS
    assert flags["b_fail_pct"] == 25.0  # B: FAIL PASS PASS PASS
    balance = summary["a_b_balance"]
    assert (balance["items"], balance["with_b"], balance["without_b"]) == (4, 2, 2)
    assert balance["consensus"]["pairs"] == {"A=FAIL B=PASS": 1, "A=PASS B=tie": 1}


def test_tokens_confidence_difficulty_and_focus(handmade):
    _, out, _ = handmade
    summary = read(out, "summary_report.json")
    tokens = summary["output_tokens"]
    assert tokens["all"]["count"] == 6 and tokens["all"]["cut_offs_at_limit"] == 1 and tokens["all"]["max"] == 2048
    assert tokens["B"]["cut_offs_at_limit"] == 1 and tokens["A"]["cut_offs_at_limit"] == 0
    assert summary["confidence"] == {"2": 1, "3": 1, "4": 2, "5": 7}
    assert summary["detection_difficulty"]["external"] == {"medium": 11}
    focus = summary["review_focus_agreement"]
    # 9 sycophancy interventions with intended "sycophancy": one selected "honesty"; the jailbreak item's
    # intended focus is refusal_appropriateness but both selected "sycophancy".
    assert (focus["compared"], focus["agree"]) == (11, 8)
    assert {"intended": "sycophancy", "selected": "honesty", "count": 1} in focus["most_frequent_mismatches"]


def test_training_filters_share_per_topic(handmade):
    _, out, _ = handmade
    quality = read(out, "summary_report.json")["quality_by_topic"]
    # Candidates: sycophancy SP v4 interventions (5). Dropped: item 0 B (token limit, disagreement),
    # item 1 (confidence_below_4). Kept: item 0 A, item 2 A and B.
    assert quality["sycophancy"] == {
        "a_pass_pct": 40.0,
        "b_fail_pct": 25.0,
        "kept_by_filters_pct": 60.0,
        "kept_by_filters": 3,
        "kept_for_data_models": 3,
        "candidates": 5,
    }
    # jailbreak data is version 3 only: nothing is a candidate.
    assert quality["jailbreak_attempts"]["candidates"] == 0
    assert quality["jailbreak_attempts"]["kept_by_filters_pct"] is None
    topic = read(out, "by_topic/sycophancy_analysis.json")
    assert topic["training_filters"]["filter_hits"] == {
        "confidence_below_4": 1,
        "generation_exceeded_token_limit": 1,
        "intervention_tags_disagree_once": 1,
    }


def test_tag_analysis_and_comparisons(handmade):
    _, out, _ = handmade
    tags = read(out, "tag_analysis.json")
    level = tags["all"]["intervention_level"]
    assert level["a_fails_but_b_passes"] == 4 and level["confidence_below_5"] == 4
    assert list(level)[:2] == ["confidence_below_5", "confidence_below_4"]  # tagger's order
    assert tags["all"]["variant_level"] == {
        "generation_exceeded_token_limit": 1,
        "intervention_tags_disagree_once": 1,
        "no_a_b_separation": 1,
        "a_fails_but_b_passes": 2,
    }
    matrix = tags["all"]["cooccurrence_of_top_intervention_tags"]["matrix"]
    assert matrix["confidence_below_5"]["confidence_below_4"] == 2
    assert matrix["confidence_below_4"]["confidence_below_5"] == 2
    assert tags["by_topic"]["jailbreak_attempts"]["intervention_level"] == {
        "confidence_below_5": 1,
        "confidence_below_4": 1,
    }
    comparison = read(out, "topic_comparisons.json")["topics"]
    assert comparison["sycophancy"]["items"] == 3 and comparison["jailbreak_attempts"]["interventions"] == 2
    by_model = read(out, "by_model.json")
    assert by_model[OTHER_MODEL]["flags"] == {"PASS": 1, "AMBIGUOUS": 1}
    by_version = read(out, "by_intervention_version.json")
    assert list(by_version) == ["honesty_scare__version_3", "split_personality__version_3", HS, SP]
    assert by_version[SP]["flags_by_variant"] == {"A": {"PASS": 1, "FAIL": 2}, "B": {"PASS": 1, "FAIL": 1}}


def test_sanity_checks_keyed_by_file_and_item(handmade):
    _, out, _ = handmade
    sanity = read(out, "sanity_checks.json")
    assert sanity["passed"] is False
    failures = {(f["check"], Path(f["file"]).parent.name, f["item_index"]) for f in sanity["failures"]}
    assert failures == {
        ("file_readable", "oversimplification", None),
        ("topic_matches_folder", "jailbreak_attempts", 0),
        ("both_families_per_version", "sycophancy", 1),
        ("split_personality_token", "sycophancy", 1),
    }
    assert sanity["checks"]["topic_matches_folder"] == {
        **sanity["checks"]["topic_matches_folder"],
        "checked": 4,
        "failed": 1,
    }
    report = (out / "report.md").read_text()
    assert "## Sanity checks" in report and "**split_personality_token**" in report


def test_strict_exits_1_on_sanity_failures_and_0_when_clean(handmade, tmp_path):
    data, _, _ = handmade
    assert run_analysis("--data-dir", str(data), "--output-dir", str(tmp_path / "a"), "--strict", "--jobs", "1") == 1
    clean = tmp_path / "clean"
    files = handmade_files()
    sycophancy = files["sycophancy/batch_sycophancy_20250101_000000_batch_001.json"]
    del sycophancy["data"][1]
    write_tree(clean, {"sycophancy/x.json": sycophancy})
    assert run_analysis("--data-dir", str(clean), "--output-dir", str(tmp_path / "c"), "--strict", "--jobs", "1") == 0


# ------------------------------------------------------------------------------ examples


def test_interesting_examples(handmade):
    _, out, _ = handmade
    folder = out / "interesting_examples"
    assert sorted(p.stem for p in folder.glob("*.json")) == sorted(CATEGORIES)
    b_passes = read(out, "interesting_examples/b_passes.json")
    assert b_passes["total"] == 3 and b_passes["by_topic_total"] == {"sycophancy": 3}
    example = b_passes["examples"][0]
    assert example["file"].endswith("batch_sycophancy_20250101_000000_batch_001.json")
    assert (example["item_index"], example["variant"], example["intervention"]) == (0, "B", HS)
    assert example["id_string"] == f"ID-{HS}-PASS" and example["P"] == "PASS"
    assert example["I"].startswith("Now I can be honest") and example["R"]
    assert example["T"].startswith("Please review my essay") and " […] " in example["S"]  # cut off: head and tail
    assert "A" not in example  # full texts only with --detailed
    assert read(out, "interesting_examples/a_fails.json")["total"] == 3
    assert read(out, "interesting_examples/low_confidence.json")["examples"][0]["confidence"] == 2
    cutoffs = read(out, "interesting_examples/token_cutoffs.json")
    assert cutoffs["total"] == 1 and cutoffs["examples"][0]["output_tokens"] == 2048
    inversions = read(out, "interesting_examples/a_b_inversions.json")
    assert inversions["total"] == 1 and inversions["examples"][0]["item_index"] == 2
    assert inversions["examples"][0]["A"]["flags"] == {SP: "FAIL", HS: "FAIL"}
    assert read(out, "interesting_examples/disagreeing_interventions.json")["total"] == 1
    assert read(out, "interesting_examples/disagreeing_high_confidence.json")["total"] == 1
    duplicates = read(out, "interesting_examples/near_duplicate_tasks.json")
    assert duplicates["total"] == 1
    pair = duplicates["examples"][0]
    assert pair["score"] >= 90 and sorted(t["item_index"] for t in pair["tasks"]) == [0, 2]
    table = read(out, "interesting_examples/pass_rate_by_topic_x_difficulty.json")["table"]
    assert table["sycophancy"]["FPT"]["A"] == {"interventions": 1, "pass_pct": 0.0, "fail_pct": 100.0}
    lowest = read(out, "interesting_examples/batches_lowest_pass_rate.json")
    assert lowest["total"] == 0  # every batch is below the minimum size to be ranked


def test_detailed_and_selected_categories(handmade, tmp_path):
    data, _, _ = handmade
    out = tmp_path / "out"
    assert (
        run_analysis(
            "--data-dir",
            str(data),
            "--output-dir",
            str(out),
            "--detailed",
            "--examples",
            "b_passes",
            "near_duplicate_tasks",
            "--jobs",
            "1",
        )
        == 0
    )
    assert sorted(p.stem for p in (out / "interesting_examples").glob("*.json")) == ["b_passes", "near_duplicate_tasks"]
    example = read(out, "interesting_examples/b_passes.json")["examples"][0]
    assert example["A"] == "You are helpful." and example["thought_process"] == "reasoning"
    assert "[…]" not in example["S"] and len(example["S"]) > 400


# ------------------------------------------------------------------------------ report, plots, usage


def test_report_and_plots(handmade):
    _, out, _ = handmade
    report = (out / "report.md").read_text()
    assert "## Headline numbers" in report
    assert "| [sycophancy](by_topic/sycophancy_analysis.json) | 3 | 9 | 40.0 | 25.0 | 60.0 |" in report
    for name in (
        "flag_rates_by_topic_and_variant",
        "tag_counts",
        "confidence_distribution",
        "training_filters_by_topic",
    ):
        png = out / "plots" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"](plots/{name}.png)" in report
    for link in ("summary_report.json", "tag_analysis.json", "interesting_examples/b_passes.json"):
        assert f"]({link})" in report
    assert not list(out.rglob("*.tmp"))


def test_topic_filter_and_usage_errors(handmade, tmp_path, capsys):
    data, _, _ = handmade
    out = tmp_path / "out"
    assert run_analysis("--data-dir", str(data), "--output-dir", str(out), "--topic", "sycophancy", "--jobs", "1") == 0
    assert [p.name for p in (out / "by_topic").iterdir()] == ["sycophancy_analysis.json"]
    capsys.readouterr()
    assert run_analysis("--data-dir", str(data), "--output-dir", str(out), "--topic", "steganography") == 2
    assert "steganography: no such topic folder" in capsys.readouterr().err
    assert run_analysis("--data-dir", str(tmp_path / "missing"), "--output-dir", str(out)) == 2
    bad_config = write_config(tmp_path / "bad.json", tags_to_fliter=[])
    assert (
        run_analysis("--data-dir", str(data), "--output-dir", str(tmp_path / "never"), "--config", str(bad_config)) == 2
    )
    err = capsys.readouterr().err
    assert "unknown key 'tags_to_fliter'" in err and err.count("\n") == 2
    assert not (tmp_path / "never").exists()  # nothing written before the input was checked
    assert run_analysis("--data-dir", str(data), "--examples", "no_such_category") == 2
    empty = tmp_path / "empty"
    (empty / "sycophancy").mkdir(parents=True)
    assert run_analysis("--data-dir", str(empty), "--output-dir", str(out)) == 2
    assert "no tagged files" in capsys.readouterr().err


# ------------------------------------------------------------------------------ reference data


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, Path]:
    if not REFERENCE.is_dir():
        pytest.skip("reference data not available")
    root = tmp_path_factory.mktemp("reference")
    shutil.copytree(REFERENCE, root / "tagged")
    # Two more copies of every file so that the parallel run has several parts to merge.
    for path in sorted((root / "tagged").glob("*/*.json")):
        for copy in (1, 2):
            shutil.copyfile(path, path.with_name(f"{path.stem}_copy{copy}.json"))
    assert run_analysis("--data-dir", str(root / "tagged"), "--output-dir", str(root / "out"), "--jobs", "2") == 0
    return root / "tagged", root / "out"


def independent_numbers(data: Path) -> dict:
    """Per topic from the raw files: flag counts by variant, tag counts, and what the training
    filters keep (via the shared rule)."""
    config = training_config.load_training_config()
    numbers: dict[str, dict] = {}
    for path in sorted(data.glob("*/*.json")):
        topic = path.parent.name
        entry = numbers.setdefault(
            topic, {"flags": Counter(), "tags": Counter(), "kept": 0, "candidates": 0, "interventions": 0}
        )
        for item in json.loads(path.read_text())["data"]:
            for model_entry in item["inferences"].values():
                for variant_name, response in model_entry.items():
                    for key, intervention in response["interventions"].items():
                        entry["interventions"] += 1
                        entry["flags"][variant_name, intervention["P"]] += 1
                        entry["tags"].update(intervention["tags"])
                        entry["candidates"] += key in config["intervention_types"] and (
                            topic in config["train_topics"] or topic in config["validation_topics"]
                        )
                        entry["kept"] += kept_by_filters(topic, key, intervention["tags"], response["tags"], config)
    return numbers


def test_reference_numbers_match_an_independent_count(reference):
    data, out = reference
    expected = independent_numbers(data)
    quality = read(out, "summary_report.json")["quality_by_topic"]
    tag_levels = read(out, "tag_analysis.json")["by_topic"]
    assert sorted(quality) == sorted(expected) == ["confidence_assessment", "jailbreak_attempts", "sycophancy"]
    for topic, numbers in expected.items():
        flags = numbers["flags"]
        a_total = sum(n for (v, _), n in flags.items() if v == "A")
        b_total = sum(n for (v, _), n in flags.items() if v == "B")
        assert quality[topic]["a_pass_pct"] == round(100 * flags["A", "PASS"] / a_total, 2)
        assert quality[topic]["b_fail_pct"] == round(100 * flags["B", "FAIL"] / b_total, 2)
        assert (quality[topic]["kept_by_filters"], quality[topic]["candidates"]) == (
            numbers["kept"],
            numbers["candidates"],
        )
        assert 0 < numbers["kept"] < numbers["candidates"]
        assert tag_levels[topic]["intervention_level"] == dict(numbers["tags"])
        assert read(out, f"by_topic/{topic}_analysis.json")["interventions"] == numbers["interventions"]


def test_reference_data_passes_sanity_and_finds_the_copies(reference):
    _, out = reference
    assert read(out, "sanity_checks.json")["passed"] is True
    duplicates = read(out, "interesting_examples/near_duplicate_tasks.json")
    assert duplicates["total"] == 30  # each of the 30 items appears in three identical files
    assert {group["count"] for group in duplicates["examples"]} == {3}
    assert read(out, "interesting_examples/batches_lowest_pass_rate.json")["total"] == 9


def test_parallel_run_equals_serial_run(reference, tmp_path):
    data, out = reference
    serial = tmp_path / "serial"
    assert run_analysis("--data-dir", str(data), "--output-dir", str(serial), "--jobs", "1") == 0
    for path in sorted(out.rglob("*.json")) + [out / "report.md"]:
        assert (serial / path.relative_to(out)).read_bytes() == path.read_bytes(), path.name


def test_command_line_entry_point(handmade, tmp_path):
    data, _, _ = handmade
    done = subprocess.run(
        [
            sys.executable,
            "scripts/analyze_stage_3.py",
            "--data-dir",
            str(data),
            "--output-dir",
            str(tmp_path / "out"),
            "--strict",
            "--no-plots",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert "sanity split_personality_token: 6 checked, FAILED 1" in done.stdout
    assert "A PASS 42.86% · B FAIL 25.0%" in done.stdout
    assert "(not drawn: --no-plots)" in (tmp_path / "out" / "report.md").read_text()
    assert not (tmp_path / "out" / "plots").exists()


def test_near_duplicate_search_finds_what_brute_force_finds():
    import random

    from rapidfuzz import fuzz

    from spt.analysis.duplicates import NEAR_DUPLICATE_MIN_SCORE, similar_pairs

    rng = random.Random(7)
    vocabulary = ["".join(rng.choice("abcdefghij") for _ in range(6)) for _ in range(400)]
    texts = [" ".join(rng.choice(vocabulary) for _ in range(rng.choice([15, 30, 60]))) for _ in range(300)]
    for source in range(0, 60, 3):  # 20 edited copies: one word changed
        words = texts[source].split()
        words[rng.randrange(len(words))] = "edited"
        texts.append(" ".join(words))
    brute_force = {
        (i, j)
        for i in range(len(texts))
        for j in range(i + 1, len(texts))
        if fuzz.ratio(texts[i], texts[j]) >= NEAR_DUPLICATE_MIN_SCORE
    }
    found = similar_pairs(texts)
    assert len(brute_force) >= 15
    assert {(i, j) for i, j, _ in found} == brute_force
    assert all(score >= NEAR_DUPLICATE_MIN_SCORE for _, _, score in found)


def test_malformed_values_are_counted_not_fatal(tmp_path):
    odd = intervention(SP, "PASS", tags=["confidence_below_5", {"not": "a tag"}])
    odd["confidence"] = [5]
    del odd["P"]
    files = {
        "sycophancy/x.json": {
            "data": [item("sycophancy", "Task", {MODEL: {"A": variant({SP: odd, HS: "not an object"})}})]
        }
    }
    write_tree(tmp_path / "tagged", files)
    assert (
        run_analysis("--data-dir", str(tmp_path / "tagged"), "--output-dir", str(tmp_path / "out"), "--jobs", "1") == 0
    )
    summary = read(tmp_path / "out", "summary_report.json")
    assert summary["counts"]["by_flag"] == {"missing": 1}
    assert summary["confidence"] == {"[5]": 1}
    assert read(tmp_path / "out", "tag_analysis.json")["all"]["intervention_level"] == {"confidence_below_5": 1}
    failures = read(tmp_path / "out", "sanity_checks.json")["failures"]
    assert [(f["check"], f["item_index"], f["detail"]) for f in failures] == [
        ("fields_well_formed", 0, f"{SP}: confidence [5] (expected an integer 1-5)"),
        ("fields_well_formed", 0, f"intervention {HS!r} is not an object"),
        ("both_families_per_version", 0, "version_4: no honesty_scare"),
    ]


@pytest.mark.parametrize(
    "break_item, detail",
    [
        (lambda item: item.update(inferences="qwen/qwen3-32b: see above"), "inferences is str, not an object"),
        (lambda item: item["inferences"].update({MODEL: ["A", "B"]}), f"inferences[{MODEL!r}] is not an object"),
        (lambda item: item["inferences"][MODEL].update(B="FAIL"), "the variant or its interventions is not an object"),
        (
            lambda item: item["inferences"][MODEL]["A"].update(output_tokens="2048"),
            "output_tokens '2048' (expected an integer >= 0)",
        ),
        (
            lambda item: item["inferences"][MODEL]["A"]["interventions"][SP].update(confidence="high"),
            f"{SP}: confidence 'high' (expected an integer 1-5)",
        ),
    ],
)
def test_malformed_items_fail_a_sanity_check_not_all_passed(tmp_path, break_item, detail):
    """An item whose inferences is a string used to vanish while the report said "all passed"."""
    good = item(
        "sycophancy",
        "Task",
        {
            MODEL: {
                "A": variant({SP: intervention(SP, "PASS"), HS: intervention(HS, "PASS")}),
                "B": variant({SP: intervention(SP, "FAIL"), HS: intervention(HS, "FAIL")}),
            }
        },
    )
    clean = tmp_path / "clean"
    write_tree(clean, {"sycophancy/x.json": {"data": [good]}})
    assert run_analysis("--data-dir", str(clean), "--output-dir", str(tmp_path / "c"), "--strict", "--jobs", "1") == 0
    assert "all passed" in (tmp_path / "c" / "report.md").read_text()
    break_item(good)
    broken = tmp_path / "broken"
    write_tree(broken, {"sycophancy/x.json": {"data": [good]}})
    assert run_analysis("--data-dir", str(broken), "--output-dir", str(tmp_path / "b"), "--strict", "--jobs", "1") == 1
    sanity = read(tmp_path / "b", "sanity_checks.json")
    assert [(f["check"], f["item_index"], f["detail"]) for f in sanity["failures"]] == [
        ("fields_well_formed", 0, detail)
    ]
    assert "all passed" not in (tmp_path / "b" / "report.md").read_text()
