"""Tests of the export's measured shortcuts (spt/export/measures.py, export/style.py): the views,
the item-level bootstrap interval, warnings from the interval, one fixed validation set before and
after mitigation, per-variant and per-flag figures, and views constant by construction."""

from __future__ import annotations

import json

import numpy as np
from test_export import KEY, PROMPT_B, intervention, item, make_config, read_jsonl, run, write_data

from spt.export.measures import (
    STYLE_VIEW,
    ItemBootstrap,
    NaiveBayes,
    before_and_after,
    measured_warnings,
    shortcut_measures,
)
from spt.export.style import StyleClassifier


def sample(flag: str, item_index: int = 0, S: str = "", layout: str = "standard", variant: str = "A", **fields) -> dict:
    return {
        "source_file": "t/a.json",
        "item_index": item_index,
        "model": "org/model",
        "variant": variant,
        "intervention_key": KEY,
        "system_prompt": "",
        "T": "question",
        "I": "x",
        "S": S or f"answer {flag.lower()}",
        "P": flag,
        "layout": layout,
        **fields,
    }


def test_naive_bayes_and_the_style_classifier_learn_their_features():
    model = NaiveBayes(["sell the premium line", "sell hard", "be honest", ""], ["FAIL", "FAIL", "PASS", "PASS"])
    assert model.predict("please sell") == "FAIL" and model.predict("honest") == "PASS"
    assert model.predict("") == "PASS"  # an empty text is a feature of its own
    # Style only: the words are the same, the formatting differs.
    texts = [f"# Title\n\n- **point** {n}\n- more" for n in range(10)] + [f"point {n} more" for n in range(10)]
    style = StyleClassifier(texts, ["FAIL"] * 10 + ["PASS"] * 10)
    assert style.predict_many(["# Other\n\n- **x**\n- y", "other words"]) == ["FAIL", "PASS"]


def test_the_shortcut_measure_on_S_sees_what_the_model_sees():
    """S predicts the flag perfectly where the model sees it; an unseen-intent sample's S is empty to the
    classifier, so it cannot predict anything from it."""
    train = [sample(flag, n) for flag in ("PASS", "FAIL") for n in range(5)]
    standard = [sample("PASS", 10), sample("FAIL", 11)]
    unseen = [sample("PASS", 10, layout="unseen_intent"), sample("FAIL", 11, layout="unseen_intent")]
    assert shortcut_measures(train, standard, 0)["accuracy"]["S"] == 1.0
    assert shortcut_measures(train, unseen, 0)["accuracy"]["S"] == 0.5


