"""The provider `openai`: OpenAI's API and OpenAI-compatible servers (vLLM, SGLang), and the Chat
Completions wire code that openrouter_provider.py reuses with its own `ChatDialect`: the adapter
(the official `openai.AsyncOpenAI` with `base_url` and its retries off) and the OpenAI Batch API
(`OpenAIBatcher`: the requests go up as a JSONL file, then a batch is created from it; OpenAI's own
API or any compatible server that implements the Files and Batch endpoints).

Every body is shaped from the model's registry entry (models.py):
- JSON answers: `response_format` `json_schema` with `strict: true` (the provider-safe schema subset)
  where the entry's output_mode is `structured`; else a forced function call; else
  `tool_choice: auto` plus an instruction (the client re-asks without a call). On OpenRouter the
  model's `supported_parameters` (read before the first call) can move a model down that list.
- Reasoning: OpenAI gets `reasoning_effort` (`none` to switch it off where the entry says so);
  OpenRouter gets `reasoning` only when a stage asks (`{"effort"}`, `{"max_tokens"}` or
  `{"enabled"}`, never `enabled: false` to a model whose reasoning is mandatory); a self-hosted
  server gets the chat template's `enable_thinking` switch. Reasoning text (`reasoning` or
  `reasoning_content`) goes to LLMResponse.thinking.
- A refusal (`message.refusal` set, content null: https://platform.openai.com/docs/guides/structured-outputs#refusals;
  the SDK's ChatCompletionMessage.refusal) becomes stop_reason "refusal" with the refusal text as the text.
- OpenAI always gets `max_completion_tokens`; sampling parameters go only where the entry lists them.
- OpenRouter: `provider.require_parameters` so that no parameter is silently dropped, and its own
  `usage.cost` prices the call.
Reads and writes nothing.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from .base import (
    ANSWER_WITH_TOOL,
    AnswerFormat,
    ProviderAdapter,
    ProviderSpec,
    WireResult,
    error_message,
    model_prefixes,
    parse_json_answer,
    parse_raw,
    status_failure,
)
from .batch import Outcome, ProviderBatcher, recorded_answer_format
from .errors import ProviderError, TransientError
from .models import ModelInfo
from .schema_subset import provider_schema
from .types import REFUSAL, LLMRequest, LLMResponse, Usage

FINISH_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": REFUSAL,
}
# OpenRouter's names of the parameters each output mode needs (a model's `supported_parameters`).
STRUCTURED_PARAMETERS = frozenset({"response_format", "structured_outputs"})
NON_STANDARD = ("top_k", "reasoning", "chat_template_kwargs", "provider")


NAME = "openai"  # the --provider value (SPEC below)
SELF_HOSTED_CHOICES = ("auto", "yes", "no")


@dataclass(frozen=True)
class ChatDialect:
    """What one family of Chat Completions servers is sent differently."""

    max_tokens_field: str  # max_completion_tokens (OpenAI) or max_tokens
    model_lookup: bool  # a free GET /models/{id} tells whether a model is served; else the model list
    supported_parameters: bool  # the model list gives each model's supported_parameters (OpenRouter)
    reasoning: Callable[[LLMRequest, ModelInfo], dict[str, Any] | None] | None = None
    # ^ a `reasoning` object (OpenRouter) instead of reasoning_effort / the chat template's switch
    require_parameters: bool = False  # OpenRouter's provider.require_parameters: no parameter silently dropped


OPENAI = ChatDialect(max_tokens_field="max_completion_tokens", model_lookup=True, supported_parameters=False)


def is_self_hosted(base_url: str | None, choice: str | None = None) -> bool:
    """An OpenAI-compatible server of the user's own (vLLM, SGLang, ...) rather than OpenAI's API (or a proxy or
    Azure deployment of it): `choice` yes / no (--self_hosted) says so; auto (default) guesses from the base URL,
    a --base_url that does not name api.openai.com being self-hosted."""
    if choice in ("yes", "no"):
        return choice == "yes"
    return bool(base_url) and "api.openai.com" not in base_url


def answer_format(request: LLMRequest, info: ModelInfo, supported: frozenset[str] | None = None) -> AnswerFormat:
    """How a JSON answer to `request` is asked for; `supported` is OpenRouter's parameter list of the model."""
    if request.tool is None:
        return AnswerFormat(None, None)
    structured = info.output_mode == "structured" and info.structured_output
    forced = info.forced_tool
    if supported is not None:
        structured = structured and bool(supported & STRUCTURED_PARAMETERS)
        forced = forced and "tool_choice" in supported
    if structured:
        return AnswerFormat("structured", request.tool.name)
    return AnswerFormat("tool" if forced else "auto_tool", request.tool.name)


