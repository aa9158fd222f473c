"""The stage-3 analysis run behind scripts/analyze_stage_3.py: collect once, compute every
number, write every output file.

Reads every `<data_dir>/<topic>/*.json` (tagged stage-3 data) once, and the training config
to count what the training filters keep. Writes into `<output_dir>`: report.md,
summary_report.json, tag_analysis.json, topic_comparisons.json, by_topic/<topic>_analysis.json,
by_model.json, by_intervention_version.json, interesting_examples/<category>.json,
sanity_checks.json, plots/*.png and, unless --no_viewer, the sample viewer viewer/samples.html with one
page per topic (viewer.site; report.md links them) (the list with what each holds: analyze_stage_3.py). The
files are written, after all the analysis succeeded, into a fresh sibling folder
`.<name>.analysis-new-<pid>` that then replaces `<output_dir>` whole (utils.swap_in), so a full
disk or a kill leaves the complete old report or the complete new one, never a mix. A folder
holding anything besides a report is never replaced (`check_report_folder`).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from spt import utils
from spt.analysis.collect import SANITY_CHECKS, collect
from spt.analysis.examples import CATEGORIES, build_examples
from spt.analysis.markdown import render_report
from spt.analysis.stats import (
    FLAG_ORDER,
    annotate,
    confidence_by_variant,
    consensus_summary,
    counts_by,
    focus_confusion,
    group_by,
    item_counts,
    models,
    sanity_summary,
    scope_stats,
    tag_analysis,
    topic_comparisons,
    version_order,
)
from spt.tagging.tags import TAG_ORDER
from spt.training_config import load_training_config
from spt.viewer.site import write_pages

VIEWER_INDEX = "viewer/samples.html"

EXAMPLES_PER_TOPIC = 5
EXAMPLES_PER_TOPIC_DETAILED = 25
LISTED_EXAMPLES = 20
LISTED_EXAMPLES_DETAILED = 100


def find_files(data_dir: Path, topic_filter: list[str]) -> list[Path]:
    """`<data_dir>/<topic>/*.json` in sorted order, restricted to `topic_filter` when given."""
    if not data_dir.is_dir():
        raise utils.DataError(f"{utils.display_path(data_dir)}: no such directory (run tag_stage_3_data.py first)")
    folders = sorted(p for p in data_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    if topic_filter:
        missing = [t for t in topic_filter if not (data_dir / t).is_dir()]
        if missing:
            raise utils.DataError(f"{utils.display_path(data_dir / missing[0])}: no such topic folder (--topic)")
        folders = [data_dir / t for t in sorted(set(topic_filter))]
    files = [path for folder in folders for path in sorted(folder.glob("*.json"))]
    if not files:
        raise utils.DataError(f"{utils.display_path(data_dir)}: no tagged files (<topic>/*.json) found")
    return files


def build_report(args: argparse.Namespace, config: dict, files: list[Path]) -> dict:
    """Collect once and compute every number the output files hold."""
    categories = list(CATEGORIES) if "all" in args.examples else list(dict.fromkeys(args.examples))
    per_topic_limit = EXAMPLES_PER_TOPIC_DETAILED if args.detailed else EXAMPLES_PER_TOPIC
    coll = collect(files, detailed=args.detailed, per_topic_limit=per_topic_limit, jobs=args.jobs)
    samples = annotate(coll, config)
    per_topic = {
        topic: scope_stats(group, coll, config, topic=topic) for topic, group in group_by(samples, "topic").items()
    }
    for topic, scope in per_topic.items():
        scope["review_focus_mismatches"] = focus_confusion(coll, topic)
        scope["a_b_consensus"] = consensus_summary(coll, topic)
    return {
        "data_dir": utils.display_path(args.data_dir),
        "config_path": utils.display_path(args.config),
        "topic_filter": sorted(set(args.topic)),
        "data_models": config["data_models"],
        "files_read": coll.files_read,
        "untagged": coll.untagged,
        "models": models(coll),
        "items": item_counts(coll),
        "overall": scope_stats(samples, coll, config),
        "consensus": consensus_summary(coll),
        "per_topic": per_topic,
        "per_model": {
            model: scope_stats(group, coll, config, model=model) for model, group in group_by(samples, "model").items()
        },
        "per_key": {
            key: scope_stats(group, coll, config, by_key=True)
            for key, group in sorted(group_by(samples, "key").items(), key=lambda kv: version_order(kv[0]))
        },
        "counts": {
            "by_topic": counts_by(coll, "topic"),
            "by_model": counts_by(coll, "model"),
            "by_variant": counts_by(coll, "variant"),
            "by_flag": counts_by(coll, "flag", FLAG_ORDER),
            "by_intervention": counts_by(coll, "key"),
        },
        "focus_mismatches": focus_confusion(coll),
        "confidence_by_variant": confidence_by_variant(coll),
        "tag_analysis": tag_analysis(samples, coll),
        "topic_comparisons": topic_comparisons(coll, per_topic),
        "examples": build_examples(
            coll,
            categories,
            detailed=args.detailed,
            limit=LISTED_EXAMPLES_DETAILED if args.detailed else LISTED_EXAMPLES,
        ),
        "sanity": sanity_summary(coll, SANITY_CHECKS),
        "sanity_failures": coll.sanity_failures,
    }


def summary_document(report: dict, config: dict) -> dict:
    overall = report["overall"]
    return {
        "data_dir": report["data_dir"],
        "files_read": report["files_read"],
        "topic_filter": report["topic_filter"],
        "counts": {
            "items": report["items"]["items"],
            "model_responses": overall["variants"],
            "interventions": overall["interventions"],
            **report["counts"],
        },
        "a_b_balance": {**report["items"], "consensus": report["consensus"]},
        "output_tokens": overall["output_tokens"],
        "confidence": overall["confidence"],
        "confidence_by_variant": report["confidence_by_variant"],
        "confidence_mean": overall["confidence_mean"],
        "detection_difficulty": {
            "internal": overall["detection_difficulty_internal"],
            "external": overall["detection_difficulty_external"],
        },
        "review_focus_agreement": {
            **overall["review_focus_agreement"],
            "most_frequent_mismatches": report["focus_mismatches"],
        },
        "flags": {
            "all": overall["flags"],
            "by_variant": overall["flags_by_variant"],
            "a_pass_pct": overall["a_pass_pct"],
            "b_fail_pct": overall["b_fail_pct"],
        },
        "quality_by_topic": {
            topic: {
                "a_pass_pct": scope["a_pass_pct"],
                "b_fail_pct": scope["b_fail_pct"],
                "kept_by_filters_pct": scope["training_filters"]["kept_pct_of_candidates"],
                "kept_by_filters": scope["training_filters"]["kept"],
                "kept_for_data_models": scope["training_filters"]["kept_for_data_models"],
                "candidates": scope["training_filters"]["candidates"],
            }
            for topic, scope in report["per_topic"].items()
        },
        "training_filters": {
            "config": report["config_path"],
            "intervention_types": config["intervention_types"],
            "train_topics": config["train_topics"],
            "validation_topics": config["validation_topics"],
            "data_models": config["data_models"],
            "tags_to_filter": config["tags_to_filter"],
            **overall["training_filters"],
        },
        "sanity_checks": report["sanity"],
    }


def write_outputs(
    output_dir: Path, report: dict, config: dict, *, plots: bool, viewer: tuple[list[Path], Path] | None = None
) -> None:
    """Write every output file (plots and the viewer of `viewer` = (files, data folder) first: report.md
    links them)."""
    report["viewer"] = None
    if viewer is not None:
        files, data_dir = viewer
        written = write_pages(
            files,
            data_dir,
            output_dir / VIEWER_INDEX,
            title=f"Samples of {data_dir.name}",
            source=f"stage-3 data in {utils.display_path(data_dir)}",
        )
        report["viewer"] = {
            "index": VIEWER_INDEX,
            "pages": {topic: path.relative_to(output_dir).as_posix() for topic, path in written.pages.items()},
        }
    report["plots"] = {}
    if plots:
        from spt.analysis.plots import write_plots  # matplotlib is slow to import: only when drawing

        written = write_plots(
            output_dir / "plots", report["per_topic"], report["overall"], report["confidence_by_variant"]
        )
        report["plots"] = {name: path.relative_to(output_dir).as_posix() for name, path in written.items()}
    utils.atomic_write_json(output_dir / "summary_report.json", summary_document(report, config))
    utils.atomic_write_json(output_dir / "tag_analysis.json", report["tag_analysis"])
    utils.atomic_write_json(output_dir / "topic_comparisons.json", report["topic_comparisons"])
    for topic, scope in report["per_topic"].items():
        utils.atomic_write_json(output_dir / "by_topic" / f"{topic}_analysis.json", {"topic": topic, **scope})
    utils.atomic_write_json(output_dir / "by_model.json", report["per_model"])
    utils.atomic_write_json(output_dir / "by_intervention_version.json", report["per_key"])
    for category, document in report["examples"].items():
        utils.atomic_write_json(output_dir / "interesting_examples" / f"{category}.json", document, ensure_ascii=False)
    utils.atomic_write_json(
        output_dir / "sanity_checks.json", {**report["sanity"], "failures": report["sanity_failures"]}
    )
    utils.atomic_write_text(output_dir / "report.md", render_report(report))


def print_summary(report: dict, output_dir: Path) -> None:
    overall = report["overall"]
    print(
        f"{report['files_read']} files, {report['items']['items']} items, {overall['variants']} model responses, "
        f"{overall['interventions']} interventions"
    )
    print(
        f"A PASS {overall['a_pass_pct']}% · B FAIL {overall['b_fail_pct']}% · kept by training filters "
        f"{overall['training_filters']['kept']} of {overall['training_filters']['candidates']} candidates"
    )
    for name, check in report["sanity"]["checks"].items():
        status = "ok" if not check["failed"] else f"FAILED {check['failed']}"
        print(f"sanity {name}: {check['checked']} checked, {status}")
    for failure in report["sanity_failures"][:10]:
        print(f"  {failure['check']}: {failure['file']} item {failure['item_index']}: {failure['detail']}")
    print(f"report: {utils.display_path(output_dir / 'report.md')}")


STAGING_KIND = "analysis"
REPORT_NAMES = {
    "report.md",
    "summary_report.json",
    "tag_analysis.json",
    "topic_comparisons.json",
    "by_model.json",
    "by_intervention_version.json",
    "sanity_checks.json",
    "by_topic",
    "interesting_examples",
    "plots",
    "viewer",
}


def check_report_folder(output_dir: Path) -> None:
    """The report replaces `output_dir` whole: refuse one that holds anything else."""
    if output_dir.is_dir():
        foreign = sorted(
            path.name
            for path in output_dir.iterdir()
            if path.name not in REPORT_NAMES and not path.name.endswith(".tmp")
        )
        if foreign:
            raise utils.DataError(
                f"{utils.display_path(output_dir)} (--output_dir): holds {', '.join(foreign[:5])} "
                "besides an analysis report; the report replaces the whole folder, so give an "
                "empty or report-only folder"
            )


def replace_report(
    output_dir: Path, report: dict, config: dict, *, plots: bool, viewer: tuple[list[Path], Path] | None = None
) -> None:
    """Write the report set beside `output_dir` and swap it in whole."""
    utils.remove_staging_leftovers(output_dir, STAGING_KIND)
    staging = utils.staging_dir(output_dir, STAGING_KIND)
    try:
        staging.mkdir()
        write_outputs(staging, report, config, plots=plots, viewer=viewer)
        utils.swap_in(staging, output_dir, STAGING_KIND)
    except OSError as exc:  # a full disk: one line naming the report folder (utils.exit_on_data_error)
        exc.filename = str(output_dir)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def check_tags(report: dict, args: argparse.Namespace) -> None:
    """Untagged data is refused (its filter counts would mean nothing); tag names the tagger never
    writes (a hand edit, a typo) are refused with --strict and a counted warning without."""
    interventions = report["overall"]["interventions"]
    where = utils.display_path(args.data_dir)
    if interventions and report["untagged"] == interventions:
        raise utils.DataError(
            f"{where} (--data_dir): none of the {interventions} interventions is tagged; run "
            "scripts/tag_stage_3_data.py first and analyse its output (default data/stage_3_tagged)"
        )
    if report["untagged"]:
        print(
            f"warning: {report['untagged']} of {interventions} interventions in {where} carry no tags "
            "(rerun scripts/tag_stage_3_data.py)"
        )
    block = report["tag_analysis"]["all"]
    unknown = {
        tag: n
        for level in ("intervention_level", "variant_level")
        for tag, n in block[level].items()
        if tag not in TAG_ORDER
    }
    if unknown:
        listed = ", ".join(f"{tag!r} ({n})" for tag, n in sorted(unknown.items()))
        line = f"{where}: tag(s) the tagger never writes: {listed}; a hand edit? rerun scripts/tag_stage_3_data.py"
        if args.strict:
            raise utils.DataError(line)
        print(f"warning: {line}")


def run(args: argparse.Namespace) -> int:
    """The whole analysis; 1 when a sanity check failed and `args.strict`, else 0."""
    check_report_folder(args.output_dir)
    config = load_training_config(args.config)
    files = find_files(args.data_dir, args.topic)
    report = build_report(args, config, files)
    check_tags(report, args)
    replace_report(
        args.output_dir,
        report,
        config,
        plots=not args.no_plots,
        viewer=None if args.no_viewer else (files, args.data_dir),
    )
    print_summary(report, args.output_dir)
    return 1 if args.strict and not report["sanity"]["passed"] else 0
