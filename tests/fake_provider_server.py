"""A local fake of the Anthropic, OpenAI and OpenRouter HTTP APIs for tests and benchmarks.

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
`OPENAI_MODELS` and `OPENROUTER_MODELS` below, each rule with its documentation source in a
comment (tags resolve in `SOURCES`; "[3p]" marks a third-party source, "CHOICE" a decision
made here where the docs are silent). Unknown or retired models are refused the way the real
APIs refuse them. `served_models` adds ids answered on `/v1/chat/completions` the way a
self-hosted OpenAI-compatible server (vLLM) answers, without OpenAI's model rules.

Answers are deterministic: a forced tool gets an input sampled from its JSON schema, a
structured-output request JSON sampled from its schema, with an rng seeded by `seed` and the
request's canonical hash; `script(fn)` overrides single answers. A thinking model thinks
`thinking_tokens` per call at its default effort (an assumption, scaled by the effort asked for);
thinking counts toward max_tokens and is billed as output, so thinking that fills max_tokens
leaves the answer cut off (`stop_reason: max_tokens`). Every answered request is billed at its own
model's list price (`LIST_PRICES`, `LedgerEntry.cost_usd`, `cost()`). Faults (429, 529/503, 500,
dropped connections, extra latency, malformed or truncated tool input; and on request the
billing errors in BILLING_FAULTS, and refusals) are drawn per request from a seeded rng. A refusal (REFUSAL) is
a 200 answer in each wire format: Anthropic `stop_reason: "refusal"` with `stop_details`, OpenAI `message.refusal`
with null content, plain, streamed and in batches; `refuse(pattern)` refuses every request whose user text matches
a regex, and Anthropic's documented test string is always refused. `rpm`/`itpm`/`otpm`
enforce sliding-window rate limits. Every request goes into a thread-safe ledger (optionally
also a JSONL file): paid requests as `anthropic`, `openai`, `openrouter` (with the parameters
OpenRouter silently dropped), `anthropic_batch`, `openai_batch`; free calls (batch and file
control, model lookups) as `batch_control` and `model_lookup`. Standalone:
`python tests/fake_provider_server.py --port 0 --latency 0.2 --rpm 3000` prints its URL and
serves until killed. Reads nothing; writes only `ledger_path`.
"""
from __future__ import annotations

import argparse
import email.policy
import hashlib
import importlib.util
import json
import math
import random
import re
import signal
import socket
import threading
import time
import traceback
import uuid
from collections import Counter, deque
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

import jiter


def _load_schema_sampler():
    """Load spt/providers/schema_sampler.py alone: the fake must not import the client it tests."""
    path = Path(__file__).resolve().parent.parent / "spt" / "providers" / "schema_sampler.py"
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
# Anthropic's documented test prompt that always triggers a refusal [refusals-anthropic]; the fake honours it too.
ANTHROPIC_REFUSAL_TRIGGER = ("ANTHROPIC_MAGIC_STRING_TRIGGER_REFUSAL_1FAEFB6177B4672DEE07F9D3AFC62588CCD2631EDCF22E8"
                             "CCC1FB35B501C9C86")
# CHOICE: the wording, category and the few characters streamed before the classifier stops the answer (the docs'
# example streams "Hello.." first; the category is one of the SDK's RefusalStopDetails categories).
REFUSAL_STOP_DETAILS = {"type": "refusal", "category": "general_harms",
                        "explanation": "This request was declined because it could be related to an area that was "
                                       "determined as harmful."}
OPENAI_REFUSAL_TEXT = "I'm sorry, but I can't help with that request."
REFUSED_PREFIX_CHARS = 8
PAID_APIS = ("anthropic", "anthropic_batch", "openai", "openai_batch", "openrouter")
HEADER_LIMIT_WHEN_UNLIMITED = 1_000_000
MAX_CACHE_BREAKPOINTS = 4
WINDOW_S = 60.0
STREAM_PIECE_CHARS = 40
TODAY = "2026-11-30"                  # the day the rule tables describe
EPOCH = "1970-01-01"                  # the Models API's created_at for an unknown release date (SDK ModelInfo)

ANTHROPIC_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
                         403: "permission_error", 404: "not_found_error", 409: "conflict_error",
                         413: "request_too_large", 429: "rate_limit_error", 500: "api_error",
                         504: "timeout_error", 529: "overloaded_error"}                     # [anthropic-errors]
OPENAI_ERROR_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 404: "invalid_request_error",
                      429: "rate_limit_exceeded", 500: "server_error", 503: "server_error"}
ERROR_MESSAGES = {429: "Rate limit exceeded; retry later.", 500: "Internal server error.",
                  502: "Your chosen model is down or we received an invalid response from it.",
                  503: "The engine is currently overloaded, please try again later.", 529: "Overloaded"}


# --------------------------------------------------------------------------- sources
# Tags used in the rule comments below. "[3p]" = a third-party page (SDK, reseller, issue thread, blog);
# everything else is the provider's own documentation or its official SDK as installed in .venv.
SOURCES = {
    # Anthropic: models and lifecycle
    "lineup": "https://platform.claude.com/docs/about-claude/models/whats-new-opus-5",
    "fable-5-2": "https://platform.claude.com/docs/id/models/opus-5/overview.md ; https://platform.claude.com/docs/it/"
                 "build-with-claude/effort.md ; release date [3p] https://docs.laozhang.ai/en/announcements/"
                 "claude-fable-5-2-2026-11.md",
    "fable-5-1": "https://platform.claude.com/docs/zh-CN/models/fable-5-1/overview.md",
    "fable-5": "https://platform.claude.com/docs/en/models/fable-5/overview.md ; [3p] https://fableguide.com/glossary/",
    "opus-5-5": "https://platform.claude.com/docs/zh-CN/models/opus-5-5/overview",
    "opus-5-5-new": "https://platform.claude.com/docs/en/models/opus-5-5/whats-new-opus-5-5 ; "
                    "https://platform.claude.com/docs/zh-CN/models/opus-5-5/whats-new-opus-5-5",
    "opus-5": "https://platform.claude.com/docs/ko/models/opus-5/overview.md ; "
              "https://platform.claude.com/docs/zh-CN/about-claude/models/whats-new-opus-5",
    "sonnet-5-5": "https://platform.claude.com/docs/zh-CN/models/sonnet-5-5/overview",
    "sonnet-5-5-new": "https://platform.claude.com/docs/en/models/sonnet-5-5/whats-new-sonnet-5-5 ; between_tools "
                      "section: https://platform.claude.com/docs/zh-CN/models/sonnet-5-5/whats-new-sonnet-5-5",
    "sonnet-5-5-migration": "https://platform.claude.com/docs/en/models/sonnet-5-5/migration-guide (five settings "
                            "that return 400; per-model table of accepted thinking.type values and default display)",
    "sonnet-5": "https://platform.claude.com/docs/zh-CN/models/sonnet-5/overview ; "
                "https://platform.claude.com/docs/zh-CN/models/sonnet-5/migration-guide",
    "haiku-5-5": "https://platform.claude.com/docs/en/models/haiku-5-5/overview.md",
    "haiku-5-5-new": "https://platform.claude.com/docs/ja/models/haiku-5-5/whats-new-haiku-5-5",
    "haiku-5-5-3p": "[3p] https://docs.apiyi.com/en/live/2026-11/claude-thinking-guide-refresh ; "
                    "https://github.com/OnesoftQwQ/opencode-go-copilot/releases/tag/v1.12.1",
    "opus-4-8": "https://platform.claude.com/docs/de/models/opus-4-8/overview.md",
    "opus-4-7": "https://docs.aws.amazon.com/bedrock/latest/userguide/model-card-anthropic-claude-opus-4-7.md ; "
                "https://docs.cloud.google.com/gemini-enterprise-agent-platform/models/partner-models/claude/opus-4-7 ;"
                " first reports 2026-04-16 [3p] https://github.com/anthropics/claude-code/issues/49219",
    "opus-4-6": "https://platform.claude.com/docs/en/models/opus-4-6/overview.md",
    "opus-4-5": "https://platform.claude.com/docs/pt-BR/models/opus-4-5/overview.md ; deprecation and retirement "
                "dates [3p] https://github.com/samarthputhraya/Modelpin/releases/tag/v0.5.7",
    "sonnet-4-6": "https://platform.claude.com/docs/zh-CN/models/sonnet-4-6/overview.md",
    "sonnet-4-5": "https://platform.claude.com/docs/ja/models/sonnet-4-5/overview.md (deprecated, retires 2026-11-30)",
    "haiku-4-5": "https://platform.claude.com/docs/zh-CN/models/haiku-4-5/overview.md ; "
                 "https://platform.claude.com/docs/models/haiku-4-5/migration-guide",
    "retired-opus-4-1": "https://platform.claude.com/docs/en/about-claude/pricing (retired except on Bedrock and "
                        "Google Cloud) ; date [3p] https://github.com/multidotdev/cli/releases/tag/v0.0.135",
    "retired-4-0": "[3p, citing the release notes] https://raw.githubusercontent.com/ottto-ai/ai-provider-watch/main/"
                   "data/events/2026-06-15-anthropic-sonnet-4-opus-4-retirement.json",
    "retired-3-x": "[3p] https://github.com/thevibeworks/claude-code-docs/pull/417 ; "
                   "https://github.com/davila7/claude-code-templates/pull/771",
    "retired-probe": "[3p live probe, 2026-09-04: GET /v1/models/{id}, then Messages, answer 404 not_found_error "
                     "for retired ids] https://github.com/promptfoo/promptfoo/pull/10632",
    "not-found-text": "[3p] https://github.com/spring-projects/spring-ai/pull/2387 ; "
                      "https://github.com/vicharanashala/vibe/issues/1259 ('model: claude-sonnet-4-20250514')",
    "aliases": "[3p live probe] https://github.com/promptfoo/promptfoo/pull/10483 (bare family ids resolve to the "
               "dated id; no -latest aliases)",
    "deprecations": "https://platform.claude.com/docs/en/about-claude/model-deprecations",
    "sdk-models": "the installed anthropic SDK's types/model.py (the ids it knows: fable-5-2 ... sonnet-4-5; no "
                  "4.1 / 4.0 / 3.x) and _data/deprecated_models.py (claude-opus-4-5: end of life 2027-01-22; "
                  "claude-sonnet-4-5: 2026-11-30)",
    "sdk-thinking-warning": "the installed anthropic SDK's _data/models_to_warn_with_thinking_enabled.py (warns on "
                            "thinking.type=enabled for claude-opus-4-6: deprecated there)",
    # Anthropic: request rules
    "thinking-ts": "https://platform.claude.com/docs/build-with-claude/thinking-troubleshooting",
    "extended-thinking": "https://platform.claude.com/docs/en/build-with-claude/extended-thinking",
    "thinking": "https://platform.claude.com/docs/build-with-claude/thinking (thinking tokens are billed as output "
                "tokens even when not returned, and count toward max_tokens)",
    "enabled-400-text": "[3p, the API's 400 text verbatim] https://github.com/anthropics/claude-code/issues/49219 ; "
                        "https://github.com/microsoft/vscode/issues/320605",
    "budget-limits": "the SDK's types/thinking_config_enabled_param.py ('Must be >=1024 and less than max_tokens'); "
                     "[3p] https://dev.to/multigrid/extended-thinking-in-claude-budgettokens-and-what-replaced-it-3i6p",
    "effort": "https://platform.claude.com/docs/it/build-with-claude/effort.md (models with effort) ; "
              "https://platform.claude.com/docs/en/build-with-claude/effort (defaults: high; medium on Opus 5.5, "
              "Haiku 5.5)",
    "effort-none": "https://platform.claude.com/docs/es/models/overview (Haiku 4.5: effort not supported) ; [3p] "
                   "https://reference.langchain.com/python/deepagents-code/reasoning_effort/ANTHROPIC_EFFORTS_NO_XHIGH "
                   "(Sonnet 4.5 rejects effort; Opus 4.6 and Sonnet 4.6 take low, medium, high, max)",
    "sampling-3p": "[3p] https://docs.memberjunction.org/v6.2/api/functions/_memberjunction_ai-anthropic."
                   "RejectsSamplingParams.html ; 400 text [3p] https://github.com/BerriAI/litellm/issues/26444",
    "prefill": "https://platform.claude.com/docs/en/api/errors#prefill-not-supported (removed with Claude 4.6, per "
               "[3p] https://github.com/lanl/ursa/issues/283) ; 400 text [3p] "
               "https://github.com/anthropics/claude-code/issues/52433 ; probes [3p] "
               "https://github.com/router-for-me/CLIProxyAPI/issues/5319 (opus-5 and "
               "sonnet-4-6: 400, haiku-4-5: 200) ; https://github.com/langchain-ai/deepagents/issues/1585 (4.6)",
    "forced-thinking": "[3p, quoting the docs] https://github.com/run-llama/llama_index/issues/19641 ; "
                       "https://github.com/anthropics/claude-code/issues/19414",
    "display-3p": "[3p] https://github.com/AAswordman/Operit/pull/568 (Opus 4.7/4.8 default display 'omitted')",
    "structured": "https://platform.claude.com/docs/ja/build-with-claude/structured-outputs (GA, output_config.format, "
                  "JSON in a text block) ; models: https://platform.claude.com/docs/es/build-with-claude/"
                  "structured-outputs ; https://docs.cloud.google.com/gemini-enterprise-agent-platform/models/"
                  "partner-models/claude/structured-outputs.md.txt ('all Claude 4.5 and later')",
    "schema-subset": "[3p, docs dated 2025-11-13] https://docs.rs/crate/claude-agent/latest/source/src/client/"
                     "schema.rs ; [3p] https://github.com/ENTERPILOT/GoModel/pull/963 ('rejected outright') ; the "
                     "SDK's lib/_parse/_transform.py (SupportedStringFormats; keeps minItems only as 0 or 1)",
    "cache-min": "https://platform.claude.com/docs/zh-CN/about-claude/models/whats-new-opus-5 ; https://openrouter.ai/"
                 "docs/cookbook/evaluate-and-optimize/model-migrations/claude-5-5 ; [3p] https://docs.litellm.ai/docs/"
                 "completion/prompt_caching.md ; Fable: [3p] https://fableguide.com/glossary/ (512) vs another [3p] "
                 "page (2048)",
    "models-api": "https://platform.claude.com/docs/zh-CN/api/php/models/retrieve ; the SDK's types/model_info.py, "
                  "model_capabilities.py, thinking_types.py, effort_capability.py and resources/models.py (list: "
                  "newest first; `lifecycle` filter, retired only when asked)",
    "anthropic-errors": "https://platform.claude.com/docs/en/api/errors",
    "refusals-anthropic": "https://platform.claude.com/docs/en/test-and-evaluate/strengthen-guardrails/"
                          "handle-streaming-refusals (200 answer, stop_reason 'refusal', stop_details {type, category, "
                          "explanation} on message_delta when streamed, the text streamed so far kept, output tokens "
                          "billed up to the refusal, the magic test string) ; the SDK's types/message.py, "
                          "refusal_stop_details.py, stop_reason.py",
    "spend-limit": "https://learn.microsoft.com/es-es/microsoft-cloud/dev/dev-proxy/concepts/"
                   "anthropic-529-overloaded-error (429, error.details.error_code enforced_spend_limit_reached, "
                   "no retry-after, do not retry)",
    "credit": "[3p] https://github.com/anthropics/claude-code/issues/66314",
    # OpenAI
    "openai-reasoning": "https://developers.openai.com/api/docs/guides/reasoning ; efforts: "
                        "https://learn.microsoft.com/en-us/javascript/api/@azure/ai-projects/reasoningeffort",
    "openai-max-tokens": "[3p] https://github.com/ITSpecialist111/ai_automation_suggester/issues/38 ; "
                         "https://github.com/decolua/9router/issues/560",
    "openai-temperature": "[3p] https://github.com/decolua/9router/issues/560 ; https://github.com/pickle-com/glass/"
                          "pull/227",
    "openai-unknown-arg": "[3p] https://github.com/xlinx/sd-webui-decadetw-auto-prompt-llm/issues/29 ; "
                          "https://github.com/openai/openai-java/issues/71 ; argument list: the installed openai SDK's "
                          "types/chat/completion_create_params.py",
    "openai-strict": "https://github.com/openai/openai-java/issues/139 ; [3p] "
                     "https://jsonschemaprofiles.unitvectorylabs.com/schemas/openai",
    "openai-quota": "[3p] https://github.com/mattvr/ShellGPT/issues/23",
    "refusals-openai": "https://platform.openai.com/docs/guides/structured-outputs#refusals (a refusal comes back as "
                       "a 200 with `message.refusal` set and no content; finish_reason stop) ; the SDK's "
                       "types/chat/chat_completion_message.py (`refusal: Optional[str]`, content Optional) and "
                       "chat_completion_chunk.py (`delta.refusal`)",
    "openai-404": "[3p] https://github.com/openai/openai-agents-python/issues/458",
    "gpt-6-sol": "https://developers.openai.com/zh-Hans/api/docs/models/gpt-6-sol (efforts none..max, default medium; "
                 "$2 / $0.20 cached / $2.50 cache write / $10; Chat Completions)",
    "gpt-6-2-sol": "https://developers.openai.com/api/docs/models/gpt-6.2-sol, read through "
                   "https://www.w3cschool.cn/openai_api/openai_api-models-gpt-6-2-sol.html (effort none refused; $2 / "
                   "$0.10 cached / $10; 128,000 output tokens; Chat Completions and Batch)",
    "gpt-5-6": "[3p, citing OpenAI's pricing page] https://github.com/anandgupta42/receipts/releases/tag/v0.8.1 "
               "($5 / $0.50 / $30) ; efforts [3p] https://docs.venice.ai/zh/models/gpt-5-6-sol",
    "gpt-5-5": "[3p] https://apidog.com/blog/how-to-use-gpt-5-5-api/ ($5 / $30; pro $30 / $180) ; pro on /v1/responses "
               "only [3p] https://docs.apiyi.com/models/gpt-5-5-pro ; 400 wording not found",
    "openai-deprecations": "https://developers.openai.com/api/docs/deprecations (gpt-5 and o3: Dec 11, 2026) ; o4-mini "
                           "2026-10-23 and gpt-4o/gpt-4.1 2027-01-14 [3p, quoting that page] https://dev.to/importstatic/"
                           "every-openai-model-shutdown-date-until-january-2027-and-what-replaces-it-1dfk",
    "batch-ttl": "https://docs.claude.com/ja/docs/build-with-claude/batch-processing (use the 1-hour cache duration "
                 "with batches) ; prices per TTL: https://platform.claude.com/docs/en/about-claude/pricing",
    "thinking-amount": "ASSUMPTION: no provider publishes how many tokens a model thinks; `thinking_tokens` sets it "
                       "per call at the model's default effort, doubled per effort step above, halved per step below",
    "openai-cache": "https://developers.openai.com/docs/guides/prompt-caching ('enabled automatically for prompts "
                    "that are 1024 tokens or longer') ; schema as prefix: [3p, quoting it] https://portkey.ai/docs/"
                    "integrations/llms/openai/prompt-caching-openai",
    # OpenRouter
    "or-routing": "https://openrouter.ai/docs/features/provider-routing.md (require_parameters; tools restrict "
                  "routing)",
    "or-ignored": "https://openrouter.ai/docs/guides/evaluate-and-optimize/model-migrations/claude-4-7 (unsupported "
                  "sampling parameters 'will be silently ignored')",
    "or-404-params": "[3p] https://github.com/block/buzz/issues/3018 (404 'No endpoints found that can handle the "
                     "requested parameters.')",
    "or-404-tools": "[3p] https://github.com/dnakov/anon-kode/issues/2 ; https://github.com/Kilo-Org/kilocode/issues/"
                    "9006 ; tool_choice: https://github.com/zed-industries/zed/issues/36094",
    "or-mandatory": "https://openrouter.ai/docs/client-sdks/python/components/modelreasoning ; 400 text [3p] "
                    "https://github.com/musistudio/claude-code-router/issues/1238",
    "or-reasoning": "https://www.openrouter.ai/docs/use-cases/reasoning-tokens",
    "or-usage": "https://openrouter.ai/docs/use-cases/usage-accounting (usage with cost on every response; "
                "include flags deprecated)",
    "or-models": "https://openrouter.ai/docs/models ; no auth needed [3p] https://smithery.ai/skills/jeremylongshore/"
                 "openrouter-model-catalog",
    "or-invalid-model": "[3p] https://github.com/OpenRouterTeam/openrouter-examples/issues/74 ('claude-sonnet-4-6 is "
                        "not a valid model ID', 400; the slug is anthropic/claude-sonnet-4.6, with a dot)",
    "or-errors": "https://openrouter.ai/docs/errors ({error: {code, message, metadata}}; 402 insufficient credits; "
                 "502 model down)",
    "or-claude-5-5": "https://openrouter.ai/docs/cookbook/evaluate-and-optimize/model-migrations/claude-5-5",
}

