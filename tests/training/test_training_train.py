"""train_lora.py on a tiny model: it overfits 8 samples (greedy generation after the token then
gives the right flag for all 8), a misspelt config key fails with a one-line message naming it,
and --resume continues with exactly the losses of an uninterrupted run."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from entry_scripts import run_main
from repo import REPO_ROOT

from spt.evaluation.intervals import wilson_interval
from spt.shared_tools import SPLIT_PERSONALITY_TOKEN
from spt.training.evaluator import DEFAULT_INTERVENTION
from spt.training.tiny_model import build_tiny_model
from spt.training.trainer import lr_lambda
from spt.training.training_data import subsample
from spt.utils import file_sha256, read_json

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def hand_made_samples() -> list[dict]:
    """4 PASS and 4 FAIL samples in the export's JSONL format."""
    samples = []
    for index in range(8):
        flag = "PASS" if index % 2 == 0 else "FAIL"
        samples.append(
            {
                "id_string": f"batch_test__idx{index}__qwen_qwen3-32b_{'A' if flag == 'PASS' else 'B'}__split_personality__version_4",
                "id_numeric": index,
                "source_file": "batch_test.json",
                "item_index": index,
                "topic": "sycophancy",
                "model": "qwen/qwen3-32b",
                "variant": "A" if flag == "PASS" else "B",
                "system_prompt": "" if index == 0 else f"You are assistant number {index}.",
                "system_prompt_source": "A" if flag == "PASS" else "B",
                "T": f"Question {index}: is my plan good?",
                "S": f"Answer {index}: here are its strengths and weaknesses."
                if flag == "PASS"
                else f"Answer {index}: your plan is perfect, you are brilliant!",
                "intervention_key": "split_personality__version_4",
                "intervention_type": "split_personality",
                "I": f"{SPLIT_PERSONALITY_TOKEN}Now that I can be completely honest, I will review my response.",
                "R": "I gave a balanced answer." if flag == "PASS" else "I flattered the user.",
                "P": flag,
            }
        )
    return samples


def write_jsonl(path, rows) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def settings_args(model_dir, output_dir, **overrides) -> list[str]:
    settings = {
        "base_model": str(model_dir),
        "output_dir": str(output_dir),
        "lora_r": 8,
        "lora_alpha": 16,
        "batch_size": 8,
        "micro_batch_size": 4,
        "lr_warmup_frac": 0.0,
        "lr_cooldown_frac": 0.0,
        "checkpoints_per_epoch": 1,
        "log_every": 10,
        "validation_review_max_new_tokens": 24,
        **overrides,
    }
    args = []
    for key, value in settings.items():
        args += ["--set", f"{key}={json.dumps(value)}"]
    return args


def base_args(model_dir, output_dir, train_file, **overrides) -> list[str]:
    return ["--train-file", str(train_file)] + settings_args(model_dir, output_dir, **overrides)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny_train") / "llama3", "llama3")


def test_overfits_eight_samples_and_flags_them_all(model_dir, tmp_path):
    samples = hand_made_samples()
    train_file, check_file = tmp_path / "train.jsonl", tmp_path / "validation.jsonl"
    write_jsonl(train_file, samples * 8)  # 8 steps per epoch: fewer checkpoints
    write_jsonl(check_file, samples)
    steps = 40
    # The fixed validation intervention is the one trained on: the generated reviews' flags are all right.
    args = base_args(
        model_dir,
        tmp_path / "run",
        train_file,
        lr=2e-2,
        epochs=5,
        micro_batch_size=8,
        validation_intervention=samples[0]["I"],
    )
    assert (
        run_main("training/train_lora.py", args + ["--validation-file", str(check_file), "--max-steps", str(steps)])
        == 0
    )
    checkpoint = tmp_path / "run" / f"step_{steps}"
    state = read_json(checkpoint / "training_state.json")
    validation = state["validation"]
    assert validation["teacher_forced_flag_accuracy"] == 1.0
    assert validation["flag_accuracy"] == 1.0 and validation["flag_accuracy_parsed_rate"] == 1.0
    assert validation["flag_accuracy_reviews"] == validation["flag_accuracy_parsed"] == 8
    assert validation["flag_accuracy_ci95"] == pytest.approx([wilson_interval(8, 8)[0], 1.0])  # 0.676-1.0
    assert validation["flag_accuracy_interval"] == "Wilson score interval, 95%"
    assert validation["flag_accuracy_interventions"] == [samples[0]["I"]]
    assert state["history"][-1]["loss"] < 0.2 * state["history"][0]["loss"]
    card = (checkpoint / "adapter" / "README.md").read_text()  # the adapter's card states the accuracy and its interval
    assert "**100.0%** (95% CI 67.6-100.0%, Wilson score interval, 95%) over the 8 of 8 greedy reviews" in card

    out = tmp_path / "results.json"
    assert (
        run_main(
            "training/evaluate.py",
            [
                "--checkpoint",
                str(checkpoint),
                "--validation",
                str(check_file),
                "--max-new-tokens",
                "24",
                "--batch-size",
                "8",
                "--intervention-string",
                samples[0]["I"],
                "--output",
                str(out),
            ],
        )
        == 0
    )
    results = read_json(out)["results"]
    assert [row["parsed_flag"] for row in results] == [s["P"] for s in samples]
    for row, sample in zip(results, samples):
        assert row["generated_review"] == f"\n\nREVIEW:{sample['R']}\nFLAG: {sample['P']}"


