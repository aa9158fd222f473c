"""What the fake's provider parts share: the fault kinds, the ledger (LedgerEntry, read_ledger), the
canonical request key, token counting, the rate window, the answer and plan records, the rejection
(`_Reject`, an HTTP error in the provider's own format), the schema helpers, and SOURCES (the
documentation tags the rule comments of several parts cite). Reads spt/providers/schema_sampler.py alone.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import random
import traceback
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def _load_schema_sampler():
    """Load spt/providers/schema_sampler.py alone: the fake must not import the client it tests."""
    path = Path(__file__).resolve().parents[2] / "spt" / "providers" / "schema_sampler.py"
    spec = importlib.util.spec_from_file_location("_fake_server_schema_sampler", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_sampler = _load_schema_sampler()

FAULT_KINDS = ("429", "529", "500", "drop", "malformed_tool", "truncated_tool", "latency")
# Out-of-money errors: never drawn unless named in `fault_kinds` / `set_faults` / a script's "fault".
# credit_balance and insufficient_quota are "no credit left" (Anthropic 400, OpenAI 429, OpenRouter 402);
# spend_limit is Anthropic's 429 `enforced_spend_limit_reached` (OpenAI/OpenRouter answer their quota error).
BILLING_FAULTS = ("credit_balance", "spend_limit", "insufficient_quota")
# A refusal is a 200 answer, not an HTTP error [refusals-anthropic][refusals-openai]: never drawn unless named in
# `fault_kinds` / `set_faults` / a script's "fault", or unless the request matches `refuse(pattern)`.
REFUSAL = "refusal"
REFUSED_PREFIX_CHARS = 8
HEADER_LIMIT_WHEN_UNLIMITED = 1_000_000
WINDOW_S = 60.0
STREAM_PIECE_CHARS = 40
EFFORT_LADDER = ("low", "medium", "high", "xhigh", "max")  # [effort]; SDK output_config_param.py
TODAY = "2026-11-30"  # the day the rule tables describe
EPOCH = "1970-01-01"  # the Models API's created_at for an unknown release date (SDK ModelInfo)
ERROR_MESSAGES = {
    429: "Rate limit exceeded; retry later.",
    500: "Internal server error.",
    502: "Your chosen model is down or we received an invalid response from it.",
    503: "The engine is currently overloaded, please try again later.",
    529: "Overloaded",
}


# --------------------------------------------------------------------------- sources
# Tags of the rule comments shared by several parts or cited by the server (each part holds its own tags in its
# SOURCES; parts.SOURCES, exported as fake_provider.SOURCES, merges them). "[3p]" = a third-party page (SDK, reseller, issue thread, blog);
# everything else is the provider's own documentation or its official SDK as installed in .venv.
SOURCES = {
    "sonnet-5-5-new": "https://platform.claude.com/docs/en/models/sonnet-5-5/whats-new-sonnet-5-5 ; between_tools "
    "section: https://platform.claude.com/docs/zh-CN/models/sonnet-5-5/whats-new-sonnet-5-5",
    "thinking": "https://platform.claude.com/docs/build-with-claude/thinking (thinking tokens are billed as output "
    "tokens even when not returned, and count toward max_tokens)",
    "effort": "https://platform.claude.com/docs/it/build-with-claude/effort.md (models with effort) ; "
    "https://platform.claude.com/docs/en/build-with-claude/effort (defaults: high; medium on Opus 5.5, "
    "Haiku 5.5)",
    "cache-min": "https://platform.claude.com/docs/zh-CN/about-claude/models/whats-new-opus-5 ; https://openrouter.ai/"
    "docs/cookbook/evaluate-and-optimize/model-migrations/claude-5-5 ; [3p] https://docs.litellm.ai/docs/"
    "completion/prompt_caching.md ; Fable: [3p] https://fableguide.com/glossary/ (512) vs another [3p] "
    "page (2048)",
    "refusals-anthropic": "https://platform.claude.com/docs/en/test-and-evaluate/strengthen-guardrails/"
    "handle-streaming-refusals (200 answer, stop_reason 'refusal', stop_details {type, category, "
    "explanation} on message_delta when streamed, the text streamed so far kept, output tokens "
    "billed up to the refusal, the magic test string) ; the SDK's types/message.py, "
    "refusal_stop_details.py, stop_reason.py",
    "openai-quota": "[3p] https://github.com/mattvr/ShellGPT/issues/23",
    "refusals-openai": "https://platform.openai.com/docs/guides/structured-outputs#refusals (a refusal comes back as "
    "a 200 with `message.refusal` set and no content; finish_reason stop) ; the SDK's "
    "types/chat/chat_completion_message.py (`refusal: Optional[str]`, content Optional) and "
    "chat_completion_chunk.py (`delta.refusal`)",
    "batch-ttl": "https://docs.claude.com/ja/docs/build-with-claude/batch-processing (use the 1-hour cache duration "
    "with batches) ; prices per TTL: https://platform.claude.com/docs/en/about-claude/pricing",
    "thinking-amount": "ASSUMPTION: no provider publishes how many tokens a model thinks; `thinking_tokens` sets it "
    "per call at the model's default effort, doubled per effort step above, halved per step below",
    "openai-cache": "https://developers.openai.com/docs/guides/prompt-caching ('enabled automatically for prompts "
    "that are 1024 tokens or longer') ; schema as prefix: [3p, quoting it] https://portkey.ai/docs/"
    "integrations/llms/openai/prompt-caching-openai",
    "or-reasoning": "https://www.openrouter.ai/docs/use-cases/reasoning-tokens",
    "or-usage": "https://openrouter.ai/docs/use-cases/usage-accounting (usage with cost on every response; "
    "include flags deprecated)",
}


# --------------------------------------------------------------------------- helpers


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def request_key(body: Any) -> str:
    """sha256 of the canonical JSON body: identical requests share a key."""
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()


def count_tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


def break_tool_input(value: dict, schema: dict, rng: random.Random) -> dict:
    """A copy of a valid tool input that violates `schema`: a wrong enum or a missing required field."""
    broken = json.loads(json.dumps(value))
    target, target_schema = broken, schema
    # Descend into the first array item / nested object so the flaw sits where validators look hardest.
    while True:
        nested = next(
            (
                (name, sub)
                for name, sub in target_schema.get("properties", {}).items()
                if sub.get("type") in ("object", "array") and target.get(name)
            ),
            None,
        )
        if nested is None:
            break
        name, sub = nested
        if sub.get("type") == "array":
            if not isinstance(sub.get("items"), dict) or not isinstance(target[name][0], dict):
                break
            target, target_schema = target[name][0], sub["items"]
        else:
            target, target_schema = target[name], sub
    enums = [name for name, sub in target_schema.get("properties", {}).items() if "enum" in sub and name in target]
    required = [name for name in target_schema.get("required", []) if name in target]
    if enums and (not required or rng.random() < 0.5):
        target[rng.choice(enums)] = "NOT_A_LEGAL_VALUE"
    elif required:
        del target[rng.choice(required)]
    else:
        target["unexpected_field"] = True
    return broken


def _subschemas(schema: Any, path: tuple = ()):
    """(path, node) for `schema` and every schema nested in it."""
    if not isinstance(schema, dict):
        return
    yield path, schema
    for key in ("properties", "$defs", "definitions", "patternProperties"):
        for name, sub in (schema.get(key) or {}).items() if isinstance(schema.get(key), dict) else ():
            yield from _subschemas(sub, path + (key, name))
    for key in ("items", "additionalProperties", "not", "if", "then", "else", "contains"):
        yield from _subschemas(schema.get(key), path + (key,))
    for key in ("anyOf", "allOf", "oneOf", "prefixItems"):
        for index, sub in enumerate(schema.get(key) or [] if isinstance(schema.get(key), list) else []):
            yield from _subschemas(sub, path + (key, index))


def _types(node: dict) -> set:
    kind = node.get("type")
    kinds = set(kind) if isinstance(kind, list) else {kind} if kind else set()
    return kinds | ({"object"} if "properties" in node else set())


def _thought_of(rng: random.Random, tokens: int) -> str:
    """A thought of exactly `tokens` tokens (count_tokens: 4 characters each)."""
    text = ""
    while len(text) < 4 * tokens:
        text += _sampler.first_person_text(rng, 3) + " "
    return text[: 4 * tokens]


def _user_texts(body: dict) -> list[str]:
    """The text of every user turn of a request (Anthropic content blocks or OpenAI strings)."""
    texts = []
    for message in body.get("messages") or []:
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            texts.append(
                " ".join(block.get("text", "") for block in content if isinstance(block, dict))
                if isinstance(content, list)
                else content
                if isinstance(content, str)
                else ""
            )
    return texts


def _rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def _date_time(day: str | None) -> str | None:
    return f"{day}T00:00:00Z" if day else None


def _duration(seconds: float) -> str:
    """OpenAI's reset format: `1s`, `6m0s`, `20ms`."""
    if seconds < 1:
        return f"{int(seconds * 1000)}ms"
    minutes, secs = divmod(int(math.ceil(seconds)), 60)
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def _pieces(text: str) -> list[str]:
    return [text[i : i + STREAM_PIECE_CHARS] for i in range(0, len(text), STREAM_PIECE_CHARS)] or [""]


