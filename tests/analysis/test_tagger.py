"""Tests of scripts/tag_stage_3_data.py: the docs/data_formats.md §5 rules on hand-made files, exact
reproduction of the published tags on the reference data, idempotence, in-place safety,
the exact serialisation and the printed counts."""

from __future__ import annotations

import copy
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from entry_scripts import run_main
from repo import REPO_ROOT

from spt.tagging.tagger import dumps_stage_3, tag_file
from spt.tagging.tags import NEW_TAGS, TAG_ORDER

REFERENCE_TAGGED = Path(REPO_ROOT).parent / "shared" / "reference-data" / "stage_3_tagged"
TOKEN = "<split-personality-token>"


# ------------------------------------------------------------------------------ helpers


def intervention(P="FAIL", confidence=5, **fields):
    base = {
        "intervention_type": "split_personality",
        "selected_review_focus": "sycophancy",
        "confidence": confidence,
        "I": TOKEN + "Now I can be honest about what I did.",
        "R": "I flattered the user instead of warning them.",
        "P": P,
        "detection_difficulty_internal": "easy",
        "detection_difficulty_external": "medium",
        "faulty_data": False,
    }
    base.update(fields)
    return base


def variant(*flags, output_tokens=100, key_prefix="split_personality__version_", **fields):
    return {
        "S": "response",
        "output_tokens": output_tokens,
        "interventions": {f"{key_prefix}{i + 1}": intervention(P=flag, **fields) for i, flag in enumerate(flags)},
    }


def document(*model_entries, focus="sycophancy"):
    return {
        "batch_id": "x",
        "unknown_top_level": [1, 2],
        "data": [
            {
                "A": "a",
                "B": "b",
                "T": "t",
                "metadata": {"intended_review_focus": focus},
                "inferences": {f"org/model-{i}": entry for i, entry in enumerate(model_entries)},
            }
        ],
    }


def tagged(doc, stem="batch_x"):
    doc = copy.deepcopy(doc)
    tag_file(doc, stem, 0, "test.json")
    return doc


def strip_tags(doc):
    for item in doc["data"]:
        for variants in item["inferences"].values():
            for v in variants.values():
                v.pop("tags", None)
                for iv in v.get("interventions", {}).values():
                    for key in ("tags", "id_numeric", "id_string"):
                        iv.pop(key, None)
    return doc


def write_tree(root: Path, files: dict[str, object]) -> None:
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content if isinstance(content, str) else json.dumps(content, indent=2))


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def run_tagger(capsys, *argv):
    code = run_main("scripts/tag_stage_3_data.py", [*map(str, argv), "--jobs", "1"])
    out, err = capsys.readouterr()
    return code, out, err


# ------------------------------------------------------------------------------ rules


def test_variant_and_intervention_rules_in_table_order():
    doc = tagged(
        document(
            {
                "A": variant("PASS", "PASS", "FAIL", confidence=3, output_tokens=2048),
                "B": variant("FAIL", "PASS"),
            }
        )
    )
    a, b = doc["data"][0]["inferences"]["org/model-0"]["A"], doc["data"][0]["inferences"]["org/model-0"]["B"]
    # A: PASS majority; B: tie -> missing consensus on B (propagated to both variants).
    assert a["tags"] == ["generation_exceeded_token_limit", "intervention_tags_disagree_once", "missing_consensus_on_b"]
    assert b["tags"] == ["intervention_tags_disagree_once", "missing_consensus_on_b"]
    first = a["interventions"]["split_personality__version_1"]
    assert first["tags"] == [
        "confidence_below_5",
        "confidence_below_4",
        "medium_detection_difficulty_external",
        "easy_detection_difficulty_internal",
        "intervention_tags_disagree_once",
        "missing_consensus_on_b",
    ]
    assert list(first)[-3:] == ["tags", "id_numeric", "id_string"]
    assert first["id_string"] == "batch_x__idx0__org_model-0_A__split_personality__version_1"
    ids = [iv["id_numeric"] for v in (a, b) for iv in v["interventions"].values()]
    assert ids == [0, 1, 2, 3, 4]
    assert TAG_ORDER.index("generation_exceeded_token_limit") < TAG_ORDER.index("review_in_third_person")


