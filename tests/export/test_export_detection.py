"""Tests of the export's off-policy detection samples (spt/export/off_policy.py): only the trained
model's own answer under the prompt it was written under is on-policy; the off-policy samples are
another model's answer or the own answer under the other variant's prompt, balanced; data without the
trained model's answers gets no detection sample; the style-only baseline stays near chance."""

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
    intervention,
    make_config,
    read_jsonl,
    run,
    write_data,
)

from spt.export.off_policy import OTHER_MODEL, OTHER_PROMPT, UNUSABLE_ANSWER_TAGS, load_templates
from spt.review_checks import has_leakage, is_first_person
from spt.shared_tools import SPLIT_PERSONALITY_TOKEN
from spt.utils import CONFIG_DIR

OWN = "org/model"
SIX_MODELS = [
    "google/gemma-3-12b-it",
    "google/gemma-3-27b-it",
    "qwen/qwen3-14b",
    "qwen/qwen3-32b",
    "qwen/qwen3-next-80b-a3b-instruct",
    "meta-llama/llama-3.3-70b-instruct",
]


def plain(words: str, sentences: int) -> str:
    return " ".join(f"{words} sentence {n}." for n in range(sentences))


def formatted(n: int) -> str:
    return "# Overview\n\n" + "\n".join(f"- **Point {k}** 🌱 of {n}!" for k in range(6))


def answers_item(n: int, with_b: bool = True) -> dict:
    """One item: the own model answers in plain prose (its B answer a little longer), close/model in
    plain prose of similar length, far/model in headers, bold bullets and emoji."""

    def entry(a: str, b: str) -> dict:
        variant = lambda text: {"S": text, "interventions": {KEY: intervention("PASS")}, "tags": []}  # noqa: E731
        return {"A": variant(a), **({"B": variant(b)} if with_b else {})}

    length = 3 + n % 4
    return {
        "A": PROMPT_A,
        "B": PROMPT_B if with_b else "",
        "T": f"Which fertiliser is best for bed {n}?",
        "metadata": {},
        "inferences": {
            OWN: entry(plain(f"own A {n}", length), plain(f"own B {n}", length + 1)),
            "close/model": entry(plain(f"kin A {n}", length), plain(f"kin B {n}", length + 1)),
            "far/model": entry(formatted(n), formatted(n + 1)),
        },
    }


def export(tmp_path: Path, capsys, items: list[dict], name: str = "out", **changes) -> tuple[dict, str, dict]:
    write_data(tmp_path / "data", "sycophancy", "a.json", items)
    config = make_config(
        tmp_path,
        **{
            "data_models": [OWN],
            "base_model": OWN,
            "validation_fraction": 0.3,
            "off_policy_detection_fraction": 1.0,
            **changes,
        },
    )
    code, out, _ = run(capsys, config, tmp_path / "data", tmp_path / name)
    assert code == 0, out
    stats = json.loads((tmp_path / name / "export_stats.json").read_text())
    samples = read_jsonl(tmp_path / name / "train.jsonl") + read_jsonl(tmp_path / name / "validation.jsonl")
    return stats, out, {"samples": samples, "detection": [s for s in samples if s["task"] == "off_policy_detection"]}


def off_kind(sample: dict) -> str:
    return (
        "on"
        if sample["policy"] == "on"
        else OTHER_MODEL
        if sample["S_source_model"] != sample["model"]
        else OTHER_PROMPT
    )


# ------------------------------------------------------------------------------ templates


def test_detection_templates_are_first_person_leak_nothing_and_claim_no_style_difference():
    templates = load_templates()
    lists = (templates.on, templates.other_model, templates.other_prompt)
    assert min(len(templates.interventions), *map(len, lists)) >= 3
    assert all(i.startswith(SPLIT_PERSONALITY_TOKEN) and not has_leakage(i, "I") for i in templates.interventions)
    for review in [review for entries in lists for review in entries]:
        assert is_first_person(review) and not has_leakage(review, "R"), review
        # An off-policy answer is chosen close in style (or is the model's own): no review may claim a style
        # difference, nor name how the sample was made.
        assert not any(
            word in review.lower()
            for word in ("tone", "formatting", "style", "variant", "system prompt", "another model", "stage")
        ), review
    assert len({review for entries in lists for review in entries}) == sum(map(len, lists))


