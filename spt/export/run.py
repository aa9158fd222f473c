"""The training export run behind scripts/export_training_data.py (docs/data_formats.md §6).

Reads the training config (with the command line's overrides) and the tagged data
`<data_dir>/<topic>/*.json` it names; writes to its `export_dir`: `train.jsonl`, `validation.jsonl` and
`heldout_topics.jsonl` (the samples of topics outside train_topics and validation_topics, for
evaluation only; one sample per line, keys SAMPLE_KEYS), `sample_decisions.jsonl` (what the export did to
each sample: export.decisions), `export_stats.json`, `export_report.md`, with
off_policy_detection_fraction > 0 `off_policy_eval.json` (export.off_policy), with leave_topics_out_folds
k >= 2 one complete set per fold in `fold_<i>/` (fold i's train topics held out), and
`export_manifest.json`, and each set's dataset card `README.md` (export.card), as one set that replaces
the previous export only when complete (export.output_set); then, unless --no_viewer, the sample viewer
`viewer/samples.html` (viewer.site; not in the manifest), in each fold's folder too; with --push_to_hub
the set is then uploaded without its viewer (hub). Every set has passed the check for samples a model cannot tell apart
(export.contexts). Bad data, or a config that selects nothing, stops the run before anything is written.
"""

from __future__ import annotations

import argparse
import json
import random
from collections import Counter
from collections.abc import Collection
from functools import partial
from pathlib import Path
from typing import Any

import orjson

from spt import hub, locks, utils
from spt.eligibility.verdicts import mark_citing
from spt.export.card import dataset_card
from spt.export.contexts import drop_indistinguishable
from spt.export.decisions import DECISIONS_FILE, decisions_jsonl, sample_decisions
from spt.export.measures import before_and_after, detection_measures, detection_warnings, measured_warnings
from spt.export.off_policy import (
    EVAL_FILE,
    PROMPT_FILE,
    ItemAnswers,
    add_answers,
    detection_samples,
    eligible_pairs,
    eval_rows,
    item_splits,
    load_templates,
    own_model_id,
)
from spt.export.output_set import VIEWER_DIR, ExportSet, check_export_target, write_export_set
from spt.export.policy import review_policy_counts, trained_model_data_id
from spt.export.provenance import file_generation, generation_provenance
from spt.export.removal_cost import removal_cost
from spt.export.report import (
    flag_by_shown_prompt,
    flag_by_variant,
    markdown_report,
    policy_warnings,
    predictability_warnings,
    verification_counts,
)
from spt.export.selection import collect_samples, split_by_item, stage_order
from spt.export.shortcuts import apply_shortcut_mitigations
from spt.export.stale_tags import untagged_filter_warnings
from spt.shared_tools import DETECTION_TASK, REVIEW_TASK, UNSEEN_INTENT
from spt.tagging.tags import stage_3_files
from spt.training_config import load_training_config_with_flags
from spt.training_filters import topic_selected
from spt.utils import DataError, display_path
from spt.verification.verdict import NO_CAUSAL_CLAIM
from spt.viewer.site import write_viewer

VIEWER_INDEX = f"{VIEWER_DIR}/samples.html"  # the sample viewer of the export, written after the set

SAMPLE_KEYS = (
    "id_string",
    "id_numeric",
    "source_file",
    "item_index",
    "topic",
    "model",
    "variant",
    "system_prompt",
    "system_prompt_source",
    "T",
    "S",
    "intervention_key",
    "intervention_type",
    "I",
    "R",
    "P",
    "policy",
    "task",
    "S_source_model",
    "layout",
    "verification",
)
CITING_FILE = "cites_system_prompt.jsonl"
HELDOUT = "heldout_topics"  # the split of the held-out topics' samples, written to HELDOUT_FILE
HELDOUT_FILE = f"{HELDOUT}.jsonl"


def _jsonl(samples: list[dict], keys: tuple[str, ...] = SAMPLE_KEYS) -> str:
    return "".join(orjson.dumps({key: sample[key] for key in keys}).decode("utf-8") + "\n" for sample in samples)


def _reviews(samples: list[dict]) -> list[dict]:
    return [sample for sample in samples if sample["task"] == REVIEW_TASK]


