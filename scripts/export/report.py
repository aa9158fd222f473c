"""The statistics of a training export: flags per variant, the warning when the flag is
predictable from the system prompt the model is shown (A's or B's, after swaps and removals), and
`export_report.md`. Reads and writes nothing.
"""
from __future__ import annotations

from collections import Counter
from typing import Any

import utils
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
              f"mitigation_mode {stats['mitigation_mode']}. Variant x flag columns count review samples. Policy off: "
              "the system prompt was swapped (A<->B, so the response was not written under the prompt shown) or the "
              "response was swapped (an off-policy detection sample whose S is another model's answer).", ""]
    mitigation_columns = ("eligible", "swapped", "removed", "dropped_citing")
    policy_columns = ("on", "off", "off_ab_prompt_swap", "off_response_swap")
    lines += utils.markdown_table(["split", "items", "samples", *(f"{v} {f}" for v in VARIANTS for f in FLAGS),
                     "shortcut-eligible", "swapped", "prompt removed", "citing dropped", "detection samples",
                     "policy on", "policy off", "off: A<->B prompt swap", "off: response swap"],
                    [[name, split["items"], split["samples"],
                      *(split["flag_by_variant"][v].get(f, 0) for v in VARIANTS for f in FLAGS),
                      *(split["shortcut_mitigation"][c] for c in mitigation_columns), split["detection_samples"],
                      *(split["policy"][c] for c in policy_columns)]
                     for name, split in stats["splits"].items()])
    lines += [*removal_cost_lines(stats), "", *shortcut_table(stats), *detection_section(stats)]
    return "\n".join(lines) + "\n"


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