# ------------------------------------------------------------------------------ labels


def test_only_the_trained_models_own_answer_under_its_own_prompt_is_on_policy(tmp_path, capsys):
    items = [answers_item(n) for n in range(24)]
    # Prompt removal is on for the review samples: detection samples keep their prompt all the same.
    stats, _, exported = export(tmp_path, capsys, items, remove_system_prompt_fraction=1.0)
    detection = exported["detection"]
    assert detection and all(s["model"] == OWN for s in detection)
    for s in detection:
        item_ = items[s["item_index"]]
        shown = s["system_prompt_source"][-1]
        assert s["system_prompt"] == item_[shown] != ""
        assert s["S"] == item_["inferences"][s["S_source_model"]][s["variant"]]["S"]
        kind = off_kind(s)
        if kind == "on":
            assert s["P"] == "PASS" and s["S_source_model"] == OWN and s["system_prompt_source"] == s["variant"]
        elif kind == OTHER_MODEL:  # another model's answer to the same variant, under that variant's prompt
            assert s["P"] == "FAIL" and s["system_prompt_source"] == s["variant"] and s["S_source_model"] != OWN
        else:  # the own answer to the other variant, shown under this variant's prompt
            assert (
                s["P"] == "FAIL" and s["system_prompt_source"] == f"{s['variant']}->{shown}" and shown != s["variant"]
            )
    # Each pair: one on sample and one off sample, sharing T, the shown prompt and I.
    pairs = {}
    for s in detection:
        pairs.setdefault(s["id_string"].split("__off_policy_detection__")[0], []).append(s)
    for pair in pairs.values():
        assert sorted(s["policy"] for s in pair) == ["off", "on"]
        assert len({(s["T"], s["system_prompt"], s["I"]) for s in pair}) == 1
    # The other model's answer is the one close in style; far/model's formatted answers are never shown.
    assert {s["S_source_model"] for s in detection if off_kind(s) == OTHER_MODEL} == {"close/model"}
    counts = stats["off_policy_detection"]["splits"]
    assert sum(c["off_other_model"] + c["off_other_prompt"] for c in counts.values()) == len(detection) // 2
    assert stats["off_policy_detection"]["own_model"] == OWN


def test_off_sources_are_balanced_and_other_prompt_answers_come_from_a_and_b_alike(tmp_path, capsys):
    stats, _, exported = export(tmp_path, capsys, [answers_item(n) for n in range(40)])
    detection = exported["detection"]
    kinds = Counter(off_kind(s) for s in detection)
    assert kinds["on"] == kinds[OTHER_MODEL] + kinds[OTHER_PROMPT]
    assert abs(kinds[OTHER_MODEL] - kinds[OTHER_PROMPT]) <= 2  # one per split at most, from rounding
    for counts in stats["off_policy_detection"]["splits"].values():  # the other-prompt count is even
        assert 0 <= counts["off_other_model"] - counts["off_other_prompt"] <= 2 and counts["off_other_prompt"] % 2 == 0
    # The off-policy answers come from A and B answers in the proportion of the on-policy ones.
    letters = {kind: Counter(s["variant"] for s in detection if off_kind(s) == kind) for kind in ("on", OTHER_PROMPT)}
    assert letters[OTHER_PROMPT]["A"] == letters[OTHER_PROMPT]["B"]
    off_letters = Counter(s["variant"] for s in detection if s["policy"] == "off")
    assert off_letters == letters["on"]


def test_without_the_trained_models_answers_no_detection_sample_and_one_warning(tmp_path, capsys):
    """base_model names a model the data has no answer from: nothing is labelled as its own."""
    items = [answers_item(n) for n in range(8)]
    stats, out, exported = export(
        tmp_path,
        capsys,
        items,
        base_model="meta-llama/Llama-3.3-70B-Instruct",
        trained_model_data_id="",
        data_models=[OWN, "close/model"],
    )
    assert exported["detection"] == [] and all(s["task"] == "review" for s in exported["samples"])
    warnings = [line for line in out.splitlines() if "no answer of the trained model" in line]
    assert (
        len(warnings) == 1 and warnings[0].startswith("WARNING") and "meta-llama/llama-3.3-70b-instruct" in warnings[0]
    )
    assert stats["off_policy_detection"]["own_model"] is None
    assert "No detection sample" in (tmp_path / "out" / "export_report.md").read_text()
    # trained_model_data_id names the data's model: its answers are the own ones, matched case-insensitively.
    stats, out, exported = export(
        tmp_path,
        capsys,
        items,
        "again",
        base_model="meta-llama/Llama-3.3-70B-Instruct",
        trained_model_data_id="ORG/Model",
    )
    assert exported["detection"] and {s["S_source_model"] for s in exported["detection"] if s["policy"] == "on"} == {
        OWN
    }


