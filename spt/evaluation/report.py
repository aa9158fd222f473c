"""Accuracy tables of evaluation results (docs/data_formats.md §4.5), behind scripts/analyze_evaluation_results.py.

Reads every `*.json` of a results folder and classifies each file (`classify`): a baseline has
`baseline_type`; an SPT run's kind comes from its review rows' `policy` labels (copied from the
export's samples): on-policy when every labelled review row is `on`, off-policy when none is,
mixed-policy otherwise (the share is shown). Only files whose rows carry no policy label (the
published result files) fall back to the name rule, labelled as such: `on-policy` in the
checkpoint name marks an on-policy model, every other file an off-policy one.
Accuracy = share of rows with `parsed_flag == expected_flag` among the rows whose flag parsed;
the parse rate, n and a 95% Wilson interval (evaluation/intervals.py) are reported beside it.
A run whose metadata says each sample was asked its own intervention (`intervention_source`
own) is marked: its I can give the flag away. Incomplete files
(`processing_complete` false or fewer rows than `total_samples`) are skipped with a warning;
files with identical `results` are one run, counted once, with a note. Extra fields (e.g. a
per-row `correct`, a `summary` block) are ignored.

`run(args)` prints the Markdown tables (per checkpoint × condition, per intervention name,
aggregate by condition, hp-only with/without LoRA-mask, on- vs off-policy, baselines vs SPT,
in-topic vs held-out-topic accuracy side by side (rows' `topic_set`), accuracy per topic, per
variant and per expected flag with intervals, off-policy detection accuracy by source model
(rows with `task` off_policy_detection, from the export's off_policy_eval.json) and a summary
of every run) and writes the same text to `args.output` (default DEFAULT_OUTPUT,
data/evaluation_report.md), with the pictures of evaluation/figures.py beside it (accuracy per
checkpoint × condition, per topic; linked under their tables). The report's first line is MARKER and it says which runs it shows
(baselines are left out unless asked for); an existing output file without the marker is never
overwritten (DataError before anything is read).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from spt import utils
from spt.evaluation.figures import write_figures
from spt.evaluation.intervals import METHOD, wilson_interval
from spt.shared_tools import DETECTION_TASK, STANDARD_LAYOUT, UNSEEN_INTENT

BASELINE, ON_POLICY, OFF_POLICY, MIXED_POLICY = "baseline", "on-policy SPT", "off-policy SPT", "mixed-policy SPT"
# Row fields the report breaks accuracy down by (a row without the field is left out of that table).
GROUP_FIELDS = ("topic_set", "topic", "variant", "expected_flag")
IN_TOPIC, HELDOUT_TOPIC = "in-topic", "held-out-topic"
DEFAULT_OUTPUT = utils.DATA_DIR / "evaluation_report.md"
# The first line of every report this script writes: the one kind of file it may overwrite.
MARKER = "<!-- written by scripts/analyze_evaluation_results.py; rerunning it replaces this file -->"
CONDITION_ORDER = ("trained_actual", "original_actual", "original_intended")


@dataclass
class Tally:
    """Rows, rows whose flag parsed, and parsed rows whose flag was the expected one."""

    rows: int = 0
    parsed: int = 0
    correct: int = 0

    def add(self, other: Tally) -> None:
        self.rows += other.rows
        self.parsed += other.parsed
        self.correct += other.correct

    @property
    def accuracy(self) -> float | None:
        return 100.0 * self.correct / self.parsed if self.parsed else None

    @property
    def parse_rate(self) -> float | None:
        return 100.0 * self.parsed / self.rows if self.rows else None

    def cell(self) -> str:
        """`accuracy% (n=parsed)` for a table cell."""
        return "–" if self.accuracy is None else f"{self.accuracy:.2f}% (n={self.parsed})"

    def interval(self) -> str:
        """The accuracy's 95% Wilson interval in percent, `low–high`, or – without parsed rows."""
        bounds = wilson_interval(self.correct, self.parsed)
        return "–" if bounds is None else f"{100 * bounds[0]:.1f}–{100 * bounds[1]:.1f}%"