EFFORT_LADDER = ("low", "medium", "high", "xhigh", "max")      # [effort]; SDK output_config_param.py
NO_XHIGH = ("low", "medium", "high", "max")                     # [effort-none] Opus 4.6 / Sonnet 4.6


# --------------------------------------------------------------------------- Anthropic rule table

@dataclass(frozen=True)
class ClaudeRules:
    """What one Claude model accepts on the Messages API and shows on the Models API."""
    id: str                          # the id the Models API returns (the dated id where one exists)
    display_name: str
    line: str | None                 # SDK ModelLine: haiku, sonnet, opus, fable, mythos
    created: str                     # release date (EPOCH when unknown, as the SDK's ModelInfo allows)
    lifecycle: str                   # active | deprecated | retired (SDK ModelInfo; "legacy" = active [deprecations])
    deprecated_at: str | None
    retires_at: str | None
    context: int | None              # max_input_tokens
    max_output: int | None           # max_tokens
    thinking: frozenset              # accepted thinking.type values (SDK ThinkingTypes)
    thinking_default: str            # with no thinking field: off | on | always (on and cannot be turned off)
    display_default: str             # summarized (thinking text returned) | omitted (empty thinking text)
    efforts: tuple                   # accepted output_config.effort levels; () = no effort parameter
    default_effort: str | None
    disabled_max_effort: str | None  # thinking "disabled" accepted only up to this effort (None: any)
    forced_tool: bool                # tool_choice any/tool accepted
    sampling: str                    # any | one_of (not temperature and top_p together) | default_only
    structured_outputs: bool
    min_cache: int                   # minimum cacheable prefix in tokens; below it nothing is written or read
    prefill: bool                    # a final assistant turn accepted
    disabled_message: str = ""       # the 400 text for thinking "disabled" where it is refused


_ADAPTIVE_HINT = 'Use "thinking.type.adaptive" and "output_config.effort" to control thinking behavior.'

# Shared by the generation-5 models; each entry below overrides what differs.
_GEN5 = ClaudeRules(
    id="", display_name="", line=None, created=EPOCH, lifecycle="active", deprecated_at=None, retires_at=None,
    context=1_000_000, max_output=128_000,        # [lineup][sonnet-5-5][opus-5-5][haiku-5-5]: 1M / 128K on every 5.x
    thinking=frozenset({"adaptive"}),             # budget "enabled" -> 400 on 4.7 and later [extended-thinking]
                                                  # [thinking-ts]
    thinking_default="on",                        # adaptive thinking on by default on 5.x [sonnet-5][opus-5]
                                                  # [sonnet-5-5-new]
    display_default="omitted",                    # 5.x thinking blocks arrive empty by default [opus-5-5-new]
                                                  # [sonnet-5-5-migration]
    efforts=EFFORT_LADDER, default_effort="high",  # [effort]: low..max, default high
    disabled_max_effort=None,
    forced_tool=True,
    sampling="default_only",                      # non-default temperature/top_p/top_k -> 400 [sonnet-5]
                                                  # [haiku-5-5-new][sampling-3p]
    structured_outputs=True,                      # [structured]: "all Claude 4.5 and later", no 5.x exclusion found
    min_cache=512,                                # [cache-min]
    prefill=False,                                # final assistant turn -> 400 from 4.6 on [prefill][haiku-5-5-new]
                                                  # [sonnet-5-5-migration]
)
# Opus 4.6 - 4.8 (1M / 128K, thinking off unless asked for).
_GEN4_LATE = replace(
    _GEN5, thinking_default="off",                # 4.6 and earlier do not think unless asked [sonnet-5-5-migration]
    thinking=frozenset({"adaptive", "disabled"}),
    display_default="omitted",                    # Opus 4.7 / 4.8 [display-3p]
    sampling="default_only", min_cache=1024, prefill=False)
# Claude 4.5 and retired models: budget thinking only, no adaptive [thinking-ts], 200K / 64K.
_GEN4_EARLY = replace(
    _GEN5, context=200_000, max_output=64_000, thinking=frozenset({"enabled", "disabled"}), thinking_default="off",
    display_default="summarized", efforts=(), default_effort=None, sampling="any", min_cache=1024, prefill=True)
_RETIRED = replace(_GEN4_EARLY, lifecycle="retired", context=None, max_output=None,   # limits not in the research notes
                   structured_outputs=False)

