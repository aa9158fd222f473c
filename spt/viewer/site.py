"""Writing the viewer (docs/viewer.md): for stage-3 data (`<topic>/*.json`, tagged or not) or an export
folder, one self-contained page per topic, `<stem>.<topic>.html`, beside the index page `<output>`
(`<stem>.html`), which lists the topics with their counts. Reads the data one topic at a time (a
topic's JSON is kept until the index is written, the parsed files are not); writes each page
atomically, the index last.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote

from spt import utils
from spt.tagging.tags import stage_3_files
from spt.utils import display_path
from spt.viewer.export_folder import Export, is_export, read_export
from spt.viewer.page import TopicLink, index_page, script_json, topic_counts, topic_page
from spt.viewer.records import Problems, add_exported_samples, file_items

DEFAULT_PAGE_SIZE = 20  # cards (one data model's A and B answers to one item's task) per screen


class Written(NamedTuple):
    index: Path
    pages: dict[str, Path]  # topic -> its page
    samples: int
    problems: list[str]  # the parts skipped (viewer.records.Problems)


def page_path(index: Path, topic: str) -> Path:
    return index.with_name(f"{index.stem}.{topic}.html")


def write_pages(
    files: list[Path],
    data_dir: Path,
    output: Path,
    *,
    title: str,
    source: str,
    export: Export | None = None,
    page_size: int = DEFAULT_PAGE_SIZE,
) -> Written:
    """The viewer of the stage-3 `files` under `data_dir` (with an export's decisions and detection
    samples when given): one page per topic folder, and the index `output`."""
    by_topic: dict[str, list[Path]] = defaultdict(list)
    for path in files:
        by_topic[path.parent.name].append(path)
    links, payloads, problems = [], {}, Problems()
    for topic, paths in sorted(by_topic.items()):
        items = [
            record
            for path in paths
            for record in file_items(path, data_dir, problems, export.decisions if export else None)
        ]
        if export:
            add_exported_samples(items, [sample for sample in export.detection if sample["topic"] == topic])
        links.append(TopicLink(topic, quote(page_path(output, topic).name), topic_counts(items)))
        payloads[topic] = script_json(
            {"topic": topic, "page_size": page_size, "export": export is not None, "items": items}
        )
    pages = {}
    for link in links:
        pages[link.topic] = page_path(output, link.topic)
        utils.atomic_write_text(
            pages[link.topic], topic_page(title, link.topic, payloads.pop(link.topic), links, quote(output.name))
        )
    utils.atomic_write_text(output, index_page(title, source, links, export is not None, page_size, problems.lines))
    return Written(output, pages, sum(link.counts["samples"] for link in links), problems.lines)


def write_viewer(
    path: Path, output: Path, *, data_dir: Path | None = None, page_size: int = DEFAULT_PAGE_SIZE
) -> Written:
    """The viewer of `path`: an export folder (with the tagged data it names, or `data_dir`) or a
    folder of stage-3 data."""
    if is_export(path):
        export = read_export(path, data_dir)
        where = f"export {export.export_id}" if export.export_id else "export"
        source = f"{where} in {display_path(path)}, made from the tagged data in {display_path(export.data_dir)}"
        return write_pages(
            stage_3_files(export.data_dir),
            export.data_dir,
            output,
            title=f"Samples of {where}",
            source=source,
            export=export,
            page_size=page_size,
        )
    return write_pages(
        stage_3_files(path),
        path,
        output,
        title=f"Samples of {path.name}",
        source=f"stage-3 data in {display_path(path)}",
        page_size=page_size,
    )