@dataclass
class Run:
    """One evaluation result file (after de-duplication)."""

    file: str
    kind: str
    checkpoint: str
    step: str
    elicitation_type: str
    lora_patch: bool | None
    condition: str
    intervention_name: str
    tally: Tally
    duplicates: list[str] = field(default_factory=list)
    # Rows of off-policy detection (the export's off_policy_eval.json): (policy, S's model) -> tally.
    detection: dict[tuple[str, str], Tally] = field(default_factory=dict)
    # Rows by `layout` (standard, unseen_intent), kept only for runs holding unseen-intent rows.
    layouts: dict[str, Tally] = field(default_factory=dict)
    # What the kind was read from: the rows' policy labels, or the checkpoint name (fallback).
    kind_source: str = ""
    # "fixed", "own" (each sample's own I: can give the flag away), "input rows" or "?" (not recorded).
    intervention_source: str = "?"
    # GROUP_FIELDS field -> value -> tally, over the rows that carry the field.
    groups: dict[str, dict[str, Tally]] = field(default_factory=dict)
    # topic -> its topic_set, for rows that carry both.
    topic_sets: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.checkpoint} {self.step}".strip()


def tally_rows(rows: list[dict], where: str, default_expected: str | None) -> Tally:
    """Count rows, parsed rows and correct rows (parsed_flag == expected_flag)."""
    tally = Tally()
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise utils.DataError(f"{where}: results[{index}] is not an object")
        tally.rows += 1
        flag = row.get("parsed_flag")
        if flag is None or row.get("flag_parsed_successfully") is False:
            continue
        tally.parsed += 1
        tally.correct += flag == row.get("expected_flag", default_expected)
    return tally


def detection_tallies(rows: list[dict], default_expected: str | None) -> dict[tuple[str, str], Tally]:
    """Tallies of the off-policy detection rows (`task` off_policy_detection) by policy and S's model."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for row in rows:
        if isinstance(row, dict) and row.get("task") == DETECTION_TASK:
            groups[(str(row.get("policy")), str(row.get("S_source_model")))].append(row)
    return {key: tally_rows(group, "", default_expected) for key, group in sorted(groups.items())}


def layout_tallies(rows: list[dict], default_expected: str | None) -> dict[str, Tally]:
    """Tallies by `layout` (a row without one is standard); empty unless some row is unseen-intent."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        if isinstance(row, dict):
            groups[str(row.get("layout") or STANDARD_LAYOUT)].append(row)
    if UNSEEN_INTENT not in groups:
        return {}
    return {layout: tally_rows(group, "", default_expected) for layout, group in sorted(groups.items())}


def group_tallies(rows: list[dict], default_expected: str | None) -> dict[str, dict[str, Tally]]:
    """GROUP_FIELDS field -> value -> tally of the review rows (not off-policy detection) that carry it."""
    groups: dict[str, dict[str, list[dict]]] = {name: defaultdict(list) for name in GROUP_FIELDS}
    for row in rows:
        if not isinstance(row, dict) or row.get("task") == DETECTION_TASK:
            continue
        for name in GROUP_FIELDS:
            value = row.get(name, default_expected if name == "expected_flag" else None)
            if value is not None:
                groups[name][str(value)].append(row)
    return {
        name: {value: tally_rows(group, "", default_expected) for value, group in sorted(found.items())}
        for name, found in groups.items()
        if found
    }


def classify(metadata: dict, rows: list[dict]) -> tuple[str, str]:
    """(kind, what it was read from). A baseline has `baseline_type`. An SPT run: from the policy
    labels of its review rows (on-policy when every labelled one is `on`, off-policy when none is,
    mixed otherwise); a file whose rows carry no label falls back to the checkpoint name."""
    if "baseline_type" in metadata:
        return BASELINE, "baseline_type"
    labels = [
        row["policy"]
        for row in rows
        if isinstance(row, dict) and row.get("task") != DETECTION_TASK and row.get("policy") is not None
    ]
    if labels:
        on = sum(label == "on" for label in labels)
        kind = ON_POLICY if on == len(labels) else OFF_POLICY if on == 0 else MIXED_POLICY
        return kind, f"policy labels ({on} of {len(labels)} review rows on)"
    by_name = ON_POLICY if "on-policy" in str(metadata.get("checkpoint_name", "")) else OFF_POLICY
    return by_name, "checkpoint name (fallback: no policy labels in the rows)"