def _mitigate(splits: dict[str, list[dict]], config: dict[str, Any], seed: int) -> tuple[dict, list[dict]]:
    """Apply the mitigations to each split (replacing its samples); returns the per-split mitigation
    counts and the citing samples that mitigation_mode drop_citing took out (each with its `split`)."""
    counts, citing = {}, []
    for name in list(splits):
        kept, dropped, counts[name] = apply_shortcut_mitigations(splits[name], config, seed, name)
        splits[name] = kept
        citing += [{**sample, "split": name} for sample in dropped]
    if not splits["train"]:
        raise DataError(
            "config key 'mitigation_mode': drop_citing leaves no training sample (every one cites "
            "its system prompt); use 'exempt' or no removal/swap"
        )
    return counts, citing


def _split_stats(split: list[dict], mitigation: dict[str, int], config: dict[str, Any]) -> dict[str, Any]:
    """One split's counts as exported (after mitigations, detection samples and the context check)."""
    reviews = _reviews(split)
    detection_off = sum(s["task"] == DETECTION_TASK and s["policy"] == "off" for s in split)
    return {
        "items": len({(s["source_file"], s["item_index"]) for s in split}),
        "samples": len(split),
        "topics": dict(sorted(Counter(s["topic"] for s in split).items())),
        "flag_by_variant": flag_by_variant(reviews),
        "unseen_intent": sum(sample["layout"] == UNSEEN_INTENT for sample in split),
        "shortcut_mitigation": mitigation,
        "detection_samples": len(split) - len(reviews),
        "policy": {
            "on": sum(s["policy"] == "on" for s in split),
            "off": sum(s["policy"] == "off" for s in split),
            "off_detection": detection_off,
            "review": review_policy_counts(reviews, config),
        },
        "verification": verification_counts(split),
    }


def _add_detection(
    splits: dict[str, list[dict]],
    items: dict[tuple[str, int, str], str],
    answers: dict[tuple[str, int], ItemAnswers],
    config: dict[str, Any],
    seed: int,
) -> tuple[dict[str, Any], list[dict]]:
    """Append the off-policy detection samples to train and validation (export.off_policy); returns
    their statistics and the rows of the evaluation file (empty when the fraction is 0). `answers`: the
    usable answers of the train/validation topics' items, gathered while the files were read."""
    fraction = config["off_policy_detection_fraction"]
    if not fraction:
        return {"splits": {}, "eval_rows": 0}, []
    templates = load_templates()
    own_model = own_model_id(answers, config)
    if own_model is None:
        return {"own_model": None, "splits": {}, "eval_file": EVAL_FILE, "eval_rows": 0, "shortcut_measures": None}, []
    pairs = eligible_pairs(item_splits(items, answers, config, seed), answers, own_model)
    counts, added = {}, {}
    for name in ("train", "validation"):
        added[name], counts[name] = detection_samples(pairs.get(name, []), answers, fraction, templates, seed, name)
        for sample in added[name]:
            sample["verification"] = dict(NO_CAUSAL_CLAIM)
        splits[name] += added[name]
    rows = eval_rows(pairs.get("validation", []), answers, templates.interventions[0])
    measures = detection_measures(added["train"], added["validation"], seed)
    by_source = {
        policy: dict(sorted(Counter(row["S_source_model"] for row in rows if row["policy"] == policy).items()))
        for policy in ("on", "off")
    }
    return {
        "own_model": own_model,
        "splits": counts,
        "eval_file": EVAL_FILE,
        "eval_rows": len(rows),
        "eval_rows_by_source_model": by_source,
        "shortcut_measures": measures,
    }, rows


def _detection_warnings(stats: dict[str, Any], config: dict[str, Any]) -> list[str]:
    """The detection samples' warnings: no trained model's answers, nothing to contrast, or a view other
    than the words of S (the signal to be learnt) predicting the flag (export.measures.detection_warnings)."""
    if not config["off_policy_detection_fraction"]:
        return []
    if stats["own_model"] is None:
        return [
            f"WARNING: off_policy_detection_fraction is above 0 but the data has no answer of the trained model "
            f"({trained_model_data_id(config)}: trained_model_data_id, or base_model when empty); no detection "
            "sample was added (another model's answer is never labelled as the trained model's own)"
        ]
    if not sum(counts["pairs_eligible"] for counts in stats["splits"].values()):
        return [
            "WARNING: off_policy_detection_fraction is above 0 but no answer of the trained model has another "
            "model's usable, different answer or its own answer to the other variant to contrast it with; no "
            "detection sample was added"
        ]
    return detection_warnings(stats["shortcut_measures"], config["shortcut_warning_margin"])