@pytest.mark.parametrize(
    "flags_a, flags_b, expected",
    [
        (["FAIL", "FAIL"], ["FAIL", "FAIL"], ["unclear_a_b_separation"]),
        (["PASS"], ["FAIL"], []),
        (["FAIL"], ["PASS"], ["a_fails_but_b_passes"]),
        (
            ["PASS", "FAIL"],
            ["AMBIGUOUS"],
            [
                "intervention_tags_disagree_once",
                "missing_consensus_on_a",
                "missing_consensus_on_b",
                "unclear_a_b_separation",
            ],
        ),
        (
            ["PASS", "PASS", "FAIL", "FAIL"],
            ["FAIL"],
            ["intervention_tags_disagree_once", "intervention_tags_disagree_twice", "missing_consensus_on_a"],
        ),
    ],
)
def test_consensus_and_disagreement(flags_a, flags_b, expected):
    doc = tagged(document({"A": variant(*flags_a), "B": variant(*flags_b)}))
    assert doc["data"][0]["inferences"]["org/model-0"]["A"]["tags"] == expected


def test_unseen_intent_flags_stay_out_of_the_consensus_but_receive_its_tags():
    """An unseen_intent flag judges a plan, not the written response: it neither makes nor breaks the
    published consensus of A and B, yet the entry's consensus tags reach it (so the export filters it
    like the published interventions of the same answer). Its I must open with the token too."""

    def with_unseen(flag, plan_flag, I=TOKEN + "What was I about to say?"):
        entry = variant(flag)
        entry["interventions"]["unseen_intent__version_1"] = intervention(
            P=plan_flag, intervention_type="unseen_intent", I=I
        )
        return entry

    doc = tagged(
        document({"A": with_unseen("PASS", "FAIL"), "B": with_unseen("FAIL", "FAIL", I="What was I planning?")})
    )
    entry = doc["data"][0]["inferences"]["org/model-0"]
    assert entry["A"]["tags"] == entry["B"]["tags"] == []  # as without the unseen_intent interventions
    assert tagged(document({"A": variant("PASS", "FAIL"), "B": variant("FAIL")}))["data"][0]["inferences"][
        "org/model-0"
    ]["A"]["tags"] == ["intervention_tags_disagree_once", "missing_consensus_on_a"]
    doc = tagged(
        document({"A": with_unseen("FAIL", "PASS"), "B": with_unseen("FAIL", "PASS", I="What was I planning?")})
    )
    entry = doc["data"][0]["inferences"]["org/model-0"]
    assert "unclear_a_b_separation" in entry["A"]["interventions"]["unseen_intent__version_1"]["tags"]
    assert "split_personality_missing_token" in entry["B"]["interventions"]["unseen_intent__version_1"]["tags"]
    assert "split_personality_missing_token" not in entry["A"]["interventions"]["unseen_intent__version_1"]["tags"]


@pytest.mark.parametrize(
    "verdict, tagged_as_failed",
    [
        ({"applicable": True, "verified": False, "consistency": 0.1}, True),
        ({"applicable": True, "verified": True, "consistency": 0.7}, False),
        ({"applicable": False, "verified": True, "consistency": 0.0}, False),
        (None, False),
    ],
)
def test_failed_causal_verification_marks_every_model_entry_of_the_item(verdict, tagged_as_failed):
    """The item-level verdict (what stage 3's --verified_only reads) reaches both variants of every
    target model and each of their interventions, in TAG_ORDER (after the consensus tags)."""
    doc = document({"A": variant("PASS"), "B": variant("PASS")}, {"A": variant("PASS"), "B": variant("FAIL")})
    if verdict is not None:
        doc["data"][0]["causal_verification"] = verdict
    doc = tagged(doc)
    for entry in doc["data"][0]["inferences"].values():
        for letter in "AB":
            for tags in (entry[letter]["tags"], entry[letter]["interventions"]["split_personality__version_1"]["tags"]):
                assert ("failed_causal_verification" in tags) is tagged_as_failed
                assert tags == sorted(tags, key=TAG_ORDER.index)
    first = doc["data"][0]["inferences"]["org/model-0"]["A"]["tags"]
    assert first == (
        ["unclear_a_b_separation", "failed_causal_verification"] if tagged_as_failed else ["unclear_a_b_separation"]
    )


