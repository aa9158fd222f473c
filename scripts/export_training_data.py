"""Export the tagged stage-3 data as training samples (SPEC §6).

Reads config/training_config.json (strictly, via training_config.py) and the tagged data
`<data_dir>/<topic>/*.json`. For every item of a train/validation topic, every variant (A, B)
of every model in `data_models` and every intervention whose key is in `intervention_types`,
one sample, unless the intervention's or the variant's tags meet `tags_to_filter`
(training_filters.py). Items are split between train and validation (seeded, by item: all
samples of one item stay on one side). Optional shortcut mitigations replace the system prompt
of a seeded, exact share of eligible samples by nothing or by the other variant's prompt.

Writes to `<output_dir>` (default: config `export_dir`): `train.jsonl`, `validation.jsonl`
(one sample per line), `export_stats.json` and `export_report.md` (counts per topic, variant
and flag before and after each filter, and a warning when the flag is predictable from the
variant). Every file is written atomically.

Usage: python scripts/export_training_data.py [--config PATH] [--data-dir DIR]
           [--output-dir DIR] [--seed N] [--data-models MODEL ...]
"""
from __future__ import annotations

import argparse
import random
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
from tqdm import tqdm

import utils
from shared_tools import FLAGS, VARIANTS
from tag_stage_3_data import stage_3_files
from training_config import DEFAULT_CONFIG_PATH, load_training_config
from training_filters import filter_hits, kept_by_filters, topic_selected
from utils import DataError, display_path

SAMPLE_KEYS = ("id_string", "id_numeric", "source_file", "item_index", "topic", "model", "variant",
               "system_prompt", "system_prompt_source", "T", "S", "intervention_key", "intervention_type",
               "I", "R", "P")
# A flag this predictable from the variant is a shortcut the model can learn instead of reviewing.
PREDICTABLE_SHARE = 0.9
# Words of the system prompt quoted verbatim in I or R: this many in a row count as a citation.
QUOTE_WORDS = 6
_CITES_INSTRUCTIONS = re.compile(
    r"\bsystem\s+(?:prompt|message|instructions?)\b"
    r"|\bmy\s+(?:\w+\s+)?(?:instructions|guidelines|directives)\b"
    r"|\bI\s+(?:was|had\s+been|am|have\s+been)\s+(?:explicitly\s+)?(?:instructed|told|directed)\b"
    r"|\b(?:instructions|guidelines|directives|rules)\s+I\s+(?:was|had\s+been)\s+given\b"
    r"|\b(?:instructions|guidelines)\s+I\s+(?:received|was\s+operating\s+under)\b"
    r"|\bthe\s+(?:operator|deployment)\s+(?:instructions|guidelines)\b",
    re.IGNORECASE,
)
_WORD = re.compile(r"[a-z0-9']+")


# ------------------------------------------------------------------------------ eligibility

def _word_ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    words = _WORD.findall(text.lower())
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def cites_system_prompt(intervention_text: str, review: str, system_prompts: list[str]) -> bool:
    """True when I or R refers to the system prompt: names it ("system prompt", "my
    instructions", "I was told/instructed", "the guidelines I was given", ...) or quotes
    QUOTE_WORDS or more words of one of the item's system prompts in a row. Such a sample
    would not make sense with its system prompt removed or swapped."""
    texts = (intervention_text, review)
    if any(_CITES_INSTRUCTIONS.search(text) for text in texts):
        return True
    quoted = set().union(*(_word_ngrams(prompt, QUOTE_WORDS) for prompt in system_prompts if prompt))
    return bool(quoted) and any(not quoted.isdisjoint(_word_ngrams(text, QUOTE_WORDS)) for text in texts)


# ------------------------------------------------------------------------------ selection

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
                        stage_counts.add("complete samples (flag PASS/FAIL/AMBIGUOUS, all texts)", topic, letter, flag)
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


# ------------------------------------------------------------------------------ split

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


# ------------------------------------------------------------------------------ shortcut mitigation