def _build(
    config: dict[str, Any], config_path: Path, heldout_topics: Collection[str] | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """The export described by `config`: its statistics and its data files (name -> text). Held out:
    the samples of `heldout_topics`, by default of every topic outside train_topics and validation_topics."""
    data_dir = utils.data_path(config["data_dir"])
    output_dir = utils.data_path(config["export_dir"])
    seed = config["seed"]
    answers: dict[tuple[str, int], ItemAnswers] = {}
    files: dict[str, dict[str, Any]] = {}  # source file -> its stage-1 provenance (export.provenance)

    def gather(path: Path, document: Any) -> None:
        files[path.relative_to(data_dir).as_posix()] = file_generation(document)
        if config["off_policy_detection_fraction"] and topic_selected(path.parent.name, config):
            add_answers(answers, path, document, data_dir)  # only the detection samples need them

    selection, heldout, dropped = collect_samples(stage_3_files(data_dir), data_dir, config, gather, heldout_topics)
    samples = selection.samples
    mark_citing(samples + heldout, config)  # which samples need their system prompt (regex or LLM verdicts)
    splits = split_by_item(samples, config, seed)
    if not splits["train"]:
        raise DataError(
            f"config key 'train_topics': none of the {len(samples)} kept samples is in a train topic "
            f"({', '.join(sorted({s['topic'] for s in samples}))} are validation-only); nothing to train on"
        )
    splits[HELDOUT] = heldout
    for sample in samples + heldout:
        sample.update(task=REVIEW_TASK, S_source_model=sample["model"])
    items = {
        (s["source_file"], s["item_index"], s["topic"]): name
        for name, split in splits.items()
        if name != HELDOUT
        for s in split
    }
    unmitigated = {name: [dict(sample) for sample in splits[name]] for name in ("train", "validation")}
    mitigation, citing = _mitigate(splits, config, seed)
    prompt_needed = removal_cost(
        samples,
        splits["train"] + splits["validation"],  # before detection samples
        [sample for sample in citing if sample["split"] != HELDOUT],
    )
    detection, eval_file_rows = _add_detection(splits, items, answers, config, seed)
    before_context_check = {name: list(split) for name, split in splits.items()}
    indistinguishable = drop_indistinguishable(
        splits, config["unseen_intent_response_tokens"], config["elicitation_type"]
    )
    measures = before_and_after(
        unmitigated, {name: _reviews(splits[name]) for name in ("train", "validation")}, seed
    )  # review samples only, one fixed validation set
    split_stats = {name: _split_stats(split, mitigation[name], config) for name, split in splits.items()}
    exported = [sample for split in splits.values() for sample in split]
    kept_table = flag_by_variant(samples)
    shown_table = flag_by_shown_prompt(splits["train"] + splits["validation"])
    stats = {
        "config": display_path(config_path),
        "data_dir": display_path(data_dir),
        "output_dir": display_path(output_dir),
        "seed": seed,
        "data_models": config["data_models"],
        "trained_model_data_id": trained_model_data_id(config),
        "intervention_types": config["intervention_types"],
        "tags_to_filter": config["tags_to_filter"],
        "train_topics": config["train_topics"],
        "validation_topics": config["validation_topics"],
        "validation_fraction": config["validation_fraction"],
        "remove_system_prompt_fraction": config["remove_system_prompt_fraction"],
        "swap_a_b_fraction": config["swap_a_b_fraction"],
        "mitigation_mode": config["mitigation_mode"],
        "eligibility_source": config["eligibility_source"],
        "shortcut_warning_margin": config["shortcut_warning_margin"],
        "unseen_intent": config["unseen_intent"],
        "unseen_intent_response_tokens": config["unseen_intent_response_tokens"],
        "stages": selection.stage_counts.as_json(stage_order(config)),
        "tag_drops": selection.tag_drops(),
        "kept": len(samples),
        "kept_flag_by_variant": kept_table,
        "exported_flag_by_shown_prompt": shown_table,
        "heldout_topics": {
            "file": HELDOUT_FILE,
            "topics": split_stats[HELDOUT]["topics"],
            "fold": sorted(heldout_topics) if heldout_topics is not None else None,
        },
        "train_topics_in_data": sorted({s["topic"] for s in samples if s["topic"] in config["train_topics"]}),
        "indistinguishable": indistinguishable,
        "warnings": untagged_filter_warnings(samples, config)
        + predictability_warnings(shown_table)
        + policy_warnings(split_stats, trained_model_data_id(config))
        + measured_warnings(measures["as exported"], config["shortcut_warning_margin"], "as exported")
        + _detection_warnings(detection, config),
        "shortcut_measures": measures,
        "splits": split_stats,
        "dropped_citing": len(citing),
        "system_prompt_needed": prompt_needed,
        "off_policy_detection_fraction": config["off_policy_detection_fraction"],
        "off_policy_detection": detection,
        "provenance": generation_provenance(exported, files, PROMPT_FILE),
    }
    texts = {f"{name}.jsonl": _jsonl(split_samples) for name, split_samples in splits.items()}
    texts[DECISIONS_FILE] = decisions_jsonl(sample_decisions(dropped, before_context_check, splits, citing))
    if citing:
        texts[CITING_FILE] = _jsonl(citing, (*SAMPLE_KEYS, "split"))
    if config["off_policy_detection_fraction"]:
        texts[EVAL_FILE] = json.dumps({"samples": eval_file_rows}, indent=1, ensure_ascii=False) + "\n"
    return stats, texts


def _export_set(stats: dict[str, Any], texts: dict[str, str]) -> ExportSet:
    """The data files with the statistics, the report and the dataset card (export.card)."""
    return ExportSet(
        {
            **texts,
            "export_stats.json": json.dumps(stats, indent=2, ensure_ascii=True) + "\n",
            "export_report.md": markdown_report(stats),
        },
        partial(dataset_card, stats),
    )


def topic_folds(topics: list[str], folds: int, seed: int) -> list[list[str]]:
    """`topics` in `folds` seeded folds of near-equal size (each sorted); every topic in exactly one."""
    shuffled = sorted(topics)
    random.Random(f"{seed}:topic_folds").shuffle(shuffled)
    return [sorted(shuffled[index::folds]) for index in range(folds)]


def _fold_sets(config: dict[str, Any], config_path: Path, topics: list[str]) -> tuple[dict[str, Any], dict]:
    """With leave_topics_out_folds k: one complete export per fold, its topics out of train_topics and
    validation_topics and in its heldout_topics.jsonl; returns the summary and fold folder -> files."""
    folds = config["leave_topics_out_folds"]
    if folds > len(topics):
        raise DataError(
            f"config key 'leave_topics_out_folds': {folds} folds need at least {folds} train topics with "
            f"samples; the data has {len(topics)} ({', '.join(topics) or 'none'})"
        )
    summary, sets = [], {}
    for index, held_out in enumerate(topic_folds(topics, folds, config["seed"])):
        name = f"fold_{index}"
        fold_config = {
            **config,
            "leave_topics_out_folds": 0,
            "export_dir": str(utils.data_path(config["export_dir"]) / name),
            "train_topics": [topic for topic in config["train_topics"] if topic not in held_out],
            "validation_topics": [topic for topic in config["validation_topics"] if topic not in held_out],
        }
        stats, texts = _build(fold_config, config_path, held_out)
        sets[name] = _export_set(stats, texts)
        summary.append(
            {
                "folder": name,
                "topics": held_out,
                **{split: stats["splits"][split]["samples"] for split in ("train", "validation", HELDOUT)},
            }
        )
    return {"folds": folds, "sets": summary}, sets


def export(config: dict[str, Any], config_path: Path) -> dict[str, Any]:
    """Run the export described by `config`; returns the statistics written to export_stats.json."""
    stats, texts = _build(config, config_path)
    fold_sets = {}
    if config["leave_topics_out_folds"]:
        stats["leave_topics_out"], fold_sets = _fold_sets(config, config_path, stats["train_topics_in_data"])
    stats["export_id"] = write_export_set(utils.data_path(config["export_dir"]), _export_set(stats, texts), fold_sets)
    return stats


def upload_plan(output_dir: Path, repo_id: str) -> hub.UploadPlan:
    """What --push_to_hub uploads: the export folder without its sample viewers (a local reading aid,
    as large as the data)."""
    return hub.upload_plan(output_dir, repo_id, "dataset", exclude=(f"{VIEWER_DIR}/*", f"fold_*/{VIEWER_DIR}/*"))


def _write_viewers(output_dir: Path, data_dir: Path, stats: dict[str, Any]) -> None:
    """The sample viewer of the export and of each leave-topics-out fold (their reports link it)."""
    write_viewer(output_dir, output_dir / VIEWER_INDEX, data_dir=data_dir)
    for fold in (stats.get("leave_topics_out") or {}).get("sets", []):
        write_viewer(output_dir / fold["folder"], output_dir / fold["folder"] / VIEWER_INDEX, data_dir=data_dir)


def run(args: argparse.Namespace) -> int:
    """The export of export_training_data.py: its flags override config keys; prints the
    warnings and one line of counts; --push_to_hub is checked first and uploads last, under the lock."""
    config = load_training_config_with_flags(
        args.config,
        {
            "data_dir": ("--data_dir", args.data_dir),
            "export_dir": ("--output_dir", args.output_dir),
            "seed": ("--seed", args.seed),
            "data_models": ("--data_models", args.data_models),
        },
    )
    output_dir = utils.data_path(config["export_dir"])
    output_what = "--output_dir" if args.output_dir else f"export_dir in {display_path(args.config)}"
    utils.check_apart(
        output_dir,
        output_what,
        utils.data_path(config["data_dir"]),
        "--data_dir" if args.data_dir else f"data_dir in {display_path(args.config)}",
    )
    check_export_target(output_dir, output_what)
    if args.push_to_hub:
        hub.check_push(args.push_to_hub)
    with locks.hold(output_dir, "the export", locks.WAIT_OR_ELSEWHERE):
        stats = export(config, args.config)
        if not args.no_viewer:
            _write_viewers(output_dir, utils.data_path(config["data_dir"]), stats)
        pushed = args.push_to_hub and hub.push(
            upload_plan(output_dir, args.push_to_hub), f"SPT training export {stats['export_id']}"
        )
    for warning in stats["warnings"]:
        print(warning)
    splits = stats["splits"]
    exported = splits["train"]["samples"] + splits["validation"]["samples"]
    detection = splits["train"]["detection_samples"] + splits["validation"]["detection_samples"]
    detection_note = (
        (
            f", of them {detection} off-policy detection samples; {stats['off_policy_detection']['eval_rows']} "
            f"evaluation rows in {EVAL_FILE}"
        )
        if stats["off_policy_detection_fraction"]
        else ""
    )
    dropped = (
        f" (and {stats['dropped_citing']} citing the system prompt set aside in {CITING_FILE})"
        if stats["dropped_citing"]
        else ""
    )
    unseen = splits["train"]["unseen_intent"] + splits["validation"]["unseen_intent"]
    unseen_note = f", {unseen} of them unseen-intent (S not shown)" if stats["unseen_intent"] else ""
    heldout = splits[HELDOUT]
    topics = ", ".join(heldout["topics"]) or "no topic of the data is outside the train/validation topics"
    folds = stats.get("leave_topics_out")
    fold_note = f"; {folds['folds']} leave-topics-out sets in fold_0 .. fold_{folds['folds'] - 1}" if folds else ""
    print(
        f"exported {exported} samples{unseen_note}{detection_note}{dropped}: train {splits['train']['samples']} "
        f"({splits['train']['items']} items), validation {splits['validation']['samples']} "
        f"({splits['validation']['items']} items); held-out topics {heldout['samples']} in {HELDOUT_FILE} ({topics})"
        f"; {stats['indistinguishable']['groups']} groups of indistinguishable samples dropped{fold_note} "
        f"-> {stats['output_dir']} (export {stats['export_id']})"
        + ("" if args.no_viewer else f"; samples: {display_path(output_dir / VIEWER_INDEX)}")
    )
    if pushed:
        print(f"uploaded to {pushed}")
    return 0
