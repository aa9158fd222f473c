"""The Chat Completions adapter for OpenAI, OpenRouter and OpenAI-compatible servers (vLLM, SGLang),
through the official `openai.AsyncOpenAI` with `base_url` and its retries off.

Forced tool use is a forced function call. Reasoning: OpenRouter gets `reasoning` explicitly
(`{"enabled": bool}` or `{"max_tokens": thinking_budget}`), OpenAI a `reasoning_effort` sized from
the budget; reasoning text (`reasoning` or `reasoning_content`) goes to LLMResponse.thinking.
`top_k` (not an OpenAI parameter) is passed in the body for OpenRouter/compatible servers.
Reads and writes nothing.
"""
from __future__ import annotations

import json
from typing import Any

from .base import ProviderAdapter, WireResult, parse_raw
from .errors import TransientError
from .types import LLMRequest, LLMResponse, Usage

FINISH_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use",
                  "function_call": "tool_use", "content_filter": "refusal"}


def reasoning_effort(budget: int) -> str:
    """OpenAI has no token budget for reasoning; map ours onto its effort levels."""
    return "low" if budget < 4096 else "medium" if budget < 16384 else "high"


def is_self_hosted(base_url: str | None) -> bool:
    """An OpenAI-compatible server (vLLM, SGLang, ...) rather than OpenAI's own API."""
    return bool(base_url) and "api.openai.com" not in base_url


def render_openai(request: LLMRequest, provider: str, base_url: str | None = None) -> dict[str, Any]:
    """The Chat Completions body for `request` on `provider` (openai or openrouter)."""
    messages: list[dict[str, Any]] = []
    system_text = "\n\n".join(block.text for block in request.system)
    if system_text:
        messages.append({"role": "system", "content": system_text})
    messages += [{"role": m.role, "content": m.content} for m in request.messages]
    body: dict[str, Any] = {"model": request.model, "messages": messages}
    body["max_completion_tokens" if provider == "openai" else "max_tokens"] = request.max_tokens
    if request.tool is not None:
        body["tools"] = [{"type": "function", "function": {
            "name": request.tool.name, "description": request.tool.description,
            "parameters": request.tool.input_schema}}]
        body["tool_choice"] = {"type": "function", "function": {"name": request.tool.name}}
    for name in ("temperature", "top_p", "top_k"):
        if getattr(request, name) is not None:
            body[name] = getattr(request, name)
    if provider == "openrouter":
        if request.thinking_budget:
            body["reasoning"] = {"max_tokens": request.thinking_budget}
        elif request.reasoning is not None:
            body["reasoning"] = {"enabled": request.reasoning}
    elif request.thinking_budget:
        body["reasoning_effort"] = reasoning_effort(request.thinking_budget)
    elif request.reasoning is not None and is_self_hosted(base_url):
        # vLLM/SGLang pass these to the model's chat template (Qwen 3's thinking switch).
        body["chat_template_kwargs"] = {"enable_thinking": request.reasoning}
    return body


def parse_openai_completion(completion: Any, tool_name: str | None, model: str, provider: str,
                            request_id: str | None) -> LLMResponse:
    """An SDK ChatCompletion (or its dict form, as in a batch output file) -> LLMResponse; `tool_name`
    is the forced tool, if any. Tool arguments that are not JSON give tool_input None and keep the
    raw text in extra['raw_tool_arguments'] for the re-ask."""
    data = completion if isinstance(completion, dict) else completion.model_dump()
    choices = data.get("choices") or []
    if not choices:
        raise TransientError(f"{provider} answered without choices")
    choice = choices[0]
    message = choice.get("message") or {}
    extra: dict[str, Any] = {}
    tool_input = None
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        if tool_name is not None and function.get("name") == tool_name:
            arguments = function.get("arguments") or ""
            try:
                tool_input = json.loads(arguments)
            except json.JSONDecodeError:
                extra["raw_tool_arguments"] = arguments
            break
    finish = choice.get("finish_reason") or "unknown"
    stop_reason = FINISH_REASONS.get(finish, finish)
    if (tool_input is not None or "raw_tool_arguments" in extra) and stop_reason == "end_turn":
        stop_reason = "tool_use"   # a forced function call ends with "stop" on OpenAI
    usage = data.get("usage") or {}
    details = usage.get("prompt_tokens_details") or {}
    cached = details.get("cached_tokens") or 0
    written = details.get("cache_write_tokens") or 0
    return LLMResponse(
        text=message.get("content") or "",
        tool_input=tool_input,
        stop_reason=stop_reason,
        usage=Usage(
            input_tokens=max(0, (usage.get("prompt_tokens") or 0) - cached - written),
            output_tokens=usage.get("completion_tokens") or 0,
            cache_creation_input_tokens=written,
            cache_read_input_tokens=cached,
        ),
        request_id=request_id or data.get("id"),
        model=data.get("model") or model,
        provider=provider,
        thinking=message.get("reasoning") or message.get("reasoning_content") or "",
        extra=extra,
    )


class OpenAIAdapter(ProviderAdapter):
    """`provider` is 'openai' or 'openrouter' (also used for any OpenAI-compatible server)."""

    def __init__(self, provider: str, api_key: str, base_url: str | None, timeout_s: float):
        self.name = provider
        self.base_url = base_url
        self.timeout_s = timeout_s
        import openai   # imported on first use: the SDKs take seconds to import

        self.sdk_module = openai
        self.sdk = openai.AsyncOpenAI(api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout_s)

    def render(self, request: LLMRequest) -> dict[str, Any]:
        return render_openai(request, self.name, self.base_url)

    async def send(self, request: LLMRequest) -> WireResult:
        body = self.render(request)
        non_standard = ("top_k", "reasoning", "chat_template_kwargs")
        standard = {k: v for k, v in body.items() if k not in non_standard}
        extra_body = {k: body[k] for k in non_standard if k in body}
        try:
            raw = await self.sdk.chat.completions.with_raw_response.create(
                **standard, extra_body=extra_body or None, timeout=self.timeout_s)
            completion = await parse_raw(raw)
        except Exception as exc:
            raise self.translate_error(exc) from None
        headers = dict(raw.headers)
        request_id = headers.get("x-request-id")
        tool_name = request.tool.name if request.tool else None
        return WireResult(parse_openai_completion(completion, tool_name, request.model, self.name, request_id), headers)

    async def aclose(self) -> None:
        await self.sdk.close()