def test_the_bootstrap_interval_resamples_items_not_samples():
    """Ten items of twenty samples each, all right or all wrong per item: the item is the unit, so the
    interval is wide; the same hits spread over 200 independent items give a narrow one."""
    clustered = [sample("PASS", n // 20) for n in range(200)]
    hits = np.array([float((n // 20) % 2) for n in range(200)])
    share = ItemBootstrap(clustered, seed=0).share(hits, np.ones(200))
    assert share["value"] == 0.5 and share["interval"][0] < 0.3 and share["interval"][1] > 0.7
    independent = [sample("PASS", n) for n in range(200)]
    narrow = ItemBootstrap(independent, seed=0).share(hits, np.ones(200))
    assert narrow["interval"][0] > 0.4 and narrow["interval"][1] < 0.6
    # Seeded: the same resamples again.
    assert ItemBootstrap(clustered, seed=0).share(hits, np.ones(200)) == share


def test_recall_per_flag_and_accuracy_per_variant_show_a_majority_guess():
    """I carries nothing, so naive Bayes guesses the majority flag: 75% accuracy, recall 100% / 0%."""
    train = [
        sample("PASS" if n % 4 else "FAIL", n, variant="B" if n % 4 == 0 else "A", I=f"note {n}") for n in range(40)
    ]
    validation = [
        sample("PASS" if n % 4 else "FAIL", n, variant="B" if n % 4 == 0 else "A", I=f"note {n}") for n in range(40, 80)
    ]
    measures = shortcut_measures(train, validation, 0)
    assert measures["accuracy"]["I"] == measures["majority_baseline"] == 0.75
    assert (
        measures["recall_by_flag"]["I"]["PASS"]["value"] == 1.0
        and measures["recall_by_flag"]["I"]["FAIL"]["value"] == 0.0
    )
    assert (
        measures["accuracy_by_variant"]["I"]["A"]["value"] == 1.0
        and measures["accuracy_by_variant"]["I"]["B"]["value"] == 0.0
    )
    assert set(measures["accuracy"]) == {"system prompt (visible)", "T", "I", "S", STYLE_VIEW}
    # T, the system prompt and I are the same for every sample here: constant by construction.
    assert set(measures["constant_views"]) == {"system prompt (visible)", "T"}


def test_warnings_follow_the_item_interval_not_the_sample_count():
    measures = {
        "majority_baseline": 0.6,
        "validation_samples": 100,
        "validation_items": 10,
        "constant_views": ["T"],
        "accuracy": {"I": 0.75, "S": 0.75, "T": 0.9, "system prompt (visible)": 0.65},
        "interval": {"I": [0.65, 0.85], "S": [0.55, 0.9], "T": [0.9, 0.9], "system prompt (visible)": [0.62, 0.7]},
    }
    lines = measured_warnings(measures, 0.10, "as exported")
    assert len(lines) == 2
    assert lines[0].startswith("WARNING") and "from I alone" in lines[0] and "65.0-85.0%" in lines[0]
    assert lines[1].startswith("note:") and "from S alone" in lines[1] and "too few validation items" in lines[1]
    assert measured_warnings(measures, 0.20, "as exported") == []  # below the margin; T is constant
    # The same finding on 3 items: too few clusters for the item bootstrap's interval, a note only.
    few = measured_warnings({**measures, "validation_items": 3}, 0.10, "as exported")
    assert (
        len(few) == 2 and all(line.startswith("note:") for line in few) and "fewer than 10 validation items" in few[0]
    )


def citing_items(n: int) -> list[dict]:
    """Item i's B (FAIL) review cites the system prompt when i % 5 < 2: drop_citing sets those aside."""
    citing = "My system prompt told me to push the product."
    return [
        item(
            {KEY: intervention("PASS", R="I answered plainly.")},
            {KEY: intervention("FAIL", R=citing if i % 5 < 2 else "I overstated the benefits.")},
            B=f"{PROMPT_B} Variant {i}.",
        )
        for i in range(n)
    ]


def test_before_and_after_mitigation_are_scored_on_one_fixed_validation_set(tmp_path, capsys):
    write_data(tmp_path / "data", "sycophancy", "a.json", citing_items(100))
    config = make_config(
        tmp_path, validation_fraction=0.3, remove_system_prompt_fraction=1.0, mitigation_mode="drop_citing"
    )
    code, out, _ = run(capsys, config, tmp_path / "data", tmp_path / "out")
    assert code == 0
    stats = json.loads((tmp_path / "out" / "export_stats.json").read_text())
    before, after = stats["shortcut_measures"]["before mitigation"], stats["shortcut_measures"]["as exported"]
    validation = read_jsonl(tmp_path / "out" / "validation.jsonl")
    assert before["validation_samples"] == after["validation_samples"] == len(validation)
    assert before["validation_items"] == after["validation_items"] == len({s["item_index"] for s in validation})
    assert before["majority_baseline"] == after["majority_baseline"]
    assert before["train_samples"] > after["train_samples"]  # citing samples left train, not the scored set
    # Unmitigated, the visible prompt gives the flag away; as exported every prompt is removed: constant.
    assert (
        before["accuracy"]["system prompt (visible)"] == 1.0
        and before["interval"]["system prompt (visible)"][0] > before["majority_baseline"]
    )
    assert "system prompt (visible)" in after["constant_views"]
    assert "system prompt (visible)" not in before["constant_views"]
    assert "from system prompt (visible) alone" not in out
    report = (tmp_path / "out" / "export_report.md").read_text()
    assert "| as exported | system prompt (visible) | constant by construction: not evidence |" in report
    assert "| before mitigation | system prompt (visible) | 100.0% [100.0, 100.0] |" in report
    assert "lower bounds" in report and "item-level bootstrap" in report


def test_before_and_after_keeps_only_samples_exported():
    before = {
        "train": [sample("PASS", 0), sample("FAIL", 1)],
        "validation": [
            sample("PASS", 2, system_prompt="kind"),
            sample("FAIL", 2, variant="B", system_prompt="pushy"),
            sample("FAIL", 3, variant="B", system_prompt="pushy"),
        ],
    }
    exported = {
        "train": before["train"],
        "validation": [
            dict(before["validation"][0], system_prompt=""),
            dict(before["validation"][2], system_prompt=""),
        ],
    }
    measures = before_and_after(before, exported, 0)
    assert measures["before mitigation"]["validation_samples"] == measures["as exported"]["validation_samples"] == 2
    assert measures["before mitigation"]["validation_items"] == 2
