"""Shared plumbing for every script: repository paths, atomic writes (which keep a replaced file's
mode) and the removal of the temporary files a killed write leaves, the check of output
folders before a run, JSON reads with one-line errors, `.env` loading, logging, the argument
parser, the SHA-256 of a file, and the entry-point decorator (one line and exit 2 on bad input or an OS error naming a
path, exit 1 on a full disk, exit 130 on Ctrl-C).

Importing this module creates no file or directory. Reads `.env` only when
`load_env()` is called.
"""

from __future__ import annotations

import argparse
import errno
import functools
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import signal
import stat
import sys
import tempfile
from pathlib import Path
from typing import Any

import orjson

# Where relative paths count from: the folder the command runs in (documented in README.md, "Where
# things live"). prompts/ and config/ are read from there when it has them (a clone), else from the
# copies installed with the package (a wheel holds them inside spt/; an install from a clone finds
# them beside spt/).
WORK_DIR = Path.cwd()
PACKAGE_DIR = Path(__file__).resolve().parent


def _shipped_folder(name: str) -> Path:
    """WORK_DIR/<name> when it exists, else the copy installed with the package."""
    for folder in (WORK_DIR / name, PACKAGE_DIR / name, PACKAGE_DIR.parent / name):
        if folder.is_dir():
            return folder
    return WORK_DIR / name


PROMPTS_DIR = _shipped_folder("prompts")
CONFIG_DIR = _shipped_folder("config")
# SPT_DATA_DIR moves every pipeline input/output (tests point it at a temporary folder).
DATA_DIR = Path(os.environ.get("SPT_DATA_DIR") or WORK_DIR / "data").resolve()
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


def work_path(relative: str | os.PathLike) -> Path:
    """A path given relative to the folder the command runs in (absolute paths pass through)."""
    path = Path(relative)
    return path if path.is_absolute() else WORK_DIR / path


def data_path(configured: str | os.PathLike) -> Path:
    """A data path from a config file or a script's flag (the `type` of every data-path flag), the one
    rule of every script: absolute as is; `data/...` under DATA_DIR (so SPT_DATA_DIR moves it, like
    every default data path); anything else relative to the folder the command runs in."""
    path = Path(configured)
    if path.is_absolute():
        return path
    if path.parts and path.parts[0] == "data":
        return DATA_DIR.joinpath(*path.parts[1:])
    return WORK_DIR / path


def display_path(path: str | os.PathLike) -> str:
    """A path as a user would type it: relative to the folder the command runs in when inside it."""
    try:
        path = Path(path).resolve()
    except OSError:  # a name too long to resolve
        return str(path)
    return str(path.relative_to(WORK_DIR)) if path.is_relative_to(WORK_DIR) else str(path)


# --------------------------------------------------------------------------- writing

# A temporary file of an atomic write: `.<target name>.<pid>.<8 hex digits>.tmp`, beside its target.
TEMPORARY_NAME = re.compile(r"\.(?P<target>.+)\.(?P<pid>\d+)\.[0-9a-f]{8}\.tmp")


def write_temporary(path: Path, payload: bytes) -> Path:
    """Write `payload` to a new, fsynced file beside `path`, to be renamed over it; returns its path.

    The name follows TEMPORARY_NAME (the writing process's id and a random part), so a file left by
    a killed process is recognised by `remove_stale_temporaries`. The mode is the one the target
    keeps: the existing file's when `path` exists, else 0666 less the umask (as `open` creates it).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        handle = open(temporary, "xb")
    except OSError as exc:
        raise _naming(exc, path) from exc
    try:
        with handle:
            handle.write(payload)
            handle.flush()
            mode = _file_mode(path)
            if mode is not None:
                os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
    except BaseException as exc:
        temporary.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise _naming(exc, path) from exc
        raise
    return temporary


def _naming(exc: OSError, path: Path) -> OSError:
    """`exc` with the target `path` as its file name (a failed write names its temporary, or nothing)."""
    exc.filename = str(path)
    return exc


def _file_mode(path: Path) -> int | None:
    """The permission bits of an existing file, None when there is none."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return None


