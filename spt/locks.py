"""Locks on what a run writes, so that two runs that meet neither lose nor duplicate anything
(docs/concurrent_runs.md).

`hold(target, what, go_on)` is the lock of a whole run on what it writes (a stage's topic folder,
one model's stage-2 answers, the tagged folder, an export or analysis folder, a training
`output_dir`): a second run that needs it stops at once with a DataError (exit 2) naming the
holder (pid, host, start time, command) and how to go on. `writing(folder)` is the short lock
of one read-merge-write of a shared file (stage 2 of several models, the verification): it
waits, with a log line saying for whom. `folder_lock(folder)` is a short lock on a folder itself
(the response cache's, while a run opens it).

Both are `fcntl.flock` locks on a small file, `.<name>.lock` beside the target: the kernel
releases a lock when its process ends, however it ends, so the lock of a killed run is stale at
once and the next run takes it over (saying whose it was). The lock file records its holder as
one JSON line; it is emptied, not deleted, on release (deleting a lock file another process has
open would let two processes hold "the" lock). Why not the `filelock` package: its lock file
cannot carry the holder (every attempt truncates it), and the holder is what the message needs.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import socket
import sys
from datetime import datetime
from pathlib import Path

from spt import utils

log = logging.getLogger("spt.locks")


WAIT_OR_RERUN = "wait for that run to finish, or stop it and rerun this command (it resumes where that run stopped)"
WAIT_OR_ELSEWHERE = "wait for that run to finish, or write elsewhere"


class LockHeld(utils.DataError):
    """Another running process holds the lock."""


def lock_path(target: Path, name: str | None = None) -> Path:
    """`.<name>.lock` beside `target` (`name`: the target's own name, or a label such as a model key)."""
    label = re.sub(r"[^A-Za-z0-9._+-]+", "_", name or target.name)
    return target.parent / f".{label}.lock"


def _holder_record() -> str:
    command = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv and sys.argv[0] else "python"
    return json.dumps(
        {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": datetime.now().isoformat(timespec="seconds"),
            "command": command[:300],
        }
    )


def _read_holder(fd: int) -> dict | None:
    os.lseek(fd, 0, os.SEEK_SET)
    raw = os.read(fd, 4096)
    try:
        holder = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return holder if isinstance(holder, dict) else None


def describe(holder: dict | None) -> str:
    if not holder:
        return "another run (it has not recorded itself yet)"
    return (
        f"pid {holder.get('pid')} on host {holder.get('host')} since {holder.get('started')} "
        f"(`{holder.get('command')}`)"
    )


def _open(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)


@contextlib.contextmanager
def hold(target: str | os.PathLike, what: str, go_on: str, *, name: str | None = None):
    """Hold the run lock of `target` (described as `what`) for the body; LockHeld (exit 2) naming
    the holder and `go_on` (how to go on) when a running process holds it."""
    target = Path(target)
    path = lock_path(target, name)
    fd = _open(path)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockHeld(
                f"{utils.display_path(target)} ({what}) is in use by {describe(_read_holder(fd))}; {go_on}"
            ) from None
        stale = _read_holder(fd)
        if stale:
            log.warning(
                "took over the lock of %s: %s is no longer running", utils.display_path(target), describe(stale)
            )
        _write_holder(fd, _holder_record())
        try:
            yield
        finally:
            _write_holder(fd, "")
    finally:
        os.close(fd)  # releases the lock


def _write_holder(fd: int, record: str) -> None:
    """Record (or, with "", clear) the holder; the record only informs, so a full disk that refuses
    it leaves the lock held without one (the run's own writes then report the full disk)."""
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, record.encode("utf-8"), 0)
    except OSError as exc:
        log.debug("lock holder not recorded: %s", exc)


@contextlib.contextmanager
def hold_all(targets, what: str, go_on: str):
    """`hold` on every target (in sorted order, so two runs cannot each wait for the other)."""
    with contextlib.ExitStack() as stack:
        for target in sorted({Path(target) for target in targets}):
            stack.enter_context(hold(target, what, go_on))
        yield


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike):
    """A short lock on the folder itself (no file is created in it): waits for another holder.
    For a folder whose contents must stay exactly as they are (the response cache)."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


@contextlib.contextmanager
def writing(folder: str | os.PathLike):
    """The short lock of one read-merge-write of a file in `folder`; waits for another writer."""
    folder = Path(folder)
    fd = _open(folder / ".writing.lock")
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("waiting for %s to finish writing in %s", describe(_read_holder(fd)), utils.display_path(folder))
            fcntl.flock(fd, fcntl.LOCK_EX)
        _write_holder(fd, _holder_record())
        try:
            yield
        finally:
            _write_holder(fd, "")
    finally:
        os.close(fd)