def test_a_only_model_gets_no_a_b_separation_and_no_consensus_tags():
    doc = tagged(document({"A": variant("PASS", "PASS")}))
    assert doc["data"][0]["inferences"]["org/model-0"]["A"]["tags"] == ["no_a_b_separation"]


def test_baselines_removed_and_empty_variants_dropped():
    entry = {"A": variant("PASS"), "B": variant("FAIL", key_prefix="split_personality__baseline")}
    entry["A"]["interventions"]["honesty_scare__baseline"] = intervention()
    entry["B"]["interventions"] = {"split_personality__baseline": intervention()}
    doc = tagged(document(entry, {"A": {"S": "no interventions"}, "B": variant("PASS")}))
    inferences = doc["data"][0]["inferences"]
    assert list(inferences["org/model-0"]) == ["A"]
    assert list(inferences["org/model-0"]["A"]["interventions"]) == ["split_personality__version_1"]
    assert inferences["org/model-0"]["A"]["tags"] == ["no_a_b_separation"]
    assert list(inferences["org/model-1"]) == ["B"]
    assert inferences["org/model-1"]["B"]["interventions"]["split_personality__version_1"]["id_numeric"] == 1


def test_intervention_level_rules():
    entry = {
        "A": variant(
            "PASS",
            confidence=1,
            faulty_data=True,
            selected_review_focus="honesty",
            detection_difficulty_external="easy",
            detection_difficulty_internal="hard",
            stage_3_reviews_passed=False,
            R="The B prompt made me do it. I admit it.",
        )
    }
    tags = tagged(document(entry))["data"][0]["inferences"]["org/model-0"]["A"]["interventions"][
        "split_personality__version_1"
    ]["tags"]
    assert tags == [
        "confidence_below_5",
        "confidence_below_4",
        "confidence_below_3",
        "confidence_below_2",
        "data_is_faulty",
        "mismatching_review_focus",
        "easy_detection_difficulty_external",
        "hard_detection_difficulty_internal",
        "detection_difficulty_easier_externally_than_internally",
        "training_data_leakage",
        "failed_external_review",
    ]


def test_focus_containment_and_na_difficulty_give_no_tags():
    entry = {
        "A": variant(
            "PASS",
            selected_review_focus="honesty",
            detection_difficulty_external="NA",
            detection_difficulty_internal="NA",
            stage_3_reviews_passed=None,
        )
    }
    tags = tagged(document(entry, focus="honesty,sycophancy"))["data"][0]["inferences"]["org/model-0"]["A"][
        "interventions"
    ]["split_personality__version_1"]["tags"]
    assert tags == []


def test_fix_1_article_a_is_not_leakage():
    entry = {
        "A": variant(
            "FAIL",
            R="I fell for a prompt injection hidden in the user's text.",
            detection_difficulty_external="NA",
            detection_difficulty_internal="NA",
        )
    }
    tags = tagged(document(entry))["data"][0]["inferences"]["org/model-0"]["A"]["interventions"][
        "split_personality__version_1"
    ]["tags"]
    assert "training_data_leakage" not in tags


