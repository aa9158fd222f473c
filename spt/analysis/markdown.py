"""`report.md` of the stage-3 analysis: the page a researcher reads first.

`render_report(report)` turns the assembled numbers (a dict built by analysis.run)
into Markdown: headline numbers, tables per topic / model / intervention version, what the
training filters drop, the plots, the example files and the sanity-check results. Pure
function: reads and writes nothing.
"""

from __future__ import annotations

from typing import Any

from spt.analysis.stats import top_tags
from spt.utils import markdown_table

MAX_FAILURES_LISTED = 30


def _fmt(value: Any, suffix: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.1f}{suffix}"
    return f"{value}{suffix}"


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    return markdown_table(header, rows) + [""]


def _top_tags(tags: dict[str, int]) -> str:
    return ", ".join(f"{tag} ({n})" for tag, n in top_tags(tags)) or "–"


def _headline(report: dict) -> list[str]:
    overall, items, consensus = report["overall"], report["items"], report["consensus"]
    filters, tokens = overall["training_filters"], overall["output_tokens"]["all"]
    flags = overall["flags"]
    total = overall["interventions"] or 1
    flag_text = ", ".join(f"{flag} {100 * n / total:.1f}%" for flag, n in flags.items())
    sanity = report["sanity"]
    failures = sum(check["failed"] for check in sanity["checks"].values())
    return [
        "## Headline numbers",
        "",
        f"- **Files:** {report['files_read']} read from `{report['data_dir']}`"
        + (f" (topics: {', '.join(report['topic_filter'])})" if report["topic_filter"] else ""),
        f"- **Items:** {items['items']} ({_fmt(items['with_b_pct'], '%')} with a B prompt); "
        f"**model responses:** {overall['variants']}; **interventions:** {overall['interventions']}",
        f"- **Target models ({len(report['models'])}):** {', '.join(f'`{m}`' for m in report['models']) or '–'}",
        f"- **Flags:** {flag_text or '–'}; **refused** by a stage-3 model (ERROR, `refused_in_stage_3`): "
        f"{overall['refused']}",
        f"- **A PASS:** {_fmt(overall['a_pass_pct'], '%')} · **B FAIL:** {_fmt(overall['b_fail_pct'], '%')} "
        "(share of the variant's interventions)",
        f"- **A/B separation:** consensus PASS on A and FAIL on B in {_fmt(consensus['separated_pct'], '%')} of "
        f"{consensus['responses_with_a_and_b']} responses with both; inverted (A FAIL, B PASS) in "
        f"{_fmt(consensus['inverted_pct'], '%')}",
        f"- **Cut off at the token limit:** {tokens.get('cut_offs_at_limit', 0)} responses "
        f"({_fmt(tokens.get('cut_off_pct'), '%')}); median output {_fmt(tokens.get('median'))} tokens",
        f"- **Review focus agreement** (selected focus among the intended ones): "
        f"{_fmt(overall['review_focus_agreement']['agree_pct'], '%')}",
        f"- **Training filters** (`{report['config_path']}`): {filters['kept']} of {filters['candidates']} candidate "
        f"samples kept ({_fmt(filters['kept_pct_of_candidates'], '%')}); {filters['kept_for_data_models']} of them "
        f"from the data models {', '.join(f'`{m}`' for m in report['data_models'])}",
        "- **Sanity checks:** " + ("all passed" if sanity["passed"] else f"{failures} failure(s), see below"),
        "",
    ]


def _topic_table(report: dict) -> list[str]:
    rows = []
    for topic, row in report["topic_comparisons"]["topics"].items():
        scope = report["per_topic"][topic]
        viewer = report["viewer"]
        samples = f"[samples]({viewer['pages'][topic]})" if viewer and topic in viewer["pages"] else "–"
        rows.append(
            [
                f"[{topic}](by_topic/{topic}_analysis.json)",
                row["items"],
                row["interventions"],
                _fmt(row["a_pass_pct"]),
                _fmt(row["b_fail_pct"]),
                _fmt(row["kept_by_filters_pct"]),
                row["kept_for_data_models"],
                _fmt(row["confidence_mean"]),
                _fmt(row["cut_off_pct"]),
                _top_tags(scope["intervention_tags"]),
                samples,
            ]
        )
    models = ", ".join(f"`{model}`" for model in report["data_models"])
    return [
        "## Per topic",
        "",
        '"kept by filters %" counts the candidate samples of every target model; "kept (data models)" counts '
        f"the kept samples of the config's `data_models` ({models}): what the export selects. The export may "
        "set more aside after that (reviews citing a removed prompt, samples a model cannot tell apart): its "
        "export_report.md gives what it wrote.",
        "",
    ] + _table(
        [
            "topic",
            "items",
            "interventions",
            "A PASS %",
            "B FAIL %",
            "kept by filters % (all models)",
            "kept (data models)",
            "mean confidence",
            "cut off %",
            "top tags",
            "viewer",
        ],
        rows,
    )


