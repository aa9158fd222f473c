"""PNG plots of the stage-3 report (matplotlib, Agg backend), written to `<output_dir>/plots/`.

`write_plots(plots_dir, per_topic, overall, confidence_by_variant)` draws: flag shares by topic and variant, tag
counts, the confidence distribution per variant, and what the training filters keep per
topic. Returns {plot name: path}. Writes only PNG files (each via a temporary file and a
rename, so a crash never leaves a half-written plot).
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

FLAG_COLOURS = {"PASS": "#4c9f70", "FAIL": "#d1495b", "AMBIGUOUS": "#edae49", "other": "#9e9e9e"}


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, dpi=110, format="png", bbox_inches="tight")
    plt.close(fig)
    os.replace(tmp, path)
    return path


def flag_rates_by_topic_and_variant(per_topic: dict[str, dict], path: Path) -> Path:
    labels, shares = [], {flag: [] for flag in FLAG_COLOURS}
    for topic, scope in per_topic.items():
        for variant, flags in scope["flags_by_variant"].items():
            total = sum(flags.values()) or 1
            labels.append(f"{topic} · {variant}")
            known = 0
            for flag in ("PASS", "FAIL", "AMBIGUOUS"):
                shares[flag].append(100 * flags.get(flag, 0) / total)
                known += flags.get(flag, 0)
            shares["other"].append(100 * (total - known) / total if sum(flags.values()) else 0)
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.32 * len(labels)))
    left = [0.0] * len(labels)
    for flag, colour in FLAG_COLOURS.items():
        ax.barh(labels, shares[flag], left=left, color=colour, label=flag)
        left = [a + b for a, b in zip(left, shares[flag])]
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of the variant's interventions")
    ax.set_title("Flags by topic and variant (A = neutral prompt, B = biased prompt)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.5 / (1 + 0.3 * len(labels)) - 0.12), ncol=4, fontsize=8)
    return _save(fig, path)


def tag_counts(overall: dict, path: Path) -> Path:
    tags = list(overall["intervention_tags"].items())
    variant_tags = list(overall.get("variant_tags", {}).items())
    rows = [(f"{tag}", n) for tag, n in tags] + [(f"{tag} (variants)", n) for tag, n in variant_tags]
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.3 * max(len(rows), 1)))
    if rows:
        names, counts = zip(*rows)
        colours = ["#30638e"] * len(tags) + ["#00798c"] * len(variant_tags)
        ax.barh(names, counts, color=colours)
        for y, count in enumerate(counts):
            ax.text(count, y, f" {count}", va="center", fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("count (interventions; '(variants)' rows count model responses)")
    ax.set_title("Tag counts")
    ax.tick_params(axis="y", labelsize=8)
    return _save(fig, path)


def confidence_distribution(per_variant: dict[str, dict], path: Path) -> Path:
    levels = ["1", "2", "3", "4", "5"]
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.8 / max(len(per_variant), 1)
    for offset, (variant, counts) in enumerate(per_variant.items()):
        total = sum(counts.get(level, 0) for level in levels) or 1
        xs = [i + offset * width for i in range(len(levels))]
        ax.bar(xs, [100 * counts.get(level, 0) / total for level in levels], width=width, label=f"variant {variant}")
    ax.set_xticks([i + width * (len(per_variant) - 1) / 2 for i in range(len(levels))], levels)
    ax.set_xlabel("generator confidence")
    ax.set_ylabel("% of the variant's interventions")
    ax.set_title("Confidence distribution")
    ax.legend()
    return _save(fig, path)


def training_filters_by_topic(per_topic: dict[str, dict], path: Path) -> Path:
    labels = list(per_topic)
    kept = [scope["training_filters"]["kept"] for scope in per_topic.values()]
    dropped = [
        scope["training_filters"]["candidates"] - scope["training_filters"]["kept"] for scope in per_topic.values()
    ]
    fig, ax = plt.subplots(figsize=(9, 1.5 + 0.35 * len(labels)))
    ax.barh(labels, kept, color="#4c9f70", label="kept")
    ax.barh(labels, dropped, left=kept, color="#bdbdbd", label="dropped by tags_to_filter")
    for y, (k, d) in enumerate(zip(kept, dropped)):
        text = f" {100 * k / (k + d):.0f}% kept" if k + d else " not selected"
        ax.text(k + d, y, text, va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("candidate samples (intervention key in intervention_types, topic selected)")
    ax.set_xlim(0, 1.18 * max([k + d for k, d in zip(kept, dropped)] + [1]))
    ax.set_title("What the training filters keep per topic")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.5 / (1 + 0.3 * len(labels)) - 0.14), ncol=2, fontsize=8)
    return _save(fig, path)


def write_plots(
    plots_dir: Path, per_topic: dict[str, dict], overall: dict, confidence_by_variant: dict[str, dict]
) -> dict[str, Path]:
    return {
        "flag_rates_by_topic_and_variant": flag_rates_by_topic_and_variant(
            per_topic, plots_dir / "flag_rates_by_topic_and_variant.png"
        ),
        "tag_counts": tag_counts(overall, plots_dir / "tag_counts.png"),
        "confidence_distribution": confidence_distribution(
            confidence_by_variant, plots_dir / "confidence_distribution.png"
        ),
        "training_filters_by_topic": training_filters_by_topic(per_topic, plots_dir / "training_filters_by_topic.png"),
    }
