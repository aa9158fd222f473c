"""One line, never a traceback, in all nine entry scripts: an output folder that cannot be written
(read-only, a file in its place, SPT_DATA_DIR pointing at a file) stops with exit 2 before any
work; so do training before any export, a base model that cannot exist, a corrupt response cache
(left untouched), an unknown --stage2_model and stage 2's missing API key (with advice stage 2
takes). Ctrl-C (SIGINT) stops every script with one line and exit 130, and a rerun resumes.

The scripts run as subprocesses (SPT_DATA_DIR is read when they start) or through run_main."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from entry_scripts import run_main
from fake_provider import FakeProviderServer
from repo import REPO_ROOT

STAGE_1 = "scripts/dataset_generation_stage_1.py"
STAGE_2 = "scripts/dataset_generation_stage_2.py"
STAGE_3 = "scripts/dataset_generation_stage_3.py"
TAGGER = "scripts/tag_stage_3_data.py"
ANALYSIS = "scripts/analyze_stage_3.py"
EXPORT = "scripts/export_training_data.py"
EVALUATION_REPORT = "scripts/analyze_evaluation_results.py"
TRAIN = "training/train_lora.py"
EVALUATE = "training/evaluate.py"

MOCK_STAGE_1 = (
    "--names",
    "sycophancy",
    "--num_batches",
    "1",
    "--num_items_per_batch",
    "12",
    "--provider",
    "mock",
    "--model",
    "mock-generator",
)
MOCK_STAGE_2 = ("--names", "all", "--inference", "mock", "--model", "demo/target-model")
MOCK_STAGE_3 = (
    "--names",
    "all",
    "--provider",
    "mock",
    "--model",
    "mock-generator",
    "--intervention_modification",
    "v1",
)
STOPPED = "stopped; rerun the same command to resume"


# --------------------------------------------------------------------------- helpers


def script_env(data_dir: Path, server: FakeProviderServer | None = None, **extra: str) -> dict:
    """The environment of a script run: its data folder, no progress bars, no real key or endpoint."""
    env = {key: value for key, value in os.environ.items() if not key.endswith(("_BASE_URL", "_API_KEY"))}
    env.update(SPT_DATA_DIR=str(data_dir), TQDM_DISABLE="1", OMP_NUM_THREADS="1", **extra)
    return {**env, **(server.env() if server else {})}


def run_script(script: str, data_dir: Path, *args: str, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, script, *map(str, args)],
        cwd=REPO_ROOT,
        env=script_env(data_dir, **extra),
        capture_output=True,
        text=True,
        timeout=180,
    )


def assert_one_line_error(code: int, stderr: str, *fragments: str) -> str:
    """Exit 2 and exactly one `error:` line, the last on stderr, holding every fragment; returns it."""
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert code == 2 and lines and lines[-1].startswith("error: "), (code, stderr)
    assert sum(line.startswith("error: ") for line in lines) == 1, stderr
    for fragment in fragments:
        assert fragment in lines[-1], (fragment, lines[-1])
    return lines[-1]


def run_in_process(capsys, script: str, *args) -> tuple[int, str]:
    code = run_main(script, list(map(str, args)))
    return code, capsys.readouterr().err


@pytest.fixture(scope="module")
def mock_data(tmp_path_factory) -> Path:
    """Stage-1, -2 and -3 files of one sycophancy batch, made offline by the scripts on the mock provider."""
    data_dir = tmp_path_factory.mktemp("mock_data")
    for script, args in ((STAGE_1, MOCK_STAGE_1), (STAGE_2, MOCK_STAGE_2), (STAGE_3, MOCK_STAGE_3)):
        result = run_script(script, data_dir, *args)
        assert result.returncode == 0, result.stderr
    shutil.rmtree(data_dir / ".response_cache")
    return data_dir


@pytest.fixture
def data_dir(mock_data, tmp_path) -> Path:
    """A private copy of mock_data."""
    return Path(shutil.copytree(mock_data, tmp_path / "data"))


def _writable(folder: Path) -> bool:
    try:
        (folder / ".probe").touch()
    except OSError:
        return False
    (folder / ".probe").unlink()
    return True


@pytest.fixture
def read_only():
    """make(folder): `folder`, created when missing, that this process cannot write into (mode 0555;
    as root, which ignores modes, the immutable attribute; skipped where neither binds)."""
    made: list[Path] = []

    def make(folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        made.append(folder)
        folder.chmod(0o555)
        if _writable(folder) and shutil.which("chattr"):
            subprocess.run(["chattr", "+i", str(folder)], capture_output=True)
        if _writable(folder):
            pytest.skip("no way to make a read-only folder here (root without chattr)")
        return folder

    yield make
    for folder in made:
        if shutil.which("chattr"):
            subprocess.run(["chattr", "-i", str(folder)], capture_output=True)
        folder.chmod(0o755)


# --------------------------------------------------------------------------- output folders

# (script, arguments, the folder made read-only, what the message names); {ro} is the read-only
# folder. The stages write under SPT_DATA_DIR; the export replaces its whole folder through a
# sibling, so the read-only folder is its parent.
READ_ONLY_CASES = {
    "stage_1": (STAGE_1, MOCK_STAGE_1, "stage_1", "SPT_DATA_DIR"),
    "stage_2": (STAGE_2, MOCK_STAGE_2, "stage_2", "SPT_DATA_DIR"),
    "stage_3": (STAGE_3, MOCK_STAGE_3, "stage_3", "SPT_DATA_DIR"),
    "stage_1_cache": (STAGE_1, (*MOCK_STAGE_1, "--cache_dir", "{ro}"), "ro", "--cache_dir"),
    "tagger": (TAGGER, ("--output", "{ro}"), "ro", "--output"),
    "analysis": (ANALYSIS, ("--output_dir", "{ro}", "--no_plots"), "ro", "--output_dir"),
    "export": (EXPORT, ("--output_dir", "{ro}/export"), "ro", "--output_dir"),
    "evaluation_report": (EVALUATION_REPORT, ("--dir", "{ro}", "--output", "{ro}/report.md"), "ro", "--output"),
    "train": (TRAIN, ("--set", "output_dir={ro}"), "ro", "config key output_dir"),
    "evaluate": (
        EVALUATE,
        ("--baseline", "clean", "--base_model", "org/model", "--input", "in.json", "--output_dir", "{ro}"),
        "ro",
        "--output_dir",
    ),
}


@pytest.mark.parametrize("case", READ_ONLY_CASES)
def test_read_only_output_folder_is_one_line_before_any_work(case, tmp_path, read_only):
    script, args, refused, named = READ_ONLY_CASES[case]
    data = tmp_path / "data"
    folder = read_only(data / refused if refused.startswith("stage_") else tmp_path / "ro")
    result = run_script(script, data, *(arg.replace("{ro}", str(tmp_path / "ro")) for arg in args))
    assert_one_line_error(result.returncode, result.stderr, f"{folder} (", named, "cannot write there")
    assert not any(folder.iterdir())


# (script, arguments) with {file} where an output folder is expected; each names the flag or key.
FILE_CASES = {
    "tagger": (TAGGER, ("--output", "{file}"), "--output"),
    "analysis": (ANALYSIS, ("--output_dir", "{file}", "--no_plots"), "--output_dir"),
    "export": (EXPORT, ("--output_dir", "{file}"), "--output_dir"),
    "train": (TRAIN, ("--set", "output_dir={file}"), "config key output_dir"),
    "evaluate": (
        EVALUATE,
        ("--baseline", "clean", "--base_model", "org/model", "--input", "in.json", "--output_dir", "{file}"),
        "--output_dir",
    ),
    "evaluation_report_in_a_file": (EVALUATION_REPORT, ("--output", "{file}/report.md"), "--output"),
}


@pytest.mark.parametrize("case", FILE_CASES)
def test_output_folder_that_is_a_file_is_one_line_before_any_work(case, tmp_path, capsys):
    script, args, flag = FILE_CASES[case]
    blocker = tmp_path / "a_file"
    blocker.write_text("keep me\n")
    code, err = run_in_process(capsys, script, *(arg.replace("{file}", str(blocker)) for arg in args))
    # train and evaluate refuse before loading any model: loading base_model (a hub id, no network here)
    # would end in another error than this one line.
    assert_one_line_error(code, err, str(blocker), "is a file, not a folder", flag)
    assert blocker.read_text() == "keep me\n"


@pytest.mark.parametrize("script", [EVALUATION_REPORT, EVALUATE])
def test_output_file_that_is_a_folder_is_one_line(script, tmp_path, capsys):
    model = ("--baseline", "clean", "--base_model", "org/model", "--input", "in.json") if script == EVALUATE else ()
    code, err = run_in_process(capsys, script, *model, "--output", tmp_path)
    assert_one_line_error(code, err, str(tmp_path), "is a folder", "--output")


NINE_SCRIPTS = {
    "stage_1": (STAGE_1, MOCK_STAGE_1),
    "stage_2": (STAGE_2, MOCK_STAGE_2),
    "stage_3": (STAGE_3, MOCK_STAGE_3),
    "tagger": (TAGGER, ()),
    "analysis": (ANALYSIS, ("--no_plots",)),
    "export": (EXPORT, ()),
    "evaluation_report": (EVALUATION_REPORT, ()),
    "train": (TRAIN, ("--set", "output_dir={tmp}/checkpoints")),
    "evaluate": (EVALUATE, ("--baseline", "clean", "--base_model", "org/model", "--input", "in.json")),
}


@pytest.mark.parametrize("case", NINE_SCRIPTS)
def test_spt_data_dir_pointing_at_a_file_is_named(case, tmp_path):
    script, args = NINE_SCRIPTS[case]
    data_file = tmp_path / "data"
    data_file.write_text("not a folder\n")
    result = run_script(script, data_file, *(arg.replace("{tmp}", str(tmp_path)) for arg in args))
    assert_one_line_error(result.returncode, result.stderr, f"{data_file} (SPT_DATA_DIR): is a file, not a folder")
    assert data_file.read_text() == "not a folder\n"


# --------------------------------------------------------------------------- training inputs


def test_training_before_any_export_says_to_export_first(tmp_path):
    result = run_script(TRAIN, tmp_path / "data", "--set", f"output_dir={tmp_path / 'checkpoints'}")
    assert_one_line_error(
        result.returncode,
        result.stderr,
        str(tmp_path / "data" / "training_export" / "train.jsonl"),
        "run scripts/export_training_data.py first",
    )


@pytest.mark.parametrize(
    "script, args, named",
    [
        (TRAIN, ("--set", "base_model=/nonexistent"), "config key base_model /nonexistent"),
        (
            EVALUATE,
            ("--baseline", "clean", "--base_model", "/nonexistent", "--input", "in.json"),
            "--base_model /nonexistent",
        ),
    ],
)
def test_base_model_that_cannot_exist_is_one_line_before_loading(script, args, named, tmp_path, capsys):
    output = ("--set", f"output_dir={tmp_path}") if script == TRAIN else ("--output_dir", tmp_path)
    code, err = run_in_process(capsys, script, *args, *output)
    assert_one_line_error(code, err, named, "no such model folder")


# --------------------------------------------------------------------------- stage inputs


@pytest.mark.parametrize(
    "script, args",
    [(STAGE_1, MOCK_STAGE_1), (STAGE_2, (*MOCK_STAGE_2[:-1], "other/target")), (STAGE_3, (*MOCK_STAGE_3[:-1], "v2"))],
)  # work still to do
def test_corrupt_response_cache_is_named_with_the_way_out_and_kept(script, args, data_dir):
    cache = data_dir / ".response_cache" / "responses.sqlite3"
    cache.parent.mkdir()
    cache.write_bytes(b"garbage, not sqlite" * 10)
    result = run_script(script, data_dir, *args)
    assert_one_line_error(
        result.returncode,
        result.stderr,
        str(cache),
        "not a usable response cache",
        "move it aside or delete it to start a fresh cache",
        "paid answers in it are lost",
    )
    assert cache.read_bytes() == b"garbage, not sqlite" * 10
    assert sorted(path.name for path in cache.parent.iterdir()) == ["responses.sqlite3"]


def test_unknown_stage2_model_names_the_models_the_data_has(data_dir):
    stage_3_file = next((data_dir / "stage_3" / "sycophancy").glob("*.json"))
    before = stage_3_file.read_bytes()
    result = run_script(STAGE_3, data_dir, *MOCK_STAGE_3[:-1], "v2", "--stage2_model", "nope/model")
    assert_one_line_error(
        result.returncode, result.stderr, "--stage2_model nope/model", "the models there: demo/target-model"
    )
    assert stage_3_file.read_bytes() == before


def test_stage_2_missing_key_advises_its_own_flag_which_works(data_dir):
    args = ("--names", "all", "--model", "meta-llama/llama-3.3-70b-instruct")
    result = run_script(STAGE_2, data_dir, *args, "--inference", "openrouter", OPENROUTER_API_KEY="")
    line = assert_one_line_error(
        result.returncode, result.stderr, "OPENROUTER_API_KEY is not set", "`--inference mock`"
    )
    assert "--provider" not in line
    advised = run_script(STAGE_2, data_dir, *args, "--inference", "mock")
    assert advised.returncode == 0, advised.stderr


# --------------------------------------------------------------------------- Ctrl-C


class Interruptible:
    """A script started in its own process group, as a shell starts a command, with stderr in a
    file; `interrupt()` sends SIGINT to the whole group (what Ctrl-C does) and returns the exit
    code and what the script wrote to stderr after the signal."""

    def __init__(self, script: str, args, env: dict, stderr_path: Path):
        self.stderr = open(stderr_path, "w+", encoding="utf-8")  # closed by interrupt()
        self.process = subprocess.Popen(
            [sys.executable, script, *map(str, args)],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self.stderr,
            start_new_session=True,
        )

    def running(self) -> bool:
        return self.process.poll() is None

    def interrupt(self) -> tuple[int, str]:
        assert self.running(), "the script ended before it could be interrupted"
        self.stderr.flush()
        before = os.path.getsize(self.stderr.name)
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            code = self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)  # hung (e.g. on its worker processes): fail, leave nothing
            raise
        self.stderr.seek(before)
        after = self.stderr.read()
        self.stderr.close()
        return code, after


def blocked_in_a_pipe_read(pid: int) -> bool:
    """Whether a thread of `pid` sleeps in the kernel's pipe read (Linux: /proc/<pid>/task/*/wchan;
    elsewhere True). A signal that lands just before the read starts is handled before the read and
    does not end it (Python checks signals between bytecodes): the read then waits for the writer.
    Waiting for this state makes the signal land in the read, which it ends with EINTR."""
    tasks = Path(f"/proc/{pid}/task")
    if not tasks.is_dir():
        return True
    for wchan in tasks.glob("*/wchan"):
        try:
            where = wchan.read_text()
        except OSError:
            continue
        if "pipe" in where and "partner" not in where:  # pipe_read, anon_pipe_read; not the open
            return True
    return False


def wait_until(condition, process: Interruptible, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.running() and time.monotonic() < deadline, "the script never reached the awaited state"
        time.sleep(0.005)


def test_ctrl_c_in_stage_2_keeps_the_saved_answers_and_the_rerun_resumes(data_dir, tmp_path):
    model = "meta-llama/llama-3.3-70b-instruct"
    args = ("--names", "all", "--inference", "openrouter", "--model", model, "--concurrency", "2")
    stage_2_file = next((data_dir / "stage_2" / "sycophancy").glob("*.json"))
    items = json.loads(stage_2_file.read_text())["data"]
    variants = sum(len(item["inferences"]["demo/target-model"]) for item in items)
    with FakeProviderServer(seed=0, latency_s=0.3) as server:
        run = Interruptible(STAGE_2, args, script_env(data_dir, server), tmp_path / "stderr.txt")
        wait_until(lambda: len(server.completed_keys()) >= 4, run)
        code, after = run.interrupt()
        assert (code, after) == (130, STOPPED + "\n")
        assert len(server.completed_keys()) < variants
        json.loads(stage_2_file.read_text())  # what was saved is whole

        rerun = subprocess.run(
            [sys.executable, STAGE_2, *args],
            cwd=REPO_ROOT,
            env=script_env(data_dir, server),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert rerun.returncode == 0, rerun.stderr
        answered = [item["inferences"][model] for item in json.loads(stage_2_file.read_text())["data"]]
        assert sum(len(entries) for entries in answered) == variants
        assert all(entry.get("S") for entries in answered for entry in entries.values())
        assert len(set(server.completed_keys())) == variants
        assert len(server.paid_duplicates()) <= 2  # answers paid before Ctrl-C are not paid again


def hold_first_call(server: FakeProviderServer) -> tuple[threading.Event, threading.Event]:
    """(held, release): the server's first answer waits for `release`; `held` says it is waiting."""
    held, release = threading.Event(), threading.Event()

    def script(api: str, body: dict) -> None:
        if not held.is_set():
            held.set()
            release.wait(60)
        return None

    server.script(script)
    return held, release