def _model_table(report: dict) -> list[str]:
    rows = [
        [
            f"`{model}`",
            scope["variants"],
            scope["interventions"],
            _fmt(scope["a_pass_pct"]),
            _fmt(scope["b_fail_pct"]),
            _fmt(scope["output_tokens"]["all"].get("cut_off_pct")),
            _fmt(scope["training_filters"]["kept_pct_of_candidates"]),
        ]
        for model, scope in report["per_model"].items()
    ]
    return ["## Per target model ([by_model.json](by_model.json))", ""] + _table(
        ["model", "responses", "interventions", "A PASS %", "B FAIL %", "cut off %", "kept by filters %"], rows
    )


def _version_table(report: dict) -> list[str]:
    rows = [
        [
            f"`{key}`",
            scope["interventions"],
            _fmt(scope["a_pass_pct"]),
            _fmt(scope["b_fail_pct"]),
            _fmt(scope["confidence_mean"]),
            _fmt(scope["review_focus_agreement"]["agree_pct"]),
            scope["intervention_tags"].get("training_data_leakage", 0),
            _fmt(scope["training_filters"]["kept_pct_of_candidates"])
            if scope["training_filters"]["candidates"]
            else "not selected",
        ]
        for key, scope in report["per_key"].items()
    ]
    return ["## Per intervention version ([by_intervention_version.json](by_intervention_version.json))", ""] + _table(
        [
            "intervention",
            "interventions",
            "A PASS %",
            "B FAIL %",
            "mean confidence",
            "focus agreement %",
            "leakage tags",
            "kept by filters %",
        ],
        rows,
    )


def _filter_table(report: dict) -> list[str]:
    filters = report["overall"]["training_filters"]
    rows = [
        [f"`{tag}`", hits, _fmt(100 * hits / filters["candidates"] if filters["candidates"] else None)]
        for tag, hits in sorted(filters["filter_hits"].items(), key=lambda kv: -kv[1])
    ]
    return [
        "## What the training filters drop",
        "",
        "Candidate samples carrying each tag of `tags_to_filter` (a sample can carry several).",
        "",
    ] + _table(["tag", "candidate samples", "% of candidates"], rows)


def _plots(report: dict) -> list[str]:
    if not report["plots"]:
        return ["## Plots", "", "(not drawn: --no-plots)", ""]
    lines = ["## Plots", ""]
    for name, relative in report["plots"].items():
        lines += [f"![{name}]({relative})", ""]
    return lines


def _examples(report: dict) -> list[str]:
    rows = [
        [f"[{category}](interesting_examples/{category}.json)", document.get("total", "–"), document["description"]]
        for category, document in report["examples"].items()
    ]
    return ["## Interesting examples", ""] + _table(["category", "total", "what"], rows)


def _sanity(report: dict) -> list[str]:
    sanity = report["sanity"]
    rows = [
        [f"`{name}`", check["checked"], check["failed"], check["description"]]
        for name, check in sanity["checks"].items()
    ]
    lines = ["## Sanity checks", ""] + _table(["check", "checked", "failed", "rule"], rows)
    failures = report["sanity_failures"]
    for failure in failures[:MAX_FAILURES_LISTED]:
        where = f"`{failure['file']}`"
        if failure["item_index"] is not None:
            where += f" item {failure['item_index']}"
        if failure["model"]:
            where += f" `{failure['model']}` {failure['variant']}"
        lines.append(f"- **{failure['check']}** {where}: {failure['detail']}")
    if len(failures) > MAX_FAILURES_LISTED:
        lines.append(f"- … and {len(failures) - MAX_FAILURES_LISTED} more in [sanity_checks.json](sanity_checks.json)")
    return lines + [""]


def _files(report: dict) -> list[str]:
    viewer = (
        f"- [{report['viewer']['index']}]({report['viewer']['index']}): the samples, one page per topic (A "
        "beside B, filters by flag, variant, data model, tag, intervention and text)"
        if report["viewer"]
        else "- no sample viewer (--no_viewer); `python scripts/view_samples.py DATA_DIR --output FILE.html` writes one"
    )
    return [
        "## Files",
        "",
        viewer,
        "- [summary_report.json](summary_report.json): all counts and distributions",
        "- [tag_analysis.json](tag_analysis.json): tag counts per level and co-occurrence, per topic",
        "- [topic_comparisons.json](topic_comparisons.json): one comparable row per topic",
        "- `by_topic/<topic>_analysis.json`, [by_model.json](by_model.json), "
        "[by_intervention_version.json](by_intervention_version.json)",
        "- [sanity_checks.json](sanity_checks.json): every failed check, by file and item",
        "",
    ]


def render_report(report: dict) -> str:
    lines = ["# Stage-3 data report", ""]
    for part in (_headline, _topic_table, _model_table, _version_table, _filter_table, _plots, _examples, _sanity):
        lines += part(report)
    lines += _files(report)
    return "\n".join(lines)
