"""The repository the tests run in (the scripts, prompts and config they run and read)."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
