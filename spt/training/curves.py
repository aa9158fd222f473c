"""`<output_dir>/curves.png`: the training curves of a run drawn from its metrics.jsonl rows
(run_metrics.py), four panels against step: train loss (mean over each logged interval) with the
validation loss at the checkpoints, the learning rate, the validation flag accuracy (generated
reviews asked the fixed intervention) with its 95 % Wilson interval and the share of reviews whose
flag parsed, and tokens/s (over each logged interval).

matplotlib's Figure without pyplot (drawn by Agg, no display needed); the PNG is written atomically
(utils.atomic_write_bytes). Reads nothing; writes only the PNG.
"""

from __future__ import annotations

import io
from pathlib import Path

from spt.utils import atomic_write_bytes


def _points(rows: list[dict], key: str) -> tuple[list[int], list[float]]:
    chosen = [row for row in rows if row.get(key) is not None]
    return [row["step"] for row in chosen], [row[key] for row in chosen]


def write_curves(rows: list[dict], path: Path, title: str) -> None:
    """Draw `rows` (metrics.jsonl) into the PNG at `path`."""
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, the PNG is drawn by Agg
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(11, 7.5), layout="constrained")
    figure.suptitle(title)
    loss, lr, accuracy, speed = figure.subplots(2, 2, sharex=True).flat

    loss.plot(*_points(rows, "loss"), label="train (mean over logged interval)", color="tab:blue")
    loss.plot(*_points(rows, "validation_loss"), "o-", label="validation", color="tab:orange")
    loss.set_ylabel("mean token loss")
    loss.legend()

    lr.plot(*_points(rows, "lr"), color="tab:green")
    lr.set_ylabel("learning rate")
    lr.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))

    reviewed = [row for row in rows if row.get("flag_accuracy_reviews")]
    judged = [row for row in reviewed if row["flag_accuracy"] is not None]
    if judged:
        steps = [row["step"] for row in judged]
        shares = [row["flag_accuracy"] for row in judged]
        below = [max(share - row["flag_accuracy_ci95"][0], 0.0) for share, row in zip(shares, judged)]
        above = [max(row["flag_accuracy_ci95"][1] - share, 0.0) for share, row in zip(shares, judged)]
        accuracy.errorbar(
            steps,
            shares,
            yerr=[below, above],
            fmt="o-",
            capsize=4,
            color="tab:red",
            label=f"flag accuracy, fixed intervention (n={judged[-1]['flag_accuracy_parsed']} last)",
        )
    if reviewed:
        accuracy.plot(
            [row["step"] for row in reviewed],
            [row["flag_accuracy_parsed"] / row["flag_accuracy_reviews"] for row in reviewed],
            "s--",
            color="tab:gray",
            label="share of reviews whose flag parsed",
        )
        accuracy.legend()
    if not judged:
        last = reviewed[-1] if reviewed else None
        accuracy.text(
            0.5,
            0.5,
            f"no flag parsed (last: {last['flag_accuracy_parsed']} of "
            f"{last['flag_accuracy_reviews']} reviews at step {last['step']})"
            if last
            else "no flag-accuracy check\n(no validation file, or validation_review_samples 0)",
            ha="center",
            va="center",
            transform=accuracy.transAxes,
        )
    accuracy.set_ylim(-0.02, 1.02)
    accuracy.set_ylabel("validation flag accuracy (95% Wilson)")
    accuracy.set_xlabel("step")

    speed.plot(*_points(rows, "tokens_per_s"), color="tab:purple")
    speed.set_ylabel("tokens/s")
    speed.set_xlabel("step")
    for axes in (loss, lr, accuracy, speed):
        axes.grid(alpha=0.3)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    atomic_write_bytes(path, buffer.getvalue())