def test_misspelt_override_key_fails_naming_it(model_dir, tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "training/train_lora.py",
            "--set",
            "lora_rank=8",
            "--train-file",
            str(tmp_path / "none.jsonl"),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "'lora_rank'" in proc.stderr and "did you mean 'lora_r'" in proc.stderr


def test_misspelt_config_file_key_fails_naming_it(tmp_path, capsys):
    config = json.loads((REPO_ROOT / "config" / "training_config.json").read_text())
    config["lerning_rate"] = config.pop("lr")
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    exit_code = run_main("training/train_lora.py", ["--config", str(path)])
    assert exit_code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "'lerning_rate'" in err and "\n" not in err


def test_resume_continues_with_identical_losses(model_dir, tmp_path):
    train_file = tmp_path / "train.jsonl"
    write_jsonl(train_file, hand_made_samples())
    # Dropout makes the losses depend on the restored RNG state; 2 steps per epoch, 6 in all.
    settings = dict(lr=5e-3, epochs=3, batch_size=4, micro_batch_size=2, lora_dropout=0.1, seed=7)
    straight = tmp_path / "straight"
    assert run_main("training/train_lora.py", base_args(model_dir, straight, train_file, **settings)) == 0
    interrupted = tmp_path / "interrupted"
    args = base_args(model_dir, interrupted, train_file, **settings)
    assert run_main("training/train_lora.py", args + ["--max-steps", "3"]) == 0
    assert (interrupted / "step_3").is_dir() and not (interrupted / "step_4").exists()
    assert run_main("training/train_lora.py", args + ["--resume", "latest"]) == 0

    expected = read_json(straight / "step_6" / "training_state.json")
    resumed = read_json(interrupted / "step_6" / "training_state.json")
    assert [h["loss"] for h in resumed["history"]] == [h["loss"] for h in expected["history"]]
    assert len(expected["history"]) == 6 and len({h["loss"] for h in expected["history"]}) == 6
    assert resumed["step"] == 6 and resumed["epoch"] == 3
    assert set(resumed["versions"]) == {"torch", "transformers", "peft", "accelerate"}
    assert list(resumed["data_sha256"].values()) == [file_sha256(train_file)]
    assert resumed["config"]["lora_dropout"] == 0.1
    from safetensors.torch import load_file

    weights_a = load_file(straight / "step_6" / "adapter" / "adapter_model.safetensors")
    weights_b = load_file(interrupted / "step_6" / "adapter" / "adapter_model.safetensors")
    assert weights_a.keys() == weights_b.keys()
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)


def test_resume_refuses_changed_data(model_dir, tmp_path, capsys):
    train_file = tmp_path / "train.jsonl"
    write_jsonl(train_file, hand_made_samples())
    args = base_args(model_dir, tmp_path / "run", train_file, epochs=1, batch_size=4)
    assert run_main("training/train_lora.py", args + ["--max-steps", "1"]) == 0
    write_jsonl(train_file, hand_made_samples()[:6])
    exit_code = run_main("training/train_lora.py", args + ["--resume", "latest"])
    assert exit_code == 2 and "data files differ" in capsys.readouterr().err


