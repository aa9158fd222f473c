"""Tests of scripts/view_samples.py (viewer/, docs/viewer.md): the pages parsed as a browser's HTML parser
reads them (html.parser): every sample in the page's JSON with its texts intact, a sample holding
`</script><b>` unable to end the data's script element, no network reference, the index's counts and
links; untagged data, an export folder with its decisions, bad input, and the links of the analysis
and export reports. Where Debian's chromium is installed, the page is also run in it headless: the
DOM after the scripts ran holds one data-sample-id element per sample of the page, and a flag filter
in the URL changes the count."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from entry_scripts import run_main
from tagged_data import DANGEROUS, KEY, MODEL, OTHER_KEY, OTHER_MODEL, intervention, item, write_tagged
from test_export_decisions import run_export

from spt.tagging.tags import id_string


class Page(HTMLParser):
    """What a page holds: its start tags with their attributes and the text of each script element."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.scripts: list[tuple[dict, str]] = []
        self._script: dict | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._script = dict(attrs)
            self.scripts.append((self._script, ""))

    def handle_endtag(self, tag):
        if tag == "script":
            self._script = None

    def handle_data(self, data):
        if self._script is not None:
            attrs, text = self.scripts[-1]
            self.scripts[-1] = (attrs, text + data)

    def data(self) -> dict:
        [text] = [text for attrs, text in self.scripts if attrs.get("type") == "application/json"]
        return json.loads(text)


def topic_data(root: Path) -> None:
    """Sycophancy: three items, two models (24 samples, 7 FAIL per model: every B and item 2's first A);
    item 1's second B review holds DANGEROUS. Oversimplification: one A-only item (4 samples)."""
    items = [
        item(
            {KEY: intervention("PASS"), OTHER_KEY: intervention("PASS")},
            {KEY: intervention("FAIL"), OTHER_KEY: intervention("FAIL", R=DANGEROUS if index == 1 else "x")},
        )
        for index in range(3)
    ]
    items[2]["inferences"][MODEL]["A"]["interventions"][KEY]["P"] = "FAIL"
    items[2]["inferences"][OTHER_MODEL]["A"]["interventions"][KEY]["P"] = "FAIL"
    write_tagged(root, "sycophancy", "batch_s", items)
    write_tagged(
        root,
        "oversimplification",
        "batch_o",
        [item({KEY: intervention("PASS"), OTHER_KEY: intervention("AMBIGUOUS")}, None)],
    )


def view(capsys, *args) -> tuple[int, str, str]:
    code = run_main("scripts/view_samples.py", list(args))
    out, err = capsys.readouterr()
    return code, out, err


def all_samples(data: dict) -> list[dict]:
    return [sample for record in data["items"] for sample in record["samples"]]


def test_pages_hold_every_sample_and_a_script_end_in_a_sample_cannot_break_them(tmp_path, capsys):
    topic_data(tmp_path / "data")
    code, out, _ = view(capsys, tmp_path / "data", "--output", tmp_path / "site" / "samples.html")
    assert code == 0 and "28 samples in 2 topic pages" in out
    text = (tmp_path / "site" / "samples.sycophancy.html").read_text(encoding="utf-8")
    page = Page(text)
    # The data's script element ends where it should: two scripts (data, code), no <b> made of a sample.
    assert [attrs.get("type") for attrs, _ in page.scripts] == ["application/json", None]
    assert "b" not in [tag for tag, _ in page.tags]
    assert "</script><b>" not in text and text.count("</script>") == 2 and "\\u003c/script\\u003e" in text
    data = page.data()
    samples = all_samples(data)
    assert len(samples) == len({s["id"] for s in samples}) == 24 and len(data["items"]) == 6
    assert sum(s["P"] == "FAIL" for s in samples) == 14
    assert [s["R"] for s in samples if s["R"] == DANGEROUS] == [DANGEROUS, DANGEROUS]  # both models' B of item 1
    first = data["items"][0]
    assert (first["file"], first["index"], first["model"], first["T"]) == (
        "sycophancy/batch_s.json",
        0,
        MODEL,
        "Which fertiliser is best?",
    )
    assert first["answers"]["B"] == {"S": "response B", "tags": [], "output_tokens": 12}
    assert first["samples"][0] == {
        "id": id_string("batch_s", 0, MODEL, "A", KEY),
        "variant": "A",
        "key": KEY,
        "I": "<split-personality-token>Honest now.",
        "R": "I told them what they wanted.",
        "P": "PASS",
        "confidence": 5,
        "focus": "honesty",
        "difficulty_internal": None,
        "difficulty_external": None,
        "faulty_data": None,
        "thought_process": None,
        "error": None,
        "tags": [],
    }
    assert data["page_size"] == 20 and data["export"] is False
    # Self-contained: nothing is fetched (no src, no stylesheet link, no URL of another site).
    assert not [attrs for _, attrs in page.tags if "src" in attrs] and "<link" not in text
    assert not re.search(r"https?://", text)
    # The script marks every sample it renders with its id, variant and key.
    script = page.scripts[1][1]
    assert 'setAttribute("data-sample-id", s.id)' in script and 'setAttribute("data-variant"' in script


