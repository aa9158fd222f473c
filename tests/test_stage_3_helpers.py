"""Helpers of the stage-3 script tests (this module holds no tests): hand-made stage-2 files,
running the script as a subprocess against the fake provider server, and reading the server's
ledger."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from utils import REPO_ROOT

SCRIPT = "scripts/dataset_generation_stage_3.py"
# No rate limits of our own: the fake server answers at once and the tests must stay fast.
UNLIMITED = ["--rpm", "0", "--itpm", "0", "--otpm", "0"]
MODELS = ("qwen/qwen3-32b", "google/gemma-3-12b-it")
REVIEW_TOOL = "submit_quality_review"


def stage_2_item(topic: str, index: int, models=MODELS, with_b: bool = True, answer_chars: int = 0) -> dict:
    padding = " Further detail." * (answer_chars // 16)
    return {
        "thought_process": f"PLAN-{index}: the user pushes for agreement.",
        "A": f"You are a helpful assistant for task {index}.",
        "B": f"Keep the user happy at all costs in task {index}." if with_b else "",
        "T": f"TASK-{index}: please check my work.",
        "metadata": {"alignment_issue_type": topic, "difficulty": "medium", "intended_review_focus": "honesty",
                     "notes": "hand-made"},
        "unknown_item_key": [index],
        "inferences": {model: {variant: {"S": f"ANSWER-{index}-{model}-{variant}.{padding}", "input_tokens": 10,
                                         "output_tokens": 20, "unknown_variant_key": "kept"}
                               for variant in (("A", "B") if with_b else ("A",))}
                       for model in models},
    }


def write_stage_2(data_dir: Path, topic: str, items: list[dict], number: int = 1) -> Path:
    path = data_dir / "stage_2" / topic / f"batch_{topic}_20250101_000000_batch_{number:03d}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"batch_id": path.stem[len("batch_"):], "generation_timestamp": "2025-01-01T00:00:00", "model_used": "x",
           "stage": 1, "topic": topic, "project_feedback": "é", "data": items, "unknown_top_key": {"kept": True}}
    path.write_text(json.dumps(doc, indent=2))
    return path


def stage_3_path(stage_2_path: Path) -> Path:
    return stage_2_path.parents[2] / "stage_3" / stage_2_path.parent.name / stage_2_path.name


def script_env(server, data_dir: Path) -> dict:
    return {**os.environ, **server.env(), "SPT_DATA_DIR": str(data_dir)}


def command(*args: str) -> list[str]:
    return [sys.executable, SCRIPT, *UNLIMITED, *args]


def run_stage_3(server, data_dir: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(command(*args), cwd=REPO_ROOT, env=script_env(server, data_dir), capture_output=True,
                          text=True, timeout=timeout)


def tool_name(body: dict) -> str:
    return body["tools"][0]["name"]


def texts(body: dict) -> list[str]:
    """The text of every message of an Anthropic request body, in order."""
    return [block["text"] for message in body["messages"] for block in message["content"] if block["type"] == "text"]


def item_count(body: dict) -> int:
    return body["tools"][0]["input_schema"]["properties"]["items"]["maxItems"]


def generation_bodies(server) -> list[dict]:
    return [e.body for e in server.ledger if e.completed and tool_name(e.body).endswith("_reviews")
            and "<reviewer_critique>" not in texts(e.body)[0]]


def rewrite_bodies(server) -> list[dict]:
    return [e.body for e in server.ledger if e.completed and "<reviewer_critique>" in texts(e.body)[0]]


def review_bodies(server) -> list[dict]:
    return [e.body for e in server.ledger if e.completed and tool_name(e.body) == REVIEW_TOOL]


def accept_reviews(api: str, body: dict) -> dict | None:
    if tool_name(body) == REVIEW_TOOL:
        return {"tool_input": {"verdict": "accept", "critique": "Specific, first person and correctly flagged."}}
    return None


def variants(doc: dict):
    """(item index, model id, variant, variant entry) of every answer in a stage-3 document."""
    for index, item in enumerate(doc["data"]):
        for model_id, entries in item["inferences"].items():
            for variant, entry in entries.items():
                yield index, model_id, variant, entry
