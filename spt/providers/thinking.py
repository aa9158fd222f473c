"""How much a request may think, and a max_tokens that leaves room for it.

A thinking model's thinking tokens count toward `max_tokens` and are billed as output tokens
(Anthropic: https://platform.claude.com/docs/build-with-claude/thinking and the context-window
guide https://docs.anthropic.com/en/docs/build-with-claude/context-windows; OpenAI: reasoning
tokens share max_completion_tokens, https://developers.openai.com/api/docs/guides/reasoning).
So a stage sets `LLMRequest.max_tokens` to what its ANSWER needs, and says how it wants the model
to think (`LLMRequest.thinking`): "default" (the model's own setting) or "lowest" (the least the
model allows: switched off where the registry says it can be, else its lowest effort level).
`resolve(request, info, allowance)` turns that into the request that is sent: the thinking
fields set and `max_tokens` = answer + the thinking allowance of the effort the model will think
at (config/models.json `thinking_allowance`, a planning assumption, not a documented figure),
capped at the model's output limit. An explicit effort or thinking budget (the run's --effort,
--thinking_budget) always wins over the stage's choice. `plan(request, info, allowance)` says
what was chosen, for --dry_run. Reads and writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .models import EFFORT_LEVELS, ModelInfo
from .registry import PROVIDERS
from .types import LLMRequest

RESOLVED = "resolved"  # LLMRequest.thinking once resolve() has applied the choice
LADDER = ("minimal",) + EFFORT_LEVELS  # lowest first
FALLBACK_EFFORT = "high"  # the level assumed where the registry names no default effort


@dataclass(frozen=True)
class ThinkingPlan:
    """What one request asks of the model's thinking."""

    thinks: bool  # the model may think on this request
    how: str  # in words, for --dry_run
    allowance: int  # thinking tokens reserved on top of the answer
    answer_tokens: int
    max_tokens: int  # answer + allowance, capped at the model's output limit


def _can_switch_off(info: ModelInfo) -> bool:
    """The model's thinking_off switch (models.json) is one its provider honours (ProviderSpec.thinking_off)."""
    spec = PROVIDERS.get(info.provider)
    return info.thinking != "none" and spec is not None and info.thinking_off in spec.thinking_off


def lowest_fields(info: ModelInfo) -> dict:
    """The request fields of the least thinking `info`'s model allows."""
    if _can_switch_off(info):
        return {"reasoning": False}
    levels = [level for level in LADDER if level in info.effort_levels]
    if info.thinking in ("adaptive", "adaptive-always-on") and levels:
        return {"effort": levels[0]}
    return {}


def _thinking_level(request: LLMRequest, info: ModelInfo) -> tuple[bool, str | None, str]:
    """(may think, effort level it thinks at, how) for a request whose thinking fields are final."""
    spec = PROVIDERS.get(info.provider)  # None for a defaults entry of no provider's own (openai-compatible)
    if info.thinking == "none" or spec is not None and spec.simulated and not request.thinking_budget:
        return False, None, "no thinking (the model does not think)"
    if request.thinking_budget:
        return True, None, f"budget thinking, {request.thinking_budget:,} tokens"
    if request.effort:
        off = request.effort == "none"
        return (
            not off,
            None if off else request.effort,
            "thinking off (effort none)" if off else f"effort {request.effort}",
        )
    if request.reasoning is False and _can_switch_off(info):
        return False, None, f"thinking switched off ({info.thinking_off})"
    default = info.default_effort or FALLBACK_EFFORT
    if info.thinking == "adaptive-always-on" or request.reasoning is True:
        return True, default, f"the model's default thinking (effort {default})"
    if info.thinking == "adaptive" and (spec is None or spec.adaptive_thinks_by_default):
        return True, default, f"the model's default thinking, if any (effort {default})"
    return False, None, "no thinking (off unless asked for)"


def plan(request: LLMRequest, info: ModelInfo, allowance: dict[str, int]) -> ThinkingPlan:
    """The thinking a resolved request asks for, and its max_tokens (answer + thinking)."""
    thinks, level, how = _thinking_level(request, info)
    reserved = request.thinking_budget or 0
    if thinks and level is not None:
        reserved = allowance.get(level, allowance[FALLBACK_EFFORT])
    answer = min(request.max_tokens, info.max_output_tokens)
    return ThinkingPlan(thinks, how, reserved, answer, min(answer + reserved, info.max_output_tokens))


def choose(
    request: LLMRequest, info: ModelInfo, *, effort: str | None = None, thinking_budget: int | None = None
) -> LLMRequest:
    """The request with its thinking fields as they will be sent: the run's `effort`/`thinking_budget` (for
    requests that set none), else the stage's choice; max_tokens untouched."""
    if request.thinking == RESOLVED:
        return request
    request = replace(
        request, effort=request.effort or effort, thinking_budget=request.thinking_budget or thinking_budget
    )
    if request.thinking == "lowest" and not request.effort and not request.thinking_budget:
        request = replace(request, **lowest_fields(info))
    return request


def resolve(
    request: LLMRequest,
    info: ModelInfo,
    allowance: dict[str, int],
    *,
    effort: str | None = None,
    thinking_budget: int | None = None,
) -> LLMRequest:
    """The request as sent: its thinking chosen (choose) and max_tokens with room for the thinking. A resolved
    request is returned as it is."""
    if request.thinking == RESOLVED:
        return request
    request = choose(request, info, effort=effort, thinking_budget=thinking_budget)
    return replace(request, thinking=RESOLVED, max_tokens=plan(request, info, allowance).max_tokens)


def describe(request: LLMRequest, info: ModelInfo, allowance: dict[str, int]) -> str:
    """One --dry_run line: the stage's thinking choice, what it means on this model and the max_tokens it gives."""
    wanted = (
        "as --effort / --thinking_budget ask"
        if request.effort or request.thinking_budget
        else {"default": "the model's own setting", "lowest": "the lowest setting the model allows"}.get(
            request.thinking, request.thinking
        )
    )
    p = plan(choose(request, info), info, allowance)
    return (
        f"thinking: {p.how} ({wanted}); max_tokens {p.max_tokens:,} = answer {p.answer_tokens:,} + "
        f"thinking {p.allowance:,}"
        + (" (capped at the model's output limit)" if p.answer_tokens + p.allowance > p.max_tokens else "")
    )
