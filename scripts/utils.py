"""Shared plumbing for every script: repository paths, atomic JSON writes, JSON reads with
one-line errors, `.env` loading and logging.

Importing this module creates no file or directory. Reads `.env` only when
`load_env()` is called.
"""
from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import orjson

REPO_ROOT = Path(__file__).resolve().parent.parent
PROMPTS_DIR = REPO_ROOT / "prompts"
CONFIG_DIR = REPO_ROOT / "config"
# SPT_DATA_DIR moves every pipeline input/output (tests point it at a temporary folder).
DATA_DIR = Path(os.environ.get("SPT_DATA_DIR") or REPO_ROOT / "data").resolve()
STAGE_DIRS = {
    1: DATA_DIR / "stage_1",
    2: DATA_DIR / "stage_2",
    3: DATA_DIR / "stage_3",
}
TAGGED_DIR = DATA_DIR / "stage_3_tagged"
ANALYSIS_DIR = DATA_DIR / "stage_3_analysis"
EVALUATION_RESULTS_DIR = DATA_DIR / "evaluation_results" / "quantitative"
RESPONSE_CACHE_DIR = DATA_DIR / ".response_cache"


class DataError(Exception):
    """Bad input: the message is one line naming the file (and field or position)."""


def repo_path(relative: str | os.PathLike) -> Path:
    """A path given relative to the repository root (absolute paths pass through)."""
    path = Path(relative)
    return path if path.is_absolute() else REPO_ROOT / path


def data_path(configured: str | os.PathLike) -> Path:
    """A path from a config file: absolute as is; `data/...` under DATA_DIR (so SPT_DATA_DIR
    moves it, like every pipeline output); anything else relative to the repository root."""
    path = Path(configured)
    if path.is_absolute():
        return path
    if path.parts and path.parts[0] == "data":
        return DATA_DIR.joinpath(*path.parts[1:])
    return REPO_ROOT / path


def display_path(path: str | os.PathLike) -> str:
    """A path as a user would type it: relative to the repository root when inside it."""
    path = Path(path).resolve()
    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------- writing

def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write `text` to `path` so that a crash leaves either the old or the new file.

    The text goes to a temporary file in the same directory, is fsynced, and is then
    renamed over the target; the directory is fsynced so the rename itself is durable.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def atomic_write_json(path: str | os.PathLike, obj: Any, *, ensure_ascii: bool = True) -> None:
    """Atomically write `obj` as indent-2 JSON (docs/data_formats.md §4.6)."""
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=ensure_ascii) + "\n")


# --------------------------------------------------------------------------- reading

def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file; any problem raises DataError with one line naming file and position."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{display_path(path)}: file not found") from None
    except OSError as exc:
        raise DataError(f"{display_path(path)}: cannot read ({exc.strerror})") from None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass
    # orjson's messages are terse; re-parse with the standard library for line/column.
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise DataError(f"{display_path(path)}: not UTF-8 (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{display_path(path)}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None


def require_field(obj: dict, field: str, where: str) -> Any:
    """`obj[field]`, or a DataError naming `where` (e.g. 'data/stage_1/x.json: data[3]')."""
    if not isinstance(obj, dict) or field not in obj:
        raise DataError(f"{where}: missing field {field!r}")
    return obj[field]


# --------------------------------------------------------------------------- reports

def markdown_table(header: list[str], rows: list[list[Any]]) -> list[str]:
    """A Markdown table as lines; a `|` inside a cell is escaped so it cannot split the cell."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |" for row in rows]


# --------------------------------------------------------------------------- environment

def load_env() -> None:
    """Load `.env` from the repository root into os.environ (existing variables win)."""
    from dotenv import load_dotenv

    load_dotenv(REPO_ROOT / ".env", override=False)


def setup_logging(verbose: bool = False) -> logging.Logger:
    """Log to stderr, one line per record; returns the project logger."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    for noisy in ("httpx", "httpcore", "httpx2", "httpcore2", "anthropic", "openai"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return logging.getLogger("spt")


class ArgumentParser(argparse.ArgumentParser):
    """The parser of every entry script: no abbreviations (`--max_new_token` is an error, not
    `--max_new_tokens`), and every long flag accepted in both spellings, `--data_dir` and
    `--data-dir`; `--help` shows the one each script defines (the underscore form)."""

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)

    def parse_known_args(self, args=None, namespace=None):
        spelled = {option.replace("-", "_"): option for option in self._option_string_actions if option.startswith("--")}

        def respell(token: str) -> str:
            flag, equals, value = token.partition("=")
            if not flag.startswith("--") or flag in self._option_string_actions:
                return token
            return spelled.get(flag.replace("-", "_"), flag) + equals + value

        args = sys.argv[1:] if args is None else list(args)
        return super().parse_known_args([respell(token) for token in args], namespace)


def exit_on_data_error(main):
    """Decorator for script entry points: a DataError prints one line and exits 2."""
    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except DataError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
    return wrapper
