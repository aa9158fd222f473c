"""Tests of the export's `sample_decisions.jsonl` (export/decisions.py, docs/data_formats.md §6): one
record per intervention of the data and per detection sample, saying what the export did to it."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from entry_scripts import run_main
from tagged_data import KEY, MODEL, OTHER_KEY, intervention, item, write_tagged

from spt.export.decisions import CITING, INDISTINGUISHABLE
from spt.export.selection import COMPLETE_SAMPLES
from spt.utils import CONFIG_DIR

CITING_REVIEW = "My system prompt told me to praise the fertiliser, so I did."


def decision_data(root: Path) -> None:
    """Sycophancy: ten clean items (0–9), one whose A is filtered by a tag (10), one with a failed
    generation (11), one whose A cites its prompt (12), one whose A and B answers are the same text
    (13: indistinguishable once the prompts are removed); steganography: one held-out item."""
    clean = [
        item(
            {KEY: intervention("PASS"), OTHER_KEY: intervention("PASS")},
            {KEY: intervention("FAIL"), OTHER_KEY: intervention("FAIL")},
        )
        for _ in range(10)
    ]
    special = [
        item({KEY: intervention("PASS", confidence=3, tags=("confidence_below_4",))}, {KEY: intervention("FAIL")}),
        item({KEY: {**intervention("ERROR"), "R": None}}, {KEY: intervention("FAIL")}),
        item({KEY: intervention("PASS", R=CITING_REVIEW)}, {KEY: intervention("FAIL")}),
        item({KEY: intervention("PASS")}, {KEY: intervention("FAIL")}, same_answer=True),
    ]
    write_tagged(root, "sycophancy", "batch_s", clean + special)
    write_tagged(
        root,
        "steganography",
        "batch_g",
        [
            item(
                {KEY: intervention("PASS"), OTHER_KEY: intervention("PASS")},
                {KEY: intervention("FAIL"), OTHER_KEY: intervention("FAIL")},
            )
        ],
    )


def export_config(tmp_path: Path) -> Path:
    config = json.loads((CONFIG_DIR / "training_config.json").read_text())
    config.update(
        {
            "data_models": [MODEL],
            "trained_model_data_id": MODEL,
            "intervention_types": [KEY],
            "tags_to_filter": ["confidence_below_4"],
            "validation_fraction": 0.2,
        }
    )
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return path


def run_export(tmp_path: Path) -> Path:
    decision_data(tmp_path / "data")
    out = tmp_path / "export"
    assert (
        run_main(
            "scripts/export_training_data.py",
            ["--config", export_config(tmp_path), "--data_dir", tmp_path / "data", "--output_dir", out],
        )
        == 0
    )
    return out


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_every_sample_has_one_decision_naming_what_the_export_did(tmp_path):
    out = run_export(tmp_path)
    records = read_jsonl(out / "sample_decisions.jsonl")
    ids = [record["id_string"] for record in records]
    assert len(ids) == len(set(ids)) == 104  # 2 models x (10 items x 4 + 4 items x 2 + 4 held out)
    by_id = {record["id_string"]: record for record in records}
    sycophancy = "batch_s__idx{}__org_model_{}__" + KEY

    assert Counter(r["dropped_by"] for r in records if r["model"] != MODEL) == {"data_models": 52}
    assert Counter(r["dropped_by"] for r in records if r["model"] == MODEL and r["intervention_key"] == OTHER_KEY) == {
        "intervention_types": 22
    }
    tagged = by_id[sycophancy.format(10, "A")]
    assert (tagged["decision"], tagged["dropped_by"], tagged["filters_hit"]) == (
        "dropped",
        "tag confidence_below_4",
        ["confidence_below_4"],
    )
    assert by_id[sycophancy.format(11, "A")]["dropped_by"] == COMPLETE_SAMPLES
    citing = by_id[sycophancy.format(12, "A")]
    assert (citing["decision"], citing["dropped_by"], citing["system_prompt_source"], citing["policy"]) == (
        "set_aside",
        CITING,
        "A",
        "on",
    )
    assert citing["split"] in ("train", "validation")
    for letter in ("A", "B"):
        same = by_id[sycophancy.format(13, letter)]
        assert (same["decision"], same["dropped_by"], same["system_prompt_source"], same["policy"]) == (
            "dropped",
            INDISTINGUISHABLE,
            "none",
            "off",
        )

    # Exported: exactly the samples of the split files, with their split, prompt shown and policy.
    for split in ("train", "validation", "heldout_topics"):
        exported = {s["id_string"]: s for s in read_jsonl(out / f"{split}.jsonl")}
        assert exported and {
            r["id_string"] for r in records if r["decision"] == "exported" and r["split"] == split
        } == set(exported)
        for sample_id, sample in exported.items():
            assert (by_id[sample_id]["system_prompt_source"], by_id[sample_id]["policy"]) == (
                sample["system_prompt_source"],
                sample["policy"],
            )
    assert {r["topic"] for r in records if r["split"] == "heldout_topics"} == {"steganography"}
    assert "sample_decisions.jsonl" in json.loads((out / "export_manifest.json").read_text())["files"]
