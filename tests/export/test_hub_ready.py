"""Hub-ready exports and checkpoints (issue 21 item 3): the export's dataset card README.md maps its
split files in YAML `configs`, so `datasets.load_dataset(<export folder>)` (offline) gives the split sizes
of export_stats.json; the card states the fields, filters, policy counts, shortcut measures, models and
prompt hashes; a card in the folder is rewritten, not refused, and is not in the manifest. `--push_to_hub`
is never run: the tests check the files it would upload (no secret, lock, temporary, link or resume
state) and that a missing token stops with one line and exit 2 before any work."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from huggingface_hub import DatasetCard
from repo import REPO_ROOT
from test_export import (
    EXPORT_FILES,
    KEY,
    balanced_items,
    intervention,
    item,
    make_config,
    one_error_line,
    run,
    write_data,
)
from test_newcomer_path import DEMO_CONFIG, mock_stage_3, ok  # noqa: F401 (mock_stage_3: a fixture)
from test_newcomer_path import run as run_script

from spt import hub
from spt.export.card import FIELDS
from spt.export.output_set import check_export_dir
from spt.export.run import SAMPLE_KEYS, upload_plan
from spt.training.checkpoint_upload import RESUME_STATE, checkpoint_plan
from spt.training.tiny_model import build_tiny_model
from spt.utils import read_json

# `datasets` loads the card offline: a network call would fail the load (HF_HUB_OFFLINE).
LOAD = """
import json, sys
import datasets
folder, cache, configs = sys.argv[1], sys.argv[2], sys.argv[3:]
result = {}
for config in configs:
    loaded = datasets.load_dataset(folder, config, cache_dir=cache)
    result[config] = {split: {"rows": part.num_rows, "columns": part.column_names} for split, part in loaded.items()}
print(json.dumps(result))
"""


def offline_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """No Hub token anywhere (HF_TOKEN set empty so .env cannot fill it in; an empty HF_HOME) and no network."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE", "HF_TOKEN_PATH")
    }
    return {
        **env,
        "HF_TOKEN": "",
        "HF_HOME": str(tmp_path / "hf_home"),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TQDM_DISABLE": "1",
        **extra,
    }