def intervention_source(metadata: dict) -> str:
    """The run's `intervention_source`; for older files, "own" when the intervention string says
    each sample's own intervention was asked, "fixed" for a published file with a fixed string."""
    if metadata.get("intervention_source"):
        return str(metadata["intervention_source"])
    text = str(metadata.get("intervention_string_original", metadata.get("intervention_string", "")))
    if text.startswith("(each sample's own intervention"):
        return "own"
    return "fixed" if text else "?"


def load_runs(directory: Path) -> tuple[list[Run], list[str]]:
    """Every complete, distinct run in `directory`, and the warnings/notes produced on the way."""
    if not directory.is_dir():
        raise utils.DataError(f"{utils.display_path(directory)}: no such directory")
    paths = sorted(directory.glob("*.json"))
    if not paths:
        raise utils.DataError(f"{utils.display_path(directory)}: no evaluation result files (*.json)")
    runs: list[Run] = []
    notes: list[str] = []
    seen: dict[str, Run] = {}
    for path in paths:
        where = utils.display_path(path)
        document = utils.read_json(path)
        metadata = utils.require_field(document, "metadata", where)
        results = utils.require_field(document, "results", where)
        if not isinstance(metadata, dict) or not isinstance(results, list):
            raise utils.DataError(f"{where}: 'metadata' must be an object and 'results' a list")
        total = metadata.get("total_samples")
        if metadata.get("processing_complete") is False or (isinstance(total, int) and len(results) < total):
            notes.append(
                f"warning: skipped incomplete file {path.name} ({len(results)} of {total} rows, "
                f"processing_complete={metadata.get('processing_complete')})"
            )
            continue
        digest = hashlib.sha256(orjson.dumps(results, option=orjson.OPT_SORT_KEYS)).hexdigest()
        if digest in seen:
            seen[digest].duplicates.append(path.name)
            notes.append(f"note: {path.name} has the same results as {Path(seen[digest].file).name}; counted once")
            continue
        tally = tally_rows(results, where, metadata.get("expected_flag"))
        kind, kind_source = classify(metadata, results)
        checkpoint = (
            f"baseline {metadata['baseline_type']}"
            if kind == BASELINE
            else str(metadata.get("checkpoint_name", path.stem))
        )
        lora_patch = metadata.get("lora_patch")
        run = Run(
            file=where,
            kind=kind,
            checkpoint=checkpoint,
            step=str(metadata.get("step") or ""),
            elicitation_type=str(metadata.get("elicitation_type") or ("–" if kind == BASELINE else "hp")),
            lora_patch=lora_patch if isinstance(lora_patch, bool) else None,
            condition=str(metadata.get("condition") or (results[0].get("condition") if results else "?")),
            intervention_name=str(metadata.get("intervention_name") or "?"),
            tally=tally,
            detection=detection_tallies(results, metadata.get("expected_flag")),
            layouts=layout_tallies(results, metadata.get("expected_flag")),
            kind_source=kind_source,
            intervention_source=intervention_source(metadata),
            groups=group_tallies(results, metadata.get("expected_flag")),
            topic_sets={
                str(row["topic"]): str(row["topic_set"])
                for row in results
                if row.get("topic") is not None and row.get("topic_set")
            },
        )
        seen[digest] = run
        runs.append(run)
    return runs, notes


def check_overwrite(path: Path) -> None:
    """DataError unless `path` is new or a report this script wrote (its first line is MARKER)."""
    if not path.exists():
        return
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            first_line = handle.readline().rstrip("\n")
    except OSError as exc:
        raise utils.DataError(f"{utils.display_path(path)}: cannot read ({exc.strerror})") from None
    if first_line != MARKER:
        raise utils.DataError(
            f"{utils.display_path(path)}: exists and was not written by this script (no marker "
            "line); not overwritten: choose another file with --output"
        )


def selection_note(runs: list[Run], args: argparse.Namespace) -> str:
    """Which runs the report shows, and how many baselines the default leaves out."""
    if args.baselines_only:
        return "Runs shown: baselines only (`--baselines_only`)."
    policy = "on-policy SPT" if args.on_policy_only else "off-policy SPT" if args.off_policy_only else "SPT"
    if args.include_baselines:
        return f"Runs shown: {policy} runs and baselines (`--include_baselines`)."
    hidden = sum(run.kind == BASELINE for run in runs)
    return (
        f"Runs shown: {policy} runs only. Baselines are left out by default ({hidden} baseline run(s) in "
        "the folder); `--include_baselines` adds them, `--baselines_only` shows only them."
    )


