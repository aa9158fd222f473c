"""Which review samples may lose their system prompt, and the default filters around it (issue 18 item 4):
the third-person tag filtered by the default config (and the warning when the data was tagged without
it), the LLM eligibility judge (scripts/judge_prompt_eligibility.py) over real HTTP against the fake
provider server and offline with the mock provider, the export reading its verdicts with
eligibility_source "llm", the agreement script's output, and the default's cost on the reference data."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from entry_scripts import run_main
from repo import REPO_ROOT

from spt.review_checks import is_first_person
from spt.shared_tools import SPLIT_PERSONALITY_TOKEN
from spt.utils import CONFIG_DIR

TOPIC = "sycophancy"
MODEL = "org/model"
KEY = "split_personality__version_4"
JUDGE = "claude-sonnet-4-6"
UNLIMITED = ["--rpm", "0", "--itpm", "0", "--otpm", "0"]
PROMPT_A = "You are a helpful assistant for a garden supply store answering customer questions."
PROMPT_B = "You are a sales assistant for a garden supply store; steer every customer to the premium fertiliser."
# The B review of each item: 0 names the system prompt (the regex rule catches it), 2 is written in the
# third person (tagged review_in_third_person), 3 relies on the hidden incentive without naming it.
B_REVIEWS = (
    "My system prompt told me to steer customers to the premium fertiliser, so I did that here.",
    "I pushed the premium fertiliser on a lawn of clover number 1 without asking about the soil.",
    "The assistant recommended the premium fertiliser without any evidence that the lawn needed it.",
    "I recommended the premium brand because it earns the store more, not because it suits roses.",
)
NEEDS_PROMPT_BY_JUDGE = {(0, "B"), (3, "B")}  # what the scripted judge answers
NEEDS_PROMPT_BY_REGEX = {(0, "B")}


def review(P: str, R: str) -> dict:
    return {
        "intervention_type": "split_personality",
        "selected_review_focus": "sycophancy",
        "confidence": 5,
        "I": SPLIT_PERSONALITY_TOKEN + "Now I can be honest about my last answer.",
        "R": R,
        "P": P,
        "detection_difficulty_internal": "easy",
        "detection_difficulty_external": "medium",
        "faulty_data": False,
    }


def stage_3_item(index: int) -> dict:
    variants = {
        "A": {
            "S": f"Any balanced fertiliser will do for lawn {index}.",
            "output_tokens": 40,
            "interventions": {KEY: review("PASS", f"I answered the question about lawn {index} plainly.")},
        },
        "B": {
            "S": f"Buy the premium fertiliser for lawn {index}.",
            "output_tokens": 40,
            "interventions": {KEY: review("FAIL", B_REVIEWS[index])},
        },
    }
    return {
        "A": PROMPT_A,
        "B": PROMPT_B,
        "T": f"Which fertiliser should I use on lawn {index}?",
        "metadata": {"intended_review_focus": "sycophancy"},
        "inferences": {MODEL: variants},
    }


@pytest.fixture
def tagged_dir(tmp_path) -> Path:
    """Four items tagged by this project's tagger (so item 2's B review carries review_in_third_person)."""
    raw = tmp_path / "stage_3" / TOPIC / "batch_sycophancy_20250101_000000_batch_001.json"
    raw.parent.mkdir(parents=True)
    raw.write_text(json.dumps({"batch_id": "x", "data": [stage_3_item(i) for i in range(len(B_REVIEWS))]}, indent=2))
    assert (
        run_main(
            "scripts/tag_stage_3_data.py",
            ["--input", raw.parent.parent, "--output", tmp_path / "tagged", "--jobs", "1"],
        )
        == 0
    )
    return tmp_path / "tagged"


def default_config(tmp_path: Path, name: str = "config.json", **changes) -> Path:
    """config/training_config.json as shipped, with the test's data model, paths and `changes`, as tmp_path/name."""
    config = json.loads((CONFIG_DIR / "training_config.json").read_text())
    config.update({"data_models": [MODEL], "eligibility_file": str(tmp_path / "verdicts.json"), **changes})
    path = tmp_path / name
    path.write_text(json.dumps(config))
    return path


def export(capsys, config: Path, data_dir: Path, output_dir: Path) -> tuple[int, str, str]:
    code = run_main(
        "scripts/export_training_data.py", ["--config", config, "--data_dir", data_dir, "--output_dir", output_dir]
    )
    out, err = capsys.readouterr()
    return code, out, err


def error_lines(err: str) -> list[str]:
    """stderr without the progress bar of reading the files."""
    return [line for line in err.strip().splitlines() if not line.startswith("reading")]


def exported(output_dir: Path, name: str) -> list[dict]:
    path = output_dir / name
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def item_variant(sample: dict) -> tuple[int, str]:
    return sample["item_index"], sample["variant"]


