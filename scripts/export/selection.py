"""Which samples of the tagged stage-3 data the training export keeps (docs/data_formats.md §6), with the
count remaining after every selection stage, and their split between train and validation
(seeded, by item). Reads the tagged files it is given; writes nothing.
"""
from __future__ import annotations

import random
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from tqdm import tqdm

import utils
from shared_tools import FLAGS, VARIANTS
from training_filters import filter_hits, kept_by_filters, topic_selected
from utils import DataError, display_path

COMPLETE_SAMPLES = "complete samples (flag PASS/FAIL/AMBIGUOUS, all texts)"


def stage_order(config: dict[str, Any]) -> list[str]:
    """The selection stages in the order they apply (the rows of the export report)."""
    return ["all interventions", "data_models", "train/validation topics", "intervention_types", COMPLETE_SAMPLES,
            *(f"tag {tag}" for tag in config["tags_to_filter"])]


class StageCounts:
    """Samples remaining after each selection stage, in total and per topic/variant/flag."""

    def __init__(self) -> None:
        self.stages: dict[str, dict[str, Any]] = {}

    def add(self, stage: str, topic: str, variant: str, flag: Any) -> None:
        counts = self.stages.setdefault(stage, {"total": 0, "topic": Counter(), "variant": Counter(),
                                                "flag": Counter()})
        counts["total"] += 1
        counts["topic"][topic] += 1
        counts["variant"][variant] += 1
        counts["flag"][str(flag)] += 1

    def as_json(self, stage_order: list[str]) -> list[dict[str, Any]]:
        rows = []
        for stage in stage_order:
            counts = self.stages.get(stage, {"total": 0, "topic": {}, "variant": {}, "flag": {}})
            rows.append({"stage": stage, "remaining": counts["total"],
                         **{key: dict(sorted(counts[key].items())) for key in ("topic", "variant", "flag")}})
        return rows


def _string_fields(values: dict[str, Any]) -> bool:
    return all(isinstance(value, str) for value in values.values())


def collect_samples(files: list[Path], data_dir: Path, config: dict[str, Any]) -> tuple[list[dict], StageCounts, dict]:
    """Walk the tagged files; returns (kept samples in file order, stage counts, tag drops)."""
    stage_counts = StageCounts()
    individual_drops: Counter = Counter()
    cumulative_drops: Counter = Counter()
    models_found: set[str] = set()
    samples: list[dict] = []
    data_models = config["data_models"]
    for path in tqdm(files, unit="file", desc="reading", file=sys.stderr):
        topic = path.parent.name
        where = display_path(path)
        document = utils.read_json(path)
        items = utils.require_field(document, "data", where)
        if not isinstance(items, list):
            raise DataError(f"{where}: field 'data' must be a list")
        source_file = path.relative_to(data_dir).as_posix()
        for item_index, item in enumerate(items):
            inferences = item.get("inferences") if isinstance(item, dict) else None
            if not isinstance(inferences, dict):
                continue
            models_found.update(inferences)
            for model_id, model_entry in inferences.items():
                for letter in VARIANTS:
                    variant = model_entry.get(letter) if isinstance(model_entry, dict) else None
                    if not isinstance(variant, dict):
                        continue
                    variant_tags = variant.get("tags", [])
                    for key, intervention in (variant.get("interventions") or {}).items():
                        flag = intervention.get("P")
                        stage_counts.add("all interventions", topic, letter, flag)
                        if model_id not in data_models:
                            continue
                        stage_counts.add("data_models", topic, letter, flag)
                        if not topic_selected(topic, config):
                            continue
                        stage_counts.add("train/validation topics", topic, letter, flag)
                        if key not in config["intervention_types"]:
                            continue
                        stage_counts.add("intervention_types", topic, letter, flag)
                        texts = {"system prompt": item.get(letter), "T": item.get("T"), "S": variant.get("S"),
                                 "I": intervention.get("I"), "R": intervention.get("R")}
                        if flag not in FLAGS or not _string_fields(texts):
                            continue  # a failed generation (P = ERROR) or a sample missing a text
                        stage_counts.add(COMPLETE_SAMPLES, topic, letter, flag)
                        if "tags" not in intervention or "id_string" not in intervention:
                            raise DataError(f"{where}: data[{item_index}] is not tagged (run tag_stage_3_data.py first)")
                        hits = filter_hits(intervention["tags"], variant_tags, config)
                        individual_drops.update(hits)
                        if hits:
                            cumulative_drops[hits[0]] += 1
                        for tag in config["tags_to_filter"]:
                            if tag in hits:
                                break
                            stage_counts.add(f"tag {tag}", topic, letter, flag)
                        if not kept_by_filters(topic, key, intervention["tags"], variant_tags, config):
                            continue
                        samples.append({
                            "id_string": intervention["id_string"], "id_numeric": intervention.get("id_numeric"),
                            "source_file": source_file, "item_index": item_index, "topic": topic,
                            "model": model_id, "variant": letter, "system_prompt": item[letter],
                            "system_prompt_source": letter, "T": item["T"], "S": variant["S"],
                            "intervention_key": key,
                            "intervention_type": intervention.get("intervention_type") or key.partition("__")[0],
                            "I": intervention["I"], "R": intervention["R"], "P": flag,
                            "_other_prompt": item.get("B" if letter == "A" else "A") or "",
                        })
    for model in data_models:
        if model not in models_found:
            found = ", ".join(sorted(models_found)) or "none"
            raise DataError(f"config key 'data_models': model {model!r} not found in {display_path(data_dir)} "
                            f"(models found: {found})")
    drops = {tag: {"individual": individual_drops[tag], "cumulative": cumulative_drops[tag]}
             for tag in config["tags_to_filter"]}
    return samples, stage_counts, drops


def split_by_item(samples: list[dict], config: dict[str, Any], seed: int) -> dict[str, list[dict]]:
    """Train/validation by item. Items of topics in both lists: a seeded, exact share
    round(validation_fraction x items) goes to validation; topics in one list go there."""
    items = sorted({(s["source_file"], s["item_index"], s["topic"]) for s in samples})
    shared = [item for item in items
              if item[2] in config["train_topics"] and item[2] in config["validation_topics"]]
    quota = round(config["validation_fraction"] * len(shared))
    validation_items = set(random.Random(f"{seed}:split").sample(shared, quota))
    validation_items |= {item for item in items if item[2] not in config["train_topics"]}
    splits: dict[str, list[dict]] = {"train": [], "validation": []}
    for sample in samples:
        item = (sample["source_file"], sample["item_index"], sample["topic"])
        splits["validation" if item in validation_items else "train"].append(sample)
    return splits