def remove_stale_temporaries(directory: str | os.PathLike) -> list[Path]:
    """Delete the temporary files (TEMPORARY_NAME) in `directory` whose process is gone: what a
    `kill -9` during a write leaves behind. Any other file, and the temporary of a running
    process, is kept. Returns the deleted paths."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    removed = []
    for entry in os.scandir(directory):
        match = TEMPORARY_NAME.fullmatch(entry.name)
        if match and entry.is_file(follow_symlinks=False) and not _process_exists(int(match["pid"])):
            Path(entry.path).unlink(missing_ok=True)
            removed.append(Path(entry.path))
    return sorted(removed)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # no such process (or a number no process can have)
        return False
    except PermissionError:  # another user's process
        return True
    return True


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write `text` (UTF-8) to `path` so that a crash leaves either the old or the new file (atomic_write_bytes)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` so that a crash leaves either the old or the new file.

    The bytes go to a temporary file in the same directory (`write_temporary`: fsynced, with
    the mode the target keeps), which is then renamed over the target; the directory is fsynced
    so the rename itself is durable.
    """
    path = Path(path)
    temporary = write_temporary(path, data)
    try:
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


def staging_dir(target: Path, kind: str, side: str = "new") -> Path:
    """The sibling folder a set of files is written to before `swap_in` (`side` new) or that the
    old set is moved to during it (`side` old): `.<name>.<kind>-<side>-<pid>`."""
    return target.with_name(f".{target.name}.{kind}-{side}-{os.getpid()}")


def remove_staging_leftovers(target: Path, kind: str) -> None:
    """Delete the staging folders (staging_dir) that a killed run left beside `target`."""
    pattern = re.compile(rf"\.{re.escape(target.name)}\.{re.escape(kind)}-(new|old)-\d+")
    if target.parent.is_dir():
        for path in target.parent.iterdir():
            if pattern.fullmatch(path.name) and path.is_dir():
                shutil.rmtree(path)


def swap_in(staging: Path, target: Path, kind: str) -> None:
    """Replace the folder `target` by the complete folder `staging` (the single commit point): the
    old one is renamed aside, the new one into place, the old one deleted. `target` is the whole
    old set or the whole new set, never a mix."""
    aside = staging_dir(target, kind, "old")
    if target.exists():
        os.rename(target, aside)
    try:
        os.rename(staging, target)
    except OSError:
        if aside.exists():
            os.rename(aside, target)
        raise
    fsync_directory(target.parent)
    shutil.rmtree(aside, ignore_errors=True)


def fsync_directory(directory: Path) -> None:
    """Make the renames in `directory` durable."""
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def atomic_write_json(path: str | os.PathLike, obj: Any, *, ensure_ascii: bool = True) -> None:
    """Atomically write `obj` as indent-2 JSON (docs/data_formats.md §4.6)."""
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=ensure_ascii) + "\n")


def check_no_file_in_the_way(path: str | os.PathLike, what: str) -> Path:
    """DataError when a file sits where the folder `path`, or one of its parents, should be,
    naming `what` set the path, or SPT_DATA_DIR when the file is the data folder (or above it).
    Returns the path, absolute."""
    path = Path(path).absolute()
    blocker = next((parent for parent in (path, *path.parents) if parent.exists()), None)
    if blocker is None or blocker.is_dir():
        return path
    if path.is_relative_to(DATA_DIR) and DATA_DIR.is_relative_to(blocker):
        path, what = DATA_DIR, "SPT_DATA_DIR" if os.environ.get("SPT_DATA_DIR") else "the data folder"
    problem = "is a file, not a folder" if blocker == path else f"{display_path(blocker)} is a file, not a folder"
    raise DataError(f"{display_path(path)} ({what}): {problem}")


def check_writable_dir(path: str | os.PathLike, what: str) -> Path:
    """Make sure `path` is a folder this process can write into, before any expensive work
    (model loading, API calls, training): create it when missing, write and delete a probe file,
    and remove again the folders it created (a check leaves nothing behind; the run creates them
    when it writes). Anything else is a DataError naming the path and `what` set it (a flag, a
    config key); a data folder (SPT_DATA_DIR) that is a file is named as such. Returns the path."""
    path = check_no_file_in_the_way(path, what)
    created = [folder for folder in (path, *path.parents) if not folder.exists()]  # deepest first
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write_check.", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise DataError(f"{display_path(path)} ({what}): cannot write there ({exc.strerror})") from None
    finally:
        for folder in created:
            try:
                folder.rmdir()
            except OSError:  # not created (mkdir failed), or another process has written into it
                pass
    return path


def check_apart(output: str | os.PathLike, output_what: str, source: str | os.PathLike, source_what: str) -> None:
    """DataError when the output `output` (a folder or file) is the input folder `source`, lies
    inside it or holds it: the next run would read what this one wrote."""
    out, into = Path(output).resolve(), Path(source).resolve()
    if out == into or out.is_relative_to(into) or into.is_relative_to(out):
        relation = "the same folder as" if out == into else "inside" if out.is_relative_to(into) else "around"
        raise DataError(
            f"{display_path(out)} ({output_what}): is {relation} the input {display_path(into)} "
            f"({source_what}); the next run would read what this one writes, so write elsewhere"
        )


