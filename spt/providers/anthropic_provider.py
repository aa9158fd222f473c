"""The Anthropic Messages API adapter (official `anthropic.AsyncAnthropic`, its retries off).

Every body is shaped from the model's registry entry (models.py):
- JSON answers: `output_config.format` (`json_schema`, the provider-safe schema subset) where the
  entry's output_mode is `structured`; a forced tool where it is `tool` and no thinking is asked
  for; otherwise `tool_choice: auto` plus an instruction in the system prompt (the client
  re-asks when no tool call comes back). Thinking blocks are never read as the answer.
- Thinking: `thinking.budget_tokens` for budget models, `thinking: adaptive` + `output_config.effort`
  for adaptive ones (always-on models get only the effort); switching thinking off uses the
  entry's `thinking_off` type (`disabled` or `between_tools`) and is left out where the model
  cannot switch it off.
- Sampling parameters only where the entry lists them (check_settings refuses the rest earlier); where
  the entry says `sampling_one_of`, temperature alone.
- `show_thinking` asks models whose thinking text is omitted by default (`thinking_display`) for it.
- Prompt-cache breakpoints (tool definition, SystemBlock/Message with cache=True; at most 4, the
  last 4 kept), with the 1-hour TTL in Message Batches bodies (batch.py).
- Requests whose max_tokens is above the SDK's non-streaming limit are streamed.
- `stop_reason: "refusal"` (streaming classifiers; a 200 answer billed up to the refusal, with
  `stop_details`: https://platform.claude.com/docs/en/test-and-evaluate/strengthen-guardrails/
  handle-streaming-refusals) is kept as it is: its text, never parsed as the answer, and its stop_details.
Reads and writes nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from .base import (
    ANSWER_WITH_TOOL,
    AnswerFormat,
    ProviderAdapter,
    ProviderSpec,
    WireResult,
    model_prefixes,
    parse_json_answer,
    parse_raw,
)
from .batch import Outcome, ProviderBatcher, recorded_answer_format
from .errors import ProviderError, TransientError
from .models import ModelInfo
from .schema_subset import provider_schema
from .types import REFUSAL, LLMRequest, LLMResponse, Usage

NAME = "anthropic"  # the --provider value (SPEC below)
MAX_CACHE_BREAKPOINTS = 4
EPHEMERAL = {"type": "ephemeral"}
# The Python SDK refuses a non-streaming call it expects to run over 10 minutes: 3600 s x max_tokens / 128,000
# > 600 s, i.e. max_tokens above 21,333 (anthropic/_base_client.py, _calculate_nonstreaming_timeout).
MAX_NON_STREAMING_TOKENS = 21_333


def answer_format(request: LLMRequest, info: ModelInfo) -> AnswerFormat:
    """How a JSON answer to `request` is asked for on this model."""
    if request.tool is None:
        return AnswerFormat(None, None)
    if info.output_mode == "structured" and info.structured_output:
        return AnswerFormat("structured", request.tool.name)
    thinks = request.thinking_budget or request.effort or info.thinking == "adaptive-always-on"
    if info.forced_tool and not thinks:
        return AnswerFormat("tool", request.tool.name)
    return AnswerFormat("auto_tool", request.tool.name)


def render_anthropic(request: LLMRequest, info: ModelInfo, cache_ttl: str = "5m") -> dict[str, Any]:
    """The Messages API body for `request` on the model `info` describes; `cache_ttl` "1h" marks every
    cache breakpoint with the 1-hour TTL (Message Batches)."""
    body: dict[str, Any] = {"model": request.model, "max_tokens": request.max_tokens}
    cache_mark = dict(EPHEMERAL, ttl="1h") if cache_ttl == "1h" else dict(EPHEMERAL)
    output_config: dict[str, Any] = {}
    fmt = answer_format(request, info)
    breakpoints: list[dict] = []  # the blocks that carry cache_control, in prompt order
    if fmt.mode == "structured":
        output_config["format"] = {"type": "json_schema", "schema": provider_schema(request.tool.input_schema)}
    elif fmt.mode is not None:
        tool = {
            "name": request.tool.name,
            "description": request.tool.description,
            "input_schema": provider_schema(request.tool.input_schema),
            "cache_control": dict(cache_mark),
        }
        body["tools"] = [tool]
        breakpoints.append(tool)
        body["tool_choice"] = {"type": "tool", "name": request.tool.name} if fmt.mode == "tool" else {"type": "auto"}
    system = []
    for block in request.system:
        rendered = {"type": "text", "text": block.text}
        if block.cache:
            rendered["cache_control"] = dict(cache_mark)
            breakpoints.append(rendered)
        system.append(rendered)
    if fmt.mode == "auto_tool":
        system.append({"type": "text", "text": ANSWER_WITH_TOOL.format(name=request.tool.name)})
    if system:
        body["system"] = system
    messages = []
    for message in request.messages:
        block = {"type": "text", "text": message.content}
        if message.cache:
            block["cache_control"] = dict(cache_mark)
            breakpoints.append(block)
        messages.append({"role": message.role, "content": [block]})
    body["messages"] = messages
    for surplus in breakpoints[:-MAX_CACHE_BREAKPOINTS]:
        del surplus["cache_control"]
    if request.thinking_budget:
        body["thinking"] = {"type": "enabled", "budget_tokens": request.thinking_budget}
    elif request.effort:
        if info.thinking == "adaptive":
            body["thinking"] = {"type": "adaptive"}
        output_config["effort"] = request.effort
    elif request.reasoning is False and info.thinking != "none" and info.thinking_off in ("disabled", "between_tools"):
        body["thinking"] = {"type": info.thinking_off}
    elif request.reasoning is True and info.thinking in ("adaptive", "adaptive-always-on"):
        body["thinking"] = {"type": "adaptive"}
    if (
        request.show_thinking
        and info.thinking_display
        and info.thinking in ("adaptive", "adaptive-always-on")
        and body.get("thinking", {"type": "adaptive"})["type"] == "adaptive"
    ):
        # Claude 5.x (and Opus 4.7/4.8) return empty thinking text unless asked for its summary
        # (https://platform.claude.com/docs/en/models/sonnet-5-5/migration-guide, default display per model).
        body["thinking"] = {"type": "adaptive", "display": "summarized"}
    if output_config:
        body["output_config"] = output_config
    for name in ("temperature", "top_p", "top_k"):
        if getattr(request, name) is not None and name in info.sampling_params:
            body[name] = getattr(request, name)
    if info.sampling_one_of and "temperature" in body:
        # Haiku 4.5 refuses temperature and top_p together
        # (https://platform.claude.com/docs/models/haiku-4-5/migration-guide)
        body.pop("top_p", None)
    return body


def parse_anthropic_message(message: Any, fmt: AnswerFormat, model: str, request_id: str | None) -> LLMResponse:
    """An SDK Message (or its dict form) -> LLMResponse. Only `text` blocks make the text (a structured
    answer's JSON); `thinking` blocks, wherever they stand, go to `thinking` and are never parsed."""
    data = message if isinstance(message, dict) else message.model_dump()
    texts, thinking, tool_input, extra = [], [], None, {}
    for block in data.get("content") or []:
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text", ""))
        elif kind == "thinking":
            thinking.append(block.get("thinking") or "")
        elif kind == "tool_use" and fmt.tool_name is not None and block.get("name") == fmt.tool_name:
            tool_input = block.get("input")
    text = "".join(texts)
    stop_reason = data.get("stop_reason") or "unknown"
    if stop_reason == REFUSAL:  # its text (if any) is what came before the refusal, never the answer
        tool_input = None
        if data.get("stop_details"):
            extra["stop_details"] = data["stop_details"]
    elif fmt.mode == "structured":
        tool_input, extra = parse_json_answer(text)
    usage = data.get("usage") or {}
    return LLMResponse(
        text=text,
        tool_input=tool_input,
        stop_reason=stop_reason,
        usage=Usage(
            input_tokens=usage.get("input_tokens") or 0,
            output_tokens=usage.get("output_tokens") or 0,
            cache_creation_input_tokens=usage.get("cache_creation_input_tokens") or 0,
            cache_read_input_tokens=usage.get("cache_read_input_tokens") or 0,
        ),
        request_id=request_id or data.get("id"),
        model=data.get("model") or model,
        provider=NAME,
        thinking="\n\n".join(part for part in thinking if part),
        extra=extra,
    )


class AnthropicAdapter(ProviderAdapter):
    name = NAME

    def __init__(self, api_key: str, base_url: str | None, timeout_s: float, models):
        super().__init__(models)
        self.base_url = base_url
        self.timeout_s = timeout_s
        import anthropic  # imported on first use: the SDKs take seconds to import

        self.sdk_module = anthropic
        self.sdk = anthropic.AsyncAnthropic(api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout_s)

    def answer_format(self, request: LLMRequest) -> AnswerFormat:
        return answer_format(request, self.info(request.model))

    def render(self, request: LLMRequest, cache_ttl: str = "5m") -> dict[str, Any]:
        return render_anthropic(request, self.info(request.model), cache_ttl)

    async def send(self, request: LLMRequest) -> WireResult:
        body = self.render(request)
        try:
            if request.max_tokens > MAX_NON_STREAMING_TOKENS:
                async with self.sdk.messages.stream(**body, timeout=self.timeout_s) as stream:
                    message = await stream.get_final_message()
                    headers = dict(stream.response.headers)
            else:
                raw = await self.sdk.messages.with_raw_response.create(**body, timeout=self.timeout_s)
                message = await parse_raw(raw)
                headers = dict(raw.headers)
        except Exception as exc:
            raise self.translate_error(exc) from None
        return WireResult(
            parse_anthropic_message(message, self.answer_format(request), request.model, headers.get("request-id")),
            headers,
        )

    async def model_status(self, model: str) -> str | None:
        """None when the API serves `model`; else why not (a 404 from the free Models API)."""
        try:
            found = await self.sdk.models.retrieve(model)
        except self.sdk_module.NotFoundError:
            return "404 from the API"
        except Exception as exc:
            raise self.translate_error(exc) from None
        lifecycle = getattr(found, "lifecycle", None)
        return "retired (per the Models API)" if lifecycle == "retired" else None

    async def aclose(self) -> None:
        await self.sdk.close()


class AnthropicBatcher(ProviderBatcher):
    """Anthropic Message Batches: one create call with every request's Messages body."""

    provider = NAME
    # The 1-hour cache TTL: a batch can take longer than 5 minutes to run, so the docs recommend it for shared
    # context (https://docs.claude.com/ja/docs/build-with-claude/batch-processing, "prompt caching" section).
    cache_ttl = "1h"

    async def _create(self, batch: dict[str, LLMRequest]) -> tuple[str, dict]:
        requests = [
            {"custom_id": key, "params": self.adapter.render(request, cache_ttl=self.cache_ttl)}
            for key, request in batch.items()
        ]
        created = await self.sdk.messages.batches.create(requests=requests)
        return created.id, {}

    async def _ended(self, batch_id: str) -> Any | None:
        status = await self.sdk.messages.batches.retrieve(batch_id)
        return status if status.processing_status == "ended" else None

    async def _results(self, batch_id: str, status: Any, record: dict) -> AsyncIterator[tuple[str, Outcome]]:
        async for entry in await self.sdk.messages.batches.results(batch_id):
            meta = record["requests"].get(entry.custom_id, {})
            result = entry.result
            if result.type == "succeeded":
                yield (
                    entry.custom_id,
                    parse_anthropic_message(result.message, recorded_answer_format(meta), meta.get("model", ""), None),
                )
                continue
            detail = getattr(getattr(result, "error", None), "error", None)
            message = getattr(detail, "message", "") or result.type
            if getattr(detail, "type", "") == "invalid_request_error":
                yield entry.custom_id, ProviderError(f"anthropic batch request failed: {message}")
            else:
                yield entry.custom_id, TransientError(f"anthropic batch request {result.type}: {message}")


SPEC = ProviderSpec(
    name=NAME,
    title="Anthropic",
    render=lambda request, info, self_hosted=False: render_anthropic(request, info),
    answer_format=answer_format,
    adapter=lambda api_key, base_url, timeout_s, models, self_hosted: AnthropicAdapter(
        api_key, base_url, timeout_s, models
    ),
    api_key_variable="ANTHROPIC_API_KEY",
    base_url_variable="ANTHROPIC_BASE_URL",
    names_model=model_prefixes("claude-"),
    model_hint="claude-*",
    batcher=AnthropicBatcher,
    batch_about="Message Batches",
    thinking_off=("disabled", "between_tools"),
    adaptive_thinks_by_default=False,
)
