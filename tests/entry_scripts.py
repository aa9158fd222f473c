"""Running an entry script in the test process, as `python <script> <args>` runs it (tests never import
an entry script: they are programs, not libraries). Reads and writes what the script does."""

from __future__ import annotations

import runpy
import sys

from repo import REPO_ROOT


def run_main(script: str, argv: list[str]) -> int:
    """Run `script` (a path from the repository root) with `argv`; its exit status (0 on success).
    Exceptions other than SystemExit propagate, as they would end the program."""
    saved = sys.argv
    sys.argv = [script, *map(str, argv)]
    try:
        runpy.run_path(str(REPO_ROOT / script), run_name="__main__")
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 0 if exit_.code is None else 1
    finally:
        sys.argv = saved
    return 0