def _price(value: float) -> str:
    return format(value, ".12f").rstrip("0").rstrip(".") or "0"


# --------------------------------------------------------------------------- records


@dataclass
class LedgerEntry:
    api: str  # anthropic | anthropic_batch | openai | openai_batch | openrouter | batch_control
    # | model_lookup
    path: str
    body: Any
    status: int
    fault: str | None
    completed: bool  # a full 200 body was written (for batches: the request succeeded)
    key: str  # sha256 of the canonical body
    usage: dict | None  # input_tokens (uncached), output_tokens (thinking included),
    # cache_creation/read_input_tokens, thinking_tokens
    request_id: str = ""  # unique per entry (the provider's request id, or a message / error id)
    time: float = 0.0
    dropped: list[str] | None = None  # OpenRouter: request parameters the model ignored (silently dropped)
    cost_usd: float | None = None  # what the request was billed at its own model's list price (answered only)


def read_ledger(path: str | Path) -> list[LedgerEntry]:
    """The entries a server wrote to its `ledger_path` (JSONL); a later line with the same request_id
    corrects the earlier one (a send that failed after the entry was written)."""
    entries: dict[str, LedgerEntry] = {}
    for line in Path(path).read_text().splitlines():
        if line.strip():
            entry = LedgerEntry(**json.loads(line))
            entries[entry.request_id] = entry
    return list(entries.values())