def test_unusable_answers_are_skipped_and_fraction_zero_adds_nothing(tmp_path, capsys):
    items = [answers_item(n) for n in range(8)]
    items[0]["inferences"][OWN]["A"]["tags"] = [UNUSABLE_ANSWER_TAGS[0]]  # own A cut off: no A pair, no B->A
    items[1]["inferences"]["close/model"]["B"] = {"error": "timeout", "failed_runs": 1}
    items[1]["inferences"]["far/model"]["B"]["tags"] = ["malformed_fields"]
    _, _, exported = export(tmp_path, capsys, items)
    detection = exported["detection"]
    assert not [
        s for s in detection if s["item_index"] == 0 and (s["variant"] == "A" or s["system_prompt_source"] == "A")
    ]
    assert not [s for s in detection if s["item_index"] == 1 and s["S_source_model"] != OWN and s["variant"] == "B"]
    # Every answer the same (the trained model's A and B too): nothing to contrast, no sample, a warning.
    same = [answers_item(n) for n in range(4)]
    for one in same:
        for entry in one["inferences"].values():
            entry["A"]["S"] = entry["B"]["S"] = "The same answer."
    _, out, exported = export(tmp_path, capsys, same, "same")
    assert exported["detection"] == [] and "no detection sample was added" in out
    _, out, exported = export(tmp_path, capsys, items, "zero", off_policy_detection_fraction=0.0)
    assert exported["detection"] == [] and "detection samples" not in out
    assert not (tmp_path / "zero" / "off_policy_eval.json").exists()
    assert "## Off-policy detection" not in (tmp_path / "zero" / "export_report.md").read_text()


def test_the_evaluation_file_has_every_counterpart_of_every_validation_pair(tmp_path, capsys):
    items = [answers_item(n) for n in range(10)]
    stats, _, exported = export(tmp_path, capsys, items, off_policy_detection_fraction=0.5)
    rows = json.loads((tmp_path / "out" / "off_policy_eval.json").read_text())["samples"]
    validation_items = {s["item_index"] for s in read_jsonl(tmp_path / "out" / "validation.jsonl")}
    assert rows and {row["item_index"] for row in rows} == validation_items
    assert Counter(row["off_kind"] for row in rows) == {
        "": 2 * len(validation_items),
        OTHER_MODEL: 4 * len(validation_items),
        OTHER_PROMPT: 2 * len(validation_items),
    }
    for row in rows:
        item_ = items[row["item_index"]]
        shown = row["system_prompt_source"][-1]
        assert row["system_prompt"] == item_[shown]
        assert row["response"] == item_["inferences"][row["S_source_model"]][row["variant"]]["S"]
        assert row["expected_flag"] == ("PASS" if row["off_kind"] == "" else "FAIL")
        assert (row["off_kind"] == "") == (
            row["S_source_model"] == OWN and row["system_prompt_source"] == row["variant"]
        )
    assert stats["off_policy_detection"]["eval_rows"] == len(rows)


# ------------------------------------------------------------------------------ the style-only baseline


def test_the_style_only_baseline_stays_near_chance_where_styles_differ(tmp_path, capsys):
    """far/model's answers are told apart by formatting alone; the export never shows them, so the
    style-only classifier of the report stays near the majority share (the old swap reached 100%)."""
    stats, out, _ = export(tmp_path, capsys, [answers_item(n) for n in range(60)], off_policy_detection_fraction=0.5)
    measures = stats["off_policy_detection"]["shortcut_measures"]
    assert measures["validation_samples"] >= 30
    assert abs(measures["accuracy"]["style of S"] - measures["majority_baseline"]) <= 0.10
    assert "predictable from style of S" not in out
    assert abs(measures["cross_validated"]["style of S"]["accuracy"] - 0.5) <= 0.10
    report = (tmp_path / "out" / "export_report.md").read_text()
    assert "style-only baseline" in report and "| style of S |" in report


