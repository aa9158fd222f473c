"""A local fake of the Anthropic and OpenAI(-compatible) HTTP APIs for tests and benchmarks.

`FakeProviderServer` serves real HTTP on 127.0.0.1 (a free port) from a background thread;
the official SDKs talk to it through their base-URL options:

- Anthropic Messages `POST /v1/messages` (plain and SSE streaming, text, thinking blocks,
  forced tool use, prompt-cache usage computed from the request's cache breakpoints) and
  Message Batches (`/v1/messages/batches`, retrieve, results JSONL, list, cancel);
- OpenAI Chat Completions `POST /v1/chat/completions` (tools, forced tool_choice, automatic
  prefix caching in `prompt_tokens_details.cached_tokens`, optional reasoning text,
  streaming); OpenRouter uses the same endpoint;
- OpenAI Files + Batch API (`POST /v1/files` multipart upload, `GET /v1/files/{id}` and
  `/content`, `POST /v1/batches`, `GET /v1/batches/{id}`, `POST /v1/batches/{id}/cancel`) for
  `/v1/chat/completions` batches: each JSONL line is answered like a plain chat completion.

Batches end `batch_delay_s` after they are created; their requests enter the ledger as
`anthropic_batch` / `openai_batch`, their control calls (create, poll, upload, download) as
free `batch_control` entries.

Answers are deterministic: a forced tool gets an input sampled from its JSON schema with an
rng seeded by `seed` and the request's canonical hash; `script(fn)` overrides single
answers. Faults (429, 529/503, 500, dropped connections, extra latency, malformed or
truncated tool input) are drawn per request from a seeded rng; `rpm`/`itpm`/`otpm` enforce
sliding-window rate limits. Every request goes into a thread-safe ledger (optionally also a
JSONL file). Standalone: `python tests/fake_provider_server.py --port 0 --latency 0.2
--rpm 3000` prints its URL and serves until killed. Reads nothing; writes only `ledger_path`.
"""
from __future__ import annotations

import argparse
import email.policy
import hashlib
import importlib.util
import json
import math
import random
import signal
import socket
import threading
import time
import traceback
import uuid
from collections import Counter, deque
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

import jiter


def _load_schema_sampler():
    """Load scripts/providers/schema_sampler.py alone: the fake must not import the client it tests."""
    path = Path(__file__).resolve().parent.parent / "scripts" / "providers" / "schema_sampler.py"
    spec = importlib.util.spec_from_file_location("_fake_server_schema_sampler", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_sampler = _load_schema_sampler()

FAULT_KINDS = ("429", "529", "500", "drop", "malformed_tool", "truncated_tool", "latency")
PAID_APIS = ("anthropic", "anthropic_batch", "openai", "openai_batch")   # batch_control requests cost nothing
HEADER_LIMIT_WHEN_UNLIMITED = 1_000_000
MAX_CACHE_BREAKPOINTS = 4
WINDOW_S = 60.0
STREAM_PIECE_CHARS = 40

ANTHROPIC_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                         404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
                         500: "api_error", 529: "overloaded_error"}
OPENAI_ERROR_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 404: "invalid_request_error",
                      429: "rate_limit_exceeded", 500: "server_error", 503: "server_error"}
ERROR_MESSAGES = {429: "Rate limit exceeded; retry later.", 500: "Internal server error.",
                  503: "The engine is currently overloaded, please try again later.", 529: "Overloaded"}


# --------------------------------------------------------------------------- helpers

def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def request_key(body: Any) -> str:
    """sha256 of the canonical JSON body: identical requests share a key."""
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()


def count_tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


def _without_cache_control(part: Any) -> Any:
    return {k: v for k, v in part.items() if k != "cache_control"} if isinstance(part, dict) else part


def anthropic_prompt_parts(body: dict) -> list[tuple[str, bool]]:
    """(canonical text, ends a cache breakpoint) for tools -> system blocks -> message blocks."""
    parts: list[tuple[str, bool]] = []
    for tool in body.get("tools") or []:
        parts.append((canonical_json(_without_cache_control(tool)), "cache_control" in tool))
    system = body.get("system")
    for block in [system] if isinstance(system, str) else system or []:
        parts.append((canonical_json(_without_cache_control(block)),
                      isinstance(block, dict) and "cache_control" in block))
    for message in body.get("messages") or []:
        content = message.get("content")
        for block in [content] if isinstance(content, str) else content or []:
            parts.append((canonical_json([message.get("role"), _without_cache_control(block)]),
                          isinstance(block, dict) and "cache_control" in block))
    if body.get("cache_control") and parts:      # top-level cache_control marks the last cacheable block
        parts[-1] = (parts[-1][0], True)
    return parts


def openai_prompt_parts(body: dict) -> list[tuple[str, bool]]:
    """OpenAI caches automatically: every tool and message ends a cacheable prefix."""
    return [(canonical_json(part), True) for part in (body.get("tools") or []) + (body.get("messages") or [])]


def break_tool_input(value: dict, schema: dict, rng: random.Random) -> dict:
    """A copy of a valid tool input that violates `schema`: a wrong enum or a missing required field."""
    broken = json.loads(json.dumps(value))
    target, target_schema = broken, schema
    # Descend into the first array item / nested object so the flaw sits where validators look hardest.
    while True:
        nested = next(((name, sub) for name, sub in target_schema.get("properties", {}).items()
                       if sub.get("type") in ("object", "array") and target.get(name)), None)
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


def _rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat().replace("+00:00", "Z")


def _duration(seconds: float) -> str:
    """OpenAI's reset format: `1s`, `6m0s`, `20ms`."""
    if seconds < 1:
        return f"{int(seconds * 1000)}ms"
    minutes, secs = divmod(int(math.ceil(seconds)), 60)
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def _pieces(text: str) -> list[str]:
    return [text[i:i + STREAM_PIECE_CHARS] for i in range(0, len(text), STREAM_PIECE_CHARS)] or [""]


# --------------------------------------------------------------------------- records

