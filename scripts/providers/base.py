"""What every provider adapter is: a request renderer and one async call, wire in -> LLMResponse out.

Also the shared translation of SDK/HTTP failures into TransientError (retry) or ProviderError
(fail fast), and the characters/4 token estimate. Reads and writes nothing.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Mapping

from .errors import ProviderError, TransientError
from .retry import parse_retry_after
from .types import LLMRequest, LLMResponse

# Statuses worth retrying: timeout, conflict/lock, rate limit, server errors, Anthropic "overloaded".
RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
ANSWER_WITH_TOOL = "Answer by calling the tool `{name}`; its input is your whole answer."
CHARS_PER_TOKEN = 4


def estimate_tokens(chars: int) -> int:
    """Tokens of `chars` characters of text, estimated (before the provider reports real usage)."""
    return max(1, chars // CHARS_PER_TOKEN)


@dataclass
class WireResult:
    """One call's normalised response plus the HTTP headers (for the rate limiter)."""
    response: LLMResponse
    headers: Mapping[str, str] = field(default_factory=dict)


class ProviderAdapter:
    """Base of the adapters: `render(request)` gives the JSON body, `send(request)` makes the call.

    An SDK adapter sets `sdk_module` (the imported `anthropic` or `openai` package) for translate_error."""
    name = "base"
    base_url: str | None = None
    sdk_module: Any = None

    def render(self, request: LLMRequest) -> dict[str, Any]:
        raise NotImplementedError

    async def send(self, request: LLMRequest) -> WireResult:
        raise NotImplementedError

    async def aclose(self) -> None:
        pass

    def translate_error(self, exc: Exception) -> Exception:
        """An SDK exception -> TransientError (retry) or ProviderError (fail fast); others unchanged.

        Both SDKs name their exception classes alike."""
        sdk = self.sdk_module
        if isinstance(exc, sdk.APIStatusError):
            message = error_message(exc.body, exc.message)
            return status_failure(self.name, exc.status_code, message, exc.response.headers)
        if isinstance(exc, sdk.APIConnectionError):   # includes timeouts and dropped connections
            return TransientError(f"{self.name} connection failed: {type(exc).__name__}")
        if isinstance(exc, (sdk.APIResponseValidationError, ValueError)):
            return TransientError(f"{self.name} sent an unreadable response: {type(exc).__name__}")
        return exc


async def parse_raw(raw: Any) -> Any:
    """The parsed body of an SDK raw response (`parse()` is async in anthropic, sync in openai)."""
    parsed = raw.parse()
    return await parsed if inspect.isawaitable(parsed) else parsed


def status_failure(provider: str, status: int, message: str, headers: Mapping[str, str] | None) -> Exception:
    """The exception for an HTTP error status: TransientError when retryable, else ProviderError."""
    text = f"{provider} HTTP {status}: {message}"
    if status in RETRYABLE_STATUSES:
        return TransientError(text, retry_after=parse_retry_after(headers), status=status,
                              rate_limited=status == 429)
    return ProviderError(text, status=status)


def error_message(body: Any, fallback: str) -> str:
    """The provider's own error text from an error body ({"error": {"message": ...}} in both APIs)."""
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if isinstance(error, str):
            return error
    return fallback
