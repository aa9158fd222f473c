"""Benchmark of scripts/tag_stage_3_data.py: throughput and peak memory on >= 150 MB.

Builds a data set by replicating the reference stage-3 files (../shared/reference-data,
tags stripped so the tagger does real work) under distinct file names in a temporary
directory, runs the tagger as a subprocess and prints MB/s of input JSON (wall clock, and per
CPU-second, which stays meaningful on a busy machine) and the peak resident memory of the
subprocess and its workers (ru_maxrss), with the targets (>= 50 MB/s on 2 cores; peak < 3x
the largest file + 200 MB). Run: .venv/bin/python tests/benchmarks/bench_tagging.py [--mb 150]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
REFERENCE = REPO_ROOT.parent / "shared" / "reference-data" / "stage_3_tagged"
TARGET_MB_PER_S = 50.0


def untagged_copy(path: Path) -> str:
    """The reference file as tagger input: tags and ids stripped."""
    document = json.loads(path.read_text())
    for item in document["data"]:
        for variants in item["inferences"].values():
            for variant in variants.values():
                variant.pop("tags", None)
                for intervention in variant.get("interventions", {}).values():
                    for key in ("tags", "id_numeric", "id_string"):
                        intervention.pop(key, None)
    return json.dumps(document, indent=2, ensure_ascii=True)


def build_data_set(root: Path, target_mb: float) -> tuple[int, int, int]:
    """Copies of the reference files until `target_mb` is reached: (files, bytes, largest)."""
    sources = [(path.parent.name, path.stem, untagged_copy(path)) for path in sorted(REFERENCE.glob("*/*.json"))]
    files = total = largest = 0
    copy = 0
    while total < target_mb * 1e6:
        for topic, stem, text in sources:
            target = root / topic / f"{stem}_copy{copy:04d}.json"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            files += 1
            total += len(text)
            largest = max(largest, len(text))
        copy += 1
    return files, total, largest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=150.0, help="size of the data set in MB (default 150)")
    parser.add_argument(
        "--jobs", type=int, nargs="+", default=[1, 2], help="tagger --jobs values to time (default 1 2)"
    )
    args = parser.parse_args()
    if not REFERENCE.is_dir():
        sys.exit(f"reference data not found at {REFERENCE}")
    with tempfile.TemporaryDirectory(prefix="bench_tagging_") as tmp:
        input_dir, output_dir = Path(tmp) / "in", Path(tmp) / "out"
        files, total, largest = build_data_set(input_dir, args.mb)
        print(f"input: {files} files, {total / 1e6:.1f} MB (largest {largest / 1e6:.2f} MB)")
        memory_limit_mb = 3 * largest / 1e6 + 200
        for jobs in args.jobs:
            command = [
                sys.executable,
                str(REPO_ROOT / "scripts" / "tag_stage_3_data.py"),
                "--input",
                str(input_dir),
                "--output",
                str(output_dir),
                "--jobs",
                str(jobs),
            ]
            load_before = os.getloadavg()[0]
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            seconds = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu_seconds = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
            # ru_maxrss of RUSAGE_CHILDREN: the largest process waited for so far (tagger or worker).
            peak_mb = after.ru_maxrss / 1024
            throughput = total / 1e6 / seconds
            print(
                f"--jobs {jobs}: wall {seconds:.2f} s = {throughput:.1f} MB/s (target >= {TARGET_MB_PER_S:.0f}: "
                f"{'OK' if throughput >= TARGET_MB_PER_S else 'below'}); CPU {cpu_seconds:.2f} s = "
                f"{total / 1e6 / cpu_seconds:.1f} MB per CPU-second; peak memory of one process "
                f"{peak_mb:.0f} MB (target < {memory_limit_mb:.0f}: {'OK' if peak_mb < memory_limit_mb else 'above'}); "
                f"load average before the run {load_before:.1f}"
            )


if __name__ == "__main__":
    main()
