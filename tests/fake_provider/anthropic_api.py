"""The fake Anthropic API: the Claude rule table (CLAUDE_MODELS, each rule citing its source in
SOURCES), the Messages wire (`POST /v1/messages`, plain and SSE streaming, thinking, tools, structured
outputs, prompt-cache breakpoints, refusals), the Models API and Message Batches, as the methods of
the `AnthropicAPI` part of FakeProviderServer; its error bodies, billing errors, rate-limit headers and
list prices; `API` declares the part to the server (common.FakeApi).
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

from .common import (
    BILLING_FAULTS,
    EFFORT_LADDER,
    EPOCH,
    ERROR_MESSAGES,
    TODAY,
    FakeApi,
    LedgerEntry,
    Route,
    _date_time,
    _internal_error,
    _pieces,
    _Plan,
    _Reject,
    _rfc3339,
    _sampler,
    _subschemas,
    _types,
    break_tool_input,
    canonical_json,
    count_tokens,
    list_price_usd,
    request_key,
)

# The documentation tags this part's rule comments cite (with common.SOURCES: fake_provider.SOURCES).
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
    "enabled-400-text": "[3p, the API's 400 text verbatim] https://github.com/anthropics/claude-code/issues/49219 ; "
    "https://github.com/microsoft/vscode/issues/320605",
    "budget-limits": "the SDK's types/thinking_config_enabled_param.py ('Must be >=1024 and less than max_tokens'); "
    "[3p] https://dev.to/multigrid/extended-thinking-in-claude-budgettokens-and-what-replaced-it-3i6p",
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
    "models-api": "https://platform.claude.com/docs/zh-CN/api/php/models/retrieve ; the SDK's types/model_info.py, "
    "model_capabilities.py, thinking_types.py, effort_capability.py and resources/models.py (list: "
    "newest first; `lifecycle` filter, retired only when asked)",
    "anthropic-errors": "https://platform.claude.com/docs/en/api/errors",
    "spend-limit": "https://learn.microsoft.com/es-es/microsoft-cloud/dev/dev-proxy/concepts/"
    "anthropic-529-overloaded-error (429, error.details.error_code enforced_spend_limit_reached, "
    "no retry-after, do not retry)",
    "credit": "[3p] https://github.com/anthropics/claude-code/issues/66314",
}

# Anthropic's documented test prompt that always triggers a refusal [refusals-anthropic]; the fake honours it too.
ANTHROPIC_REFUSAL_TRIGGER = (
    "ANTHROPIC_MAGIC_STRING_TRIGGER_REFUSAL_1FAEFB6177B4672DEE07F9D3AFC62588CCD2631EDCF22E8CCC1FB35B501C9C86"
)
# CHOICE: the wording, category and the few characters streamed before the classifier stops the answer (the docs'
# example streams "Hello.." first; the category is one of the SDK's RefusalStopDetails categories).
REFUSAL_STOP_DETAILS = {
    "type": "refusal",
    "category": "general_harms",
    "explanation": "This request was declined because it could be related to an area that was determined as harmful.",
}
MAX_CACHE_BREAKPOINTS = 4

ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}  # [anthropic-errors]

NO_XHIGH = ("low", "medium", "high", "max")  # [effort-none] Opus 4.6 / Sonnet 4.6


# --------------------------------------------------------------------------- Anthropic rule table


@dataclass(frozen=True)
class ClaudeRules:
    """What one Claude model accepts on the Messages API and shows on the Models API."""

    id: str  # the id the Models API returns (the dated id where one exists)
    display_name: str
    line: str | None  # SDK ModelLine: haiku, sonnet, opus, fable, mythos
    created: str  # release date (EPOCH when unknown, as the SDK's ModelInfo allows)
    lifecycle: str  # active | deprecated | retired (SDK ModelInfo; "legacy" = active [deprecations])
    deprecated_at: str | None
    retires_at: str | None
    context: int | None  # max_input_tokens
    max_output: int | None  # max_tokens
    thinking: frozenset  # accepted thinking.type values (SDK ThinkingTypes)
    thinking_default: str  # with no thinking field: off | on | always (on and cannot be turned off)
    display_default: str  # summarized (thinking text returned) | omitted (empty thinking text)
    efforts: tuple  # accepted output_config.effort levels; () = no effort parameter
    default_effort: str | None
    disabled_max_effort: str | None  # thinking "disabled" accepted only up to this effort (None: any)
    forced_tool: bool  # tool_choice any/tool accepted
    sampling: str  # any | one_of (not temperature and top_p together) | default_only
    structured_outputs: bool
    min_cache: int  # minimum cacheable prefix in tokens; below it nothing is written or read
    prefill: bool  # a final assistant turn accepted
    disabled_message: str = ""  # the 400 text for thinking "disabled" where it is refused


_ADAPTIVE_HINT = 'Use "thinking.type.adaptive" and "output_config.effort" to control thinking behavior.'

# Shared by the generation-5 models; each entry below overrides what differs.
_GEN5 = ClaudeRules(
    id="",
    display_name="",
    line=None,
    created=EPOCH,
    lifecycle="active",
    deprecated_at=None,
    retires_at=None,
    context=1_000_000,
    max_output=128_000,  # [lineup][sonnet-5-5][opus-5-5][haiku-5-5]: 1M / 128K on every 5.x
    thinking=frozenset({"adaptive"}),  # budget "enabled" -> 400 on 4.7 and later [extended-thinking]
    # [thinking-ts]
    thinking_default="on",  # adaptive thinking on by default on 5.x [sonnet-5][opus-5]
    # [sonnet-5-5-new]
    display_default="omitted",  # 5.x thinking blocks arrive empty by default [opus-5-5-new]
    # [sonnet-5-5-migration]
    efforts=EFFORT_LADDER,
    default_effort="high",  # [effort]: low..max, default high
    disabled_max_effort=None,
    forced_tool=True,
    sampling="default_only",  # non-default temperature/top_p/top_k -> 400 [sonnet-5]
    # [haiku-5-5-new][sampling-3p]
    structured_outputs=True,  # [structured]: "all Claude 4.5 and later", no 5.x exclusion found
    min_cache=512,  # [cache-min]
    prefill=False,  # final assistant turn -> 400 from 4.6 on [prefill][haiku-5-5-new]
    # [sonnet-5-5-migration]
)
# Opus 4.6 - 4.8 (1M / 128K, thinking off unless asked for).
_GEN4_LATE = replace(
    _GEN5,
    thinking_default="off",  # 4.6 and earlier do not think unless asked [sonnet-5-5-migration]
    thinking=frozenset({"adaptive", "disabled"}),
    display_default="omitted",  # Opus 4.7 / 4.8 [display-3p]
    sampling="default_only",
    min_cache=1024,
    prefill=False,
)
# Claude 4.5 and retired models: budget thinking only, no adaptive [thinking-ts], 200K / 64K.
_GEN4_EARLY = replace(
    _GEN5,
    context=200_000,
    max_output=64_000,
    thinking=frozenset({"enabled", "disabled"}),
    thinking_default="off",
    display_default="summarized",
    efforts=(),
    default_effort=None,
    sampling="any",
    min_cache=1024,
    prefill=True,
)
_RETIRED = replace(
    _GEN4_EARLY,
    lifecycle="retired",
    context=None,
    max_output=None,  # limits not in the research notes
    structured_outputs=False,
)

_CLAUDE_RULES = (
    replace(
        _GEN5,
        id="claude-fable-5-2",
        display_name="Claude Fable 5.2",
        line="fable",
        created="2026-11-09",  # [fable-5-2] (date [3p])
        thinking_default="always",  # CHOICE: docs silent on 5.2; as Fable 5 / 5.1 (always on)
        forced_tool=False,  # CHOICE: docs silent on 5.2; as Fable 5.1 (forced tool -> 400)
        min_cache=2048,  # CHOICE: Fable sources disagree (512 vs 2048) [cache-min]; the higher
        disabled_message=f'"thinking.type.disabled" is not supported for this model. {_ADAPTIVE_HINT}',
    ),
    replace(
        _GEN5,
        id="claude-fable-5-1",
        display_name="Claude Fable 5.1",
        line="fable",
        created="2026-09-01",  # [fable-5-1]
        thinking_default="always",  # "Adaptive (always on)", effort high: [sonnet-5-5] comparison
        forced_tool=False,  # "Forced tool use returns an error" on Fable 5.1 too [opus-5-5-new]
        # [fable-5-1]
        min_cache=2048,  # CHOICE, as for Fable 5.2
        disabled_message=f'"thinking.type.disabled" is not supported for this model. {_ADAPTIVE_HINT}',
    ),
    replace(
        _GEN5,
        id="claude-fable-5",
        display_name="Claude Fable 5",
        line="fable",
        created="2026-06-09",  # [fable-5]
        thinking_default="always",  # always on [fable-5] ([3p] glossary)
        forced_tool=True,  # 5.1 lists "forced tool -> error" as a change from 5 [fable-5-1]
        min_cache=2048,  # CHOICE, as for Fable 5.2
        disabled_message=f'"thinking.type.disabled" is not supported for this model. {_ADAPTIVE_HINT}',
    ),
    replace(
        _GEN5,
        id="claude-opus-5-5",
        display_name="Claude Opus 5.5",
        line="opus",
        created="2026-09-22",  # [opus-5-5]
        thinking_default="always",  # "Adaptive (always on)"; disabled -> 400 [opus-5-5-new]
        default_effort="medium",  # [effort]
        forced_tool=False,  # "Forced tool use returns an error." [opus-5-5-new]
        min_cache=512,  # [cache-min]
        # The documented 400 text begins so [opus-5-5-new]; its tail is assumed to match the "enabled" text.
        disabled_message=f'"thinking.type.disabled" is not supported for this model. {_ADAPTIVE_HINT}',
    ),
    replace(
        _GEN5,
        id="claude-opus-5",
        display_name="Claude Opus 5",
        line="opus",
        created="2026-07-24",  # [opus-5]; retires no sooner than 2027-07-24 (no date set)
        thinking=frozenset({"adaptive", "disabled"}),
        disabled_max_effort="high",  # disabled accepted only at effort <= high [opus-5]
        forced_tool=True,  # docs silent (not a listed breaking change); thinking-on rule applies
        min_cache=512,
    ),  # [cache-min] (official)
    replace(
        _GEN5,
        id="claude-sonnet-5-5",
        display_name="Claude Sonnet 5.5",
        line="sonnet",
        created="2026-09-28",  # [sonnet-5-5]
        thinking=frozenset({"adaptive", "between_tools"}),  # the accepted values [sonnet-5-5-migration]
        forced_tool=False,  # "Forced tool use returns an error." [sonnet-5-5-new]
        min_cache=512,  # [cache-min]
        # disabled -> 400 "whose message points to between_tools" [sonnet-5-5-new]; exact wording not found.
        disabled_message='"thinking.type.disabled" is not supported for this model. Use "thinking.type.'
        'between_tools" to turn off up-front thinking.',
    ),
    replace(
        _GEN5,
        id="claude-sonnet-5",
        display_name="Claude Sonnet 5",
        line="sonnet",
        created="2026-06-30",  # [sonnet-5]
        thinking=frozenset({"adaptive", "disabled"}),  # disabled accepted (older summary); no effort limit found
        min_cache=1024,
    ),  # [cache-min]
    replace(
        _GEN5,
        id="claude-haiku-5-5",
        display_name="Claude Haiku 5.5",
        line="haiku",
        created="2026-10-07",  # [haiku-5-5]
        thinking=frozenset({"adaptive", "disabled"}),
        disabled_max_effort="high",  # [haiku-5-5-3p]: disabled at effort <= high; official docs silent
        default_effort="medium",  # [effort]
        forced_tool=True,  # CHOICE: docs silent; not in its breaking-change list [haiku-5-5-new]
        min_cache=512,
    ),  # [cache-min]
    replace(
        _GEN4_LATE,
        id="claude-opus-4-8",
        display_name="Claude Opus 4.8",
        line="opus",
        created="2026-05-28",  # [opus-4-8]
        thinking=frozenset({"adaptive", "disabled"}),  # enabled -> 400 [enabled-400-text] (4.8: vscode#320605)
        sampling="default_only",  # [sampling-3p]
        min_cache=1024,
    ),  # [cache-min]
    replace(
        _GEN4_LATE,
        id="claude-opus-4-7",
        display_name="Claude Opus 4.7",
        line="opus",
        created="2026-04-16",  # [opus-4-7] ([3p] first reports; Vertex: retires >= 2027-04-16)
        sampling="default_only",  # "`temperature` is deprecated for this model." [sampling-3p]
        min_cache=2048,
    ),  # [cache-min]
    replace(
        _GEN4_LATE,
        id="claude-opus-4-6",
        display_name="Claude Opus 4.6",
        line="opus",
        created=EPOCH,  # [opus-4-6]: 1M / 128K; release date not in the research notes
        thinking=frozenset({"enabled", "adaptive", "disabled"}),  # budget deprecated, still works [thinking-ts]
        # [sdk-thinking-warning]
        display_default="summarized",  # CHOICE: docs silent ([display-3p] names only 4.7 / 4.8)
        efforts=NO_XHIGH,  # no xhigh [effort-none]
        sampling="any",  # accepts temperature with thinking off [sampling-3p]
        min_cache=4096,  # [cache-min]
        prefill=False,
    ),  # [prefill]
    replace(
        _GEN4_LATE,
        id="claude-sonnet-4-6",
        display_name="Claude Sonnet 4.6",
        line="sonnet",
        created="2026-02-17",  # [sonnet-4-6]
        thinking=frozenset({"enabled", "adaptive", "disabled"}),  # [thinking-ts]
        display_default="summarized",  # CHOICE, as Opus 4.6
        efforts=NO_XHIGH,  # [effort-none]
        sampling="any",  # [sampling-3p]
        min_cache=1024,  # [cache-min]
        prefill=False,
    ),  # [prefill] (probe: sonnet-4-6 -> 400)
    replace(
        _GEN4_EARLY,
        id="claude-opus-4-5-20251101",
        display_name="Claude Opus 4.5",
        line="opus",
        created="2025-11-01",  # the id's date
        lifecycle="deprecated",
        deprecated_at="2026-11-23",  # [opus-4-5] ([3p] date)
        retires_at="2027-01-22",  # [sdk-models][opus-4-5]
        efforts=("low", "medium", "high"),  # has effort [effort]; CHOICE: levels not listed, max/xhigh came later
        default_effort="high",
        min_cache=4096,  # [cache-min]
        prefill=True,
    ),  # CHOICE: prefill removal is dated to 4.6 [prefill]
    replace(
        _GEN4_EARLY,
        id="claude-haiku-4-5-20251001",
        display_name="Claude Haiku 4.5",
        line="haiku",
        created="2025-10-01",  # the id's date; [haiku-4-5] "legacy" = still active
        efforts=(),  # effort "Not supported" [effort-none]
        sampling="one_of",  # 400 if temperature and top_p are both set [haiku-4-5]
        min_cache=4096,  # [cache-min]
        prefill=True,
    ),  # probe: 200 [prefill]
    replace(
        _RETIRED,
        id="claude-sonnet-4-5-20250929",
        display_name="Claude Sonnet 4.5",
        line="sonnet",
        created="2025-09-29",
        retires_at=TODAY,  # retires 2026-11-30 = TODAY: retired [sonnet-4-5][sdk-models]
        context=200_000,
        max_output=64_000,
    ),
    replace(
        _RETIRED,
        id="claude-opus-4-1-20250805",
        display_name="Claude Opus 4.1",
        line="opus",
        created="2025-08-05",
        retires_at="2026-08-05",
    ),  # [retired-opus-4-1][retired-probe]
    replace(
        _RETIRED,
        id="claude-opus-4-20250514",
        display_name="Claude Opus 4",
        line="opus",
        created="2025-05-14",
        retires_at="2026-06-15",
    ),  # [retired-4-0][retired-probe]
    replace(
        _RETIRED,
        id="claude-sonnet-4-20250514",
        display_name="Claude Sonnet 4",
        line="sonnet",
        created="2025-05-14",
        retires_at="2026-06-15",
    ),  # [retired-4-0][retired-probe]
    replace(
        _RETIRED,
        id="claude-3-7-sonnet-20250219",
        display_name="Claude Sonnet 3.7",
        line="sonnet",
        created="2025-02-19",
        retires_at="2026-02-19",
    ),  # [retired-3-x][retired-probe]
    replace(
        _RETIRED,
        id="claude-3-5-haiku-20241022",
        display_name="Claude Haiku 3.5",
        line="haiku",
        created="2024-10-22",
        retires_at="2026-02-19",
    ),  # [retired-3-x] ([3p] date)[retired-probe]
)
_BY_ID = {rules.id: rules for rules in _CLAUDE_RULES}

# Every id the Messages API is sent, dated ids and aliases alike -> its rules. [aliases]: the bare family id
# resolves to the dated id; there are no "-latest" aliases.
CLAUDE_MODELS: dict[str, ClaudeRules] = {
    **_BY_ID,
    "claude-opus-4-5": _BY_ID["claude-opus-4-5-20251101"],  # [aliases][opus-4-5]
    "claude-haiku-4-5": _BY_ID["claude-haiku-4-5-20251001"],  # [aliases][haiku-4-5]
    "claude-sonnet-4-5": _BY_ID["claude-sonnet-4-5-20250929"],  # [aliases]; retired [sonnet-4-5]
    "claude-opus-4-1": _BY_ID["claude-opus-4-1-20250805"],  # retired [retired-opus-4-1]
    "claude-opus-4-0": _BY_ID["claude-opus-4-20250514"],  # retired [retired-4-0]
    "claude-sonnet-4-0": _BY_ID["claude-sonnet-4-20250514"],  # retired [retired-4-0]
}


# --------------------------------------------------------------------------- error texts


# [anthropic-errors][not-found-text]: unknown and retired models alike.
def _claude_not_found(model: str) -> _Reject:
    return _Reject(404, f"model: {model}")


ENABLED_REFUSED = f'"thinking.type.enabled" is not supported for this model. {_ADAPTIVE_HINT}'  # [enabled-400-text]
FORCED_THINKING = "Thinking may not be enabled when tool_choice forces tool use."  # [forced-thinking]
PREFILL_REFUSED = (
    "This model does not support assistant message prefill. The conversation must end with a user message."  # [prefill]
)
CREDIT_TOO_LOW = (
    "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to "
    "upgrade or purchase credits."
)  # [credit]
SPEND_LIMIT = "You have reached your organization's monthly spend limit."  # 429 [spend-limit]; wording not found

# Structured outputs: the JSON-schema subset Anthropic accepts [schema-subset]. Which keywords are refused outright
# comes from the [3p] docs copy dated 2025-11-13; the string formats from the SDK's SupportedStringFormats.
ANTHROPIC_UNSUPPORTED_KEYWORDS = (
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "maxItems",
    "minProperties",
    "maxProperties",
)
ANTHROPIC_STRING_FORMATS = frozenset(
    {"date-time", "time", "date", "duration", "email", "hostname", "uri", "ipv4", "ipv6", "uuid"}
)


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
        parts.append(
            (canonical_json(_without_cache_control(block)), isinstance(block, dict) and "cache_control" in block)
        )
    for message in body.get("messages") or []:
        content = message.get("content")
        for block in [content] if isinstance(content, str) else content or []:
            parts.append(
                (
                    canonical_json([message.get("role"), _without_cache_control(block)]),
                    isinstance(block, dict) and "cache_control" in block,
                )
            )
    if body.get("cache_control") and parts:  # top-level cache_control marks the last cacheable block
        parts[-1] = (parts[-1][0], True)
    return parts


def anthropic_schema_problems(schema: Any) -> list[str]:
    """Why Anthropic's structured outputs refuse `schema` [schema-subset] (empty when it is accepted)."""
    if not isinstance(schema, dict):
        return ["the schema must be a JSON object"]
    problems = []
    for path, node in _subschemas(schema):
        where = "/".join(map(str, path)) or "(root)"
        problems += [
            f"{where}: the '{keyword}' keyword is not supported"
            for keyword in ANTHROPIC_UNSUPPORTED_KEYWORDS
            if keyword in node
        ]
        if "minItems" in node and node["minItems"] not in (0, 1):
            problems.append(f"{where}: minItems must be 0 or 1, got {node['minItems']}")
        if "string" in _types(node) and "format" in node and node["format"] not in ANTHROPIC_STRING_FORMATS:
            problems.append(f"{where}: the string format {node['format']!r} is not supported")
        if "object" in _types(node) and node.get("additionalProperties") is not False:
            problems.append(f"{where}: objects must set 'additionalProperties' to false")
    return problems


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
        "batch": flag(True),
        "citations": flag(True),
        "code_execution": flag(True),
        "context_management": {
            "supported": True,
            "clear_thinking_20251015": flag(True),
            "clear_tool_uses_20250919": flag(True),
            "compact_20260112": flag(True),
        },
        "effort": {
            "supported": bool(rules.efforts),
            **{level: flag(level in rules.efforts) for level in EFFORT_LADDER},
        },
        "image_input": flag(True),
        "pdf_input": flag(True),
        "server_tools": {"supported": True, "code_execution": flag(True), "web_search": flag(True)},
        "structured_outputs": flag(rules.structured_outputs),
        "thinking": {
            "supported": True,
            "types": {
                kind: flag(kind in rules.thinking) for kind in ("adaptive", "between_tools", "disabled", "enabled")
            },
        },
    }
    return {
        "type": "model",
        "id": rules.id,
        "display_name": rules.display_name,
        "created_at": _date_time(rules.created),
        "lifecycle": rules.lifecycle,
        "deprecated_at": _date_time(rules.deprecated_at),
        "retires_at": _date_time(rules.retires_at),
        "line": rules.line,
        "max_input_tokens": rules.context,
        "max_tokens": rules.max_output,
        "capabilities": capabilities,
    }


