"""Training curves on the tiny model: metrics.jsonl holds one row per logged step (multiples of
log_every and the checkpoints, validation fields at the checkpoints), a resumed run continues it
without duplicated steps (a crash's rows past the checkpoint and a torn last line are dropped),
curves.png is a PNG, config key report_to passes the rows to accelerate's tensorboard tracker,
the adapter's README.md is the project's card, and Ctrl-C's message depends on whether a
checkpoint exists."""

from __future__ import annotations

import json
import struct

import pytest
from entry_scripts import run_main
from test_script_errors import Interruptible, script_env, wait_until
from test_training_train import base_args, hand_made_samples, write_jsonl

from spt.training.run_metrics import read_metrics
from spt.training.tiny_model import build_tiny_model
from spt.utils import DataError, read_json

pytestmark = pytest.mark.usefixtures("torch_one_thread")

# 8 samples, batch 2: 4 steps per epoch, 12 in all; checkpoints at 4, 8, 12; log_every 3.
SETTINGS = dict(
    lr=5e-3,
    epochs=3,
    batch_size=2,
    micro_batch_size=2,
    log_every=3,
    lora_dropout=0.1,
    seed=3,
    validation_review_samples=4,
    validation_review_max_new_tokens=8,
)
LOGGED_STEPS = [3, 4, 6, 8, 9, 12]
CHECKPOINT_STEPS = {4, 8, 12}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny_curves") / "llama3", "llama3")


@pytest.fixture
def data(tmp_path):
    train_file, validation_file = tmp_path / "train.jsonl", tmp_path / "validation.jsonl"
    write_jsonl(train_file, hand_made_samples())
    write_jsonl(validation_file, hand_made_samples()[:4])
    return train_file, validation_file


def train(model_dir, output_dir, data, *extra, **overrides) -> int:
    train_file, validation_file = data
    args = base_args(model_dir, output_dir, train_file, **{**SETTINGS, **overrides})
    return run_main("training/train_lora.py", args + ["--validation-file", str(validation_file), *map(str, extra)])


def without_speed(rows: list[dict]) -> list[dict]:
    return [{key: value for key, value in row.items() if key != "tokens_per_s"} for row in rows]


