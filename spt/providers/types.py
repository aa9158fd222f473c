"""The provider layer's one narrow interface: what a stage asks for and what it gets back.

Every API stage builds `LLMRequest`s and receives `LLMResponse`s from `LLMClient.complete`
(spt/providers/client.py); which provider answers (anthropic, openai, openrouter, an
OpenAI-compatible server, mock) is invisible to the stage. Reads and writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

REFUSAL = "refusal"  # the normalised stop_reason of a refused answer


@dataclass(frozen=True)
class SystemBlock:
    """One block of the system prompt; `cache=True` puts a prompt-cache breakpoint after it."""

    text: str
    cache: bool = False


@dataclass(frozen=True)
class Message:
    """One conversation turn; `cache=True` puts a prompt-cache breakpoint after it."""

    role: Literal["user", "assistant"]
    content: str
    cache: bool = False


@dataclass(frozen=True)
class Tool:
    """The JSON answer a request wants: asked for through the model's native schema mode, a forced tool
    call or a tool offered with an instruction (see the model registry); validated against input_schema."""

    name: str
    description: str
    input_schema: dict[str, Any]


@dataclass(frozen=True)
class LLMRequest:
    model: str
    messages: tuple[Message, ...]
    system: tuple[SystemBlock, ...] = ()
    tool: Tool | None = None  # the answer must be this tool's input (JSON)
    max_tokens: int = 4096
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    thinking_budget: int | None = None  # budget-style thinking tokens (budget models only); None = off
    effort: str | None = None  # adaptive thinking / reasoning effort (low ... max); None = model default
    reasoning: bool | None = None  # switch thinking/reasoning on or off explicitly; None = not asked
    thinking: str = "default"  # the stage's choice: default | lowest (thinking.py); max_tokens is then
    # the answer's budget and the client adds the thinking allowance
    show_thinking: bool = False  # ask for the thinking text where the model omits it by default
    sample_index: int = 0  # distinguishes repeated samples of one identical request
    label: str = ""  # for logs and the progress bar only; not sent, not cached


@dataclass
class Usage:
    input_tokens: int = 0  # uncached input tokens
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0

    def __iadd__(self, other: Usage) -> Usage:
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cache_creation_input_tokens += other.cache_creation_input_tokens
        self.cache_read_input_tokens += other.cache_read_input_tokens
        return self


@dataclass
class LLMResponse:
    text: str  # the answer text ("" for a pure tool call)
    tool_input: dict[str, Any] | None  # the validated tool input when the request had a tool
    stop_reason: str  # provider's stop reason, normalised: end_turn|tool_use|max_tokens|...
    usage: Usage
    request_id: str | None
    model: str
    provider: str
    thinking: str = ""  # reasoning text, kept apart from `text`
    cost_usd: float = 0.0  # what this response cost (0 when served from the response cache)
    from_cache: bool = False  # served from the local response cache (paid by an earlier run)
    attempts: int = 1  # calls made, re-asks after invalid tool output included
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def refused(self) -> bool:
        """The model refused (stop_reason "refusal"); `text` holds what it said (OpenAI's `refusal` text,
        or the text Claude wrote before it stopped) and extra['stop_details'] Anthropic's category and
        explanation when sent."""
        return self.stop_reason == REFUSAL