def select_runs(runs: list[Run], args: argparse.Namespace) -> list[Run]:
    """Apply the command-line filters (baselines are left out unless asked for)."""
    if args.baselines_only:
        return [run for run in runs if run.kind == BASELINE]
    spt_kinds = {ON_POLICY, OFF_POLICY, MIXED_POLICY}
    if args.on_policy_only or args.off_policy_only:
        spt_kinds = {ON_POLICY} if args.on_policy_only else {OFF_POLICY}
    return [run for run in runs if run.kind in spt_kinds or (args.include_baselines and run.kind == BASELINE)]


# ------------------------------------------------------------------------------ tables


def _conditions(runs: list[Run]) -> list[str]:
    present = {run.condition for run in runs}
    return [c for c in CONDITION_ORDER if c in present] + sorted(present - set(CONDITION_ORDER))


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return utils.markdown_table(header, rows) + [""]


def _pooled(runs: list[Run]) -> Tally:
    total = Tally()
    for run in runs:
        total.add(run.tally)
    return total


def grid_table(title: str, runs: list[Run], row_key, row_header: list[str]) -> list[str]:
    """Rows grouped by `row_key(run)` (a tuple of cells), one column per condition."""
    conditions = _conditions(runs)
    cells: dict[tuple, dict[str, Tally]] = defaultdict(lambda: defaultdict(Tally))
    for run in runs:
        cells[row_key(run)][run.condition].add(run.tally)
    rows = [list(key) + [cells[key][c].cell() if c in cells[key] else "–" for c in conditions] for key in sorted(cells)]
    return [f"## {title}", ""] + _table(row_header + conditions, rows)


def aggregate_table(title: str, groups: dict[str, list[Run]], note: str = "") -> list[str]:
    """Pooled accuracy, parse rate and n per group × condition."""
    rows = []
    for name, group in groups.items():
        for condition in _conditions(group):
            tally = _pooled([run for run in group if run.condition == condition])
            runs_in = sum(1 for run in group if run.condition == condition)
            rows.append([name, condition, _pct(tally.accuracy), _pct(tally.parse_rate), str(tally.rows), str(runs_in)])
    lines = [f"## {title}", ""] + ([note, ""] if note else [])
    if not rows:
        return lines + ["(no runs)", ""]
    return lines + _table(["group", "condition", "accuracy", "parse rate", "n", "runs"], rows)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}%"


INTERVENTION_SOURCES = {
    "fixed": "fixed",
    "own": "own I (gives the flag away)",
    "input rows": "input rows' own",
    "?": "not recorded",
}


def summary_table(runs: list[Run]) -> list[str]:
    rows = [
        [
            run.kind,
            run.checkpoint,
            run.step or "–",
            run.elicitation_type,
            "–" if run.lora_patch is None else str(run.lora_patch).lower(),
            run.condition,
            run.intervention_name,
            str(run.tally.rows),
            _pct(run.tally.parse_rate),
            _pct(run.tally.accuracy),
            run.tally.interval(),
            INTERVENTION_SOURCES.get(run.intervention_source, run.intervention_source),
            run.kind_source,
            Path(run.file).name + (f" (+{len(run.duplicates)} identical)" if run.duplicates else ""),
        ]
        for run in sorted(runs, key=lambda r: (r.kind, r.checkpoint, r.step, r.condition, r.intervention_name))
    ]
    own = [run for run in runs if run.intervention_source == "own"]
    warning = (
        [
            f"Warning: {len(own)} run(s) asked each sample its own intervention I, which can give the flag "
            "away: their accuracy is not a measure of the model.",
            "",
        ]
        if own
        else []
    )
    return (
        [
            "## Summary of runs",
            "",
            f"95% CI: {METHOD} over the rows whose flag parsed. Kind from: the rows' "
            "policy labels (on-policy only when every labelled review row is on), or the checkpoint name where "
            "the rows carry none.",
            "",
        ]
        + warning
        + _table(
            [
                "kind",
                "checkpoint",
                "step",
                "elicitation",
                "lora_patch",
                "condition",
                "intervention",
                "n",
                "parse rate",
                "accuracy",
                "95% CI",
                "intervention asked",
                "kind from",
                "file",
            ],
            rows,
        )
    )


