"""The statistics of a training export: flags per variant, the warning when the flag is
predictable from the system prompt the model is shown (A's or B's, after swaps and removals), the
warning when no review sample is on-policy, and `export_report.md`. Reads and writes nothing.
"""
from __future__ import annotations

from collections import Counter
from typing import Any

import utils
from export.policy import OFF_REASONS
from export.removal_cost import removal_cost_lines
from shared_tools import FLAGS, REVIEW_TASK, VARIANTS

# A flag this predictable from the prompt shown is a shortcut the model can learn instead of reviewing.
PREDICTABLE_SHARE = 0.9


def flag_by_variant(samples: list[dict]) -> dict[str, dict[str, int]]:
    table: dict[str, Counter] = {letter: Counter() for letter in VARIANTS}
    for sample in samples:
        table[sample["variant"]][sample["P"]] += 1
    return {letter: dict(sorted(counts.items())) for letter, counts in table.items()}


# The variant whose prompt a sample shows, by system_prompt_source; a removed prompt ("none") shows none.
SHOWN_PROMPT = {"A": "A", "B": "B", "B->A": "A", "A->B": "B"}


def flag_by_shown_prompt(samples: list[dict]) -> dict[str, dict[str, int]]:
    """Flags of the exported review samples by the variant whose system prompt they show."""
    table: dict[str, Counter] = {letter: Counter() for letter in VARIANTS}
    for sample in samples:
        shown = SHOWN_PROMPT.get(sample["system_prompt_source"])
        if shown and sample.get("task", REVIEW_TASK) == REVIEW_TASK:
            table[shown][sample["P"]] += 1
    return {letter: dict(sorted(counts.items())) for letter, counts in table.items()}


def predictability_warnings(table: dict[str, dict[str, int]]) -> list[str]:
    """A warning for every shown prompt (A's or B's) whose samples carry one flag PREDICTABLE_SHARE of
    the time: the model can read the flag off the prompt it sees. Removed prompts show nothing, so a
    mitigation that removes or swaps enough of them silences the warning."""
    warnings = []
    for letter, counts in table.items():
        total = sum(counts.values())
        for flag, count in counts.items():
            if total and count / total >= PREDICTABLE_SHARE:
                warnings.append(
                    f"WARNING: the flag is predictable from the system prompt shown: {count} of {total} samples "
                    f"showing the {letter} prompt ({100 * count / total:.1f}%) are {flag}. A model can learn "
                    f"'{letter} prompt -> {flag}' instead of reviewing; consider remove_system_prompt_fraction / "
                    f"swap_a_b_fraction or rebalancing.")
    return warnings


def policy_warnings(split_stats: dict[str, dict[str, Any]], trained_id: str) -> list[str]:
    """A warning when every exported review sample is off-policy, naming why."""
    review = [counts for split in split_stats.values() for counts in split["policy"]["review"].values()]
    total = sum(counts["on"] + counts["off"] for counts in review)
    if not total or any(counts["on"] for counts in review):
        return []
    reasons = ", ".join(f"{reason} {sum(counts[reason] for counts in review)}" for reason in OFF_REASONS)
    return [f"WARNING: every one of the {total} review samples is off-policy ({reasons}): none shows the trained "
            f"model's own answer ({trained_id!r}, trained_model_data_id or base_model) with the system prompt it was "
            "generated under. Training teaches it to review answers it did not write as they were written."]


def verification_counts(samples: list[dict]) -> dict[str, int]:
    """Samples of a split by their causal-verification status (docs/causal_verification.md)."""
    return dict(sorted(Counter(sample["verification"]["status"] for sample in samples).items()))


def verification_lines(stats: dict[str, Any]) -> list[str]:
    counts = {name: split["verification"] for name, split in stats["splits"].items()}
    statuses = sorted({status for split in counts.values() for status in split})
    return ["## Causal verification", "",
            "Each sample's `verification.status`: verified / failed (its data model's verdict from "
            "scripts/verify_ab_factors.py), refused (the judge model refused to judge it), not applicable (no B "
            "prompt, or an off-policy detection sample), not verified (no verdict: its A/B factor was never "
            "checked).", "",
            *utils.markdown_table(["split", *statuses], [[name, *(split.get(s, 0) for s in statuses)]
                                                         for name, split in counts.items()]), ""]