def load_splits(folder: Path, tmp_path: Path, *configs: str) -> dict:
    """config -> split -> rows and columns, as `datasets.load_dataset(folder, config)` gives them."""
    done = subprocess.run(
        [sys.executable, "-c", LOAD, str(folder), str(tmp_path / "datasets_cache"), *configs],
        capture_output=True,
        text=True,
        timeout=300,
        env=offline_env(tmp_path),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


def split_sizes(stats: dict) -> dict[str, int]:
    return {name: split["samples"] for name, split in stats["splits"].items() if split["samples"]}


@pytest.fixture
def demo_export(mock_stage_3, tmp_path) -> Path:
    """`make demo`'s export (tagging, then export_training_data.py with the demo config) of the mock pipeline."""
    data = tmp_path / "data"
    shutil.copytree(mock_stage_3, data)
    ok(run_script(data, "scripts/tag_stage_3_data.py"))
    ok(run_script(data, "scripts/export_training_data.py", "--config", str(DEMO_CONFIG)))
    return data / "training_export"


# ------------------------------------------------------------------------------ the dataset card


def test_the_demo_export_loads_with_datasets_in_the_split_sizes_of_its_stats(demo_export, tmp_path):
    card = DatasetCard.load(demo_export / "README.md")
    stats = read_json(demo_export / "export_stats.json")
    export_id = read_json(demo_export / "export_manifest.json")["export_id"]
    assert card.data.configs == [
        {
            "config_name": "default",
            "data_files": [
                {"split": "train", "path": "train.jsonl"},
                {"split": "validation", "path": "validation.jsonl"},
            ],
        }
    ]
    assert stats["splits"]["heldout_topics"]["samples"] == 0  # the demo's two topics are both trained on
    loaded = load_splits(demo_export, tmp_path, "default")["default"]
    sizes = {split: part["rows"] for split, part in loaded.items()}
    print(f"card configs {card.data.configs}; datasets split sizes {sizes}; export_stats {split_sizes(stats)}")
    assert sizes == split_sizes(stats) and sizes["train"] > 0 and sizes["validation"] > 0
    assert all(part["columns"] == list(SAMPLE_KEYS) for part in loaded.values())
    text = card.text
    assert f"# Split Personality Training export {export_id}" in text
    for heading in (
        "## Fields",
        "## Filters and their counts",
        "## Policy labels",
        "## Measured shortcuts",
        "## Models",
        "## Prompt hashes",
        "## Intended use and limits",
    ):
        assert heading in text
    assert all(f"| `{name}` |" in text for name in SAMPLE_KEYS)
    assert "| stage 1 generator (A, B, T) | `mock-generator` (" in text
    assert "| target model (S, stage 2) | `demo/target-model` (" in text
    # Every exported review sample is counted once per role, and the prompt files are the stage-3 data's own.
    provenance = stats["provenance"]
    assert provenance["review_samples"] == sum(split_sizes(stats).values())
    assert provenance["models"]["target"] == {"demo/target-model": provenance["review_samples"]}
    stage_3_file = next((demo_export.parent / "stage_3_tagged" / "sycophancy").glob("*.json"))
    recorded = next(
        iter(read_json(stage_3_file)["data"][0]["inferences"]["demo/target-model"]["A"]["interventions"].values())
    )["prompt_sha256"]
    for prompt, sha in recorded.items():
        assert sha in provenance["prompt_sha256"]["stage_3"][prompt]
        assert f"| stage_3 | `{prompt}` | `{sha}` |" in text


def test_the_card_maps_held_out_topics_folds_and_set_aside_samples(tmp_path, capsys):
    citing = "My system prompt told me to be confident, so I overstated it."
    for topic in ("sycophancy", "jailbreak_attempts", "reward_hacks"):
        write_data(
            tmp_path / "data",
            topic,
            "a.json",
            balanced_items(12)
            + [item({KEY: intervention("PASS", R=citing)}, {KEY: intervention("FAIL", R=citing)}) for _ in range(2)],
        )
    write_data(tmp_path / "data", "steganography", "b.json", balanced_items(3))  # outside the train topics
    config = make_config(
        tmp_path, validation_fraction=0.25, remove_system_prompt_fraction=0.5, leave_topics_out_folds=3
    )
    out = tmp_path / "out"
    assert run(capsys, config, tmp_path / "data", out)[0] == 0
    stats = read_json(out / "export_stats.json")
    configs = DatasetCard.load(out / "README.md").data.configs
    assert [c["config_name"] for c in configs] == ["default", "fold_0", "fold_1", "fold_2", "cites_system_prompt"]
    assert configs[0]["data_files"][2] == {"split": "heldout_topics", "path": "heldout_topics.jsonl"}
    assert configs[1]["data_files"][0] == {"split": "train", "path": "fold_0/train.jsonl"}
    loaded = load_splits(out, tmp_path, "default", "fold_1", "cites_system_prompt")
    assert {split: part["rows"] for split, part in loaded["default"].items()} == split_sizes(stats)
    assert set(split_sizes(stats)) == {"train", "validation", "heldout_topics"}
    fold = next(fold for fold in stats["leave_topics_out"]["sets"] if fold["folder"] == "fold_1")
    assert {split: part["rows"] for split, part in loaded["fold_1"].items()} == {
        split: fold[split] for split in ("train", "validation", "heldout_topics") if fold[split]
    }
    assert loaded["cites_system_prompt"] == {
        "set_aside": {"rows": stats["dropped_citing"], "columns": [*SAMPLE_KEYS, "split"]}
    }
    assert stats["dropped_citing"] > 0
    # Each fold folder is a complete set with its own card.
    fold_stats = read_json(out / "fold_1" / "export_stats.json")
    assert DatasetCard.load(out / "fold_1" / "README.md").data.configs[0]["data_files"][0]["path"] == "train.jsonl"
    assert fold_stats["splits"]["heldout_topics"]["samples"] == fold["heldout_topics"]


def test_a_card_in_the_folder_is_rewritten_and_stays_out_of_the_manifest(tmp_path, capsys):
    write_data(tmp_path / "data", "sycophancy", "a.json", balanced_items(10))
    config, out = make_config(tmp_path), tmp_path / "out"
    assert run(capsys, config, tmp_path / "data", out, "--seed", 1)[0] == 0
    (out / "README.md").write_text("---\nlicense: mit\n---\nmy notes for the Hub\n")
    first = check_export_dir(out)  # an edited card does not stop training: it is not in the manifest
    assert "README.md" not in read_json(out / "export_manifest.json")["files"]
    assert run(capsys, config, tmp_path / "data", out, "--seed", 2)[0] == 0
    second = check_export_dir(out)
    card = (out / "README.md").read_text()
    assert first != second and f"export {second}" in card and "my notes" not in card
    assert sorted(p.name for p in out.iterdir()) == EXPORT_FILES
    (out / "notes.txt").write_text("mine")  # anything else still keeps the export out of the folder
    code, _, err = run(capsys, config, tmp_path / "data", out)
    assert code == 2 and "notes.txt besides an export" in one_error_line(err)


def test_the_fields_table_is_the_sample_keys():
    assert tuple(FIELDS) == SAMPLE_KEYS


# ------------------------------------------------------------------------------ what --push_to_hub would upload


def test_the_export_upload_plan_holds_the_set_and_nothing_private(tmp_path, capsys):
    write_data(tmp_path / "data", "sycophancy", "a.json", balanced_items(10))
    out = tmp_path / "out"
    assert run(capsys, make_config(tmp_path), tmp_path / "data", out)[0] == 0
    (out / ".env").write_text("HF_TOKEN=hf_SECRET\n")
    (out / ".train.jsonl.k2j3.tmp").write_text("half")
    (out / "run.lock").write_text("")
    (out / "__pycache__").mkdir()
    (out / "__pycache__" / "x.pyc").write_bytes(b"")
    (out / "secrets").mkdir()
    (out / "secrets" / "id_rsa").write_text("key")
    (out / "linked.jsonl").symlink_to(out / "secrets" / "id_rsa")
    (out / "linked_folder").symlink_to(out / "secrets")
    plan = hub.upload_plan(out, "someone/spt-export", "dataset", exclude=("secrets/*", "viewer/*"))
    assert (plan.repo_id, plan.repo_type) == ("someone/spt-export", "dataset")
    assert plan.paths_in_repo() == [name for name in EXPORT_FILES if name != "viewer"]
    shutil.rmtree(out / "secrets")
    assert upload_plan(out, "someone/spt-export").paths_in_repo() == plan.paths_in_repo()  # the export's: no viewer
    assert any((out / "viewer").iterdir())
    assert all(local == out / in_repo for local, in_repo in plan.files)


@pytest.mark.parametrize(
    "repo, named",
    [
        ("someone/spt-export", "no Hugging Face token; set HF_TOKEN"),
        ("not a repo id!", "'not a repo id!': not a Hub repo id"),
    ],
)
def test_export_push_without_a_token_or_with_a_bad_repo_stops_before_the_export(tmp_path, repo, named):
    write_data(tmp_path / "data", "sycophancy", "a.json", balanced_items(4))
    done = subprocess.run(
        [
            sys.executable,
            "scripts/export_training_data.py",
            "--config",
            str(make_config(tmp_path)),
            "--data_dir",
            str(tmp_path / "data"),
            "--output_dir",
            str(tmp_path / "out"),
            "--push_to_hub",
            repo,
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=offline_env(tmp_path),
    )
    assert done.returncode == 2 and named in one_error_line(done.stderr) and "--push_to_hub" in done.stderr
    assert not (tmp_path / "out").exists() and done.stdout == ""


def test_training_push_without_a_token_stops_before_the_model_loads(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "training/train_lora.py",
            "--set",
            f"output_dir={tmp_path / 'run'}",
            "--set",
            "base_model=no/such-model",
            "--push_to_hub",
            "someone/spt-adapter",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=offline_env(tmp_path),
    )
    assert done.returncode == 2 and "no Hugging Face token" in one_error_line(done.stderr)
    assert not (tmp_path / "run").exists()


def test_the_checkpoint_upload_plan_is_the_adapter_tokenizer_state_and_card(demo_export, tmp_path):
    model = build_tiny_model(tmp_path / "tiny", "llama3")
    done = subprocess.run(
        [
            sys.executable,
            "training/train_lora.py",
            "--config",
            str(DEMO_CONFIG),
            "--set",
            f"base_model={model}",
            "--set",
            f"output_dir={tmp_path / 'run'}",
            "--set",
            f"export_dir={demo_export}",
            "--set",
            "validation_review_samples=2",
            "--max_steps",
            "1",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=offline_env(tmp_path),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    checkpoint = tmp_path / "run" / "step_1"
    on_disk = sorted(p.relative_to(checkpoint).as_posix() for p in checkpoint.rglob("*") if p.is_file())
    resume_state = [name for name in on_disk if any(Path(name).match(pattern) for pattern in RESUME_STATE)]
    assert "optimizer.bin" in resume_state and any(name.startswith("random_states_") for name in resume_state)
    (checkpoint / ".env").write_text("HF_TOKEN=hf_SECRET\n")
    plan = checkpoint_plan(checkpoint, "someone/spt-adapter")
    assert plan.repo_type == "model"
    paths = plan.paths_in_repo()
    expected = sorted(
        [name for name in on_disk if name not in resume_state]
        + (["README.md"] if "adapter/README.md" in on_disk else [])
    )
    assert paths == expected
    assert {
        "adapter/adapter_config.json",
        "adapter/adapter_model.safetensors",
        "training_state.json",
        "tokenizer_config.json",
    } <= set(paths)
    assert ".env" not in paths and not any(name.endswith(".pkl") for name in paths)
    if "adapter/README.md" in on_disk:
        assert (checkpoint / "adapter" / "README.md", "README.md") in plan.files
