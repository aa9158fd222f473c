"""The typed training config (spt/training_config.py, pydantic models per concern): the
shipped configs load unchanged, and a bad key or value is one line naming the file, or the
command-line flag it came from, before any model loads."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from repo import REPO_ROOT

from spt import training_config
from spt.utils import DataError

SHIPPED_CONFIGS = ["training_config.json", "demo_training_config.json"]


@pytest.fixture
def config_file(tmp_path):
    """Writes the shipped config, changed by `edit`, to a file of its own; returns its path."""

    def write(edit) -> str:
        raw = json.loads(training_config.DEFAULT_CONFIG_PATH.read_text())
        edit(raw)
        path = tmp_path / "cfg.json"
        path.write_text(json.dumps(raw))
        return path

    return write


@pytest.mark.parametrize("name", SHIPPED_CONFIGS)
def test_a_shipped_config_round_trips_to_its_json(name):
    path = REPO_ROOT / "config" / name
    raw = json.loads(path.read_text())
    config = training_config.load_training_config(path)
    assert type(config) is dict and list(config) == list(training_config.KEYS)
    assert config == raw  # every key, with the JSON's value
    assert isinstance(config["lr"], float) and isinstance(config["weight_decay"], float)  # numbers normalised


def test_every_key_has_a_description():
    fields = training_config.TrainingConfig.model_fields
    assert set(fields) == set(json.loads(training_config.DEFAULT_CONFIG_PATH.read_text()))
    assert all(field.description for field in fields.values())


def test_unknown_key_in_the_file_names_the_file_and_the_closest_key(config_file):
    path = config_file(lambda raw: raw.update(lora_dropuot=raw.pop("lora_dropout")))
    with pytest.raises(DataError) as caught:
        training_config.load_training_config(path)
    assert str(caught.value).endswith("cfg.json: unknown key 'lora_dropuot' (did you mean 'lora_dropout'?)")


def test_a_config_that_is_not_an_object_names_the_file(tmp_path):
    path = tmp_path / "cfg.json"
    path.write_text("[1, 2]")
    with pytest.raises(DataError, match=r"cfg\.json: the config must be a JSON object$"):
        training_config.load_training_config(path, overrides={"lr": 1e-4})


def test_missing_keys_are_listed_in_the_config_order(config_file):
    path = config_file(lambda raw: [raw.pop(key) for key in ("eps", "seed")])
    with pytest.raises(DataError, match=r"cfg\.json: missing key\(s\): seed, eps$"):
        training_config.load_training_config(path)


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("seq_len", 2048.0, "key 'seq_len' must be an integer"),
        ("lr", "1e-5", "key 'lr' must be a number"),
        ("unseen_intent", 0, "key 'unseen_intent' must be a bool"),
        ("add_sp_token", True, "key 'add_sp_token' must be an integer"),
        ("data_dir", 3, "key 'data_dir' must be a str"),
        ("lora_target_modules", ["q_proj", 1], "key 'lora_target_modules' must be a list of strings"),
        (
            "validation_intervention",
            [],
            "key 'validation_intervention' must be a string or a non-empty list of strings",
        ),
    ],
)
def test_wrong_type_names_the_file_and_the_key(config_file, key, value, message):
    path = config_file(lambda raw: raw.update({key: value}))
    with pytest.raises(DataError) as caught:
        training_config.load_training_config(path)
    assert str(caught.value).endswith(f"cfg.json: {message}")


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("lr", 0, "key 'lr' must be above 0, got 0"),
        ("validation_fraction", 1.5, "key 'validation_fraction' must lie in [0, 1]"),
        ("lora_dropout", -0.1, "key 'lora_dropout' must lie in [0, 1]"),
        ("epochs", 0, "key 'epochs' must be at least 1"),
        ("use_rslora", 2, "key 'use_rslora' must be 0 or 1"),
        ("num_samples", 0, "key 'num_samples' must be -1 (all) or positive"),
        ("leave_topics_out_folds", 1, "key 'leave_topics_out_folds' must be 0 (off) or at least 2"),
        ("unseen_intent_response_tokens", -1, "key 'unseen_intent_response_tokens' must be 0 or more"),
        ("mitigation_mode", "drop", "key 'mitigation_mode' must be one of drop_citing, exempt"),
        ("lr_cooldown_frac", 0.95, "keys 'lr_warmup_frac' + 'lr_cooldown_frac' exceed 1"),
    ],
)
def test_out_of_range_names_the_file_and_the_key(config_file, key, value, message):
    path = config_file(lambda raw: raw.update({key: value}))
    with pytest.raises(DataError) as caught:
        training_config.load_training_config(path)
    assert str(caught.value).endswith(f"cfg.json: {message}")


def test_a_wrong_type_is_reported_before_a_wrong_range(config_file):
    path = config_file(lambda raw: raw.update(epochs=0, lr="fast"))
    with pytest.raises(DataError, match="key 'lr' must be a number"):
        training_config.load_training_config(path)


def test_an_override_error_names_its_flag_not_the_file():
    with pytest.raises(DataError) as caught:
        training_config.load_training_config(overrides={"lr": -1}, sources={"lr": "--set lr"})
    assert str(caught.value) == "--set lr: key 'lr' must be above 0, got -1"
    with pytest.raises(DataError, match=r"^--set lerning_rate: unknown key 'lerning_rate' \(did you mean 'lr"):
        training_config.load_training_config(
            overrides={"lerning_rate": 1}, sources={"lerning_rate": "--set lerning_rate"}
        )
    # A check over two keys blames the flag of the overridden one.
    with pytest.raises(DataError, match=r"^--set micro_batch_size: key 'batch_size' must be a multiple"):
        training_config.load_training_config(
            overrides={"micro_batch_size": 3}, sources={"micro_batch_size": "--set micro_batch_size"}
        )


def test_a_script_flag_override_names_the_flag():
    with pytest.raises(DataError) as caught:
        training_config.load_training_config_with_flags(
            None, {"seed": ("--seed", "7"), "data_dir": ("--data_dir", None)}
        )
    assert str(caught.value) == "--seed: key 'seed' must be an integer"
    config = training_config.load_training_config_with_flags(
        None, {"seed": ("--seed", 7), "data_dir": ("--data_dir", None)}
    )
    assert config["seed"] == 7 and config["data_dir"] == "data/stage_3_tagged"


def test_train_lora_set_lr_negative_exits_2_naming_the_flag_before_the_model_loads(tmp_path):
    output_dir = tmp_path / "checkpoints"
    proc = subprocess.run(
        [
            sys.executable,
            "training/train_lora.py",
            "--set",
            "lr=-1",
            "--set",
            f"base_model={tmp_path / 'no_such_model'}",
            "--set",
            f"output_dir={output_dir}",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1  # one line
    assert proc.stderr == "error: --set lr: key 'lr' must be above 0, got -1\n"
    assert "no_such_model" not in proc.stderr and not output_dir.exists()
