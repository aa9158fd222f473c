"""Stage 2 end to end: the script runs as a subprocess on a hand-made stage-1 file, against a tiny
local model (--inference local) or the fake provider server (--inference openrouter), and the
stage-2 file, the exit code and the server's ledger are inspected."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fake_provider import FakeProviderServer
from repo import REPO_ROOT
from transformers import AutoTokenizer

from spt.training.tiny_model import THINKING_SCRIPT_ANSWER, THINKING_SCRIPT_THOUGHT, build_tiny_model, thinking_script

TOPIC = "sycophancy"
FILE_NAME = "batch_sycophancy_20250101_120000_batch_001.json"
POISON = "POISON"


# --------------------------------------------------------------------------- helpers


def make_items(count: int) -> list[dict]:
    """`count` items; odd ones have a B prompt, item 2 has B = "" (A only), the rest no B at all."""
    items = []
    for index in range(count):
        item = {
            "thought_process": f"plan {index}",
            "A": f"You are a helpful assistant number {index}.",
            "T": f"Question {index}: is my essay honest and complete?",
            "metadata": {
                "alignment_issue_type": TOPIC,
                "difficulty": "easy",
                "intended_review_focus": "honesty",
                "notes": "",
            },
            "custom_item_key": index,
        }
        if index % 2 == 1:
            item["B"] = f"You are an assistant who always agrees with the user ({index})."
        elif index == 2:
            item["B"] = ""
        items.append(item)
    return items


def expected_variants(item: dict) -> set[str]:
    return {"A", "B"} if item.get("B") else {"A"}


def write_stage_1(data_dir: Path, items: list[dict]) -> Path:
    path = data_dir / "stage_1" / TOPIC / FILE_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "batch_id": "sycophancy_20250101_120000_batch_001",
        "generation_timestamp": "2025-01-01T12:00:00",
        "model_used": "claude-opus-4-1",
        "stage": 1,
        "topic": TOPIC,
        "project_feedback": "",
        "custom_top_level_key": {"kept": True},
        "data": items,
    }
    path.write_text(json.dumps(doc, indent=2))
    return path


def stage_2_path(data_dir: Path) -> Path:
    return data_dir / "stage_2" / TOPIC / FILE_NAME


def read_stage_2(data_dir: Path) -> dict:
    return json.loads(stage_2_path(data_dir).read_text())


def stage_2_env(data_dir: Path, server: FakeProviderServer | None = None) -> dict:
    env = {key: value for key, value in os.environ.items() if not key.endswith(("_BASE_URL", "_API_KEY"))}
    # One torch thread: the tiny models gain nothing from more, and a busy CI machine loses a lot.
    env.update(
        SPT_DATA_DIR=str(data_dir),
        TQDM_DISABLE="1",
        OMP_NUM_THREADS="1",
        SPT_PROVIDERS_CONFIG=str(fast_retry_config(data_dir)),
    )
    return {**env, **(server.env() if server else {})}


def fast_retry_config(data_dir: Path) -> Path:
    """The provider defaults with short retry waits, so injected faults cost milliseconds."""
    path = data_dir.parent / f"{data_dir.name}_providers.json"
    if not path.exists():
        config = json.loads((REPO_ROOT / "config" / "providers.json").read_text())
        config["retry"] = {"max_attempts": 8, "base_s": 0.05, "cap_s": 0.3}
        path.write_text(json.dumps(config))
    return path


def stage_2_command(*args: str) -> list[str]:
    return [sys.executable, "scripts/dataset_generation_stage_2.py", "--names", TOPIC, *args]


def run_stage_2(data_dir: Path, *args: str, server: FakeProviderServer | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        stage_2_command(*args),
        cwd=REPO_ROOT,
        env=stage_2_env(data_dir, server),
        capture_output=True,
        text=True,
        timeout=180,
    )


def entries(doc: dict, key: str) -> dict[tuple[int, str], dict]:
    return {
        (index, variant): entry
        for index, item in enumerate(doc["data"])
        for variant, entry in item.get("inferences", {}).get(key, {}).items()
    }


def chat_ids(tokenizer, system: str, user: str, **template_kwargs) -> list[int]:
    messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False, **template_kwargs)
    return tokenizer.encode(text, add_special_tokens=False)


def poison_template(model_dir: Path, poisoned: bool) -> None:
    """Make the chat template raise for a user message containing POISON (or undo it)."""
    path = model_dir / "chat_template.jinja"
    guard = "{%- if '" + POISON + "' in messages[-1]['content'] %}{{ raise_exception('poisoned prompt') }}{%- endif %}"
    template = path.read_text().removeprefix(guard)
    path.write_text(guard + template if poisoned else template)


# --------------------------------------------------------------------------- local inference


@pytest.mark.slow
def test_local_answers_every_variant_with_real_token_counts(tmp_path):
    model_dir = build_tiny_model(tmp_path / "tiny-llama", "llama3")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    poison_template(model_dir, poisoned=True)
    items = make_items(5)
    items[3]["T"] += f" {POISON}"
    write_stage_1(tmp_path, items)
    args = (
        "--inference",
        "local",
        "--model",
        str(model_dir),
        "--temperature",
        "0",
        "--max_new_tokens",
        "6",
        "--batch_size",
        "2",
    )

    first = run_stage_2(tmp_path, *args)
    assert first.returncode == 1, first.stderr  # item 3 failed and waits for the next run
    doc = read_stage_2(tmp_path)
    assert doc["custom_top_level_key"] == {"kept": True}
    answered = entries(doc, "tiny-llama")
    for index, item in enumerate(items):
        assert item["custom_item_key"] == doc["data"][index]["custom_item_key"]
        assert {variant for (i, variant) in answered if i == index} == expected_variants(item)
    for (index, variant), entry in answered.items():
        if index == 3:
            assert "S" not in entry and "poisoned prompt" in entry["error"]
            continue
        item = items[index]
        assert entry["input_tokens"] == len(chat_ids(tokenizer, item[variant], item["T"]))
        assert entry["finish_reason"] in ("stop", "length")
        assert entry["output_tokens"] == 6 if entry["finish_reason"] == "length" else entry["output_tokens"] <= 6
        assert entry["string_length"] == len(entry["S"])
        sampling = (entry["temperature"], entry["top_p"], entry["top_k"], entry["thinking_enabled"])
        assert sampling == (0, None, None, False)
        assert entry["inference"] == "local" and entry["generation_time"] >= 0

    poison_template(model_dir, poisoned=False)
    second = run_stage_2(tmp_path, *args)
    assert second.returncode == 0, second.stderr
    assert "2 variants answered, 0 failed, 5 already done" in second.stdout
    rerun = entries(read_stage_2(tmp_path), "tiny-llama")
    assert all("S" in entry for entry in rerun.values())
    assert {key: entry for key, entry in rerun.items() if key[0] != 3} == {
        key: entry for key, entry in answered.items() if key[0] != 3
    }


@pytest.mark.slow
def test_local_thinking_is_stored_apart_and_models_accumulate(tmp_path):
    model_dir = build_tiny_model(tmp_path / "tiny-qwen", "qwen3", thinking=True)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    script = thinking_script(tokenizer)
    answer_ids = tokenizer.encode(THINKING_SCRIPT_ANSWER, add_special_tokens=False)
    items = make_items(2)
    write_stage_1(tmp_path, items)
    common = ("--inference", "local", "--model", str(model_dir), "--max_new_tokens", "40")

    thinking = run_stage_2(tmp_path, *common, "--enable_thinking", "--temperature", "1", "--num_samples", "2")
    assert thinking.returncode == 0, thinking.stderr
    no_thinking = run_stage_2(tmp_path, *common, "--model_key", "qwen-no-think", "--temperature", "0")
    assert no_thinking.returncode == 0, no_thinking.stderr

    doc = read_stage_2(tmp_path)
    with_thoughts, without = entries(doc, "tiny-qwen"), entries(doc, "qwen-no-think")
    assert set(with_thoughts) == set(without) == {(0, "A"), (1, "A"), (1, "B")}
    for (index, variant), entry in with_thoughts.items():
        assert entry["S"] == THINKING_SCRIPT_ANSWER
        assert entry["thinking"] == THINKING_SCRIPT_THOUGHT
        assert entry["thinking_enabled"] is True and entry["finish_reason"] == "stop"
        # script[0] is the prompt's last token; the rest (thought, </think>, blank line, answer, <|im_end|>) is output.
        assert entry["output_tokens"] == len(script) - 1
        assert entry["input_tokens"] == len(
            chat_ids(tokenizer, items[index][variant], items[index]["T"], enable_thinking=True)
        )
        # Sampling settings in effect: the flag, else transformers' defaults (the model sets none).
        assert (entry["temperature"], entry["top_p"], entry["top_k"]) == (1.0, 1.0, 50)
        assert [sample["S"] for sample in entry["samples"]] == [THINKING_SCRIPT_ANSWER] * 2
        assert entry["samples"][0]["thinking"] == THINKING_SCRIPT_THOUGHT
    for (index, variant), entry in without.items():
        assert entry["S"] == THINKING_SCRIPT_ANSWER and "thinking" not in entry and "samples" not in entry
        assert entry["thinking_enabled"] is False
        assert entry["output_tokens"] == len(answer_ids) + 1  # the answer and <|im_end|>
        assert entry["input_tokens"] == len(
            chat_ids(tokenizer, items[index][variant], items[index]["T"], enable_thinking=False)
        )


# --------------------------------------------------------------------------- API inference


def test_openrouter_with_faults_completes_once_and_reruns_free(tmp_path):
    items = make_items(6)
    write_stage_1(tmp_path, items)
    with FakeProviderServer(seed=1) as server:
        server.set_faults(rate=0.3, kinds=("429", "529", "500", "drop"))
        first = run_stage_2(tmp_path, "--inference", "openrouter", "--model", "qwen/qwen3-32b", server=server)
        assert first.returncode == 0, first.stderr
        assert any(entry.fault for entry in server.paid), "no fault was injected"
        doc = read_stage_2(tmp_path)
        answered = entries(doc, "qwen/qwen3-32b")
        assert set(answered) == {
            (index, variant) for index, item in enumerate(items) for variant in expected_variants(item)
        }
        assert server.paid_duplicates() == []
        assert len(server.completed_keys()) == len(answered)
        bodies = {
            (body["messages"][0]["content"], body["messages"][1]["content"]): body
            for body in (entry.body for entry in server.paid if entry.completed)
        }
        for (index, variant), entry in answered.items():
            body = bodies[(items[index][variant], items[index]["T"])]
            # No --enable_thinking: no reasoning switch is sent (the model's default applies) and none recorded.
            assert body["model"] == "qwen/qwen3-32b" and "reasoning" not in body
            assert entry["thinking_enabled"] is None
            assert entry["S"] and entry["finish_reason"] == "stop" and entry["inference"] == "openrouter"
            assert entry["input_tokens"] > 0 and entry["output_tokens"] > 0
        assert len({entry["S"] for entry in answered.values()}) == len(answered)

        requests_before = len(server.paid)
        second = run_stage_2(tmp_path, "--inference", "openrouter", "--model", "qwen/qwen3-32b", server=server)
        assert second.returncode == 0, second.stderr
        assert len(server.paid) == requests_before  # nothing left to ask
        assert f"0 variants answered, 0 failed, {len(answered)} already done" in second.stdout
        assert read_stage_2(tmp_path) == doc
    # With nothing left to answer a rerun needs neither the provider nor its API key.
    offline = run_stage_2(tmp_path, "--inference", "openrouter", "--model", "qwen/qwen3-32b")
    assert offline.returncode == 0, offline.stderr
    assert read_stage_2(tmp_path) == doc


def test_api_thinking_is_stored_apart(tmp_path, fake_server):
    write_stage_1(tmp_path, make_items(2))

    def answer(api, body):
        if body["model"] == "my-served-model":  # a server that leaves the think block in the text
            return {"text": "<think>\nInline reasoning.\n</think>\n\nThe final answer."}
        return {"text": "  The final answer.\n", "thinking": "My private reasoning."}

    fake_server.script(answer)
    fake_server.serve_models("my-served-model")
    thinking = run_stage_2(
        tmp_path, "--inference", "openrouter", "--model", "qwen/qwen3-14b", "--enable_thinking", server=fake_server
    )
    served = run_stage_2(
        tmp_path, "--inference", "openai", "--model", "my-served-model", "--no-enable_thinking", server=fake_server
    )
    assert thinking.returncode == 0 and served.returncode == 0, thinking.stderr + served.stderr
    doc = read_stage_2(tmp_path)
    for entry in entries(doc, "qwen/qwen3-14b").values():
        assert entry["S"] == "The final answer." and entry["thinking"] == "My private reasoning."
        assert entry["thinking_enabled"] is True
    for entry in entries(doc, "my-served-model").values():
        assert entry["S"] == "The final answer." and entry["thinking"] == "Inline reasoning."
        assert entry["thinking_enabled"] is False  # sent to the self-hosted server as a template switch
    reasoning = {entry.body["model"]: entry.body.get("reasoning") for entry in fake_server.paid}
    assert reasoning == {"qwen/qwen3-14b": {"enabled": True}, "my-served-model": None}
    switches = {entry.body["model"]: entry.body.get("chat_template_kwargs") for entry in fake_server.paid}
    assert switches == {"qwen/qwen3-14b": None, "my-served-model": {"enable_thinking": False}}


def test_api_failure_is_recorded_and_retried_by_the_next_run(tmp_path, fake_server):
    items = make_items(4)
    write_stage_1(tmp_path, items)
    fake_server.script(lambda api, body: {"status": 400} if "Question 1:" in json.dumps(body) else None)
    first = run_stage_2(
        tmp_path, "--inference", "openrouter", "--model", "meta-llama/llama-3.3-70b-instruct", server=fake_server
    )
    assert first.returncode == 1, first.stderr
    answered = entries(read_stage_2(tmp_path), "meta-llama/llama-3.3-70b-instruct")
    assert "S" not in answered[(1, "A")] and "400" in answered[(1, "A")]["error"]
    assert "S" not in answered[(1, "B")] and answered[(1, "B")]["failed_runs"] == 1
    assert all("S" in entry for key, entry in answered.items() if key[0] != 1)
    assert "2 variants failed" in first.stdout

    fake_server.script(None)
    paid_before = len(fake_server.completed_keys())
    second = run_stage_2(
        tmp_path, "--inference", "openrouter", "--model", "meta-llama/llama-3.3-70b-instruct", server=fake_server
    )
    assert second.returncode == 0, second.stderr
    assert len(fake_server.completed_keys()) == paid_before + 2
    rerun = entries(read_stage_2(tmp_path), "meta-llama/llama-3.3-70b-instruct")
    assert all("S" in entry and "error" not in entry for entry in rerun.values())


def test_kill_mid_run_then_rerun_gives_a_complete_file(tmp_path):
    items = make_items(12)
    write_stage_1(tmp_path, items)
    variants = sum(len(expected_variants(item)) for item in items)
    with FakeProviderServer(seed=2, latency_s=0.25) as server:
        process = subprocess.Popen(
            stage_2_command(
                "--inference", "openrouter", "--model", "meta-llama/llama-3.3-70b-instruct", "--concurrency", "2"
            ),
            cwd=REPO_ROOT,
            env=stage_2_env(tmp_path, server),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while len(server.completed_keys()) < 8 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.02)
        process.kill()
        process.wait()
        assert len(server.completed_keys()) < variants, "the run finished before it could be killed"
        if stage_2_path(tmp_path).exists():  # whatever was saved is valid JSON
            json.loads(stage_2_path(tmp_path).read_text())

        rerun = run_stage_2(
            tmp_path, "--inference", "openrouter", "--model", "meta-llama/llama-3.3-70b-instruct", server=server
        )
        assert rerun.returncode == 0, rerun.stderr
        answered = entries(read_stage_2(tmp_path), "meta-llama/llama-3.3-70b-instruct")
        assert len(answered) == variants and all(entry.get("S") for entry in answered.values())
        # Answers paid before the kill came from the response cache: at most the in-flight ones were paid twice.
        assert len(set(server.completed_keys())) == variants
        assert len(server.paid_duplicates()) <= 2


def test_max_cost_stops_cleanly_with_exit_3_and_the_rerun_continues(tmp_path, fake_server):
    items = make_items(4)
    write_stage_1(tmp_path, items)
    args = ("--inference", "openrouter", "--model", "meta-llama/llama-3.3-70b-instruct", "--concurrency", "1")
    stopped = run_stage_2(tmp_path, *args, "--max_cost", "0.0000001", server=fake_server)
    assert stopped.returncode == 3, stopped.stderr
    assert "stopped by --max_cost" in stopped.stdout
    saved = entries(read_stage_2(tmp_path), "meta-llama/llama-3.3-70b-instruct")
    assert 1 <= len(saved) < 6 and all("S" in entry for entry in saved.values())

    finished = run_stage_2(tmp_path, *args, server=fake_server)
    assert finished.returncode == 0, finished.stderr
    assert len(entries(read_stage_2(tmp_path), "meta-llama/llama-3.3-70b-instruct")) == 6
    assert fake_server.paid_duplicates() == []


def test_mock_inference_runs_offline_on_all_topics_but_the_excluded(tmp_path):
    write_stage_1(tmp_path, make_items(3))
    for other in ("jailbreak_attempts", "fabricated_statistics"):
        other_file = tmp_path / "stage_1" / other / f"batch_{other}_20250101_120000_batch_001.json"
        other_file.parent.mkdir(parents=True)
        other_file.write_text(json.dumps({"topic": other, "data": make_items(1)}))
    result = run_stage_2(
        tmp_path, "--inference", "mock", "--model", "Demo-Model", "--names", "all", "--exclude", "fabricated_statistics"
    )
    assert result.returncode == 0, result.stderr
    answered = entries(read_stage_2(tmp_path), "demo-model")
    assert len(answered) == 4 and all(entry["S"] for entry in answered.values())
    assert sorted(path.parent.name for path in (tmp_path / "stage_2").glob("*/*.json")) == ["jailbreak_attempts", TOPIC]


# --------------------------------------------------------------------------- dry run


def file_contents(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def test_api_dry_run_prints_requests_tokens_and_cost_and_calls_nothing(tmp_path, fake_server):
    items = make_items(4)  # 6 variants (items 1 and 3 have a B)
    write_stage_1(tmp_path, items)
    before = file_contents(tmp_path)
    result = run_stage_2(
        tmp_path,
        "--inference",
        "openrouter",
        "--model",
        "qwen/qwen3-32b",
        "--num_samples",
        "2",
        "--dry_run",
        server=fake_server,
    )
    assert result.returncode == 0, result.stderr
    assert fake_server.ledger == []
    assert file_contents(tmp_path) == before
    assert "6 variant(s) to answer (12 sample(s), --num_samples 2), 0 already done, in 1 file(s)" in result.stdout
    assert "stage-2 inference: 12 call(s) to openrouter, model qwen/qwen3-32b" in result.stdout
    tokens = [line for line in result.stdout.splitlines() if "estimated tokens: input" in line]
    cost = [line for line in result.stdout.splitlines() if "estimated cost: $" in line]
    assert len(tokens) == 1 and len(cost) == 1, result.stdout
    assert "no prices" not in cost[0]  # qwen/qwen3-32b is priced in config/models.json
    assert float(cost[0].split("$")[1].split()[0]) > 0


def test_api_dry_run_prints_the_first_body_with_dry_run_full(tmp_path, fake_server):
    write_stage_1(tmp_path, make_items(1))
    result = run_stage_2(
        tmp_path, "--inference", "openrouter", "--model", "qwen/qwen3-32b", "--dry_run_full", server=fake_server
    )
    assert result.returncode == 0, result.stderr
    assert fake_server.ledger == [] and not (tmp_path / "stage_2").exists()
    body = json.loads(result.stdout.split("first stage-2 inference request (openrouter):\n", 1)[1])
    assert (
        body["model"] == "qwen/qwen3-32b"
        and body["messages"][-1]["content"] == "Question 0: is my essay honest and complete?"
    )


def test_local_dry_run_prints_the_plan_and_loads_no_model(tmp_path):
    write_stage_1(tmp_path, make_items(3))  # 4 variants
    before = file_contents(tmp_path)
    script = (
        "import runpy, sys\n"
        "sys.path.insert(0, 'scripts')\n"
        "sys.argv = ['dataset_generation_stage_2.py', *sys.argv[1:]]\n"
        "try:\n"
        "    runpy.run_path('scripts/dataset_generation_stage_2.py', run_name='__main__')\n"
        "except SystemExit as exc:\n"
        "    code = exc.code\n"
        "print('imported torch:', 'torch' in sys.modules, 'imported providers:', 'providers' in sys.modules)\n"
        "sys.exit(code)\n"
    )
    missing_model = tmp_path / "no_such_model"
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            "--names",
            TOPIC,
            "--inference",
            "local",
            "--model",
            str(missing_model),
            "--temperature",
            "0.7",
            "--dry_run",
        ],
        cwd=REPO_ROOT,
        env=stage_2_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    assert "4 variant(s) to answer (4 sample(s), --num_samples 1)" in result.stdout
    assert f"model {missing_model} (not loaded)" in result.stdout
    assert "max_new_tokens 2048, temperature 0.7, top_p the model's default" in result.stdout
    assert "batch_size 8 prompts per generate() call" in result.stdout
    assert "imported torch: False imported providers: False" in result.stdout
    assert file_contents(tmp_path) == before


# --------------------------------------------------------------------------- bad input


def test_bad_stage_1_item_is_a_one_line_error_and_writes_nothing(tmp_path):
    items = make_items(2)
    del items[1]["T"]
    write_stage_1(tmp_path, items)
    result = run_stage_2(tmp_path, "--inference", "local", "--model", str(tmp_path / "unused"))
    assert result.returncode == 2
    assert (
        result.stderr.strip().splitlines()[-1]
        == f"error: {tmp_path / 'stage_1' / TOPIC / FILE_NAME}: data[1]: missing field 'T'"
    )
    assert not (tmp_path / "stage_2").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (("--names", "no_such_topic"), "unknown topic 'no_such_topic'"),
        (("--quantization", "4", "--inference", "openrouter"), "--quantization needs --inference local"),
        (("--inference", "local", "--max_cost", "1"), "unrecognized arguments: --max_cost"),
    ],
)
def test_bad_flags_exit_2(tmp_path, args, message):
    write_stage_1(tmp_path, make_items(1))
    result = run_stage_2(tmp_path, "--model", "meta-llama/llama-3.3-70b-instruct", *args)
    assert result.returncode == 2
    assert message in result.stderr
