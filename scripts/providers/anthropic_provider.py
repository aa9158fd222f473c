"""The Anthropic Messages API adapter (official `anthropic.AsyncAnthropic`, its retries off).

Forced tool use, prompt-cache breakpoints (tool definition, SystemBlock/Message with cache=True;
at most 4, the last 4 kept) and extended thinking (with thinking the API refuses a forced tool, so
tool_choice is `auto` and the system prompt asks for the tool; the client re-asks if it is not
used). Reads and writes nothing.
"""
from __future__ import annotations

from typing import Any

from .base import ANSWER_WITH_TOOL, ProviderAdapter, WireResult, parse_raw
from .types import LLMRequest, LLMResponse, Usage

MAX_CACHE_BREAKPOINTS = 4
EPHEMERAL = {"type": "ephemeral"}


def render_anthropic(request: LLMRequest) -> dict[str, Any]:
    """The Messages API body for `request`."""
    body: dict[str, Any] = {"model": request.model, "max_tokens": request.max_tokens}
    breakpoints: list[dict] = []   # the blocks that carry cache_control, in prompt order
    if request.tool is not None:
        tool = {"name": request.tool.name, "description": request.tool.description,
                "input_schema": request.tool.input_schema, "cache_control": dict(EPHEMERAL)}
        body["tools"] = [tool]
        breakpoints.append(tool)
        if request.thinking_budget:
            body["tool_choice"] = {"type": "auto"}
        else:
            body["tool_choice"] = {"type": "tool", "name": request.tool.name}
    system = []
    for block in request.system:
        rendered = {"type": "text", "text": block.text}
        if block.cache:
            rendered["cache_control"] = dict(EPHEMERAL)
            breakpoints.append(rendered)
        system.append(rendered)
    if request.tool is not None and request.thinking_budget:
        system.append({"type": "text", "text": ANSWER_WITH_TOOL.format(name=request.tool.name)})
    if system:
        body["system"] = system
    messages = []
    for message in request.messages:
        block = {"type": "text", "text": message.content}
        if message.cache:
            block["cache_control"] = dict(EPHEMERAL)
            breakpoints.append(block)
        messages.append({"role": message.role, "content": [block]})
    body["messages"] = messages
    for surplus in breakpoints[:-MAX_CACHE_BREAKPOINTS]:
        del surplus["cache_control"]
    if request.thinking_budget:
        body["thinking"] = {"type": "enabled", "budget_tokens": request.thinking_budget}
    for name in ("temperature", "top_p", "top_k"):
        if getattr(request, name) is not None:
            body[name] = getattr(request, name)
    return body


def parse_anthropic_message(message: Any, tool_name: str | None, model: str, request_id: str | None) -> LLMResponse:
    """An SDK Message (or its dict form) -> LLMResponse; `tool_name` is the forced tool, if any."""
    data = message if isinstance(message, dict) else message.model_dump()
    texts, thinking, tool_input = [], [], None
    for block in data.get("content") or []:
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text", ""))
        elif kind == "thinking":
            thinking.append(block.get("thinking", ""))
        elif kind == "tool_use" and tool_name is not None and block.get("name") == tool_name:
            tool_input = block.get("input")
    usage = data.get("usage") or {}
    return LLMResponse(
        text="".join(texts),
        tool_input=tool_input,
        stop_reason=data.get("stop_reason") or "unknown",
        usage=Usage(
            input_tokens=usage.get("input_tokens") or 0,
            output_tokens=usage.get("output_tokens") or 0,
            cache_creation_input_tokens=usage.get("cache_creation_input_tokens") or 0,
            cache_read_input_tokens=usage.get("cache_read_input_tokens") or 0,
        ),
        request_id=request_id or data.get("id"),
        model=data.get("model") or model,
        provider="anthropic",
        thinking="".join(thinking),
    )


class AnthropicAdapter(ProviderAdapter):
    name = "anthropic"

    def __init__(self, api_key: str, base_url: str | None, timeout_s: float):
        self.base_url = base_url
        self.timeout_s = timeout_s
        import anthropic   # imported on first use: the SDKs take seconds to import

        self.sdk_module = anthropic
        self.sdk = anthropic.AsyncAnthropic(api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout_s)

    def render(self, request: LLMRequest) -> dict[str, Any]:
        return render_anthropic(request)

    async def send(self, request: LLMRequest) -> WireResult:
        try:
            raw = await self.sdk.messages.with_raw_response.create(**self.render(request), timeout=self.timeout_s)
            message = await parse_raw(raw)
        except Exception as exc:
            raise self.translate_error(exc) from None
        headers = dict(raw.headers)
        tool_name = request.tool.name if request.tool else None
        return WireResult(parse_anthropic_message(message, tool_name, request.model, headers.get("request-id")), headers)

    async def aclose(self) -> None:
        await self.sdk.close()

