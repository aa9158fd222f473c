"""Tests of the training export's labels and learnability (issue 18): true policy labels, unseen-intent
samples that keep their prompt, the check for samples a model cannot tell apart, the held-out-topic
file and the leave-topics-out folds; on hand-made data and on the reference data."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest
from test_export import (
    KEY,
    PROMPT_A,
    PROMPT_B,
    REFERENCE_MORE,
    REFERENCE_TAGGED,
    UNSEEN_KEY,
    balanced_items,
    intervention,
    item,
    make_config,
    one_error_line,
    read_jsonl,
    run,
    unseen_items,
    write_data,
)

from spt.export.contexts import drop_indistinguishable
from spt.export.output_set import check_export_dir
from spt.export.policy import is_own_answer
from spt.export.run import SAMPLE_KEYS
from spt.utils import CONFIG_DIR

QWEN = "qwen/qwen3-32b"


def exported(out: Path, splits=("train", "validation")) -> list[dict]:
    return [sample for split in splits for sample in read_jsonl(out / f"{split}.jsonl")]


def stats_of(out: Path) -> dict:
    return json.loads((out / "export_stats.json").read_text())


# ------------------------------------------------------------------------------ policy labels


def two_model_items(n: int) -> list[dict]:
    """Balanced items answered by org/model and, differently, by other/model."""
    items = []
    for index in range(n):
        one = item({KEY: intervention("PASS")}, {KEY: intervention("FAIL")})
        other = json.loads(json.dumps(one["inferences"]["org/model"]))
        other["A"]["S"], other["B"]["S"] = f"other answer A {index}", f"other answer B {index}"
        one["inferences"]["other/model"] = other
        items.append(one)
    return items


def test_policy_is_on_only_for_the_trained_models_answer_shown_with_its_own_prompt(tmp_path, capsys):
    write_data(tmp_path / "data", "sycophancy", "a.json", two_model_items(20))
    # The trained model named by base_model alone, spelt as a Hugging Face id (compared case-insensitively).
    config = make_config(
        tmp_path,
        data_models=["org/model", "other/model"],
        trained_model_data_id="",
        base_model="Org/Model",
        validation_fraction=0.2,
        remove_system_prompt_fraction=0.3,
        swap_a_b_fraction=0.3,
    )
    code, out, err = run(capsys, config, tmp_path / "data", tmp_path / "out")
    assert code == 0, err
    samples = exported(tmp_path / "out")
    assert len(samples) == 80
    for sample in samples:
        as_generated = sample["system_prompt_source"] == sample["variant"]
        assert sample["policy"] == ("on" if as_generated and sample["model"] == "org/model" else "off"), sample
        if as_generated:
            assert sample["system_prompt"] == (PROMPT_A if sample["variant"] == "A" else PROMPT_B)
    sources = Counter((s["model"], s["system_prompt_source"] == s["variant"], s["policy"]) for s in samples)
    assert sources[("org/model", True, "on")] > 0 and sources[("org/model", False, "off")] > 0
    assert sources[("other/model", True, "off")] > 0  # another model's answer with its own prompt: still off
    stats = stats_of(tmp_path / "out")
    for split in ("train", "validation"):
        review = stats["splits"][split]["policy"]["review"]
        split_samples = read_jsonl(tmp_path / "out" / f"{split}.jsonl")
        for letter in ("A", "B"):
            mine = [s for s in split_samples if s["variant"] == letter]
            assert review[letter]["on"] == sum(s["policy"] == "on" for s in mine)
            assert review[letter]["off"] == sum(s["policy"] == "off" for s in mine)
            assert review[letter]["another model's answer"] == sum(s["model"] == "other/model" for s in mine)
            assert review[letter]["prompt removed"] == sum(s["system_prompt_source"] == "none" for s in mine)
    report = (tmp_path / "out" / "export_report.md").read_text()
    on_a = stats["splits"]["train"]["policy"]["review"]["A"]["on"]
    assert "## Policy labels" in report and f"| train | A | {on_a} |" in report
    assert "every one of the" not in out


def test_a_warning_when_every_review_sample_is_off_policy(tmp_path, capsys):
    write_data(tmp_path / "data", "sycophancy", "a.json", two_model_items(10))
    config = make_config(tmp_path, data_models=["other/model"], trained_model_data_id="org/model")
    code, out, _ = run(capsys, config, tmp_path / "data", tmp_path / "out")
    assert code == 0
    assert all(sample["policy"] == "off" for sample in exported(tmp_path / "out"))
    warning = (
        "WARNING: every one of the 20 review samples is off-policy (another model's answer 20, prompt removed 0, "
        "prompt swapped 0)"
    )
    assert warning in out and warning in (tmp_path / "out" / "export_report.md").read_text()
    assert any(warning in line for line in stats_of(tmp_path / "out")["warnings"])


def test_the_shipped_configs_train_on_the_base_models_own_answers():
    for name in ("training_config.json", "demo_training_config.json"):
        config = json.loads((CONFIG_DIR / name).read_text())
        assert all(is_own_answer(model, config) for model in config["data_models"]), name
    default = json.loads((CONFIG_DIR / "training_config.json").read_text())
    assert default["base_model"] == "meta-llama/Llama-3.3-70B-Instruct"
    assert default["data_models"] == ["meta-llama/llama-3.3-70b-instruct"] and default["trained_model_data_id"] == ""


# ------------------------------------------------------------------------------ unseen intent


def test_unseen_intent_samples_always_keep_the_prompt_they_were_generated_under(tmp_path, capsys):
    write_data(tmp_path / "data", "sycophancy", "a.json", unseen_items(20))
    config = make_config(
        tmp_path,
        unseen_intent=True,
        intervention_types=[KEY, UNSEEN_KEY],
        validation_fraction=0.2,
        remove_system_prompt_fraction=0.25,
        swap_a_b_fraction=0.5,
    )
    code, _, err = run(capsys, config, tmp_path / "data", tmp_path / "out")
    assert code == 0, err
    samples = exported(tmp_path / "out")
    unseen = [s for s in samples if s["layout"] == "unseen_intent"]
    standard = [s for s in samples if s["layout"] == "standard"]
    assert len(unseen) == len(standard) == 40
    for sample in unseen:
        assert sample["system_prompt_source"] == sample["variant"] and sample["policy"] == "on"
        assert sample["system_prompt"] == (PROMPT_A if sample["variant"] == "A" else PROMPT_B)
    # The quotas apply to the standard samples alone: half swapped, a quarter removed.
    sources = Counter(s["system_prompt_source"] for s in standard)
    assert sources["A->B"] + sources["B->A"] == 16 + 4 and sources["none"] == 8 + 2
    mitigation = stats_of(tmp_path / "out")["splits"]["train"]["shortcut_mitigation"]
    assert mitigation["eligible"] == 32 and mitigation["unseen_intent_kept_prompt"] == 32


# ------------------------------------------------------------------------------ indistinguishable samples


def same_answer_items(n: int) -> list[dict]:
    """A and B answered with the same words and opposite flags: with the prompts removed, one visible context."""
    items = []
    for index in range(n):
        one = item({KEY: intervention("PASS")}, {KEY: intervention("FAIL")})
        one["T"] = f"Question {index}"
        entry = one["inferences"]["org/model"] = json.loads(json.dumps(one["inferences"]["org/model"]))
        entry["A"]["S"] = entry["B"]["S"] = f"The same answer {index}."
        items.append(one)
    return items


def test_samples_with_one_visible_context_and_different_flags_are_dropped_and_reported(tmp_path, capsys):
    write_data(tmp_path / "data", "sycophancy", "a.json", same_answer_items(6) + balanced_items(10))
    config = make_config(tmp_path, validation_fraction=0.2, remove_system_prompt_fraction=1.0)
    code, out, _ = run(capsys, config, tmp_path / "data", tmp_path / "out")
    assert code == 0
    samples = exported(tmp_path / "out")
    assert not any(s["S"].startswith("The same answer") for s in samples) and len(samples) == 20
    contexts = Counter((s["task"], s["system_prompt"], s["T"], s["S"]) for s in samples)
    assert all(
        len({s["P"] for s in samples if (s["task"], s["system_prompt"], s["T"], s["S"]) == c}) == 1 for c in contexts
    )
    found = stats_of(tmp_path / "out")["indistinguishable"]
    assert found["groups"] == 6 and found["samples_dropped"] == 12
    assert sum(found["samples_dropped_by_split"].values()) == 12
    assert "Checked: 6 groups" in (tmp_path / "out" / "export_report.md").read_text()
    assert "6 groups of indistinguishable samples dropped" in out
    # With their prompts shown the same answers are told apart: checked, nothing dropped.
    code, out, _ = run(capsys, make_config(tmp_path, validation_fraction=0.2), tmp_path / "data", tmp_path / "out")
    assert code == 0 and len(exported(tmp_path / "out")) == 32
    assert stats_of(tmp_path / "out")["indistinguishable"]["groups"] == 0
    assert "Checked: 0 groups" in (tmp_path / "out" / "export_report.md").read_text()


def test_the_check_sees_what_the_model_reads_across_files():
    """Unseen intent: S hidden (or its first N characters); a group spanning two files goes from both."""

    def sample(flag, S, layout="unseen_intent", task="review", I="i"):
        return {"task": task, "system_prompt": "", "T": "t", "S": S, "layout": layout, "P": flag, "I": I}

    splits = {
        "train": [sample("PASS", "abc one"), sample("PASS", "xyz")],
        "heldout_topics": [sample("FAIL", "abd two"), sample("FAIL", "xyz", task="off_policy_detection")],
    }
    assert drop_indistinguishable({name: list(s) for name, s in splits.items()}, 2)["groups"] == 1  # "ab"
    assert drop_indistinguishable({name: list(s) for name, s in splits.items()}, 3)["groups"] == 0  # "abc" / "abd"
    hidden = {name: list(s) for name, s in splits.items()}
    assert drop_indistinguishable(hidden, 0) == {
        "groups": 1,
        "samples_dropped": 3,
        "samples_dropped_by_split": {"train": 2, "heldout_topics": 1},
    }
    assert hidden == {"train": [], "heldout_topics": [splits["heldout_topics"][1]]}  # another task: kept
    standard = {"train": [sample("PASS", "abc", "standard")], "validation": [sample("FAIL", "abd", "standard")]}
    assert drop_indistinguishable(standard, 0)["groups"] == 0
    # One answer, two interventions with different flags: after the token (hp) they conflict; as the user
    # message before the token (ur) the model reads I, so they do not.
    two = {
        "train": [
            sample("PASS", "abc", "standard", I="did you flatter?"),
            sample("FAIL", "abc", "standard", I="did you fabricate?"),
        ]
    }
    assert drop_indistinguishable({"train": list(two["train"])}, 0, "hp")["groups"] == 1
    assert drop_indistinguishable({"train": list(two["train"])}, 0, "ur")["groups"] == 0


# ------------------------------------------------------------------------------ held-out topics and folds


def test_topics_outside_the_lists_go_to_the_heldout_file_through_the_same_filters(tmp_path, capsys):
    write_data(tmp_path / "data", "sycophancy", "a.json", balanced_items(10))
    held = balanced_items(4) + [
        item({KEY: intervention("PASS", tags=["confidence_below_4"])}, {KEY: intervention("FAIL")})
    ]
    write_data(tmp_path / "data", "steganography", "b.json", held)
    write_data(tmp_path / "data", "reward_hacks", "c.json", balanced_items(3))
    config = make_config(
        tmp_path, validation_fraction=0.2, train_topics=["sycophancy"], validation_topics=["sycophancy"]
    )
    code, out, _ = run(capsys, config, tmp_path / "data", tmp_path / "out")
    assert code == 0
    heldout = read_jsonl(tmp_path / "out" / "heldout_topics.jsonl")
    assert all(list(sample) == list(SAMPLE_KEYS) for sample in heldout)
    assert Counter(s["topic"] for s in heldout) == {"steganography": 9, "reward_hacks": 6}  # the tagged-out A dropped
    assert {s["topic"] for s in exported(tmp_path / "out", ("train", "validation"))} == {"sycophancy"}
    stats = stats_of(tmp_path / "out")
    assert stats["heldout_topics"] == {
        "file": "heldout_topics.jsonl",
        "topics": {"reward_hacks": 6, "steganography": 9},
        "fold": None,
    }
    assert stats["splits"]["heldout_topics"]["samples"] == 15
    assert "heldout_topics.jsonl" in json.loads((tmp_path / "out" / "export_manifest.json").read_text())["files"]
    assert check_export_dir(tmp_path / "out")
    assert "held-out topics 15 in heldout_topics.jsonl (reward_hacks, steganography)" in out
    assert "## Held-out topics" in (tmp_path / "out" / "export_report.md").read_text()


def test_leave_topics_out_folds_export_one_complete_set_per_fold(tmp_path, capsys):
    topics = ["sycophancy", "reward_hacks", "jailbreak_attempts", "oversimplification"]
    for index, topic in enumerate(topics):
        write_data(tmp_path / "data", topic, f"{index}.json", balanced_items(5))
    write_data(tmp_path / "data", "steganography", "s.json", balanced_items(2))
    config = make_config(tmp_path, validation_fraction=0.2, leave_topics_out_folds=3)
    for _ in range(2):  # the second export replaces the first, folds included
        code, out, err = run(capsys, config, tmp_path / "data", tmp_path / "out")
        assert code == 0, err
    manifest = json.loads((tmp_path / "out" / "export_manifest.json").read_text())
    assert sorted(manifest["folds"]) == ["fold_0", "fold_1", "fold_2"]
    held_out = []
    for name, export_id in manifest["folds"].items():
        fold = tmp_path / "out" / name
        assert check_export_dir(fold) == export_id
        held = sorted({s["topic"] for s in read_jsonl(fold / "heldout_topics.jsonl")})
        trained = {s["topic"] for s in exported(fold, ("train", "validation"))}
        assert held and not set(held) & trained and set(held) | trained == set(topics)
        assert len(read_jsonl(fold / "heldout_topics.jsonl")) == 10 * len(held)
        assert f"of this leave-topics-out fold's topics ({', '.join(held)})" in (fold / "export_report.md").read_text()
        assert "[viewer/samples.html](viewer/samples.html)" in (fold / "export_report.md").read_text()
        assert "exported: heldout_topics" in (fold / "viewer" / f"samples.{held[0]}.html").read_text()
        held_out.append(held)
    assert sorted(topic for held in held_out for topic in held) == sorted(topics)  # each topic held out once
    stats = stats_of(tmp_path / "out")
    assert [fold["topics"] for fold in stats["leave_topics_out"]["sets"]] == held_out
    assert stats["heldout_topics"]["topics"] == {"steganography": 4}  # the main set's held-out topics
    assert "3 leave-topics-out sets in fold_0 .. fold_2" in out
    # More folds than train topics with samples, or than train topics at all: one line, nothing written.
    for folds, named in (
        (5, "5 folds need at least 5 train topics with samples; the data has 4"),
        (12, "'leave_topics_out_folds' is 12, more than the 11 train_topics"),
        (1, "'leave_topics_out_folds' must be 0 (off) or at least 2"),
    ):
        code, _, err = run(
            capsys, make_config(tmp_path, leave_topics_out_folds=folds), tmp_path / "data", tmp_path / "other"
        )
        assert code == 2 and named in one_error_line(err) and not (tmp_path / "other").exists()


# ------------------------------------------------------------------------------ reference data (must show)


def reference_copy(root: Path, refile: bool = False) -> Path:
    """Both reference folders in one data folder; with `refile`, qwen3-32b's split_personality__version_4
    interventions re-filed as unseen intent (key unseen_intent__version_4, intervention_type unseen_intent)."""
    if not (REFERENCE_TAGGED.is_dir() and REFERENCE_MORE.is_dir()):
        pytest.skip("reference data not available")
    data = root / "data"
    for source in (REFERENCE_MORE, REFERENCE_TAGGED):
        shutil.copytree(source, data, dirs_exist_ok=True)
    if refile:
        for path in data.glob("*/*.json"):
            document = json.loads(path.read_text())
            for entry in (document_item["inferences"].get(QWEN) for document_item in document["data"]):
                for variant in (entry or {}).values():
                    interventions = variant.get("interventions") if isinstance(variant, dict) else None
                    if interventions and KEY in interventions:
                        interventions[UNSEEN_KEY] = {**interventions.pop(KEY), "intervention_type": "unseen_intent"}
            path.write_text(json.dumps(document))
    return data


def default_config(tmp_path: Path, **changes) -> Path:
    config = {**json.loads((CONFIG_DIR / "training_config.json").read_text()), "data_models": [QWEN], **changes}
    path = tmp_path / f"config_{len(list(tmp_path.glob('config_*')))}.json"
    path.write_text(json.dumps(config))
    return path


def test_reference_policy_labels_follow_the_trained_model(tmp_path, capsys):
    data = reference_copy(tmp_path)
    documents = {}
    for base_model, name in (("meta-llama/Llama-3.3-70B-Instruct", "llama"), ("Qwen/Qwen3-32B", "qwen")):
        # Half the eligible prompts removed and a quarter swapped, so that every kind of sample occurs.
        config = default_config(
            tmp_path, base_model=base_model, remove_system_prompt_fraction=0.5, swap_a_b_fraction=0.25
        )
        code, out, _ = run(capsys, config, data, tmp_path / name)
        assert code == 0
        samples = exported(tmp_path / name)
        on = [s for s in samples if s["policy"] == "on"]
        if name == "llama":
            assert not on and "WARNING: every one of the" in out
            continue
        assert on and "every one of the" not in out
        samples += read_jsonl(tmp_path / name / "heldout_topics.jsonl")
        for sample in samples:
            if sample["source_file"] not in documents:
                documents[sample["source_file"]] = json.loads((data / sample["source_file"]).read_text())["data"]
            generated_under = documents[sample["source_file"]][sample["item_index"]][sample["variant"]]
            shown_as_generated = (
                sample["system_prompt"] == generated_under and sample["system_prompt_source"] == sample["variant"]
            )
            assert (sample["policy"] == "on") == shown_as_generated, sample["id_string"]
        counts = Counter((s["system_prompt_source"] == s["variant"], s["policy"]) for s in samples)
        assert counts[(False, "off")] > 0 and counts[(True, "off")] == 0
    # The shipped config (every eligible prompt removed, citing samples set aside): no review sample is
    # shown as generated, so none is on-policy even for the trained model's own answers; the report says so.
    code, out, _ = run(capsys, default_config(tmp_path, base_model="Qwen/Qwen3-32B"), data, tmp_path / "shipped")
    assert code == 0 and "WARNING: every one of the" in out
    assert not [s for s in exported(tmp_path / "shipped") if s["policy"] == "on"]


def visible_conflicts(samples: list[dict]) -> int:
    """Groups of (prompt, T) with different flags among unseen-intent samples (S hidden), read from the files."""
    flags: dict[tuple[str, str], set[str]] = {}
    for sample in samples:
        flags.setdefault((sample["system_prompt"], sample["T"]), set()).add(sample["P"])
    return sum(len(seen) > 1 for seen in flags.values())


def test_reference_unseen_intent_refiled_has_no_indistinguishable_samples(tmp_path, capsys):
    data = reference_copy(tmp_path, refile=True)
    config = default_config(tmp_path, unseen_intent=True, intervention_types=[UNSEEN_KEY], trained_model_data_id=QWEN)
    code, out, _ = run(capsys, config, data, tmp_path / "out")
    assert code == 0
    samples = exported(tmp_path / "out")
    assert samples and all(
        s["layout"] == "unseen_intent" and s["system_prompt_source"] == s["variant"] for s in samples
    )
    assert visible_conflicts(samples) == 0
    stats = stats_of(tmp_path / "out")
    assert stats["indistinguishable"]["groups"] == 0
    assert "Checked: 0 groups" in (tmp_path / "out" / "export_report.md").read_text()
    # What the check guards against: had these samples lost their prompts (the old default), A and B of
    # an item would show the model nothing but T, with opposite flags.
    assert visible_conflicts([{**s, "system_prompt": ""} for s in samples]) > 0
    assert stats["heldout_topics"]["topics"] == {
        "reasoning_metacognition": len(read_jsonl(tmp_path / "out" / "heldout_topics.jsonl"))
    }