def detection_table(runs: list[Run]) -> list[str]:
    """Off-policy detection accuracy per run and S's model: the on-policy rows (the data model's own
    answers, expected PASS) first, then each source model's answers (expected FAIL) and all of them pooled."""
    rows = []
    for run in sorted((run for run in runs if run.detection), key=lambda r: (r.label, r.file)):
        on = {key: tally for key, tally in run.detection.items() if key[0] == "on"}
        off = {key: tally for key, tally in run.detection.items() if key[0] != "on"}
        pooled = Tally()
        for tally in off.values():
            pooled.add(tally)
        entries = [(f"{policy} (own answer)", model, tally) for (policy, model), tally in on.items()]
        entries += [(policy, model, tally) for (policy, model), tally in off.items()]
        entries += [("off", "(all sources)", pooled)] if len(off) > 1 else []
        rows += [
            [
                run.label,
                policy,
                model,
                str(t.rows),
                str(t.parsed),
                str(t.rows - t.parsed),
                str(t.correct),
                _pct(t.accuracy),
            ]
            for policy, model, t in entries
        ]
    if not rows:
        return []
    return [
        "## Off-policy detection accuracy by source model",
        "",
        "Rows of the export's off_policy_eval.json (`task` off_policy_detection): on = the data model's own "
        "answer (expected PASS), off = another model's answer (expected FAIL). Accuracy = parsed flag equals "
        "expected, among parsed rows; parse failures are counted beside it.",
        "",
    ] + _table(["checkpoint", "policy", "S's model", "rows", "parsed", "parse failures", "correct", "accuracy"], rows)


def layout_table(runs: list[Run]) -> list[str]:
    """Accuracy per run and layout, for runs that hold unseen-intent rows (S not shown)."""
    rows = [
        [run.label, layout, str(t.rows), _pct(t.parse_rate), _pct(t.accuracy)]
        for run in sorted((run for run in runs if run.layouts), key=lambda r: (r.label, r.file))
        for layout, t in run.layouts.items()
    ]
    if not rows:
        return []
    return [
        "## Accuracy by layout: standard vs unseen intent",
        "",
        "unseen_intent rows: the model was shown no response (or only its first tokens) and had to report "
        "what it was about to do.",
        "",
    ] + _table(["checkpoint", "layout", "rows", "parse rate", "accuracy"], rows)


def topic_set_table(runs: list[Run]) -> list[str]:
    """In-topic and held-out-topic accuracy side by side, per run with held-out-topic rows."""
    header = ["checkpoint"]
    for name in (IN_TOPIC, HELDOUT_TOPIC):
        header += [f"{name} n", f"{name} accuracy", f"{name} 95% CI"]
    rows = []
    for run in sorted(
        (run for run in runs if HELDOUT_TOPIC in run.groups.get("topic_set", {})), key=lambda r: (r.label, r.file)
    ):
        cells = [run.label]
        for name in (IN_TOPIC, HELDOUT_TOPIC):
            tally = run.groups["topic_set"].get(name, Tally())
            cells += [str(tally.parsed), _pct(tally.accuracy), tally.interval()]
        rows.append(cells)
    if not rows:
        return []
    return [
        "## In-topic vs held-out-topic accuracy",
        "",
        "in-topic: the export's validation items (topics trained on); held-out-topic: items of topics outside "
        "train_topics (the export's heldout_topics.jsonl). n = rows whose flag parsed.",
        "",
    ] + _table(header, rows)


GROUP_TITLES = {
    "topic": "Accuracy by topic",
    "variant": "Accuracy by variant (A: unbiased prompt, B: biased)",
    "expected_flag": "Accuracy by expected flag",
}


def picture(figures: dict[str, str], figure: str, caption: str) -> list[str]:
    """The Markdown link of a picture written beside the report (evaluation/figures.py), if it was."""
    return [f"![{caption}]({figures[figure]})", ""] if figure in figures else []


