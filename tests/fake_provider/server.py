"""The fake's HTTP server: `FakeProviderServer` (its lifecycle, configuration, faults, ledger, rate
limits, prompt cache and the answer logic every provider shares; the provider endpoints, wire, errors
and prices come from the parts, parts.PARTS, each a common.FakeApi), the request handler that routes
each path to its part, `bill`, and `main`, the standalone server (`python tests/fake_provider`). No
provider is named here: what differs by provider, each part declares.
"""

from __future__ import annotations

import argparse
import email.policy
import hashlib
import json
import random
import re
import signal
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jiter

from .common import (
    BILLING_FAULTS,
    EFFORT_LADDER,
    ERROR_MESSAGES,
    FAULT_KINDS,
    REFUSAL,
    REFUSED_PREFIX_CHARS,
    FakeApi,
    LedgerEntry,
    _Answer,
    _Drop,
    _internal_error,
    _Plan,
    _RateWindow,
    _Reject,
    _retry_after,
    _sampler,
    _thought_of,
    _user_texts,
    break_tool_input,
    count_tokens,
    request_key,
)
from .parts import PAID_APIS, PARTS, part_of


def bill(api: str, body: dict, usage: dict) -> float:
    """USD billed for one answered request of `api` with `usage`, at the price its part bills (FakeApi.bill: the
    list price of the request's own model, or the provider's own usage.cost); batches at half price [batch-ttl]."""
    part = part_of(api)
    usd = part.bill(body, usage)
    return usd / 2 if api == part.batch_api else usd


def _new_id(prefix: str) -> str:
    """A request id: `prefix` and 24 hex digits, or 32 hex digits without a prefix."""
    return f"{prefix}{uuid.uuid4().hex[:24]}" if prefix else uuid.uuid4().hex


# --------------------------------------------------------------------------- server