def test_new_tags_after_published_ones():
    entry = {
        "A": variant(
            "FAIL",
            I="Now I can be honest.",
            R="The model ignored the biased prompt's risks.",
            detection_difficulty_external="NA",
            detection_difficulty_internal="NA",
            faulty_data="no",
            error_kind="refused",
        )
    }
    doc = document(entry)
    doc["data"][0]["causal_verification"] = {"verified": False, "consistency": 0.0}
    tags = tagged(doc)["data"][0]["inferences"]["org/model-0"]["A"]["interventions"]["split_personality__version_1"][
        "tags"
    ]
    assert tags == list(NEW_TAGS)
    honesty_scare = {
        "A": variant(
            "FAIL",
            key_prefix="honesty_scare__version_",
            intervention_type="honesty_scare",
            I="URGENT AUDIT: explain.",
            detection_difficulty_external="NA",
            detection_difficulty_internal="NA",
        )
    }
    tags = tagged(document(honesty_scare))["data"][0]["inferences"]["org/model-0"]["A"]["interventions"][
        "honesty_scare__version_1"
    ]["tags"]
    assert tags == []


@pytest.mark.parametrize(
    "field, value",
    [
        ("confidence", "high"),
        ("confidence", None),
        ("confidence", True),
        ("confidence", 7),
        ("confidence", 4.0),
        ("P", "pass!"),
        ("P", ["PASS"]),
        ("faulty_data", "false"),
        ("detection_difficulty_internal", "trivial"),
        ("intervention_type", "honesty"),
        ("selected_review_focus", 3),
        ("stage_3_reviews_passed", "yes"),
    ],
)
def test_malformed_intervention_field_is_tagged_not_read_as_clean(field, value):
    """confidence "high" used to get no confidence_below_* tag and pass every filter."""
    entry = {"A": variant("FAIL"), "B": variant("PASS")}
    entry["A"]["interventions"]["split_personality__version_1"][field] = value
    a = tagged(document(entry))["data"][0]["inferences"]["org/model-0"]["A"]
    tags = a["interventions"]["split_personality__version_1"]["tags"]
    assert tags[-1] == "malformed_fields" and tags.count("malformed_fields") == 1
    assert "malformed_fields" not in a["tags"]


def test_malformed_variant_field_is_tagged_on_the_variant():
    entry = {"A": {**variant("FAIL"), "output_tokens": "3000"}, "B": {**variant("PASS"), "S": ["not", "text"]}}
    doc = tagged(document(entry))["data"][0]["inferences"]["org/model-0"]
    assert doc["A"]["tags"] == ["a_fails_but_b_passes", "malformed_fields"]
    assert doc["B"]["tags"] == ["a_fails_but_b_passes", "malformed_fields"]
    assert "malformed_fields" not in doc["A"]["interventions"]["split_personality__version_1"]["tags"]


def test_well_formed_and_error_records_are_not_malformed():
    error_record = {
        "intervention_type": "split_personality",
        "P": "ERROR",
        "error": "timeout",
        "generation_time": 1.5,
        "model_used": "m",
    }
    entry = {
        "A": {"S": "response", "output_tokens": 100, "interventions": {"split_personality__version_1": error_record}},
        "B": variant("FAIL", stage_3_reviews_passed=True, confidence=1),
    }
    doc = tagged(document(entry))["data"][0]["inferences"]["org/model-0"]
    assert "malformed_fields" not in doc["A"]["interventions"]["split_personality__version_1"]["tags"]
    assert (
        "malformed_fields" not in doc["B"]["interventions"]["split_personality__version_1"]["tags"] + doc["B"]["tags"]
    )


def test_retagging_strips_old_tags_and_ids():
    once = tagged(document({"A": variant("PASS", "FAIL"), "B": variant("FAIL")}))
    twice = copy.deepcopy(once)
    tag_file(twice, "batch_x", 0, "test.json")
    assert dumps_stage_3(twice) == dumps_stage_3(once)
    assert once["unknown_top_level"] == [1, 2]


# ------------------------------------------------------------------------------ serialisation


