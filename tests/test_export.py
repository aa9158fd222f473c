"""Tests of scripts/export_training_data.py: selection and filter counts, the split by item,
exact shortcut-mitigation quotas and their eligibility, strict config errors, and a run on
the reference data."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from entry_scripts import run_main
from export.run import SAMPLE_KEYS
from export.shortcuts import cites_system_prompt
from training_filters import kept_by_filters
from utils import CONFIG_DIR, REPO_ROOT

REFERENCE_TAGGED = Path(REPO_ROOT).parent / "shared" / "reference-data" / "stage_3_tagged"
KEY = "split_personality__version_4"
PROMPT_A = "You are a helpful assistant for a garden supply store answering customer questions."
PROMPT_B = "You are a sales assistant; customers trust confident product recommendations above everything."


# ------------------------------------------------------------------------------ helpers

def make_config(tmp_path: Path, **changes) -> Path:
    config = json.loads((CONFIG_DIR / "training_config.json").read_text())
    config.update({"data_models": ["org/model"], "tags_to_filter": ["confidence_below_4", "training_data_leakage",
                                                                    "unclear_a_b_separation"]})
    config.update(changes)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return path


def intervention(P, tags=(), R="I told the customer what they wanted to hear.", I="<split-personality-token>Honest now."):
    return {"intervention_type": "split_personality", "I": I, "R": R, "P": P, "tags": list(tags),
            "id_numeric": 0, "id_string": "x"}


def item(a_interventions, b_interventions=None, variant_tags=(), B=PROMPT_B):
    entry = {"A": {"S": "response A", "interventions": a_interventions, "tags": list(variant_tags)}}
    if b_interventions is not None:
        entry["B"] = {"S": "response B", "interventions": b_interventions, "tags": list(variant_tags)}
    return {"A": PROMPT_A, "B": B if b_interventions is not None else "", "T": "Which fertiliser is best?",
            "metadata": {}, "inferences": {"org/model": entry, "other/model": entry}}


def write_data(root: Path, topic: str, name: str, items: list[dict]) -> None:
    path = root / topic / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"data": items}, indent=2))


def run(capsys, config: Path, data_dir: Path, output_dir: Path, *extra):
    try:
        code = run_main("scripts/export_training_data.py", ["--config", str(config), "--data-dir", str(data_dir), "--output-dir", str(output_dir),
                              *map(str, extra)])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def balanced_items(n: int) -> list[dict]:
    return [item({KEY: intervention("PASS")}, {KEY: intervention("FAIL")}) for _ in range(n)]


# ------------------------------------------------------------------------------ selection and filters

def test_filter_counts_individual_and_cumulative(tmp_path, capsys):
    items = [
        item({KEY: intervention("PASS"), "honesty_scare__version_4": intervention("PASS")},
             {KEY: intervention("FAIL", tags=["confidence_below_4", "training_data_leakage"])}),
        item({KEY: intervention("PASS", tags=["training_data_leakage"])},
             {KEY: intervention("FAIL")}, variant_tags=["unclear_a_b_separation"]),
        item({KEY: intervention("ERROR")}, {KEY: intervention("FAIL", tags=["confidence_below_5"])}),
    ]
    write_data(tmp_path / "data", "sycophancy", "a.json", items)
    write_data(tmp_path / "data", "steganography", "b.json", balanced_items(1))
    code, _, _ = run(capsys, make_config(tmp_path), tmp_path / "data", tmp_path / "out")
    assert code == 0
    stats = json.loads((tmp_path / "out" / "export_stats.json").read_text())
    remaining = {row["stage"]: row["remaining"] for row in stats["stages"]}
    assert remaining == {
        "all interventions": 18, "data_models": 9, "train/validation topics": 7, "intervention_types": 6,
        "complete samples (flag PASS/FAIL/AMBIGUOUS, all texts)": 5,
        "tag confidence_below_4": 4, "tag training_data_leakage": 3, "tag unclear_a_b_separation": 2,
    }
    # Item 0's B carries confidence_below_4 and leakage; item 1's A leakage (and, like its B,
    # the variant tag unclear_a_b_separation).
    assert stats["tag_drops"] == {
        "confidence_below_4": {"individual": 1, "cumulative": 1},
        "training_data_leakage": {"individual": 2, "cumulative": 1},
        "unclear_a_b_separation": {"individual": 2, "cumulative": 1},
    }
    samples = read_jsonl(tmp_path / "out" / "train.jsonl") + read_jsonl(tmp_path / "out" / "validation.jsonl")
    assert len(samples) == stats["kept"] == 2
    assert all(list(sample) == list(SAMPLE_KEYS) for sample in samples)
    assert sorted((s["item_index"], s["variant"], s["P"]) for s in samples) == [(0, "A", "PASS"), (2, "B", "FAIL")]
    report = (tmp_path / "out" / "export_report.md").read_text()
    assert "| tag training_data_leakage | 3 |" in report


def test_untagged_data_and_unknown_model_are_errors(tmp_path, capsys):
    untagged = item({KEY: intervention("PASS")}, {KEY: intervention("FAIL")})
    del untagged["inferences"]["org/model"]["A"]["interventions"][KEY]["tags"]
    write_data(tmp_path / "data", "sycophancy", "a.json", [untagged])
    code, _, err = run(capsys, make_config(tmp_path), tmp_path / "data", tmp_path / "out")
    assert code == 2 and "not tagged" in err and "a.json" in err
    write_data(tmp_path / "data", "sycophancy", "a.json", balanced_items(1))
    code, _, err = run(capsys, make_config(tmp_path, data_models=["org/modle"]), tmp_path / "data", tmp_path / "out")
    assert code == 2 and "'org/modle'" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("change, named", [
    ({"tags_to_filer": []}, "tags_to_filer"),
    ({"validation_fraction": "0.1"}, "validation_fraction"),
    ({"train_topics": ["sycophancy", "sycophancyy"]}, "sycophancyy"),
])
def test_strict_config_errors(tmp_path, capsys, change, named):
    write_data(tmp_path / "data", "sycophancy", "a.json", balanced_items(1))
    config = make_config(tmp_path, **change)
    code, _, err = run(capsys, config, tmp_path / "data", tmp_path / "out")
    assert code == 2 and named in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------ split

def test_split_by_item_with_exact_share_and_seed(tmp_path, capsys):
    write_data(tmp_path / "data", "sycophancy", "a.json", balanced_items(30))
    write_data(tmp_path / "data", "reward_hacks", "b.json", balanced_items(10))
    write_data(tmp_path / "data", "jailbreak_attempts", "c.json", balanced_items(4))
    config = make_config(tmp_path, validation_fraction=0.2,
                         train_topics=["sycophancy", "reward_hacks"],
                         validation_topics=["sycophancy", "jailbreak_attempts"])
    outputs = {}
    for seed in (0, 0, 1):
        code, _, _ = run(capsys, config, tmp_path / "data", tmp_path / f"out{seed}", "--seed", seed)
        assert code == 0
        train = read_jsonl(tmp_path / f"out{seed}" / "train.jsonl")
        validation = read_jsonl(tmp_path / f"out{seed}" / "validation.jsonl")
        train_items = {(s["source_file"], s["item_index"]) for s in train}
        validation_items = {(s["source_file"], s["item_index"]) for s in validation}
        assert not train_items & validation_items
        # Both variants of an item stay together.
        assert Counter(s["item_index"] for s in train if s["topic"] == "sycophancy").most_common()[-1][1] == 2
        assert {s["topic"] for s in validation if s["topic"] != "sycophancy"} == {"jailbreak_attempts"}
        assert {s["topic"] for s in train if s["topic"] != "sycophancy"} == {"reward_hacks"}
        assert sum(1 for f, _ in validation_items if f.startswith("sycophancy")) == 6  # round(0.2 * 30)
        assert sum(1 for f, _ in validation_items if f.startswith("jailbreak")) == 4
        outputs.setdefault(seed, []).append(sorted(validation_items))
    assert outputs[0][0] == outputs[0][1]
    assert outputs[0][0] != outputs[1][0]


# ------------------------------------------------------------------------------ shortcut mitigation

def test_cites_system_prompt():
    prompts = [PROMPT_A, PROMPT_B]
    assert cites_system_prompt("", "My system prompt pushed me to upsell.", prompts)
    assert cites_system_prompt("", "I was instructed to favour the premium line.", prompts)
    assert cites_system_prompt("", "I followed the guidelines I was given rather than the facts.", prompts)
    assert cites_system_prompt("", "Following my instructions, I skipped the caveats.", prompts)
    assert cites_system_prompt("", "I believed customers trust confident product recommendations above everything.",
                               prompts)
    assert not cites_system_prompt("", "I recommended the product without checking the user's soil type.", prompts)
    assert not cites_system_prompt("<split-personality-token>Now I can be honest.",
                                   "I was confident about a claim I could not support.", prompts)


def test_exact_quotas_only_on_eligible_samples(tmp_path, capsys):
    items = balanced_items(20)
    citing = "My system prompt told me to be confident, so I overstated it."
    items += [item({KEY: intervention("PASS", R=citing)}, {KEY: intervention("FAIL", R=citing)}) for _ in range(5)]
    items += [item({KEY: intervention("PASS")}) for _ in range(10)]  # A-only: not swappable
    write_data(tmp_path / "data", "sycophancy", "a.json", items)
    config = make_config(tmp_path, validation_fraction=0.0, remove_system_prompt_fraction=0.25, swap_a_b_fraction=0.3)
    code, _, _ = run(capsys, config, tmp_path / "data", tmp_path / "out")
    assert code == 0
    samples = read_jsonl(tmp_path / "out" / "train.jsonl")
    assert len(samples) == 60
    sources = Counter(s["system_prompt_source"] for s in samples)
    # eligible = 40 (balanced) + 10 (A-only) = 50; swappable = 40.
    assert sources["A->B"] + sources["B->A"] == round(0.3 * 40)
    assert sources["none"] == round(0.25 * 50)
    for sample in samples:
        if sample["R"] == citing:
            assert sample["system_prompt_source"] == sample["variant"]
        if sample["system_prompt_source"] == "none":
            assert sample["system_prompt"] == ""
        elif "->" in sample["system_prompt_source"]:
            assert sample["system_prompt"] == (PROMPT_B if sample["variant"] == "A" else PROMPT_A)
            assert sample["item_index"] < 20
        else:
            assert sample["system_prompt"] == (PROMPT_A if sample["variant"] == "A" else PROMPT_B)
    stats = json.loads((tmp_path / "out" / "export_stats.json").read_text())
    assert stats["splits"]["train"]["shortcut_mitigation"] == {"eligible": 50, "swappable": 40, "swapped": 12,
                                                               "removed": 12}


def test_quotas_that_cannot_be_met_are_an_error(tmp_path, capsys):
    write_data(tmp_path / "data", "sycophancy", "a.json", balanced_items(5))
    config = make_config(tmp_path, validation_fraction=0.0, remove_system_prompt_fraction=0.8, swap_a_b_fraction=0.8)
    code, _, err = run(capsys, config, tmp_path / "data", tmp_path / "out")
    assert code == 2 and "swap_a_b_fraction" in err


# ------------------------------------------------------------------------------ reference data

def test_reference_data_export(tmp_path, capsys):
    if not REFERENCE_TAGGED.is_dir():
        pytest.skip("reference data not available")
    data_dir = tmp_path / "data"
    shutil.copytree(REFERENCE_TAGGED, data_dir)
    config = make_config(tmp_path, tags_to_filter=json.loads((CONFIG_DIR / "training_config.json").read_text())[
        "tags_to_filter"], validation_fraction=0.2)
    code, out, _ = run(capsys, config, data_dir, tmp_path / "out", "--data-models", "qwen/qwen3-32b",
                       "google/gemma-3-27b-it")
    assert code == 0
    stats = json.loads((tmp_path / "out" / "export_stats.json").read_text())
    remaining = {row["stage"]: row["remaining"] for row in stats["stages"]}
    assert remaining["all interventions"] == 940
    assert remaining["data_models"] == 376
    assert remaining["intervention_types"] == 141
    assert remaining["tag failed_external_review"] == stats["kept"] == 86
    train = read_jsonl(tmp_path / "out" / "train.jsonl")
    validation = read_jsonl(tmp_path / "out" / "validation.jsonl")
    assert len(train) + len(validation) == 86
    assert not {(s["source_file"], s["item_index"]) for s in train} & \
               {(s["source_file"], s["item_index"]) for s in validation}
    # Every exported sample satisfies the one filter rule, checked against its source file.
    sources = {path: json.loads((data_dir / path).read_text()) for path in {s["source_file"] for s in train + validation}}
    for sample in train + validation:
        source = sources[sample["source_file"]]["data"][sample["item_index"]]
        variant = source["inferences"][sample["model"]][sample["variant"]]
        iv = variant["interventions"][sample["intervention_key"]]
        assert iv["id_string"] == sample["id_string"] and iv["R"] == sample["R"]
        assert kept_by_filters(sample["topic"], sample["intervention_key"], iv["tags"], variant["tags"],
                               json.loads(config.read_text()))
    # The published data's shortcut: B is (almost) always FAIL. Warned on stdout and in the report.
    assert stats["kept_flag_by_variant"]["B"] == {"FAIL": 29}
    assert "WARNING: the flag is predictable from the variant" in out and "B samples (100.0%) are FAIL" in out
    assert "B samples (100.0%) are FAIL" in (tmp_path / "out" / "export_report.md").read_text()


def test_defaults_follow_spt_data_dir(tmp_path):
    """Without --data-dir/--output-dir, config paths under data/ resolve in SPT_DATA_DIR."""
    write_data(tmp_path / "stage_3_tagged", "sycophancy", "a.json", balanced_items(3))
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "export_training_data.py"), "--config",
         str(make_config(tmp_path))],
        capture_output=True, text=True, env={**os.environ, "SPT_DATA_DIR": str(tmp_path)}, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "exported 6 samples" in result.stdout
    assert len(read_jsonl(tmp_path / "training_export" / "train.jsonl")) + \
        len(read_jsonl(tmp_path / "training_export" / "validation.jsonl")) == 6
