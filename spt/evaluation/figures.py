"""The pictures of the evaluation report (evaluation/report.py), written beside it and linked
from it: accuracy per checkpoint × condition, and accuracy per topic and checkpoint where the
rows carry topics; each point is the accuracy among the rows whose flag parsed with its 95 %
Wilson interval (evaluation/intervals.py) as error bar, and n beside each row's name.

`<report stem>.accuracy.png` and `<report stem>.topics.png` sit in the report's folder (the
Markdown links them by name). matplotlib's Figure without pyplot (drawn by Agg, no display);
each PNG is written atomically. Reads nothing; writes only the PNGs.
"""

from __future__ import annotations

import io
from collections import defaultdict
from pathlib import Path

from spt import utils
from spt.evaluation.intervals import METHOD, wilson_interval

FIGURES = {"checkpoint_condition": "accuracy", "topic": "topics"}  # figure -> file suffix


def figure_path(report: Path, figure: str) -> Path:
    return report.with_name(f"{report.stem}.{FIGURES[figure]}.png")


def _point_plot(title: str, groups: list[str], series: dict[str, dict[str, tuple[int, int]]]) -> bytes:
    """One point with its Wilson interval per (group, one row of the y axis; series, in the
    legend); the tallies are (correct, parsed). Rows run top-down, labels stay horizontal however
    long a checkpoint's name is. Returns the PNG's bytes."""
    from matplotlib.figure import Figure

    labels = [f"{group} (n={sum(tallies.get(group, (0, 0))[1] for tallies in series.values())})" for group in groups]
    height = 1.8 + 0.35 * len(groups) * max(len(series), 1) ** 0.5
    figure = Figure(figsize=(6 + 0.075 * max(map(len, labels)), height), layout="constrained")
    axes = figure.subplots()
    spread = 0.7 / max(len(series), 1)
    for index, (name, tallies) in enumerate(series.items()):
        ys, shares, below, above = [], [], [], []
        for position, group in enumerate(groups):
            correct, parsed = tallies.get(group, (0, 0))
            if not parsed:
                continue
            low, high = wilson_interval(correct, parsed)
            share = correct / parsed
            ys.append(position - 0.35 + spread * (index + 0.5))
            shares.append(100 * share)
            below.append(100 * max(share - low, 0.0))  # rounding can put a bound a hair past the share
            above.append(100 * max(high - share, 0.0))
        axes.errorbar(shares, ys, xerr=[below, above], fmt="o", capsize=3, label=name)
    for position, group in enumerate(groups):
        if not any(tallies.get(group, (0, 0))[1] for tallies in series.values()):
            axes.text(50, position, "no flag parsed", ha="center", va="center", color="gray")
    axes.set_yticks(range(len(groups)), labels)
    axes.set_ylim(len(groups) - 0.5, -0.5)
    axes.set_xlim(-2, 102)
    axes.set_xlabel(f"accuracy % (rows whose flag parsed); bars: {METHOD}")
    axes.set_title(title)
    axes.grid(axis="x", alpha=0.3)
    figure.legend(fontsize="small", loc="outside lower center", ncols=min(len(series), 3))
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def checkpoint_condition_png(runs: list) -> bytes:
    """Accuracy per checkpoint (x) and condition (series), the report's first table as points."""
    series: dict[str, dict[str, tuple[int, int]]] = defaultdict(dict)
    for run in runs:
        key = f"{run.label} ({run.kind})"
        correct, parsed = series[run.condition].get(key, (0, 0))
        series[run.condition][key] = (correct + run.tally.correct, parsed + run.tally.parsed)
    groups = sorted({key for tallies in series.values() for key in tallies})
    return _point_plot("Accuracy per checkpoint × condition", groups, dict(sorted(series.items())))


def topic_png(runs: list) -> bytes | None:
    """Accuracy per topic (x) and checkpoint (series); None when no row carries a topic."""
    series: dict[str, dict[str, tuple[int, int]]] = defaultdict(dict)
    for run in runs:
        for topic, tally in run.groups.get("topic", {}).items():
            correct, parsed = series[run.label].get(topic, (0, 0))
            series[run.label][topic] = (correct + tally.correct, parsed + tally.parsed)
    if not series:
        return None
    groups = sorted({topic for tallies in series.values() for topic in tallies})
    return _point_plot("Accuracy per topic (review rows)", groups, dict(sorted(series.items())))


def write_figures(runs: list, report: Path) -> dict[str, str]:
    """Draw the figures for `runs` beside `report`; returns {figure: file name} of those written
    (none without runs). A figure that no longer applies is removed, so no stale picture stays."""
    pictures = {
        "checkpoint_condition": checkpoint_condition_png(runs) if runs else None,
        "topic": topic_png(runs) if runs else None,
    }
    written = {}
    for figure, png in pictures.items():
        path = figure_path(report, figure)
        if png is None:
            path.unlink(missing_ok=True)
            continue
        utils.atomic_write_bytes(path, png)
        written[figure] = path.name
    return written