@pytest.mark.parametrize(
    "value",
    [
        {"text": 'caf\u00e9 \u2014 \U0001f600 \x7f \x00 \t " \\ / \u2028'},
        {"floats": [1e-05, 0.0001, 1.5e-07, -2.5e-05, 1e16, 1e15, 123456789.125, -0.0, 0.1, 3.0, 1e-10]},
        {"a": 1.5e-07, "b": 1e-05, "c": "re-run 1e-7\n", "d": ["e-mail", -3e-06], "e": 7e-08},
        1.5e-07,
        {"big": 2**70, "neg": -(2**65), "nested": {"empty_list": [], "empty_dict": {}, "none": None, "t": True}},
        {"key \u00e9": ["0.00001 in a string", "x: 0.00001,"]},
    ],
)
def test_dumps_matches_json_dumps(value):
    assert dumps_stage_3(value) == json.dumps(value, indent=2, ensure_ascii=True).encode("ascii")


def test_dumps_matches_json_dumps_on_random_floats():
    rng = random.Random(7)
    values = [rng.uniform(-1, 1) * 10 ** rng.randint(-30, 30) for _ in range(3000)]
    document_with_floats = {"values": values, "nested": [{"x": v, "s": f"{v} e-1"} for v in values[:300]]}
    assert dumps_stage_3(document_with_floats) == json.dumps(document_with_floats, indent=2).encode("ascii")


# ------------------------------------------------------------------------------ files


def test_bad_input_exit_2_and_nothing_written(tmp_path, capsys):
    good = document({"A": variant("PASS"), "B": variant("FAIL")})
    write_tree(tmp_path / "in", {"sycophancy/a.json": good, "sycophancy/b.json": {"no_data": []}})
    code, _, err = run_tagger(capsys, "--input", tmp_path / "in", "--output", tmp_path / "out")
    assert code == 2
    error_lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and "b.json" in error_lines[0] and "'data'" in error_lines[0]
    assert not (tmp_path / "out").exists() or tree_bytes(tmp_path / "out") == {}


def test_in_place_with_a_corrupt_file_modifies_nothing(tmp_path, capsys):
    files = {
        "jailbreak_attempts/a.json": document({"A": variant("PASS"), "B": variant("FAIL")}),
        "sycophancy/b.json": document({"A": variant("FAIL")}),
        "sycophancy/c.json": '{"data": [ {"inferences": ',
    }
    write_tree(tmp_path, files)
    before = tree_bytes(tmp_path)
    mtimes = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.json")}
    code, _, err = run_tagger(capsys, "--input", tmp_path, "--in-place")
    assert code == 2 and "c.json" in err and "invalid JSON" in err
    assert tree_bytes(tmp_path) == before  # also: no temporary file left behind
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.json")} == mtimes


def test_in_place_and_idempotent(tmp_path, capsys):
    write_tree(
        tmp_path / "in",
        {
            "sycophancy/b.json": document({"A": variant("PASS", "FAIL"), "B": variant("FAIL")}),
            "jailbreak_attempts/a.json": document({"A": variant("FAIL", "FAIL")}),
        },
    )
    assert run_tagger(capsys, "--input", tmp_path / "in", "--output", tmp_path / "once")[0] == 0
    once = tree_bytes(tmp_path / "once")
    # Sorted file order: jailbreak_attempts/a.json is numbered before sycophancy/b.json.
    first = json.loads(once["jailbreak_attempts/a.json"])
    assert (
        first["data"][0]["inferences"]["org/model-0"]["A"]["interventions"]["split_personality__version_1"][
            "id_numeric"
        ]
        == 0
    )
    assert run_tagger(capsys, "--input", tmp_path / "once", "--output", tmp_path / "twice")[0] == 0
    assert tree_bytes(tmp_path / "twice") == once
    assert run_tagger(capsys, "--input", tmp_path / "in", "--in-place")[0] == 0
    assert tree_bytes(tmp_path / "in") == once


def test_list_tags_documents_every_tag(capsys):
    code, out, _ = run_tagger(capsys, "--list-tags")
    assert code == 0
    assert [line.split(":")[0] for line in out.splitlines()] == list(TAG_ORDER)


def test_missing_input_directory_is_a_usage_error(tmp_path, capsys):
    code, _, err = run_tagger(capsys, "--input", tmp_path / "nope", "--output", tmp_path / "out")
    assert code == 2 and "nope" in err


# ------------------------------------------------------------------------------ reference data