def render_chat(
    request: LLMRequest,
    dialect: ChatDialect,
    info: ModelInfo,
    *,
    self_hosted: bool = False,
    supported: frozenset[str] | None = None,
) -> dict[str, Any]:
    """The Chat Completions body for `request` in `dialect`."""
    fmt = answer_format(request, info, supported)
    messages: list[dict[str, Any]] = []
    system_text = "\n\n".join(block.text for block in request.system)
    if fmt.mode == "auto_tool":
        system_text = "\n\n".join(part for part in (system_text, ANSWER_WITH_TOOL.format(name=fmt.tool_name)) if part)
    if system_text:
        messages.append({"role": "system", "content": system_text})
    messages += [{"role": m.role, "content": m.content} for m in request.messages]
    body: dict[str, Any] = {"model": request.model, "messages": messages}
    body[dialect.max_tokens_field] = request.max_tokens
    if fmt.mode == "structured":
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {
                "name": request.tool.name,
                "schema": provider_schema(request.tool.input_schema),
                "strict": True,
            },
        }
    elif fmt.mode is not None:
        body["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": request.tool.name,
                    "description": request.tool.description,
                    "parameters": provider_schema(request.tool.input_schema),
                },
            }
        ]
        body["tool_choice"] = (
            {"type": "function", "function": {"name": request.tool.name}} if fmt.mode == "tool" else "auto"
        )
    for name in ("temperature", "top_p", "top_k"):
        if getattr(request, name) is not None and name in info.sampling_params:
            body[name] = getattr(request, name)
    if dialect.reasoning is not None:
        reasoning = dialect.reasoning(request, info)
        if reasoning:
            body["reasoning"] = reasoning
        if dialect.require_parameters:
            body["provider"] = {"require_parameters": True}
    elif self_hosted and not info.known:
        if request.reasoning is not None:  # vLLM/SGLang pass these to the chat template (Qwen 3's switch)
            body["chat_template_kwargs"] = {"enable_thinking": request.reasoning}
    elif request.effort:
        body["reasoning_effort"] = request.effort
    elif request.reasoning is False and info.thinking_off == "none":
        body["reasoning_effort"] = "none"
    return body