@dataclass
class LedgerEntry:
    api: str                     # anthropic | anthropic_batch | openai | openai_batch | batch_control
    path: str
    body: Any
    status: int
    fault: str | None
    completed: bool              # a full 200 body was written (for batches: the request succeeded)
    key: str                     # sha256 of the canonical body
    usage: dict | None           # input_tokens (uncached), output_tokens, cache_creation/read_input_tokens
    request_id: str = ""         # unique per entry (the provider's request id, or a message / error id)
    time: float = 0.0


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
    thinking: str
    tool_name: str | None
    tool_json: str | None        # the tool arguments as sent (cut short when truncated)
    tool_input: Any
    truncated: bool

    @property
    def output_tokens(self) -> int:
        return count_tokens(self.thinking) + count_tokens(self.text) + count_tokens(self.tool_json or "")


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
            waits.append(self._wait_until_below(2, self.otpm, 1, now))   # room for one more token
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
        used = {"requests": len(self.events), "input": sum(e[1] for e in self.events),
                "output": sum(e[2] for e in self.events)}
        limits = {"requests": self.rpm, "input": self.itpm, "output": self.otpm}
        return {name: (limit or HEADER_LIMIT_WHEN_UNLIMITED,
                       max(0, (limit or HEADER_LIMIT_WHEN_UNLIMITED) - used[name]), reset)
                for name, limit in limits.items()}


class _Reject(Exception):
    """An HTTP error answer: status, provider error type/message, extra headers, fault name."""

    def __init__(self, status: int, message: str, headers: dict | None = None, fault: str | None = None):
        super().__init__(message)
        self.status, self.message, self.headers, self.fault = status, message, headers or {}, fault


class _Drop(Exception):
    """Close the connection without answering."""


# --------------------------------------------------------------------------- server