def apply_shortcut_mitigations(samples: list[dict], config: dict[str, Any], seed: int, split: str) -> dict[str, int]:
    """Swap and remove system prompts of exact, seeded quotas of eligible samples (in place).

    Eligible: I and R do not cite the system prompt. Swappable: eligible and the item has a
    non-empty prompt for the other variant. Quotas: round(swap_a_b_fraction x swappable) and
    round(remove_system_prompt_fraction x eligible); removal draws from the eligible samples
    that were not swapped.
    """
    eligible = [i for i, s in enumerate(samples)
                if not cites_system_prompt(s["I"], s["R"], [s["system_prompt"], s["_other_prompt"]])]
    swappable = [i for i in eligible if samples[i]["_other_prompt"]]
    swap_quota = round(config["swap_a_b_fraction"] * len(swappable))
    remove_quota = round(config["remove_system_prompt_fraction"] * len(eligible))
    swapped = random.Random(f"{seed}:swap:{split}").sample(swappable, swap_quota)
    remaining = sorted(set(eligible) - set(swapped))
    if remove_quota > len(remaining):
        raise DataError(f"{split}: remove_system_prompt_fraction and swap_a_b_fraction together need "
                        f"{remove_quota + swap_quota} eligible samples, only {len(eligible)} exist")
    removed = random.Random(f"{seed}:remove:{split}").sample(remaining, remove_quota)
    for index in swapped:
        sample = samples[index]
        other = "B" if sample["variant"] == "A" else "A"
        sample["system_prompt"] = sample["_other_prompt"]
        sample["system_prompt_source"] = f"{sample['variant']}->{other}"
    for index in removed:
        samples[index]["system_prompt"] = ""
        samples[index]["system_prompt_source"] = "none"
    return {"eligible": len(eligible), "swappable": len(swappable), "swapped": len(swapped), "removed": len(removed)}


# ------------------------------------------------------------------------------ report

def flag_by_variant(samples: list[dict]) -> dict[str, dict[str, int]]:
    table: dict[str, Counter] = {letter: Counter() for letter in VARIANTS}
    for sample in samples:
        table[sample["variant"]][sample["P"]] += 1
    return {letter: dict(sorted(counts.items())) for letter, counts in table.items()}


def predictability_warnings(table: dict[str, dict[str, int]]) -> list[str]:
    """A warning for every variant whose samples carry one flag PREDICTABLE_SHARE of the time."""
    warnings = []
    for letter, counts in table.items():
        total = sum(counts.values())
        for flag, count in counts.items():
            if total and count / total >= PREDICTABLE_SHARE:
                warnings.append(
                    f"WARNING: the flag is predictable from the variant: {count} of {total} {letter} samples "
                    f"({100 * count / total:.1f}%) are {flag}. A model can learn '{letter} prompt -> {flag}' instead "
                    f"of reviewing; consider remove_system_prompt_fraction / swap_a_b_fraction or rebalancing.")
    return warnings


def markdown_report(stats: dict[str, Any]) -> str:
    stages = stats["stages"]
    topics = sorted({t for row in stages for t in row["topic"]})
    flags = sorted({f for row in stages for f in row["flag"]})
    lines = ["# Training data export", "",
             f"Config `{stats['config']}`, data `{stats['data_dir']}`, seed {stats['seed']}, "
             f"models {', '.join(stats['data_models'])}, intervention types {', '.join(stats['intervention_types'])}.",
             ""]
    lines += stats["warnings"] + ([""] if stats["warnings"] else [])
    lines += ["## Samples after each selection stage", ""]
    lines += utils.markdown_table(["stage", "remaining", *VARIANTS, *flags],
                    [[row["stage"], row["remaining"], *(row["variant"].get(v, 0) for v in VARIANTS),
                      *(row["flag"].get(f, 0) for f in flags)] for row in stages])
    lines += ["", "## Per topic after each stage", ""]
    lines += utils.markdown_table(["stage", *topics], [[row["stage"], *(row["topic"].get(t, 0) for t in topics)] for row in stages])
    lines += ["", "## Tag filters", "",
              "individual: samples carrying the tag (after the earlier stages); cumulative: samples dropped by "
              "this tag and by no tag listed before it.", ""]
    lines += utils.markdown_table(["tag", "individual", "cumulative"],
                    [[tag, d["individual"], d["cumulative"]] for tag, d in stats["tag_drops"].items()])
    lines += ["", "## Splits", ""]
    lines += utils.markdown_table(["split", "items", "samples", *(f"{v} {f}" for v in VARIANTS for f in FLAGS),
                     "shortcut-eligible", "swapped", "prompt removed"],
                    [[name, split["items"], split["samples"],
                      *(split["flag_by_variant"][v].get(f, 0) for v in VARIANTS for f in FLAGS),
                      split["shortcut_mitigation"]["eligible"], split["shortcut_mitigation"]["swapped"],
                      split["shortcut_mitigation"]["removed"]] for name, split in stats["splits"].items()])
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------ main

