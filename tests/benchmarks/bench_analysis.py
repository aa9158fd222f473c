"""Benchmark of scripts/analyze_stage_3.py: the full analysis of a >= 150 MB tagged data set
(the reference files replicated into a temporary directory) must take under 10 s on 2 cores.

Prints the data-set size, the machine's load average (the numbers only mean something on an
idle machine) and the seconds of a full run, a run without plots and a single-process run
(each a subprocess, as a user runs it, imports included), wall-clock and CPU seconds.
Reads ../shared/reference-data/stage_3_tagged; writes only in a temporary
directory. Usage: .venv/bin/python tests/benchmarks/bench_analysis.py [--megabytes 150]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
REFERENCE = REPO_ROOT.parent / "shared" / "reference-data" / "stage_3_tagged"
TARGET_SECONDS = 10.0


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def build_data_set(target: Path, megabytes: float) -> tuple[int, int]:
    """Copy the reference files under new names until `megabytes` are reached; (files, bytes)."""
    sources = sorted(REFERENCE.glob("*/*.json"))
    if not sources:
        raise SystemExit(f"no reference data at {REFERENCE}")
    files = size = 0
    copy = 0
    while size < megabytes * 1e6:
        for source in sources:
            destination = target / source.parent.name / f"{source.stem}_copy{copy:03d}.json"
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, destination)
            files += 1
            size += destination.stat().st_size
        copy += 1
    return files, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--megabytes", type=float, default=150.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir, output_dir = Path(tmp) / "tagged", Path(tmp) / "analysis"
        files, size = build_data_set(data_dir, args.megabytes)
        seconds = {}
        runs = (("full run", []), ("without plots", ["--no-plots"]), ("full run, 1 process", ["--jobs", "1"]))
        for label, extra in runs:
            start, cpu_start = time.perf_counter(), _children_cpu()
            subprocess.run(
                [
                    sys.executable,
                    str(REPO_ROOT / "scripts" / "analyze_stage_3.py"),
                    "--data-dir",
                    str(data_dir),
                    "--output-dir",
                    str(output_dir),
                    *extra,
                ],
                check=True,
                stdout=subprocess.DEVNULL,
                cwd=REPO_ROOT,
            )
            seconds[label] = (time.perf_counter() - start, _children_cpu() - cpu_start)
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"analyze_stage_3 on {files} files, {size / 1e6:.1f} MB ({os.cpu_count()} cores, load average {load}):")
    for label, (wall, cpu) in seconds.items():
        print(f"  {label:<20} {wall:6.2f} s wall, {cpu:6.2f} s CPU (all processes)")
    verdict = "OK" if seconds["full run"][0] < TARGET_SECONDS else "TOO SLOW"
    print(f"target: full run < {TARGET_SECONDS:.0f} s: {verdict}")


if __name__ == "__main__":
    main()