_CLAUDE_RULES = (
    replace(_GEN5, id="claude-fable-5-2", display_name="Claude Fable 5.2", line="fable",
            created="2026-11-09",                 # [fable-5-2] (date [3p])
            thinking_default="always",            # CHOICE: docs silent on 5.2; as Fable 5 / 5.1 (always on)
            forced_tool=False,                    # CHOICE: docs silent on 5.2; as Fable 5.1 (forced tool -> 400)
            min_cache=2048,                       # CHOICE: Fable sources disagree (512 vs 2048) [cache-min]; the higher
            disabled_message=f'"thinking.type.disabled" is not supported for this model. {_ADAPTIVE_HINT}'),
    replace(_GEN5, id="claude-fable-5-1", display_name="Claude Fable 5.1", line="fable",
            created="2026-09-01",                 # [fable-5-1]
            thinking_default="always",            # "Adaptive (always on)", effort high: [sonnet-5-5] comparison
            forced_tool=False,                    # "Forced tool use returns an error" on Fable 5.1 too [opus-5-5-new]
                                                  # [fable-5-1]
            min_cache=2048,                       # CHOICE, as for Fable 5.2
            disabled_message=f'"thinking.type.disabled" is not supported for this model. {_ADAPTIVE_HINT}'),
    replace(_GEN5, id="claude-fable-5", display_name="Claude Fable 5", line="fable",
            created="2026-06-09",                 # [fable-5]
            thinking_default="always",            # always on [fable-5] ([3p] glossary)
            forced_tool=True,                     # 5.1 lists "forced tool -> error" as a change from 5 [fable-5-1]
            min_cache=2048,                       # CHOICE, as for Fable 5.2
            disabled_message=f'"thinking.type.disabled" is not supported for this model. {_ADAPTIVE_HINT}'),
    replace(_GEN5, id="claude-opus-5-5", display_name="Claude Opus 5.5", line="opus",
            created="2026-09-22",                 # [opus-5-5]
            thinking_default="always",            # "Adaptive (always on)"; disabled -> 400 [opus-5-5-new]
            default_effort="medium",              # [effort]
            forced_tool=False,                    # "Forced tool use returns an error." [opus-5-5-new]
            min_cache=512,                        # [cache-min]
            # The documented 400 text begins so [opus-5-5-new]; its tail is assumed to match the "enabled" text.
            disabled_message=f'"thinking.type.disabled" is not supported for this model. {_ADAPTIVE_HINT}'),
    replace(_GEN5, id="claude-opus-5", display_name="Claude Opus 5", line="opus",
            created="2026-07-24",                 # [opus-5]; retires no sooner than 2027-07-24 (no date set)
            thinking=frozenset({"adaptive", "disabled"}),
            disabled_max_effort="high",           # disabled accepted only at effort <= high [opus-5]
            forced_tool=True,                     # docs silent (not a listed breaking change); thinking-on rule applies
            min_cache=512),                       # [cache-min] (official)
    replace(_GEN5, id="claude-sonnet-5-5", display_name="Claude Sonnet 5.5", line="sonnet",
            created="2026-09-28",                 # [sonnet-5-5]
            thinking=frozenset({"adaptive", "between_tools"}),   # the accepted values [sonnet-5-5-migration]
            forced_tool=False,                    # "Forced tool use returns an error." [sonnet-5-5-new]
            min_cache=512,                        # [cache-min]
            # disabled -> 400 "whose message points to between_tools" [sonnet-5-5-new]; exact wording not found.
            disabled_message='"thinking.type.disabled" is not supported for this model. Use "thinking.type.'
                             'between_tools" to turn off up-front thinking.'),
    replace(_GEN5, id="claude-sonnet-5", display_name="Claude Sonnet 5", line="sonnet",
            created="2026-06-30",                 # [sonnet-5]
            thinking=frozenset({"adaptive", "disabled"}),   # disabled accepted (older summary); no effort limit found
            min_cache=1024),                      # [cache-min]
    replace(_GEN5, id="claude-haiku-5-5", display_name="Claude Haiku 5.5", line="haiku",
            created="2026-10-07",                 # [haiku-5-5]
            thinking=frozenset({"adaptive", "disabled"}),
            disabled_max_effort="high",           # [haiku-5-5-3p]: disabled at effort <= high; official docs silent
            default_effort="medium",              # [effort]
            forced_tool=True,                     # CHOICE: docs silent; not in its breaking-change list [haiku-5-5-new]
            min_cache=512),                       # [cache-min]
    replace(_GEN4_LATE, id="claude-opus-4-8", display_name="Claude Opus 4.8", line="opus",
            created="2026-05-28",                 # [opus-4-8]
            thinking=frozenset({"adaptive", "disabled"}),   # enabled -> 400 [enabled-400-text] (4.8: vscode#320605)
            sampling="default_only",              # [sampling-3p]
            min_cache=1024),                      # [cache-min]
    replace(_GEN4_LATE, id="claude-opus-4-7", display_name="Claude Opus 4.7", line="opus",
            created="2026-04-16",                 # [opus-4-7] ([3p] first reports; Vertex: retires >= 2027-04-16)
            sampling="default_only",              # "`temperature` is deprecated for this model." [sampling-3p]
            min_cache=2048),                      # [cache-min]
    replace(_GEN4_LATE, id="claude-opus-4-6", display_name="Claude Opus 4.6", line="opus",
            created=EPOCH,                        # [opus-4-6]: 1M / 128K; release date not in the research notes
            thinking=frozenset({"enabled", "adaptive", "disabled"}),   # budget deprecated, still works [thinking-ts]
                                                  # [sdk-thinking-warning]
            display_default="summarized",         # CHOICE: docs silent ([display-3p] names only 4.7 / 4.8)
            efforts=NO_XHIGH,                     # no xhigh [effort-none]
            sampling="any",                       # accepts temperature with thinking off [sampling-3p]
            min_cache=4096,                       # [cache-min]
            prefill=False),                       # [prefill]
    replace(_GEN4_LATE, id="claude-sonnet-4-6", display_name="Claude Sonnet 4.6", line="sonnet",
            created="2026-02-17",                 # [sonnet-4-6]
            thinking=frozenset({"enabled", "adaptive", "disabled"}),   # [thinking-ts]
            display_default="summarized",         # CHOICE, as Opus 4.6
            efforts=NO_XHIGH,                     # [effort-none]
            sampling="any",                       # [sampling-3p]
            min_cache=1024,                       # [cache-min]
            prefill=False),                       # [prefill] (probe: sonnet-4-6 -> 400)
    replace(_GEN4_EARLY, id="claude-opus-4-5-20251101", display_name="Claude Opus 4.5", line="opus",
            created="2025-11-01",                 # the id's date
            lifecycle="deprecated", deprecated_at="2026-11-23",   # [opus-4-5] ([3p] date)
            retires_at="2027-01-22",              # [sdk-models][opus-4-5]
            efforts=("low", "medium", "high"),    # has effort [effort]; CHOICE: levels not listed, max/xhigh came later
            default_effort="high",
            min_cache=4096,                       # [cache-min]
            prefill=True),                        # CHOICE: prefill removal is dated to 4.6 [prefill]
    replace(_GEN4_EARLY, id="claude-haiku-4-5-20251001", display_name="Claude Haiku 4.5", line="haiku",
            created="2025-10-01",                 # the id's date; [haiku-4-5] "legacy" = still active
            efforts=(),                           # effort "Not supported" [effort-none]
            sampling="one_of",                    # 400 if temperature and top_p are both set [haiku-4-5]
            min_cache=4096,                       # [cache-min]
            prefill=True),                        # probe: 200 [prefill]
    replace(_RETIRED, id="claude-sonnet-4-5-20250929", display_name="Claude Sonnet 4.5", line="sonnet",
            created="2025-09-29", retires_at=TODAY,  # retires 2026-11-30 = TODAY: retired [sonnet-4-5][sdk-models]
            context=200_000, max_output=64_000),
    replace(_RETIRED, id="claude-opus-4-1-20250805", display_name="Claude Opus 4.1", line="opus",
            created="2025-08-05", retires_at="2026-08-05"),   # [retired-opus-4-1][retired-probe]
    replace(_RETIRED, id="claude-opus-4-20250514", display_name="Claude Opus 4", line="opus",
            created="2025-05-14", retires_at="2026-06-15"),   # [retired-4-0][retired-probe]
    replace(_RETIRED, id="claude-sonnet-4-20250514", display_name="Claude Sonnet 4", line="sonnet",
            created="2025-05-14", retires_at="2026-06-15"),   # [retired-4-0][retired-probe]
    replace(_RETIRED, id="claude-3-7-sonnet-20250219", display_name="Claude Sonnet 3.7", line="sonnet",
            created="2025-02-19", retires_at="2026-02-19"),   # [retired-3-x][retired-probe]
    replace(_RETIRED, id="claude-3-5-haiku-20241022", display_name="Claude Haiku 3.5", line="haiku",
            created="2024-10-22", retires_at="2026-02-19"),   # [retired-3-x] ([3p] date)[retired-probe]
)
_BY_ID = {rules.id: rules for rules in _CLAUDE_RULES}

# Every id the Messages API is sent, dated ids and aliases alike -> its rules. [aliases]: the bare family id
# resolves to the dated id; there are no "-latest" aliases.
CLAUDE_MODELS: dict[str, ClaudeRules] = {
    **_BY_ID,
    "claude-opus-4-5": _BY_ID["claude-opus-4-5-20251101"],        # [aliases][opus-4-5]
    "claude-haiku-4-5": _BY_ID["claude-haiku-4-5-20251001"],      # [aliases][haiku-4-5]
    "claude-sonnet-4-5": _BY_ID["claude-sonnet-4-5-20250929"],    # [aliases]; retired [sonnet-4-5]
    "claude-opus-4-1": _BY_ID["claude-opus-4-1-20250805"],        # retired [retired-opus-4-1]
    "claude-opus-4-0": _BY_ID["claude-opus-4-20250514"],          # retired [retired-4-0]
    "claude-sonnet-4-0": _BY_ID["claude-sonnet-4-20250514"],      # retired [retired-4-0]
}


# --------------------------------------------------------------------------- OpenAI rule table

@dataclass(frozen=True)
class OpenAIRules:
    id: str
    reasoning: bool                  # a reasoning model: max_completion_tokens only, temperature/top_p only 1
    efforts: tuple = ()              # accepted reasoning_effort values (reasoning models)
    created: int = 0                 # release time (not researched: 0)
    default_effort: str = "medium"   # the effort a reasoning model thinks at when none is sent [gpt-6-sol]
    chat_completions: bool = True    # False: served on the Responses API only (400 on /v1/chat/completions)


_GPT5_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")   # [openai-reasoning]; CHOICE: all six on 5.4+
_GPT6_EFFORTS = ("none", "low", "medium", "high", "xhigh", "max")       # [gpt-6-sol]: none ... max, default medium
OPENAI_MODELS: dict[str, OpenAIRules] = {
    "gpt-4.1": OpenAIRules("gpt-4.1", reasoning=False),                   # not a reasoning model [openai-reasoning]
    "gpt-4.1-mini": OpenAIRules("gpt-4.1-mini", reasoning=False),         # not a reasoning model
    "gpt-4o": OpenAIRules("gpt-4o", reasoning=False),                     # not a reasoning model; shuts down
                                                                          # 2027-01-14 [openai-deprecations]
    "gpt-5.4": OpenAIRules("gpt-5.4", reasoning=True, efforts=_GPT5_EFFORTS),            # [openai-reasoning]
    "gpt-5.4-mini": OpenAIRules("gpt-5.4-mini", reasoning=True, efforts=_GPT5_EFFORTS),  # [openai-reasoning]
    "gpt-5.5": OpenAIRules("gpt-5.5", reasoning=True, efforts=_GPT5_EFFORTS),            # [gpt-5-5]
    "gpt-5.5-pro": OpenAIRules("gpt-5.5-pro", reasoning=True, efforts=("medium", "high", "xhigh"),
                               default_effort="high", chat_completions=False),           # [gpt-5-5] Responses only
    "gpt-5.6": OpenAIRules("gpt-5.6", reasoning=True, efforts=_GPT5_EFFORTS),            # "Start with gpt-5.6"
    "gpt-5.6-sol": OpenAIRules("gpt-5.6-sol", reasoning=True, efforts=_GPT6_EFFORTS),    # [gpt-5-6]
    "gpt-6-sol": OpenAIRules("gpt-6-sol", reasoning=True, efforts=_GPT6_EFFORTS),        # [gpt-6-sol]
    "gpt-6.1-sol": OpenAIRules("gpt-6.1-sol", reasoning=True, efforts=_GPT6_EFFORTS),    # CHOICE: as gpt-6-sol
    # "The API rejects requests that set reasoning effort to none" [gpt-6-2-sol]
    "gpt-6.2-sol": OpenAIRules("gpt-6.2-sol", reasoning=True, efforts=_GPT6_EFFORTS[1:]),
    "o3": OpenAIRules("o3", reasoning=True, efforts=("low", "medium", "high")),         # pre-5.1: no "none"; shuts
                                                                                        # down 2026-12-11
    # o4-mini shut down on 2026-10-23 [openai-deprecations]: 404 like any unknown model.
}
# List prices in USD per million tokens: (input, output, cache write 5 min, cache write 1 h, cache read). The fake
# bills every answered request at its own model's price (LedgerEntry.cost_usd; batches at half price [batch-ttl]).
# OpenRouter models bill their own usage.cost (OPENROUTER_MODELS).
LIST_PRICES: dict[str, tuple[float, float, float, float, float]] = {
    "claude-fable-5-2": (8, 40, 10, 16, 0.2),          # [fable-5-2]
    "claude-fable-5-1": (10, 50, 12.5, 20, 0.25),      # [fable-5-1]
    "claude-fable-5": (10, 50, 12.5, 20, 1.0),         # [fable-5]
    "claude-opus-5-5": (4, 20, 5, 8, 0.2),             # [opus-5-5]
    "claude-opus-5": (5, 25, 6.25, 10, 0.5),           # [opus-5]
    "claude-sonnet-5-5": (2, 10, 2.5, 4, 0.1),         # [sonnet-5-5][sonnet-5-5-migration] (cache read $0.10)
    "claude-sonnet-5": (2, 10, 2.5, 4, 0.2),           # [sonnet-5]
    "claude-haiku-5-5": (0.1, 0.5, 0.125, 0.2, 0.01),  # [haiku-5-5] (prompts up to 100K tokens)
    "claude-opus-4-8": (5, 25, 6.25, 10, 0.5),         # [opus-4-8]
    "claude-opus-4-7": (5, 25, 6.25, 10, 0.5),         # [opus-4-7]
    "claude-opus-4-6": (5, 25, 6.25, 10, 0.5),         # [opus-4-6]
    "claude-sonnet-4-6": (3, 15, 3.75, 6, 0.3),        # [sonnet-4-6]
    "claude-opus-4-5-20251101": (5, 25, 6.25, 10, 0.5),   # [opus-4-5]
    "claude-haiku-4-5-20251001": (1, 5, 1.25, 2, 0.1),    # [haiku-4-5]
    "gpt-4.1": (2, 8, 2, 2, 0.5), "gpt-4.1-mini": (0.4, 1.6, 0.4, 0.4, 0.1), "gpt-4o": (2.5, 10, 2.5, 2.5, 1.25),
    "gpt-5.4": (2.5, 15, 2.5, 2.5, 0.25), "gpt-5.4-mini": (0.75, 4.5, 0.75, 0.75, 0.075),
    "gpt-5.5": (5, 30, 5, 5, 0.5), "gpt-5.5-pro": (30, 180, 30, 30, 30),       # [gpt-5-5]
    "gpt-5.6": (5, 30, 5, 5, 0.5), "gpt-5.6-sol": (5, 30, 5, 5, 0.5),          # [gpt-5-6]
    "gpt-6-sol": (2, 10, 2.5, 2.5, 0.2), "gpt-6.1-sol": (2, 10, 2.5, 2.5, 0.2),  # [gpt-6-sol]
    "gpt-6.2-sol": (2, 10, 2.5, 2.5, 0.1),             # [gpt-6-2-sol]
    "o3": (2, 8, 2, 2, 0.5),
}
OPENAI_MIN_CACHE = 1024          # [openai-cache]; CHOICE: the 128-token increments above it are not modelled
# Every Chat Completions argument the installed openai SDK knows (its CompletionCreateParams), plus `stream`;
# anything else -> 400 "Unrecognized request argument supplied: X" [openai-unknown-arg].
OPENAI_CHAT_ARGUMENTS = frozenset({
    "audio", "frequency_penalty", "function_call", "functions", "logit_bias", "logprobs", "max_completion_tokens",
    "max_tokens", "messages", "metadata", "modalities", "model", "moderation", "n", "parallel_tool_calls",
    "prediction", "presence_penalty", "prompt_cache_key", "prompt_cache_options", "prompt_cache_retention",
    "reasoning_effort", "response_format", "safety_identifier", "seed", "service_tier", "stop", "store", "stream",
    "stream_options", "temperature", "tool_choice", "tools", "top_logprobs", "top_p", "user", "verbosity",
    "web_search_options"})