def markdown_report(stats: dict[str, Any]) -> str:
    stages = stats["stages"]
    topics = sorted({t for row in stages for t in row["topic"]})
    flags = sorted({f for row in stages for f in row["flag"]})
    lines = ["# Training data export", "",
             f"Config `{stats['config']}`, data `{stats['data_dir']}`, seed {stats['seed']}, "
             f"models {', '.join(stats['data_models'])}, intervention types {', '.join(stats['intervention_types'])}.",
             ""]
    lines += stats["warnings"] + ([""] if stats["warnings"] else [])
    if stats["unseen_intent"]:
        unseen = {name: split["unseen_intent"] for name, split in stats["splits"].items()}
        lines += [f"unseen_intent on: {sum(unseen.values())} unseen-intent samples (train {unseen['train']}, "
                  f"validation {unseen['validation']}): the model sees the first "
                  f"{stats['unseen_intent_response_tokens']} token(s) of S and reviews what it was about to say.", ""]
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
    lines += ["", "## Splits", "",
              f"mitigation_mode {stats['mitigation_mode']}. Variant x flag columns count review samples; "
              f"`{stats['heldout_topics']['file']}` holds the held-out topics' samples (evaluation only, never trained "
              "on). Unseen-intent samples always keep the system prompt they were generated under.", ""]
    mitigation_columns = ("eligible", "swapped", "removed", "dropped_citing", "unseen_intent_kept_prompt")
    dropped = stats["indistinguishable"]["samples_dropped_by_split"]
    lines += utils.markdown_table(["split", "items", "samples", *(f"{v} {f}" for v in VARIANTS for f in FLAGS),
                     "shortcut-eligible", "swapped", "prompt removed", "citing dropped", "unseen intent (prompt kept)",
                     "indistinguishable dropped", "detection samples", "policy on", "policy off"],
                    [[name, split["items"], split["samples"],
                      *(split["flag_by_variant"][v].get(f, 0) for v in VARIANTS for f in FLAGS),
                      *(split["shortcut_mitigation"][c] for c in mitigation_columns), dropped[name],
                      split["detection_samples"], split["policy"]["on"], split["policy"]["off"]]
                     for name, split in stats["splits"].items()])
    lines += ["", *policy_section(stats), *indistinguishable_section(stats), *heldout_section(stats)]
    lines += [*removal_cost_lines(stats), "", *verification_lines(stats), *shortcut_table(stats),
              *detection_section(stats)]
    return "\n".join(lines) + "\n"


def policy_section(stats: dict[str, Any]) -> list[str]:
    """Review samples on/off-policy per split and variant, with the reasons for off (they can overlap)."""
    lines = ["## Policy labels", "",
             f"A review sample is on-policy only when its S was written by the trained model (stage-2 id "
             f"`{stats['trained_model_data_id']}`: trained_model_data_id, or base_model) and it is shown with exactly "
             "the system prompt it was generated under; anything else (another model's answer, a removed or swapped "
             "prompt) is off-policy. One sample can be off for two reasons.", ""]
    rows = [[name, letter, counts["on"], counts["off"], *(counts[reason] for reason in OFF_REASONS)]
            for name, split in stats["splits"].items() for letter, counts in split["policy"]["review"].items()]
    return lines + utils.markdown_table(["split", "variant", "on", "off", *(f"off: {r}" for r in OFF_REASONS)], rows) + [""]


def indistinguishable_section(stats: dict[str, Any]) -> list[str]:
    """The check for samples with one visible context and different flags (export.contexts)."""
    found = stats["indistinguishable"]
    by_split = ", ".join(f"{name} {count}" for name, count in found["samples_dropped_by_split"].items())
    return ["## Indistinguishable samples", "",
            f"Checked: {found['groups']} groups of samples of one task with the same visible context before the "
            "split-personality token (system prompt shown, T, S shown: none of an unseen-intent sample's S, or its "
            f"first {stats['unseen_intent_response_tokens']} characters) and different flags; "
            f"{found['samples_dropped']} samples dropped ({by_split}).", ""]