# ------------------------------------------------------------------------------ the export set

KEY = "split_personality__version_4"


def tagged_item(index: int) -> dict:
    """A tagged stage-3 item whose two samples are short: A PASS, B FAIL, no tags."""

    def variant(letter, flag):
        return {
            "S": f"Answer {index}{letter}: " + ("a balanced view." if flag == "PASS" else "you are brilliant!"),
            "tags": [],
            "interventions": {
                KEY: {
                    "intervention_type": "split_personality",
                    "P": flag,
                    "tags": [],
                    "id_numeric": index,
                    "id_string": f"x__idx{index}__qwen_qwen3-32b_{letter}__{KEY}",
                    "I": f"{SPLIT_PERSONALITY_TOKEN}Now that I can be honest, I will review my response.",
                    "R": "I gave a balanced answer." if flag == "PASS" else "I flattered the user.",
                }
            },
        }

    return {
        "A": f"You are assistant {index}.",
        "B": f"You are assistant {index}; praise the user.",
        "T": f"Question {index}: is my plan good?",
        "metadata": {},
        "inferences": {"qwen/qwen3-32b": {"A": variant("A", "PASS"), "B": variant("B", "FAIL")}},
    }


def export(tmp_path, name: str, seed: int):
    data = tmp_path / "tagged" / "sycophancy" / "batch_x.json"
    if not data.exists():
        data.parent.mkdir(parents=True)
        data.write_text(json.dumps({"data": [tagged_item(index) for index in range(10)]}))
    assert (
        run_main(
            "scripts/export_training_data.py",
            [
                "--data-dir",
                str(tmp_path / "tagged"),
                "--output-dir",
                str(tmp_path / name),
                "--seed",
                str(seed),
                "--data-models",
                "qwen/qwen3-32b",
            ],
        )
        == 0
    )
    return tmp_path / name, read_json(tmp_path / name / "export_manifest.json")


def test_trains_on_a_complete_export_and_records_its_files(model_dir, tmp_path):
    export_dir, manifest = export(tmp_path, "export", 0)
    args = settings_args(
        model_dir, tmp_path / "run", export_dir=str(export_dir), epochs=1, batch_size=4, micro_batch_size=2
    )
    assert run_main("training/train_lora.py", args + ["--max-steps", "1"]) == 0
    state = read_json(tmp_path / "run" / "step_1" / "training_state.json")
    assert sorted(state["data_sha256"].values()) == sorted(
        manifest["files"][name] for name in ("train.jsonl", "validation.jsonl")
    )
    card = (tmp_path / "run" / "step_1" / "adapter" / "README.md").read_text()  # the project's card, not peft's
    assert f"Trained on export `{manifest['export_id']}`" in card and "[More Information Needed]" not in card


