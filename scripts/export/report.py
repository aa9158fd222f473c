"""The statistics of a training export: flags per variant, the warning when the flag is
predictable from the variant, and `export_report.md`. Reads and writes nothing.
"""
from __future__ import annotations

from collections import Counter
from typing import Any

import utils
from shared_tools import FLAGS, VARIANTS

# A flag this predictable from the variant is a shortcut the model can learn instead of reviewing.
PREDICTABLE_SHARE = 0.9


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
              f"mitigation_mode {stats['mitigation_mode']}; policy off: the system prompt was swapped, so the "
              "response was not written under the prompt shown.", ""]
    mitigation_columns = ("eligible", "swapped", "removed", "dropped_citing", "on_policy", "off_policy")
    lines += utils.markdown_table(["split", "items", "samples", *(f"{v} {f}" for v in VARIANTS for f in FLAGS),
                     "shortcut-eligible", "swapped", "prompt removed", "citing dropped", "policy on", "policy off"],
                    [[name, split["items"], split["samples"],
                      *(split["flag_by_variant"][v].get(f, 0) for v in VARIANTS for f in FLAGS),
                      *(split["shortcut_mitigation"][c] for c in mitigation_columns)]
                     for name, split in stats["splits"].items()])
    lines += ["", *shortcut_table(stats)]
    return "\n".join(lines) + "\n"


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