# [openai-strict]
OPENAI_STRICT_UNSUPPORTED = ("allOf", "not", "if", "then", "else", "dependentRequired", "dependentSchemas")


# --------------------------------------------------------------------------- OpenRouter rule table

@dataclass(frozen=True)
class OpenRouterModel:
    id: str
    name: str
    context_length: int
    supported_parameters: tuple      # what GET /api/v1/models lists; other parameters are dropped [or-ignored]
    reasoning_mandatory: bool        # reasoning cannot be disabled [or-mandatory]
    reasoning_default: bool          # reasoning on when the request does not mention it
    prompt_price: float              # USD per token (the fake's own price table: usage.cost)
    completion_price: float
    cache_read_price: float
    forced_tool_choice: bool = True  # tool_choice "required" / a named function accepted


_OPEN_WEIGHT_PARAMS = ("frequency_penalty", "include_reasoning", "logit_bias", "max_tokens", "min_p",
                       "presence_penalty", "reasoning", "repetition_penalty", "response_format", "seed", "stop",
                       "structured_outputs", "temperature", "tool_choice", "tools", "top_k", "top_p")
# CHOICE: supported_parameters and prices are illustrative (OpenRouter's listing changes; the docs say to check
# GET /api/v1/models [or-models]); the Anthropic row copies Anthropic's list price ($2 / $10 per MTok).
OPENROUTER_MODELS: dict[str, OpenRouterModel] = {
    "qwen/qwen3-32b": OpenRouterModel(
        "qwen/qwen3-32b", "Qwen: Qwen3 32B", 40_960, _OPEN_WEIGHT_PARAMS, reasoning_mandatory=False,
        reasoning_default=True,          # Qwen3 thinks unless told not to (its chat template); [or-reasoning]
        prompt_price=0.10e-6, completion_price=0.30e-6, cache_read_price=0.05e-6),
    "qwen/qwen3-14b": OpenRouterModel(
        "qwen/qwen3-14b", "Qwen: Qwen3 14B", 40_960, _OPEN_WEIGHT_PARAMS, reasoning_mandatory=False,
        reasoning_default=True, prompt_price=0.06e-6, completion_price=0.24e-6, cache_read_price=0.03e-6),
    "google/gemma-3-12b-it": OpenRouterModel(
        "google/gemma-3-12b-it", "Google: Gemma 3 12B", 131_072,
        tuple(p for p in _OPEN_WEIGHT_PARAMS if p not in ("reasoning", "include_reasoning", "tools", "tool_choice")),
        reasoning_mandatory=False, reasoning_default=False,       # no reasoning, no tools (CHOICE)
        prompt_price=0.05e-6, completion_price=0.10e-6, cache_read_price=0.05e-6),
    "meta-llama/llama-3.3-70b-instruct": OpenRouterModel(
        "meta-llama/llama-3.3-70b-instruct", "Meta: Llama 3.3 70B Instruct", 131_072,
        tuple(p for p in _OPEN_WEIGHT_PARAMS if p not in ("reasoning", "include_reasoning")),
        reasoning_mandatory=False, reasoning_default=False,
        prompt_price=0.13e-6, completion_price=0.40e-6, cache_read_price=0.13e-6),
    "deepseek/deepseek-r1": OpenRouterModel(
        "deepseek/deepseek-r1", "DeepSeek: R1", 163_840,
        tuple(p for p in _OPEN_WEIGHT_PARAMS if p not in ("tools", "tool_choice", "response_format",
                                                          "structured_outputs")),
        reasoning_mandatory=True,        # reasoning cannot be disabled [or-mandatory]
        reasoning_default=True, prompt_price=0.70e-6, completion_price=2.50e-6, cache_read_price=0.35e-6),
    # OpenRouter writes Anthropic slugs with a dot (anthropic/claude-sonnet-4.6) [or-invalid-model].
    "anthropic/claude-sonnet-5.5": OpenRouterModel(
        "anthropic/claude-sonnet-5.5", "Anthropic: Claude Sonnet 5.5", 1_000_000,
        # Sampling parameters are removed on Claude 5.5 [or-claude-5-5]: not listed, so dropped [or-ignored].
        ("include_reasoning", "max_tokens", "reasoning", "response_format", "stop", "structured_outputs",
         "tool_choice", "tools", "verbosity"),
        reasoning_mandatory=False,       # CHOICE: docs silent on enabled:false (Anthropic maps it to between_tools?)
        reasoning_default=True,          # adaptive thinking by default [or-claude-5-5]
        prompt_price=2e-6, completion_price=10e-6, cache_read_price=0.10e-6,
        forced_tool_choice=False),       # Anthropic refuses forced tool use [sonnet-5-5-new]; CHOICE: OpenRouter's 404
}
# Request fields that are not model parameters: never dropped.
OPENROUTER_ENVELOPE = frozenset({"model", "messages", "stream", "stream_options", "provider", "models", "route",
                                 "transforms", "plugins", "usage", "user", "session_id", "prompt", "metadata"})


# --------------------------------------------------------------------------- error texts

# [anthropic-errors][not-found-text]: unknown and retired models alike.
def _claude_not_found(model: str) -> "_Reject":
    return _Reject(404, f"model: {model}")


ENABLED_REFUSED = f'"thinking.type.enabled" is not supported for this model. {_ADAPTIVE_HINT}'   # [enabled-400-text]
FORCED_THINKING = "Thinking may not be enabled when tool_choice forces tool use."                 # [forced-thinking]
PREFILL_REFUSED = ("This model does not support assistant message prefill. The conversation must end with a user "
                   "message.")                                                                     # [prefill]
CREDIT_TOO_LOW = ("Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to "
                  "upgrade or purchase credits.")                                                  # [credit]
SPEND_LIMIT = "You have reached your organization's monthly spend limit."    # 429 [spend-limit]; wording not found
OPENAI_QUOTA = ("You exceeded your current quota, please check your plan and billing details. For more information "
                "on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.")
# ^ [openai-quota]
OPENROUTER_CREDITS = "Insufficient credits. Add more using https://openrouter.ai/settings/credits"   # 402 [or-errors]
OR_NO_ENDPOINT_PARAMS = "No endpoints found that can handle the requested parameters."            # [or-404-params]
OR_ROUTING_HELP = " To learn more about provider routing, visit: https://openrouter.ai/docs/provider-routing"
OR_REASONING_MANDATORY = "Reasoning is mandatory for this endpoint and cannot be disabled."       # [or-mandatory]

# Structured outputs: the JSON-schema subset Anthropic accepts [schema-subset]. Which keywords are refused outright
# comes from the [3p] docs copy dated 2025-11-13; the string formats from the SDK's SupportedStringFormats.
ANTHROPIC_UNSUPPORTED_KEYWORDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
                                  "minLength", "maxLength", "maxItems", "minProperties", "maxProperties")
ANTHROPIC_STRING_FORMATS = frozenset({"date-time", "time", "date", "duration", "email", "hostname", "uri", "ipv4",
                                      "ipv6", "uuid"})


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
    """(canonical text, ends a cache breakpoint) for tools -> system blocks -> message blocks. The structured-output
    schema (output_config.format) is not part of the cached prefix: no source says it is."""
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
    """OpenAI caches automatically: every tool and message ends a cacheable prefix; a structured-output schema sits
    in front of the messages [openai-cache]."""
    schema = ((body.get("response_format") or {}).get("json_schema") or {}).get("schema")
    head = [{"response_format_schema": schema}] if schema is not None else []
    return [(canonical_json(part), True) for part in (body.get("tools") or []) + head + (body.get("messages") or [])]


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


def anthropic_schema_problems(schema: Any) -> list[str]:
    """Why Anthropic's structured outputs refuse `schema` [schema-subset] (empty when it is accepted)."""
    if not isinstance(schema, dict):
        return ["the schema must be a JSON object"]
    problems = []
    for path, node in _subschemas(schema):
        where = "/".join(map(str, path)) or "(root)"
        problems += [f"{where}: the '{keyword}' keyword is not supported" for keyword in ANTHROPIC_UNSUPPORTED_KEYWORDS
                     if keyword in node]
        if "minItems" in node and node["minItems"] not in (0, 1):
            problems.append(f"{where}: minItems must be 0 or 1, got {node['minItems']}")
        if "string" in _types(node) and "format" in node and node["format"] not in ANTHROPIC_STRING_FORMATS:
            problems.append(f"{where}: the string format {node['format']!r} is not supported")
        if "object" in _types(node) and node.get("additionalProperties") is not False:
            problems.append(f"{where}: objects must set 'additionalProperties' to false")
    return problems


def openai_strict_problems(schema: Any) -> list[str]:
    """Why OpenAI's strict structured outputs refuse `schema` [openai-strict] (empty when accepted): the root is an
    object, every object lists all its properties in `required` and sets additionalProperties false."""
    if not isinstance(schema, dict) or schema.get("type") != "object" or "anyOf" in schema:
        return ["In context=(), the root schema must be an object of type 'object' (not anyOf)."]
    problems = []
    for path, node in _subschemas(schema):
        context = repr(tuple(path)).replace(",)", ")")
        problems += [f"In context={context}, '{keyword}' is not permitted." for keyword in OPENAI_STRICT_UNSUPPORTED
                     if keyword in node]
        if "object" not in _types(node):
            continue
        if node.get("additionalProperties") is not False:
            problems.append(f"In context={context}, 'additionalProperties' is required to be supplied and to be false.")
        missing = [name for name in node.get("properties") or {} if name not in (node.get("required") or [])]
        if missing:
            problems.append(f"In context={context}, 'required' is required to be supplied and to be an array including "
                            f"every key in properties. Missing '{missing[0]}'.")
    return problems


def _thought_of(rng: random.Random, tokens: int) -> str:
    """A thought of exactly `tokens` tokens (count_tokens: 4 characters each)."""
    text = ""
    while len(text) < 4 * tokens:
        text += _sampler.first_person_text(rng, 3) + " "
    return text[:4 * tokens]


def _user_texts(body: dict) -> list[str]:
    """The text of every user turn of a request (Anthropic content blocks or OpenAI strings)."""
    texts = []
    for message in body.get("messages") or []:
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            texts.append(" ".join(block.get("text", "") for block in content if isinstance(block, dict))
                         if isinstance(content, list) else content if isinstance(content, str) else "")
    return texts