# ------------------------------------------------------------------------------ the reference data


def reference_data(tmp_path: Path) -> Path:
    """The six-model reference data: stage_3_tagged and stage_3_tagged_more in one folder."""
    if not (REFERENCE_MORE.is_dir() and REFERENCE_TAGGED.is_dir()):
        pytest.skip("reference data not available")
    for source in (REFERENCE_TAGGED, REFERENCE_MORE):
        for path in source.glob("*/*.json"):
            (tmp_path / "data" / path.parent.name).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, tmp_path / "data" / path.parent.name / path.name)
    return tmp_path / "data"


def test_reference_data_detection_labels_and_style_baseline(tmp_path, capsys):
    """Must show 4: the held-out data, six data models, fraction 0.5, the trained model's own data
    (qwen3-32b): every on sample is qwen3-32b's answer under its own prompt, and the style-only
    baseline in the report is within 5 points of chance."""
    data_dir = reference_data(tmp_path)
    default = json.loads((CONFIG_DIR / "training_config.json").read_text())
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {**default, "data_models": SIX_MODELS, "base_model": "Qwen/Qwen3-32B", "off_policy_detection_fraction": 0.5}
        )
    )
    code, out, _ = run(capsys, config, data_dir, tmp_path / "out")
    assert code == 0
    stats = json.loads((tmp_path / "out" / "export_stats.json").read_text())
    samples = read_jsonl(tmp_path / "out" / "train.jsonl") + read_jsonl(tmp_path / "out" / "validation.jsonl")
    detection = [s for s in samples if s["task"] == "off_policy_detection"]
    sources = {}
    for path in data_dir.glob("*/*.json"):
        for index, item_ in enumerate(json.loads(path.read_text())["data"]):
            sources[(path.relative_to(data_dir).as_posix(), index)] = item_
    assert detection
    for s in detection:
        item_ = sources[(s["source_file"], s["item_index"])]
        assert s["model"] == "qwen/qwen3-32b"
        assert s["S"] == item_["inferences"][s["S_source_model"]][s["variant"]]["S"]
        assert s["system_prompt"] == item_[s["system_prompt_source"][-1]]
        assert (
            (s["P"] == "PASS")
            == (s["policy"] == "on")
            == (s["S_source_model"] == "qwen/qwen3-32b" and s["system_prompt_source"] == s["variant"])
        )
    for counts in stats["off_policy_detection"]["splits"].values():  # balanced up to an even other-prompt count
        assert 0 <= counts["off_other_model"] - counts["off_other_prompt"] <= 2
    measures = stats["off_policy_detection"]["shortcut_measures"]
    # The validation split alone is small (28 samples: one sample moves it 3.6 points), so the figure to hold
    # is the item-grouped cross-validation over all detection samples; the split's own interval holds chance.
    assert measures["majority_baseline"] == 0.5
    low, high = measures["interval"]["style of S"]
    assert low <= 0.5 <= high
    style = measures["cross_validated"]["style of S"]
    assert style["majority_baseline"] == 0.5 and style["samples"] == len(detection)
    assert abs(style["accuracy"] - 0.5) <= 0.05 and style["interval"][0] <= 0.5
    report = (tmp_path / "out" / "export_report.md").read_text()
    assert f"| style of S | {100 * measures['accuracy']['style of S']:.1f}% [" in report
    assert f"style of S {100 * style['accuracy']:.1f}% [" in report


def test_a_style_only_shortcut_the_data_cannot_balance_warns(tmp_path, capsys):
    """No B answers (so no other-prompt kind) and only far/model to swap in: formatting gives the flag away,
    and the export says so instead of staying silent."""
    items = [answers_item(n, with_b=False) for n in range(40)]
    for one in items:
        del one["inferences"]["close/model"]
    stats, out, exported = export(tmp_path, capsys, items)
    assert {s["S_source_model"] for s in exported["detection"] if s["policy"] == "off"} == {"far/model"}
    style = stats["off_policy_detection"]["shortcut_measures"]["cross_validated"]["style of S"]
    assert style["accuracy"] == 1.0
    assert (
        "WARNING: shortcut in the off-policy detection samples, cross-validated over train and validation: the flag "
        "is predictable from style of S alone" in out
    )
