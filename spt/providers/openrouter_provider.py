"""The provider `openrouter`: OpenRouter's Chat Completions API, through openai_provider.py's wire code
and adapter in OpenRouter's dialect. What differs from OpenAI:
- `max_tokens` (not max_completion_tokens), and `provider.require_parameters` so that no parameter
  is silently dropped by the routed endpoint;
- reasoning only when a stage asks: a `reasoning` object (`{"effort"}`, `{"max_tokens"}` or
  `{"enabled"}`), never `enabled: false` to a model whose reasoning is mandatory;
- whether a model is served comes from the model list, which also gives each model's
  `supported_parameters` (they can move a model's answer format down from structured output);
- its own `usage.cost` prices the call (client.py); no batch API.
Reads and writes nothing.
"""

from __future__ import annotations

from typing import Any

from .base import ProviderSpec
from .models import ModelInfo
from .openai_provider import ChatDialect, OpenAIAdapter, answer_format, render_chat
from .types import LLMRequest

NAME = "openrouter"  # the --provider value (SPEC below)


def reasoning_object(request: LLMRequest, info: ModelInfo) -> dict[str, Any] | None:
    """OpenRouter's `reasoning` object, only for what the stage asked."""
    if request.thinking_budget:
        return {"max_tokens": request.thinking_budget}
    if request.effort:
        return {"effort": request.effort}
    if request.reasoning is True and info.thinking != "none":
        return {"enabled": True}
    if request.reasoning is False and info.thinking_off == "reasoning_disabled":
        return {"enabled": False}
    return None


OPENROUTER = ChatDialect(
    max_tokens_field="max_tokens",
    model_lookup=False,
    supported_parameters=True,
    reasoning=reasoning_object,
    require_parameters=True,
)

SPEC = ProviderSpec(
    name=NAME,
    title="OpenRouter",
    render=lambda request, info, self_hosted=False: render_chat(request, OPENROUTER, info),
    answer_format=answer_format,
    adapter=lambda api_key, base_url, timeout_s, models, self_hosted: OpenAIAdapter(
        NAME, OPENROUTER, api_key, base_url, timeout_s, models
    ),
    api_key_variable="OPENROUTER_API_KEY",
    base_url_variable="OPENROUTER_BASE_URL",
    default_base_url="https://openrouter.ai/api/v1",
    names_model=lambda model: "/" in model,
    model_hint="org/model",
    thinking_off=("reasoning_disabled",),
    serves_stage_2=True,
)