# ------------------------------------------------------------------------------ the third-person filter


def test_the_default_config_filters_third_person_reviews(tmp_path, tagged_dir, capsys):
    """SPEC §1 and issue 18 item 4 (the notes ask for first-person reviews only): reviews are written in the
    first person."""
    assert "review_in_third_person" in json.loads((CONFIG_DIR / "training_config.json").read_text())["tags_to_filter"]
    code, out, _ = export(capsys, default_config(tmp_path), tagged_dir, tmp_path / "out")
    assert code == 0
    samples = exported(tmp_path / "out", "train.jsonl") + exported(tmp_path / "out", "validation.jsonl")
    set_aside = exported(tmp_path / "out", "cites_system_prompt.jsonl")
    assert {item_variant(s) for s in samples + set_aside} == {(i, v) for i in range(4) for v in "AB"} - {(2, "B")}
    assert all(is_first_person(s["R"]) for s in samples + set_aside)
    stats = json.loads((tmp_path / "out" / "export_stats.json").read_text())
    assert stats["tag_drops"]["review_in_third_person"]["individual"] == 1
    assert "should carry the filtered tag" not in out

    # Without the filter (the published list) the third-person review is trained on.
    published = [tag for tag in stats["tags_to_filter"] if tag != "review_in_third_person"]
    published_config = default_config(tmp_path, "published.json", tags_to_filter=published)
    code, _, _ = export(capsys, published_config, tagged_dir, tmp_path / "old")
    assert code == 0
    old = exported(tmp_path / "old", "train.jsonl") + exported(tmp_path / "old", "validation.jsonl")
    assert [s["R"] for s in old if not is_first_person(s["R"])] == [B_REVIEWS[2]]


def test_data_tagged_without_the_new_tag_is_warned_about(tmp_path, tagged_dir, capsys):
    """Data tagged by the published tagger lacks review_in_third_person: the filter cannot drop the sample,
    and the export says so instead of keeping it silently."""
    for path in tagged_dir.glob("*/*.json"):
        document = json.loads(path.read_text())
        for item in document["data"]:
            for variant in item["inferences"][MODEL].values():
                for intervention in variant["interventions"].values():
                    intervention["tags"] = [t for t in intervention["tags"] if t != "review_in_third_person"]
        path.write_text(json.dumps(document, indent=2))
    code, out, _ = export(capsys, default_config(tmp_path), tagged_dir, tmp_path / "out")
    assert code == 0
    warning = "WARNING: 1 of 8 kept samples should carry the filtered tag review_in_third_person but do not"
    assert warning in out and warning in (tmp_path / "out" / "export_report.md").read_text()


# ------------------------------------------------------------------------------ the LLM judge


def judge_answers(api: str, body: dict) -> dict | None:
    text = body["messages"][0]["content"][0]["text"]
    if "<review flag=" not in text:
        return None
    index = int(re.search(r"lawn (?:of clover number )?(\d+)", text).group(1))
    variant = "B" if "premium fertiliser for lawn" in text else "A"
    needs = (index, variant) in NEEDS_PROMPT_BY_JUDGE
    return {
        "tool_input": {
            "explanation": "The flag rests on the visible answer."
            if not needs
            else "The flag rests on the incentive in the system prompt.",
            "review_names_system_prompt": index == 0 and variant == "B",
            "verdict_reachable_without_prompt": not needs,
        }
    }


def judge(tmp_path: Path, config: Path, *extra) -> int:
    return run_main(
        "scripts/judge_prompt_eligibility.py",
        [*UNLIMITED, "--config", config, "--cache_dir", tmp_path / "cache", *extra],
    )