def test_index_counts_and_links_each_topic_page(tmp_path, capsys):
    topic_data(tmp_path / "data")
    assert view(capsys, tmp_path / "data", "--output", tmp_path / "site" / "samples.html", "--page_size", "2")[0] == 0
    index = Page((tmp_path / "site" / "samples.html").read_text())
    links = [attrs["href"] for tag, attrs in index.tags if tag == "a"]
    assert links == ["samples.oversimplification.html", "samples.sycophancy.html"]
    assert all((tmp_path / "site" / link).is_file() for link in links)
    rows = re.findall(
        r"<tr><td><a [^>]*>(\w+)</a></td>((?:<td>\d+</td>)+)</tr>", (tmp_path / "site" / "samples.html").read_text()
    )
    counts = {topic: [int(n) for n in re.findall(r"\d+", cells)] for topic, cells in rows}
    # items, samples, PASS, FAIL, AMBIGUOUS, ERROR
    assert counts == {"oversimplification": [1, 4, 2, 0, 2, 0], "sycophancy": [3, 24, 10, 14, 0, 0]}
    page = Page((tmp_path / "site" / "samples.sycophancy.html").read_text())
    assert page.data()["page_size"] == 2
    topics = [attrs["value"] for tag, attrs in page.tags if tag == "option"]
    assert topics == links  # the topic filter goes to the other pages


def test_untagged_stage_3_data_gets_the_ids_the_tagger_will_give(tmp_path, capsys):
    topic_data(tmp_path / "data")
    path = tmp_path / "data" / "sycophancy" / "batch_s.json"
    document = json.loads(path.read_text())
    for data_item in document["data"]:
        for entry in data_item["inferences"].values():
            for variant in entry.values():
                del variant["tags"]
                for record in variant["interventions"].values():
                    del record["tags"], record["id_string"]
    path.write_text(json.dumps(document))
    assert view(capsys, tmp_path / "data", "--output", tmp_path / "site" / "samples.html")[0] == 0
    samples = all_samples(Page((tmp_path / "site" / "samples.sycophancy.html").read_text()).data())
    assert samples[0]["id"] == id_string("batch_s", 0, MODEL, "A", KEY) and samples[0]["tags"] == []
    assert len({s["id"] for s in samples}) == 24


