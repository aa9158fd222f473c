"""Two runs that meet lose and duplicate nothing (issue 22, docs/concurrent_runs.md): stage 2 of two
models on one data folder keeps both models' answers (merged under the write lock), a second run
that needs what a running one writes stops at once with exit 2 naming the holder, the lock of a
killed run is taken over, and a second training into one output_dir neither replaces nor touches
the first one's checkpoints.

The runs meet for certain, not by timing: the fake provider holds a run's first request until the
test lets it go (a threading.Event), so the test knows the run is inside its work, holding its lock
and its loaded files. Every wait is for a condition (an event, a process's exit).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from fake_provider import FakeProviderServer
from repo import REPO_ROOT
from test_export import balanced_items, make_config, write_data
from test_prompt_eligibility import default_config, judge, tagged_dir  # noqa: F401 (tagged_dir: a fixture)
from test_stage_1_generation import NO_PACING, valid_answers
from test_stage_2 import (
    TOPIC,
    entries,
    expected_variants,
    make_items,
    read_stage_2,
    stage_2_command,
    stage_2_env,
    stage_2_path,
    write_stage_1,
)

from spt import locks, stage_files
from spt.verification.run import Document

WAIT_S = 120  # a safety net for a hung run only; no result depends on it


class Gate:
    """A fake-provider script that holds the first request of each model named in `held` until
    `release()`; `arrived[model]` is set when that request has come in."""

    def __init__(self, *held: str, answer=None):
        self.arrived = {model: threading.Event() for model in held}
        self.released = threading.Event()
        self.answer = answer

    def __call__(self, api: str, body: dict):
        event = self.arrived.get(body.get("model"))
        if event is not None and not event.is_set():
            event.set()
            assert self.released.wait(WAIT_S), "the test never released the held request"
        return self.answer(api, body) if self.answer else None

    def wait_for(self, model: str) -> None:
        assert self.arrived[model].wait(WAIT_S), f"no request of {model} arrived"

    def release(self) -> None:
        self.released.set()


def start_stage_2(data_dir: Path, server: FakeProviderServer, model: str) -> subprocess.Popen:
    return subprocess.Popen(
        stage_2_command("--inference", "openrouter", "--model", model, "--concurrency", "2"),
        cwd=REPO_ROOT,
        env=stage_2_env(data_dir, server),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen) -> tuple[int, str]:
    out, err = process.communicate(timeout=WAIT_S)
    return process.returncode, out + err


# --------------------------------------------------------------------------- stage 2


def test_stage_2_of_two_models_at_once_keeps_both_models_answers_for_every_item(tmp_path):
    items = make_items(8)
    write_stage_1(tmp_path, items)
    models = ("qwen/qwen3-32b", "meta-llama/llama-3.3-70b-instruct")
    gate = Gate(*models)
    with FakeProviderServer(seed=3) as server:
        server.script(gate)
        runs = [start_stage_2(tmp_path, server, model) for model in models]
        for model in models:  # both runs have read the file and are asking: neither has saved yet
            gate.wait_for(model)
        gate.release()
        results = [finish(run) for run in runs]
    assert [code for code, _ in results] == [0, 0], results
    doc = read_stage_2(tmp_path)
    wanted = {(index, variant) for index, item in enumerate(items) for variant in expected_variants(item)}
    for model in models:
        answered = entries(doc, model)
        assert set(answered) == wanted and all(entry.get("S") for entry in answered.values()), model


def test_a_second_stage_2_run_of_the_same_model_stops_at_once_naming_the_first(tmp_path):
    write_stage_1(tmp_path, make_items(4))
    model = "qwen/qwen3-32b"
    gate = Gate(model)
    with FakeProviderServer(seed=4) as server:
        server.script(gate)
        first = start_stage_2(tmp_path, server, model)
        gate.wait_for(model)
        second = subprocess.run(
            stage_2_command("--inference", "openrouter", "--model", model),
            cwd=REPO_ROOT,
            env=stage_2_env(tmp_path, server),
            capture_output=True,
            text=True,
            timeout=WAIT_S,
        )
        gate.release()
        code, output = finish(first)
    assert code == 0, output
    assert second.returncode == 2 and "Traceback" not in second.stderr
    message = second.stderr.strip().splitlines()[-1]
    assert f"pid {first.pid} on host {socket.gethostname()} since " in message
    assert "wait for that run to finish" in message and "stage-2 answers of qwen/qwen3-32b" in message
    assert len(entries(read_stage_2(tmp_path), model)) == 6


def test_the_lock_of_a_killed_run_is_taken_over(tmp_path):
    items = make_items(4)
    write_stage_1(tmp_path, items)
    model = "qwen/qwen3-32b"
    gate = Gate(model)
    with FakeProviderServer(seed=5) as server:
        server.script(gate)
        killed = start_stage_2(tmp_path, server, model)
        gate.wait_for(model)  # it holds the lock now
        killed.send_signal(signal.SIGKILL)
        killed.communicate(timeout=WAIT_S)
        gate.release()
        rerun = subprocess.run(
            stage_2_command("--inference", "openrouter", "--model", model),
            cwd=REPO_ROOT,
            env=stage_2_env(tmp_path, server),
            capture_output=True,
            text=True,
            timeout=WAIT_S,
        )
    assert rerun.returncode == 0, rerun.stderr
    taken_over = [line for line in rerun.stderr.splitlines() if "took over the lock" in line]
    assert len(taken_over) == 1 and f"pid {killed.pid} on host {socket.gethostname()}" in taken_over[0]
    assert len(entries(read_stage_2(tmp_path), model)) == sum(len(expected_variants(item)) for item in items)


def test_the_verification_saving_after_stage_2_wrote_keeps_the_new_answers(tmp_path):
    """The verification's save re-reads the file under the write lock: a model's answers written by
    stage 2 after the verification loaded the file stay (it once wrote its stale copy over them)."""
    write_stage_1(tmp_path, make_items(3))
    first = subprocess.run(
        stage_2_command("--inference", "mock", "--model", "model-one"),
        cwd=REPO_ROOT,
        env=stage_2_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=WAIT_S,
    )
    assert first.returncode == 0, first.stderr
    path = stage_2_path(tmp_path)
    document = Document(TOPIC, path, stage_files.load_batch(path))  # the verification has loaded the file
    second = subprocess.run(
        stage_2_command("--inference", "mock", "--model", "model-two"),
        cwd=REPO_ROOT,
        env=stage_2_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=WAIT_S,
    )
    assert second.returncode == 0, second.stderr
    item = document.doc["data"][1]
    item["causal_verification"] = {"applicable": True, "verified": True}
    document.save()
    saved = read_stage_2(tmp_path)
    assert set(saved["data"][1]["inferences"]) == {"model-one", "model-two"}
    assert saved["data"][1]["causal_verification"] == {"applicable": True, "verified": True}
    assert item is document.doc["data"][1] and "model-two" in item["inferences"]  # merged in place


# --------------------------------------------------------------------------- stage 1, export


def test_stage_1_started_twice_stops_the_second_and_duplicates_nothing(tmp_path):
    gate = Gate("claude-haiku-4-5", answer=valid_answers)
    command = [
        sys.executable,
        "scripts/dataset_generation_stage_1.py",
        "--name",
        TOPIC,
        "--num_batches",
        "2",
        "--num_items_per_batch",
        "5",
        "--model",
        "claude-haiku-4-5",
        *NO_PACING,
    ]
    with FakeProviderServer(seed=6) as server:
        server.script(gate)
        env = {**os.environ, **server.env(), "SPT_DATA_DIR": str(tmp_path), "TQDM_DISABLE": "1"}
        first = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        gate.wait_for("claude-haiku-4-5")
        second = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=WAIT_S)
        gate.release()
        code, output = finish(first)
    assert code == 0, output
    assert second.returncode == 2 and f"pid {first.pid}" in second.stderr and "Traceback" not in second.stderr
    files = sorted((tmp_path / "stage_1" / TOPIC).glob("batch_*.json"))
    assert len(files) == 2
    tasks = [item["T"] for path in files for item in json.loads(path.read_text())["data"]]
    assert len(tasks) == 10 == len(set(tasks))


HOLDER = """
import sys
from spt import locks
from pathlib import Path
with locks.hold(Path(sys.argv[1]), "a test holder", locks.WAIT_OR_ELSEWHERE):
    print("holding", flush=True)
    sys.stdin.read()
