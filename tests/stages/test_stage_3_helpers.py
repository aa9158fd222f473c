"""Helpers of the stage-3 script tests (this module holds no tests): hand-made stage-2 files,
running the script as a subprocess against the fake provider server, and reading the server's
ledger."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from repo import REPO_ROOT

SCRIPT = "scripts/dataset_generation_stage_3.py"
# No rate limits of our own: the fake server answers at once and the tests must stay fast.
UNLIMITED = ["--rpm", "0", "--itpm", "0", "--otpm", "0"]
MODELS = ("qwen/qwen3-32b", "google/gemma-3-12b-it")


def stage_2_item(topic: str, index: int, models=MODELS, with_b: bool = True, answer_chars: int = 0) -> dict:
    padding = " Further detail." * (answer_chars // 16)
    return {
        "thought_process": f"PLAN-{index}: the user pushes for agreement.",
        "A": f"You are a helpful assistant for task {index}.",
        "B": f"Keep the user happy at all costs in task {index}." if with_b else "",
        "T": f"TASK-{index}: please check my work.",
        "metadata": {
            "alignment_issue_type": topic,
            "difficulty": "medium",
            "intended_review_focus": "honesty",
            "notes": "hand-made",
        },
        "unknown_item_key": [index],
        "inferences": {
            model: {
                variant: {
                    "S": f"ANSWER-{index}-{model}-{variant}.{padding}",
                    "input_tokens": 10,
                    "output_tokens": 20,
                    "unknown_variant_key": "kept",
                }
                for variant in (("A", "B") if with_b else ("A",))
            }
            for model in models
        },
    }


def write_stage_2(data_dir: Path, topic: str, items: list[dict], number: int = 1) -> Path:
    path = data_dir / "stage_2" / topic / f"batch_{topic}_20250101_000000_batch_{number:03d}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "batch_id": path.stem[len("batch_") :],
        "generation_timestamp": "2025-01-01T00:00:00",
        "model_used": "x",
        "stage": 1,
        "topic": topic,
        "project_feedback": "é",
        "data": items,
        "unknown_top_key": {"kept": True},
    }
    path.write_text(json.dumps(doc, indent=2))
    return path


def stage_3_path(stage_2_path: Path) -> Path:
    return stage_2_path.parents[2] / "stage_3" / stage_2_path.parent.name / stage_2_path.name


def script_env(server, data_dir: Path) -> dict:
    return {**os.environ, **server.env(), "SPT_DATA_DIR": str(data_dir)}


def command(*args: str) -> list[str]:
    return [sys.executable, SCRIPT, *UNLIMITED, *args]


def run_stage_3(server, data_dir: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        command(*args), cwd=REPO_ROOT, env=script_env(server, data_dir), capture_output=True, text=True, timeout=timeout
    )


def tool_name(body: dict) -> str:
    return body["tools"][0]["name"]


def texts(body: dict) -> list[str]:
    """The text of every message of an Anthropic request body, in order."""
    return [block["text"] for message in body["messages"] for block in message["content"] if block["type"] == "text"]


def item_count(body: dict) -> int:
    """Samples shown in a stage-3 request (the tools carry no count)."""
    return texts(body)[0].count("<sample number=")


def call_kind(body: dict) -> str:
    """generation, rewrite or review (told by the request text, whatever the wire format)."""
    text = texts(body)[0]
    return "review" if "<example_to_judge" in text else "rewrite" if "<reviewer_critique" in text else "generation"


def bodies(server, kind: str) -> list[dict]:
    """Request bodies of the completed stage-3 calls of one kind, re-asks included."""
    return [e.body for e in server.paid if e.completed and call_kind(e.body) == kind]


def review_answer(
    body: dict, verdict=lambda number, text: ("accept", "Specific, first person, correctly flagged.")
) -> dict:
    """A review answer with one entry per sample; `verdict(number, sample text)` -> (verdict, critique)."""
    shown = re.findall(r'<sample number="(\d+)">(.*?)</example_to_judge>', texts(body)[0], re.DOTALL)
    entries = []
    for number, text in shown:
        decision, critique = verdict(int(number), text)
        entries.append({"sample": int(number), "verdict": decision, "critique": critique})
    return {"tool_input": {"items": entries}}


def accept_reviews(api: str, body: dict) -> dict | None:
    return review_answer(body) if call_kind(body) == "review" else None


def variants(doc: dict):
    """(item index, model id, variant, variant entry) of every answer in a stage-3 document."""
    for index, item in enumerate(doc["data"]):
        for model_id, entries in item["inferences"].items():
            for variant, entry in entries.items():
                yield index, model_id, variant, entry