def heldout_section(stats: dict[str, Any]) -> list[str]:
    """The held-out-topic evaluation file, and the leave-topics-out folds when asked for."""
    heldout = stats["heldout_topics"]
    topics = ", ".join(f"{topic} {count}" for topic, count in heldout["topics"].items()) or "none"
    counts = f"`{heldout['file']}`: {stats['splits']['heldout_topics']['samples']} samples"
    common = f"through the same filters and mitigations; never trained on (samples per topic: {topics})."
    if heldout["fold"] is not None:
        text = (f"{counts} of this leave-topics-out fold's topics ({', '.join(heldout['fold'])}), taken out of "
                f"train_topics and validation_topics, {common}")
    else:
        text = (f"{counts} of the topics of the data outside train_topics and validation_topics, {common} With the "
                "default topic lists these are the topics SPEC §3 excludes from training (reasoning_metacognition and "
                "strategic_awareness: low quality; steganography: generated as generic data-hiding), so their "
                "accuracy mixes generalisation with data quality; leave_topics_out_folds measures generalisation on "
                "the training topics.")
    lines = ["## Held-out topics", "", text, ""]
    folds = stats.get("leave_topics_out")
    if folds:
        lines += [f"leave_topics_out_folds {folds['folds']}: one complete export per fold, its topics out of "
                  "train_topics and validation_topics and in its heldout_topics.jsonl.", ""]
        lines += utils.markdown_table(["folder", "held-out topics", "train", "validation", "heldout_topics"],
                                      [[fold["folder"], ", ".join(fold["topics"]), fold["train"],
                                        fold["validation"], fold["heldout_topics"]] for fold in folds["sets"]])
        lines.append("")
    return lines


def detection_section(stats: dict[str, Any]) -> list[str]:
    """Off-policy detection samples per split and source model, and the evaluation file (fraction > 0 only)."""
    detection = stats["off_policy_detection"]
    if not stats["off_policy_detection_fraction"]:
        return []
    splits = detection["splits"]
    sources = sorted({model for counts in splits.values() for model in counts["off_by_source_model"]})
    lines = ["", "## Off-policy detection", "",
             f"off_policy_detection_fraction {stats['off_policy_detection_fraction']}: per split, that share of the "
             "eligible (item, variant, data model) pairs yields one on-policy sample (own answer, PASS) and one "
             "off-policy sample (another model's answer, FAIL). Off samples by the model whose answer S is:", ""]
    lines += utils.markdown_table(["split", "eligible pairs", "chosen pairs", "on", "off", *(f"off from {m}" for m in sources)],
                                  [[name, c["pairs_eligible"], c["pairs_chosen"], c["on"], c["off"],
                                    *(c["off_by_source_model"].get(m, 0) for m in sources)] for name, c in splits.items()])
    by_source = detection["eval_rows_by_source_model"]
    lines += ["", f"`{detection['eval_file']}`: {detection['eval_rows']} rows for training/evaluate.py `--input` (every "
              "eligible validation pair: its own answer, expected PASS, and each other usable answer, expected FAIL). "
              "Rows by S's model: on " + (", ".join(f"{m} {n}" for m, n in by_source["on"].items()) or "none")
              + "; off " + (", ".join(f"{m} {n}" for m, n in by_source["off"].items()) or "none") + "."]
    measures = detection["shortcut_measures"]
    if measures is not None:
        lines += ["", "Naive Bayes on the detection samples alone (train -> validation, majority "
                  f"{_percent(measures['majority_baseline'])}): "
                  + ", ".join(f"{view} {_percent(acc)}" for view, acc in measures["accuracy"].items())
                  + ". System prompt and I are shared by on and off samples, so they should stay near the majority "
                    "share; S is the signal the detector is meant to learn."]
    return lines


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def shortcut_table(stats: dict[str, Any]) -> list[str]:
    """The measured shortcut: naive-Bayes accuracy per view on validation, before mitigation and as exported."""
    lines = ["## Measured shortcuts", "",
             "Naive Bayes on one text alone, trained on train, scored on validation, next to validation's "
             f"majority-class share; warned above a margin of {100 * stats['shortcut_warning_margin']:.0f} points. "
             "Before mitigation: the same splits with the original system prompts and no sample dropped.", ""]
    measures = stats["shortcut_measures"]
    if any(m is None for m in measures.values()):
        return lines + ["n/a: train or validation is empty.", ""]
    views = list(measures["as exported"]["accuracy"])
    rows = [[when, m["train_samples"], m["validation_samples"], _percent(m["majority_baseline"]),
             *(_percent(m["accuracy"][view]) for view in views)] for when, m in measures.items()]
    return lines + utils.markdown_table(["samples", "train", "validation", "majority baseline", *views], rows)