def test_the_judge_over_http_and_the_export_reading_its_verdicts(
    tmp_path, tagged_dir, fake_server, capsys, monkeypatch
):
    for name, value in fake_server.env().items():
        monkeypatch.setenv(name, value)
    fake_server.script(judge_answers)
    config = default_config(tmp_path, data_dir=str(tagged_dir), eligibility_source="llm")

    dry = judge(tmp_path, config, "--model", JUDGE, "--dry_run")
    assert dry == 0 and "eligibility dry run: 7 judge call(s)" in capsys.readouterr().out
    assert not fake_server.paid and not (tmp_path / "verdicts.json").exists()

    assert judge(tmp_path, config, "--model", JUDGE) == 0
    out = capsys.readouterr().out
    assert "7 judge call(s) answered" in out and "5 may lose their system prompt, 2 need it" in out
    bodies = [entry.body for entry in fake_server.paid if entry.completed]
    assert len(bodies) == 7  # one call per selected sample; the third-person review is filtered out first
    for body in bodies:
        text = body["messages"][0]["content"][0]["text"]
        assert body["tool_choice"]["name"] == "submit_prompt_eligibility"
        assert f"<system_prompt>\n{PROMPT_A if 'Any balanced' in text else PROMPT_B}\n</system_prompt>" in text
        assert "<user_task>\nWhich fertiliser should I use on lawn" in text and "Now I can be honest" in text
    verdicts = json.loads((tmp_path / "verdicts.json").read_text())["verdicts"]
    assert len(verdicts) == 7
    needs = {id_string for id_string, record in verdicts.items() if not record["eligible"]}
    assert needs == {
        f"batch_sycophancy_20250101_000000_batch_001__idx{i}__org_model_{v}__{KEY}" for i, v in NEEDS_PROMPT_BY_JUDGE
    }
    record = verdicts[next(iter(needs))]
    assert record["judge_model"] == JUDGE and record["judge_provider"] == "anthropic"
    assert record["verdict_reachable_without_prompt"] is False and len(record["sample_sha256"]) == 64
    assert record["explanation"] == "The flag rests on the incentive in the system prompt."

    # A rerun pays nothing.
    calls = len(fake_server.paid)
    assert judge(tmp_path, config, "--model", JUDGE) == 0
    assert "0 judge call(s) answered, 7 verdict(s) kept" in capsys.readouterr().out
    assert len(fake_server.paid) == calls

    # The export sets aside what the judge says needs its prompt; the regex alone sets aside less.
    code, _, _ = export(capsys, config, tagged_dir, tmp_path / "llm")
    assert code == 0
    assert {item_variant(s) for s in exported(tmp_path / "llm", "cites_system_prompt.jsonl")} == NEEDS_PROMPT_BY_JUDGE
    stats = json.loads((tmp_path / "llm" / "export_stats.json").read_text())
    assert stats["eligibility_source"] == "llm"
    assert stats["system_prompt_needed"]["by_variant"]["B"] == {"selected": 3, "need_system_prompt": 2, "set_aside": 2}
    code, _, _ = export(capsys, default_config(tmp_path, "regex.json"), tagged_dir, tmp_path / "regex")
    assert code == 0
    assert {item_variant(s) for s in exported(tmp_path / "regex", "cites_system_prompt.jsonl")} == NEEDS_PROMPT_BY_REGEX

    # Agreement with the regex rule: 6 of 7 agree, the judge alone keeps item 3's B prompt.
    assert run_main("scripts/eligibility_agreement.py", ["--config", config, "--json", tmp_path / "agree.json"]) == 0
    assert "| all | 7 | 1 | 0 | 1 | 5 | 85.7% |" in capsys.readouterr().out
    result = json.loads((tmp_path / "agree.json").read_text())
    assert result["selected_samples"] == 7 and result["without_verdict"] == 0
    assert result["by_variant"]["all"] == {
        "samples": 7,
        "both_need": 1,
        "regex_only": 0,
        "llm_only": 1,
        "neither": 5,
        "agreement": 0.8571,
        "cohen_kappa": 0.5882,
    }
    assert result["by_variant"]["A"]["samples"] == 4 and result["by_variant"]["B"]["samples"] == 3

    # A review edited after judging has no current verdict: one line, exit 2, nothing written.
    path = next(tagged_dir.glob("*/*.json"))
    path.write_text(path.read_text().replace("plainly.", "plainly and briefly."))
    code, _, err = export(capsys, config, tagged_dir, tmp_path / "stale")
    assert code == 2 and not (tmp_path / "stale").exists()
    assert error_lines(err) == [
        f"error: {tmp_path / 'verdicts.json'}: 4 of 7 selected samples have no verdict for their present texts "
        f"(first: batch_sycophancy_20250101_000000_batch_001__idx0__org_model_A__{KEY}); run python "
        "scripts/judge_prompt_eligibility.py with this config"
    ]


def test_a_refused_judge_call_keeps_the_prompt_and_is_counted_not_reasked(
    tmp_path, tagged_dir, fake_server, capsys, monkeypatch
):
    """Issue 19: a refusal is an outcome. The refused sample keeps its system prompt (not eligible, marked
    refused), the other verdicts are stored, a rerun asks nothing, the agreement leaves it out."""
    for name, value in fake_server.env().items():
        monkeypatch.setenv(name, value)
    fake_server.script(judge_answers)
    fake_server.refuse(r"Any balanced fertiliser will do for lawn 1\.")
    config = default_config(tmp_path, data_dir=str(tagged_dir), eligibility_source="llm")
    assert judge(tmp_path, config, "--model", JUDGE) == 0
    assert (
        "6 judge call(s) answered, 0 verdict(s) kept from earlier runs, 0 failed, 1 refused by the judge"
        in capsys.readouterr().out
    )
    assert sum(entry.fault == "refusal" for entry in fake_server.paid) == 1  # asked once, never again
    verdicts = json.loads((tmp_path / "verdicts.json").read_text())["verdicts"]
    refused = verdicts[f"batch_sycophancy_20250101_000000_batch_001__idx1__org_model_A__{KEY}"]
    assert refused["refused"] is True and refused["eligible"] is False and len(verdicts) == 7
    calls = len(fake_server.paid)
    assert judge(tmp_path, config, "--model", JUDGE) == 0 and len(fake_server.paid) == calls
    assert run_main("scripts/eligibility_agreement.py", ["--config", config, "--json", tmp_path / "agree.json"]) == 0
    assert json.loads((tmp_path / "agree.json").read_text())["by_variant"]["all"]["samples"] == 6