def reference_files() -> list[Path]:
    if not REFERENCE_TAGGED.is_dir():
        pytest.skip("reference data not available")
    return sorted(REFERENCE_TAGGED.glob("*/*.json"))


@pytest.fixture(scope="module")
def untagged_reference(tmp_path_factory):
    """The reference files with tags and ids stripped (the tagger's input)."""
    root = tmp_path_factory.mktemp("untagged")
    for path in reference_files():
        target = root / path.parent.name / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(strip_tags(json.loads(path.read_text())), indent=2))
    return root


def _interventions(doc):
    for index, item in enumerate(doc["data"]):
        for model_id, variants in item["inferences"].items():
            for letter, v in variants.items():
                for key, iv in v["interventions"].items():
                    yield (index, model_id, letter, key), v, iv


# Every difference between the published tags and ours, by reason, on the 3 reference files.
EXPECTED_DIFFERENCES = {
    # New tags (docs/data_formats.md §5.2.4), appended after the published ones.
    "new tag review_in_third_person": 310,
    "new tag mentions_biased_prompt": 16,
    "new tag split_personality_missing_token": 0,
    # Fix docs/data_formats.md §5.2.1: "a prompt ..." no longer counts as leakage. A larger published
    # sample had 46 such false positives; this 10-item cut happens to contain none.
    "fix 1: training_data_leakage removed (article a)": 0,
}


def test_reference_data_reproduces_published_tags(untagged_reference, tmp_path, capsys):
    output = tmp_path / "tagged"
    code, out, _ = run_tagger(capsys, "--input", untagged_reference, "--output", output)
    assert code == 0
    differences: Counter = Counter()
    unexplained = []
    for published_path in reference_files():
        published = json.loads(published_path.read_text())
        ours = json.loads((output / published_path.parent.name / published_path.name).read_text())
        ours_by_key = {key: (v, iv) for key, v, iv in _interventions(ours)}
        for key, published_variant, published_iv in _interventions(published):
            our_variant, our_iv = ours_by_key.pop(key)
            assert our_variant["tags"] == published_variant["tags"], key
            assert our_iv["id_string"] == published_iv["id_string"]
            assert {k: v for k, v in our_iv.items() if k not in ("tags", "id_numeric")} == {
                k: v for k, v in published_iv.items() if k not in ("tags", "id_numeric")
            }
            ours_tags, theirs = our_iv["tags"], published_iv["tags"]
            for tag in ours_tags:
                if tag in NEW_TAGS:
                    differences[f"new tag {tag}"] += 1
            published_part = [t for t in ours_tags if t not in NEW_TAGS]
            if published_part != theirs:
                removed = [t for t in theirs if t not in published_part]
                if removed == ["training_data_leakage"] and published_part == [t for t in theirs if t not in removed]:
                    differences["fix 1: training_data_leakage removed (article a)"] += 1
                else:
                    unexplained.append((key, theirs, ours_tags))
        assert not ours_by_key  # no extra interventions
    assert unexplained == []
    assert {reason: differences[reason] for reason in EXPECTED_DIFFERENCES} == EXPECTED_DIFFERENCES
    assert set(differences) <= set(EXPECTED_DIFFERENCES)
    # Counts printed: one row per tag, interventions then variants.
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[1:]}
    assert rows["(total)"] == ["940", "282"]
    assert rows["training_data_leakage"] == ["39", "-"]
    assert rows["unclear_a_b_separation"] == ["232", "76"]
    assert rows["no_a_b_separation"] == ["-", "78"]
    assert rows["review_in_third_person"] == ["310", "-"]


def test_reference_ids_follow_sorted_order_from_zero(untagged_reference, tmp_path, capsys):
    output = tmp_path / "tagged"
    assert run_tagger(capsys, "--input", untagged_reference, "--output", output)[0] == 0
    ids = [
        iv["id_numeric"]
        for path in sorted(output.glob("*/*.json"))
        for *_, iv in _interventions(json.loads(path.read_text()))
    ]
    assert ids == list(range(len(ids)))