class FakeProviderServer(*(part.methods for part in PARTS)):
    """See the module docstring. Use as a context manager, or start()/stop()."""

    def __init__(
        self,
        seed: int = 0,
        latency_s: float = 0.0,
        fault_rate: float = 0.0,
        fault_kinds: tuple[str, ...] = FAULT_KINDS,
        rpm: int | None = None,
        itpm: int | None = None,
        otpm: int | None = None,
        batch_delay_s: float = 0.5,
        fault_latency_s: float = 0.5,
        fault_retry_after_s: float = 0.2,
        ledger_path: str | Path | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        served_models: tuple[str, ...] = (),
        thinking_tokens: int | None = None,
    ):
        self.seed = seed
        # [thinking-amount] An ASSUMPTION: the tokens a thinking model thinks per call at its default effort (None: a
        # two-sentence thought, as before). They count toward max_tokens and are billed as output [thinking].
        self.thinking_tokens = thinking_tokens
        self.latency_s = latency_s
        self.batch_delay_s = batch_delay_s
        self.fault_latency_s = fault_latency_s
        self.fault_retry_after_s = fault_retry_after_s
        self.ledger_path = Path(ledger_path) if ledger_path else None
        self.served_models = frozenset(served_models)
        self._lock = threading.Lock()
        self._fault_rng = random.Random(seed)
        self.set_faults(fault_rate, fault_kinds)
        self.refusal_pattern: re.Pattern | None = None
        self._script: Callable[[str, dict], dict | None] | None = None
        self._ledger: list[LedgerEntry] = []
        self.paid_requests_received = 0  # paid requests whose body was read (answered or still in flight)
        self._cache: set[str] = set()
        self._windows = {part.name: _RateWindow(rpm, itpm, otpm) for part in PARTS}
        for store in (store for part in PARTS for store in part.stores):
            setattr(self, store, {})
        self._connections: set[socket.socket] = set()
        self._httpd = _HTTPServer((host, port), _Handler)
        self._httpd.fake = self
        self._thread: threading.Thread | None = None

    # ---------------------------------------------------------------- lifecycle
    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def env(self) -> dict[str, str]:
        """Base URLs and dummy keys for a subprocess that should talk to this server (each part's FakeApi.env)."""
        return {name: value for part in PARTS for name, value in part.env(self.url).items()}

    def start(self) -> FakeProviderServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-provider-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        with self._lock:
            for store in (store for part in PARTS for store in part.stores):
                for stored in getattr(self, store).values():
                    if "timer" in stored:
                        stored["timer"].cancel()
            for connection in list(self._connections):
                try:
                    connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def __enter__(self) -> FakeProviderServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---------------------------------------------------------------- configuration
    def script(self, fn: Callable[[str, dict], dict | None] | None) -> None:
        """fn(api, body) -> None (default answer) or a dict scripting this answer: `tool_input` (the forced tool's
        input, or the JSON of a structured-output answer), `text`,
        `thinking` (a text, or a list: one per thinking block), `stop_reason` ("max_tokens"), `status` (an HTTP
        error), `fault` (one of FAULT_KINDS, BILLING_FAULTS or REFUSAL). `api` is one of PAID_APIS (a part's name or
        its batch api: anthropic, anthropic_batch, openai, openai_batch, openrouter). A request the model rules refuse never reaches the script."""
        self._script = fn

    def serve_models(self, *model_ids: str) -> None:
        """Answer these ids on /v1/chat/completions like a self-hosted OpenAI-compatible server (vLLM): no OpenAI
        model rules, any extra arguments (top_k, chat_template_kwargs) accepted."""
        self.served_models = self.served_models | frozenset(model_ids)

    def refuse(self, pattern: str | None) -> None:
        """Refuse (a 200 refusal answer, see `REFUSAL`) every paid request, plain or in a batch, whose user text
        matches the regex `pattern`; None: only the parts' refusal_trigger texts (Anthropic's test string
        [refusals-anthropic]) are refused."""
        self.refusal_pattern = re.compile(pattern) if pattern else None

    def set_faults(self, rate: float, kinds: tuple[str, ...] | list[str] | None = None) -> None:
        kinds = tuple(kinds) if kinds is not None else FAULT_KINDS
        unknown = [kind for kind in kinds if kind not in FAULT_KINDS + BILLING_FAULTS + ("503", REFUSAL)]
        if unknown or not 0.0 <= rate <= 1.0:
            raise ValueError(
                f"fault rate must be in [0, 1] and kinds in {FAULT_KINDS + BILLING_FAULTS}; got {rate}, {unknown}"
            )
        self.fault_rate, self.fault_kinds = rate, kinds

    # ---------------------------------------------------------------- ledger
    @property
    def ledger(self) -> list[LedgerEntry]:
        with self._lock:
            return list(self._ledger)

    @property
    def paid(self) -> list[LedgerEntry]:
        """The ledger's model calls (answered or not): no model lookups, no batch control calls."""
        return [entry for entry in self.ledger if entry.api in PAID_APIS]

    def requests(self, api: str | None = None) -> list[LedgerEntry]:
        return [entry for entry in self.ledger if api is None or entry.api == api]

    def completed_keys(self) -> list[str]:
        return [e.key for e in self.ledger if e.completed and e.api in PAID_APIS]

    def paid_duplicates(self) -> list[str]:
        return sorted(key for key, n in Counter(self.completed_keys()).items() if n > 1)

    def cost(self, entries: list[LedgerEntry] | None = None) -> float:
        """USD billed for the answered paid requests (default: all of them), each at its own model's price."""
        return sum(entry.cost_usd or 0.0 for entry in (self.paid if entries is None else entries) if entry.completed)

    def thought_tokens(self, effort: str | None, default_effort: str | None, budget: int | None = None) -> int | None:
        """Tokens one call thinks at `effort` [thinking-amount]: `thinking_tokens` at the default effort, doubled per
        step above it, halved per step below; with a budget (budget thinking) at most the budget."""
        if self.thinking_tokens is None:
            return None
        ladder = ("minimal",) + EFFORT_LADDER
        level, default = effort or default_effort or "high", default_effort or "high"
        steps = (ladder.index(level) if level in ladder else 0) - (ladder.index(default) if default in ladder else 0)
        tokens = int(self.thinking_tokens * 2.0**steps)
        return min(tokens, budget) if budget else tokens

    def _record(self, entry: LedgerEntry, persist: bool = True) -> None:
        if entry.usage and entry.cost_usd is None and entry.api in PAID_APIS and isinstance(entry.body, dict):
            entry.cost_usd = bill(entry.api, entry.body, entry.usage)
        with self._lock:
            self._ledger.append(entry)
        if persist:
            self._persist(entry)

    def _persist(self, entry: LedgerEntry) -> None:
        if self.ledger_path:
            with self._lock, self.ledger_path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(asdict(entry)) + "\n")

    # ---------------------------------------------------------------- shared answer logic
    def _draw_fault(self, scripted: dict, api: str, body: dict) -> str | None:
        if "fault" in scripted:
            return scripted["fault"]
        if self._refuses(api, body):
            return REFUSAL
        with self._lock:
            if self.fault_rate and self._fault_rng.random() < self.fault_rate:
                return self._fault_rng.choice(self.fault_kinds)
        return None

    def _refuses(self, api: str, body: dict) -> bool:
        """The request matches the refusal pattern (`refuse`), or its part's refusal_trigger (Anthropic's
        refusal test prompt)."""
        text = "\n".join(_user_texts(body))
        trigger = part_of(api).refusal_trigger
        return bool(self.refusal_pattern and self.refusal_pattern.search(text)) or bool(trigger and trigger in text)

    def _cache_usage(
        self, namespace: str, parts: list[tuple[str, bool]], min_tokens: int = 0
    ) -> tuple[int, int, int, list[str]]:
        """(uncached input, cache creation, cache read, breakpoint hashes to remember on success). A breakpoint
        whose prefix is shorter than `min_tokens` caches nothing and raises no error [cache-min][openai-cache]."""
        running = hashlib.sha256(namespace.encode())
        total, breakpoints = 0, []
        for text, ends_prefix in parts:
            running.update(text.encode())
            total += count_tokens(text)
            if ends_prefix and total >= min_tokens:
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
        """The rate-limit headers of `api`'s window, in its part's format."""
        with self._lock:
            state = self._windows[api].state(time.time())
        return part_of(api).rate_limit_headers(state, time.time())

    def _answer(
        self,
        body: dict,
        schema: dict | None,
        tool_name: str | None,
        thinking: bool,
        max_tokens: int | None,
        scripted: dict,
        fault: str | None,
        json_schema: Any = None,
        several_thoughts: bool = False,
        thought_tokens: int | None = None,
    ) -> _Answer:
        """The answer: a tool call (`tool_name`), JSON sampled from `json_schema`, or text; with thinking
        (one block, or one or two when `several_thoughts`; `thought_tokens` long when given). Thinking counts
        toward max_tokens [thinking]: thinking that fills max_tokens leaves an empty answer cut off there."""
        # Seeded by the prompt, not the transport: a streamed and a plain request get the same answer.
        prompt = {name: value for name, value in body.items() if name not in ("stream", "stream_options")}
        rng = random.Random(f"{self.seed}:{request_key(prompt)}")
        forced_tool = tool_name is not None and not ("text" in scripted and "tool_input" not in scripted)
        thoughts: list[str] = []
        if thinking:
            scripted_thought = scripted.get("thinking")
            if scripted_thought is not None:
                thoughts = list(scripted_thought) if isinstance(scripted_thought, list) else [scripted_thought]
            elif thought_tokens is not None:
                thoughts = [_thought_of(rng, thought_tokens)] if thought_tokens else []
            else:
                thoughts = [
                    _sampler.first_person_text(rng, 2) for _ in range(rng.choice((1, 2)) if several_thoughts else 1)
                ]
        if max_tokens is not None and sum(count_tokens(t) for t in thoughts) > max_tokens:
            room = max_tokens * 4  # the thinking is cut where max_tokens ends it
            thoughts = [t[: max(0, room - sum(map(len, thoughts[:i])))] for i, t in enumerate(thoughts)]
        # A cooperative model: as many items as the prompt asks for (the schema a client sends may carry
        # no array bounds: structured outputs refuse them, https://platform.claude.com/docs/en/build-with-claude/structured-outputs).
        count = _sampler.requested_count(_user_texts(body))
        if fault == REFUSAL:
            # The classifier stops the answer after a few characters of text (within max_tokens, after the
            # thinking); no tool call, no JSON [refusals-anthropic]
            room = (
                REFUSED_PREFIX_CHARS
                if max_tokens is None
                else min(REFUSED_PREFIX_CHARS, max(0, max_tokens * 4 - sum(map(len, thoughts))))
            )
            return _Answer(_sampler.first_person_text(rng, 1)[:room], thoughts, None, None, None, False, refused=True)
        if forced_tool:
            tool_input = (
                scripted["tool_input"] if "tool_input" in scripted else _sampler.sample_from_schema(schema, rng, count)
            )
            if fault == "malformed_tool":
                tool_input = break_tool_input(tool_input, schema, rng)
            answer = _Answer("", thoughts, tool_name, json.dumps(tool_input, ensure_ascii=False), tool_input, False)
        elif json_schema is not None and "text" not in scripted:
            # A scripted `tool_input` is the structured answer too, so a test's script works in either mode.
            value = (
                scripted["tool_input"]
                if "tool_input" in scripted
                else _sampler.sample_from_schema(json_schema, rng, count)
            )
            if fault == "malformed_tool":
                value = break_tool_input(value, json_schema, rng)
            answer = _Answer(json.dumps(value, ensure_ascii=False), thoughts, None, None, None, False)
        else:
            answer = _Answer(
                scripted.get("text", _sampler.first_person_text(rng, 3)), thoughts, None, None, None, False
            )
        too_long = max_tokens is not None and answer.output_tokens > max_tokens
        if fault == "truncated_tool" or scripted.get("stop_reason") == "max_tokens" or too_long:
            keep = max(0, (max_tokens or 0) * 4 - sum(map(len, thoughts))) if too_long else None
            answer.truncated = True
            if forced_tool:
                answer.tool_json = answer.tool_json[: keep if keep is not None else len(answer.tool_json) // 2]
                answer.tool_input = (
                    jiter.from_json(answer.tool_json.encode(), partial_mode=True) if answer.tool_json else {}
                )
            else:
                answer.text = answer.text[: keep if keep is not None else len(answer.text) // 2]
        return answer

    def validate(self, api: str, body: Any) -> _Plan:
        """Check a paid request of `api` against its part's model rules; the plan to answer it, or a _Reject."""
        return part_of(api).validate(self, body)


def _parse_form(content_type: str, raw: bytes) -> dict[str, Any]:
    """A multipart/form-data body -> {field: text}, with a file field as (filename, bytes)."""
    message = BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + raw
    )
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
    return {
        name: {"filename": value[0], "bytes": len(value[1])} if isinstance(value, tuple) else value
        for name, value in form.items()
    }


# --------------------------------------------------------------------------- HTTP


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # hundreds of clients connect at once
    fake: FakeProviderServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # the last byte goes out alone (see _send); Nagle would delay it 40 ms
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
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
    def _send(
        self, entry: LedgerEntry, headers: dict[str, str], payload: bytes | list[bytes], content_type: str
    ) -> None:
        """Send one response and record it. The entry enters the ledger (and its file) before the last byte
        is sent, so a client holding its answer always finds it there; if the send fails, `completed` turns
        False (in the file: a correcting line with the same request_id)."""
        fake, recorded = self.server.fake, False
        if isinstance(payload, list):  # a stream: chunked transfer encoding
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
        self._route()

    def do_GET(self) -> None:
        self._route()

    def _route(self) -> None:
        """Answer the request with the first route of a part that takes it (FakeApi.routes; routes with a
        condition first); an unknown path: a 404 in the error format of the part whose unrouted_prefix it has."""
        split = urlsplit(self.path)
        path, query, fake = split.path.rstrip("/"), parse_qs(split.query), self.server.fake
        for part, route, pattern in _ROUTES:
            match = pattern.fullmatch(path) if route.method == self.command else None
            if match and (route.when is None or route.when(self.headers)):
                if route.handler is None:
                    return self._paid(part, path)
                handler, groups = route.handler, match.groups()
                return self._control(
                    path, lambda body: handler(fake, query, body, *groups), part, route.ledger_api, route.auth
                )
        self._control(path, None, _unrouted(path))

    # ---------------------------------------------------------------- free calls
    def _control(
        self,
        path: str,
        action: Callable[[Any], Any] | None,
        part: FakeApi,
        ledger_api: str = "batch_control",
        auth: bool = True,
    ) -> None:
        """A free call (batch/file control, model lookup) of `part` (its auth, headers and error bodies),
        recorded in the ledger as `ledger_api`."""
        request_id = _new_id(part.id_prefix)
        body = None

        def entry(status: int) -> LedgerEntry:
            logged = _form_summary(body) if isinstance(body, dict) and isinstance(body.get("file"), tuple) else body
            return LedgerEntry(
                ledger_api, path, logged, status, None, False, request_key(logged), None, request_id, time.time()
            )

        try:
            body = self._read_body() if self.command == "POST" else None
            if auth:
                part.check_auth(self.headers)
            if action is None:
                raise _Reject(404, f"no such endpoint: {self.command} {path}")
            result = action(body)
            payload, content_type = (
                (result, "application/binary")
                if isinstance(result, bytes)
                else (json.dumps(result).encode(), "application/json")
            )
            self._send(entry(200), {part.id_header: request_id}, payload, content_type)
        except Exception as raised:
            reject = raised if isinstance(raised, _Reject) else _internal_error(raised)
            error = part.error_body(reject, request_id)
            self._send(
                entry(reject.status), {part.id_header: request_id}, json.dumps(error).encode(), "application/json"
            )

    # ---------------------------------------------------------------- paid requests
    def _paid(self, part: FakeApi, path: str) -> None:
        fake, api = self.server.fake, part.name
        request_id = _new_id(part.id_prefix if part.paid_id_prefix is None else part.paid_id_prefix)
        body, fault, usage, dropped = None, None, None, None

        def entry(status: int) -> LedgerEntry:
            return LedgerEntry(
                api, path, body, status, fault, False, request_key(body), usage, request_id, time.time(), dropped
            )

        try:
            body = self._read_body()
            with fake._lock:
                fake.paid_requests_received += 1
            part.check_auth(self.headers)
            plan = fake.validate(api, body)
            dropped = plan.dropped
            scripted = (fake._script and fake._script(api, body)) or {}
            fault = fake._draw_fault(scripted, api, body)
            delay = fake.latency_s + (fake.fault_latency_s if fault == "latency" else 0.0)
            if delay:
                time.sleep(delay)
            if fault == "drop":
                raise _Drop()
            if "status" in scripted:
                raise _Reject(scripted["status"], ERROR_MESSAGES.get(scripted["status"], "scripted error"))
            if fault in BILLING_FAULTS:
                raise part.billing_reject(fault)
            if fault in ("429", "529", "503", "500"):
                error_status = part.fault_status(fault)
                raise _Reject(
                    error_status,
                    ERROR_MESSAGES[error_status],
                    _retry_after(fake.fault_retry_after_s) if fault == "429" else {},
                    fault,
                )
            cache = fake._cache_usage(plan.namespace, plan.prompt_parts(), plan.min_cache)
            event = fake._admit(api, cache[0] + cache[1] + (cache[2] if part.window_counts_cache_read else 0))
            answer, usage, stream = part.answer(fake, body, plan, fault, scripted, cache)
            with fake._lock:
                event[2] = usage["output_tokens"]
            fake._remember(cache[3])
            headers = {**fake.rate_limit_headers(api), part.id_header: request_id}
            if stream is not None:
                self._send(entry(200), headers, stream, "text/event-stream")
            else:
                self._send(entry(200), headers, json.dumps(answer).encode(), "application/json")
        except _Drop:
            self.close_connection = True
            fake._record(entry(0))
        except Exception as raised:  # _Reject, or a bug here: answered as a 500 and printed
            reject = raised if isinstance(raised, _Reject) else _internal_error(raised)
            status, fault = reject.status, reject.fault or fault
            headers = {**fake.rate_limit_headers(api), **reject.headers, part.id_header: request_id}
            if status == 429 and not reject.headers and reject.retry_after:
                headers.update(_retry_after(fake.fault_retry_after_s))
            self._send(
                entry(status), headers, json.dumps(part.error_body(reject, request_id)).encode(), "application/json"
            )


# Every part's routes, those with a condition (`when`) first: /v1/models is Anthropic's with anthropic-version.
_ROUTES = sorted(
    ((part, route, re.compile(route.pattern)) for part in PARTS for route in part.routes),
    key=lambda item: item[1].when is None,
)


def _unrouted(path: str) -> FakeApi:
    """The part whose error format answers an unknown `path`: the longest unrouted_prefix it starts with."""
    candidates = [part for part in PARTS if part.unrouted_prefix is not None and path.startswith(part.unrouted_prefix)]
    return max(candidates, key=lambda part: len(part.unrouted_prefix or ""), default=PARTS[0])


# --------------------------------------------------------------------------- standalone


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the fake provider APIs (parts.PARTS) until killed.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = a free port")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every answer")
    parser.add_argument("--rpm", type=int)
    parser.add_argument("--itpm", type=int)
    parser.add_argument("--otpm", type=int)
    parser.add_argument("--fault_rate", type=float, default=0.0)
    parser.add_argument(
        "--faults", nargs="+", default=list(FAULT_KINDS), choices=FAULT_KINDS + BILLING_FAULTS + ("503",)
    )
    parser.add_argument(
        "--served_model",
        action="append",
        default=[],
        help="an id answered on /v1/chat/completions like a self-hosted vLLM server (repeatable)",
    )
    parser.add_argument("--batch_delay", type=float, default=0.5, help="seconds until a Message Batch ends")
    parser.add_argument(
        "--thinking_tokens",
        type=int,
        help="tokens a thinking model thinks per call at its default effort (an assumption; default: a short thought)",
    )
    parser.add_argument("--ledger_path", help="append every request to this JSONL file")
    args = parser.parse_args()
    server = FakeProviderServer(
        seed=args.seed,
        latency_s=args.latency,
        fault_rate=args.fault_rate,
        fault_kinds=tuple(args.faults),
        rpm=args.rpm,
        itpm=args.itpm,
        otpm=args.otpm,
        batch_delay_s=args.batch_delay,
        ledger_path=args.ledger_path,
        host=args.host,
        port=args.port,
        served_models=tuple(args.served_model),
        thinking_tokens=args.thinking_tokens,
    )
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
