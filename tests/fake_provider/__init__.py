"""tests/fake_provider: a local fake of the Anthropic, OpenAI and OpenRouter HTTP APIs for tests and
benchmarks.

`FakeProviderServer` serves real HTTP on 127.0.0.1 (a free port) from a background thread;
the official SDKs talk to it through their base-URL options (`url`, `openai_base_url`,
`openrouter_base_url`, or `env()` for a subprocess):

- Anthropic Messages `POST /v1/messages` (plain and SSE streaming, thinking blocks, tool use,
  structured outputs in `output_config.format`, prompt-cache usage computed from the request's
  cache breakpoints), Message Batches (`/v1/messages/batches`, retrieve, results JSONL, list,
  cancel) and the Models API (`GET /v1/models`, `GET /v1/models/{id}`);
- OpenAI Chat Completions `POST /v1/chat/completions` (tools, forced tool_choice, strict
  `response_format` JSON schemas, reasoning models, automatic prefix caching in
  `prompt_tokens_details.cached_tokens`, streaming), `GET /v1/models[/{id}]`, and the Files +
  Batch API (`POST /v1/files`, `GET /v1/files/{id}[/content]`, `POST /v1/batches`,
  `GET /v1/batches/{id}`, `POST /v1/batches/{id}/cancel`) for `/v1/chat/completions` batches;
  `GET /v1/models...` is Anthropic's when the request carries `anthropic-version`, else OpenAI's;
- OpenRouter under its own prefix `/api/v1` (its real base URL is https://openrouter.ai/api/v1):
  `POST /api/v1/chat/completions` and `GET /api/v1/models`.

Every request is checked against TODAY's (2026-11-30) per-model rules: `CLAUDE_MODELS`,
`OPENAI_MODELS` and `OPENROUTER_MODELS` (anthropic_api.py, openai_api.py, openrouter_api.py), each
rule with its documentation source in a comment (tags resolve in `SOURCES`; "[3p]" marks a third-
party source, "CHOICE" a decision made here where the docs are silent). Unknown or retired models
are refused the way the real APIs refuse them. `served_models` adds ids answered on
`/v1/chat/completions` the way a self-hosted OpenAI-compatible server (vLLM) answers, without
OpenAI's model rules.

Answers are deterministic: a forced tool gets an input sampled from its JSON schema, a
structured-output request JSON sampled from its schema, with an rng seeded by `seed` and the
request's canonical hash; `script(fn)` overrides single answers. A thinking model thinks
`thinking_tokens` per call at its default effort (an assumption, scaled by the effort asked for);
thinking counts toward max_tokens and is billed as output, so thinking that fills max_tokens
leaves the answer cut off (`stop_reason: max_tokens`). Every answered request is billed at its own
model's list price (each part's `PRICES`, `LedgerEntry.cost_usd`, `cost()`). Faults (429, 529/503, 500,
dropped connections, extra latency, malformed or truncated tool input; and on request the
billing errors in BILLING_FAULTS, and refusals) are drawn per request from a seeded rng. A refusal (REFUSAL) is
a 200 answer in each wire format: Anthropic `stop_reason: "refusal"` with `stop_details`, OpenAI `message.refusal`
with null content, plain, streamed and in batches; `refuse(pattern)` refuses every request whose user text matches
a regex, and Anthropic's documented test string is always refused. `rpm`/`itpm`/`otpm`
enforce sliding-window rate limits. Every request goes into a thread-safe ledger (optionally
also a JSONL file): paid requests as `anthropic`, `openai`, `openrouter` (with the parameters
OpenRouter silently dropped), `anthropic_batch`, `openai_batch`; free calls (batch and file
control, model lookups) as `batch_control` and `model_lookup`. Standalone:
`python tests/fake_provider --port 0 --latency 0.2 --rpm 3000` prints its URL and
serves until killed. Reads nothing; writes only `ledger_path`.

The package, one part per provider: server.py (FakeProviderServer: lifecycle, faults, ledger, rate
limits, prompt cache, the shared answer logic; the HTTP handler, routing by the parts' routes; it
names no provider), parts.py (finds the parts), common.py (what the parts share, and `FakeApi`, what
a part declares), anthropic_api.py, openai_api.py, openrouter_api.py (each provider's rule table, wire
format, errors, endpoints and prices, as a mixin of FakeProviderServer, and its `API = FakeApi(...)`).
A new provider adds its own `<name>_api.py` and nothing else here.
"""

from __future__ import annotations

from .anthropic_api import ANTHROPIC_REFUSAL_TRIGGER, CLAUDE_MODELS, anthropic_prompt_parts
from .common import BILLING_FAULTS, FAULT_KINDS, REFUSAL, LedgerEntry, read_ledger
from .openai_api import OPENAI_MODELS, OPENAI_REFUSAL_TEXT
from .openrouter_api import OPENROUTER_MODELS
from .parts import PAID_APIS, SOURCES
from .server import FakeProviderServer, bill, main

__all__ = [
    "anthropic_prompt_parts",
    "ANTHROPIC_REFUSAL_TRIGGER",
    "bill",
    "BILLING_FAULTS",
    "CLAUDE_MODELS",
    "FakeProviderServer",
    "FAULT_KINDS",
    "LedgerEntry",
    "main",
    "OPENAI_MODELS",
    "OPENAI_REFUSAL_TEXT",
    "OPENROUTER_MODELS",
    "PAID_APIS",
    "read_ledger",
    "REFUSAL",
    "SOURCES",
]