def _jsonl(samples: list[dict]) -> str:
    return "".join(orjson.dumps({key: sample[key] for key in SAMPLE_KEYS}).decode("utf-8") + "\n"
                   for sample in samples)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG_PATH,
                        help="training config (default: config/training_config.json)")
    parser.add_argument("--data-dir", help="tagged data directory (overrides config data_dir)")
    parser.add_argument("--output-dir", help="where the export goes (overrides config export_dir)")
    parser.add_argument("--seed", type=int, help="seed of the split and the mitigations (overrides config seed)")
    parser.add_argument("--data-models", nargs="+", help="stage-2 model ids to export (overrides config data_models)")
    return parser.parse_args(argv)


def export(config: dict[str, Any], config_path: Path) -> dict[str, Any]:
    """Run the export described by `config`; returns the statistics written to export_stats.json."""
    data_dir = utils.data_path(config["data_dir"])
    output_dir = utils.data_path(config["export_dir"])
    seed = config["seed"]
    samples, stage_counts, tag_drops = collect_samples(stage_3_files(data_dir), data_dir, config)
    splits = split_by_item(samples, config, seed)
    split_stats = {}
    for name, split_samples in splits.items():
        mitigation = apply_shortcut_mitigations(split_samples, config, seed, name)
        split_stats[name] = {"items": len({(s["source_file"], s["item_index"]) for s in split_samples}),
                             "samples": len(split_samples), "flag_by_variant": flag_by_variant(split_samples),
                             "shortcut_mitigation": mitigation}
    stage_order = ["all interventions", "data_models", "train/validation topics", "intervention_types",
                   "complete samples (flag PASS/FAIL/AMBIGUOUS, all texts)",
                   *(f"tag {tag}" for tag in config["tags_to_filter"])]
    kept_table = flag_by_variant(samples)
    stats = {
        "config": display_path(config_path), "data_dir": display_path(data_dir),
        "output_dir": display_path(output_dir), "seed": seed, "data_models": config["data_models"],
        "intervention_types": config["intervention_types"], "tags_to_filter": config["tags_to_filter"],
        "validation_fraction": config["validation_fraction"],
        "remove_system_prompt_fraction": config["remove_system_prompt_fraction"],
        "swap_a_b_fraction": config["swap_a_b_fraction"],
        "stages": stage_counts.as_json(stage_order), "tag_drops": tag_drops,
        "kept": len(samples), "kept_flag_by_variant": kept_table,
        "warnings": predictability_warnings(kept_table), "splits": split_stats,
    }
    for name, split_samples in splits.items():
        utils.atomic_write_text(output_dir / f"{name}.jsonl", _jsonl(split_samples))
    utils.atomic_write_json(output_dir / "export_stats.json", stats)
    utils.atomic_write_text(output_dir / "export_report.md", markdown_report(stats))
    return stats


@utils.exit_on_data_error
def main(argv: list[str] | None = None) -> int:
    """Export; exit 0 on success, 2 on bad input or config (nothing written)."""
    args = parse_args(argv)
    overrides = {key: value for key, value in (("data_dir", args.data_dir), ("export_dir", args.output_dir),
                                               ("seed", args.seed), ("data_models", args.data_models))
                 if value is not None}
    config = load_training_config(args.config, overrides)
    stats = export(config, args.config)
    for warning in stats["warnings"]:
        print(warning)
    splits = stats["splits"]
    print(f"exported {stats['kept']} samples: train {splits['train']['samples']} "
          f"({splits['train']['items']} items), validation {splits['validation']['samples']} "
          f"({splits['validation']['items']} items) -> {stats['output_dir']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
