"""The fault sweep of issue 22: run the pipeline's scripts on many faults and count what went wrong.

Every case runs one or two scripts as subprocesses on a private copy of a small data folder the
mock provider made offline (stage 1 -> 2 -> 3 -> tag -> analysis -> export, plus a one-step
training of a tiny model), then classifies the outcome:

- traceback: "Traceback" on stderr;
- data loss: a failed run changed or removed a file that was there before (lock files aside), or
  runs that met lost answers, checkpoints or the export;
- accepted wrong input: a wrong flag, config or data file ended with exit 0.

Prints one line per failing case and the counts. Usage:
    python tests/benchmarks/fault_sweep.py [--jobs 2] [--only SUBSTRING] [--work_dir DIR]
A full disk needs root (a 2 MB tmpfs is mounted); without it those cases are skipped and counted so.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from bench_paths import add_test_code

add_test_code()

from repo import REPO_ROOT
from test_input_checks import misspell_a_tag  # noqa: E402
from test_os_errors import fill  # noqa: E402

from spt.utils import CONFIG_DIR, REPO_ROOT  # noqa: E402

PY = sys.executable
S1, S2, S3 = (
    "scripts/dataset_generation_stage_1.py",
    "scripts/dataset_generation_stage_2.py",
    "scripts/dataset_generation_stage_3.py",
)
VERIFY, TAG, ANALYSIS = "scripts/verify_ab_factors.py", "scripts/tag_stage_3_data.py", "scripts/analyze_stage_3.py"
EXPORT, REPORT = "scripts/export_training_data.py", "scripts/analyze_evaluation_results.py"
TRAIN, EVALUATE = "training/train_lora.py", "training/evaluate.py"
MOCK1 = (
    "--names",
    "sycophancy",
    "--num_batches",
    "1",
    "--num_items_per_batch",
    "8",
    "--provider",
    "mock",
    "--model",
    "mock-generator",
)
MOCK2 = ("--names", "all", "--inference", "mock", "--model", "demo/target-model", "--num_samples", "3")
MOCK_VERIFY = ("--names", "all", "--provider", "mock", "--model", "judge", "--num_samples", "3")  # K >= 3 answers
ELIGIBILITY = "scripts/judge_prompt_eligibility.py"
MOCK3 = ("--names", "all", "--provider", "mock", "--model", "mock-generator", "--intervention_modification", "v1")
LONG = "n" * 300


@dataclass
class Outcome:
    name: str
    traceback: bool = False
    data_loss: bool = False
    accepted_wrong: bool = False
    skipped: str = ""
    detail: str = ""


@dataclass
class World:
    """The prepared data folder (copied per case), the config and the tiny model."""

    base: Path
    work: Path
    config: Path
    model: Path
    counter: list = field(default_factory=lambda: [0])
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fresh(self) -> Path:
        with self.lock:
            self.counter[0] += 1
            number = self.counter[0]
        target = self.work / f"case_{number}"
        shutil.copytree(self.base, target / "data", symlinks=True)
        return target


def env_for(data_dir: Path, **extra: str) -> dict:
    env = {key: value for key, value in os.environ.items() if not key.endswith(("_BASE_URL", "_API_KEY"))}
    env.update(
        {"SPT_DATA_DIR": str(data_dir), "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", **extra}
    )
    path = str(REPO_ROOT)
    env["PYTHONPATH"] = path + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def run(script: str, args, data_dir: Path, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PY, script, *map(str, args)],
        cwd=REPO_ROOT,
        env=env_for(data_dir, **extra),
        capture_output=True,
        text=True,
        timeout=600,
    )


def start(script: str, args, data_dir: Path, **extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [PY, script, *map(str, args)],
        cwd=REPO_ROOT,
        env=env_for(data_dir, **extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.endswith(".lock") and ".response_cache" not in p.parts
    }


def lost(before: dict, after: dict) -> list[str]:
    return [name for name, content in before.items() if after.get(name) != content]


# --------------------------------------------------------------------------- case kinds

WARNINGS = ("warning", "FAILED")  # a counted warning in a summary (the analysis's sanity checks)


def wrong_input(
    name: str, script: str, args, prepare: Callable[[Path], None] | None = None, warning_is_right: bool = False, **extra
):
    """A wrong flag, config or data file: must exit 2 (not 0), one line, no traceback, nothing lost; with
    `warning_is_right` (skipping is right) exit 0 with a counted warning passes too."""

    def case(world: World) -> Outcome:
        root = world.fresh()
        data = root / "data"
        if prepare:
            prepare(root)
        before = snapshot(data)
        values = [
            str(a)
            .replace("{root}", str(root))
            .replace("{config}", str(world.config))
            .replace("{model}", str(world.model))
            for a in args
        ]
        result = run(script, values, data, **{k: v.replace("{root}", str(root)) for k, v in extra.items()})
        warned = any(word in result.stdout + result.stderr for word in WARNINGS)
        outcome = Outcome(
            name,
            traceback="Traceback" in result.stderr,
            accepted_wrong=result.returncode == 0 and not (warning_is_right and warned),
            detail=(result.stderr.strip().splitlines() or [""])[-1][:200],
        )
        outcome.data_loss = result.returncode != 0 and bool(
            lost(before, snapshot(data))
        )  # a failed run changes nothing
        return outcome

    case.__name__ = name
    return case


def os_fault(
    name: str,
    script: str,
    args,
    prepare: Callable[[Path], None] | None = None,
    full_disk=False,
    expect_zero=False,
    **extra,
):
    """An OS-level fault (a name too long, a file in the way, a full disk): non-zero, no traceback, nothing lost."""

    def case(world: World) -> Outcome:
        root = world.fresh()
        data = root / "data"
        disk = None
        if full_disk:
            disk = root / "disk"
            disk.mkdir()
            mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)], capture_output=True)
            if mounted.returncode:
                return Outcome(name, skipped="cannot mount a tmpfs (not root)")
        try:
            if prepare:
                prepare(root)
            if disk:
                fill(disk)
            before = {**snapshot(data), **({f"disk/{k}": v for k, v in snapshot(disk).items()} if disk else {})}
            values = [
                str(a)
                .replace("{root}", str(root))
                .replace("{config}", str(world.config))
                .replace("{model}", str(world.model))
                for a in args
            ]
            result = run(script, values, data, **{k: v.replace("{root}", str(root)) for k, v in extra.items()})
            after = {**snapshot(data), **({f"disk/{k}": v for k, v in snapshot(disk).items()} if disk else {})}
            outcome = Outcome(
                name,
                traceback="Traceback" in result.stderr,
                accepted_wrong=(result.returncode == 0) != expect_zero,
                detail=(result.stderr.strip().splitlines() or [""])[-1][:200],
            )
            outcome.data_loss = bool(lost(before, after))
            return outcome
        finally:
            if disk:
                subprocess.run(["umount", "-l", str(disk)], capture_output=True)

    case.__name__ = name
    return case


def copy_to_disk(folders: tuple[str, ...]):
    """Prepare: move data/<folder> onto the tmpfs (a symlink stays in its place)."""

    def prepare(root: Path) -> None:
        for folder in folders:
            source = root / "data" / folder
            target = root / "disk" / folder
            shutil.copytree(source, target)
            shutil.rmtree(source)
            source.symlink_to(target)

    return prepare


# --------------------------------------------------------------------------- cases that meet


def meeting(name: str, first: tuple, second: tuple, check: Callable[[Path, list], str], prepare=None):
    """Two runs started together; `check(data, results)` names what was lost ('' when nothing)."""

    def case(world: World) -> Outcome:
        root = world.fresh()
        data = root / "data"
        if prepare:
            prepare(root, world)

        def fix(args):
            return [
                str(a)
                .replace("{root}", str(root))
                .replace("{config}", str(world.config))
                .replace("{model}", str(world.model))
                for a in args
            ]

        processes = [start(first[0], fix(first[1]), data), start(second[0], fix(second[1]), data)]
        results = [(p.wait(timeout=600), *p.communicate()) for p in processes]
        stderr = "".join(r[2] for r in results)
        problem = check(data, results)
        return Outcome(name, traceback="Traceback" in stderr, data_loss=bool(problem), detail=problem)

    case.__name__ = name
    return case


def answers_of(data: Path, model: str) -> int:
    return sum(
        len(item.get("inferences", {}).get(model, {}))
        for path in (data / "stage_2").glob("*/*.json")
        for item in json.loads(path.read_text())["data"]
    )


def variants_total(data: Path) -> int:
    return sum(
        1 + bool((item.get("B") or "").strip())
        for path in (data / "stage_1").glob("*/*.json")
        for item in json.loads(path.read_text())["data"]
    )


def two_models_check(data: Path, results: list) -> str:
    total = variants_total(data)
    codes = [r[0] for r in results]
    got = {model: answers_of(data, model) for model in ("model-one", "model-two")}
    for (code, _, _), model in zip(results, got):
        if code == 0 and got[model] < total:
            return f"{model} exit 0 with {got[model]} of {total} answers"
    if any(code not in (0, 2) for code in codes):
        return f"exit codes {codes}"
    return ""


def same_model_check(data: Path, results: list) -> str:
    codes = sorted(r[0] for r in results)
    if codes not in ([0, 0], [0, 2]):
        return f"exit codes {codes}"
    return "" if answers_of(data, "model-one") == variants_total(data) else "answers missing"


def verify_and_stage_2_check(data: Path, results: list) -> str:
    return "" if answers_of(data, "model-two") == variants_total(data) or results[1][0] != 0 else "stage-2 answers lost"


def stage_1_twice_check(data: Path, results: list) -> str:
    files = list((data / "stage_1" / "sycophancy").glob("batch_*.json"))
    tasks = [item["T"] for path in files for item in json.loads(path.read_text())["data"]]
    return "" if len(tasks) == len(set(tasks)) else f"{len(tasks) - len(set(tasks))} duplicated samples"


def export_check(data: Path, results: list) -> str:
    out = data / "training_export"
    return "" if (out / "export_manifest.json").is_file() else "no export folder left"


def training_check(data: Path, results: list) -> str:
    codes = sorted(r[0] for r in results)
    states = list((data.parent / "ckpt").glob("step_*/training_state.json"))
    return "" if codes in ([0, 2],) and states else f"exit codes {codes}, {len(states)} checkpoints"


def prepare_stage_1_only(root: Path, world: World) -> None:
    for folder in ("stage_2", "stage_3", "stage_3_tagged"):
        shutil.rmtree(root / "data" / folder, ignore_errors=True)


# --------------------------------------------------------------------------- the case list


def write(relative: str, content: bytes | str):
    def prepare(root: Path) -> None:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())

    return prepare


def first_file(folder: str):
    def find(root: Path) -> Path:
        return next((root / "data" / folder).glob("*/*.json"))

    return find


def corrupt(folder: str, how: str):
    def prepare(root: Path) -> None:
        path = first_file(folder)(root)
        if how == "json":
            path.write_text("{not json")
        elif how == "utf8":
            path.write_bytes(b'{"topic": "\xff"}')
        elif how == "list":
            path.write_text("[]")
        elif how == "no_data":
            path.write_text(json.dumps({"topic": "sycophancy"}))
        elif how == "data_not_list":
            path.write_text(json.dumps({"topic": "sycophancy", "data": {}}))
        elif how == "item_not_object":
            path.write_text(json.dumps({"topic": "sycophancy", "data": [1]}))
        elif how == "empty":
            path.write_text("")

    return prepare


def providers_config(change: dict):
    def prepare(root: Path) -> None:
        config = json.loads((CONFIG_DIR / "providers.json").read_text())
        for key, value in change.items():
            if isinstance(value, dict) and isinstance(config.get(key), dict):
                config[key] = {**config[key], **value}
            else:
                config[key] = value
        (root / "providers.json").write_text(json.dumps(config))

    return prepare


def training_config(change: dict):
    def prepare(root: Path) -> None:
        config = (
            json.loads((root / "config.json").read_text())
            if (root / "config.json").exists()
            else json.loads((CONFIG_DIR / "demo_training_config.json").read_text())
        )
        config.update(change)
        (root / "config.json").write_text(json.dumps(config))

    return prepare


def remove_stage_2(root: Path) -> None:
    shutil.rmtree(root / "data" / "stage_2")


def both(*prepares):
    def prepare(root: Path) -> None:
        for step in prepares:
            step(root)

    return prepare


def cases() -> list[Callable[[World], Outcome]]:
    found: list = []
    add = found.append
    stage_2_new = ("--names", "all", "--inference", "mock", "--model", "other-model")
    # wrong flags (each must exit 2)
    for flag, value in (
        ("--num_batches", "0"),
        ("--num_batches", "-1"),
        ("--num_items_per_batch", "0"),
        ("--num_items_per_batch", "1000000"),
        ("--max_tokens", "0"),
        ("--target_items", "-1"),
        ("--concurrency", "0"),
        ("--concurrency", "-3"),
        ("--rpm", "-5"),
        ("--itpm", "-1"),
        ("--otpm", "-1"),
        ("--max_cost", "-1"),
        ("--names", "no_such_topic"),
        ("--exclude", "no_such_topic"),
        ("--thinking_budget", "5"),
    ):
        args = [a for a in MOCK1 if a not in ()]
        add(wrong_input(f"stage1 {flag} {value}", S1, [*args, flag, value]))
    for flag, value in (
        ("--batch_size", "0"),
        ("--max_new_tokens", "0"),
        ("--num_samples", "0"),
        ("--temperature", "-1"),
        ("--temperature", "3"),
        ("--top_p", "7"),
        ("--top_p", "0"),
        ("--top_k", "0"),
        ("--concurrency", "0"),
        ("--rpm", "-5"),
        ("--max_cost", "-2"),
        ("--names", "bogus"),
        ("--exclude", "bogus"),
        ("--tensor_parallel_size", "2"),
        ("--quantization", "4"),
        ("--merge_lora", "{root}/none"),
        ("--provider", "openai"),
    ):
        add(wrong_input(f"stage2 {flag} {value}", S2, [*stage_2_new, flag, value], prepare=remove_stage_2))
    for flag, value in (
        ("--batch_size", "0"),
        ("--max_context_tokens", "0"),
        ("--max_review_attempts", "-1"),
        ("--intervention_modification", ""),
        ("--intervention_modification", "a__b"),
        ("--concurrency", "0"),
        ("--num_processes", "0"),
        ("--rpm", "-1"),
        ("--names", "bogus"),
        ("--stage2_model", "nobody/none"),
        ("--max_cost", "-1"),
    ):
        args = [
            "--names",
            "all",
            "--provider",
            "mock",
            "--model",
            "mock-generator",
            "--intervention_modification",
            "v2",
        ]
        add(wrong_input(f"stage3 {flag} {value!r}", S3, [*args, flag, value]))
    for flag, value in (
        ("--num_samples", "2"),
        ("--num_samples", "10"),
        ("--alpha", "0"),
        ("--alpha", "1.5"),
        ("--concurrency", "0"),
        ("--stage2_model", "nobody/none"),
        ("--names", "bogus"),
        ("--max_cost", "-1"),
    ):
        add(wrong_input(f"verify {flag} {value}", VERIFY, [*MOCK_VERIFY, flag, value]))
    for flag, value in (
        ("--config", "{root}/missing.json"),
        ("--data_models", "nobody/none"),
        ("--concurrency", "0"),
        ("--max_cost", "-1"),
        ("--data_dir", "{root}/missing"),
    ):
        add(
            wrong_input(
                f"eligibility {flag} {value}", ELIGIBILITY, ["--config", "{config}", "--provider", "mock", flag, value]
            )
        )
    for flag, value in (("--jobs", "0"), ("--input", "{root}/missing"), ("--first_id_numeric", "-5")):
        add(wrong_input(f"tagger {flag} {value}", TAG, [flag, value]))
    for flag, value in (
        ("--jobs", "0"),
        ("--topic", "bogus"),
        ("--config", "{root}/missing.json"),
        ("--output_dir", "{root}/data/stage_3_tagged/report"),
        ("--data_dir", "{root}/data/stage_3"),
        ("--examples", "bogus"),
    ):
        add(wrong_input(f"analysis {flag} {value}", ANALYSIS, ["--no_plots", flag, value]))
    for flag, value in (
        ("--data_models", "nobody/none"),
        ("--config", "{root}/missing.json"),
        ("--output_dir", "{root}/data/stage_3_tagged/export"),
        ("--data_dir", "{root}/missing"),
        ("--seed", "x"),
    ):
        add(wrong_input(f"export {flag} {value}", EXPORT, ["--config", "{config}", flag, value]))
    for flag, value in (
        ("--limit", "-2"),
        ("--limit", "0"),
        ("--batch_size", "0"),
        ("--max_new_tokens", "0"),
        ("--base_model", "{root}"),
        ("--checkpoint", "{root}/none"),
        ("--input", "{root}/none.json"),
        ("--unseen_intent_response_tokens", "-1"),
    ):
        add(
            wrong_input(
                f"evaluate {flag} {value}",
                EVALUATE,
                ["--baseline", "clean", "--base_model", "org/model", "--validation", flag, value],
            )
        )
    for setting in (
        "lora_r=-1",
        "lr=-1",
        "epochs=0",
        "batch_size=0",
        "unknown_key=1",
        'seq_len="long"',
        "base_model={root}",
        "base_model=not a model",
        "train_topics=[]",
    ):
        add(
            wrong_input(
                f"train --set {setting}",
                TRAIN,
                ["--config", "{config}", "--set", setting.replace("{root}", "{root}"), "--max_steps", "1"],
            )
        )
    add(
        wrong_input(
            "train --max_steps 0", TRAIN, ["--config", "{config}", "--set", "base_model={model}", "--max_steps", "0"]
        )
    )
    add(
        wrong_input(
            "train --resume and --overwrite",
            TRAIN,
            ["--config", "{config}", "--set", "base_model={model}", "--resume", "latest", "--overwrite"],
        )
    )
    add(
        wrong_input(
            "train empty train file",
            TRAIN,
            ["--config", "{config}", "--set", "base_model={model}", "--train_file", "{root}/empty.jsonl"],
            prepare=write("empty.jsonl", ""),
        )
    )
    add(
        wrong_input(
            "train twice without --resume",
            TRAIN,
            [
                "--config",
                "{config}",
                "--set",
                "base_model={model}",
                "--set",
                "output_dir={root}/data/ckpt",
                "--max_steps",
                "1",
            ],
        )
    )
    add(
        wrong_input(
            "report --output .json inside --dir",
            REPORT,
            [
                "--dir",
                "{root}/data/evaluation_results/quantitative",
                "--output",
                "{root}/data/evaluation_results/quantitative/x.json",
            ],
        )
    )
    # bad data files
    for folder, script, args in (
        ("stage_1", S2, stage_2_new),
        ("stage_2", S3, MOCK3),
        ("stage_2", VERIFY, MOCK_VERIFY),
        ("stage_3", TAG, ()),
        ("stage_3_tagged", ANALYSIS, ("--no_plots",)),
        ("stage_3_tagged", EXPORT, ("--config", "{config}")),
    ):
        for how in ("json", "utf8", "list", "no_data", "data_not_list", "item_not_object", "empty"):
            prepare = corrupt(folder, how)
            if script == S2:
                prepare = both(remove_stage_2, prepare)
            add(
                wrong_input(
                    f"{Path(script).stem} reading a {folder} file: {how}",
                    script,
                    args,
                    prepare=prepare,
                    warning_is_right=script == ANALYSIS,
                )
            )  # the report counts unreadable files
    add(wrong_input("export hand-edited tag", EXPORT, ["--config", "{config}"], prepare=misspell_tag))
    add(wrong_input("analysis --strict hand-edited tag", ANALYSIS, ["--no_plots", "--strict"], prepare=misspell_tag))
    add(wrong_input("analysis untagged folder", ANALYSIS, ["--no_plots", "--data_dir", "{root}/data/stage_3"]))
    # configs
    for change in (
        {"concurrency": "lots"},
        {"concurrency": 0},
        {"timeout_s": -1},
        {"retry": {"max_attempts": "x"}},
        {"retry": {"bogus": 1}},
        {"batch": {"idle_s": "x"}},
        {"providers": {"mock": []}},
        {"providers": {"mock": {"rpm": "fast", "itpm": None, "otpm": None, "base_url": None}}},
        {"providers": []},
    ):
        for script, args in ((S2, stage_2_new), (S1, MOCK1)):
            prepare = providers_config(change)
            if script == S2:
                prepare = both(remove_stage_2, prepare)
            add(
                wrong_input(
                    f"{Path(script).stem} providers.json {change}",
                    script,
                    args,
                    prepare=prepare,
                    SPT_PROVIDERS_CONFIG="{root}/providers.json",
                )
            )
    add(
        wrong_input(
            "stage2 providers.json not JSON",
            S2,
            stage_2_new,
            prepare=both(remove_stage_2, write("providers.json", "{")),
            SPT_PROVIDERS_CONFIG="{root}/providers.json",
        )
    )
    for change in (
        {"seed": "x"},
        {"validation_fraction": 2},
        {"tags_to_filter": ["failed_extrenal_review"]},
        {"intervention_types": ["bogus"]},
        {"train_topics": ["bogus"]},
        {"data_models": "x"},
        {"export_dir": 5},
    ):
        add(
            wrong_input(
                f"export config {change}", EXPORT, ["--config", "{root}/config.json"], prepare=training_config(change)
            )
        )
        add(
            wrong_input(
                f"train config {change}",
                TRAIN,
                ["--config", "{root}/config.json", "--set", "base_model={model}", "--max_steps", "1"],
                prepare=training_config(change),
            )
        )
    # OS errors
    for script, args in (
        (S2, stage_2_new),
        (S1, MOCK1),
        (S3, MOCK3),
        (TAG, ()),
        (ANALYSIS, ("--no_plots",)),
        (EXPORT, ("--config", "{config}")),
        (VERIFY, MOCK_VERIFY),
        (ELIGIBILITY, ("--config", "{config}", "--provider", "mock")),
    ):
        add(os_fault(f"{Path(script).stem} SPT_DATA_DIR name too long", script, args, SPT_DATA_DIR=f"{{root}}/{LONG}"))
        add(
            os_fault(
                f"{Path(script).stem} SPT_DATA_DIR is a file",
                script,
                args,
                prepare=write("afile", "x"),
                SPT_DATA_DIR="{root}/afile",
            )
        )
    for script, args in (
        (TAG, ("--output", f"{{root}}/{LONG}")),
        (ANALYSIS, ("--no_plots", "--output_dir", f"{{root}}/{LONG}")),
        (EXPORT, ("--config", "{config}", "--output_dir", f"{{root}}/{LONG}")),
        (TRAIN, ("--config", "{config}", "--set", f"output_dir={{root}}/{LONG}")),
        (
            EVALUATE,
            ("--baseline", "clean", "--base_model", "org/model", "--validation", "--output_dir", f"{{root}}/{LONG}"),
        ),
        (REPORT, ("--output", f"{{root}}/{LONG}.md")),
        (S2, ("--names", "all", "--inference", "mock", "--model", "m", "--cache_dir", f"{{root}}/{LONG}")),
        (TAG, ("--output", "{root}/afile")),
        (ANALYSIS, ("--no_plots", "--output_dir", "{root}/afile")),
        (EXPORT, ("--config", "{config}", "--output_dir", "{root}/afile")),
        (TRAIN, ("--config", "{config}", "--set", "output_dir={root}/afile")),
        (REPORT, ("--output", "{root}/afile/report.md")),
    ):
        add(os_fault(f"{Path(script).stem} {' '.join(args)[-40:]}", script, args, prepare=write("afile", "x")))
    for script, args in (
        (TRAIN, ("--config", "{config}", "--set", "base_model={root}/empty")),
        (S2, ("--names", "all", "--inference", "local", "--model", "{root}/empty")),
        (EVALUATE, ("--baseline", "clean", "--base_model", "{root}/empty", "--validation")),
        (TRAIN, ("--config", "{config}", "--set", "base_model=nobody/no-model")),
    ):
        add(
            os_fault(
                f"{Path(script).stem} model folder without a model: {args[-1]}",
                script,
                args,
                prepare=both(
                    write("empty/readme.txt", "no model here"), remove_stage_2 if script == S2 else (lambda root: None)
                ),
            )
        )
    # full disk (root only)
    for script, args, folders in (
        (TAG, (), ("stage_3_tagged",)),
        (ANALYSIS, ("--no_plots", "--output_dir", "{root}/disk/stage_3_analysis"), ("stage_3_analysis",)),
        (
            EXPORT,
            ("--config", "{config}", "--seed", "5", "--output_dir", "{root}/disk/training_export"),
            ("training_export",),
        ),
        (S2, ("--names", "all", "--inference", "mock", "--model", "new-model"), ("stage_2",)),
        (
            S3,
            ("--names", "all", "--provider", "mock", "--model", "mock-generator", "--intervention_modification", "v9"),
            ("stage_3",),
        ),
        (
            S1,
            (
                "--names",
                "sycophancy",
                "--target_items",
                "16",
                "--num_items_per_batch",
                "8",
                "--provider",
                "mock",
                "--model",
                "mock-generator",
            ),
            ("stage_1",),
        ),
        (VERIFY, MOCK_VERIFY, ("stage_2",)),
        (REPORT, ("--dir", "{root}/data/evaluation_results/quantitative", "--output", "{root}/disk/report.md"), ()),
        (
            TRAIN,
            (
                "--config",
                "{config}",
                "--set",
                "output_dir={root}/disk/ckpt",
                "--set",
                "base_model={model}",
                "--max_steps",
                "1",
            ),
            (),
        ),
        (
            EVALUATE,
            (
                "--baseline",
                "clean",
                "--base_model",
                "{model}",
                "--validation",
                "--limit",
                "2",
                "--max_new_tokens",
                "4",
                "--output_dir",
                "{root}/disk/results",
            ),
            (),
        ),
    ):
        add(os_fault(f"{Path(script).stem} full disk", script, args, prepare=copy_to_disk(folders), full_disk=True))
    # runs that meet
    add(
        meeting(
            "stage 2 of two models together",
            (S2, ("--names", "all", "--inference", "mock", "--model", "model-one")),
            (S2, ("--names", "all", "--inference", "mock", "--model", "model-two")),
            two_models_check,
            prepare=lambda root, world: remove_stage_2(root),
        )
    )
    add(
        meeting(
            "stage 2 of one model twice",
            (S2, ("--names", "all", "--inference", "mock", "--model", "model-one")),
            (S2, ("--names", "all", "--inference", "mock", "--model", "model-one")),
            same_model_check,
            prepare=lambda root, world: remove_stage_2(root),
        )
    )
    add(
        meeting(
            "verify + stage 2 of a new model",
            (VERIFY, MOCK_VERIFY),
            (S2, ("--names", "all", "--inference", "mock", "--model", "model-two")),
            verify_and_stage_2_check,
        )
    )
    add(
        meeting(
            "stage 1 twice",
            (
                S1,
                (
                    "--names",
                    "sycophancy",
                    "--target_items",
                    "24",
                    "--num_items_per_batch",
                    "8",
                    "--provider",
                    "mock",
                    "--model",
                    "mock-generator",
                ),
            ),
            (
                S1,
                (
                    "--names",
                    "sycophancy",
                    "--target_items",
                    "24",
                    "--num_items_per_batch",
                    "8",
                    "--provider",
                    "mock",
                    "--model",
                    "mock-generator",
                ),
            ),
            stage_1_twice_check,
            prepare=prepare_stage_1_only,
        )
    )
    add(
        meeting(
            "two exports",
            (EXPORT, ("--config", "{config}", "--seed", "1")),
            (EXPORT, ("--config", "{config}", "--seed", "2")),
            export_check,
        )
    )
    add(
        meeting(
            "two trainings into one output_dir",
            (
                TRAIN,
                (
                    "--config",
                    "{config}",
                    "--set",
                    "base_model={model}",
                    "--set",
                    "output_dir={root}/ckpt",
                    "--max_steps",
                    "1",
                ),
            ),
            (
                TRAIN,
                (
                    "--config",
                    "{config}",
                    "--set",
                    "base_model={model}",
                    "--set",
                    "output_dir={root}/ckpt",
                    "--max_steps",
                    "1",
                ),
            ),
            training_check,
        )
    )
    return found


def misspell_tag(root: Path) -> None:
    misspell_a_tag(root / "data" / "stage_3_tagged")


# --------------------------------------------------------------------------- setup and main


def prepare_world(work: Path) -> World:
    from spt.training.tiny_model import build_tiny_model

    base = work / "base"
    work.mkdir(parents=True, exist_ok=True)
    config = json.loads((CONFIG_DIR / "demo_training_config.json").read_text())
    config.update(
        intervention_types=["split_personality__v1", "honesty_scare__v1"],
        base_model=str(work / "model"),
        output_dir=str(work / "unused_ckpt"),
    )
    config_path = work / "config.json"
    config_path.write_text(json.dumps(config))
    model = build_tiny_model(work / "model", "llama3")
    for script, args in (
        (S1, MOCK1),
        (S2, MOCK2),
        (S3, MOCK3),
        (TAG, ()),
        (ANALYSIS, ("--no_plots",)),
        (EXPORT, ("--config", config_path)),
    ):
        result = run(script, args, base)
        if result.returncode:
            raise SystemExit(f"setup: {script} failed: {result.stderr[-2000:]}")
    results = base / "evaluation_results" / "quantitative"
    results.mkdir(parents=True)
    reference = REPO_ROOT.parent / "shared" / "reference-data" / "evaluation_results"
    for path in sorted(reference.rglob("*.json"))[:2]:
        shutil.copy(path, results / path.name)
    result = run(TRAIN, ["--config", config_path, "--set", f"output_dir={base / 'ckpt'}", "--max_steps", "1"], base)
    if result.returncode:
        raise SystemExit(f"setup: training failed: {result.stderr[-2000:]}")
    shutil.rmtree(base / ".response_cache", ignore_errors=True)
    return World(base, work, config_path, model)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--only", help="run the cases whose name holds this text")
    parser.add_argument("--work_dir", type=Path)
    args = parser.parse_args()
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="fault_sweep_"))
    world = prepare_world(work)
    chosen = [case for case in cases() if not args.only or args.only in case.__name__]

    def attempt(case) -> Outcome:
        try:
            return case(world)
        except Exception as exc:  # the sweep's own preparation failed: say so, count it as not run
            return Outcome(case.__name__, skipped=f"the case could not be prepared ({type(exc).__name__}: {exc})"[:300])

    with ThreadPoolExecutor(args.jobs) as pool:
        outcomes = list(pool.map(attempt, chosen))
    for outcome in outcomes:
        problems = [name for name in ("traceback", "data_loss", "accepted_wrong") if getattr(outcome, name)]
        if problems or outcome.skipped:
            print(f"{outcome.name}: {', '.join(problems) or 'skipped: ' + outcome.skipped}  [{outcome.detail}]")
    ran = [o for o in outcomes if not o.skipped]
    print(
        f"fault sweep: {len(outcomes)} cases ({len(outcomes) - len(ran)} skipped): "
        f"{sum(o.traceback for o in ran)} tracebacks, {sum(o.data_loss for o in ran)} data-loss, "
        f"{sum(o.accepted_wrong for o in ran)} accepted wrong input"
    )
    shutil.rmtree(work, ignore_errors=True) if not args.work_dir else None
    return 0


if __name__ == "__main__":
    sys.exit(main())