def test_reference_file_bytes_reproduced_with_published_first_id(untagged_reference, tmp_path, capsys):
    """One file at a time, starting the counter at the published first id, and leaving out
    the new tags, the tagger writes the published file byte for byte."""
    for published_path in reference_files():
        published_bytes = published_path.read_bytes()
        first_id = next(_interventions(json.loads(published_bytes)))[2]["id_numeric"]
        single = tmp_path / published_path.stem
        shutil.copytree(
            untagged_reference / published_path.parent.name,
            single / published_path.parent.name,
            ignore=lambda _, names: [n for n in names if n != published_path.name],
        )
        assert run_tagger(capsys, "--input", single, "--in-place", "--first-id-numeric", first_id)[0] == 0
        ours = json.loads((single / published_path.parent.name / published_path.name).read_bytes())
        for *_, iv in _interventions(ours):
            iv["tags"] = [t for t in iv["tags"] if t not in NEW_TAGS]
        assert dumps_stage_3(ours) == published_bytes


def test_process_pool_gives_identical_output(untagged_reference, tmp_path):
    """--jobs 2 (two passes over a worker pool) writes the same bytes as --jobs 1."""
    outputs = {}
    for jobs in (1, 2):
        output = tmp_path / f"jobs{jobs}"
        result = subprocess.run(
            [
                sys.executable,
                str(REPO_ROOT / "scripts" / "tag_stage_3_data.py"),
                "--input",
                str(untagged_reference),
                "--output",
                str(output),
                "--jobs",
                str(jobs),
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": ""},
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        assert "training_data_leakage" in result.stdout
        outputs[jobs] = tree_bytes(output)
    assert outputs[1] == outputs[2] and len(outputs[1]) == 3


def test_temporaries_of_a_killed_in_place_run_are_removed_by_the_next_run(tmp_path, capsys):
    """`kill -9` of an in-place run after it staged some outputs: the inputs are untouched and its
    temporaries stay; the next run deletes exactly those (the project's temporary name, a process
    that is gone), leaves every other file, and tags as if nothing had happened."""
    doc = document({"A": variant("PASS", "FAIL"), "B": variant("FAIL")})
    doc["data"] = [copy.deepcopy(doc["data"][0]) for _ in range(100)]
    for entry in doc["data"]:
        for answer in entry["inferences"]["org/model-0"].values():
            answer["S"] = "word " * 1000
    write_tree(tmp_path / "data", {f"sycophancy/f{i:02d}.json": doc for i in range(20)})
    expected_dir = tmp_path / "expected"
    assert run_tagger(capsys, "--input", tmp_path / "data", "--output", expected_dir)[0] == 0
    before = tree_bytes(tmp_path / "data")

    topic_dir = tmp_path / "data" / "sycophancy"
    proc = subprocess.Popen(
        [
            sys.executable,
            str(REPO_ROOT / "scripts" / "tag_stage_3_data.py"),
            "--input",
            str(tmp_path / "data"),
            "--in_place",
            "--jobs",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not list(topic_dir.glob(".*.tmp")) and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.kill()
    proc.wait()
    left = sorted(topic_dir.glob(".*.tmp"))
    assert left, "the run was not killed while staging its outputs"
    assert {name: data for name, data in tree_bytes(tmp_path / "data").items() if not name.endswith(".tmp")} == before
    others = [topic_dir / ".notes.tmp", topic_dir / "f00.json.4194305.0123abcd.tmp", tmp_path / "data" / "x.tmp"]
    for other in others:
        other.write_text("not ours")

    code, _, err = run_tagger(capsys, "--input", tmp_path / "data", "--in_place")
    assert code == 0
    assert f"removed {len(left)} temporary file(s) left by an interrupted run in" in err
    after = tree_bytes(tmp_path / "data")
    assert sorted(name for name in after if name.endswith(".tmp")) == sorted(
        str(other.relative_to(tmp_path / "data")) for other in others
    )
    assert {name: data for name, data in after.items() if name.endswith(".json")} == tree_bytes(expected_dir)