class AnthropicAPI:
    """FakeProviderServer's Anthropic endpoints (uses the shared answer logic and state of server.py)."""

    # ---------------------------------------------------------------- Anthropic
    def anthropic_message(
        self,
        body: dict,
        api: str,
        fault: str | None,
        scripted: dict,
        cache: tuple[int, int, int, list[str]],
        rules: ClaudeRules | None = None,
    ) -> tuple[dict, dict, str | None]:
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
        tool_name = (
            choice.get("name")
            if choice_type == "tool"
            else next(iter(tools), None)
            if choice_type == "any" or auto_tool
            else None
        )
        mode, display = claude_thinking_mode(body, rules)
        thinking = body.get("thinking") or {}
        thought_tokens = self.thought_tokens(
            (body.get("output_config") or {}).get("effort"),
            rules.default_effort,
            thinking.get("budget_tokens") if thinking.get("type") == "enabled" else None,
        )
        answer = self._answer(
            body,
            tools[tool_name]["input_schema"] if tool_name else None,
            tool_name,
            mode == "on",
            body.get("max_tokens"),
            scripted,
            fault,
            json_schema,
            several_thoughts=rules.thinking_default != "off" and thought_tokens is None,
            thought_tokens=thought_tokens,
        )
        content = []
        for index, thought in enumerate(answer.thoughts):
            # "omitted": the block comes back with an empty `thinking` text [opus-5-5-new]; "summarized": with text.
            shown = thought if display != "omitted" else ""
            if shown and index == 0 and json_schema is not None and not answer.tool_name and "thinking" not in scripted:
                shown = self._json_draft(body, json_schema)  # a first block that parses as JSON, but is not the answer
            content.append(
                {"type": "thinking", "thinking": shown, "signature": hashlib.sha256(thought.encode()).hexdigest()}
            )
        if mode == "between_tools" and answer.tool_name:
            # between_tools: up-front thinking off; a short progress update before a tool call still comes back
            # as a thinking block, with its summary text [sonnet-5-5-new].
            update = f"I will call {answer.tool_name} now."
            content.append(
                {"type": "thinking", "thinking": update, "signature": hashlib.sha256(update.encode()).hexdigest()}
            )
            answer.thoughts.append(update)
        if answer.tool_name:
            content.append(
                {
                    "type": "tool_use",
                    "id": f"toolu_{uuid.uuid4().hex[:24]}",
                    "name": answer.tool_name,
                    "input": answer.tool_input,
                }
            )
        else:
            content.append({"type": "text", "text": answer.text})
        uncached, creation, read, _ = cache
        usage = {
            "input_tokens": uncached,
            "output_tokens": answer.output_tokens,
            "cache_creation_input_tokens": creation,
            "cache_read_input_tokens": read,
        }
        stop_reason = (
            "refusal"
            if answer.refused
            else "max_tokens"
            if answer.truncated
            else "tool_use"
            if answer.tool_name
            else "end_turn"
        )
        message = {
            "id": f"msg_{uuid.uuid4().hex[:24]}",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {**usage, "service_tier": "batch" if api == "anthropic_batch" else "standard"},
        }
        if answer.refused:  # billed up to the refusal, with its stop_details [refusals-anthropic]
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
        if rules is None or rules.lifecycle == "retired":  # [retired-probe][not-found-text]
            raise _claude_not_found(body["model"])
        if rules.max_output is not None and body["max_tokens"] > rules.max_output:
            # Wording as the API words it (not in the research notes).
            raise _Reject(
                400,
                f"max_tokens: {body['max_tokens']} > {rules.max_output}, which is the maximum allowed "
                f"number of output tokens for {rules.id}",
            )
        breakpoints = sum(ends for _, ends in anthropic_prompt_parts(body))
        if breakpoints > MAX_CACHE_BREAKPOINTS:
            raise _Reject(
                400,
                f"A maximum of {MAX_CACHE_BREAKPOINTS} blocks with cache_control may be provided. Found {breakpoints}.",
            )
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
                raise _Reject(
                    400,
                    f'tool_choice.type "{choice["type"]}" (forced tool use) is not supported for this '
                    'model. Use tool_choice "auto" or "none".',
                )
            if claude_thinking_mode(body, rules)[0] == "on" and rules.thinking_default != "always":
                # [forced-thinking]; thinking that is on by default counts (CHOICE: docs silent on default-on models).
                # Always-on Fable 5 accepts forced tools: Fable 5.1 lists refusing them as a change [fable-5-1].
                raise _Reject(400, FORCED_THINKING)
        messages = body["messages"]
        if (
            messages
            and isinstance(messages[-1], dict)
            and messages[-1].get("role") == "assistant"
            and not rules.prefill
        ):
            raise _Reject(400, PREFILL_REFUSED)  # [prefill]
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
                raise _Reject(400, ENABLED_REFUSED)  # [enabled-400-text][extended-thinking]
            if kind == "disabled" and rules.disabled_message:
                raise _Reject(400, rules.disabled_message)  # [opus-5-5-new][sonnet-5-5-new]
            raise _Reject(400, f'"thinking.type.{kind}" is not supported for this model.')  # wording not found
        if kind == "enabled":  # [budget-limits]
            budget = thinking.get("budget_tokens")
            if not isinstance(budget, int) or budget < 1024:
                raise _Reject(400, "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024")
            if budget >= body["max_tokens"]:
                raise _Reject(400, "`max_tokens` must be greater than `thinking.budget_tokens`.")
        output_config = body.get("output_config") or {}
        effort = output_config.get("effort")
        if effort is not None:
            if not rules.efforts:  # [effort-none]; wording not found
                raise _Reject(400, "output_config.effort: this model does not support the effort parameter.")
            if effort not in rules.efforts:  # [effort][effort-none]; wording not found
                raise _Reject(
                    400,
                    f"output_config.effort: {effort!r} is not supported for this model; use one of "
                    f"{', '.join(rules.efforts)}.",
                )
        level = effort or rules.default_effort
        rank = EFFORT_LADDER.index(level) if level in EFFORT_LADDER else 0
        if kind == "between_tools" and rank > EFFORT_LADDER.index("high"):
            # [sonnet-5-5-new]: between_tools at low, medium or high only; 400 at xhigh or max. Wording not found.
            raise _Reject(
                400,
                f'"thinking.type.between_tools" is not supported at effort {level!r}. Use effort low, '
                "medium or high, or adaptive thinking.",
            )
        if kind == "disabled" and rules.disabled_max_effort and rank > EFFORT_LADDER.index(rules.disabled_max_effort):
            # [opus-5]; [haiku-5-5-3p]. Wording not found.
            raise _Reject(
                400,
                f'"thinking.type.disabled" is not supported at effort {level!r}. Use effort '
                f"{rules.disabled_max_effort} or lower, or adaptive thinking.",
            )

    @staticmethod
    def _check_claude_sampling(body: dict, rules: ClaudeRules) -> None:
        if rules.sampling == "default_only":
            # "Non-default" values are refused [sonnet-5][sampling-3p]: temperature and top_p equal to their default
            # (1.0; top_p 1.0 is a no-op) pass; top_k has no default value, so any top_k is refused.
            for name in ("temperature", "top_p", "top_k"):
                if name in body and body[name] is not None and (name == "top_k" or body[name] != 1):
                    raise _Reject(400, f"`{name}` is deprecated for this model.")  # [sampling-3p] wording
        elif rules.sampling == "one_of" and body.get("temperature") is not None and body.get("top_p") is not None:
            # [haiku-4-5] migration guide; wording not in the research notes.
            raise _Reject(
                400, "`temperature` and `top_p` cannot both be specified for this model. Please use only one."
            )

    @staticmethod
    def _check_claude_schemas(body: dict, rules: ClaudeRules) -> None:
        json_format = (body.get("output_config") or {}).get("format")
        strict_tools = [tool for tool in body.get("tools") or [] if tool.get("strict")]
        if json_format is None and not strict_tools:
            return
        if not rules.structured_outputs:
            raise _Reject(400, "output_config.format: structured outputs are not supported for this model.")
        if json_format is not None:
            if (
                not isinstance(json_format, dict)
                or json_format.get("type") != "json_schema"
                or "schema" not in json_format
            ):
                raise _Reject(400, 'output_config.format: expected {"type": "json_schema", "schema": {...}}')
            problems = anthropic_schema_problems(json_format["schema"])
            if problems:  # [schema-subset]; wording not found
                raise _Reject(400, "output_config.format.schema: " + "; ".join(problems))
        for tool in strict_tools:  # strict tool use takes the same subset [structured][schema-subset]
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
        wanted = {
            value for key in ("lifecycle", "lifecycle[]") for raw in query.get(key, []) for value in raw.split(",")
        } or {"active", "deprecated"}
        data = [
            claude_model_info(rules)
            for rules in sorted(_CLAUDE_RULES, key=lambda r: (r.created, r.id), reverse=True)
            if rules.lifecycle in wanted
        ]
        ids = [model["id"] for model in data]
        if query.get("after_id"):
            data = data[ids.index(query["after_id"][0]) + 1 :] if query["after_id"][0] in ids else []
        elif query.get("before_id"):
            data = data[: ids.index(query["before_id"][0])] if query["before_id"][0] in ids else []
        limit = int((query.get("limit") or ["20"])[0])
        page = data[:limit]
        return {
            "data": page,
            "has_more": len(data) > limit,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
        }

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
        batch = {
            "id": batch_id,
            "requests": requests,
            "results": None,
            "created": now,
            "ended": None,
            "cancel_initiated": None,
            "timer": threading.Timer(self.batch_delay_s, self._process_batch, (batch_id,)),
        }
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
            batch["results"] = []  # claims the batch; filled below
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
                    raise anthropic_billing_reject(fault)
                if "status" in scripted or fault in ("429", "529", "500", "503", "drop"):
                    status = scripted.get("status") or {"drop": 500, "503": 500}.get(fault) or int(fault)
                    raise _Reject(status, ERROR_MESSAGES.get(status, "error"), fault=fault)
                cache = self._cache_usage(plan.namespace, plan.prompt_parts(), plan.min_cache)
                message, usage, _ = self.anthropic_message(
                    params, "anthropic_batch", fault, scripted, cache, plan.rules
                )
                self._remember(cache[3])
                results.append({"custom_id": item["custom_id"], "result": {"type": "succeeded", "message": message}})
                self._record(
                    LedgerEntry(
                        "anthropic_batch",
                        path,
                        params,
                        200,
                        fault,
                        True,
                        request_key(params),
                        usage,
                        message["id"],
                        time.time(),
                    )
                )
            except Exception as raised:
                reject = raised if isinstance(raised, _Reject) else _internal_error(raised)
                error = anthropic_error_body(reject, None)
                results.append({"custom_id": item["custom_id"], "result": {"type": "errored", "error": error}})
                self._record(
                    LedgerEntry(
                        "anthropic_batch",
                        path,
                        params,
                        reject.status,
                        reject.fault,
                        False,
                        request_key(params),
                        None,
                        f"err_{uuid.uuid4().hex[:24]}",
                        time.time(),
                    )
                )
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
        return {
            "id": batch_id,
            "type": "message_batch",
            "processing_status": "ended" if ended else "in_progress",
            "request_counts": {
                "processing": 0 if ended else len(batch["requests"]),
                "succeeded": kinds["succeeded"],
                "errored": kinds["errored"],
                "canceled": kinds["canceled"],
                "expired": 0,
            },
            "created_at": _rfc3339(batch["created"]),
            "expires_at": _rfc3339(batch["created"] + 86400),
            "ended_at": _rfc3339(batch["ended"]) if ended else None,
            "cancel_initiated_at": _rfc3339(batch["cancel_initiated"]) if batch["cancel_initiated"] else None,
            "archived_at": None,
            "results_url": f"{self.url}/v1/messages/batches/{batch_id}/results" if ended else None,
        }

    def batch_results(self, batch_id: str) -> bytes:
        batch = self._batch(batch_id)
        if batch["ended"] is None:
            raise _Reject(400, f"message batch {batch_id!r} has not ended yet")
        return "".join(json.dumps(result) + "\n" for result in batch["results"]).encode()

    def list_batches(self) -> dict:
        with self._lock:
            ids = list(self._batches)
        data = [self.batch_object(batch_id) for batch_id in reversed(ids)]
        return {
            "data": data,
            "has_more": False,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
        }


