"""The shared plumbing: atomic JSON, one-line read errors, the vocabulary and its tool
schemas, the prompt renderer and the strict training config."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys

import jsonschema
import pytest
from repo import REPO_ROOT

from spt import prompt_templates, shared_tools, training_config, utils
from spt.utils import DataError

# ----------------------------------------------------------------------------- utils


def test_importing_utils_creates_nothing(tmp_path):
    env = {**os.environ, "SPT_DATA_DIR": str(tmp_path / "data")}
    code = "from spt import utils, shared_tools, training_config, prompt_templates"  # installed: importable anywhere
    subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env, check=True)
    assert not (tmp_path / "data").exists()


def test_data_dir_follows_environment(tmp_path):
    env = {**os.environ, "SPT_DATA_DIR": str(tmp_path)}
    code = "from spt import utils; print(utils.STAGE_DIRS[1])"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()
    assert out == str(tmp_path.resolve() / "stage_1")


def test_atomic_write_json_is_indent_2_and_replaces(tmp_path):
    target = tmp_path / "sub" / "file.json"
    utils.atomic_write_json(target, {"b": "é", "a": [1]})
    assert target.read_text() == json.dumps({"b": "é", "a": [1]}, indent=2, ensure_ascii=True) + "\n"
    utils.atomic_write_json(target, {"new": True}, ensure_ascii=False)
    assert json.loads(target.read_text()) == {"new": True}
    assert [p.name for p in target.parent.iterdir()] == ["file.json"]  # no temp files left


def test_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "file.json"
    utils.atomic_write_json(target, {"old": 1})
    with pytest.raises(TypeError):
        utils.atomic_write_json(target, {"bad": object()})
    assert json.loads(target.read_text()) == {"old": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["file.json"]


def file_mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("umask, new_file_mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_write_honours_the_umask_and_keeps_the_mode_of_a_replaced_file(tmp_path, umask, new_file_mode):
    shared, read_only = tmp_path / "shared.json", tmp_path / "read_only.json"
    for path, mode in ((shared, 0o644), (read_only, 0o440)):
        path.write_text("{}")
        path.chmod(mode)
    previous = os.umask(umask)
    try:
        utils.atomic_write_json(tmp_path / "new.json", {"new": 1})
        utils.atomic_write_json(shared, {"rewritten": 1})
        utils.atomic_write_text(read_only, "rewritten\n")
    finally:
        os.umask(previous)
    assert file_mode(tmp_path / "new.json") == new_file_mode  # 0666 less the umask, as open() gives
    assert file_mode(shared) == 0o644 and json.loads(shared.read_text()) == {"rewritten": 1}
    assert file_mode(read_only) == 0o440 and read_only.read_text() == "rewritten\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.json", "read_only.json", "shared.json"]


def test_stale_temporaries_of_a_killed_writer_are_removed_and_nothing_else(tmp_path):
    target = tmp_path / "file.json"
    target.write_text("{}")
    # A writer killed between writing its temporary and renaming it over the target.
    killed = (
        "import os, signal, sys; from spt import utils; from pathlib import Path\n"
        "utils.write_temporary(Path(sys.argv[1]), b'{\"half\": ')\n"
        "os.kill(os.getpid(), signal.SIGKILL)"
    )
    result = subprocess.run([sys.executable, "-c", killed, str(target)], cwd=REPO_ROOT)
    assert result.returncode == -signal.SIGKILL
    [left] = [p for p in tmp_path.iterdir() if p != target]
    assert utils.TEMPORARY_NAME.fullmatch(left.name) and left.name.startswith(".file.json.")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        kept = [
            f".file.json.{sleeper.pid}.0123abcd.tmp",  # a running writer's
            f".file.json.{os.getpid()}.89abcdef.tmp",  # this process's own
            ".file.json.tmp",
            ".file.json.4194305.tmp",
            "file.json.4194305.0123abcd.tmp",
            ".file.json.4194305.0123abcg.tmp",
            ".file.json.4194305.0123abcd.tmp.bak",
            "notes.txt",
        ]
        for name in kept:
            (tmp_path / name).write_text("x")
        (tmp_path / ".folder.4194305.0123abcd.tmp").mkdir()  # a folder, whatever its name
        dead = tmp_path / ".other.json.4194305.fedcba98.tmp"  # above the kernel's largest pid
        dead.write_text("x")
        assert utils.remove_stale_temporaries(tmp_path) == sorted([left, dead])
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
            [*kept, "file.json", ".folder.4194305.0123abcd.tmp"]
        )
    finally:
        sleeper.kill()
        sleeper.wait()
    assert utils.remove_stale_temporaries(tmp_path / "missing") == []


def test_read_json_error_names_file_and_position(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "a": 1,\n  "b": \n}')
    with pytest.raises(DataError) as info:
        utils.read_json(bad)
    message = str(info.value)
    assert "bad.json" in message and "line 4" in message and "\n" not in message
    with pytest.raises(DataError, match="file not found"):
        utils.read_json(tmp_path / "missing.json")


def test_require_field_names_the_place():
    with pytest.raises(DataError, match=r"x\.json: data\[2\]: missing field 'T'"):
        utils.require_field({}, "T", "x.json: data[2]")


# ----------------------------------------------------------------------------- vocabulary

PUBLISHED_FOCUSES = {
    "sycophancy": {"honesty", "sycophancy", "harm_avoidance"},
    "fabricated_statistics": {"fabrication_detection", "honesty", "specification_gaming"},
    "jailbreak_attempts": {"refusal_appropriateness", "strategic_awareness", "instruction_following"},
}


def test_vocabulary_matches_spec():
    assert len(shared_tools.TOPICS) == 14
    for topic, focuses in PUBLISHED_FOCUSES.items():
        assert set(shared_tools.TOPIC_FOCUSES[topic]) == focuses
    for topic in shared_tools.TOPICS:
        legal = shared_tools.legal_focuses(topic)
        assert legal[-1] == "OTHER" and set(legal) <= set(shared_tools.FOCUSES)
    assert shared_tools.split_intervention_key("honesty_scare__version_3") == ("honesty_scare", "version_3")
    with pytest.raises(ValueError):
        shared_tools.split_intervention_key("other__version_3")


@pytest.mark.parametrize("topic", shared_tools.TOPICS)
def test_tool_schemas_are_valid_and_strict(topic):
    for tool in (
        shared_tools.stage_1_tool(topic, 2),
        shared_tools.stage_3_tool(topic, "split_personality", 1),
        shared_tools.quality_review_tool(),
    ):
        jsonschema.Draft202012Validator.check_schema(tool["input_schema"])
    stage_1 = jsonschema.Draft202012Validator(shared_tools.stage_1_tool(topic, 1)["input_schema"])
    focus = shared_tools.TOPIC_FOCUSES[topic][0]
    item = {
        "thought_process": "t",
        "A": "a",
        "B": "",
        "T": "task",
        "metadata": {
            "alignment_issue_type": topic,
            "difficulty": "FPT",
            "intended_review_focus": f"{focus},OTHER",
            "notes": "",
        },
    }
    assert stage_1.is_valid({"data": [item], "project_feedback": ""})
    wrong_focus = json.loads(json.dumps(item))
    wrong_focus["metadata"]["intended_review_focus"] = "steganographyx"
    assert not stage_1.is_valid({"data": [wrong_focus], "project_feedback": ""})
    assert not stage_1.is_valid({"data": [item, item], "project_feedback": ""})  # at most the count asked for
    spaced = json.loads(json.dumps(item))
    spaced["metadata"]["intended_review_focus"] = f"{focus}, OTHER"
    assert stage_1.is_valid({"data": [spaced], "project_feedback": ""})


def test_stage_3_schema_requires_the_token_for_split_personality():
    review = {
        "thought_process": "t",
        "selected_review_focus": "honesty",
        "confidence": 4,
        "I": "<split-personality-token>Now I can be honest.",
        "R": "I did well.",
        "P": "PASS",
        "detection_difficulty_internal": "easy",
        "detection_difficulty_external": "NA",
        "faulty_data": False,
    }
    schema = shared_tools.stage_3_tool("sycophancy", "split_personality", 1)["input_schema"]
    assert jsonschema.Draft202012Validator(schema).is_valid({"batch_thinking": "", "items": [review]})
    assert not jsonschema.Draft202012Validator(schema).is_valid(
        {"batch_thinking": "", "items": [{**review, "I": "Now I can be honest."}]}
    )
    assert not jsonschema.Draft202012Validator(schema).is_valid(
        {"batch_thinking": "", "items": [{**review, "confidence": 6}]}
    )


# ----------------------------------------------------------------------------- prompt renderer


@pytest.fixture()
def prompt_dir(tmp_path):
    (tmp_path / "_shared").mkdir()
    (tmp_path / "_shared" / "common.md").write_text("Common part for {{topic}}.")
    (tmp_path / "main.md").write_text("Head {{topic}}\n{{include: _shared/common.md}}\n{{ count }} items")
    return tmp_path


def test_render_prompt_fills_includes_and_placeholders(prompt_dir):
    text = prompt_templates.render_prompt("main.md", prompt_dir, topic="sycophancy", count=3)
    assert text == "Head sycophancy\nCommon part for sycophancy.\n3 items"
    assert prompt_templates.placeholders("main.md", prompt_dir) == {"topic", "count"}
    hashes = prompt_templates.prompt_sha256("main.md", prompt_dir)
    assert list(hashes) == ["main.md", "_shared/common.md"]


def test_render_prompt_rejects_missing_and_unused_values(prompt_dir):
    with pytest.raises(DataError, match="without a value: count"):
        prompt_templates.render_prompt("main.md", prompt_dir, topic="x")
    with pytest.raises(DataError, match="never uses: extra"):
        prompt_templates.render_prompt("main.md", prompt_dir, topic="x", count=1, extra=2)


def test_include_cycle_is_an_error(prompt_dir):
    (prompt_dir / "loop.md").write_text("{{include: loop.md}}")
    with pytest.raises(DataError, match="include cycle"):
        prompt_templates.load_prompt("loop.md", prompt_dir)


# ----------------------------------------------------------------------------- training config


def test_shipped_training_config_is_valid():
    config = training_config.load_training_config()
    assert config["seq_len"] == 2048 and config["lr"] == 1e-5
    assert {"training_data_leakage", "mentions_biased_prompt", "malformed_fields"} <= set(config["tags_to_filter"])
    # Excluded from training by default (docs/data_formats.md §3).
    assert not set(config["train_topics"]) & {"steganography", "strategic_awareness", "reasoning_metacognition"}


def test_misspelt_key_is_named(tmp_path):
    raw = json.loads(training_config.DEFAULT_CONFIG_PATH.read_text())
    raw["lora_rr"] = raw.pop("lora_r")
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(DataError, match=r"cfg\.json: unknown key 'lora_rr' \(did you mean 'lora_r'\?\)"):
        training_config.load_training_config(path)


@pytest.mark.parametrize(
    "override, message",
    [
        ({"epochs": "4"}, "'epochs' must be an integer"),
        ({"train_topics": ["sycophantic"]}, "unknown topic 'sycophantic'"),
        ({"elicitation_type": "xx"}, "'elicitation_type' must be one of"),
        ({"batch_size": 10, "micro_batch_size": 3}, "multiple of 'micro_batch_size'"),
        ({"intervention_types": ["split_personality"]}, "is not <type>__<version>"),
        # A misspelt tag would silently switch its filter off: named, with the closest tag.
        (
            {"tags_to_filter": ["training_data_leakge"]},
            r"key 'tags_to_filter': unknown tag 'training_data_leakge' \(did you mean 'training_data_leakage'\?\)",
        ),
        ({"tags_to_filter": ["zzz"]}, r"unknown tag 'zzz' \(python scripts/tag_stage_3_data.py --list_tags\)"),
        ({"use_rslora": 2}, "'use_rslora' must be 0 or 1"),
        ({"lr_min_frac": 1.5}, "'lr_min_frac' must lie in"),
    ],
)
def test_bad_values_are_rejected(override, message):
    with pytest.raises(DataError, match=message):
        training_config.load_training_config(overrides=override)


def test_unknown_override_is_rejected():
    with pytest.raises(DataError, match="command-line override: unknown key 'learning_rate'"):
        training_config.load_training_config(overrides={"learning_rate": 1e-4})


def test_markdown_table_escapes_pipes_in_cells():
    assert utils.markdown_table(["name", "n"], [["a|b", 3]]) == ["| name | n |", "|---|---|", "| a\\|b | 3 |"]
