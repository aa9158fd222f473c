"""The one place a benchmark's import path is set. Benchmarks run as `python tests/benchmarks/<name>.py`
(so this folder is on the path) and call `add_test_code()` before importing what lives in tests/ (the
fake provider server, the test helpers), as pytest's `pythonpath` does for the tests. The library
(spt) needs nothing: it is installed (`-e .`)."""

from __future__ import annotations

import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def add_test_code() -> None:
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