@dataclass
class _Answer:
    """What the 'model' says, before it is shaped into one provider's JSON."""

    text: str
    thoughts: list[str]  # the full thinking of each thinking block (billed even where not shown)
    tool_name: str | None
    tool_json: str | None  # the tool arguments as sent (cut short when truncated)
    tool_input: Any
    truncated: bool
    refused: bool = False  # stopped by a refusal [refusals-anthropic][refusals-openai]

    @property
    def thinking(self) -> str:
        return "\n\n".join(self.thoughts)

    @property
    def thinking_tokens(self) -> int:
        return sum(count_tokens(t) for t in self.thoughts)

    @property
    def output_tokens(self) -> int:
        """Thinking tokens count as output tokens [thinking]."""
        return (
            sum(count_tokens(t) for t in self.thoughts) + count_tokens(self.text) + count_tokens(self.tool_json or "")
        )


@dataclass
class _Plan:
    """A validated paid request: which model answers it and which body it sees."""

    api: str  # anthropic | openai | openrouter
    model: str  # the canonical model id
    rules: Any  # ClaudeRules | OpenAIRules | OpenRouterModel | None (a served model)
    body: dict  # what the model sees (OpenRouter: without the dropped parameters)
    parts: Callable[[dict], list[tuple[str, bool]]]  # the body's prompt, split at its cache breakpoints
    min_cache: int = 0
    dropped: list[str] | None = None

    @property
    def namespace(self) -> str:
        return f"{self.api}:{self.model}"

    def prompt_parts(self) -> list[tuple[str, bool]]:
        return self.parts(self.body)


