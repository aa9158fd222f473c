"""The training export run behind scripts/export_training_data.py (docs/data_formats.md §6).

Reads the training config (with the command line's overrides) and the tagged data
`<data_dir>/<topic>/*.json` it names; writes to its `export_dir`: `train.jsonl`, `validation.jsonl` (one sample per line,
keys SAMPLE_KEYS), `export_stats.json`, `export_report.md` and `export_manifest.json`, as one set that replaces
the previous export only when complete (export.output_set). Bad data, or a config that selects nothing,
stops the run before anything is written.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import orjson

import utils
from export.report import flag_by_variant, markdown_report, predictability_warnings
from export.output_set import check_export_target, write_export_set
from export.selection import collect_samples, split_by_item, stage_order
from export.shortcuts import apply_shortcut_mitigations
from tagging.tags import stage_3_files
from training_config import load_training_config
from utils import DataError, display_path

SAMPLE_KEYS = ("id_string", "id_numeric", "source_file", "item_index", "topic", "model", "variant",
               "system_prompt", "system_prompt_source", "T", "S", "intervention_key", "intervention_type",
               "I", "R", "P")


def _jsonl(samples: list[dict]) -> str:
    return "".join(orjson.dumps({key: sample[key] for key in SAMPLE_KEYS}).decode("utf-8") + "\n"
                   for sample in samples)


def export(config: dict[str, Any], config_path: Path) -> dict[str, Any]:
    """Run the export described by `config`; returns the statistics written to export_stats.json."""
    data_dir = utils.data_path(config["data_dir"])
    output_dir = utils.data_path(config["export_dir"])
    seed = config["seed"]
    selection = collect_samples(stage_3_files(data_dir), data_dir, config)
    samples = selection.samples
    splits = split_by_item(samples, config, seed)
    if not splits["train"]:
        raise DataError(f"config key 'train_topics': none of the {len(samples)} kept samples is in a train topic "
                        f"({', '.join(sorted({s['topic'] for s in samples}))} are validation-only); nothing to train on")
    split_stats = {}
    for name, split_samples in splits.items():
        mitigation = apply_shortcut_mitigations(split_samples, config, seed, name)
        split_stats[name] = {"items": len({(s["source_file"], s["item_index"]) for s in split_samples}),
                             "samples": len(split_samples), "flag_by_variant": flag_by_variant(split_samples),
                             "shortcut_mitigation": mitigation}
    kept_table = flag_by_variant(samples)
    stats = {
        "config": display_path(config_path), "data_dir": display_path(data_dir),
        "output_dir": display_path(output_dir), "seed": seed, "data_models": config["data_models"],
        "intervention_types": config["intervention_types"], "tags_to_filter": config["tags_to_filter"],
        "validation_fraction": config["validation_fraction"],
        "remove_system_prompt_fraction": config["remove_system_prompt_fraction"],
        "swap_a_b_fraction": config["swap_a_b_fraction"],
        "stages": selection.stage_counts.as_json(stage_order(config)), "tag_drops": selection.tag_drops(),
        "kept": len(samples), "kept_flag_by_variant": kept_table,
        "warnings": predictability_warnings(kept_table), "splits": split_stats,
    }
    texts = {f"{name}.jsonl": _jsonl(split_samples) for name, split_samples in splits.items()}
    texts["export_stats.json"] = json.dumps(stats, indent=2, ensure_ascii=True) + "\n"
    texts["export_report.md"] = markdown_report(stats)
    stats["export_id"] = write_export_set(output_dir, texts)
    return stats


def run(args: argparse.Namespace) -> int:
    """The export of export_training_data.py: its flags override config keys; prints the
    warnings and one line of counts."""
    overrides = {key: value for key, value in (("data_dir", args.data_dir), ("export_dir", args.output_dir),
                                               ("seed", args.seed), ("data_models", args.data_models))
                 if value is not None}
    config = load_training_config(args.config, overrides)
    check_export_target(utils.data_path(config["export_dir"]),
                        "--output_dir" if args.output_dir else f"export_dir in {display_path(args.config)}")
    stats = export(config, args.config)
    for warning in stats["warnings"]:
        print(warning)
    splits = stats["splits"]
    print(f"exported {stats['kept']} samples: train {splits['train']['samples']} "
          f"({splits['train']['items']} items), validation {splits['validation']['samples']} "
          f"({splits['validation']['items']} items) -> {stats['output_dir']} (export {stats['export_id']})")
    return 0