def _anthropic_stream(message: dict, tool_json: str | None) -> list[bytes]:
    """The SSE events of one Messages answer, in the order the real API sends them."""
    start = {**message, "content": [], "stop_reason": None, "usage": {**message["usage"], "output_tokens": 1}}
    events = [("message_start", {"type": "message_start", "message": start}), ("ping", {"type": "ping"})]
    for index, block in enumerate(message["content"]):
        if block["type"] == "thinking":
            empty = {"type": "thinking", "thinking": "", "signature": ""}
            deltas = [
                {"type": "thinking_delta", "thinking": p} for p in _pieces(block["thinking"]) if block["thinking"]
            ] + [{"type": "signature_delta", "signature": block["signature"]}]
        elif block["type"] == "tool_use":
            empty = {**block, "input": {}}
            deltas = [{"type": "input_json_delta", "partial_json": p} for p in _pieces(tool_json or "{}")]
        else:
            empty, deltas = (
                {"type": "text", "text": ""},
                [{"type": "text_delta", "text": p} for p in _pieces(block["text"])],
            )
        events.append(("content_block_start", {"type": "content_block_start", "index": index, "content_block": empty}))
        events += [("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d}) for d in deltas]
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    delta = {"stop_reason": message["stop_reason"], "stop_sequence": None}
    if message.get("stop_details"):  # arrives on message_delta with the stop_reason [refusals-anthropic]
        delta["stop_details"] = message["stop_details"]
    events.append(
        (
            "message_delta",
            {"type": "message_delta", "delta": delta, "usage": {"output_tokens": message["usage"]["output_tokens"]}},
        )
    )
    events.append(("message_stop", {"type": "message_stop"}))
    return [f"event: {name}\ndata: {json.dumps(data)}\n\n".encode() for name, data in events]


def anthropic_billing_reject(fault: str) -> _Reject:
    """Anthropic's out-of-money error for a billing fault (BILLING_FAULTS)."""
    if fault == "spend_limit":  # [spend-limit]: 429 rate_limit_error, details.error_code, no retry-after
        return _Reject(
            429, SPEND_LIMIT, fault=fault, details={"error_code": "enforced_spend_limit_reached"}, retry_after=False
        )
    return _Reject(400, CREDIT_TOO_LOW, fault=fault)  # [credit]: 400 invalid_request_error


def anthropic_error_body(reject: _Reject, request_id: str | None) -> dict:
    """Anthropic's error JSON for `reject` [anthropic-errors]."""
    error = {
        "type": reject.error_type or ANTHROPIC_ERROR_TYPES.get(reject.status, "api_error"),
        "message": reject.message,
    }
    if reject.details:
        error["details"] = reject.details
    return {"type": "error", "error": error, "request_id": request_id}


# List prices in USD per million tokens: (input, output, cache write 5 min, cache write 1 h, cache read). The fake
# bills every answered request at its own model's price (LedgerEntry.cost_usd; batches at half price [batch-ttl]).
PRICES: dict[str, tuple[float, float, float, float, float]] = {
    "claude-fable-5-2": (8, 40, 10, 16, 0.2),  # [fable-5-2]
    "claude-fable-5-1": (10, 50, 12.5, 20, 0.25),  # [fable-5-1]
    "claude-fable-5": (10, 50, 12.5, 20, 1.0),  # [fable-5]
    "claude-opus-5-5": (4, 20, 5, 8, 0.2),  # [opus-5-5]
    "claude-opus-5": (5, 25, 6.25, 10, 0.5),  # [opus-5]
    "claude-sonnet-5-5": (2, 10, 2.5, 4, 0.1),  # [sonnet-5-5][sonnet-5-5-migration] (cache read $0.10)
    "claude-sonnet-5": (2, 10, 2.5, 4, 0.2),  # [sonnet-5]
    "claude-haiku-5-5": (0.1, 0.5, 0.125, 0.2, 0.01),  # [haiku-5-5] (prompts up to 100K tokens)
    "claude-opus-4-8": (5, 25, 6.25, 10, 0.5),  # [opus-4-8]
    "claude-opus-4-7": (5, 25, 6.25, 10, 0.5),  # [opus-4-7]
    "claude-opus-4-6": (5, 25, 6.25, 10, 0.5),  # [opus-4-6]
    "claude-sonnet-4-6": (3, 15, 3.75, 6, 0.3),  # [sonnet-4-6]
    "claude-opus-4-5-20251101": (5, 25, 6.25, 10, 0.5),  # [opus-4-5]
    "claude-haiku-4-5-20251001": (1, 5, 1.25, 2, 0.1),  # [haiku-4-5]
}


def _bill(body: dict, usage: dict) -> float:
    """USD at the list price of the request's model (an alias at its dated id's)."""
    model = body.get("model", "")
    return list_price_usd(PRICES, CLAUDE_MODELS[model].id if model in CLAUDE_MODELS else model, body, usage)


def _check_auth(headers) -> None:
    if not (headers.get("x-api-key") or headers.get("authorization")):
        raise _Reject(401, "x-api-key header is required")
    if not headers.get("anthropic-version"):
        raise _Reject(400, "anthropic-version: header is required")


def _rate_limit_headers(state: dict, now: float) -> dict[str, str]:
    """anthropic-ratelimit-{requests,input-tokens,output-tokens}-{limit,remaining,reset} (reset: RFC 3339)."""
    return {
        f"anthropic-ratelimit-{name}-{field}": value
        for key, name in (("requests", "requests"), ("input", "input-tokens"), ("output", "output-tokens"))
        for field, value in zip(
            ("limit", "remaining", "reset"), (str(state[key][0]), str(state[key][1]), _rfc3339(state[key][2]))
        )
    }


def _validate(fake, body: Any) -> _Plan:
    rules = fake.validate_anthropic(body)
    return _Plan("anthropic", rules.id, rules, body, anthropic_prompt_parts, rules.min_cache)


def _answer(fake, body: dict, plan: _Plan, fault, scripted: dict, cache) -> tuple[dict, dict, list[bytes] | None]:
    answer, usage, tool_json = fake.anthropic_message(body, "anthropic", fault, scripted, cache, plan.rules)
    return answer, usage, _anthropic_stream(answer, tool_json) if body.get("stream") else None


def _versioned(headers) -> bool:
    """/v1/models is both Anthropic's and OpenAI's: the Anthropic SDK always sends anthropic-version."""
    return bool(headers.get("anthropic-version"))


_BATCH = "/v1/messages/batches"
API = FakeApi(
    sources=SOURCES,
    name="anthropic",
    batch_api="anthropic_batch",
    methods=AnthropicAPI,
    routes=(
        Route("POST", "/v1/messages"),
        Route("POST", _BATCH, lambda fake, query, body: fake.create_batch(body)),
        Route("POST", _BATCH + "/([^/]+)/cancel", lambda fake, query, body, batch_id: fake.cancel_batch(batch_id)),
        Route(
            "GET", "/v1/models", lambda fake, query, body: fake.anthropic_models(query), "model_lookup", when=_versioned
        ),
        Route(
            "GET",
            "/v1/models/([^/]+)",
            lambda fake, query, body, model_id: fake.anthropic_model(model_id),
            "model_lookup",
            when=_versioned,
        ),
        Route("GET", _BATCH, lambda fake, query, body: fake.list_batches()),
        Route("GET", _BATCH + "/([^/]+)", lambda fake, query, body, batch_id: fake.batch_object(batch_id)),
        Route("GET", _BATCH + "/([^/]+)/results", lambda fake, query, body, batch_id: fake.batch_results(batch_id)),
    ),
    validate=_validate,
    answer=_answer,
    env=lambda url: {"ANTHROPIC_BASE_URL": url, "ANTHROPIC_API_KEY": "fake-anthropic-key"},
    check_auth=_check_auth,
    error_body=anthropic_error_body,
    billing_reject=anthropic_billing_reject,
    rate_limit_headers=_rate_limit_headers,
    bill=_bill,
    stores=("_batches",),
    id_header="request-id",
    id_prefix="req_",
    refusal_trigger=ANTHROPIC_REFUSAL_TRIGGER,
    window_counts_cache_read=False,  # only uncached input counts toward ITPM (https://platform.claude.com/docs/en/api/rate-limits)
    unrouted_prefix="",
)