def parse_openai_completion(
    completion: Any, fmt: AnswerFormat, model: str, provider: str, request_id: str | None
) -> LLMResponse:
    """An SDK ChatCompletion (or its dict form, as in a batch output file) -> LLMResponse. A structured
    answer is the message content; a tool answer the named function call's arguments. JSON that does
    not parse gives tool_input None and keeps the raw text in extra['raw_tool_arguments'] for the
    re-ask. OpenRouter's `usage.cost` goes to extra['provider_cost_usd']."""
    data = completion if isinstance(completion, dict) else completion.model_dump()
    choices = data.get("choices") or []
    if not choices:
        raise TransientError(f"{provider} answered without choices")
    choice = choices[0]
    message = choice.get("message") or {}
    extra: dict[str, Any] = {}
    tool_input = None
    refusal = message.get("refusal")
    if fmt.mode == "structured":
        tool_input, extra = parse_json_answer(message.get("content") or "")
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        if fmt.mode in ("tool", "auto_tool") and function.get("name") == fmt.tool_name:
            arguments = function.get("arguments") or ""
            try:
                tool_input = json.loads(arguments)
            except json.JSONDecodeError:
                extra["raw_tool_arguments"] = arguments
            break
    finish = choice.get("finish_reason") or "unknown"
    stop_reason = REFUSAL if refusal is not None else FINISH_REASONS.get(finish, finish)
    if stop_reason == REFUSAL:  # nothing of a refused answer is the answer
        tool_input, extra = None, {}
    if (
        fmt.mode != "structured"
        and (tool_input is not None or "raw_tool_arguments" in extra)
        and stop_reason == "end_turn"
    ):
        stop_reason = "tool_use"  # a forced function call ends with "stop" on OpenAI
    usage = data.get("usage") or {}
    if isinstance(usage.get("cost"), (int, float)):
        extra["provider_cost_usd"] = float(usage["cost"])
    details = usage.get("prompt_tokens_details") or {}
    cached = details.get("cached_tokens") or 0
    written = details.get("cache_write_tokens") or 0
    return LLMResponse(
        text=refusal if refusal is not None else message.get("content") or "",
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
    """A Chat Completions server: provider `name` speaking `dialect` (OpenAI or an OpenAI-compatible server;
    OpenRouter); `self_hosted`: a server of the user's own (is_self_hosted)."""

    def __init__(
        self,
        name: str,
        dialect: ChatDialect,
        api_key: str,
        base_url: str | None,
        timeout_s: float,
        models,
        self_hosted: bool = False,
    ):
        self.name = name
        self.dialect = dialect
        super().__init__(models)
        self.base_url = base_url
        self.self_hosted = self_hosted
        self.timeout_s = timeout_s
        self.supported: dict[str, frozenset[str]] = {}  # supported_parameters per model, where the list gives them
        import openai  # imported on first use: the SDKs take seconds to import

        self.sdk_module = openai
        self.sdk = openai.AsyncOpenAI(api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout_s)

    def answer_format(self, request: LLMRequest) -> AnswerFormat:
        return answer_format(request, self.info(request.model), self.supported.get(request.model))

    def render(self, request: LLMRequest) -> dict[str, Any]:
        return render_chat(
            request,
            self.dialect,
            self.info(request.model),
            self_hosted=self.self_hosted,
            supported=self.supported.get(request.model),
        )

    async def model_status(self, model: str) -> str | None:
        """None when the server serves `model`, else why not. OpenAI: the free model lookup; OpenRouter
        and self-hosted servers: the model list (OpenRouter's also gives the model's supported_parameters)."""
        try:
            if self.dialect.model_lookup and not self.self_hosted:
                await self.sdk.models.retrieve(model)
                return None
            listed = {entry.id: entry async for entry in self.sdk.models.list()}
        except self.sdk_module.NotFoundError:
            return "404 from the API"
        except Exception as exc:
            raise self.translate_error(exc) from None
        if model not in listed:
            return f"not in the model list of {self.base_url or self.name}"
        parameters = (listed[model].model_extra or {}).get("supported_parameters")
        if self.dialect.supported_parameters and isinstance(parameters, list):
            self.supported[model] = frozenset(parameters)
        return None

    async def send(self, request: LLMRequest) -> WireResult:
        body = self.render(request)
        standard = {k: v for k, v in body.items() if k not in NON_STANDARD}
        extra_body = {k: body[k] for k in NON_STANDARD if k in body}
        try:
            raw = await self.sdk.chat.completions.with_raw_response.create(
                **standard, extra_body=extra_body or None, timeout=self.timeout_s
            )
            completion = await parse_raw(raw)
        except Exception as exc:
            raise self.translate_error(exc) from None
        headers = dict(raw.headers)
        request_id = headers.get("x-request-id")
        return WireResult(
            parse_openai_completion(completion, self.answer_format(request), request.model, self.name, request_id),
            headers,
        )

    async def aclose(self) -> None:
        await self.sdk.close()


class OpenAIBatcher(ProviderBatcher):
    """The OpenAI Batch API: the Chat Completions bodies go up as a JSONL file (purpose "batch"), a
    batch is created from it, and the output and error files are read once it has ended."""

    provider = NAME
    endpoint = "/v1/chat/completions"
    ended_statuses = ("completed", "failed", "expired", "cancelled")

    async def _create(self, batch: dict[str, LLMRequest]) -> tuple[str, dict]:
        lines = "".join(
            json.dumps(
                {"custom_id": key, "method": "POST", "url": self.endpoint, "body": self.adapter.render(request)},
                ensure_ascii=False,
            )
            + "\n"
            for key, request in batch.items()
        )
        upload = await self.sdk.files.create(
            file=("spt_batch.jsonl", lines.encode("utf-8"), "application/jsonl"), purpose="batch"
        )
        created = await self.sdk.batches.create(
            input_file_id=upload.id, endpoint=self.endpoint, completion_window="24h"
        )
        return created.id, {"input_file_id": upload.id}

    async def _ended(self, batch_id: str) -> Any | None:
        status = await self.sdk.batches.retrieve(batch_id)
        return status if status.status in self.ended_statuses else None

    async def _results(self, batch_id: str, status: Any, record: dict) -> AsyncIterator[tuple[str, Outcome]]:
        if status.status == "failed":  # the input file failed validation: no request ran
            reasons = (
                "; ".join(f"{e.code}: {e.message}" for e in (status.errors.data or [])[:3])
                if status.errors
                else "no reason given"
            )
            for key in record["requests"]:
                yield key, ProviderError(f"openai batch {batch_id} failed validation: {reasons}")
            return
        for file_id in (status.output_file_id, status.error_file_id):
            if not file_id:
                continue
            content = await self.sdk.files.content(file_id)
            for line in content.text.splitlines():
                if line.strip():
                    entry = json.loads(line)
                    yield entry["custom_id"], self._outcome(entry, record["requests"].get(entry["custom_id"], {}))

    def _outcome(self, entry: dict, meta: dict) -> Outcome:
        """One line of an output or error file -> the response, or the error of that request."""
        response = entry.get("response") or {}
        status_code = response.get("status_code")
        if status_code == 200:
            try:
                return parse_openai_completion(
                    response.get("body") or {},
                    recorded_answer_format(meta),
                    meta.get("model", ""),
                    self.provider,
                    response.get("request_id"),
                )
            except TransientError as exc:  # an answer without choices: ask again
                return exc
        if status_code is not None:
            return status_failure(
                "openai batch request", status_code, error_message(response.get("body"), "no message"), None
            )
        error = entry.get("error") or {}  # batch_expired / batch_cancelled: never run, so resubmit it
        return TransientError(f"openai batch request {error.get('code', 'failed')}: {error.get('message', '')}")


SPEC = ProviderSpec(
    name=NAME,
    title="OpenAI",
    render=lambda request, info, self_hosted=False: render_chat(request, OPENAI, info, self_hosted=self_hosted),
    answer_format=answer_format,
    adapter=lambda api_key, base_url, timeout_s, models, self_hosted: OpenAIAdapter(
        NAME, OPENAI, api_key, base_url, timeout_s, models, self_hosted
    ),
    api_key_variable="OPENAI_API_KEY",
    base_url_variable="OPENAI_BASE_URL",
    names_model=model_prefixes("gpt-", "o1", "o3", "o4", "chatgpt-"),
    model_hint="gpt-*/o*",
    batcher=OpenAIBatcher,
    batch_about="the Batch API, also on a compatible --base_url",
    thinking_off=("none",),
    self_hosted=is_self_hosted,
    serves_stage_2=True,
)