@pytest.mark.parametrize(
    "breakage, message",
    [
        ("train from another export", "train.jsonl: differs from export"),
        ("no manifest", "no export_manifest.json, so not a complete export"),
        ("validation missing", "validation.jsonl: missing from export"),
        ("files named from two exports", "the data files come from different exports"),
    ],
)
def test_refuses_a_mixed_or_incomplete_export(model_dir, tmp_path, capsys, breakage, message):
    """The issue's state (new train.jsonl, old validation and stats, items in both splits) can no
    longer come from the export; whatever made it, training stops before the model loads."""
    export_dir, manifest = export(tmp_path, "export", 1)
    other_dir, other = export(tmp_path, "other", 0)
    assert manifest["export_id"] != other["export_id"]
    extra = []
    if breakage == "train from another export":
        (export_dir / "train.jsonl").write_bytes((other_dir / "train.jsonl").read_bytes())
    elif breakage == "no manifest":
        (export_dir / "export_manifest.json").unlink()
    elif breakage == "validation missing":
        (export_dir / "validation.jsonl").unlink()
    else:
        extra = [
            "--train-file",
            str(export_dir / "train.jsonl"),
            "--validation-file",
            str(other_dir / "validation.jsonl"),
        ]
    capsys.readouterr()
    args = settings_args(
        model_dir, tmp_path / "run", export_dir=str(export_dir), epochs=1, batch_size=4, micro_batch_size=2
    )
    assert run_main("training/train_lora.py", args + extra + ["--max-steps", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and message in err, err
    assert "export_training_data.py" in err or breakage == "files named from two exports"
    assert not list((tmp_path / "run").glob("step_*"))


def test_published_recipe_defaults_rslora_scale_lr_floor_and_seeded_subsample(model_dir, tmp_path):
    config = json.loads((REPO_ROOT / "config" / "training_config.json").read_text())
    assert config["use_rslora"] == 1 and config["lora_alpha"] == config["lora_r"] == 64  # scale 64/sqrt(64) = 8
    assert config["lr_min_frac"] == 0.05
    factor = lr_lambda(100, 0.1, 0.5, 0.05)
    assert factor(0) == pytest.approx(0.1) and factor(30) == 1.0
    assert factor(99) == pytest.approx(0.05) and min(factor(step) for step in range(100)) >= 0.05
    in_topic_order = [{"topic": topic, "n": n} for topic in ("a", "b", "c", "d") for n in range(25)]
    drawn = subsample(in_topic_order, 20, seed=0)
    assert len(drawn) == 20 and len({row["topic"] for row in drawn}) > 2  # not the first 20 (one topic)
    assert drawn == subsample(in_topic_order, 20, seed=0) != subsample(in_topic_order, 20, seed=1)
    # The saved adapter records rank-stabilised LoRA with alpha = r.
    train_file = tmp_path / "train.jsonl"
    write_jsonl(train_file, hand_made_samples())
    args = base_args(
        model_dir, tmp_path / "run", train_file, lora_r=8, lora_alpha=8, use_rslora=1, epochs=1, batch_size=4
    )
    assert run_main("training/train_lora.py", args + ["--max_steps", "1"]) == 0
    adapter = read_json(tmp_path / "run" / "step_1" / "adapter" / "adapter_config.json")
    assert adapter["use_rslora"] is True and adapter["lora_alpha"] == adapter["r"] == 8


def test_headline_flag_accuracy_does_not_leak_the_flag(model_dir, tmp_path, caplog):
    """System prompt, task and response are the same for every sample; only I (and R, P) differ,
    and the validation samples' I names the flag. Teacher-forced with its own I and R the model
    reads the flag off them (1.0, recorded only as teacher_forced_flag_accuracy); the headline
    flag_accuracy asks the fixed evaluation intervention (also trained on, with both reviews) and
    generates the review: every sample gets the same prompt, so the same review, and half the flags
    are right. evaluate.py --validation asks the fixed intervention too unless --own_intervention
    is given, and then says so."""
    samples = []
    for index in range(8):
        flag = "PASS" if index % 2 == 0 else "FAIL"
        hint = "my answer was balanced" if flag == "PASS" else "I flattered the user"
        samples.append(
            {
                **hand_made_samples()[index],
                "system_prompt": "You are an assistant.",
                "T": "Is my plan good?",
                "S": "Your plan is good.",
                "I": f"{SPLIT_PERSONALITY_TOKEN}I know that {hint}.",
                "R": "I gave a balanced answer." if flag == "PASS" else "I flattered the user.",
                "P": flag,
            }
        )
    train_file, check_file = tmp_path / "train.jsonl", tmp_path / "validation.jsonl"
    neutral = [{**sample, "I": DEFAULT_INTERVENTION} for sample in samples]
    write_jsonl(train_file, (samples + neutral) * 4)
    write_jsonl(check_file, samples)
    config = json.loads((REPO_ROOT / "config" / "training_config.json").read_text())
    assert config["validation_intervention"] == DEFAULT_INTERVENTION  # the evaluation's string by default
    steps = 24
    args = base_args(
        model_dir, tmp_path / "run", train_file, lr=2e-2, epochs=3, micro_batch_size=8, validation_review_samples=6
    )
    with caplog.at_level("INFO", logger="spt.training"):
        assert (
            run_main("training/train_lora.py", args + ["--validation-file", str(check_file), "--max-steps", str(steps)])
            == 0
        )
    checkpoint = tmp_path / "run" / f"step_{steps}"
    validation = read_json(checkpoint / "training_state.json")["validation"]
    assert validation["teacher_forced_flag_accuracy"] == 1.0
    assert not any("own_intervention" in key for key in validation)
    assert validation["flag_accuracy_reviews"] == 6 and validation["flag_accuracy_parsed_rate"] == 1.0
    assert validation["flag_accuracy"] == 0.5  # seeded choice: 3 PASS, 3 FAIL, one review
    low, high = validation["flag_accuracy_ci95"]
    assert (low, high) == pytest.approx(wilson_interval(3, 6)) and low < 0.5 < high
    assert "flag accuracy 0.500 (95% CI 0.188-0.812, Wilson; generated reviews, fixed intervention" in caplog.text
    assert "teacher-forced flag accuracy 1.000 (own I and gold R given: leaks the flag" in caplog.text

    fixed, own = tmp_path / "fixed.json", tmp_path / "own.json"
    evaluate = ["--checkpoint", str(checkpoint), "--validation", str(check_file), "--max-new-tokens", "24"]
    assert run_main("training/evaluate.py", evaluate + ["--output", str(fixed)]) == 0
    data = read_json(fixed)
    assert data["metadata"]["intervention_source"] == "fixed"
    assert data["metadata"]["intervention_string"] == DEFAULT_INTERVENTION
    assert {row["intervention"] for row in data["results"]} == {DEFAULT_INTERVENTION}
    assert len({row["generated_review"] for row in data["results"]}) == 1 and data["summary"]["accuracy"] == 0.5
    assert data["summary"]["accuracy_ci95"] == pytest.approx(wilson_interval(4, 8))
    assert run_main("training/evaluate.py", evaluate + ["--own-intervention", "--output", str(own)]) == 0
    data = read_json(own)
    assert data["summary"]["accuracy"] == 1.0 and data["metadata"]["intervention_source"] == "own"
    assert data["metadata"]["intervention_name"] == "own_intervention"
    assert "own intervention I" in data["metadata"]["intervention_string"]
    assert "can give the flag away" in data["metadata"]["intervention_string"]
    assert [row["intervention"] for row in data["results"]] == [sample["I"] for sample in samples]


def test_validation_review_keys_are_checked():
    from spt.training_config import load_training_config
    from spt.utils import DataError

    config = load_training_config()
    assert config["validation_review_samples"] == 100  # ±6-10 points at 100 reviews (±10-16 at 32)
    assert load_training_config(overrides={"validation_intervention": ["a", "b"]})["validation_intervention"] == [
        "a",
        "b",
    ]
    for bad in ([], ["a", 1], 3):
        with pytest.raises(
            DataError, match="'validation_intervention' must be a string or a non-empty list of strings"
        ):
            load_training_config(overrides={"validation_intervention": bad})
    with pytest.raises(DataError, match="'validation_review_samples' must be 0 \\(off\\) or positive"):
        load_training_config(overrides={"validation_review_samples": -1})
    with pytest.raises(DataError, match="'validation_review_max_new_tokens' must be at least 1"):
        load_training_config(overrides={"validation_review_max_new_tokens": 0})
    with pytest.raises(DataError, match="did you mean 'validation_intervention'"):
        load_training_config(overrides={"validation_interventon": "x"})


def test_a_list_of_validation_interventions_is_asked_in_turn(model_dir):
    """validation_intervention as a list: the i-th chosen sample is asked entry i mod length, never its own I."""
    from spt.training import spt_model
    from spt.training.sequences import SequenceFormat
    from spt.training.trainer import fixed_intervention_prompts, validation_interventions

    tokenizer = spt_model.load_tokenizer(str(model_dir))
    fmt = SequenceFormat("hp", (), "<SYSTEM> ", " INTERVENTION: ", "\n\nREVIEW:", "\nFLAG: ")
    asked = ["First fixed question.", "Second fixed question."]
    assert validation_interventions({"validation_intervention": "One."}) == ["One."]
    assert validation_interventions({"validation_intervention": asked}) == asked
    samples = hand_made_samples()
    prompts = fixed_intervention_prompts(tokenizer, fmt, samples, asked, 6, seed=0)
    assert len(prompts) == 6
    texts = [tokenizer.decode(ids) for ids, _ in prompts]
    assert [asked[0] in text for text in texts] == [True, False] * 3
    assert [asked[1] in text for text in texts] == [False, True] * 3
    assert not any("Now that I can be completely honest" in text for text in texts)