def test_an_export_folder_shows_what_the_export_did_to_each_sample(tmp_path, capsys):
    out = run_export(tmp_path)
    assert "Samples: [viewer/samples.html](viewer/samples.html)" in (out / "export_report.md").read_text()
    decisions = {
        json.loads(line)["id_string"]: json.loads(line)
        for line in (out / "sample_decisions.jsonl").read_text().splitlines()
    }
    for index in (out / "viewer" / "samples.html", tmp_path / "again" / "samples.html"):
        if not index.is_file():  # the export wrote its own; view_samples.py writes the same from the folder
            assert view(capsys, out, "--output", index)[0] == 0
        samples = all_samples(Page(index.with_name("samples.sycophancy.html").read_text()).data())
        assert len(samples) == 96 and {s["id"] for s in samples} <= set(decisions)
        labels = {s["id"]: s["decision"]["label"] for s in samples}
        assert labels[id_string("batch_s", 10, MODEL, "A", KEY)] == "dropped: tag confidence_below_4"
        assert labels[id_string("batch_s", 0, OTHER_MODEL, "A", KEY)] == "dropped: data_models"
        assert labels[id_string("batch_s", 12, MODEL, "A", KEY)].startswith("set aside: cites its system prompt")
        exported = [s for s in samples if s["decision"]["decision"] == "exported"]
        assert {s["decision"]["label"] for s in exported} == {"exported: train", "exported: validation"}
        assert all(s["decision"]["system_prompt_source"] == "none" for s in exported)  # the default removes them
        index_text = index.read_text()
        assert "<th>exported</th><th>set aside</th><th>dropped</th>" in index_text
        assert Page(index.with_name("samples.steganography.html").read_text()).data()["export"] is True


def test_bad_input_is_one_line_and_a_broken_file_is_listed_not_fatal(tmp_path, capsys):
    code, _, err = view(capsys, tmp_path / "missing", "--output", tmp_path / "site.html")
    assert code == 2 and err.count("\n") == 1 and "missing (PATH): no such folder" in err
    out = run_export(tmp_path)
    capsys.readouterr()
    (out / "sample_decisions.jsonl").unlink()
    code, _, err = view(capsys, out, "--output", tmp_path / "site.html")
    assert code == 2 and "no sample_decisions.jsonl" in err and err.count("\n") == 1
    topic_data(tmp_path / "data2")
    (tmp_path / "data2" / "sycophancy" / "broken.json").write_text("{not json")
    code, out, _ = view(capsys, tmp_path / "data2", "--output", tmp_path / "site" / "samples.html")
    assert code == 0 and "warning: 1 unreadable or malformed parts skipped" in out and "28 samples" in out
    assert "broken.json: invalid JSON" in (tmp_path / "site" / "samples.html").read_text()


def test_the_analysis_report_links_each_topic_page(tmp_path, capsys):
    topic_data(tmp_path / "data")
    code = run_main(
        "scripts/analyze_stage_3.py",
        ["--data_dir", tmp_path / "data", "--output_dir", tmp_path / "report", "--no_plots"],
    )
    capsys.readouterr()
    assert code == 0
    report = (tmp_path / "report" / "report.md").read_text()
    for link in ("viewer/samples.html", "viewer/samples.sycophancy.html", "viewer/samples.oversimplification.html"):
        assert f"]({link})" in report and (tmp_path / "report" / link).is_file()


CHROMIUM = shutil.which("chromium")


def dom_after_scripts(page: Path, fragment: str = "") -> str:
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", page.as_uri() + fragment],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
def test_in_chromium_the_page_renders_one_element_per_sample_and_the_flag_filter_changes_the_count(tmp_path, capsys):
    topic_data(tmp_path / "data")
    assert view(capsys, tmp_path / "data", "--output", tmp_path / "site" / "samples.html", "--page_size", "4")[0] == 0
    page = tmp_path / "site" / "samples.sycophancy.html"
    data = Page(page.read_text()).data()
    dom = dom_after_scripts(page)
    first_page = all_samples({"items": data["items"][:4]})
    assert sorted(re.findall(r'data-sample-id="([^"]+)"', dom)) == sorted(s["id"] for s in first_page)  # 16
    marked = re.findall(r'data-sample-id="([^"]+)" data-variant="([AB])" data-key="([^"]+)"', dom)
    assert sorted(marked) == sorted((s["id"], s["variant"], s["key"]) for s in first_page)
    assert "&lt;/script&gt;&lt;b&gt;bold&lt;/b&gt;" in dom and "<b>bold</b>" not in dom  # shown as text
    failing = dom_after_scripts(page, "#flag=FAIL")
    on_page = [s["id"] for s in first_page if s["P"] == "FAIL"]  # 8 of the 14 FAIL samples are on page 1
    assert sorted(re.findall(r'data-sample-id="([^"]+)"', failing)) == sorted(on_page) and len(on_page) == 8
    assert 'data-matching="14"' in failing and "FAIL (14)" in failing
