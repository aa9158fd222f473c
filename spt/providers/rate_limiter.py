"""An async limiter of requests, input tokens and output tokens per minute.

Each dimension is a token bucket that holds at most `burst_s` seconds' worth of its rate (one
second by default) and refills continuously, so a run starts with a short burst and then paces
evenly instead of waiting for minute windows. Output tokens are reserved from max_tokens and the
difference is refunded once the real usage is known. Rate-limit headers of the responses
(Anthropic `anthropic-ratelimit-*`, OpenAI/OpenRouter `x-ratelimit-*`) tighten the limits: a
lower advertised limit lowers the rate, a low `remaining` drains the bucket and `remaining: 0`
pauses that dimension until its reset. Reads and writes nothing.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

REFUND_CHECK_S = 0.05  # longest sleep of a waiting request before it looks at the buckets again


@dataclass(frozen=True)
class RateLimits:
    """Per-minute limits; None = unlimited."""

    rpm: float | None = None
    itpm: float | None = None
    otpm: float | None = None


class TokenBucket:
    """One dimension: `per_minute` units refilled evenly, at most `burst_s` seconds' worth banked."""

    def __init__(self, per_minute: float | None, burst_s: float = 1.0):
        self.burst_s = burst_s
        self.per_minute: float | None = None
        self.level = 0.0
        self.updated = time.monotonic()
        self.blocked_until = 0.0
        self.set_rate(per_minute)
        self.level = self.capacity

    @property
    def unlimited(self) -> bool:
        return self.per_minute is None

    @property
    def rate(self) -> float:
        return (self.per_minute or 0.0) / 60.0

    @property
    def capacity(self) -> float:
        return max(self.rate * self.burst_s, 1.0)

    def set_rate(self, per_minute: float | None) -> None:
        self.per_minute = per_minute if per_minute and per_minute > 0 else None
        if not self.unlimited:
            self.level = min(self.level, self.capacity)

    def refill(self, now: float) -> None:
        if not self.unlimited:
            self.level = min(self.capacity, self.level + (now - self.updated) * self.rate)
        self.updated = now

    def wait_for(self, amount: float, now: float) -> float:
        """Seconds until `amount` can be taken (an amount above capacity needs a full bucket)."""
        blocked = max(0.0, self.blocked_until - now)
        if self.unlimited:
            return blocked
        missing = min(amount, self.capacity) - self.level
        return max(blocked, missing / self.rate if missing > 0 else 0.0)

    def take(self, amount: float) -> None:
        """Use `amount` (the level may go below zero for a request larger than the bucket)."""
        if not self.unlimited:
            self.level -= amount

    def adjust(self, amount: float) -> None:
        """Give back (positive) or take more (negative) after the real usage is known."""
        if not self.unlimited:
            self.level = min(self.capacity, self.level + amount)

    def observe(self, limit: float | None, remaining: float | None, reset_s: float | None, now: float) -> None:
        """Tighten from the provider's view: its limit, what it says remains, when that resets."""
        if limit is not None and limit > 0 and (self.unlimited or limit < self.per_minute):
            self.set_rate(limit)
        if remaining is None:
            return
        if not self.unlimited:
            self.level = min(self.level, remaining)
        if remaining < 1 and reset_s is not None and reset_s > 0:
            self.blocked_until = max(self.blocked_until, now + reset_s)


class RateLimiter:
    """Requests, input tokens and output tokens per minute, shared by all calls of one client."""

    def __init__(self, limits: RateLimits = RateLimits(), burst_s: float = 1.0):
        self.requests = TokenBucket(limits.rpm, burst_s)
        self.input_tokens = TokenBucket(limits.itpm, burst_s)
        self.output_tokens = TokenBucket(limits.otpm, burst_s)
        self._lock = asyncio.Lock()  # first come, first served

    @property
    def limits(self) -> RateLimits:
        return RateLimits(self.requests.per_minute, self.input_tokens.per_minute, self.output_tokens.per_minute)

    async def acquire(self, input_tokens: int, output_tokens: int) -> None:
        """Wait until one request with these (estimated input, reserved output) tokens fits, then take it."""
        needs = ((self.requests, 1), (self.input_tokens, input_tokens), (self.output_tokens, output_tokens))
        async with self._lock:
            while True:
                now = time.monotonic()
                for bucket, _ in needs:
                    bucket.refill(now)
                wait = max(bucket.wait_for(amount, now) for bucket, amount in needs)
                if wait <= 0:
                    for bucket, amount in needs:
                        bucket.take(amount)
                    return
                # Look again soon: finished requests refund unused output reservations meanwhile.
                await asyncio.sleep(min(wait, REFUND_CHECK_S))

    def settle(self, estimated_input: int, actual_input: int, reserved_output: int, actual_output: int) -> None:
        """Correct the reservations of one finished request by its real usage."""
        self.input_tokens.adjust(estimated_input - actual_input)
        self.output_tokens.adjust(reserved_output - actual_output)

    def pause(self, seconds: float) -> None:
        """Hold every new request for `seconds` (the provider answered 429 with a retry-after)."""
        until = time.monotonic() + seconds
        self.requests.blocked_until = max(self.requests.blocked_until, until)

    def observe_headers(self, headers: Mapping[str, str]) -> None:
        """Tighten the limits from a response's rate-limit headers (Anthropic or OpenAI style)."""
        now = time.monotonic()
        lower = {k.lower(): v for k, v in headers.items()}
        for bucket, anthropic_name, openai_name in (
            (self.requests, "requests", "requests"),
            (self.input_tokens, "input-tokens", "tokens"),
            (self.output_tokens, "output-tokens", None),
        ):
            limit = _number(lower.get(f"anthropic-ratelimit-{anthropic_name}-limit"))
            remaining = _number(lower.get(f"anthropic-ratelimit-{anthropic_name}-remaining"))
            reset_s = _reset_from_timestamp(lower.get(f"anthropic-ratelimit-{anthropic_name}-reset"))
            if openai_name is not None:
                limit = limit if limit is not None else _number(lower.get(f"x-ratelimit-limit-{openai_name}"))
                if remaining is None:
                    remaining = _number(lower.get(f"x-ratelimit-remaining-{openai_name}"))
                    reset_s = _reset_from_duration(lower.get(f"x-ratelimit-reset-{openai_name}"))
            if limit is not None or remaining is not None:
                bucket.observe(limit, remaining, reset_s, now)


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _reset_from_timestamp(value: str | None) -> float | None:
    """Anthropic's reset: an RFC 3339 time -> seconds from now."""
    if not value:
        return None
    try:
        return max(0.0, datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() - time.time())
    except ValueError:
        return _reset_from_duration(value)


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def _reset_from_duration(value: str | None) -> float | None:
    """OpenAI's reset: a duration like `1s`, `6m0s`, `59.4ms` -> seconds."""
    if not value:
        return None
    parts = _DURATION_PART.findall(value)
    if not parts:
        return _number(value)
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    return sum(float(amount) * scale[unit] for amount, unit in parts)