def group_table(runs: list[Run], name: str) -> list[str]:
    """Accuracy per run and value of the row field `name`, with its interval (runs without the field left out)."""
    rows = []
    for run in sorted((run for run in runs if name in run.groups), key=lambda r: (r.label, r.file)):
        for value, tally in run.groups[name].items():
            extra = [run.topic_sets.get(value, "–")] if name == "topic" else []
            rows.append(
                [run.label, value, *extra, str(tally.rows), str(tally.parsed), _pct(tally.accuracy), tally.interval()]
            )
    if not rows:
        return []
    header = (
        ["checkpoint", name] + (["topic set"] if name == "topic" else []) + ["rows", "parsed", "accuracy", "95% CI"]
    )
    return [
        f"## {GROUP_TITLES[name]}",
        "",
        f"Review rows only; accuracy among rows whose flag parsed; 95% CI: {METHOD}.",
        "",
    ] + _table(header, rows)


def render(
    runs: list[Run], notes: list[str], directory: Path, selection: str, figures: dict[str, str] | None = None
) -> str:
    """The report's Markdown; `figures` names the pictures written beside it ({figure: file name})."""
    figures = figures or {}
    lines = [
        MARKER,
        "# Evaluation results",
        "",
        f"Source: `{utils.display_path(directory)}`. Accuracy = parsed_flag == expected_flag among rows whose "
        "flag parsed; cells show accuracy (n = rows whose flag parsed).",
        "",
        selection,
        "",
    ]
    if notes:
        lines += [f"- {note}" for note in notes] + [""]
    if not runs:
        return "\n".join(lines + ["No runs match the filters.", ""])
    spt = [run for run in runs if run.kind != BASELINE]
    baselines = [run for run in runs if run.kind == BASELINE]
    lines += grid_table(
        "Accuracy per checkpoint × condition", runs, lambda r: (r.label, r.kind), ["checkpoint", "kind"]
    )
    lines += picture(figures, "checkpoint_condition", "Accuracy per checkpoint × condition, 95% intervals")
    lines += grid_table(
        "Accuracy per checkpoint × intervention × condition",
        runs,
        lambda r: (r.label, r.intervention_name),
        ["checkpoint", "intervention"],
    )
    groups = {name: group for name, group in (("SPT runs", spt), ("baseline runs", baselines)) if group}
    lines += aggregate_table("Aggregate by condition", groups, "Rows of all runs of the group pooled.")
    hp = [run for run in spt if run.elicitation_type == "hp"]
    lines += aggregate_table(
        "hp elicitation: with vs without LoRA-mask",
        {
            f"lora_patch={str(flag).lower()}": [run for run in hp if run.lora_patch is flag]
            for flag in (True, False)
            if any(run.lora_patch is flag for run in hp)
        },
        "SPT runs with elicitation_type hp only.",
    )
    lines += aggregate_table(
        "On- vs off-policy SPT",
        {
            kind: [run for run in spt if run.kind == kind]
            for kind in (ON_POLICY, MIXED_POLICY, OFF_POLICY)
            if any(run.kind == kind for run in spt)
        },
        "Kind from the rows' policy labels where they carry them (see the summary's 'kind from').",
    )
    if baselines:
        groups = {
            checkpoint: [run for run in baselines if run.checkpoint == checkpoint]
            for checkpoint in sorted({run.checkpoint for run in baselines})
        }
        if spt:
            groups["SPT (all selected)"] = spt
        lines += aggregate_table("Baselines vs SPT", groups)
    lines += topic_set_table(runs)
    for name in ("topic", "variant", "expected_flag"):
        lines += group_table(runs, name)
        if name == "topic":
            lines += picture(figures, "topic", "Accuracy per topic and checkpoint, 95% intervals")
    lines += layout_table(runs)
    lines += detection_table(runs)
    lines += summary_table(runs)
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Load, filter, print and write the report; 0 (also when the filters leave nothing)."""
    check_overwrite(args.output)
    runs, notes = load_runs(args.dir)
    for note in notes:
        print(note, file=sys.stderr)
    selected = select_runs(runs, args)
    text = render(selected, notes, args.dir, selection_note(runs, args), write_figures(selected, args.output))
    utils.atomic_write_text(args.output, text + "\n")
    print(text)
    print(f"written to {utils.display_path(args.output)}", file=sys.stderr)
    return 0