def _rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat().replace("+00:00", "Z")


def _date_time(day: str | None) -> str | None:
    return f"{day}T00:00:00Z" if day else None


def _duration(seconds: float) -> str:
    """OpenAI's reset format: `1s`, `6m0s`, `20ms`."""
    if seconds < 1:
        return f"{int(seconds * 1000)}ms"
    minutes, secs = divmod(int(math.ceil(seconds)), 60)
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def _pieces(text: str) -> list[str]:
    return [text[i:i + STREAM_PIECE_CHARS] for i in range(0, len(text), STREAM_PIECE_CHARS)] or [""]


def _price(value: float) -> str:
    return format(value, ".12f").rstrip("0").rstrip(".") or "0"


def claude_thinking_mode(body: dict, rules: ClaudeRules) -> tuple[str, str]:
    """("on" | "between_tools" | "off", display) for a Messages request to a model with `rules`."""
    thinking = body.get("thinking") or {}
    kind = thinking.get("type")
    if kind in ("enabled", "adaptive") or (kind is None and rules.thinking_default in ("on", "always")):
        return "on", thinking.get("display") or rules.display_default
    return ("between_tools" if kind == "between_tools" else "off"), thinking.get("display") or "summarized"


def claude_model_info(rules: ClaudeRules) -> dict:
    """The Models API object (the SDK's ModelInfo / ModelCapabilities) [models-api]. Capabilities the fake does not
    model (batch, citations, images, PDFs, server tools, context management) read as supported."""
    def flag(value: bool) -> dict:
        return {"supported": bool(value)}
    capabilities = {
        "batch": flag(True), "citations": flag(True), "code_execution": flag(True),
        "context_management": {"supported": True, "clear_thinking_20251015": flag(True),
                               "clear_tool_uses_20250919": flag(True), "compact_20260112": flag(True)},
        "effort": {"supported": bool(rules.efforts),
                   **{level: flag(level in rules.efforts) for level in EFFORT_LADDER}},
        "image_input": flag(True), "pdf_input": flag(True),
        "server_tools": {"supported": True, "code_execution": flag(True), "web_search": flag(True)},
        "structured_outputs": flag(rules.structured_outputs),
        "thinking": {"supported": True, "types": {kind: flag(kind in rules.thinking)
                                                  for kind in ("adaptive", "between_tools", "disabled", "enabled")}},
    }
    return {"type": "model", "id": rules.id, "display_name": rules.display_name,
            "created_at": _date_time(rules.created), "lifecycle": rules.lifecycle,
            "deprecated_at": _date_time(rules.deprecated_at), "retires_at": _date_time(rules.retires_at),
            "line": rules.line, "max_input_tokens": rules.context, "max_tokens": rules.max_output,
            "capabilities": capabilities}


# --------------------------------------------------------------------------- records

@dataclass
class LedgerEntry:
    api: str                     # anthropic | anthropic_batch | openai | openai_batch | openrouter | batch_control
                                 # | model_lookup
    path: str
    body: Any
    status: int
    fault: str | None
    completed: bool              # a full 200 body was written (for batches: the request succeeded)
    key: str                     # sha256 of the canonical body
    usage: dict | None           # input_tokens (uncached), output_tokens (thinking included),
                                 # cache_creation/read_input_tokens, thinking_tokens
    request_id: str = ""         # unique per entry (the provider's request id, or a message / error id)
    time: float = 0.0
    dropped: list[str] | None = None   # OpenRouter: request parameters the model ignored (silently dropped)
    cost_usd: float | None = None      # what the request was billed at its own model's list price (answered only)


def bill(api: str, body: dict, usage: dict) -> float:
    """USD billed for one answered request of `api` with `usage`, at the list price of the request's own model
    (LIST_PRICES; Anthropic aliases resolve to the dated id); cache writes at the 1-hour price where the body's
    breakpoints ask for the 1-hour TTL; batches at half price [batch-ttl]; OpenRouter: its usage.cost."""
    if api == "openrouter":
        return float(usage.get("cost") or 0.0)
    model = body.get("model", "")
    if api.startswith("anthropic") and model in CLAUDE_MODELS:
        model = CLAUDE_MODELS[model].id
    if model not in LIST_PRICES:
        return 0.0
    price_in, price_out, write_5m, write_1h, price_read = LIST_PRICES[model]
    write = write_1h if '"ttl": "1h"' in json.dumps(body) else write_5m
    usd = (usage.get("input_tokens", 0) * price_in + usage.get("output_tokens", 0) * price_out
           + usage.get("cache_creation_input_tokens", 0) * write
           + usage.get("cache_read_input_tokens", 0) * price_read) / 1e6
    return usd / 2 if api.endswith("_batch") else usd


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
    thoughts: list[str]          # the full thinking of each thinking block (billed even where not shown)
    tool_name: str | None
    tool_json: str | None        # the tool arguments as sent (cut short when truncated)
    tool_input: Any
    truncated: bool
    refused: bool = False        # stopped by a refusal [refusals-anthropic][refusals-openai]

    @property
    def thinking(self) -> str:
        return "\n\n".join(self.thoughts)

    @property
    def thinking_tokens(self) -> int:
        return sum(count_tokens(t) for t in self.thoughts)

    @property
    def output_tokens(self) -> int:
        """Thinking tokens count as output tokens [thinking]."""
        return sum(count_tokens(t) for t in self.thoughts) + count_tokens(self.text) + \
            count_tokens(self.tool_json or "")


@dataclass
class _Plan:
    """A validated paid request: which model answers it and which body it sees."""
    api: str                     # anthropic | openai | openrouter
    model: str                   # the canonical model id
    rules: Any                   # ClaudeRules | OpenAIRules | OpenRouterModel | None (a served model)
    body: dict                   # what the model sees (OpenRouter: without the dropped parameters)
    min_cache: int = 0
    dropped: list[str] | None = None

    @property
    def namespace(self) -> str:
        return f"{self.api}:{self.model}"

    def prompt_parts(self) -> list[tuple[str, bool]]:
        return anthropic_prompt_parts(self.body) if self.api == "anthropic" else openai_prompt_parts(self.body)


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
    """An HTTP error answer: status, message, extra headers, fault name; optionally the provider's error type,
    code, param and details, and whether a 429 gets a retry-after header."""

    def __init__(self, status: int, message: str, headers: dict | None = None, fault: str | None = None, *,
                 error_type: str | None = None, code: str | None = None, param: str | None = None,
                 details: dict | None = None, retry_after: bool = True):
        super().__init__(message)
        self.status, self.message, self.headers, self.fault = status, message, headers or {}, fault
        self.error_type, self.code, self.param, self.details = error_type, code, param, details
        self.retry_after = retry_after


class _Drop(Exception):
    """Close the connection without answering."""


def _openai_400(message: str, param: str | None = None, code: str | None = None) -> _Reject:
    return _Reject(400, message, error_type="invalid_request_error", param=param, code=code)


def _billing_reject(api: str, fault: str) -> _Reject:
    """The provider's out-of-money error for a billing fault (BILLING_FAULTS)."""
    if api.startswith("anthropic"):
        if fault == "spend_limit":   # [spend-limit]: 429 rate_limit_error, details.error_code, no retry-after
            return _Reject(429, SPEND_LIMIT, fault=fault, details={"error_code": "enforced_spend_limit_reached"},
                           retry_after=False)
        return _Reject(400, CREDIT_TOO_LOW, fault=fault)                  # [credit]: 400 invalid_request_error
    if api == "openrouter":
        return _Reject(402, OPENROUTER_CREDITS, fault=fault, retry_after=False)   # [or-errors]
    return _Reject(429, OPENAI_QUOTA, fault=fault, error_type="insufficient_quota", code="insufficient_quota",
                   retry_after=False)                                      # [openai-quota]


# --------------------------------------------------------------------------- server

