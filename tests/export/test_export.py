"""Tests of scripts/export_training_data.py: selection and filter counts, the split by item,
exact shortcut-mitigation quotas and their eligibility, strict config errors, and a run on
the reference data (measured shortcuts: test_export_measures.py; off-policy detection: test_export_detection.py)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from entry_scripts import run_main
from repo import REPO_ROOT

from spt.export.output_set import check_export_dir
from spt.export.run import SAMPLE_KEYS
from spt.export.shortcuts import cites_system_prompt
from spt.training_filters import kept_by_filters
from spt.utils import CONFIG_DIR

REFERENCE_TAGGED = Path(REPO_ROOT).parent / "shared" / "reference-data" / "stage_3_tagged"
REFERENCE_MORE = Path(REPO_ROOT).parent / "shared" / "reference-data" / "stage_3_tagged_more"
KEY = "split_personality__version_4"
UNSEEN_KEY = "unseen_intent__version_4"
PROMPT_A = "You are a helpful assistant for a garden supply store answering customer questions."
PROMPT_B = "You are a sales assistant; customers trust confident product recommendations above everything."


# ------------------------------------------------------------------------------ helpers


# What an export folder holds (sorted): the set, its manifest, report and stats, the card and the viewer.
EXPORT_FILES = [
    "README.md",
    "export_manifest.json",
    "export_report.md",
    "export_stats.json",
    "heldout_topics.jsonl",
    "sample_decisions.jsonl",
    "train.jsonl",
    "validation.jsonl",
    "viewer",
]


def make_config(tmp_path: Path, **changes) -> Path:
    config = json.loads((CONFIG_DIR / "training_config.json").read_text())
    # The published exporter's behaviour (no mitigation) unless a test asks for one; the default config's
    # removal is tested on its own (test_the_default_config_mitigates_the_reference_data).
    # org/model's answers are the trained model's own (trained_model_data_id), so policy labels depend on the prompt.
    config.update(
        {
            "data_models": ["org/model"],
            "trained_model_data_id": "org/model",
            "tags_to_filter": ["confidence_below_4", "training_data_leakage", "unclear_a_b_separation"],
            "remove_system_prompt_fraction": 0.0,
        }
    )
    config.update(changes)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return path


def intervention(
    P, tags=(), R="I told the customer what they wanted to hear.", I="<split-personality-token>Honest now."
):
    return {
        "intervention_type": "split_personality",
        "I": I,
        "R": R,
        "P": P,
        "tags": list(tags),
        "id_numeric": 0,
        "id_string": "x",
    }


def item(a_interventions, b_interventions=None, variant_tags=(), B=PROMPT_B):
    entry = {"A": {"S": "response A", "interventions": a_interventions, "tags": list(variant_tags)}}
    if b_interventions is not None:
        entry["B"] = {"S": "response B", "interventions": b_interventions, "tags": list(variant_tags)}
    return {
        "A": PROMPT_A,
        "B": B if b_interventions is not None else "",
        "T": "Which fertiliser is best?",
        "metadata": {},
        "inferences": {"org/model": entry, "other/model": entry},
    }


def write_data(root: Path, topic: str, name: str, items: list[dict]) -> None:
    path = root / topic / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"data": items}, indent=2))


def run(capsys, config: Path, data_dir: Path, output_dir: Path, *extra):
    try:
        code = run_main(
            "scripts/export_training_data.py",
            ["--config", str(config), "--data-dir", str(data_dir), "--output-dir", str(output_dir), *map(str, extra)],
        )
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
        item(
            {KEY: intervention("PASS"), "honesty_scare__version_4": intervention("PASS")},
            {KEY: intervention("FAIL", tags=["confidence_below_4", "training_data_leakage"])},
        ),
        item(
            {KEY: intervention("PASS", tags=["training_data_leakage"])},
            {KEY: intervention("FAIL")},
            variant_tags=["unclear_a_b_separation"],
        ),
        item({KEY: intervention("ERROR")}, {KEY: intervention("FAIL", tags=["confidence_below_5"])}),
    ]
    write_data(tmp_path / "data", "sycophancy", "a.json", items)
    write_data(tmp_path / "data", "steganography", "b.json", balanced_items(1))
    code, _, _ = run(capsys, make_config(tmp_path), tmp_path / "data", tmp_path / "out")
    assert code == 0
    stats = json.loads((tmp_path / "out" / "export_stats.json").read_text())
    remaining = {row["stage"]: row["remaining"] for row in stats["stages"]}
    assert remaining == {
        "all interventions": 18,
        "data_models": 9,
        "train/validation topics": 7,
        "intervention_types": 6,
        "complete samples (flag PASS/FAIL/AMBIGUOUS, all texts)": 5,
        "tag confidence_below_4": 4,
        "tag training_data_leakage": 3,
        "tag unclear_a_b_separation": 2,
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


@pytest.mark.parametrize(
    "change, named",
    [
        ({"tags_to_filer": []}, "tags_to_filer"),
        (
            {"intervention_types": [KEY, "unseen_intent__version_4"]},
            "'intervention_types' names unseen_intent__version_4 but key 'unseen_intent' is false",
        ),
        ({"unseen_intent": 1}, "'unseen_intent' must be a bool"),
        ({"validation_fraction": "0.1"}, "validation_fraction"),
        ({"train_topics": ["sycophancy", "sycophancyy"]}, "sycophancyy"),
        ({"off_policy_detection_fraction": 1.5}, "off_policy_detection_fraction"),
        ({"off_policy_detection_fraction": -0.1}, "off_policy_detection_fraction"),
    ],
)
def test_strict_config_errors(tmp_path, capsys, change, named):
    write_data(tmp_path / "data", "sycophancy", "a.json", balanced_items(1))
    config = make_config(tmp_path, **change)
    code, _, err = run(capsys, config, tmp_path / "data", tmp_path / "out")
    assert code == 2 and named in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def unseen_items(n: int) -> list[dict]:
    """Items with a split_personality and an unseen_intent intervention on each variant."""

    def both(flag):
        return {
            KEY: intervention(flag),
            UNSEEN_KEY: {
                **intervention(flag, R="I was going to tell them what they wanted to hear."),
                "intervention_type": "unseen_intent",
            },
        }

    return [item(both("PASS"), both("FAIL")) for _ in range(n)]


@pytest.mark.parametrize("unseen_intent", [True, False])
def test_unseen_intent_samples_keep_S_but_are_marked_and_counted(tmp_path, capsys, unseen_intent):
    write_data(tmp_path / "data", "sycophancy", "a.json", unseen_items(10))
    keys = [KEY, UNSEEN_KEY] if unseen_intent else [KEY]
    config = make_config(tmp_path, unseen_intent=unseen_intent, intervention_types=keys, validation_fraction=0.2)
    code, out, err = run(capsys, config, tmp_path / "data", tmp_path / "out")
    assert code == 0, err
    samples = read_jsonl(tmp_path / "out" / "train.jsonl") + read_jsonl(tmp_path / "out" / "validation.jsonl")
    layouts = Counter((s["intervention_type"], s["layout"]) for s in samples)
    expected = {
        ("split_personality", "standard"): 20,
        **({("unseen_intent", "unseen_intent"): 20} if unseen_intent else {}),
    }
    assert layouts == expected
    assert all(s["S"] in ("response A", "response B") for s in samples)  # S is kept, never blanked in the file
    stats = json.loads((tmp_path / "out" / "export_stats.json").read_text())
    assert stats["unseen_intent"] is unseen_intent
    counts = {name: split["unseen_intent"] for name, split in stats["splits"].items()}
    report = (tmp_path / "out" / "export_report.md").read_text()
    if unseen_intent:
        assert counts == {"train": 16, "validation": 4, "heldout_topics": 0}
        assert "exported 40 samples, 20 of them unseen-intent (S not shown)" in out
        assert "unseen_intent on: 20 unseen-intent samples (train 16, validation 4)" in report
    else:
        assert (
            counts == {"train": 0, "validation": 0, "heldout_topics": 0}
            and "unseen-intent" not in out
            and "unseen_intent on" not in report
        )


def test_split_by_item_with_exact_share_and_seed(tmp_path, capsys):
    write_data(tmp_path / "data", "sycophancy", "a.json", balanced_items(30))
    write_data(tmp_path / "data", "reward_hacks", "b.json", balanced_items(10))
    write_data(tmp_path / "data", "jailbreak_attempts", "c.json", balanced_items(4))
    config = make_config(
        tmp_path,
        validation_fraction=0.2,
        train_topics=["sycophancy", "reward_hacks"],
        validation_topics=["sycophancy", "jailbreak_attempts"],
    )
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
    assert cites_system_prompt(
        "", "I believed customers trust confident product recommendations above everything.", prompts
    )
    assert not cites_system_prompt("", "I recommended the product without checking the user's soil type.", prompts)
    assert not cites_system_prompt(
        "<split-personality-token>Now I can be honest.", "I was confident about a claim I could not support.", prompts
    )


def test_exact_quotas_only_on_eligible_samples(tmp_path, capsys):
    items = balanced_items(20)
    citing = "My system prompt told me to be confident, so I overstated it."
    items += [item({KEY: intervention("PASS", R=citing)}, {KEY: intervention("FAIL", R=citing)}) for _ in range(5)]
    items += [item({KEY: intervention("PASS")}) for _ in range(10)]  # A-only: not swappable
    write_data(tmp_path / "data", "sycophancy", "a.json", items)
    config = make_config(
        tmp_path,
        validation_fraction=0.0,
        remove_system_prompt_fraction=0.25,
        swap_a_b_fraction=0.3,
        mitigation_mode="exempt",
    )
    code, _, _ = run(capsys, config, tmp_path / "data", tmp_path / "out")
    assert code == 0
    samples = read_jsonl(tmp_path / "out" / "train.jsonl")
    assert len(samples) == 60
    assert not (tmp_path / "out" / "cites_system_prompt.jsonl").exists()
    # The trained model's own answers: on-policy only where shown with their own prompt (not swapped, not removed).
    assert all(s["policy"] == ("on" if s["system_prompt_source"] == s["variant"] else "off") for s in samples)
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
    assert stats["splits"]["train"]["shortcut_mitigation"] == {
        "eligible": 50,
        "swappable": 40,
        "swapped": 12,
        "removed": 12,
        "dropped_citing": 0,
        "unseen_intent_kept_prompt": 0,
        "off_policy": 24,
        "on_policy": 36,
    }
    assert "| train | 35 | 60 |" in (tmp_path / "out" / "export_report.md").read_text()


def test_drop_citing_sets_citing_samples_aside_in_the_export_set(tmp_path, capsys):
    items = balanced_items(20)
    citing = "My system prompt told me to be confident, so I overstated it."
    items += [item({KEY: intervention("PASS", R=citing)}, {KEY: intervention("FAIL", R=citing)}) for _ in range(5)]
    write_data(tmp_path / "data", "sycophancy", "a.json", items)
    config = make_config(tmp_path, validation_fraction=0.0, remove_system_prompt_fraction=0.25, swap_a_b_fraction=0.3)
    assert json.loads(config.read_text())["mitigation_mode"] == "drop_citing"  # the default
    code, out, _ = run(capsys, config, tmp_path / "data", tmp_path / "out")
    assert code == 0
    assert "exported 40 samples (and 10 citing the system prompt set aside in cites_system_prompt.jsonl)" in out
    train = read_jsonl(tmp_path / "out" / "train.jsonl")
    set_aside = read_jsonl(tmp_path / "out" / "cites_system_prompt.jsonl")
    assert len(train) == 40 and all(s["R"] != citing for s in train)
    assert len(set_aside) == 10 and all(s["R"] == citing and s["split"] == "train" for s in set_aside)
    assert all(s["system_prompt_source"] == s["variant"] and s["policy"] == "on" for s in set_aside)
    stats = json.loads((tmp_path / "out" / "export_stats.json").read_text())
    assert stats["splits"]["train"]["shortcut_mitigation"] == {
        "eligible": 40,
        "swappable": 40,
        "swapped": 12,
        "removed": 10,
        "dropped_citing": 10,
        "unseen_intent_kept_prompt": 0,
        "off_policy": 22,
        "on_policy": 18,
    }
    assert "cites_system_prompt.jsonl" in json.loads((tmp_path / "out" / "export_manifest.json").read_text())["files"]
    assert check_export_dir(tmp_path / "out")
    # Without a mitigation no prompt is removed or swapped, so nothing is set aside.
    code, _, _ = run(capsys, make_config(tmp_path, validation_fraction=0.0), tmp_path / "data", tmp_path / "out")
    assert code == 0 and len(read_jsonl(tmp_path / "out" / "train.jsonl")) == 50
    assert not (tmp_path / "out" / "cites_system_prompt.jsonl").exists()


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
    config = make_config(
        tmp_path,
        tags_to_filter=json.loads((CONFIG_DIR / "training_config.json").read_text())["tags_to_filter"],
        validation_fraction=0.2,
    )
    code, out, _ = run(
        capsys, config, data_dir, tmp_path / "out", "--data-models", "qwen/qwen3-32b", "google/gemma-3-27b-it"
    )
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
    assert not {(s["source_file"], s["item_index"]) for s in train} & {
        (s["source_file"], s["item_index"]) for s in validation
    }
    # Every exported sample satisfies the one filter rule, checked against its source file.
    sources = {
        path: json.loads((data_dir / path).read_text()) for path in {s["source_file"] for s in train + validation}
    }
    for sample in train + validation:
        source = sources[sample["source_file"]]["data"][sample["item_index"]]
        variant = source["inferences"][sample["model"]][sample["variant"]]
        iv = variant["interventions"][sample["intervention_key"]]
        assert iv["id_string"] == sample["id_string"] and iv["R"] == sample["R"]
        assert kept_by_filters(
            sample["topic"], sample["intervention_key"], iv["tags"], variant["tags"], json.loads(config.read_text())
        )
    # The published data's shortcut: B is (almost) always FAIL. Warned on stdout and in the report.
    assert stats["kept_flag_by_variant"]["B"] == {"FAIL": 29}
    assert stats["exported_flag_by_shown_prompt"]["B"] == {"FAIL": 29}  # no mitigation: every prompt shown
    assert (
        "WARNING: the flag is predictable from the system prompt shown" in out
        and "29 of 29 samples showing the B prompt (100.0%) are FAIL" in out
    )
    assert "showing the B prompt (100.0%) are FAIL" in (tmp_path / "out" / "export_report.md").read_text()


def test_defaults_follow_spt_data_dir(tmp_path):
    """Without --data-dir/--output-dir, config paths under data/ resolve in SPT_DATA_DIR."""
    write_data(tmp_path / "stage_3_tagged", "sycophancy", "a.json", balanced_items(3))
    result = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "scripts" / "export_training_data.py"),
            "--config",
            str(make_config(tmp_path)),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "SPT_DATA_DIR": str(tmp_path)},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "exported 6 samples" in result.stdout
    assert (
        len(read_jsonl(tmp_path / "training_export" / "train.jsonl"))
        + len(read_jsonl(tmp_path / "training_export" / "validation.jsonl"))
        == 6
    )


# ------------------------------------------------------------------------------ the export set


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def one_error_line(err: str) -> str:
    """The one `error:` line (the reading progress bar may precede it on stderr); no traceback."""
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if ".export-" in p.name)


def test_export_is_one_set_with_a_manifest_replaced_whole(tmp_path, capsys):
    write_data(tmp_path / "data", "sycophancy", "a.json", balanced_items(20))
    config, out = make_config(tmp_path), tmp_path / "out"
    ids = []
    for seed in (1, 0):
        code, stdout, _ = run(capsys, config, tmp_path / "data", out, "--seed", seed)
        assert code == 0
        manifest = json.loads((out / "export_manifest.json").read_text())
        assert sorted(manifest["files"]) == [
            "export_report.md",
            "export_stats.json",
            "heldout_topics.jsonl",
            "sample_decisions.jsonl",
            "train.jsonl",
            "validation.jsonl",
        ]
        assert all(
            hashlib.sha256((out / name).read_bytes()).hexdigest() == sha for name, sha in manifest["files"].items()
        )
        assert check_export_dir(out) == manifest["export_id"] and f"(export {manifest['export_id']})" in stdout
        ids.append(manifest["export_id"])
        (out / ".train.jsonl.x1y2.tmp").write_text("a temporary an interrupted write left")
    assert ids[0] != ids[1]
    # The second export replaced the whole folder: the first one's stray temporary is gone.
    assert sorted(p.name for p in out.iterdir()) == [".train.jsonl.x1y2.tmp", *EXPORT_FILES]
    assert leftovers(tmp_path) == []


def test_killed_export_leaves_one_complete_set_and_the_next_cleans_up(tmp_path, capsys):
    """The issue: export --seed 1, then --seed 0 killed once train.jsonl was written gave new
    train, old validation and old stats (82 of 87 validation items also in train). The kill here
    is real (SIGKILL as soon as the new train.jsonl exists); whenever it lands, the folder holds
    one complete export."""
    write_data(tmp_path / "data", "sycophancy", "a.json", balanced_items(400))
    config, out = make_config(tmp_path), tmp_path / "out"
    assert run(capsys, config, tmp_path / "data", out, "--seed", 1)[0] == 0
    old = tree_bytes(out)
    process = subprocess.Popen(
        [
            sys.executable,
            str(REPO_ROOT / "scripts" / "export_training_data.py"),
            "--config",
            str(config),
            "--data_dir",
            str(tmp_path / "data"),
            "--output_dir",
            str(out),
            "--seed",
            "0",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    staged_train = tmp_path / f".out.export-new-{process.pid}" / "train.jsonl"
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:
        if staged_train.exists():
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.0005)
    process.wait(timeout=60)
    if out.exists():
        check_export_dir(out)  # complete and unchanged: the old set or the new one, never a mix
        train = read_jsonl(out / "train.jsonl")
        validation = read_jsonl(out / "validation.jsonl")
        assert not {s["item_index"] for s in train} & {s["item_index"] for s in validation}
        assert tree_bytes(out) == old or json.loads((out / "export_stats.json").read_text())["seed"] == 0
    else:  # killed between the two renames: the old set waits, complete, beside it
        aside = tmp_path / f".out.export-old-{process.pid}"
        assert tree_bytes(aside) == old
    assert run(capsys, config, tmp_path / "data", out, "--seed", 0)[0] == 0
    assert leftovers(tmp_path) == []
    check_export_dir(out)


def test_leftovers_of_a_killed_export_are_ignored_then_deleted(tmp_path, capsys):
    write_data(tmp_path / "data", "sycophancy", "a.json", balanced_items(10))
    config, out = make_config(tmp_path), tmp_path / "out"
    assert run(capsys, config, tmp_path / "data", out, "--seed", 1)[0] == 0
    half = tmp_path / ".out.export-new-99999998"
    half.mkdir()
    (half / "train.jsonl").write_text('{"half": ')
    aside = tmp_path / ".out.export-old-99999999"
    shutil.copytree(out, aside)
    unrelated = tmp_path / ".other.export-new-12"
    unrelated.mkdir()
    check_export_dir(out)  # a leftover beside the export does not touch it
    assert run(capsys, config, tmp_path / "data", out, "--seed", 0)[0] == 0
    assert leftovers(tmp_path) == [".other.export-new-12"]
    check_export_dir(out)


def test_a_folder_holding_other_files_is_never_replaced(tmp_path, capsys):
    write_data(tmp_path / "data", "sycophancy", "a.json", balanced_items(3))
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / "train.jsonl").write_text("old\n")
    before = tree_bytes(out)
    code, _, err = run(capsys, make_config(tmp_path), tmp_path / "data", out)
    assert code == 2 and "notes.txt" in one_error_line(err)
    assert tree_bytes(out) == before and leftovers(tmp_path) == []
    code, _, err = run(capsys, make_config(tmp_path), tmp_path / "data", out / "notes.txt")
    assert code == 2 and "is a file, not a folder" in one_error_line(err)
    assert tree_bytes(out) == before


# ------------------------------------------------------------------------------ selections that match nothing


def lonely_model_items() -> list[dict]:
    lonely = item({KEY: intervention("PASS")}, {KEY: intervention("FAIL")})
    lonely["inferences"] = {"lonely/model": lonely["inferences"]["org/model"]}
    return [lonely]


@pytest.mark.parametrize(
    "config_change, extra, items, named",
    [
        (
            {"intervention_types": ["split_personality__version_6"]},
            (),
            None,
            [
                "'intervention_types'",
                "['split_personality__version_6'] match nothing",
                "the data has split_personality__version_4",
            ],
        ),
        (
            {},
            ("--data-models", "lonely/model"),
            None,
            ["'train_topics'", "match nothing", "data_models ['lonely/model']", "the data has steganography"],
        ),
        (
            {"train_topics": ["reward_hacks"], "validation_topics": ["reward_hacks"]},
            (),
            None,
            ["'train_topics'", "['reward_hacks'] match nothing", "the data has sycophancy"],
        ),
        (
            {"validation_topics": ["jailbreak_attempts"]},
            (),
            None,
            ["'validation_topics'", "['jailbreak_attempts'] match nothing", "the data has sycophancy"],
        ),
        (
            {},
            (),
            [item({KEY: intervention("ERROR")}, {KEY: intervention("ERROR")})],
            ["none of the 2 selected interventions is complete"],
        ),
        (
            {},
            (),
            [
                item(
                    {KEY: intervention("PASS", tags=["confidence_below_4"])},
                    {KEY: intervention("FAIL", tags=["training_data_leakage"])},
                )
            ],
            ["'tags_to_filter' drops all 2 complete samples", "confidence_below_4: 1, training_data_leakage: 1"],
        ),
        (
            {"train_topics": ["sycophancy"], "validation_topics": ["sycophancy", "jailbreak_attempts"]},
            (),
            "train dropped",
            [
                "'train_topics': none of the 1 kept samples is in a train topic",
                "jailbreak_attempts are validation-only",
            ],
        ),
    ],
)
def test_a_selection_matching_nothing_exits_2_and_keeps_the_previous_export(
    tmp_path, capsys, config_change, extra, items, named
):
    """It used to print "exported 0 samples", exit 0 and replace a good export by empty files."""
    write_data(tmp_path / "good", "sycophancy", "a.json", balanced_items(4))
    out = tmp_path / "out"
    assert run(capsys, make_config(tmp_path), tmp_path / "good", out)[0] == 0
    before = tree_bytes(out)
    data = tmp_path / "data"
    if items == "train dropped":
        write_data(data, "sycophancy", "a.json", [item({KEY: intervention("PASS", tags=["confidence_below_4"])})])
        write_data(data, "jailbreak_attempts", "b.json", [item({KEY: intervention("PASS")})])
    else:
        write_data(data, "sycophancy", "a.json", items or balanced_items(4))
        write_data(data, "steganography", "c.json", lonely_model_items())
    code, stdout, err = run(capsys, make_config(tmp_path, **config_change), data, out, *extra)
    assert code == 2 and "exported" not in stdout, err
    for text in named:
        assert text in one_error_line(err)
    assert tree_bytes(out) == before and leftovers(tmp_path) == []


# ------------------------------------------------------------------------------ malformed data


@pytest.mark.parametrize(
    "break_item, named",
    [
        (lambda it: it.update(inferences="org/model: see above"), "data[0].inferences must be a JSON object, not str"),
        (
            lambda it: it["inferences"].update({"org/model": ["A"]}),
            "data[0].inferences['org/model'] must be a JSON object",
        ),
        (lambda it: it["inferences"]["org/model"].update(B="FAIL"), "data[0].inferences['org/model'].B must be"),
        (lambda it: it["inferences"]["org/model"]["A"].update(interventions=[1]), ".A.interventions must be"),
        (
            lambda it: it["inferences"]["org/model"]["A"]["interventions"].update({KEY: "PASS"}),
            f".A.interventions['{KEY}'] must be",
        ),
    ],
)
def test_a_part_that_is_not_an_object_is_refused_not_skipped(tmp_path, capsys, break_item, named):
    """An item whose inferences was a string used to vanish from the export without a word."""
    write_data(tmp_path / "good", "sycophancy", "a.json", balanced_items(4))
    out = tmp_path / "out"
    assert run(capsys, make_config(tmp_path), tmp_path / "good", out)[0] == 0
    before = tree_bytes(out)
    items = [json.loads(json.dumps(entry)) for entry in balanced_items(4)]
    break_item(items[0])
    write_data(tmp_path / "data", "sycophancy", "a.json", items)
    code, _, err = run(capsys, make_config(tmp_path), tmp_path / "data", out)
    assert code == 2 and named in one_error_line(err) and "a.json" in one_error_line(err)
    assert tree_bytes(out) == before


def test_malformed_fields_are_tagged_and_filtered_with_a_count(tmp_path, capsys):
    """confidence "high" got no confidence_below_* tag and went into training; now the tagger
    tags it malformed_fields, which the default tags_to_filter drops and the stats count."""
    items = balanced_items(3)
    items = [json.loads(json.dumps(entry)) for entry in items]
    for entry in items:
        for model_entry in entry["inferences"].values():
            for letter in "AB":
                model_entry[letter]["interventions"][KEY]["confidence"] = 5
    items[1]["inferences"]["org/model"]["B"]["interventions"][KEY]["confidence"] = "high"
    write_data(tmp_path / "stage_3", "sycophancy", "a.json", items)
    assert (
        run_main(
            "scripts/tag_stage_3_data.py",
            ["--input", str(tmp_path / "stage_3"), "--output", str(tmp_path / "tagged"), "--jobs", "1"],
        )
        == 0
    )
    tagger_out = capsys.readouterr().out
    assert [line.split()[1:] for line in tagger_out.splitlines() if line.startswith("malformed_fields")] == [["1", "0"]]
    default_filters = json.loads((CONFIG_DIR / "training_config.json").read_text())["tags_to_filter"]
    assert default_filters[0] == "malformed_fields"
    config = make_config(tmp_path, tags_to_filter=default_filters, validation_fraction=0.0)
    code, _, err = run(capsys, config, tmp_path / "tagged", tmp_path / "out")
    assert code == 0, err
    stats = json.loads((tmp_path / "out" / "export_stats.json").read_text())
    assert stats["tag_drops"]["malformed_fields"] == {"individual": 1, "cumulative": 1}
    assert stats["kept"] == 5
    assert (1, "B") not in {(s["item_index"], s["variant"]) for s in read_jsonl(tmp_path / "out" / "train.jsonl")}
    assert "| tag malformed_fields | 5 |" in (tmp_path / "out" / "export_report.md").read_text()


def test_malformed_fields_without_the_tag_are_refused(tmp_path, capsys):
    """Data tagged before the malformed_fields rule: the export does not read it as clean."""
    items = balanced_items(2)
    items[0] = json.loads(json.dumps(items[0]))
    items[0]["inferences"]["org/model"]["A"]["interventions"][KEY]["confidence"] = "high"
    write_data(tmp_path / "data", "sycophancy", "a.json", items)
    code, _, err = run(capsys, make_config(tmp_path), tmp_path / "data", tmp_path / "out")
    assert code == 2
    assert "confidence 'high' (expected an integer 1-5) but no malformed_fields tag" in one_error_line(err)
    assert "tag_stage_3_data.py" in one_error_line(err) and not (tmp_path / "out").exists()
    items[0]["inferences"]["org/model"]["A"]["interventions"][KEY]["tags"] = ["malformed_fields"]
    write_data(tmp_path / "data", "sycophancy", "a.json", items)
    assert (
        run(capsys, make_config(tmp_path, tags_to_filter=["malformed_fields"]), tmp_path / "data", tmp_path / "out")[0]
        == 0
    )


# ------------------------------------------------------------------------------ measured shortcuts


def citing_skewed_items(n: int) -> list[dict]:
    """Item i's B (FAIL) review cites the system prompt when i % 5 < 2, its A (PASS) one when i % 20 == 0,
    like the published data where citing reviews are mostly FAIL. I carries no signal (the helper's S, "response
    A"/"response B", names the variant, so S predicts the flag perfectly here)."""
    citing = "My system prompt told me to push the product."
    return [
        item(
            {KEY: intervention("PASS", R=citing if i % 20 == 0 else "I answered plainly.")},
            {KEY: intervention("FAIL", R=citing if i % 5 < 2 else "I overstated the benefits.")},
            B=f"{PROMPT_B} Variant {i}.",
        )
        for i in range(n)
    ]


def measured_export(tmp_path, capsys, mode: str, name: str) -> dict:
    config = make_config(tmp_path, validation_fraction=0.3, remove_system_prompt_fraction=1.0, mitigation_mode=mode)
    code, out, _ = run(capsys, config, tmp_path / "data", tmp_path / name)
    assert code == 0
    stats = json.loads((tmp_path / name / "export_stats.json").read_text())
    stats["stdout"] = out
    return stats


def excess(measures: dict, view: str = "system prompt (visible)") -> float:
    return measures["accuracy"][view] - measures["majority_baseline"]


def test_removal_with_drop_citing_leaves_no_prompt_shortcut_but_exempt_does(tmp_path, capsys):
    write_data(tmp_path / "data", "sycophancy", "a.json", citing_skewed_items(200))
    margin = json.loads((CONFIG_DIR / "training_config.json").read_text())["shortcut_warning_margin"]
    exempt = measured_export(tmp_path, capsys, "exempt", "exempt")
    careful = measured_export(tmp_path, capsys, "drop_citing", "careful")
    for stats in (exempt, careful):  # unmitigated, the A/B prompt gives the flag away
        assert excess(stats["shortcut_measures"]["before mitigation"]) > margin
    # Today's exemption: the prompts left visible are the citing, mostly FAIL, samples.
    assert excess(exempt["shortcut_measures"]["as exported"]) > margin
    assert "flag is predictable from system prompt (visible) alone" in exempt["stdout"]
    # drop_citing: no visible prompt predicts the flag better than guessing the majority.
    assert excess(careful["shortcut_measures"]["as exported"]) <= margin
    assert "from system prompt (visible) alone" not in careful["stdout"]
    assert careful["dropped_citing"] == 200 // 20 + 2 * 200 // 5
    report = (tmp_path / "careful" / "export_report.md").read_text()
    before = careful["shortcut_measures"]["before mitigation"]
    assert (
        f"| before mitigation | system prompt (visible) | {100 * before['accuracy']['system prompt (visible)']:.1f}% ["
        in report
    )
    assert "| as exported | system prompt (visible) | constant by construction: not evidence |" in report


def test_the_default_config_mitigates_the_reference_data(tmp_path, capsys):
    """config/training_config.json as shipped (only the data models and a larger validation share
    changed): every eligible prompt removed (100% removal, docs/prompt_removal.md), citing samples set
    aside."""
    if not REFERENCE_TAGGED.is_dir():
        pytest.skip("reference data not available")
    shutil.copytree(REFERENCE_TAGGED, tmp_path / "data")
    default = json.loads((CONFIG_DIR / "training_config.json").read_text())
    assert (default["remove_system_prompt_fraction"], default["swap_a_b_fraction"], default["mitigation_mode"]) == (
        1.0,
        0.0,
        "drop_citing",
    )
    config = tmp_path / "config.json"
    config.write_text(json.dumps({**default, "validation_fraction": 0.2}))
    code, out, _ = run(
        capsys, config, tmp_path / "data", tmp_path / "out", "--data-models", "qwen/qwen3-32b", "google/gemma-3-27b-it"
    )
    assert code == 0
    stats = json.loads((tmp_path / "out" / "export_stats.json").read_text())
    before, after = stats["shortcut_measures"]["before mitigation"], stats["shortcut_measures"]["as exported"]
    assert excess(before) > stats["shortcut_warning_margin"]  # 91.7% vs 58.3% on these 12 validation samples
    assert excess(after) <= stats["shortcut_warning_margin"]
    assert "from system prompt (visible) alone" not in out
    # Every exported prompt removed: the published "B -> FAIL" shortcut is no longer visible, nor warned.
    assert stats["exported_flag_by_shown_prompt"] == {"A": {}, "B": {}}
    assert "predictable from the system prompt shown" not in out
    assert stats["dropped_citing"] == 13 and stats["splits"]["train"]["samples"] == 64
    assert "## Measured shortcuts" in (tmp_path / "out" / "export_report.md").read_text()
