"""The provider layer's exceptions, and the redaction that keeps API keys out of their messages.

Reads the API-key environment variables (the providers' from registry.py) only to know which strings
to redact; writes nothing.
"""

from __future__ import annotations

import os
from typing import Any

OTHER_KEY_VARIABLES = ("HUGGINGFACE_API_TOKEN", "HF_TOKEN")  # redacted too, besides the providers' API keys

_registered_secrets: set[str] = set()


def register_secret(secret: str) -> None:
    """Redact `secret` too (an API key passed in directly rather than through the environment)."""
    _registered_secrets.add(secret)


def redact(text: str) -> str:
    """`text` with every known API key (the environment's and the registered ones) replaced by ***."""
    from .registry import API_KEY_VARIABLES  # here, not above: the providers the registry imports import this module

    secrets = [os.environ.get(name, "") for name in API_KEY_VARIABLES + OTHER_KEY_VARIABLES] + list(_registered_secrets)
    for secret in secrets:
        if secret and len(secret) >= 8:
            text = text.replace(secret, "***")
    return text


class ProviderError(Exception):
    """A call failed for good (a 4xx other than 429, retries exhausted, ...); carries the provider's message.

    `fatal`: every other call of the run would fail the same way (exhausted quota, a model that is
    gone): the stage stops instead of recording one failure per item."""

    def __init__(self, message: str, *, status: int | None = None, fatal: bool = False):
        super().__init__(redact(message))
        self.status = status
        self.fatal = fatal


class ModelUnavailable(ProviderError):
    """The provider does not serve the model (retired or unknown), found before any paid call."""

    def __init__(self, model: str, state: str, reason: str, current: list[str]):
        listed = f"; current models: {', '.join(current)}" if current else ""
        super().__init__(f"{model} is {state} ({reason}){listed}", fatal=True)


class MissingAPIKeyError(ProviderError):
    """The API key variable a provider needs is not set."""

    def __init__(self, variable: str, provider: str):
        self.variable = variable
        self.provider = provider
        super().__init__(self.advising("--provider mock"))

    def advising(self, mock_flag: str) -> str:
        """The message, naming `mock_flag` as the way to run offline (stage 2's is `--inference mock`)."""
        return (
            f"{self.variable} is not set (environment or .env), but the {self.provider} provider needs it; "
            f"set it, or run offline on generated fake data with `{mock_flag}`"
        )


class CostLimitReached(ProviderError):
    """--max_cost is spent: no new paid call starts (calls in flight finish and are cached)."""

    def __init__(self, spent_usd: float, limit_usd: float):
        super().__init__(f"cost limit reached: spent ${spent_usd:.4f} of --max_cost ${limit_usd:.4f}")
        self.spent_usd = spent_usd
        self.limit_usd = limit_usd


class InvalidOutputError(ProviderError):
    """The model never produced a valid answer (schema/validator problems or max_tokens stops)."""

    def __init__(self, problems: list[str], last_response: Any):
        summary = "; ".join(problems[:5]) + (f" (+{len(problems) - 5} more)" if len(problems) > 5 else "")
        super().__init__(f"no valid answer after {getattr(last_response, 'attempts', '?')} attempts: {summary}")
        self.problems = list(problems)
        self.last_response = last_response


class Refused(ProviderError):
    """The model refused to answer: an outcome, not a malformed answer, so it is never re-asked (the same
    conversation would be refused again, and every try is paid). `response` is the refused answer, paid for
    (its usage and cost); `text` what the model said, if anything.

    Anthropic: a 200 answer with `stop_reason: "refusal"` when its classifiers stop the answer, billed up to
    there (https://platform.claude.com/docs/en/test-and-evaluate/strengthen-guardrails/handle-streaming-refusals);
    OpenAI: `message.refusal` set and no content (https://platform.openai.com/docs/guides/structured-outputs#refusals),
    or `finish_reason: "content_filter"`."""

    def __init__(self, response: Any):
        self.response = response
        self.text = response.text
        said = " ".join(response.text.split())[:300]
        super().__init__(f"refused by {response.model}" + (f": {said}" if said else ""))


class TransientError(Exception):
    """A failure worth retrying (429, 529/overloaded, 5xx, timeout, dropped connection, garbled body).

    `retry_after` is the provider's requested wait in seconds, when it sent one.
    """

    def __init__(
        self, message: str, *, retry_after: float | None = None, status: int | None = None, rate_limited: bool = False
    ):
        super().__init__(redact(message))
        self.retry_after = retry_after
        self.status = status
        self.rate_limited = rate_limited