class _RateWindow:
    """Sliding 60 s window of admitted requests: [time, input tokens, output tokens]."""

    def __init__(self, rpm: int | None, itpm: int | None, otpm: int | None):
        self.rpm, self.itpm, self.otpm = rpm, itpm, otpm
        self.events: deque[list] = deque()

    def _prune(self, now: float) -> None:
        while self.events and self.events[0][0] <= now - WINDOW_S:
            self.events.popleft()

    def _wait_until_below(self, column: int, limit: int, need: int, now: float) -> float | None:
        used = sum(event[column] for event in self.events)
        if used + need <= limit:
            return None
        for event in self.events:
            used -= event[column]
            if used + need <= limit:
                return event[0] + WINDOW_S - now
        return WINDOW_S

    def admit(self, input_tokens: int, now: float) -> tuple[list | None, float]:
        """(event to fill with output tokens, 0) when admitted, else (None, seconds to wait)."""
        self._prune(now)
        waits = []
        if self.rpm is not None and len(self.events) >= self.rpm:
            waits.append(self.events[0][0] + WINDOW_S - now)
        if self.itpm is not None:
            waits.append(self._wait_until_below(1, self.itpm, input_tokens, now))
        if self.otpm is not None:
            waits.append(self._wait_until_below(2, self.otpm, 1, now))  # room for one more token
        waits = [w for w in waits if w is not None]
        if waits:
            return None, max(max(waits), 0.001)
        event = [now, input_tokens, 0]
        self.events.append(event)
        return event, 0.0

    def state(self, now: float) -> dict[str, tuple[int, int, float]]:
        """name -> (limit, remaining, reset epoch) for the rate-limit headers."""
        self._prune(now)
        reset = self.events[0][0] + WINDOW_S if self.events else now
        used = {
            "requests": len(self.events),
            "input": sum(e[1] for e in self.events),
            "output": sum(e[2] for e in self.events),
        }
        limits = {"requests": self.rpm, "input": self.itpm, "output": self.otpm}
        return {
            name: (
                limit or HEADER_LIMIT_WHEN_UNLIMITED,
                max(0, (limit or HEADER_LIMIT_WHEN_UNLIMITED) - used[name]),
                reset,
            )
            for name, limit in limits.items()
        }


class _Reject(Exception):
    """An HTTP error answer: status, message, extra headers, fault name; optionally the provider's error type,
    code, param and details, and whether a 429 gets a retry-after header."""

    def __init__(
        self,
        status: int,
        message: str,
        headers: dict | None = None,
        fault: str | None = None,
        *,
        error_type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        details: dict | None = None,
        retry_after: bool = True,
    ):
        super().__init__(message)
        self.status, self.message, self.headers, self.fault = status, message, headers or {}, fault
        self.error_type, self.code, self.param, self.details = error_type, code, param, details
        self.retry_after = retry_after


class _Drop(Exception):
    """Close the connection without answering."""


def _retry_after(seconds: float) -> dict[str, str]:
    return {"retry-after": str(max(1, math.ceil(seconds))), "retry-after-ms": str(max(1, int(seconds * 1000)))}


def _internal_error(error: Exception) -> _Reject:
    traceback.print_exception(error)
    return _Reject(500, f"fake provider server error: {error!r}")


# --------------------------------------------------------------------------- what a provider part declares


@dataclass(frozen=True)
class Route:
    """One endpoint of a part: `method` and a regex the whole path matches. `handler(fake, query, body,
    *groups)` answers a free call (a JSON-able dict, or bytes) recorded in the ledger as `ledger_api`;
    no handler: the part's paid model call. `auth`: the part's auth check applies. `when(headers)`: the
    route applies only to such requests (tried before the routes without a condition)."""

    method: str
    pattern: str
    handler: Callable[..., Any] | None = None
    ledger_api: str = "batch_control"
    auth: bool = True
    when: Callable[[Mapping[str, str]], bool] | None = None


