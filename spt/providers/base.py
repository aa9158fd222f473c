"""What every provider is: a `ProviderSpec` (its name, environment variables, model names, request
rendering, answer format, adapter and batcher; registry.py lists them) and its adapter, a request
renderer and one async call, wire in -> LLMResponse out.

Also the shared translation of SDK/HTTP failures into TransientError (retry) or ProviderError
(fail fast), and the characters/4 token estimate. Reads and writes nothing.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import ProviderError, TransientError
from .models import ModelInfo, ModelRegistry
from .retry import parse_retry_after
from .types import LLMRequest, LLMResponse

# Statuses worth retrying: timeout, conflict/lock, rate limit, server errors, Anthropic "overloaded".
RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
# 429s that no wait cures: OpenAI's exhausted quota (code insufficient_quota) and Anthropic's reached spend
# limit (error.details.error_code enforced_spend_limit_reached, sent without retry-after).
NOT_RETRYABLE_CODES = frozenset({"insufficient_quota", "enforced_spend_limit_reached"})
ANSWER_WITH_TOOL = "Answer by calling the tool `{name}`; its input is your whole answer."
CHARS_PER_TOKEN = 4


def estimate_tokens(chars: int) -> int:
    """Tokens of `chars` characters of text, estimated (before the provider reports real usage)."""
    return max(1, chars // CHARS_PER_TOKEN)


@dataclass(frozen=True)
class AnswerFormat:
    """How a JSON answer is asked for: `structured` (the provider's native schema mode), `tool` (a forced
    tool), `auto_tool` (tool_choice auto + an instruction; the client re-asks without a call), or None
    (a plain text answer). `tool_name` names the request's tool."""

    mode: str | None
    tool_name: str | None


@dataclass(frozen=True)
class ProviderSpec:
    """Everything the rest of the pipeline asks about one provider; each provider module declares one
    and registry.PROVIDERS lists them. Nothing outside a provider's module compares provider names.

    `render(request, info, self_hosted)` and `answer_format(request, info)` need no SDK, key or network
    (the dry runs and the estimate use them); `adapter(api_key, base_url, timeout_s, models, self_hosted)`
    makes the client's adapter; `self_hosted(base_url, choice)` tells from --base_url and --self_hosted
    whether the endpoint is a server of the user's own (vLLM, SGLang); `batcher` is the
    batch.ProviderBatcher subclass behind --batch_api, None where the provider has no batch API."""

    name: str  # --provider value, response-cache and ledger key
    title: str  # the provider's own name, for messages
    render: Callable[..., dict[str, Any]]
    answer_format: Callable[..., AnswerFormat]
    adapter: Callable[..., ProviderAdapter]
    api_key_variable: str | None = None  # None: needs no key
    base_url_variable: str | None = None  # the endpoint's environment variable (--base_url wins)
    default_base_url: str | None = None  # the endpoint without an entry in config/providers.json (None: the SDK's)
    names_model: Callable[[str], bool] = lambda model: False  # a model id that names this provider
    model_hint: str = ""  # those ids in words, for --provider's help
    batcher: type | None = None
    batch_about: str = ""  # its batch API in words, for --batch_api's help
    thinking_off: tuple[str, ...] = ()  # the models.json thinking_off switches it honours
    adaptive_thinks_by_default: bool = True  # an `adaptive` model thinks unless told not to
    self_hosted: Callable[[str | None, str | None], bool] = lambda base_url, choice: False
    serves_stage_2: bool = False  # offered as a stage-2 --inference engine
    simulated: bool = False  # answers offline: no key, free, no caching, any flag


def model_prefixes(*prefixes: str) -> Callable[[str], bool]:
    """A ProviderSpec.names_model for ids that start with one of `prefixes`."""
    return lambda model: model.startswith(prefixes)


@dataclass
class WireResult:
    """One call's normalised response plus the HTTP headers (for the rate limiter)."""

    response: LLMResponse
    headers: Mapping[str, str] = field(default_factory=dict)


class ProviderAdapter:
    """Base of the adapters: `render(request)` gives the JSON body, `send(request)` makes the call.

    Requests are shaped from the model's registry entry (`info`). An SDK adapter sets `sdk_module`
    (the imported `anthropic` or `openai` package) for translate_error."""

    name = "base"
    base_url: str | None = None
    sdk_module: Any = None
    self_hosted = False  # an OpenAI-compatible server of the user's own (vLLM, SGLang)
    quiet = False  # no warning for a model missing from config/models.json (the mock)

    def __init__(self, models: ModelRegistry):
        self.models = models

    def info(self, model: str) -> ModelInfo:
        return self.models.lookup(model, self.name, self_hosted=self.self_hosted, quiet=self.quiet)

    def answer_format(self, request: LLMRequest) -> AnswerFormat:
        raise NotImplementedError

    def render(self, request: LLMRequest) -> dict[str, Any]:
        raise NotImplementedError

    async def model_status(self, model: str) -> str | None:
        """None when the provider serves `model`, else a short reason (checked before the first paid call)."""
        return None

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
            if exc.status_code == 429 and error_codes(exc.body) & NOT_RETRYABLE_CODES:
                return ProviderError(
                    f"{self.name} HTTP 429: {message} (not retried: waiting does not help; "
                    "check the account's billing and limits)",
                    status=429,
                    fatal=True,
                )
            return status_failure(self.name, exc.status_code, message, exc.response.headers)
        if isinstance(exc, sdk.APIConnectionError):  # includes timeouts and dropped connections
            return TransientError(f"{self.name} connection failed: {type(exc).__name__}")
        if isinstance(exc, (sdk.APIResponseValidationError, ValueError)):
            return TransientError(f"{self.name} sent an unreadable response: {type(exc).__name__}")
        return exc


def parse_json_answer(text: str) -> tuple[Any, dict[str, Any]]:
    """(parsed JSON, extra) of a structured-output text; unparseable text gives (None, {'raw_tool_arguments': text})."""
    try:
        return json.loads(text), {}
    except json.JSONDecodeError:
        return None, {"raw_tool_arguments": text}


async def parse_raw(raw: Any) -> Any:
    """The parsed body of an SDK raw response (`parse()` is async in anthropic, sync in openai)."""
    parsed = raw.parse()
    return await parsed if inspect.isawaitable(parsed) else parsed


def status_failure(provider: str, status: int, message: str, headers: Mapping[str, str] | None) -> Exception:
    """The exception for an HTTP error status: TransientError when retryable, else ProviderError."""
    text = f"{provider} HTTP {status}: {message}"
    if status in RETRYABLE_STATUSES:
        return TransientError(text, retry_after=parse_retry_after(headers), status=status, rate_limited=status == 429)
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


def error_codes(body: Any) -> set[str]:
    """Every code/type string in an error body (both APIs' shapes, Anthropic's error.details included)."""
    codes: set[str] = set()
    for node in (body, body.get("error") if isinstance(body, dict) else None):
        if isinstance(node, dict):
            codes |= {str(node[k]) for k in ("code", "type") if node.get(k)}
            details = node.get("details")
            if isinstance(details, dict) and details.get("error_code"):
                codes.add(str(details["error_code"]))
    return codes
