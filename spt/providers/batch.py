"""Provider batch APIs behind the ordinary `complete()` calls (--batch_api, half price).

`ProviderBatcher` holds what every provider's batch API shares; a provider module subclasses it
(anthropic_provider.AnthropicBatcher: Message Batches; openai_provider.OpenAIBatcher: the OpenAI
Batch API) and names the subclass in its ProviderSpec.batcher:

Concurrent calls are collected (micro-batching): a batch is submitted when no new call arrived
for `idle_s` (about a second) or `max_pending` calls wait. The batch id and the keys of its
requests are written atomically to `<cache_dir>/batches/<batch_id>.json` BEFORE polling starts,
so a restarted run that asks for one of those keys polls that batch instead of paying again.
Every succeeded result goes through `on_result` (the client stores it in the response cache);
an errored/expired/canceled request fails its call with a TransientError so it is resubmitted
(a request the provider rejects as invalid, or a batch that failed validation: ProviderError).
Reads and writes `<cache_dir>/batches/*.json`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from spt.utils import DataError, atomic_write_json, read_json

from .base import AnswerFormat, ProviderAdapter
from .errors import ProviderError, TransientError
from .types import LLMRequest, LLMResponse

log = logging.getLogger("spt.providers")
OnResult = Callable[[str, LLMResponse], LLMResponse]
Outcome = LLMResponse | Exception  # one request's result: its response, or why it has none


class ProviderBatcher:
    """Micro-batching, the on-disk batch records and resuming; subclasses talk to one provider's
    batch API through `_create`, `_ended` and `_results`."""

    provider = ""
    cache_ttl = "5m"  # the prompt-cache TTL its requests write (and are priced at)

    def __init__(
        self,
        adapter: ProviderAdapter,
        cache_dir: Path,
        on_result: OnResult,
        *,
        idle_s: float = 1.0,
        max_pending: int = 10_000,
        poll_s: float = 30.0,
    ):
        self.adapter = adapter
        self.sdk = adapter.sdk
        self.batches_dir = Path(cache_dir) / "batches"
        self.on_result = on_result
        self.idle_s = idle_s
        self.max_pending = max_pending
        self.poll_s = poll_s
        self._pending: dict[str, tuple[LLMRequest, asyncio.Future]] = {}
        self._last_arrival = 0.0
        self._flusher: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()
        self._resumes: dict[str, asyncio.Task] = {}
        self._unfinished: dict[str, str] | None = None  # key -> batch id of recorded, unfinished batches

    # ------------------------------------------------------------------ provider-specific

    async def _create(self, batch: dict[str, LLMRequest]) -> tuple[str, dict]:
        """Submit the requests (custom id = key); (batch id, extra fields for its record)."""
        raise NotImplementedError

    async def _ended(self, batch_id: str) -> Any | None:
        """The provider's batch object once the batch has ended, else None."""
        raise NotImplementedError

    def _results(self, batch_id: str, status: Any, record: dict) -> AsyncIterator[tuple[str, Outcome]]:
        """(key, outcome) for each request of an ended batch."""
        raise NotImplementedError

    # ------------------------------------------------------------------ submitting

    async def submit(self, key: str, request: LLMRequest) -> LLMResponse:
        """Queue one request for the next batch and wait for its result."""
        future = asyncio.get_running_loop().create_future()
        self._pending[key] = (request, future)
        self._last_arrival = time.monotonic()
        if len(self._pending) >= self.max_pending:
            self._spawn(self._submit_batch(self._take_pending()))
        elif self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_when_idle())
        return await future

    def _take_pending(self) -> dict[str, tuple[LLMRequest, asyncio.Future]]:
        pending, self._pending = self._pending, {}
        return pending

    def _spawn(self, coroutine) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _flush_when_idle(self) -> None:
        while self._pending:
            quiet_for = time.monotonic() - self._last_arrival
            if quiet_for < self.idle_s:
                await asyncio.sleep(self.idle_s - quiet_for)
                continue
            self._spawn(self._submit_batch(self._take_pending()))

    async def _submit_batch(self, batch: dict[str, tuple[LLMRequest, asyncio.Future]]) -> None:
        if not batch:
            return
        try:
            batch_id, extra = await self._create({key: request for key, (request, _) in batch.items()})
        except Exception as exc:
            _fail_all(batch, self.adapter.translate_error(exc))
            return
        record = {
            "batch_id": batch_id,
            "provider": self.provider,
            **extra,
            "submitted_at": datetime.now(UTC).isoformat(),
            "ended": False,
            "requests": {
                key: {
                    "model": request.model,
                    "tool": request.tool.name if request.tool else None,
                    "answer_mode": self.adapter.answer_format(request).mode,
                }
                for key, (request, _) in batch.items()
            },
        }
        atomic_write_json(self.batches_dir / f"{batch_id}.json", record)
        log.info("submitted %s batch %s with %d requests", self.provider, batch_id, len(batch))
        try:
            await self._collect(batch_id, record, {key: future for key, (_, future) in batch.items()})
        except Exception as exc:
            _fail_all(
                batch,
                exc
                if isinstance(exc, (TransientError, ProviderError))
                else TransientError(f"batch {batch_id} failed: {type(exc).__name__}"),
            )

    # ------------------------------------------------------------------ polling and results

    async def _collect(self, batch_id: str, record: dict, waiters: dict[str, asyncio.Future]) -> None:
        """Poll `batch_id` until it ends, hand every result on, mark the record ended."""
        while True:
            try:
                status = await self._ended(batch_id)
            except Exception as exc:
                error = self.adapter.translate_error(exc)
                if not isinstance(error, TransientError):
                    raise error from exc
                status = None
            if status is not None:
                break
            await asyncio.sleep(self.poll_s)
        seen = set()
        async for key, outcome in self._results(batch_id, status, record):
            seen.add(key)
            future = waiters.get(key)
            if isinstance(outcome, LLMResponse):
                outcome.extra["batch_id"] = batch_id
                outcome.extra["request_model"] = record["requests"].get(key, {}).get("model") or outcome.model
                response = self.on_result(key, outcome)
                if future is not None and not future.done():
                    future.set_result(response)
            elif future is not None and not future.done():
                future.set_exception(outcome)
        _fail_all(
            {k: (None, f) for k, f in waiters.items() if k not in seen},
            TransientError(f"batch {batch_id} returned no result for the request"),
        )
        atomic_write_json(self.batches_dir / f"{batch_id}.json", {**record, "ended": True})
        if self._unfinished is not None:
            for key in record["requests"]:
                self._unfinished.pop(key, None)

    # ------------------------------------------------------------------ resuming after a restart

    def unfinished_batch_of(self, key: str) -> str | None:
        """The recorded, unfinished batch of this provider that already holds `key`, if any."""
        if self._unfinished is None:
            self._unfinished = {}
            for path in sorted(self.batches_dir.glob("*.json")):
                try:
                    record = read_json(path)
                except DataError as exc:
                    log.warning("ignoring unreadable batch record: %s", exc)
                    continue
                if not record.get("ended") and record.get("provider", "anthropic") == self.provider:
                    for recorded_key in record.get("requests", {}):
                        self._unfinished[recorded_key] = record["batch_id"]
        return self._unfinished.get(key)

    async def resume(self, batch_id: str) -> None:
        """Poll a batch submitted by an earlier run until its results are stored (once per batch)."""
        if batch_id not in self._resumes:
            record = read_json(self.batches_dir / f"{batch_id}.json")
            log.info(
                "resuming %s batch %s from an earlier run (%d requests)",
                self.provider,
                batch_id,
                len(record["requests"]),
            )
            self._resumes[batch_id] = asyncio.create_task(self._collect(batch_id, record, {}))
        await asyncio.shield(self._resumes[batch_id])

    def forget(self, batch_id: str) -> None:
        """Stop treating `batch_id` as resumable in this run (it could not be polled)."""
        if self._unfinished is not None:
            self._unfinished = {k: b for k, b in self._unfinished.items() if b != batch_id}

    async def aclose(self) -> None:
        for task in list(self._tasks) + list(self._resumes.values()) + ([self._flusher] if self._flusher else []):
            task.cancel()


def recorded_answer_format(meta: dict) -> AnswerFormat:
    """The answer format a batch record noted for one request (records from before it was noted: a tool)."""
    tool = meta.get("tool")
    return AnswerFormat(meta.get("answer_mode", "tool" if tool else None), tool)


def _fail_all(batch: dict[str, tuple[Any, asyncio.Future]], error: Exception) -> None:
    for _, future in batch.values():
        if not future.done():
            future.set_exception(error)
