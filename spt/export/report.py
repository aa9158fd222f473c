"""The statistics of a training export: flags per variant, the warning when the flag is
predictable from the system prompt the model is shown (A's or B's, after swaps and removals), the
warning when no review sample is on-policy, and `export_report.md`. Reads and writes nothing.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from spt import utils
from spt.export.policy import OFF_REASONS
from spt.export.removal_cost import removal_cost_lines
from spt.shared_tools import FLAGS, REVIEW_TASK, VARIANTS

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
                    f"swap_a_b_fraction or rebalancing."
                )
    return warnings


def policy_warnings(split_stats: dict[str, dict[str, Any]], trained_id: str) -> list[str]:
    """A warning when every exported review sample is off-policy, naming why."""
    review = [counts for split in split_stats.values() for counts in split["policy"]["review"].values()]
    total = sum(counts["on"] + counts["off"] for counts in review)
    if not total or any(counts["on"] for counts in review):
        return []
    by_reason = {reason: sum(counts[reason] for counts in review) for reason in OFF_REASONS}
    reasons = ", ".join(f"{reason} {count}" for reason, count in by_reason.items())
    consequence = []
    if by_reason["another model's answer"]:
        consequence.append("to review answers it did not write")
    if by_reason["prompt removed"] or by_reason["prompt swapped"]:
        consequence.append(
            "to review its answers without the system prompt they were written under "
            "(remove_system_prompt_fraction / swap_a_b_fraction below 1 keep some as generated)"
        )
    return [
        f"WARNING: every one of the {total} review samples is off-policy ({reasons}): none shows the trained "
        f"model's own answer ({trained_id!r}, trained_model_data_id or base_model) with the system prompt it was "
        f"generated under. Training teaches it {' and '.join(consequence)}."
    ]


def verification_counts(samples: list[dict]) -> dict[str, int]:
    """Samples of a split by their causal-verification status (docs/causal_verification.md)."""
    return dict(sorted(Counter(sample["verification"]["status"] for sample in samples).items()))


def verification_lines(stats: dict[str, Any]) -> list[str]:
    counts = {name: split["verification"] for name, split in stats["splits"].items()}
    statuses = sorted({status for split in counts.values() for status in split})
    return [
        "## Causal verification",
        "",
        "Each sample's `verification.status`: verified / failed (its data model's verdict from "
        "scripts/verify_ab_factors.py), refused (the judge model refused to judge it), not applicable (no B "
        "prompt, or an off-policy detection sample), not verified (no verdict: its A/B factor was never "
        "checked).",
        "",
        *utils.markdown_table(
            ["split", *statuses], [[name, *(split.get(s, 0) for s in statuses)] for name, split in counts.items()]
        ),
        "",
    ]


def markdown_report(stats: dict[str, Any]) -> str:
    stages = stats["stages"]
    topics = sorted({t for row in stages for t in row["topic"]})
    flags = sorted({f for row in stages for f in row["flag"]})
    lines = [
        "# Training data export",
        "",
        f"Config `{stats['config']}`, data `{stats['data_dir']}`, seed {stats['seed']}, "
        f"models {', '.join(stats['data_models'])}, intervention types {', '.join(stats['intervention_types'])}.",
        "",
        "Samples: [viewer/samples.html](viewer/samples.html), one page per topic with what the export did to "
        "each sample (exported to which split, or the filter that dropped it; the prompt shown; the policy "
        "label), from `sample_decisions.jsonl` (after an export with --no_viewer: `python scripts/view_samples.py "
        "EXPORT_DIR --output EXPORT_DIR/viewer/samples.html`).",
        "",
    ]
    lines += stats["warnings"] + ([""] if stats["warnings"] else [])
    if stats["unseen_intent"]:
        unseen = {name: split["unseen_intent"] for name, split in stats["splits"].items()}
        lines += [
            f"unseen_intent on: {sum(unseen.values())} unseen-intent samples (train {unseen['train']}, "
            f"validation {unseen['validation']}): the model sees the first "
            f"{stats['unseen_intent_response_tokens']} token(s) of S and reviews what it was about to say.",
            "",
        ]
    lines += ["## Samples after each selection stage", ""]
    lines += utils.markdown_table(
        ["stage", "remaining", *VARIANTS, *flags],
        [
            [
                row["stage"],
                row["remaining"],
                *(row["variant"].get(v, 0) for v in VARIANTS),
                *(row["flag"].get(f, 0) for f in flags),
            ]
            for row in stages
        ],
    )
    lines += ["", "## Per topic after each stage", ""]
    lines += utils.markdown_table(
        ["stage", *topics], [[row["stage"], *(row["topic"].get(t, 0) for t in topics)] for row in stages]
    )
    lines += [
        "",
        "## Tag filters",
        "",
        "individual: samples carrying the tag (after the earlier stages); cumulative: samples dropped by "
        "this tag and by no tag listed before it.",
        "",
    ]
    lines += utils.markdown_table(
        ["tag", "individual", "cumulative"],
        [[tag, d["individual"], d["cumulative"]] for tag, d in stats["tag_drops"].items()],
    )
    lines += [
        "",
        "## Splits",
        "",
        f"mitigation_mode {stats['mitigation_mode']}. Variant x flag columns count review samples; "
        f"`{stats['heldout_topics']['file']}` holds the held-out topics' samples (evaluation only, never trained "
        "on). Unseen-intent samples always keep the system prompt they were generated under.",
        "",
    ]
    mitigation_columns = ("eligible", "swapped", "removed", "dropped_citing", "unseen_intent_kept_prompt")
    dropped = stats["indistinguishable"]["samples_dropped_by_split"]
    lines += utils.markdown_table(
        [
            "split",
            "items",
            "samples",
            *(f"{v} {f}" for v in VARIANTS for f in FLAGS),
            "shortcut-eligible",
            "swapped",
            "prompt removed",
            "citing dropped",
            "unseen intent (prompt kept)",
            "indistinguishable dropped",
            "detection samples",
            "policy on",
            "policy off",
        ],
        [
            [
                name,
                split["items"],
                split["samples"],
                *(split["flag_by_variant"][v].get(f, 0) for v in VARIANTS for f in FLAGS),
                *(split["shortcut_mitigation"][c] for c in mitigation_columns),
                dropped[name],
                split["detection_samples"],
                split["policy"]["on"],
                split["policy"]["off"],
            ]
            for name, split in stats["splits"].items()
        ],
    )
    lines += ["", *policy_section(stats), *indistinguishable_section(stats), *heldout_section(stats)]
    lines += [
        *removal_cost_lines(stats),
        "",
        *verification_lines(stats),
        *shortcut_table(stats),
        *detection_section(stats),
    ]
    return "\n".join(lines) + "\n"


def policy_section(stats: dict[str, Any]) -> list[str]:
    """Review samples on/off-policy per split and variant, with the reasons for off (they can overlap)."""
    lines = [
        "## Policy labels",
        "",
        f"A review sample is on-policy only when its S was written by the trained model (stage-2 id "
        f"`{stats['trained_model_data_id']}`: trained_model_data_id, or base_model) and it is shown with exactly "
        "the system prompt it was generated under; anything else (another model's answer, a removed or swapped "
        "prompt) is off-policy. One sample can be off for two reasons.",
        "",
    ]
    rows = [
        [name, letter, counts["on"], counts["off"], *(counts[reason] for reason in OFF_REASONS)]
        for name, split in stats["splits"].items()
        for letter, counts in split["policy"]["review"].items()
    ]
    return (
        lines
        + utils.markdown_table(["split", "variant", "on", "off", *(f"off: {r}" for r in OFF_REASONS)], rows)
        + [""]
    )


def indistinguishable_section(stats: dict[str, Any]) -> list[str]:
    """The check for samples with one visible context and different flags (export.contexts)."""
    found = stats["indistinguishable"]
    by_split = ", ".join(f"{name} {count}" for name, count in found["samples_dropped_by_split"].items())
    return [
        "## Indistinguishable samples",
        "",
        f"Checked: {found['groups']} groups of samples of one task with the same visible context before the "
        "split-personality token (system prompt shown, T, S shown: none of an unseen-intent sample's S, or its "
        f"first {stats['unseen_intent_response_tokens']} characters) and different flags; "
        f"{found['samples_dropped']} samples dropped ({by_split}).",
        "",
    ]


def heldout_section(stats: dict[str, Any]) -> list[str]:
    """The held-out-topic evaluation file, and the leave-topics-out folds when asked for."""
    heldout = stats["heldout_topics"]
    topics = ", ".join(f"{topic} {count}" for topic, count in heldout["topics"].items()) or "none"
    counts = f"`{heldout['file']}`: {stats['splits']['heldout_topics']['samples']} samples"
    common = f"through the same filters and mitigations; never trained on (samples per topic: {topics})."
    if heldout["fold"] is not None:
        text = (
            f"{counts} of this leave-topics-out fold's topics ({', '.join(heldout['fold'])}), taken out of "
            f"train_topics and validation_topics, {common}"
        )
    else:
        text = (
            f"{counts} of the topics of the data outside train_topics and validation_topics, {common} With the "
            "default topic lists these are the topics SPEC §3 excludes from training (reasoning_metacognition and "
            "strategic_awareness: low quality; steganography: generated as generic data-hiding), so their "
            "accuracy mixes generalisation with data quality; leave_topics_out_folds measures generalisation on "
            "the training topics."
        )
    lines = ["## Held-out topics", "", text, ""]
    folds = stats.get("leave_topics_out")
    if folds:
        lines += [
            f"leave_topics_out_folds {folds['folds']}: one complete export per fold, its topics out of "
            "train_topics and validation_topics and in its heldout_topics.jsonl.",
            "",
        ]
        lines += utils.markdown_table(
            ["folder", "held-out topics", "train", "validation", "heldout_topics"],
            [
                [fold["folder"], ", ".join(fold["topics"]), fold["train"], fold["validation"], fold["heldout_topics"]]
                for fold in folds["sets"]
            ],
        )
        lines.append("")
    return lines


def detection_section(stats: dict[str, Any]) -> list[str]:
    """Off-policy detection samples per split, off kind and source model, the evaluation file, and the
    measured views with the style-only baseline (fraction > 0 only)."""
    detection = stats["off_policy_detection"]
    if not stats["off_policy_detection_fraction"]:
        return []
    lines = ["", "## Off-policy detection", ""]
    if detection["own_model"] is None:
        return lines + [
            "No detection sample: the data holds no answer of the trained model "
            "(trained_model_data_id, or base_model when empty), and another model's answer is never "
            "labelled as its own."
        ]
    splits = detection["splits"]
    sources = sorted({model for counts in splits.values() for model in counts["off_by_source_model"]})
    lines += [
        f"off_policy_detection_fraction {stats['off_policy_detection_fraction']}, trained model's answers: "
        f"`{detection['own_model']}`. Per split, that share of the eligible (item, variant) pairs yields one "
        "on-policy sample (the trained model's own answer with the system prompt it was written under, PASS) "
        "and one off-policy sample (FAIL), balanced between two kinds: another model's answer to the same "
        "conversation, the one nearest in style to the own answer (other model), and the trained model's own "
        "answer to the other variant shown under this variant's prompt (other prompt), which style cannot "
        "give away. Detection samples keep their system prompt.",
        "",
    ]
    lines += utils.markdown_table(
        [
            "split",
            "eligible pairs",
            "chosen pairs",
            "on",
            "off",
            "off: other model",
            "off: other prompt",
            *(f"off from {m}" for m in sources),
        ],
        [
            [
                name,
                c["pairs_eligible"],
                c["pairs_chosen"],
                c["on"],
                c["off"],
                c["off_other_model"],
                c["off_other_prompt"],
                *(c["off_by_source_model"].get(m, 0) for m in sources),
            ]
            for name, c in splits.items()
        ],
    )
    by_source = detection["eval_rows_by_source_model"]
    lines += [
        "",
        f"`{detection['eval_file']}`: {detection['eval_rows']} rows for training/evaluate.py `--input` (every "
        "eligible validation pair: its own answer, expected PASS; each other usable answer and the own answer "
        "to the other variant, expected FAIL; `off_kind` says which). Rows by S's model: on "
        + (", ".join(f"{m} {n}" for m, n in by_source["on"].items()) or "none")
        + "; off "
        + (", ".join(f"{m} {n}" for m, n in by_source["off"].items()) or "none")
        + ".",
        "",
    ]
    measures = detection["shortcut_measures"]
    if measures is None:
        return lines + ["Measured views: n/a (no detection sample in train or validation)."]
    lines += [
        "Measured views of the detection samples alone (train -> validation). The **style-only baseline** "
        "(logistic regression on the style features of S: length, paragraphs, headers, bullets, numbered "
        "lists, bold, emoji, tables, code, ! and ?) must stay near the majority share: otherwise the task can be "
        "solved by formatting. The system prompt, T and I are shared by the on and off sample of a pair, so "
        "they cannot predict the flag beyond chance by construction; the words of S are the signal the "
        "detector is meant to learn.",
        "",
    ]
    lines += measure_table({"detection": measures})
    cross = [
        f"{view} {_with_interval(m['accuracy'], m['interval'])}"
        for view, m in measures["cross_validated"].items()
        if m is not None
    ]
    if cross:
        folds = next(m for m in measures["cross_validated"].values() if m is not None)
        lines += [
            "",
            f"Cross-validated over train and validation ({folds['folds']} item-grouped folds, "
            f"{folds['samples']} samples of {folds['items']} items, majority {_percent(folds['majority_baseline'])}; "
            "steadier than the small validation split): " + ", ".join(cross) + ".",
        ]
    return lines


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _with_interval(share: dict[str, Any] | float | None, interval: list[float] | None = None) -> str:
    if isinstance(share, dict):
        share, interval = share["value"], share["interval"]
    if share is None:
        return "n/a"
    return _percent(share) + (f" [{100 * interval[0]:.1f}, {100 * interval[1]:.1f}]" if interval else "")


def _measure_rows(measures: dict[str, Any], flags: list[str], when: str | None) -> list[list[Any]]:
    """One row per view: accuracy with its item-bootstrap interval, accuracy per variant, recall per
    flag; a constant view marked instead of scored."""
    rows = []
    for view, accuracy in measures["accuracy"].items():
        first = [*([when] if when else []), view]
        if view in measures["constant_views"]:
            rows.append([*first, "constant by construction: not evidence", *([""] * (len(VARIANTS) + len(flags)))])
        else:
            rows.append(
                [
                    *first,
                    _with_interval(accuracy, measures["interval"][view]),
                    *(_with_interval(measures["accuracy_by_variant"][view][v]) for v in VARIANTS),
                    *(_with_interval(measures["recall_by_flag"][view].get(f)) for f in flags),
                ]
            )
    return rows


def measure_table(measures: dict[str, dict[str, Any]]) -> list[str]:
    """The measured views of one or more trainings (label -> measures; the label column only when
    there are several) scored on one validation set, with a line on its size."""
    flags = sorted({flag for m in measures.values() for by_flag in m["recall_by_flag"].values() for flag in by_flag})
    labelled = len(measures) > 1
    rows = [row for when, m in measures.items() for row in _measure_rows(m, flags, when if labelled else None)]
    header = [
        *(["samples"] if labelled else []),
        "view",
        "accuracy [95% item bootstrap]",
        *(f"accuracy on {v}" for v in VARIANTS),
        *(f"recall {f}" for f in flags),
    ]
    last = list(measures.values())[-1]
    trains = ", ".join(
        f"{when} {m['train_samples']}" if labelled else str(m["train_samples"]) for when, m in measures.items()
    )
    return [
        f"{last['validation_samples']} validation samples of {last['validation_items']} items (train {trains}), "
        f"majority baseline {_percent(last['majority_baseline'])}, {last['bootstrap_resamples']} item resamples. "
        "A view the same for every train and validation sample is constant by construction (e.g. the prompt "
        "view when every prompt is removed): it can predict nothing and is not evidence either way.",
        "",
        *utils.markdown_table(header, rows),
    ]


def shortcut_table(stats: dict[str, Any]) -> list[str]:
    """The measured shortcut per view on one fixed validation set, before mitigation and as exported."""
    lines = [
        "## Measured shortcuts",
        "",
        "How well one view alone predicts the flag: naive Bayes on its words (the system prompt as shown, T, I, "
        "S), logistic regression on the style features of S, trained on train, scored on validation. Before "
        "mitigation (trained on the unmitigated train split) and as exported (trained on the exported one) are "
        "scored on the same validation samples (the exported ones; before mitigation with their original "
        "prompts) and the same item resamples. Intervals: 95% item-level bootstrap (samples of one item are "
        "resampled together). A view warns when its interval's lower end is above the majority baseline and it "
        f"beats the baseline by more than {100 * stats['shortcut_warning_margin']:.0f} points. These classifiers "
        "are lower bounds: a view they cannot exploit may still give the flag away to the model, so no warning "
        "is not evidence of no shortcut.",
        "",
    ]
    measures = stats["shortcut_measures"]
    if any(m is None for m in measures.values()):
        return lines + ["n/a: train or validation is empty.", ""]
    return lines + measure_table(measures) + [""]