def test_one_row_per_logged_step_with_validation_at_checkpoints_and_a_png(model_dir, tmp_path, data):
    assert train(model_dir, tmp_path / "run", data) == 0
    rows = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert [row["step"] for row in rows] == LOGGED_STEPS
    history = read_json(tmp_path / "run" / "step_12" / "training_state.json")["history"]
    previous = 0
    for row in rows:  # each row's loss is the mean over the steps since the previous row
        interval = [h["loss"] for h in history if previous < h["step"] <= row["step"]]
        assert row["loss_steps"] == len(interval) and row["loss"] == pytest.approx(sum(interval) / len(interval))
        assert row["tokens"] > 0 and row["tokens_per_s"] > 0 and row["lr"] > 0
        assert row["epoch"] == pytest.approx(row["step"] / 4)
        previous = row["step"]
        if row["step"] in CHECKPOINT_STEPS:
            assert row["validation_samples"] == 4 and row["teacher_forced_samples"] == 4
            assert row["flag_accuracy_reviews"] == 4 and 0 <= row["flag_accuracy_parsed"] <= 4
            assert row["validation_loss"] > 0
        else:
            assert "validation_loss" not in row and "flag_accuracy" not in row
    png = (tmp_path / "run" / "curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) == (1100, 750)


def test_resume_continues_the_metrics_without_duplicated_steps(model_dir, tmp_path, data):
    assert train(model_dir, tmp_path / "straight", data) == 0
    assert train(model_dir, tmp_path / "interrupted", data, "--max-steps", 4) == 0
    metrics = tmp_path / "interrupted" / "metrics.jsonl"
    assert [row["step"] for row in read_metrics(metrics)] == [3, 4]
    # A crash after the checkpoint at step 4: a row of step 6 (to be run again) and a torn last line.
    with open(metrics, "a") as handle:
        handle.write(json.dumps({**read_metrics(metrics)[0], "step": 6}) + "\n" + '{"step": 7, "lo')
    assert [row["step"] for row in read_metrics(metrics)] == [3, 4, 6]  # the torn line is not read
    assert train(model_dir, tmp_path / "interrupted", data, "--resume", "latest") == 0
    resumed = read_metrics(metrics)
    straight = read_metrics(tmp_path / "straight" / "metrics.jsonl")
    assert [row["step"] for row in resumed] == LOGGED_STEPS
    assert without_speed(resumed) == without_speed(straight)
    assert metrics.read_text().endswith("}\n") and metrics.read_text().count("\n") == len(LOGGED_STEPS)


def test_report_to_tensorboard_writes_event_files(model_dir, tmp_path, data):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert train(model_dir, tmp_path / "run", data, "--max-steps", 4, report_to=["tensorboard"]) == 0
    events = list((tmp_path / "run" / "tracker_logs").rglob("events.out.tfevents.*"))
    assert events
    scalars = {}
    for event_file in events:
        accumulator = EventAccumulator(str(event_file))
        accumulator.Reload()
        for tag in accumulator.Tags()["scalars"]:
            scalars[tag] = [(event.step, event.value) for event in accumulator.Scalars(tag)]
    rows = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert scalars["loss"] == [(row["step"], pytest.approx(row["loss"])) for row in rows]
    assert [step for step, _ in scalars["validation_loss"]] == [4]
    assert [step for step, _ in scalars["teacher_forced_flag_accuracy"]] == [4]
    assert "step" not in scalars  # the step is the x axis, not a value


def test_an_unknown_or_missing_tracker_fails_before_the_model_loads(model_dir, tmp_path, data, capsys):
    assert train(model_dir, tmp_path / "run", data, report_to=["tensorbored"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: config key report_to: unknown tracker 'tensorbored'") and "\n" not in err
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


def test_adapter_card_replaces_peft_template(model_dir, tmp_path, data):
    assert train(model_dir, tmp_path / "run", data, "--max-steps", 4) == 0
    card = (tmp_path / "run" / "step_4" / "adapter" / "README.md").read_text()
    validation = read_json(tmp_path / "run" / "step_4" / "training_state.json")["validation"]
    assert "[More Information Needed]" not in card
    assert f"Base model: `{model_dir}`" in card and "<split-personality-token>" in card
    assert "r 8, alpha 16" in card and "hand-made files without an export manifest" in card
    if validation["flag_accuracy"] is None:
        assert "Not measured at this checkpoint" in card
    else:
        low, high = validation["flag_accuracy_ci95"]
        assert f"{100 * validation['flag_accuracy']:.1f}% (95% CI {100 * low:.1f}-{100 * high:.1f}%" in card
    assert "## Intended use and limits" in card


@pytest.mark.parametrize("with_checkpoint", [False, True])
def test_ctrl_c_says_resume_only_when_a_checkpoint_exists(model_dir, tmp_path, with_checkpoint):
    train_file = tmp_path / "train.jsonl"
    write_jsonl(train_file, hand_made_samples() * 250)  # 2000 steps per epoch: no checkpoint before Ctrl-C
    output_dir = tmp_path / "run"
    args = base_args(model_dir, output_dir, train_file, batch_size=1, micro_batch_size=1, log_every=1)
    if with_checkpoint:
        assert run_main("training/train_lora.py", args + ["--max-steps", "1"]) == 0
        args.append("--resume")
    metrics = output_dir / "metrics.jsonl"
    first_new_step = 2 if with_checkpoint else 1
    run = Interruptible("training/train_lora.py", args, script_env(tmp_path / "data"), tmp_path / "stderr.txt")
    wait_until(lambda: any(row["step"] >= first_new_step for row in read_metrics(metrics)), run, timeout=300)
    code, after = run.interrupt()
    assert code == 130 and "Traceback" not in after, after
    if with_checkpoint:
        advice = f"rerun with --resume latest to continue from the last checkpoint ({output_dir / 'step_1'})"
    else:
        advice = f"nothing was saved (no checkpoint in {output_dir}); rerun without --resume to start again"
    assert after.strip().splitlines()[-1] == f"stopped; {advice}"


def test_a_broken_row_inside_the_file_is_named(tmp_path):
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text('{"step": 1, "loss": 2.0}\n{"step": 2, "lo\n{"step": 3, "loss": 1.0}\n')
    with pytest.raises(DataError, match=r"metrics.jsonl line 2: not a metrics row"):
        read_metrics(metrics)
    metrics.write_text('{"step": 1, "loss": 2.0}\n{"step": 2, "lo')  # only the unfinished last line: skipped
    assert read_metrics(metrics) == [{"step": 1, "loss": 2.0}]