@pytest.mark.parametrize(
    "script, args",
    [
        (
            STAGE_1,
            (
                "--names",
                "sycophancy",
                "--num_batches",
                "1",
                "--num_items_per_batch",
                "2",
                "--model",
                "claude-opus-5-5",
                "--otpm",
                "0",
                "--itpm",
                "0",
            ),
        ),
        (
            STAGE_3,
            (
                "--names",
                "all",
                "--model",
                "claude-sonnet-5-5",
                "--max_review_attempts",
                "0",
                "--intervention_modification",
                "v1",
                "--intervention_types",
                "split_personality",
                "--otpm",
                "0",
                "--itpm",
                "0",
            ),
        ),
    ],
)
def test_ctrl_c_while_waiting_for_an_api_answer_and_the_rerun_finishes(script, args, data_dir, tmp_path):
    stage = 1 if script == STAGE_1 else 3
    shutil.rmtree(data_dir / f"stage_{stage}", ignore_errors=True)
    with FakeProviderServer(seed=0) as server:
        held, release = hold_first_call(server)
        run = Interruptible(script, args, script_env(data_dir, server), tmp_path / "stderr.txt")
        wait_until(held.is_set, run)
        code, after = run.interrupt()
        release.set()
        assert (code, after) == (130, STOPPED + "\n")

        rerun = subprocess.run(
            [sys.executable, script, *args],
            cwd=REPO_ROOT,
            env=script_env(data_dir, server),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert rerun.returncode == 0, rerun.stderr
        assert list((data_dir / f"stage_{stage}" / "sycophancy").glob("batch_*.json"))


def test_ctrl_c_reaches_the_tagger_workers_without_a_traceback_and_the_rerun_tags_all(mock_data, tmp_path):
    """A real Ctrl-C signals the whole process group, the tagger's worker processes included."""
    source = next((mock_data / "stage_3" / "sycophancy").glob("*.json")).read_text()
    topic = tmp_path / "data" / "stage_3" / "sycophancy"
    topic.mkdir(parents=True)
    for number in range(600):
        (topic / f"batch_sycophancy_20250101_000000_batch_{number:03d}.json").write_text(source)
    output = tmp_path / "data" / "stage_3_tagged"
    run = Interruptible(TAGGER, ("--jobs", "2"), script_env(tmp_path / "data"), tmp_path / "stderr.txt")

    def tagging() -> bool:  # pass 2: a worker's temporary is there (the folder may come and go before:
        try:  # the writability check creates and removes it)
            return any(output.rglob("*.tmp"))
        except OSError:
            return False

    wait_until(tagging, run)
    code, after = run.interrupt()
    assert code == 130 and after.rstrip("\n").endswith(STOPPED) and after.count(STOPPED) == 1, after
    assert "Traceback" not in after and "KeyboardInterrupt" not in after, after
    assert not list(output.rglob("*.json"))  # nothing is committed before every file is tagged

    rerun = run_script(TAGGER, tmp_path / "data", "--jobs", "2")
    assert rerun.returncode == 0, rerun.stderr
    assert len(list(output.rglob("*.json"))) == 600


# (script, arguments) reading the FIFO {fifo} early in their run: the read blocks until the signal.
FIFO_CASES = {
    "analysis": (ANALYSIS, ("--config", "{fifo}", "--output_dir", "{tmp}/analysis", "--no_plots"), STOPPED),
    "export": (EXPORT, ("--config", "{fifo}", "--output_dir", "{tmp}/export"), STOPPED),
    "evaluation_report": (EVALUATION_REPORT, ("--dir", "{fifo_dir}", "--output", "{tmp}/report.md"), STOPPED),
    "train": (TRAIN, ("--config", "{fifo}"), "stopped; nothing was saved; rerun the same command"),
    "evaluate": (
        EVALUATE,
        ("--baseline", "clean", "--base_model", "org/model", "--input", "{fifo}", "--output_dir", "{tmp}/results"),
        STOPPED,
    ),
}


@pytest.mark.parametrize("case", FIFO_CASES)
def test_ctrl_c_while_reading_an_input_is_one_line(case, tmp_path):
    script, args, message = FIFO_CASES[case]
    fifo = tmp_path / "inputs" / "input.json"
    fifo.parent.mkdir()
    os.mkfifo(fifo)
    values = {"{fifo}": str(fifo), "{fifo_dir}": str(fifo.parent), "{tmp}": str(tmp_path)}
    for placeholder, value in values.items():
        args = tuple(arg.replace(placeholder, value) for arg in args)
    run = Interruptible(script, args, script_env(tmp_path / "data"), tmp_path / "stderr.txt")
    writer: list[int] = []

    def reader_opened() -> bool:  # opening the writing end succeeds once the script reads
        try:
            writer.append(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            return False
        return True

    wait_until(reader_opened, run)  # the script has the FIFO open (or is opening it) ...
    wait_until(lambda: blocked_in_a_pipe_read(run.process.pid), run)  # ... and is blocked reading it
    try:
        code, after = run.interrupt()
    finally:
        os.close(writer[0])
    assert (code, after) == (130, message + "\n")
