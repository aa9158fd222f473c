"""Benchmark of scripts/view_samples.py on held-out-sized data: the reference files (stage_3_tagged and
stage_3_tagged_more, six data models) replicated under new file names and ids into the 14 topic
folders until 131 MB; a topic page must open in a browser in under 3 s.

Prints the data size, the seconds of the viewer run (a subprocess, as a user runs it), the size of
every page, and, where Debian's chromium is installed, for the biggest topic page: the seconds of
`chromium --headless --dump-dom` (start, load, script run, dump), the page's own ready time (its
`data-ready-ms`, from navigation start to the first page rendered), the `data-sample-id` elements in
the DOM after the scripts ran, before and after the flag filter `#flag=FAIL`, and a screenshot; and
the seconds of the same command on about:blank (the browser's own start and exit).
Writes only in a temporary directory (and the screenshot where --screenshot says).
Usage: .venv/bin/python tests/benchmarks/bench_viewer.py [--megabytes 131] [--screenshot /tmp/viewer.png]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
REFERENCE = REPO_ROOT.parent / "shared" / "reference-data"
SOURCES = ("stage_3_tagged", "stage_3_tagged_more")
TOPICS = (
    "sycophancy",
    "reward_hacks",
    "specification_gaming",
    "confidence_assessment",
    "fabricated_statistics",
    "goal_misgeneralization",
    "jailbreak_attempts",
    "influence_seeking",
    "malicious_user_queries",
    "oversimplification",
    "unethical_instructions",
    "reasoning_metacognition",
    "strategic_awareness",
    "steganography",
)
TARGET_SECONDS = 3.0


def build_data_set(target: Path, megabytes: float) -> tuple[int, int]:
    """Copies of the reference files, dealt round the 14 topics, each under a new stem with its ids
    (`id_string` starts with the file stem) changed to match, until `megabytes`; (files, bytes)."""
    sources = sorted(path for name in SOURCES for path in (REFERENCE / name).glob("*/*.json"))
    if not sources:
        raise SystemExit(f"no reference data at {REFERENCE}")
    texts = {path: path.read_text(encoding="utf-8") for path in sources}
    files = size = copy = 0
    while size < megabytes * 1e6:
        for path, text in texts.items():
            stem = f"{path.stem}_copy{copy:03d}"
            destination = target / TOPICS[files % len(TOPICS)] / f"{stem}.json"
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_text(text.replace(f'"{path.stem}__idx', f'"{stem}__idx'), encoding="utf-8")
            files += 1
            size += destination.stat().st_size
            if size >= megabytes * 1e6:
                break
        copy += 1
    return files, size


def chromium_dom(chromium: str, url: str) -> tuple[str, float]:
    start = time.perf_counter()
    result = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", url],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return result.stdout, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--megabytes", type=float, default=131.0)
    parser.add_argument("--screenshot", type=Path, help="write a 1400x1000 screenshot of the biggest topic page")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir, index = Path(tmp) / "tagged", Path(tmp) / "viewer" / "samples.html"
        files, size = build_data_set(data_dir, args.megabytes)
        index.parent.mkdir()
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, str(REPO_ROOT / "scripts" / "view_samples.py"), str(data_dir), "--output", str(index)],
            check=True,
            cwd=REPO_ROOT,
        )
        seconds = time.perf_counter() - start
        load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
        print(
            f"data: {files} files, {size / 1e6:.1f} MB, {len(list(data_dir.iterdir()))} topics "
            f"({os.cpu_count()} cores, load average {load})"
        )
        print(f"view_samples.py: {seconds:.2f} s")
        pages = sorted(index.parent.glob("samples.*.html"), key=lambda path: path.stat().st_size)
        for page in pages:
            print(f"  {page.name:<45} {page.stat().st_size / 1e6:6.2f} MB")
        chromium = shutil.which("chromium")
        if chromium is None:
            print("chromium not installed: no browser timing")
            return
        biggest = pages[-1]
        _, blank = chromium_dom(chromium, "about:blank")
        print(f"chromium --dump-dom about:blank (the browser's start and exit alone): {blank:.2f} s wall")
        for fragment in ("", "#flag=FAIL"):
            dom, wall = chromium_dom(chromium, biggest.as_uri() + fragment)
            ready = re.search(r'data-ready-ms="(\d+)"', dom)
            shown = re.search(r'id="count"[^>]*>([^<]*)<', dom)
            print(
                f"chromium --dump-dom {biggest.name}{fragment}: {wall:.2f} s wall; page ready after "
                f"{int(ready.group(1)) / 1000 if ready else float('nan'):.2f} s; "
                f"{dom.count('data-sample-id=')} data-sample-id elements; status: {shown.group(1) if shown else '?'}"
            )
            if not fragment and ready:
                seconds_ready = int(ready.group(1)) / 1000
                print(
                    f"target: the biggest topic page is ready (navigation start to its first page rendered) in < "
                    f"{TARGET_SECONDS:.0f} s: {'OK' if seconds_ready < TARGET_SECONDS else 'TOO SLOW'}; the whole "
                    f"chromium command (its start, load, DOM dump, exit): "
                    f"{'OK' if wall < TARGET_SECONDS else 'TOO SLOW'}"
                )
        if args.screenshot:
            subprocess.run(
                [
                    chromium,
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    f"--screenshot={args.screenshot}",
                    "--window-size=1400,1000",
                    biggest.as_uri(),
                ],
                capture_output=True,
                check=True,
                timeout=120,
            )
            print(f"screenshot: {args.screenshot}")


if __name__ == "__main__":
    main()
