"""The response cache that makes every API stage resumable: one sqlite row per paid model call.

`<cache_dir>/responses.sqlite3` (WAL mode) maps the key of a rendered request (request_key) to the
normalised response. Each row is committed before the call's result is used, so a rerun after a
crash, Ctrl-C or kill -9 finds every call that was paid for and pays nothing twice. Nothing secret
is stored: the key hashes the request body (never headers or API keys), the row holds the answer.
`<cache_dir>/batches/<batch_id>.json` records the keys of submitted provider batches (batch.py).
A file that is not a usable cache is a one-line DataError saying how to recover; it is never
deleted or replaced here (it may hold answers that were paid for).
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import sqlite3
import time
from pathlib import Path

from spt import locks
from spt.utils import DataError, display_path

from .types import LLMRequest, LLMResponse, Usage

CACHE_FILE_NAME = "responses.sqlite3"


def request_key(request: LLMRequest, provider: str, base_url: str | None) -> str:
    """sha256 of the canonical JSON of everything that determines the answer.

    Prompt-cache breakpoints (`cache=True`) and `label` are left out: they change the price or
    the logs, not the answer.
    """
    identity = {
        "provider": provider,
        "base_url": (base_url or "").rstrip("/"),
        "model": request.model,
        "system": [block.text for block in request.system],
        "messages": [[message.role, message.content] for message in request.messages],
        "tool": [request.tool.name, request.tool.description, request.tool.input_schema] if request.tool else None,
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "top_k": request.top_k,
        "thinking": request.thinking_budget,
        "effort": request.effort,
        "reasoning": request.reasoning,
        "show_thinking": request.show_thinking,
        "sample_index": request.sample_index,
    }
    canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def response_to_json(response: LLMResponse) -> str:
    return json.dumps(dataclasses.asdict(response), ensure_ascii=False)


def response_from_json(text: str) -> LLMResponse:
    fields = json.loads(text)
    fields["usage"] = Usage(**fields["usage"])
    return LLMResponse(**fields)


class ResponseCache:
    """sqlite3 store of responses by request key; safe to share between processes (WAL)."""

    def __init__(self, cache_dir: str | Path):
        self.cache_dir = Path(cache_dir)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.cache_dir / CACHE_FILE_NAME
        # One process at a time opens the file: two runs starting together (stage 2 of two models)
        # would otherwise meet in the switch to WAL mode, which sqlite answers "database is locked".
        with locks.folder_lock(self.cache_dir):
            try:
                self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
                self._db.execute("PRAGMA journal_mode=WAL")
                # NORMAL in WAL mode: a committed row survives a killed process (not necessarily a power cut).
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.execute(
                    "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, provider TEXT, model TEXT, "
                    "created_at REAL, response TEXT NOT NULL)"
                )
            except sqlite3.DatabaseError as exc:  # garbage in the file, a foreign file, an unreadable one
                raise self._error(exc) from None

    def _error(self, exc: sqlite3.DatabaseError) -> Exception:
        """A full disk or a failed read/write is an OSError about the file (the cache itself is fine:
        it must not be deleted); only a damaged or foreign file is "not a usable response cache"."""
        code = getattr(exc, "sqlite_errorcode", None)
        if code not in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
            cause = "No space left on device" if code == sqlite3.SQLITE_FULL else str(exc)
            return OSError(errno.ENOSPC if code == sqlite3.SQLITE_FULL else errno.EIO, cause, str(self.path))
        return DataError(
            f"{display_path(self.path)}: not a usable response cache ({exc}); move it aside or "
            "delete it to start a fresh cache (the paid answers in it are lost), or choose "
            "another --cache_dir"
        )

    def get(self, key: str) -> LLMResponse | None:
        row = self._db.execute("SELECT response FROM responses WHERE key = ?", (key,)).fetchone()
        return response_from_json(row[0]) if row else None

    def put(self, key: str, response: LLMResponse) -> None:
        """Store (or replace) the response of `key`; committed when this returns."""
        try:
            self._db.execute(
                "INSERT OR REPLACE INTO responses (key, provider, model, created_at, response) VALUES (?, ?, ?, ?, ?)",
                (key, response.provider, response.model, time.time(), response_to_json(response)),
            )
        except sqlite3.DatabaseError as exc:  # a full disk: the answer is lost, the cache is not
            raise self._error(exc) from None

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        self._db.close()