@dataclass(frozen=True)
class FakeApi:
    """What one provider part (a `*_api.py` module's `API`) tells the server: the server decides nothing
    by a provider's name.

    `name` is the ledger api of its model calls (and of its rate window), `batch_api` that of its batch
    model calls (billed at half price). `methods` is its mixin of FakeProviderServer (its endpoints'
    handlers, `validate` and `answer` read the server's shared state and answer logic); `stores` the
    dict attributes it keeps objects in (created empty; a value's "timer" is cancelled on stop).
    `validate(fake, body)` -> _Plan or a _Reject; `answer(fake, body, plan, fault, scripted, cache)` ->
    (answer JSON, ledger usage, SSE pieces or None). `env(url)`: the variables a subprocess needs to talk
    to the server at `url`. `check_auth(headers)` raises a _Reject. `error_body(reject, request_id)` and
    `billing_reject(fault)`: its error JSON and its out-of-money error. `fault_status(fault)`: the HTTP
    status of a 429/529/503/500 fault. `rate_limit_headers(state, now)`: the headers of the window
    `state` (_RateWindow.state). `bill(body, usage)`: USD at full price. Request ids are `id_prefix` + 24
    hex digits (32 without a prefix; paid calls `paid_id_prefix` where given) in the header `id_header`.
    `refusal_trigger`: a text always refused. `window_counts_cache_read`: cache reads count toward its
    input-token window. `unrouted_prefix`: unknown paths under it get its error body (longest wins).
    `sources`: the documentation tags its rule comments cite (its module's SOURCES)."""

    name: str
    methods: type
    routes: tuple[Route, ...]
    validate: Callable[..., Any]
    answer: Callable[..., tuple[dict, dict, list[bytes] | None]]
    env: Callable[[str], dict[str, str]]
    check_auth: Callable[[Mapping[str, str]], None]
    error_body: Callable[[Any, str | None], dict]
    billing_reject: Callable[[str], Any]
    rate_limit_headers: Callable[[dict, float], dict[str, str]]
    bill: Callable[[dict, dict], float]
    batch_api: str | None = None
    stores: tuple[str, ...] = ()
    fault_status: Callable[[str], int] = int
    id_header: str = "x-request-id"
    id_prefix: str = ""
    paid_id_prefix: str | None = None
    refusal_trigger: str | None = None
    window_counts_cache_read: bool = True
    unrouted_prefix: str | None = None
    sources: Mapping[str, str] = field(default_factory=dict)

    @property
    def apis(self) -> tuple[str, ...]:
        """Its ledger apis of paid model calls."""
        return (self.name, self.batch_api) if self.batch_api else (self.name,)


def bearer_auth(headers: Mapping[str, str]) -> None:
    """The auth check of an API keyed by `Authorization: Bearer ...` (OpenAI and its look-alikes)."""
    if not (headers.get("authorization") or "").startswith("Bearer "):
        raise _Reject(401, "You didn't provide an API key (Authorization: Bearer ...).")


def list_price_usd(prices: Mapping[str, tuple[float, ...]], model: str, body: dict, usage: dict) -> float:
    """USD for `usage` at `model`'s list price in `prices` ((input, output, cache write 5 min, cache write 1 h,
    cache read) per million tokens; 0 for a model without one); cache writes at the 1-hour price where the
    body's breakpoints ask for the 1-hour TTL."""
    if model not in prices:
        return 0.0
    price_in, price_out, write_5m, write_1h, price_read = prices[model]
    write = write_1h if '"ttl": "1h"' in json.dumps(body) else write_5m
    return (
        usage.get("input_tokens", 0) * price_in
        + usage.get("output_tokens", 0) * price_out
        + usage.get("cache_creation_input_tokens", 0) * write
        + usage.get("cache_read_input_tokens", 0) * price_read
    ) / 1e6