def check_model_folder(path: str | os.PathLike, what: str) -> None:
    """DataError when the folder `path`, given as a model (`what`: the flag or config key), holds no
    model: a Hugging Face model folder always has a config.json."""
    path = Path(path)
    if path.is_dir() and not (path / "config.json").is_file():
        raise DataError(
            f"{display_path(path)} ({what}): the folder holds no model (no config.json); "
            "give a model folder or a Hugging Face id such as org/name"
        )


def check_output_file(path: str | os.PathLike, what: str) -> Path:
    """check_writable_dir for the folder of the output file `path`, which must not be a folder."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{display_path(path)} ({what}): is a folder; name the file to write")
    check_writable_dir(path.parent, what)
    return path


# --------------------------------------------------------------------------- reading


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of the file's bytes (hex), read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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
        raise DataError(
            f"{display_path(path)}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None


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


def load_env(path: Path | None = None) -> None:
    """Load `.env` from the folder the command runs in (or `path`) into os.environ (existing variables win);
    a `.env` that is not UTF-8 is a DataError."""
    from dotenv import load_dotenv

    path = path or WORK_DIR / ".env"
    try:
        load_dotenv(path, override=False)
    except UnicodeDecodeError as exc:
        raise DataError(f"{display_path(path)}: not UTF-8 (byte {exc.start}); save it as UTF-8") from None


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
        spelled = {
            option.replace("-", "_"): option for option in self._option_string_actions if option.startswith("--")
        }

        def respell(token: str) -> str:
            flag, equals, value = token.partition("=")
            if not flag.startswith("--") or flag in self._option_string_actions:
                return token
            return spelled.get(flag.replace("-", "_"), flag) + equals + value

        args = sys.argv[1:] if args is None else list(args)
        return super().parse_known_args([respell(token) for token in args], namespace)


def at_least(minimum: int):
    """An argparse `type`: a whole number of at least `minimum` (else argparse's one-line usage error, exit 2)."""

    def whole_number(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return whole_number


EXIT_RERUN = 1  # a rerun finishes the work (once there is room on the disk)
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130  # the shell's code for a program stopped by SIGINT (128 + 2)
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def os_error_line(exc: OSError) -> str:
    """One line for an OS error: the path (where known) and the cause; a full disk says what to do."""
    where = display_path(exc.filename) if exc.filename else "a write"
    cause = exc.strerror or str(exc)
    if exc.errno in DISK_FULL:
        return f"{where}: disk full ({cause}); free space and rerun the same command (what was saved is kept)"
    if exc.errno == errno.ENAMETOOLONG:
        shown = where if len(where) <= 160 else f"{where[:80]}...{where[-60:]}"
        return f"{shown}: a file or folder name there is too long for the file system; choose a shorter one"
    return f"{where}: {cause}"


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, carrying the advice that fits what the run saved: exit_on_data_error prints it
    (`stopped; <advice>`) in place of its fixed `resume`."""


def exit_on_data_error(main=None, *, resume: str = "rerun the same command to resume"):
    """Decorator for script entry points: a DataError prints one line and exits 2; an OS error
    (a name too long, a folder that cannot be written, a full disk) prints one line naming the
    path and the cause (os_error_line) and exits 2, or 1 for a full disk (a rerun with room
    finishes the work); Ctrl-C (KeyboardInterrupt) prints one line, `stopped; <resume>` (an
    Interrupted's own advice instead when it carries one), and exits 130. Every script saves
    as it goes (atomic writes, the response cache), so what was saved stays. Use it bare, or as
    `@exit_on_data_error(resume=...)` where a plain rerun does not resume."""
    if main is None:
        return functools.partial(exit_on_data_error, resume=resume)

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except DataError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(EXIT_BAD_INPUT) from None
        except OSError as exc:
            print(f"error: {os_error_line(exc)}", file=sys.stderr)
            raise SystemExit(EXIT_RERUN if exc.errno in DISK_FULL else EXIT_BAD_INPUT) from None
        except KeyboardInterrupt as exc:
            print(f"stopped; {exc if isinstance(exc, Interrupted) else resume}", file=sys.stderr)
            raise SystemExit(EXIT_INTERRUPTED) from None

    return wrapper


def ignore_interrupts() -> None:
    """Initializer of worker processes: Ctrl-C reaches the whole process group, and only the
    main process should answer it (one line, exit 130) instead of every worker's traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