class FakeProviderServer:
    """See the module docstring. Use as a context manager, or start()/stop()."""

    def __init__(self, seed: int = 0, latency_s: float = 0.0, fault_rate: float = 0.0,
                 fault_kinds: tuple[str, ...] = FAULT_KINDS, rpm: int | None = None, itpm: int | None = None,
                 otpm: int | None = None, batch_delay_s: float = 0.5, fault_latency_s: float = 0.5,
                 fault_retry_after_s: float = 0.2, ledger_path: str | Path | None = None,
                 host: str = "127.0.0.1", port: int = 0):
        self.seed = seed
        self.latency_s = latency_s
        self.batch_delay_s = batch_delay_s
        self.fault_latency_s = fault_latency_s
        self.fault_retry_after_s = fault_retry_after_s
        self.ledger_path = Path(ledger_path) if ledger_path else None
        self._lock = threading.Lock()
        self._fault_rng = random.Random(seed)
        self.set_faults(fault_rate, fault_kinds)
        self._script: Callable[[str, dict], dict | None] | None = None
        self._ledger: list[LedgerEntry] = []
        self._cache: set[str] = set()
        self._windows = {api: _RateWindow(rpm, itpm, otpm) for api in ("anthropic", "openai")}
        self._batches: dict[str, dict] = {}
        self._openai_batches: dict[str, dict] = {}
        self._files: dict[str, dict] = {}
        self._connections: set[socket.socket] = set()
        self._httpd = _HTTPServer((host, port), _Handler)
        self._httpd.fake = self
        self._thread: threading.Thread | None = None

    # ---------------------------------------------------------------- lifecycle
    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def openai_base_url(self) -> str:
        return self.url + "/v1"

    def env(self) -> dict[str, str]:
        """Base URLs and dummy keys for a subprocess that should talk to this server."""
        return {"ANTHROPIC_BASE_URL": self.url, "OPENAI_BASE_URL": self.openai_base_url,
                "OPENROUTER_BASE_URL": self.openai_base_url, "ANTHROPIC_API_KEY": "fake-anthropic-key",
                "OPENAI_API_KEY": "fake-openai-key", "OPENROUTER_API_KEY": "fake-openrouter-key"}

    def start(self) -> "FakeProviderServer":
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-provider-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        with self._lock:
            for batch in list(self._batches.values()) + list(self._openai_batches.values()):
                batch["timer"].cancel()
            for connection in list(self._connections):
                try:
                    connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def __enter__(self) -> "FakeProviderServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---------------------------------------------------------------- configuration
    def script(self, fn: Callable[[str, dict], dict | None] | None) -> None:
        """fn(api, body) -> None (default answer) or a dict scripting this answer: `tool_input`, `text`,
        `thinking`, `stop_reason` ("max_tokens"), `status` (an HTTP error), `fault` (one of FAULT_KINDS)."""
        self._script = fn

    def set_faults(self, rate: float, kinds: tuple[str, ...] | list[str] | None = None) -> None:
        kinds = tuple(kinds) if kinds is not None else FAULT_KINDS
        unknown = [kind for kind in kinds if kind not in FAULT_KINDS + ("503",)]
        if unknown or not 0.0 <= rate <= 1.0:
            raise ValueError(f"fault rate must be in [0, 1] and kinds in {FAULT_KINDS}; got {rate}, {unknown}")
        self.fault_rate, self.fault_kinds = rate, kinds

    # ---------------------------------------------------------------- ledger
    @property
    def ledger(self) -> list[LedgerEntry]:
        with self._lock:
            return list(self._ledger)

    def requests(self, api: str | None = None) -> list[LedgerEntry]:
        return [entry for entry in self.ledger if api is None or entry.api == api]

    def completed_keys(self) -> list[str]:
        return [e.key for e in self.ledger if e.completed and e.api in PAID_APIS]

    def paid_duplicates(self) -> list[str]:
        return sorted(key for key, n in Counter(self.completed_keys()).items() if n > 1)

    def _record(self, entry: LedgerEntry, persist: bool = True) -> None:
        with self._lock:
            self._ledger.append(entry)
        if persist:
            self._persist(entry)

    def _persist(self, entry: LedgerEntry) -> None:
        if self.ledger_path:
            with self._lock, self.ledger_path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(asdict(entry)) + "\n")

    # ---------------------------------------------------------------- shared answer logic
    def _draw_fault(self, scripted: dict) -> str | None:
        if "fault" in scripted:
            return scripted["fault"]
        with self._lock:
            if self.fault_rate and self._fault_rng.random() < self.fault_rate:
                return self._fault_rng.choice(self.fault_kinds)
        return None

    def _cache_usage(self, namespace: str, parts: list[tuple[str, bool]]) -> tuple[int, int, int, list[str]]:
        """(uncached input, cache creation, cache read, breakpoint hashes to remember on success)."""
        running = hashlib.sha256(namespace.encode())
        total, breakpoints = 0, []
        for text, ends_prefix in parts:
            running.update(text.encode())
            total += count_tokens(text)
            if ends_prefix:
                breakpoints.append((running.copy().hexdigest(), total))
        if not breakpoints:
            return total, 0, 0, []
        with self._lock:
            read = max((tokens for digest, tokens in breakpoints if digest in self._cache), default=0)
        last = breakpoints[-1][1]
        return total - last, last - read, read, [digest for digest, _ in breakpoints]

    def _remember(self, digests: list[str]) -> None:
        with self._lock:
            self._cache.update(digests)

    def _admit(self, api: str, input_tokens: int) -> list:
        with self._lock:
            event, wait = self._windows[api].admit(input_tokens, time.time())
        if event is None:
            raise _Reject(429, f"Rate limit exceeded; retry after {wait:.1f} s.", _retry_after(wait))
        return event

    def rate_limit_headers(self, api: str) -> dict[str, str]:
        with self._lock:
            state = self._windows[api].state(time.time())
        if api == "anthropic":
            return {f"anthropic-ratelimit-{name}-{field}": value
                    for key, name in (("requests", "requests"), ("input", "input-tokens"),
                                      ("output", "output-tokens"))
                    for field, value in zip(("limit", "remaining", "reset"),
                                            (str(state[key][0]), str(state[key][1]), _rfc3339(state[key][2])))}
        now = time.time()
        return {"x-ratelimit-limit-requests": str(state["requests"][0]),
                "x-ratelimit-remaining-requests": str(state["requests"][1]),
                "x-ratelimit-reset-requests": _duration(max(0.0, state["requests"][2] - now)),
                "x-ratelimit-limit-tokens": str(state["input"][0]),
                "x-ratelimit-remaining-tokens": str(state["input"][1]),
                "x-ratelimit-reset-tokens": _duration(max(0.0, state["input"][2] - now))}

    def _answer(self, body: dict, schema: dict | None, tool_name: str | None, thinking: bool,
                max_tokens: int | None, scripted: dict, fault: str | None) -> _Answer:
        # Seeded by the prompt, not the transport: a streamed and a plain request get the same answer.
        prompt = {name: value for name, value in body.items() if name not in ("stream", "stream_options")}
        rng = random.Random(f"{self.seed}:{request_key(prompt)}")
        forced_tool = tool_name is not None and not ("text" in scripted and "tool_input" not in scripted)
        thought = scripted.get("thinking", _sampler.first_person_text(rng, 2)) if thinking else ""
        if forced_tool:
            tool_input = scripted["tool_input"] if "tool_input" in scripted else \
                _sampler.sample_from_schema(schema, rng)
            if fault == "malformed_tool":
                tool_input = break_tool_input(tool_input, schema, rng)
            answer = _Answer("", thought, tool_name, json.dumps(tool_input, ensure_ascii=False), tool_input, False)
        else:
            answer = _Answer(scripted.get("text", _sampler.first_person_text(rng, 3)), thought, None, None, None, False)
        too_long = max_tokens is not None and answer.output_tokens > max_tokens
        if fault == "truncated_tool" or scripted.get("stop_reason") == "max_tokens" or too_long:
            keep = max(0, (max_tokens or 0) * 4 - len(thought)) if too_long else None
            answer.truncated = True
            if forced_tool:
                answer.tool_json = answer.tool_json[: keep if keep is not None else len(answer.tool_json) // 2]
                answer.tool_input = jiter.from_json(answer.tool_json.encode(), partial_mode=True) \
                    if answer.tool_json else {}
            else:
                answer.text = answer.text[: keep if keep is not None else len(answer.text) // 2]
        return answer

    # ---------------------------------------------------------------- Anthropic
    def anthropic_message(self, body: dict, api: str, fault: str | None, scripted: dict,
                          cache: tuple[int, int, int, list[str]]) -> tuple[dict, dict, str | None]:
        """(Message JSON, ledger usage, tool arguments as streamed) for a validated Messages request."""
        tools = {tool["name"]: tool for tool in body.get("tools") or []}
        choice = body.get("tool_choice") or {}
        choice_type = choice.get("type", "auto")
        # A cooperative model: with `auto` and a single tool on offer it calls that tool, unless a
        # test scripts a text answer (the path where extended thinking rules out forcing the tool).
        auto_tool = choice_type == "auto" and len(tools) == 1 and "text" not in scripted
        tool_name = choice.get("name") if choice_type == "tool" else \
            next(iter(tools), None) if choice_type == "any" or auto_tool else None
        thinking = (body.get("thinking") or {}).get("type") in ("enabled", "adaptive")
        answer = self._answer(body, tools[tool_name]["input_schema"] if tool_name else None, tool_name, thinking,
                              body.get("max_tokens"), scripted, fault)
        content = []
        if answer.thinking:
            content.append({"type": "thinking", "thinking": answer.thinking,
                            "signature": hashlib.sha256(answer.thinking.encode()).hexdigest()})
        if answer.tool_name:
            content.append({"type": "tool_use", "id": f"toolu_{uuid.uuid4().hex[:24]}", "name": answer.tool_name,
                            "input": answer.tool_input})
        else:
            content.append({"type": "text", "text": answer.text})
        uncached, creation, read, _ = cache
        usage = {"input_tokens": uncached, "output_tokens": answer.output_tokens,
                 "cache_creation_input_tokens": creation, "cache_read_input_tokens": read}
        stop_reason = "max_tokens" if answer.truncated else "tool_use" if answer.tool_name else "end_turn"
        message = {"id": f"msg_{uuid.uuid4().hex[:24]}", "type": "message", "role": "assistant",
                   "model": body["model"], "content": content, "stop_reason": stop_reason, "stop_sequence": None,
                   "usage": {**usage, "service_tier": "batch" if api == "anthropic_batch" else "standard"}}
        return message, usage, answer.tool_json

    def validate_anthropic(self, body: Any) -> None:
        if not isinstance(body, dict):
            raise _Reject(400, "request body must be a JSON object")
        for name, kind in (("model", str), ("max_tokens", int), ("messages", list)):
            if not isinstance(body.get(name), kind):
                raise _Reject(400, f"{name}: field required ({kind.__name__})")
        breakpoints = sum(ends for _, ends in anthropic_prompt_parts(body))
        if breakpoints > MAX_CACHE_BREAKPOINTS:
            raise _Reject(400, f"A maximum of {MAX_CACHE_BREAKPOINTS} blocks with cache_control may be provided. "
                               f"Found {breakpoints}.")
        choice = body.get("tool_choice") or {}
        thinking = (body.get("thinking") or {}).get("type")
        if choice.get("type") in ("any", "tool") and thinking in ("enabled", "adaptive"):
            raise _Reject(400, "Thinking may not be enabled when tool_choice forces tool use.")
        tools = body.get("tools") or []
        if not all(isinstance(tool, dict) and "name" in tool and "input_schema" in tool for tool in tools):
            raise _Reject(400, "tools: every tool needs a name and an input_schema")
        if choice.get("type") == "tool" and choice.get("name") not in {tool["name"] for tool in tools}:
            raise _Reject(400, f"tool_choice names an unknown tool {choice.get('name')!r}")

    def validate_openai(self, body: Any) -> None:
        if not isinstance(body, dict) or not isinstance(body.get("model"), str) or not body.get("messages"):
            raise _Reject(400, "model and a non-empty messages list are required")
        tools = body.get("tools") or []
        if not all(isinstance(tool, dict) and "name" in (tool.get("function") or {}) for tool in tools):
            raise _Reject(400, "tools: every tool needs type 'function' and a function name")
        choice = body.get("tool_choice")
        if isinstance(choice, dict) and (choice.get("function") or {}).get("name") not in \
                {tool["function"]["name"] for tool in tools}:
            raise _Reject(400, f"tool_choice names an unknown function {choice!r}")

    # ---------------------------------------------------------------- batches
    def create_batch(self, body: Any) -> dict:
        requests = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(requests, list) or not requests:
            raise _Reject(400, "requests: a non-empty list is required")
        ids = [item.get("custom_id") for item in requests if isinstance(item, dict)]
        if len(set(ids)) != len(requests) or None in ids:
            raise _Reject(400, "every request needs a unique custom_id")
        now = time.time()
        batch_id = f"msgbatch_{uuid.uuid4().hex[:24]}"
        batch = {"id": batch_id, "requests": requests, "results": None, "created": now, "ended": None,
                 "cancel_initiated": None, "timer": threading.Timer(self.batch_delay_s, self._process_batch,
                                                                      (batch_id,))}
        batch["timer"].daemon = True
        with self._lock:
            self._batches[batch_id] = batch
        batch["timer"].start()
        return self.batch_object(batch_id)

    def _process_batch(self, batch_id: str, cancel: bool = False) -> None:
        with self._lock:
            batch = self._batches[batch_id]
            if batch["results"] is not None:
                return
            batch["results"] = []                    # claims the batch; filled below
        results = []
        for item in batch["requests"]:
            if cancel:
                results.append({"custom_id": item["custom_id"], "result": {"type": "canceled"}})
                continue
            params = item.get("params")
            path = f"/v1/messages/batches/{batch_id}"
            try:
                self.validate_anthropic(params)
                scripted = (self._script and self._script("anthropic_batch", params)) or {}
                fault = self._draw_fault(scripted)
                if "status" in scripted or fault in ("429", "529", "500", "503", "drop"):
                    status = scripted.get("status") or {"drop": 500, "503": 500}.get(fault) or int(fault)
                    raise _Reject(status, ERROR_MESSAGES.get(status, "error"), fault=fault)
                cache = self._cache_usage("anthropic:" + params["model"], anthropic_prompt_parts(params))
                message, usage, _ = self.anthropic_message(params, "anthropic_batch", fault, scripted, cache)
                self._remember(cache[3])
                results.append({"custom_id": item["custom_id"], "result": {"type": "succeeded", "message": message}})
                self._record(LedgerEntry("anthropic_batch", path, params, 200, fault, True, request_key(params), usage,
                                         message["id"], time.time()))
            except Exception as raised:
                reject = raised if isinstance(raised, _Reject) else _internal_error(raised)
                error = _anthropic_error_body(reject.status, reject.message, None)
                results.append({"custom_id": item["custom_id"], "result": {"type": "errored", "error": error}})
                self._record(LedgerEntry("anthropic_batch", path, params, reject.status, reject.fault, False,
                                         request_key(params), None, f"err_{uuid.uuid4().hex[:24]}", time.time()))
        with self._lock:
            batch["results"], batch["ended"] = results, time.time()

    def cancel_batch(self, batch_id: str) -> dict:
        batch = self._batch(batch_id)
        if batch["ended"] is None:
            batch["timer"].cancel()
            batch["cancel_initiated"] = time.time()
            self._process_batch(batch_id, cancel=True)
        return self.batch_object(batch_id)

    def _batch(self, batch_id: str) -> dict:
        with self._lock:
            if batch_id not in self._batches:
                raise _Reject(404, f"message batch {batch_id!r} not found")
            return self._batches[batch_id]

    def batch_object(self, batch_id: str) -> dict:
        batch = self._batch(batch_id)
        ended = batch["ended"] is not None
        kinds = Counter(r["result"]["type"] for r in batch["results"]) if ended else Counter()
        return {"id": batch_id, "type": "message_batch",
                "processing_status": "ended" if ended else "in_progress",
                "request_counts": {"processing": 0 if ended else len(batch["requests"]),
                                   "succeeded": kinds["succeeded"], "errored": kinds["errored"],
                                   "canceled": kinds["canceled"], "expired": 0},
                "created_at": _rfc3339(batch["created"]),
                "expires_at": _rfc3339(batch["created"] + 86400),
                "ended_at": _rfc3339(batch["ended"]) if ended else None,
                "cancel_initiated_at": _rfc3339(batch["cancel_initiated"]) if batch["cancel_initiated"] else None,
                "archived_at": None,
                "results_url": f"{self.url}/v1/messages/batches/{batch_id}/results" if ended else None}

    def batch_results(self, batch_id: str) -> bytes:
        batch = self._batch(batch_id)
        if batch["ended"] is None:
            raise _Reject(400, f"message batch {batch_id!r} has not ended yet")
        return "".join(json.dumps(result) + "\n" for result in batch["results"]).encode()

    def list_batches(self) -> dict:
        with self._lock:
            ids = list(self._batches)
        data = [self.batch_object(batch_id) for batch_id in reversed(ids)]
        return {"data": data, "has_more": False, "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None}

    # ---------------------------------------------------------------- OpenAI
    def openai_completion(self, body: dict, fault: str | None, scripted: dict,
                          cache: tuple[int, int, int, list[str]]) -> tuple[dict, dict]:
        tools = {t["function"]["name"]: t["function"] for t in body.get("tools") or [] if "function" in t}
        choice = body.get("tool_choice")
        tool_name = choice["function"]["name"] if isinstance(choice, dict) else \
            next(iter(tools), None) if choice == "required" else None
        reasoning = body.get("reasoning") or {}
        thinking = bool(body.get("include_reasoning") or body.get("reasoning_effort")
                        or (reasoning and reasoning.get("enabled", True) and not reasoning.get("exclude")))
        max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
        answer = self._answer(body, tools[tool_name].get("parameters", {}) if tool_name else None, tool_name,
                              thinking, max_tokens, scripted, fault)
        message: dict[str, Any] = {"role": "assistant", "content": None if answer.tool_name else answer.text,
                                   "refusal": None}
        if answer.tool_name:
            message["tool_calls"] = [{"id": f"call_{uuid.uuid4().hex[:24]}", "type": "function",
                                      "function": {"name": answer.tool_name, "arguments": answer.tool_json}}]
        if answer.thinking:
            message["reasoning"] = message["reasoning_content"] = answer.thinking
        # OpenAI quirk kept on purpose: a tool forced by name finishes with "stop", not "tool_calls".
        finish = "length" if answer.truncated else "stop" if isinstance(choice, dict) or not answer.tool_name \
            else "tool_calls"
        uncached, creation, read, _ = cache
        prompt_tokens = uncached + creation + read
        completion = {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion",
                      "created": int(time.time()), "model": body["model"],
                      "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
                      "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": answer.output_tokens,
                                "total_tokens": prompt_tokens + answer.output_tokens,
                                "prompt_tokens_details": {"cached_tokens": read},
                                "completion_tokens_details": {"reasoning_tokens": count_tokens(answer.thinking)}}}
        usage = {"input_tokens": uncached + creation, "output_tokens": answer.output_tokens,
                 "cache_creation_input_tokens": 0, "cache_read_input_tokens": read}
        return completion, usage

    # ---------------------------------------------------------------- OpenAI Files + Batch API
    def upload_file(self, form: dict) -> dict:
        """`POST /v1/files`: store an uploaded file (`form` holds `purpose` and `file`: (filename, bytes))."""
        if not isinstance(form, dict) or "file" not in form or not form.get("purpose"):
            raise _Reject(400, "file and purpose are required (multipart/form-data)")
        filename, content = form["file"]
        return self._store_file(filename, content, form["purpose"])

    def _store_file(self, filename: str, content: bytes, purpose: str) -> dict:
        file_id = f"file-{uuid.uuid4().hex[:24]}"
        with self._lock:
            self._files[file_id] = {"id": file_id, "filename": filename, "purpose": purpose, "content": content,
                                    "created": int(time.time())}
        return self.file_object(file_id)

    def _file(self, file_id: str) -> dict:
        with self._lock:
            if file_id not in self._files:
                raise _Reject(404, f"No such File object: {file_id}")
            return self._files[file_id]

    def file_object(self, file_id: str) -> dict:
        stored = self._file(file_id)
        return {"id": file_id, "object": "file", "bytes": len(stored["content"]), "created_at": stored["created"],
                "filename": stored["filename"], "purpose": stored["purpose"], "status": "processed",
                "expires_at": None, "status_details": None}

    def file_content(self, file_id: str) -> bytes:
        return self._file(file_id)["content"]

    def create_openai_batch(self, body: Any) -> dict:
        if not isinstance(body, dict) or not isinstance(body.get("input_file_id"), str):
            raise _Reject(400, "input_file_id is required")
        if body.get("endpoint") != "/v1/chat/completions":
            raise _Reject(400, f"endpoint {body.get('endpoint')!r} is not served here; use /v1/chat/completions")
        if body.get("completion_window") != "24h":
            raise _Reject(400, "completion_window must be '24h'")
        if self._file(body["input_file_id"])["purpose"] != "batch":
            raise _Reject(400, "the input file must be uploaded with purpose 'batch'")
        batch_id = f"batch_{uuid.uuid4().hex[:24]}"
        batch = {"id": batch_id, "input_file_id": body["input_file_id"], "endpoint": body["endpoint"],
                 "metadata": body.get("metadata"), "created": time.time(), "ended": None, "status": None,
                 "errors": None, "counts": (0, 0, 0), "output_file_id": None, "error_file_id": None,
                 "timer": threading.Timer(self.batch_delay_s, self._process_openai_batch, (batch_id,))}
        batch["timer"].daemon = True
        with self._lock:
            self._openai_batches[batch_id] = batch
        batch["timer"].start()
        return self.openai_batch_object(batch_id)

    def _batch_lines(self, batch: dict) -> tuple[list[dict], list[dict]]:
        """(request lines, validation errors) of a batch's input file, checked the way the real API does."""
        lines, errors, seen = [], [], set()
        text = self._file(batch["input_file_id"])["content"].decode("utf-8", errors="replace")
        for number, raw in enumerate(text.splitlines(), start=1):
            if not raw.strip():
                continue
            try:
                line = json.loads(raw)
            except json.JSONDecodeError:
                errors.append({"code": "invalid_json_line", "message": "This line is not parseable as valid JSON.",
                               "param": None, "line": number})
                continue
            custom_id = line.get("custom_id") if isinstance(line, dict) else None
            if not isinstance(custom_id, str) or custom_id in seen:
                errors.append({"code": "duplicate_custom_id" if custom_id in seen else "missing_required_parameter",
                               "message": "every line needs a unique custom_id", "param": "custom_id", "line": number})
            elif line.get("method") != "POST" or line.get("url") != batch["endpoint"] or \
                    not isinstance(line.get("body"), dict):
                errors.append({"code": "invalid_request", "message": f"method must be POST, url {batch['endpoint']}"
                               " and body an object", "param": "url", "line": number})
            seen.add(custom_id)
            lines.append(line)
        if not lines and not errors:
            errors.append({"code": "empty_file", "message": "The batch input file is empty.", "param": None,
                           "line": None})
        return lines, errors

    def _answer_batch_line(self, batch_id: str, line: dict) -> tuple[bool, dict]:
        """(succeeded, output line) for one request of a batch, answered like `POST /v1/chat/completions`."""
        body, request_id = line["body"], uuid.uuid4().hex
        path = f"/v1/batches/{batch_id}"
        try:
            self.validate_openai(body)
            scripted = (self._script and self._script("openai_batch", body)) or {}
            fault = self._draw_fault(scripted)
            if "status" in scripted or fault in ("429", "529", "500", "503", "drop"):
                status = scripted.get("status") or {"drop": 500, "529": 503}.get(fault) or int(fault)
                raise _Reject(status, ERROR_MESSAGES.get(status, "error"), fault=fault)
            cache = self._cache_usage("openai:" + body["model"], openai_prompt_parts(body))
            completion, usage = self.openai_completion(body, fault, scripted, cache)
            self._remember(cache[3])
            self._record(LedgerEntry("openai_batch", path, body, 200, fault, True, request_key(body), usage,
                                     request_id, time.time()))
            return True, {"status_code": 200, "request_id": request_id, "body": completion}
        except Exception as raised:
            reject = raised if isinstance(raised, _Reject) else _internal_error(raised)
            self._record(LedgerEntry("openai_batch", path, body, reject.status, reject.fault, False, request_key(body),
                                     None, request_id, time.time()))
            return False, {"status_code": reject.status, "request_id": request_id,
                           "body": _openai_error_body(reject.status, reject.message)}

    def _process_openai_batch(self, batch_id: str, cancel: bool = False) -> None:
        with self._lock:
            batch = self._openai_batches[batch_id]
            if batch["status"] is not None:
                return
            batch["status"] = "claimed"              # by this call; set to its final value below
        lines, errors = self._batch_lines(batch)
        outputs, failures = [], []
        if not errors:
            for line in lines:
                entry = {"id": f"batch_req_{uuid.uuid4().hex[:24]}", "custom_id": line["custom_id"]}
                if cancel:
                    failures.append({**entry, "response": None, "error": {
                        "code": "batch_cancelled", "message": "This request was not run: the batch was cancelled."}})
                    continue
                succeeded, response = self._answer_batch_line(batch_id, line)
                (outputs if succeeded else failures).append({**entry, "response": response, "error": None})

        def stored(results: list[dict], kind: str) -> str | None:
            if not results:
                return None
            content = "".join(json.dumps(result) + "\n" for result in results).encode()
            return self._store_file(f"{batch_id}_{kind}.jsonl", content, "batch_output")["id"]

        output_file_id, error_file_id = stored(outputs, "output"), stored(failures, "error")
        with self._lock:
            batch.update(status="failed" if errors else "cancelled" if cancel else "completed", ended=time.time(),
                         errors=errors or None, counts=(len(lines), len(outputs), len(failures)),
                         output_file_id=output_file_id, error_file_id=error_file_id)

    def cancel_openai_batch(self, batch_id: str) -> dict:
        batch = self._openai_batch(batch_id)
        if batch["ended"] is None:
            batch["timer"].cancel()
            batch["cancelled"] = time.time()
            self._process_openai_batch(batch_id, cancel=True)
        return self.openai_batch_object(batch_id)

    def _openai_batch(self, batch_id: str) -> dict:
        with self._lock:
            if batch_id not in self._openai_batches:
                raise _Reject(404, f"No batch found with id '{batch_id}'.")
            return self._openai_batches[batch_id]

    def openai_batch_object(self, batch_id: str) -> dict:
        """The Batch object: validating for the first half of `batch_delay_s`, then in_progress, then ended."""
        batch = self._openai_batch(batch_id)
        created, ended = batch["created"], batch["ended"]
        if ended is not None:
            status = batch["status"]
        else:
            status = "validating" if time.time() - created < self.batch_delay_s / 2 else "in_progress"
        total, completed, failed = batch["counts"]

        def at(condition: bool, when: float | None) -> int | None:
            return int(when) if condition and when is not None else None
        return {"id": batch_id, "object": "batch", "endpoint": batch["endpoint"],
                "errors": {"object": "list", "data": batch["errors"]} if batch["errors"] else None,
                "input_file_id": batch["input_file_id"], "completion_window": "24h", "status": status,
                "output_file_id": batch["output_file_id"], "error_file_id": batch["error_file_id"],
                "created_at": int(created), "in_progress_at": at(status != "validating", created),
                "expires_at": int(created) + 86400, "finalizing_at": at(ended is not None, ended),
                "completed_at": at(status == "completed", ended), "failed_at": at(status == "failed", ended),
                "expired_at": None, "cancelling_at": at("cancelled" in batch, batch.get("cancelled")),
                "cancelled_at": at(status == "cancelled", ended),
                "request_counts": {"total": total, "completed": completed, "failed": failed},
                "metadata": batch["metadata"]}


def _internal_error(error: Exception) -> _Reject:
    traceback.print_exception(error)
    return _Reject(500, f"fake provider server error: {error!r}")


def _parse_form(content_type: str, raw: bytes) -> dict[str, Any]:
    """A multipart/form-data body -> {field: text}, with a file field as (filename, bytes)."""
    message = BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + raw)
    if not message.is_multipart():
        raise _Reject(400, "malformed multipart/form-data body")
    form: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        content = part.get_payload(decode=True) or b""
        filename = part.get_filename()
        form[name] = (filename, content) if filename is not None else content.decode("utf-8")
    return form


def _form_summary(form: dict) -> dict:
    """What the ledger keeps of an upload: the fields, and the file's name and size (not its bytes)."""
    return {name: {"filename": value[0], "bytes": len(value[1])} if isinstance(value, tuple) else value
            for name, value in form.items()}


def _retry_after(seconds: float) -> dict[str, str]:
    return {"retry-after": str(max(1, math.ceil(seconds))), "retry-after-ms": str(max(1, int(seconds * 1000)))}


def _anthropic_error_body(status: int, message: str, request_id: str | None) -> dict:
    return {"type": "error", "error": {"type": ANTHROPIC_ERROR_TYPES.get(status, "api_error"), "message": message},
            "request_id": request_id}


def _openai_error_body(status: int, message: str) -> dict:
    error_type = OPENAI_ERROR_TYPES.get(status, "server_error")
    return {"error": {"message": message, "type": error_type, "param": None,
                      "code": "rate_limit_exceeded" if status == 429 else None}}


def _anthropic_stream(message: dict, tool_json: str | None) -> list[bytes]:
    """The SSE events of one Messages answer, in the order the real API sends them."""
    start = {**message, "content": [], "stop_reason": None,
             "usage": {**message["usage"], "output_tokens": 1}}
    events = [("message_start", {"type": "message_start", "message": start}), ("ping", {"type": "ping"})]
    for index, block in enumerate(message["content"]):
        if block["type"] == "thinking":
            empty, deltas = {"type": "thinking", "thinking": "", "signature": ""}, \
                [{"type": "thinking_delta", "thinking": p} for p in _pieces(block["thinking"])] + \
                [{"type": "signature_delta", "signature": block["signature"]}]
        elif block["type"] == "tool_use":
            empty = {**block, "input": {}}
            deltas = [{"type": "input_json_delta", "partial_json": p} for p in _pieces(tool_json or "{}")]
        else:
            empty, deltas = {"type": "text", "text": ""}, [{"type": "text_delta", "text": p}
                                                           for p in _pieces(block["text"])]
        events.append(("content_block_start", {"type": "content_block_start", "index": index, "content_block": empty}))
        events += [("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d})
                   for d in deltas]
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    events.append(("message_delta", {"type": "message_delta",
                                     "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                                     "usage": {"output_tokens": message["usage"]["output_tokens"]}}))
    events.append(("message_stop", {"type": "message_stop"}))
    return [f"event: {name}\ndata: {json.dumps(data)}\n\n".encode() for name, data in events]


def _openai_stream(completion: dict, include_usage: bool) -> list[bytes]:
    choice = completion["choices"][0]
    message = choice["message"]
    head = {k: completion[k] for k in ("id", "created", "model")}

    def chunk(delta: dict, finish: str | None = None) -> dict:
        return {**head, "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]}

    chunks = [chunk({"role": "assistant", "content": ""})]
    chunks += [chunk({"reasoning": p, "reasoning_content": p}) for p in _pieces(message.get("reasoning", ""))
               if message.get("reasoning")]
    for call in message.get("tool_calls", []):
        chunks.append(chunk({"tool_calls": [{"index": 0, "id": call["id"], "type": "function",
                                             "function": {"name": call["function"]["name"], "arguments": ""}}]}))
        chunks += [chunk({"tool_calls": [{"index": 0, "function": {"arguments": p}}]})
                   for p in _pieces(call["function"]["arguments"])]
    if message["content"]:
        chunks += [chunk({"content": p}) for p in _pieces(message["content"])]
    chunks.append(chunk({}, choice["finish_reason"]))
    if include_usage:
        chunks.append({**head, "object": "chat.completion.chunk", "choices": [], "usage": completion["usage"]})
    return [f"data: {json.dumps(c)}\n\n".encode() for c in chunks] + [b"data: [DONE]\n\n"]


# --------------------------------------------------------------------------- HTTP

class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024          # hundreds of clients connect at once
    fake: FakeProviderServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True     # the last byte goes out alone (see _send); Nagle would delay it 40 ms
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:   # keep test output quiet
        pass

    def setup(self) -> None:
        super().setup()
        with self.server.fake._lock:
            self.server.fake._connections.add(self.connection)

    def finish(self) -> None:
        with self.server.fake._lock:
            self.server.fake._connections.discard(self.connection)
        super().finish()

    # ---------------------------------------------------------------- writing
    def _send(self, entry: LedgerEntry, headers: dict[str, str], payload: bytes | list[bytes],
              content_type: str) -> None:
        """Send one response and record it. The entry enters the ledger (and its file) before the last byte
        is sent, so a client holding its answer always finds it there; if the send fails, `completed` turns
        False (in the file: a correcting line with the same request_id)."""
        fake, recorded = self.server.fake, False
        if isinstance(payload, list):            # a stream: chunked transfer encoding
            headers = {**headers, "transfer-encoding": "chunked"}
            body = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in payload) + b"0\r\n\r\n"
        else:
            headers = {**headers, "content-length": str(len(payload))}
            body = payload
        try:
            self.send_response(entry.status)
            self.send_header("content-type", content_type)
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body[:-1])
            entry.completed = entry.status == 200
            fake._record(entry)
            recorded = True
            self.wfile.write(body[-1:])
            self.wfile.flush()
        except OSError:
            self.close_connection = True
            if recorded and entry.completed:
                with fake._lock:
                    entry.completed = False
                fake._persist(entry)
            elif not recorded:
                fake._record(entry)

    def _read_body(self) -> Any:
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        content_type = self.headers.get("content-type") or ""
        if content_type.startswith("multipart/form-data"):
            return _parse_form(content_type, raw)
        try:
            return json.loads(raw) if raw else None
        except json.JSONDecodeError as error:
            raise _Reject(400, f"request body is not valid JSON: {error}") from None

    # ---------------------------------------------------------------- routing
    def do_POST(self) -> None:
        path = self.path.split("?")[0].rstrip("/")
        if path == "/v1/messages":
            self._paid("anthropic", path)
        elif path == "/v1/chat/completions":
            self._paid("openai", path)
        elif path == "/v1/messages/batches":
            self._control(path, lambda body: self.server.fake.create_batch(body))
        elif path.startswith("/v1/messages/batches/") and path.endswith("/cancel"):
            self._control(path, lambda body: self.server.fake.cancel_batch(path.split("/")[4]))
        elif path == "/v1/files":
            self._control(path, lambda body: self.server.fake.upload_file(body), "openai")
        elif path == "/v1/batches":
            self._control(path, lambda body: self.server.fake.create_openai_batch(body), "openai")
        elif path.startswith("/v1/batches/") and path.endswith("/cancel") and len(path.split("/")) == 5:
            self._control(path, lambda body: self.server.fake.cancel_openai_batch(path.split("/")[3]), "openai")
        else:
            self._control(path, None)

    def do_GET(self) -> None:
        path = self.path.split("?")[0].rstrip("/")
        fake = self.server.fake
        parts = path.split("/")
        if path == "/v1/messages/batches":
            self._control(path, lambda body: fake.list_batches())
        elif len(parts) == 5 and path.startswith("/v1/messages/batches/"):
            self._control(path, lambda body: fake.batch_object(parts[4]))
        elif len(parts) == 6 and parts[5] == "results":
            self._control(path, lambda body: fake.batch_results(parts[4]))
        elif len(parts) == 4 and parts[2] == "batches":
            self._control(path, lambda body: fake.openai_batch_object(parts[3]), "openai")
        elif len(parts) == 4 and parts[2] == "files":
            self._control(path, lambda body: fake.file_object(parts[3]), "openai")
        elif len(parts) == 5 and parts[2] == "files" and parts[4] == "content":
            self._control(path, lambda body: fake.file_content(parts[3]), "openai")
        else:
            self._control(path, None)

    # ---------------------------------------------------------------- batch control (free)
    def _control(self, path: str, action: Callable[[Any], Any] | None, api: str = "anthropic") -> None:
        """A free batch/file control call of `api` (anthropic or openai: its auth, headers and error bodies)."""
        request_id = f"req_{uuid.uuid4().hex[:24]}" if api == "anthropic" else uuid.uuid4().hex
        id_header = "request-id" if api == "anthropic" else "x-request-id"
        body = None

        def entry(status: int) -> LedgerEntry:
            logged = _form_summary(body) if isinstance(body, dict) and isinstance(body.get("file"), tuple) else body
            return LedgerEntry("batch_control", path, logged, status, None, False, request_key(logged), None,
                               request_id, time.time())
        try:
            body = self._read_body() if self.command == "POST" else None
            self._check_auth(api)
            if action is None:
                raise _Reject(404, f"no such endpoint: {self.command} {path}")
            result = action(body)
            payload, content_type = (result, "application/binary") if isinstance(result, bytes) else \
                (json.dumps(result).encode(), "application/json")
            self._send(entry(200), {id_header: request_id}, payload, content_type)
        except Exception as raised:
            reject = raised if isinstance(raised, _Reject) else _internal_error(raised)
            error = _anthropic_error_body(reject.status, reject.message, request_id) if api == "anthropic" \
                else _openai_error_body(reject.status, reject.message)
            self._send(entry(reject.status), {id_header: request_id}, json.dumps(error).encode(), "application/json")

    def _check_auth(self, api: str) -> None:
        if api == "anthropic":
            if not (self.headers.get("x-api-key") or self.headers.get("authorization")):
                raise _Reject(401, "x-api-key header is required")
            if not self.headers.get("anthropic-version"):
                raise _Reject(400, "anthropic-version: header is required")
        elif not (self.headers.get("authorization") or "").startswith("Bearer "):
            raise _Reject(401, "You didn't provide an API key (Authorization: Bearer ...).")

    # ---------------------------------------------------------------- paid requests
    def _paid(self, api: str, path: str) -> None:
        fake = self.server.fake
        request_id = f"req_{uuid.uuid4().hex[:24]}" if api == "anthropic" else uuid.uuid4().hex
        body, fault, usage = None, None, None

        def entry(status: int) -> LedgerEntry:
            return LedgerEntry(api, path, body, status, fault, False, request_key(body), usage, request_id,
                               time.time())
        try:
            body = self._read_body()
            self._check_auth(api)
            if api == "anthropic":
                fake.validate_anthropic(body)
            else:
                fake.validate_openai(body)
            scripted = (fake._script and fake._script(api, body)) or {}
            fault = fake._draw_fault(scripted)
            delay = fake.latency_s + (fake.fault_latency_s if fault == "latency" else 0.0)
            if delay:
                time.sleep(delay)
            if fault == "drop":
                raise _Drop()
            if "status" in scripted:
                raise _Reject(scripted["status"], ERROR_MESSAGES.get(scripted["status"], "scripted error"))
            if fault in ("429", "529", "503", "500"):
                error_status = int(fault) if api == "anthropic" or fault in ("429", "500") else 503
                raise _Reject(error_status, ERROR_MESSAGES[error_status],
                              _retry_after(fake.fault_retry_after_s) if fault == "429" else {}, fault)
            parts = anthropic_prompt_parts(body) if api == "anthropic" else openai_prompt_parts(body)
            cache = fake._cache_usage(f"{api}:{body['model']}", parts)
            event = fake._admit(api, cache[0] + cache[1] + (cache[2] if api == "openai" else 0))
            if api == "anthropic":
                answer, usage, tool_json = fake.anthropic_message(body, api, fault, scripted, cache)
                stream = _anthropic_stream(answer, tool_json) if body.get("stream") else None
            else:
                answer, usage = fake.openai_completion(body, fault, scripted, cache)
                stream = _openai_stream(answer, bool((body.get("stream_options") or {}).get("include_usage"))) \
                    if body.get("stream") else None
            with fake._lock:
                event[2] = usage["output_tokens"]
            fake._remember(cache[3])
            headers = {**fake.rate_limit_headers(api),
                       ("request-id" if api == "anthropic" else "x-request-id"): request_id}
            if stream is not None:
                self._send(entry(200), headers, stream, "text/event-stream")
            else:
                self._send(entry(200), headers, json.dumps(answer).encode(), "application/json")
        except _Drop:
            self.close_connection = True
            fake._record(entry(0))
        except Exception as raised:      # _Reject, or a bug here: answered as a 500 and printed
            reject = raised if isinstance(raised, _Reject) else _internal_error(raised)
            status, fault = reject.status, reject.fault or fault
            error = _anthropic_error_body(status, reject.message, request_id) if api == "anthropic" \
                else _openai_error_body(status, reject.message)
            headers = {**fake.rate_limit_headers(api), **reject.headers,
                       ("request-id" if api == "anthropic" else "x-request-id"): request_id}
            if status == 429 and not reject.headers:
                headers.update(_retry_after(fake.fault_retry_after_s))
            self._send(entry(status), headers, json.dumps(error).encode(), "application/json")


# --------------------------------------------------------------------------- standalone

def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the fake Anthropic/OpenAI API until killed.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = a free port")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every answer")
    parser.add_argument("--rpm", type=int)
    parser.add_argument("--itpm", type=int)
    parser.add_argument("--otpm", type=int)
    parser.add_argument("--fault_rate", type=float, default=0.0)
    parser.add_argument("--faults", nargs="+", default=list(FAULT_KINDS), choices=FAULT_KINDS + ("503",))
    parser.add_argument("--batch_delay", type=float, default=0.5, help="seconds until a Message Batch ends")
    parser.add_argument("--ledger_path", help="append every request to this JSONL file")
    args = parser.parse_args()
    server = FakeProviderServer(seed=args.seed, latency_s=args.latency, fault_rate=args.fault_rate,
                                fault_kinds=tuple(args.faults), rpm=args.rpm, itpm=args.itpm, otpm=args.otpm,
                                batch_delay_s=args.batch_delay, ledger_path=args.ledger_path,
                                host=args.host, port=args.port)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    with server:
        print(server.url, flush=True)
        try:
            stopped.wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
