"""Bounded retries with exponential backoff and full jitter, honouring the provider's retry-after.

Reads and writes nothing.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from .errors import ProviderError, TransientError

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """At most `max_attempts` tries; the wait after the n-th failure is uniform in
    [0, min(cap_s, base_s * 2**(n-1))] (full jitter), but never shorter than the provider's
    retry-after (itself capped at cap_s)."""

    max_attempts: int = 8
    base_s: float = 1.0
    cap_s: float = 60.0

    def delay(self, failures: int, retry_after: float | None = None) -> float:
        backoff = random.uniform(0, min(self.cap_s, self.base_s * 2 ** (failures - 1)))
        if retry_after is not None:
            return max(backoff, min(retry_after, self.cap_s))
        return backoff


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait from `retry-after-ms` or `retry-after` (seconds or an HTTP date), if present."""
    if not headers:
        return None
    value = headers.get("retry-after-ms")
    if value is not None:
        try:
            return max(0.0, float(value) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


async def with_retries(
    call: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    on_retry: Callable[[TransientError, float], None] | None = None,
) -> T:
    """`await call()`, retrying TransientError up to the policy's bound; then ProviderError."""
    for failures in range(1, policy.max_attempts + 1):
        try:
            return await call()
        except TransientError as exc:
            if failures == policy.max_attempts:
                raise ProviderError(
                    f"gave up after {failures} attempts; last error: {exc}", status=exc.status
                ) from None
            wait = policy.delay(failures, exc.retry_after)
            if on_retry is not None:
                on_retry(exc, wait)
            await asyncio.sleep(wait)
    raise AssertionError("unreachable")