"""


class Holder:
    """Another process holding the run lock of `target` until closed (it says when it holds it)."""

    def __init__(self, target: Path):
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
        self.process = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(target)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self.process.stdout.readline().strip() == "holding"

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=WAIT_S)


def test_a_second_export_into_one_folder_stops_and_the_export_stays(tmp_path):
    write_data(tmp_path / "data", "sycophancy", "a.json", balanced_items(20))
    config, out = make_config(tmp_path), tmp_path / "out"
    command = [
        sys.executable,
        "scripts/export_training_data.py",
        "--config",
        str(config),
        "--data_dir",
        str(tmp_path / "data"),
        "--output_dir",
        str(out),
    ]
    env = {**os.environ, "SPT_DATA_DIR": str(tmp_path)}
    assert subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, timeout=WAIT_S).returncode == 0
    before = {path.relative_to(out): path.read_bytes() for path in out.rglob("*") if path.is_file()}
    holder = Holder(out)  # the first export, still writing
    try:
        result = subprocess.run(
            command + ["--seed", "7"], cwd=REPO_ROOT, capture_output=True, text=True, env=env, timeout=WAIT_S
        )
    finally:
        holder.close()
    assert result.returncode == 2 and f"pid {holder.process.pid}" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert {path.relative_to(out): path.read_bytes() for path in out.rglob("*") if path.is_file()} == before


def test_a_second_eligibility_judge_on_one_verdict_file_stops_and_the_verdicts_stay(tmp_path, tagged_dir, capsys):
    config = default_config(tmp_path, data_dir=str(tagged_dir))
    verdicts = tmp_path / "verdicts.json"
    assert judge(tmp_path, config, "--provider", "mock") == 0
    before = verdicts.read_bytes()
    capsys.readouterr()
    holder = Holder(verdicts)  # the first judge run, still judging
    try:
        code = judge(tmp_path, config, "--provider", "mock", "--force")
    finally:
        holder.close()
    err = capsys.readouterr().err
    assert code == 2 and f"pid {holder.process.pid}" in err and "eligibility verdicts" in err, err
    assert verdicts.read_bytes() == before
    assert judge(tmp_path, config, "--provider", "mock", "--force") == 0  # free again once the first run ended


def test_lock_file_records_its_holder_only_while_held(tmp_path):
    target = tmp_path / "out"
    with locks.hold(target, "a test", locks.WAIT_OR_ELSEWHERE):
        record = json.loads(locks.lock_path(target).read_text())
        assert record["pid"] == os.getpid() and record["host"] == socket.gethostname()
        with pytest.raises(locks.LockHeld, match=f"pid {os.getpid()} on host"):
            with locks.hold(target, "a test", locks.WAIT_OR_ELSEWHERE):
                pass
    assert locks.lock_path(target).read_text() == ""
    with locks.hold(target, "a test", locks.WAIT_OR_ELSEWHERE):  # free again
        pass


# --------------------------------------------------------------------------- training


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from spt.training.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny_lock") / "llama3", "llama3")


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.usefixtures("torch_one_thread")
def test_training_twice_into_one_output_dir_needs_resume_or_overwrite(tiny_model, tmp_path, capsys):
    from entry_scripts import run_main
    from test_training_train import base_args, hand_made_samples, write_jsonl

    train_file, output_dir = tmp_path / "train.jsonl", tmp_path / "run"
    write_jsonl(train_file, hand_made_samples())
    args = base_args(tiny_model, output_dir, train_file, epochs=1)
    assert run_main("training/train_lora.py", args + ["--max_steps", "1"]) == 0
    first = tree_bytes(output_dir)
    assert any(name.startswith("step_1/") for name in first)
    capsys.readouterr()

    assert run_main("training/train_lora.py", args + ["--max_steps", "1"]) == 2
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert "holds checkpoints of an earlier run (step_1)" in message
    assert "--resume latest" in message and "new output_dir" in message and "--overwrite" in message
    assert tree_bytes(output_dir) == first  # byte-identical

    holder = Holder(output_dir)  # a training still running there
    try:
        assert run_main("training/train_lora.py", args + ["--max_steps", "1", "--overwrite"]) == 2
    finally:
        holder.close()
    assert f"pid {holder.process.pid}" in capsys.readouterr().err
    assert tree_bytes(output_dir) == first

    (output_dir / ".step_1.partial").mkdir()  # what a save stopped midway leaves
    assert run_main("training/train_lora.py", args + ["--max_steps", "1", "--overwrite"]) == 0
    assert not (output_dir / ".step_1.partial").exists()
    assert (output_dir / "step_1" / "training_state.json").is_file()