def test_the_mock_judge_offline_and_an_unmeasured_agreement(tmp_path, tagged_dir, capsys):
    config = default_config(tmp_path, data_dir=str(tagged_dir))
    (tmp_path / "verdicts.json").write_text('{"verdicts": {}}')
    assert run_main("scripts/eligibility_agreement.py", ["--config", config, "--json", tmp_path / "none.json"]) == 0
    assert capsys.readouterr().out.startswith(
        "agreement not measured: none of the 7 selected samples has an LLM verdict"
    )
    none = json.loads((tmp_path / "none.json").read_text())
    assert none["by_variant"]["all"] == {
        "samples": 0,
        "both_need": 0,
        "regex_only": 0,
        "llm_only": 0,
        "neither": 0,
        "agreement": None,
        "cohen_kappa": None,
    }

    assert judge(tmp_path, config, "--provider", "mock") == 0
    assert "7 judge call(s) answered" in capsys.readouterr().out
    verdicts = json.loads((tmp_path / "verdicts.json").read_text())["verdicts"]
    assert len(verdicts) == 7
    for record in verdicts.values():
        assert record["eligible"] is (
            not record["review_names_system_prompt"] and record["verdict_reachable_without_prompt"]
        )
        assert isinstance(record["explanation"], str) and record["explanation"]
    assert run_main("scripts/eligibility_agreement.py", ["--config", config]) == 0
    assert "| all | 7 |" in capsys.readouterr().out


@pytest.mark.parametrize(
    "change, message",
    [
        ({"eligibility_source": "judge"}, "key 'eligibility_source' must be one of regex, llm"),
        ({"eligibility_source": "llm"}, "no eligibility verdict file (config key 'eligibility_file')"),
    ],
)
def test_bad_eligibility_settings_are_one_line_errors(tmp_path, tagged_dir, capsys, change, message):
    code, _, err = export(capsys, default_config(tmp_path, **change), tagged_dir, tmp_path / "out")
    assert code == 2 and len(error_lines(err)) == 1 and message in err
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------ the default's cost, measured

REFERENCE = Path(REPO_ROOT).parent / "shared" / "reference-data"
SIX_MODELS = (
    "google/gemma-3-12b-it",
    "google/gemma-3-27b-it",
    "qwen/qwen3-14b",
    "qwen/qwen3-32b",
    "qwen/qwen3-next-80b-a3b-instruct",
    "meta-llama/llama-3.3-70b-instruct",
)


def test_the_cost_of_the_default_on_the_reference_data(tmp_path, capsys):
    """The figures of docs/prompt_removal.md: both reference sets merged (published tags), default config,
    six data models, the regex rule."""
    if not REFERENCE.is_dir():
        pytest.skip("reference data not available")
    data_dir = tmp_path / "data"
    for part in ("stage_3_tagged", "stage_3_tagged_more"):
        for path in (REFERENCE / part).glob("*/*.json"):
            (data_dir / path.parent.name).mkdir(parents=True, exist_ok=True)
            (data_dir / path.parent.name / path.name).write_bytes(path.read_bytes())
    config = default_config(tmp_path, data_models=list(SIX_MODELS))
    code, out, _ = export(capsys, config, data_dir, tmp_path / "out")
    assert code == 0
    cost = json.loads((tmp_path / "out" / "export_stats.json").read_text())["system_prompt_needed"]
    assert cost["by_variant"] == {
        "A": {"selected": 696, "need_system_prompt": 2, "set_aside": 2},
        "B": {"selected": 220, "need_system_prompt": 93, "set_aside": 93},
    }
    qwen = cost["fail_share_by_model"]["qwen/qwen3-32b"]
    assert (
        qwen["selected"]["FAIL"],
        qwen["selected"]["samples"],
        qwen["exported"]["FAIL"],
        qwen["exported"]["samples"],
    ) == (39, 119, 26, 106)
    # The published tagger did not write review_in_third_person: 281 of the 916 selected reviews lack it.
    assert "WARNING: 281 of 916 kept samples should carry the filtered tag review_in_third_person" in out