class FakeProviderServer:
    """See the module docstring. Use as a context manager, or start()/stop()."""

    def __init__(self, seed: int = 0, latency_s: float = 0.0, fault_rate: float = 0.0,
                 fault_kinds: tuple[str, ...] = FAULT_KINDS, rpm: int | None = None, itpm: int | None = None,
                 otpm: int | None = None, batch_delay_s: float = 0.5, fault_latency_s: float = 0.5,
                 fault_retry_after_s: float = 0.2, ledger_path: str | Path | None = None,
                 host: str = "127.0.0.1", port: int = 0, served_models: tuple[str, ...] = (),
                 thinking_tokens: int | None = None):
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
        self.paid_requests_received = 0   # paid requests whose body was read (answered or still in flight)
        self._cache: set[str] = set()
        self._windows = {api: _RateWindow(rpm, itpm, otpm) for api in ("anthropic", "openai", "openrouter")}
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

    @property
    def openrouter_base_url(self) -> str:
        return self.url + "/api/v1"

    def env(self) -> dict[str, str]:
        """Base URLs and dummy keys for a subprocess that should talk to this server."""
        return {"ANTHROPIC_BASE_URL": self.url, "OPENAI_BASE_URL": self.openai_base_url,
                "OPENROUTER_BASE_URL": self.openrouter_base_url, "ANTHROPIC_API_KEY": "fake-anthropic-key",
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
        """fn(api, body) -> None (default answer) or a dict scripting this answer: `tool_input` (the forced tool's
        input, or the JSON of a structured-output answer), `text`,
        `thinking` (a text, or a list: one per thinking block), `stop_reason` ("max_tokens"), `status` (an HTTP
        error), `fault` (one of FAULT_KINDS, BILLING_FAULTS or REFUSAL). `api` is anthropic, anthropic_batch, openai,
        openai_batch or openrouter. A request the model rules refuse never reaches the script."""
        self._script = fn

    def serve_models(self, *model_ids: str) -> None:
        """Answer these ids on /v1/chat/completions like a self-hosted OpenAI-compatible server (vLLM): no OpenAI
        model rules, any extra arguments (top_k, chat_template_kwargs) accepted."""
        self.served_models = self.served_models | frozenset(model_ids)

    def refuse(self, pattern: str | None) -> None:
        """Refuse (a 200 refusal answer, see `REFUSAL`) every paid request, plain or in a batch, whose user text
        matches the regex `pattern`; None: only Anthropic's test string [refusals-anthropic] is refused."""
        self.refusal_pattern = re.compile(pattern) if pattern else None

    def set_faults(self, rate: float, kinds: tuple[str, ...] | list[str] | None = None) -> None:
        kinds = tuple(kinds) if kinds is not None else FAULT_KINDS
        unknown = [kind for kind in kinds if kind not in FAULT_KINDS + BILLING_FAULTS + ("503", REFUSAL)]
        if unknown or not 0.0 <= rate <= 1.0:
            raise ValueError(f"fault rate must be in [0, 1] and kinds in {FAULT_KINDS + BILLING_FAULTS}; "
                             f"got {rate}, {unknown}")
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
        return sum(entry.cost_usd or 0.0 for entry in (self.paid if entries is None else entries)
                   if entry.completed)

    def thought_tokens(self, effort: str | None, default_effort: str | None, budget: int | None = None) -> int | None:
        """Tokens one call thinks at `effort` [thinking-amount]: `thinking_tokens` at the default effort, doubled per
        step above it, halved per step below; with a budget (budget thinking) at most the budget."""
        if self.thinking_tokens is None:
            return None
        ladder = ("minimal",) + EFFORT_LADDER
        level, default = effort or default_effort or "high", default_effort or "high"
        steps = (ladder.index(level) if level in ladder else 0) - (ladder.index(default) if default in ladder else 0)
        tokens = int(self.thinking_tokens * 2.0 ** steps)
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
        """The request matches the refusal pattern (`refuse`), or is Anthropic's refusal test prompt."""
        text = "\n".join(_user_texts(body))
        return bool(self.refusal_pattern and self.refusal_pattern.search(text)) or \
            (api.startswith("anthropic") and ANTHROPIC_REFUSAL_TRIGGER in text)

    @staticmethod
    def _fault_status(api: str, fault: str) -> int:
        if api.startswith("anthropic") or fault in ("429", "500"):
            return int(fault)
        return 502 if api == "openrouter" and fault == "529" else 503     # OpenRouter: 502 "model is down" [or-errors]

    def _cache_usage(self, namespace: str, parts: list[tuple[str, bool]],
                     min_tokens: int = 0) -> tuple[int, int, int, list[str]]:
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
                max_tokens: int | None, scripted: dict, fault: str | None, json_schema: Any = None,
                several_thoughts: bool = False, thought_tokens: int | None = None) -> _Answer:
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
                thoughts = [_sampler.first_person_text(rng, 2)
                            for _ in range(rng.choice((1, 2)) if several_thoughts else 1)]
        if max_tokens is not None and sum(count_tokens(t) for t in thoughts) > max_tokens:
            room = max_tokens * 4                      # the thinking is cut where max_tokens ends it
            thoughts = [t[:max(0, room - sum(map(len, thoughts[:i])))] for i, t in enumerate(thoughts)]
        # A cooperative model: as many items as the prompt asks for (the schema a client sends may carry
        # no array bounds: structured outputs refuse them, https://platform.claude.com/docs/en/build-with-claude/structured-outputs).
        count = _sampler.requested_count(_user_texts(body))
        if fault == REFUSAL:
            # The classifier stops the answer after a few characters of text (within max_tokens, after the
            # thinking); no tool call, no JSON [refusals-anthropic]
            room = REFUSED_PREFIX_CHARS if max_tokens is None else \
                min(REFUSED_PREFIX_CHARS, max(0, max_tokens * 4 - sum(map(len, thoughts))))
            return _Answer(_sampler.first_person_text(rng, 1)[:room], thoughts, None, None, None, False, refused=True)
        if forced_tool:
            tool_input = scripted["tool_input"] if "tool_input" in scripted else \
                _sampler.sample_from_schema(schema, rng, count)
            if fault == "malformed_tool":
                tool_input = break_tool_input(tool_input, schema, rng)
            answer = _Answer("", thoughts, tool_name, json.dumps(tool_input, ensure_ascii=False), tool_input, False)
        elif json_schema is not None and "text" not in scripted:
            # A scripted `tool_input` is the structured answer too, so a test's script works in either mode.
            value = scripted["tool_input"] if "tool_input" in scripted else \
                _sampler.sample_from_schema(json_schema, rng, count)
            if fault == "malformed_tool":
                value = break_tool_input(value, json_schema, rng)
            answer = _Answer(json.dumps(value, ensure_ascii=False), thoughts, None, None, None, False)
        else:
            answer = _Answer(scripted.get("text", _sampler.first_person_text(rng, 3)), thoughts, None, None, None,
                             False)
        too_long = max_tokens is not None and answer.output_tokens > max_tokens
        if fault == "truncated_tool" or scripted.get("stop_reason") == "max_tokens" or too_long:
            keep = max(0, (max_tokens or 0) * 4 - sum(map(len, thoughts))) if too_long else None
            answer.truncated = True
            if forced_tool:
                answer.tool_json = answer.tool_json[: keep if keep is not None else len(answer.tool_json) // 2]
                answer.tool_input = jiter.from_json(answer.tool_json.encode(), partial_mode=True) \
                    if answer.tool_json else {}
            else:
                answer.text = answer.text[: keep if keep is not None else len(answer.text) // 2]
        return answer

    def validate(self, api: str, body: Any) -> _Plan:
        """Check a paid request against the model rules; the plan to answer it, or a _Reject."""
        if api.startswith("anthropic"):
            rules = self.validate_anthropic(body)
            return _Plan("anthropic", rules.id, rules, body, rules.min_cache)
        if api == "openrouter":
            return self.validate_openrouter(body)
        rules = self.validate_openai(body)
        return _Plan("openai", body["model"], rules, body, OPENAI_MIN_CACHE if rules is not None else 0)

    # ---------------------------------------------------------------- Anthropic
    def anthropic_message(self, body: dict, api: str, fault: str | None, scripted: dict,
                          cache: tuple[int, int, int, list[str]],
                          rules: ClaudeRules | None = None) -> tuple[dict, dict, str | None]:
        """(Message JSON, ledger usage, tool arguments as streamed) for a validated Messages request."""
        rules = rules or CLAUDE_MODELS[body["model"]]
        tools = {tool["name"]: tool for tool in body.get("tools") or []}
        choice = body.get("tool_choice") or {}
        choice_type = choice.get("type", "auto")
        json_format = (body.get("output_config") or {}).get("format")
        json_schema = json_format.get("schema") if isinstance(json_format, dict) else None
        # A cooperative model: with `auto` and a single tool on offer it calls that tool, unless a test scripts
        # a text answer or the request asks for structured output.
        auto_tool = choice_type == "auto" and len(tools) == 1 and "text" not in scripted and json_schema is None
        tool_name = choice.get("name") if choice_type == "tool" else \
            next(iter(tools), None) if choice_type == "any" or auto_tool else None
        mode, display = claude_thinking_mode(body, rules)
        thinking = body.get("thinking") or {}
        thought_tokens = self.thought_tokens((body.get("output_config") or {}).get("effort"), rules.default_effort,
                                             thinking.get("budget_tokens") if thinking.get("type") == "enabled"
                                             else None)
        answer = self._answer(body, tools[tool_name]["input_schema"] if tool_name else None, tool_name, mode == "on",
                              body.get("max_tokens"), scripted, fault, json_schema,
                              several_thoughts=rules.thinking_default != "off" and thought_tokens is None,
                              thought_tokens=thought_tokens)
        content = []
        for index, thought in enumerate(answer.thoughts):
            # "omitted": the block comes back with an empty `thinking` text [opus-5-5-new]; "summarized": with text.
            shown = thought if display != "omitted" else ""
            if shown and index == 0 and json_schema is not None and not answer.tool_name and \
                    "thinking" not in scripted:
                shown = self._json_draft(body, json_schema)   # a first block that parses as JSON, but is not the answer
            content.append({"type": "thinking", "thinking": shown,
                            "signature": hashlib.sha256(thought.encode()).hexdigest()})
        if mode == "between_tools" and answer.tool_name:
            # between_tools: up-front thinking off; a short progress update before a tool call still comes back
            # as a thinking block, with its summary text [sonnet-5-5-new].
            update = f"I will call {answer.tool_name} now."
            content.append({"type": "thinking", "thinking": update, "signature": hashlib.sha256(
                update.encode()).hexdigest()})
            answer.thoughts.append(update)
        if answer.tool_name:
            content.append({"type": "tool_use", "id": f"toolu_{uuid.uuid4().hex[:24]}", "name": answer.tool_name,
                            "input": answer.tool_input})
        else:
            content.append({"type": "text", "text": answer.text})
        uncached, creation, read, _ = cache
        usage = {"input_tokens": uncached, "output_tokens": answer.output_tokens,
                 "cache_creation_input_tokens": creation, "cache_read_input_tokens": read}
        stop_reason = "refusal" if answer.refused else "max_tokens" if answer.truncated else \
            "tool_use" if answer.tool_name else "end_turn"
        message = {"id": f"msg_{uuid.uuid4().hex[:24]}", "type": "message", "role": "assistant",
                   "model": body["model"], "content": content, "stop_reason": stop_reason, "stop_sequence": None,
                   "usage": {**usage, "service_tier": "batch" if api == "anthropic_batch" else "standard"}}
        if answer.refused:         # billed up to the refusal, with its stop_details [refusals-anthropic]
            message["stop_details"] = dict(REFUSAL_STOP_DETAILS)
        return message, {**usage, "thinking_tokens": answer.thinking_tokens}, answer.tool_json

    def _json_draft(self, body: dict, schema: Any) -> str:
        """A JSON text the model 'drafted' while thinking: valid JSON, invalid under `schema`."""
        prompt = {name: value for name, value in body.items() if name not in ("stream", "stream_options")}
        rng = random.Random(f"{self.seed}:{request_key(prompt)}:draft")
        draft = _sampler.sample_from_schema(schema, rng)
        if isinstance(draft, dict) and isinstance(schema, dict) and schema.get("properties"):
            draft = break_tool_input(draft, schema, rng)
        else:
            draft = {"draft": draft}
        return json.dumps(draft, ensure_ascii=False)

    def validate_anthropic(self, body: Any) -> ClaudeRules:
        """The rules of the requested model, or a _Reject for what that model refuses."""
        if not isinstance(body, dict):
            raise _Reject(400, "request body must be a JSON object")
        for name, kind in (("model", str), ("max_tokens", int), ("messages", list)):
            if not isinstance(body.get(name), kind):
                raise _Reject(400, f"{name}: field required ({kind.__name__})")
        rules = CLAUDE_MODELS.get(body["model"])
        if rules is None or rules.lifecycle == "retired":          # [retired-probe][not-found-text]
            raise _claude_not_found(body["model"])
        if rules.max_output is not None and body["max_tokens"] > rules.max_output:
            # Wording as the API words it (not in the research notes).
            raise _Reject(400, f"max_tokens: {body['max_tokens']} > {rules.max_output}, which is the maximum allowed "
                               f"number of output tokens for {rules.id}")
        breakpoints = sum(ends for _, ends in anthropic_prompt_parts(body))
        if breakpoints > MAX_CACHE_BREAKPOINTS:
            raise _Reject(400, f"A maximum of {MAX_CACHE_BREAKPOINTS} blocks with cache_control may be provided. "
                               f"Found {breakpoints}.")
        tools = body.get("tools") or []
        if not all(isinstance(tool, dict) and "name" in tool and "input_schema" in tool for tool in tools):
            raise _Reject(400, "tools: every tool needs a name and an input_schema")
        choice = body.get("tool_choice") or {}
        if choice.get("type") == "tool" and choice.get("name") not in {tool["name"] for tool in tools}:
            raise _Reject(400, f"tool_choice names an unknown tool {choice.get('name')!r}")
        self._check_claude_thinking(body, rules)
        self._check_claude_sampling(body, rules)
        if choice.get("type") in ("any", "tool"):
            if not rules.forced_tool:
                # [opus-5-5-new][sonnet-5-5-new]: "Forced tool use returns an error."; wording not found.
                raise _Reject(400, f'tool_choice.type "{choice["type"]}" (forced tool use) is not supported for this '
                                   'model. Use tool_choice "auto" or "none".')
            if claude_thinking_mode(body, rules)[0] == "on" and rules.thinking_default != "always":
                # [forced-thinking]; thinking that is on by default counts (CHOICE: docs silent on default-on models).
                # Always-on Fable 5 accepts forced tools: Fable 5.1 lists refusing them as a change [fable-5-1].
                raise _Reject(400, FORCED_THINKING)
        messages = body["messages"]
        if messages and isinstance(messages[-1], dict) and messages[-1].get("role") == "assistant" \
                and not rules.prefill:
            raise _Reject(400, PREFILL_REFUSED)                    # [prefill]
        self._check_claude_schemas(body, rules)
        prompt_tokens = sum(count_tokens(text) for text, _ in anthropic_prompt_parts(body))
        if rules.context is not None and prompt_tokens > rules.context:
            raise _Reject(400, f"prompt is too long: {prompt_tokens} tokens > {rules.context} maximum")
        return rules

    @staticmethod
    def _check_claude_thinking(body: dict, rules: ClaudeRules) -> None:
        thinking = body.get("thinking")
        kind = thinking.get("type") if isinstance(thinking, dict) else None
        if thinking is not None and kind not in ("enabled", "adaptive", "disabled", "between_tools"):
            raise _Reject(400, "thinking.type: Input should be 'enabled', 'disabled', 'adaptive' or 'between_tools'")
        if kind is not None and kind not in rules.thinking:
            if kind == "enabled":
                raise _Reject(400, ENABLED_REFUSED)               # [enabled-400-text][extended-thinking]
            if kind == "disabled" and rules.disabled_message:
                raise _Reject(400, rules.disabled_message)        # [opus-5-5-new][sonnet-5-5-new]
            raise _Reject(400, f'"thinking.type.{kind}" is not supported for this model.')   # wording not found
        if kind == "enabled":                                      # [budget-limits]
            budget = thinking.get("budget_tokens")
            if not isinstance(budget, int) or budget < 1024:
                raise _Reject(400, "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024")
            if budget >= body["max_tokens"]:
                raise _Reject(400, "`max_tokens` must be greater than `thinking.budget_tokens`.")
        output_config = body.get("output_config") or {}
        effort = output_config.get("effort")
        if effort is not None:
            if not rules.efforts:                                  # [effort-none]; wording not found
                raise _Reject(400, "output_config.effort: this model does not support the effort parameter.")
            if effort not in rules.efforts:                        # [effort][effort-none]; wording not found
                raise _Reject(400, f"output_config.effort: {effort!r} is not supported for this model; use one of "
                                   f"{', '.join(rules.efforts)}.")
        level = effort or rules.default_effort
        rank = EFFORT_LADDER.index(level) if level in EFFORT_LADDER else 0
        if kind == "between_tools" and rank > EFFORT_LADDER.index("high"):
            # [sonnet-5-5-new]: between_tools at low, medium or high only; 400 at xhigh or max. Wording not found.
            raise _Reject(400, f'"thinking.type.between_tools" is not supported at effort {level!r}. Use effort low, '
                               'medium or high, or adaptive thinking.')
        if kind == "disabled" and rules.disabled_max_effort and rank > EFFORT_LADDER.index(rules.disabled_max_effort):
            # [opus-5]; [haiku-5-5-3p]. Wording not found.
            raise _Reject(400, f'"thinking.type.disabled" is not supported at effort {level!r}. Use effort '
                               f'{rules.disabled_max_effort} or lower, or adaptive thinking.')

    @staticmethod
    def _check_claude_sampling(body: dict, rules: ClaudeRules) -> None:
        if rules.sampling == "default_only":
            # "Non-default" values are refused [sonnet-5][sampling-3p]: temperature and top_p equal to their default
            # (1.0; top_p 1.0 is a no-op) pass; top_k has no default value, so any top_k is refused.
            for name in ("temperature", "top_p", "top_k"):
                if name in body and body[name] is not None and (name == "top_k" or body[name] != 1):
                    raise _Reject(400, f"`{name}` is deprecated for this model.")    # [sampling-3p] wording
        elif rules.sampling == "one_of" and body.get("temperature") is not None and body.get("top_p") is not None:
            # [haiku-4-5] migration guide; wording not in the research notes.
            raise _Reject(400, "`temperature` and `top_p` cannot both be specified for this model. Please use only "
                               "one.")

    @staticmethod
    def _check_claude_schemas(body: dict, rules: ClaudeRules) -> None:
        json_format = (body.get("output_config") or {}).get("format")
        strict_tools = [tool for tool in body.get("tools") or [] if tool.get("strict")]
        if json_format is None and not strict_tools:
            return
        if not rules.structured_outputs:
            raise _Reject(400, "output_config.format: structured outputs are not supported for this model.")
        if json_format is not None:
            if not isinstance(json_format, dict) or json_format.get("type") != "json_schema" or \
                    "schema" not in json_format:
                raise _Reject(400, "output_config.format: expected {\"type\": \"json_schema\", \"schema\": {...}}")
            problems = anthropic_schema_problems(json_format["schema"])
            if problems:   # [schema-subset]; wording not found
                raise _Reject(400, "output_config.format.schema: " + "; ".join(problems))
        for tool in strict_tools:          # strict tool use takes the same subset [structured][schema-subset]
            problems = anthropic_schema_problems(tool["input_schema"])
            if problems:
                raise _Reject(400, f"tools.{tool['name']}.input_schema: " + "; ".join(problems))

    def anthropic_model(self, model_id: str) -> dict:
        """GET /v1/models/{id}: aliases resolve to the dated id; unknown and retired ids are 404 [retired-probe]."""
        rules = CLAUDE_MODELS.get(model_id)
        if rules is None or rules.lifecycle == "retired":
            raise _claude_not_found(model_id)
        return claude_model_info(rules)

    def anthropic_models(self, query: dict[str, list[str]]) -> dict:
        """GET /v1/models: newest first; active and deprecated unless `lifecycle` asks for others [models-api]."""
        wanted = {value for key in ("lifecycle", "lifecycle[]") for raw in query.get(key, [])
                  for value in raw.split(",")} or {"active", "deprecated"}
        data = [claude_model_info(rules) for rules in sorted(_CLAUDE_RULES, key=lambda r: (r.created, r.id),
                                                              reverse=True) if rules.lifecycle in wanted]
        ids = [model["id"] for model in data]
        if query.get("after_id"):
            data = data[ids.index(query["after_id"][0]) + 1:] if query["after_id"][0] in ids else []
        elif query.get("before_id"):
            data = data[:ids.index(query["before_id"][0])] if query["before_id"][0] in ids else []
        limit = int((query.get("limit") or ["20"])[0])
        page = data[:limit]
        return {"data": page, "has_more": len(data) > limit, "first_id": page[0]["id"] if page else None,
                "last_id": page[-1]["id"] if page else None}

    # ---------------------------------------------------------------- OpenAI
    def validate_openai(self, body: Any) -> OpenAIRules | None:
        """The rules of the requested OpenAI model (None: a served model), or a _Reject."""
        if not isinstance(body, dict) or not isinstance(body.get("model"), str) or not body.get("messages"):
            raise _openai_400("model and a non-empty messages list are required")
        served = body["model"] in self.served_models
        if not served:
            unknown = sorted(name for name in body if name not in OPENAI_CHAT_ARGUMENTS)
            if unknown:                                             # [openai-unknown-arg]
                raise _openai_400(f"Unrecognized request argument supplied: {unknown[0]}")
        rules = None if served else OPENAI_MODELS.get(body["model"])
        if rules is None and not served:                            # [openai-404]
            raise _Reject(404, f"The model `{body['model']}` does not exist or you do not have access to it.",
                          error_type="invalid_request_error", code="model_not_found")
        if rules is not None and not rules.chat_completions:        # [gpt-5-5]; wording not found
            raise _openai_400(f"The model `{rules.id}` is only supported in v1/responses and not in "
                              "v1/chat/completions.", "model", "unsupported_model")
        if rules is not None and rules.reasoning:
            if body.get("max_tokens") is not None:                  # [openai-max-tokens]
                raise _openai_400("Unsupported parameter: 'max_tokens' is not supported with this model. Use "
                                  "'max_completion_tokens' instead.", "max_tokens", "unsupported_parameter")
            for name in ("temperature", "top_p"):                   # [openai-temperature]
                if body.get(name) is not None and body[name] != 1:
                    raise _openai_400(f"Unsupported value: '{name}' does not support {body[name]} with this model. "
                                      "Only the default (1) value is supported.", name, "unsupported_value")
            effort = body.get("reasoning_effort")
            if effort is not None and effort not in rules.efforts:   # [openai-reasoning]; wording as for temperature
                raise _openai_400(f"Unsupported value: 'reasoning_effort' does not support {effort!r} with this "
                                  f"model. Supported values are: {', '.join(map(repr, rules.efforts))}.",
                                  "reasoning_effort", "unsupported_value")
        elif rules is not None and body.get("reasoning_effort") is not None:    # [openai-reasoning]
            raise _openai_400("Unsupported parameter: 'reasoning_effort' is not supported with this model.",
                              "reasoning_effort", "unsupported_parameter")
        self._check_openai_tools(body)
        response_format = body.get("response_format")
        if isinstance(response_format, dict) and response_format.get("type") == "json_schema":
            spec = response_format.get("json_schema") or {}
            if not isinstance(spec.get("schema"), dict) or not spec.get("name"):
                raise _openai_400("response_format.json_schema needs a name and a schema", "response_format")
            problems = openai_strict_problems(spec["schema"]) if spec.get("strict") and not served else []
            if problems:                                            # [openai-strict]
                raise _openai_400(f"Invalid schema for response_format '{spec['name']}': {problems[0]}",
                                  "response_format")
        return rules

    @staticmethod
    def _check_openai_tools(body: dict) -> None:
        tools = body.get("tools") or []
        if not all(isinstance(tool, dict) and "name" in (tool.get("function") or {}) for tool in tools):
            raise _openai_400("tools: every tool needs type 'function' and a function name", "tools")
        choice = body.get("tool_choice")
        if isinstance(choice, dict) and (choice.get("function") or {}).get("name") not in \
                {tool["function"]["name"] for tool in tools}:
            raise _openai_400(f"tool_choice names an unknown function {choice!r}", "tool_choice")

    def openai_completion(self, plan_or_body: _Plan | dict, fault: str | None, scripted: dict,
                          cache: tuple[int, int, int, list[str]]) -> tuple[dict, dict]:
        """(Chat Completion JSON, ledger usage) for a validated OpenAI or OpenRouter request."""
        plan = plan_or_body if isinstance(plan_or_body, _Plan) else \
            _Plan("openai", plan_or_body["model"], OPENAI_MODELS.get(plan_or_body["model"]), plan_or_body)
        body, rules = plan.body, plan.rules
        tools = {t["function"]["name"]: t["function"] for t in body.get("tools") or [] if "function" in t}
        choice = body.get("tool_choice")
        tool_name = choice["function"]["name"] if isinstance(choice, dict) else \
            next(iter(tools), None) if choice == "required" else None
        thinking, shown = self._openai_reasoning(plan)
        response_format = body.get("response_format") or {}
        json_schema = (response_format.get("json_schema") or {}).get("schema") \
            if response_format.get("type") == "json_schema" else \
            {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"],
             "additionalProperties": False} if response_format.get("type") == "json_object" else None
        max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
        reasoning = body.get("reasoning") if isinstance(body.get("reasoning"), dict) else {}
        thought_tokens = self.thought_tokens(body.get("reasoning_effort") or reasoning.get("effort"),
                                             getattr(rules, "default_effort", "medium"), reasoning.get("max_tokens"))
        answer = self._answer(body, tools[tool_name].get("parameters", {}) if tool_name else None, tool_name,
                              thinking, max_tokens, scripted, fault, json_schema, thought_tokens=thought_tokens)
        if answer.refused:         # `refusal` set, content null, no tool call [refusals-openai]
            answer.text = OPENAI_REFUSAL_TEXT
        message: dict[str, Any] = {"role": "assistant",
                                   "content": None if answer.tool_name or answer.refused else answer.text,
                                   "refusal": answer.text if answer.refused else None}
        if answer.tool_name:
            message["tool_calls"] = [{"id": f"call_{uuid.uuid4().hex[:24]}", "type": "function",
                                      "function": {"name": answer.tool_name, "arguments": answer.tool_json}}]
        if answer.thoughts and shown:
            message["reasoning"] = message["reasoning_content"] = answer.thinking
        # OpenAI quirk kept on purpose: a tool forced by name finishes with "stop", not "tool_calls".
        finish = "length" if answer.truncated else "stop" if isinstance(choice, dict) or not answer.tool_name \
            else "tool_calls"
        uncached, creation, read, _ = cache
        prompt_tokens = uncached + creation + read
        completion_usage: dict[str, Any] = {
            "prompt_tokens": prompt_tokens, "completion_tokens": answer.output_tokens,
            "total_tokens": prompt_tokens + answer.output_tokens, "prompt_tokens_details": {"cached_tokens": read},
            "completion_tokens_details": {"reasoning_tokens": sum(count_tokens(t) for t in answer.thoughts)}}
        if plan.api == "openrouter":      # usage.cost on every response [or-usage]
            cost = (prompt_tokens - read) * rules.prompt_price + read * rules.cache_read_price + \
                answer.output_tokens * rules.completion_price
            completion_usage.update(cost=round(cost, 12), is_byok=False,
                                    cost_details={"upstream_inference_cost": None})
            completion_usage["prompt_tokens_details"]["cache_write_tokens"] = 0
        completion = {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion",
                      "created": int(time.time()), "model": body["model"],
                      "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
                      "usage": completion_usage}
        usage = {"input_tokens": uncached + creation, "output_tokens": answer.output_tokens,
                 "cache_creation_input_tokens": 0, "cache_read_input_tokens": read,
                 "thinking_tokens": answer.thinking_tokens}
        if plan.api == "openrouter":
            usage["cost"] = completion_usage["cost"]
        return completion, usage

    @staticmethod
    def _openai_reasoning(plan: _Plan) -> tuple[bool, bool]:
        """(the model reasons, its reasoning text is returned)."""
        body, rules = plan.body, plan.rules
        if plan.api == "openai" and rules is not None:
            # Reasoning models always reason (unless effort "none") and return only reasoning_tokens [openai-reasoning].
            return rules.reasoning and body.get("reasoning_effort") != "none", False
        reasoning = body.get("reasoning") if isinstance(body.get("reasoning"), dict) else {}
        if plan.api == "openai":            # a served model: reasoning text when asked for
            thinks = bool(body.get("include_reasoning") or body.get("reasoning_effort")
                          or (reasoning and reasoning.get("enabled", True) and not reasoning.get("exclude")))
            return thinks, thinks
        if "reasoning" not in rules.supported_parameters:
            return False, False
        off = reasoning.get("enabled") is False or reasoning.get("effort") == "none"
        asked = bool(reasoning) or bool(body.get("include_reasoning"))
        thinks = rules.reasoning_mandatory or (not off and (asked or rules.reasoning_default))
        shown = thinks and not reasoning.get("exclude") and body.get("include_reasoning") is not False
        return thinks, shown                                          # [or-reasoning]

    def openai_model(self, model_id: str) -> dict:
        if model_id not in OPENAI_MODELS and model_id not in self.served_models:    # [openai-404]
            raise _Reject(404, f"The model `{model_id}` does not exist or you do not have access to it.",
                          error_type="invalid_request_error", code="model_not_found")
        rules = OPENAI_MODELS.get(model_id)
        return {"id": model_id, "object": "model", "created": rules.created if rules else 0,
                "owned_by": "openai" if rules else "vllm"}

    def openai_models(self) -> dict:
        return {"object": "list", "data": [self.openai_model(model_id)
                                           for model_id in list(OPENAI_MODELS) + sorted(self.served_models)]}

    # ---------------------------------------------------------------- OpenRouter
    def validate_openrouter(self, body: Any) -> _Plan:
        """Route an OpenRouter request: refuse what no endpoint serves, drop what the model ignores."""
        if not isinstance(body, dict) or not isinstance(body.get("model"), str) or not body.get("messages"):
            raise _Reject(400, "model and a non-empty messages list are required")
        model = OPENROUTER_MODELS.get(body["model"])
        if model is None:
            raise _Reject(400, f"{body['model']} is not a valid model ID")            # [or-invalid-model]
        reasoning = body.get("reasoning") if isinstance(body.get("reasoning"), dict) else {}
        if model.reasoning_mandatory and (reasoning.get("enabled") is False or reasoning.get("effort") == "none"):
            raise _Reject(400, OR_REASONING_MANDATORY)                                 # [or-mandatory]
        supported = set(model.supported_parameters) | ({"max_completion_tokens"} if "max_tokens" in
                                                       model.supported_parameters else set())
        if body.get("tools") and "tools" not in supported:
            raise _Reject(404, "No endpoints found that support tool use." + OR_ROUTING_HELP)   # [or-404-tools]
        choice = body.get("tool_choice")
        if body.get("tools") and (choice == "required" or isinstance(choice, dict)) and not model.forced_tool_choice:
            raise _Reject(404, "No endpoints found that support the provided 'tool_choice' value." + OR_ROUTING_HELP)
        self._check_openai_tools(body)
        dropped = sorted(name for name in body if name not in OPENROUTER_ENVELOPE and name not in supported)
        if dropped and (body.get("provider") or {}).get("require_parameters"):
            raise _Reject(404, OR_NO_ENDPOINT_PARAMS)                                   # [or-404-params][or-routing]
        effective = {name: value for name, value in body.items() if name not in dropped}   # [or-ignored]
        return _Plan("openrouter", model.id, model, effective, 0, dropped)

    def openrouter_models(self, query: dict[str, list[str]]) -> dict:
        """GET /api/v1/models [or-models], with the `supported_parameters` filter."""
        wanted = {value for raw in query.get("supported_parameters", []) for value in raw.split(",") if value}
        return {"data": [{
            "id": model.id, "canonical_slug": model.id, "name": model.name, "created": 0, "description": "",
            "context_length": model.context_length,
            "architecture": {"modality": "text->text", "input_modalities": ["text"], "output_modalities": ["text"],
                             "tokenizer": "Other", "instruct_type": None},
            "pricing": {"prompt": _price(model.prompt_price), "completion": _price(model.completion_price),
                        "request": "0", "image": "0", "input_cache_read": _price(model.cache_read_price)},
            "top_provider": {"context_length": model.context_length, "max_completion_tokens": None,
                             "is_moderated": False},
            "per_request_limits": None, "supported_parameters": list(model.supported_parameters),
            "reasoning": {"mandatory": model.reasoning_mandatory, "default_enabled": model.reasoning_default}}
            for model in OPENROUTER_MODELS.values() if wanted <= set(model.supported_parameters)]}

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
                plan = self.validate("anthropic_batch", params)
                scripted = (self._script and self._script("anthropic_batch", params)) or {}
                fault = self._draw_fault(scripted, "anthropic_batch", params)
                if fault in BILLING_FAULTS:
                    raise _billing_reject("anthropic_batch", fault)
                if "status" in scripted or fault in ("429", "529", "500", "503", "drop"):
                    status = scripted.get("status") or {"drop": 500, "503": 500}.get(fault) or int(fault)
                    raise _Reject(status, ERROR_MESSAGES.get(status, "error"), fault=fault)
                cache = self._cache_usage(plan.namespace, plan.prompt_parts(), plan.min_cache)
                message, usage, _ = self.anthropic_message(params, "anthropic_batch", fault, scripted, cache,
                                                           plan.rules)
                self._remember(cache[3])
                results.append({"custom_id": item["custom_id"], "result": {"type": "succeeded", "message": message}})
                self._record(LedgerEntry("anthropic_batch", path, params, 200, fault, True, request_key(params), usage,
                                         message["id"], time.time()))
            except Exception as raised:
                reject = raised if isinstance(raised, _Reject) else _internal_error(raised)
                error = _error_body("anthropic", reject, None)
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
            plan = self.validate("openai_batch", body)
            scripted = (self._script and self._script("openai_batch", body)) or {}
            fault = self._draw_fault(scripted, "openai_batch", body)
            if fault in BILLING_FAULTS:
                raise _billing_reject("openai_batch", fault)
            if "status" in scripted or fault in ("429", "529", "500", "503", "drop"):
                status = scripted.get("status") or {"drop": 500, "529": 503}.get(fault) or int(fault)
                raise _Reject(status, ERROR_MESSAGES.get(status, "error"), fault=fault)
            cache = self._cache_usage(plan.namespace, plan.prompt_parts(), plan.min_cache)
            completion, usage = self.openai_completion(plan, fault, scripted, cache)
            self._remember(cache[3])
            self._record(LedgerEntry("openai_batch", path, body, 200, fault, True, request_key(body), usage,
                                     request_id, time.time()))
            return True, {"status_code": 200, "request_id": request_id, "body": completion}
        except Exception as raised:
            reject = raised if isinstance(raised, _Reject) else _internal_error(raised)
            self._record(LedgerEntry("openai_batch", path, body, reject.status, reject.fault, False, request_key(body),
                                     None, request_id, time.time()))
            return False, {"status_code": reject.status, "request_id": request_id,
                           "body": _error_body("openai", reject, None)}

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


def _error_body(api: str, reject: _Reject, request_id: str | None) -> dict:
    """The provider's error JSON for `reject` (api: anthropic*, openai*, openrouter)."""
    if api.startswith("anthropic"):
        error = {"type": reject.error_type or ANTHROPIC_ERROR_TYPES.get(reject.status, "api_error"),
                 "message": reject.message}
        if reject.details:
            error["details"] = reject.details
        return {"type": "error", "error": error, "request_id": request_id}      # [anthropic-errors]
    if api == "openrouter":
        return {"error": {"code": reject.status, "message": reject.message}}   # [or-errors]
    return {"error": {"message": reject.message,
                      "type": reject.error_type or OPENAI_ERROR_TYPES.get(reject.status, "server_error"),
                      "param": reject.param,
                      "code": reject.code or ("rate_limit_exceeded" if reject.status == 429 else None)}}


def _anthropic_stream(message: dict, tool_json: str | None) -> list[bytes]:
    """The SSE events of one Messages answer, in the order the real API sends them."""
    start = {**message, "content": [], "stop_reason": None,
             "usage": {**message["usage"], "output_tokens": 1}}
    events = [("message_start", {"type": "message_start", "message": start}), ("ping", {"type": "ping"})]
    for index, block in enumerate(message["content"]):
        if block["type"] == "thinking":
            empty = {"type": "thinking", "thinking": "", "signature": ""}
            deltas = [{"type": "thinking_delta", "thinking": p} for p in _pieces(block["thinking"])
                      if block["thinking"]] + [{"type": "signature_delta", "signature": block["signature"]}]
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
    delta = {"stop_reason": message["stop_reason"], "stop_sequence": None}
    if message.get("stop_details"):          # arrives on message_delta with the stop_reason [refusals-anthropic]
        delta["stop_details"] = message["stop_details"]
    events.append(("message_delta", {"type": "message_delta", "delta": delta,
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
    if message.get("refusal"):               # delta.refusal [refusals-openai]
        chunks += [chunk({"refusal": p}) for p in _pieces(message["refusal"])]
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
        path = urlsplit(self.path).path.rstrip("/")
        fake = self.server.fake
        if path == "/v1/messages":
            self._paid("anthropic", path)
        elif path == "/v1/chat/completions":
            self._paid("openai", path)
        elif path == "/api/v1/chat/completions":
            self._paid("openrouter", path)
        elif path == "/v1/messages/batches":
            self._control(path, lambda body: fake.create_batch(body))
        elif path.startswith("/v1/messages/batches/") and path.endswith("/cancel"):
            self._control(path, lambda body: fake.cancel_batch(path.split("/")[4]))
        elif path == "/v1/files":
            self._control(path, lambda body: fake.upload_file(body), "openai")
        elif path == "/v1/batches":
            self._control(path, lambda body: fake.create_openai_batch(body), "openai")
        elif path.startswith("/v1/batches/") and path.endswith("/cancel") and len(path.split("/")) == 5:
            self._control(path, lambda body: fake.cancel_openai_batch(path.split("/")[3]), "openai")
        else:
            self._control(path, None, "openrouter" if path.startswith("/api/") else "anthropic")

    def do_GET(self) -> None:
        split = urlsplit(self.path)
        path, query = split.path.rstrip("/"), parse_qs(split.query)
        fake = self.server.fake
        parts = path.split("/")
        # /v1/models is both Anthropic's and OpenAI's: the Anthropic SDK always sends anthropic-version.
        models_api = "anthropic" if self.headers.get("anthropic-version") else "openai"
        if path == "/v1/models":
            self._control(path, lambda body: fake.anthropic_models(query) if models_api == "anthropic"
                          else fake.openai_models(), models_api, "model_lookup")
        elif len(parts) == 4 and path.startswith("/v1/models/"):
            self._control(path, lambda body: fake.anthropic_model(parts[3]) if models_api == "anthropic"
                          else fake.openai_model(parts[3]), models_api, "model_lookup")
        elif path == "/api/v1/models":       # no auth needed [or-models]
            self._control(path, lambda body: fake.openrouter_models(query), "openrouter", "model_lookup", auth=False)
        elif path == "/v1/messages/batches":
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
            self._control(path, None, "openrouter" if path.startswith("/api/") else "anthropic")

    # ---------------------------------------------------------------- free calls
    def _control(self, path: str, action: Callable[[Any], Any] | None, api: str = "anthropic",
                 ledger_api: str = "batch_control", auth: bool = True) -> None:
        """A free call (batch/file control, model lookup) of `api` (anthropic, openai or openrouter: its auth,
        headers and error bodies), recorded in the ledger as `ledger_api`."""
        request_id = f"req_{uuid.uuid4().hex[:24]}" if api == "anthropic" else uuid.uuid4().hex
        id_header = "request-id" if api == "anthropic" else "x-request-id"
        body = None

        def entry(status: int) -> LedgerEntry:
            logged = _form_summary(body) if isinstance(body, dict) and isinstance(body.get("file"), tuple) else body
            return LedgerEntry(ledger_api, path, logged, status, None, False, request_key(logged), None,
                               request_id, time.time())
        try:
            body = self._read_body() if self.command == "POST" else None
            if auth:
                self._check_auth(api)
            if action is None:
                raise _Reject(404, f"no such endpoint: {self.command} {path}")
            result = action(body)
            payload, content_type = (result, "application/binary") if isinstance(result, bytes) else \
                (json.dumps(result).encode(), "application/json")
            self._send(entry(200), {id_header: request_id}, payload, content_type)
        except Exception as raised:
            reject = raised if isinstance(raised, _Reject) else _internal_error(raised)
            error = _error_body(api, reject, request_id)
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
        request_id = f"req_{uuid.uuid4().hex[:24]}" if api == "anthropic" else \
            f"gen-{uuid.uuid4().hex[:24]}" if api == "openrouter" else uuid.uuid4().hex
        id_header = "request-id" if api == "anthropic" else "x-request-id"
        body, fault, usage, dropped = None, None, None, None

        def entry(status: int) -> LedgerEntry:
            return LedgerEntry(api, path, body, status, fault, False, request_key(body), usage, request_id,
                               time.time(), dropped)
        try:
            body = self._read_body()
            with fake._lock:
                fake.paid_requests_received += 1
            self._check_auth(api)
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
                raise _billing_reject(api, fault)
            if fault in ("429", "529", "503", "500"):
                error_status = fake._fault_status(api, fault)
                raise _Reject(error_status, ERROR_MESSAGES[error_status],
                              _retry_after(fake.fault_retry_after_s) if fault == "429" else {}, fault)
            cache = fake._cache_usage(plan.namespace, plan.prompt_parts(), plan.min_cache)
            event = fake._admit(api, cache[0] + cache[1] + (cache[2] if api != "anthropic" else 0))
            if api == "anthropic":
                answer, usage, tool_json = fake.anthropic_message(body, api, fault, scripted, cache, plan.rules)
                stream = _anthropic_stream(answer, tool_json) if body.get("stream") else None
            else:
                answer, usage = fake.openai_completion(plan, fault, scripted, cache)
                # OpenRouter puts usage in the last chunk of every stream [or-usage]; OpenAI when asked.
                include_usage = api == "openrouter" or bool((body.get("stream_options") or {}).get("include_usage"))
                stream = _openai_stream(answer, include_usage) if body.get("stream") else None
            with fake._lock:
                event[2] = usage["output_tokens"]
            fake._remember(cache[3])
            headers = {**fake.rate_limit_headers(api), id_header: request_id}
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
            headers = {**fake.rate_limit_headers(api), **reject.headers, id_header: request_id}
            if status == 429 and not reject.headers and reject.retry_after:
                headers.update(_retry_after(fake.fault_retry_after_s))
            self._send(entry(status), headers, json.dumps(_error_body(api, reject, request_id)).encode(),
                       "application/json")


# --------------------------------------------------------------------------- standalone

def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the fake Anthropic/OpenAI/OpenRouter API until killed.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = a free port")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every answer")
    parser.add_argument("--rpm", type=int)
    parser.add_argument("--itpm", type=int)
    parser.add_argument("--otpm", type=int)
    parser.add_argument("--fault_rate", type=float, default=0.0)
    parser.add_argument("--faults", nargs="+", default=list(FAULT_KINDS),
                        choices=FAULT_KINDS + BILLING_FAULTS + ("503",))
    parser.add_argument("--served_model", action="append", default=[],
                        help="an id answered on /v1/chat/completions like a self-hosted vLLM server (repeatable)")
    parser.add_argument("--batch_delay", type=float, default=0.5, help="seconds until a Message Batch ends")
    parser.add_argument("--thinking_tokens", type=int, help="tokens a thinking model thinks per call at its default "
                                                             "effort (an assumption; default: a short thought)")
    parser.add_argument("--ledger_path", help="append every request to this JSONL file")
    args = parser.parse_args()
    server = FakeProviderServer(seed=args.seed, latency_s=args.latency, fault_rate=args.fault_rate,
                                fault_kinds=tuple(args.faults), rpm=args.rpm, itpm=args.itpm, otpm=args.otpm,
                                batch_delay_s=args.batch_delay, ledger_path=args.ledger_path,
                                host=args.host, port=args.port, served_models=tuple(args.served_model),
                                thinking_tokens=args.thinking_tokens)
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
