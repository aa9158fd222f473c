"""The fake OpenAI API: the OpenAI rule table (OPENAI_MODELS), Chat Completions (`POST
/v1/chat/completions`: tools, forced tool_choice, strict response_format, reasoning models, prefix
caching, streaming, refusals; also the answers of OpenRouter and of self-hosted `served_models`), the
Models API, and the Files + Batch API, as the methods of the `OpenAIAPI` part of FakeProviderServer;
its error bodies, quota error, rate-limit headers and list prices; `API` declares the part to the server
(common.FakeApi).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from .common import (
    BILLING_FAULTS,
    ERROR_MESSAGES,
    FakeApi,
    LedgerEntry,
    Route,
    _duration,
    _internal_error,
    _pieces,
    _Plan,
    _Reject,
    _subschemas,
    _types,
    bearer_auth,
    canonical_json,
    count_tokens,
    list_price_usd,
    request_key,
)

# The documentation tags this part's rule comments cite (with common.SOURCES: fake_provider.SOURCES).
SOURCES = {
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
}

OPENAI_REFUSAL_TEXT = "I'm sorry, but I can't help with that request."
OPENAI_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    404: "invalid_request_error",
    429: "rate_limit_exceeded",
    500: "server_error",
    503: "server_error",
}


# --------------------------------------------------------------------------- OpenAI rule table


@dataclass(frozen=True)
class OpenAIRules:
    id: str
    reasoning: bool  # a reasoning model: max_completion_tokens only, temperature/top_p only 1
    efforts: tuple = ()  # accepted reasoning_effort values (reasoning models)
    created: int = 0  # release time (not researched: 0)
    default_effort: str = "medium"  # the effort a reasoning model thinks at when none is sent [gpt-6-sol]
    chat_completions: bool = True  # False: served on the Responses API only (400 on /v1/chat/completions)


_GPT5_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")  # [openai-reasoning]; CHOICE: all six on 5.4+
_GPT6_EFFORTS = ("none", "low", "medium", "high", "xhigh", "max")  # [gpt-6-sol]: none ... max, default medium
OPENAI_MODELS: dict[str, OpenAIRules] = {
    "gpt-4.1": OpenAIRules("gpt-4.1", reasoning=False),  # not a reasoning model [openai-reasoning]
    "gpt-4.1-mini": OpenAIRules("gpt-4.1-mini", reasoning=False),  # not a reasoning model
    "gpt-4o": OpenAIRules("gpt-4o", reasoning=False),  # not a reasoning model; shuts down
    # 2027-01-14 [openai-deprecations]
    "gpt-5.4": OpenAIRules("gpt-5.4", reasoning=True, efforts=_GPT5_EFFORTS),  # [openai-reasoning]
    "gpt-5.4-mini": OpenAIRules("gpt-5.4-mini", reasoning=True, efforts=_GPT5_EFFORTS),  # [openai-reasoning]
    "gpt-5.5": OpenAIRules("gpt-5.5", reasoning=True, efforts=_GPT5_EFFORTS),  # [gpt-5-5]
    "gpt-5.5-pro": OpenAIRules(
        "gpt-5.5-pro",
        reasoning=True,
        efforts=("medium", "high", "xhigh"),
        default_effort="high",
        chat_completions=False,
    ),  # [gpt-5-5] Responses only
    "gpt-5.6": OpenAIRules("gpt-5.6", reasoning=True, efforts=_GPT5_EFFORTS),  # "Start with gpt-5.6"
    "gpt-5.6-sol": OpenAIRules("gpt-5.6-sol", reasoning=True, efforts=_GPT6_EFFORTS),  # [gpt-5-6]
    "gpt-6-sol": OpenAIRules("gpt-6-sol", reasoning=True, efforts=_GPT6_EFFORTS),  # [gpt-6-sol]
    "gpt-6.1-sol": OpenAIRules("gpt-6.1-sol", reasoning=True, efforts=_GPT6_EFFORTS),  # CHOICE: as gpt-6-sol
    # "The API rejects requests that set reasoning effort to none" [gpt-6-2-sol]
    "gpt-6.2-sol": OpenAIRules("gpt-6.2-sol", reasoning=True, efforts=_GPT6_EFFORTS[1:]),
    "o3": OpenAIRules("o3", reasoning=True, efforts=("low", "medium", "high")),  # pre-5.1: no "none"; shuts
    # down 2026-12-11
    # o4-mini shut down on 2026-10-23 [openai-deprecations]: 404 like any unknown model.
}
OPENAI_MIN_CACHE = 1024  # [openai-cache]; CHOICE: the 128-token increments above it are not modelled
# Every Chat Completions argument the installed openai SDK knows (its CompletionCreateParams), plus `stream`;
# anything else -> 400 "Unrecognized request argument supplied: X" [openai-unknown-arg].
OPENAI_CHAT_ARGUMENTS = frozenset(
    {
        "audio",
        "frequency_penalty",
        "function_call",
        "functions",
        "logit_bias",
        "logprobs",
        "max_completion_tokens",
        "max_tokens",
        "messages",
        "metadata",
        "modalities",
        "model",
        "moderation",
        "n",
        "parallel_tool_calls",
        "prediction",
        "presence_penalty",
        "prompt_cache_key",
        "prompt_cache_options",
        "prompt_cache_retention",
        "reasoning_effort",
        "response_format",
        "safety_identifier",
        "seed",
        "service_tier",
        "stop",
        "store",
        "stream",
        "stream_options",
        "temperature",
        "tool_choice",
        "tools",
        "top_logprobs",
        "top_p",
        "user",
        "verbosity",
        "web_search_options",
    }
)
# [openai-strict]
OPENAI_STRICT_UNSUPPORTED = ("allOf", "not", "if", "then", "else", "dependentRequired", "dependentSchemas")
OPENAI_QUOTA = (
    "You exceeded your current quota, please check your plan and billing details. For more information "
    "on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors."
)


def openai_prompt_parts(body: dict) -> list[tuple[str, bool]]:
    """OpenAI caches automatically: every tool and message ends a cacheable prefix; a structured-output schema sits
    in front of the messages [openai-cache]."""
    schema = ((body.get("response_format") or {}).get("json_schema") or {}).get("schema")
    head = [{"response_format_schema": schema}] if schema is not None else []
    return [(canonical_json(part), True) for part in (body.get("tools") or []) + head + (body.get("messages") or [])]


def openai_strict_problems(schema: Any) -> list[str]:
    """Why OpenAI's strict structured outputs refuse `schema` [openai-strict] (empty when accepted): the root is an
    object, every object lists all its properties in `required` and sets additionalProperties false."""
    if not isinstance(schema, dict) or schema.get("type") != "object" or "anyOf" in schema:
        return ["In context=(), the root schema must be an object of type 'object' (not anyOf)."]
    problems = []
    for path, node in _subschemas(schema):
        context = repr(tuple(path)).replace(",)", ")")
        problems += [
            f"In context={context}, '{keyword}' is not permitted."
            for keyword in OPENAI_STRICT_UNSUPPORTED
            if keyword in node
        ]
        if "object" not in _types(node):
            continue
        if node.get("additionalProperties") is not False:
            problems.append(f"In context={context}, 'additionalProperties' is required to be supplied and to be false.")
        missing = [name for name in node.get("properties") or {} if name not in (node.get("required") or [])]
        if missing:
            problems.append(
                f"In context={context}, 'required' is required to be supplied and to be an array including "
                f"every key in properties. Missing '{missing[0]}'."
            )
    return problems


def _openai_400(message: str, param: str | None = None, code: str | None = None) -> _Reject:
    return _Reject(400, message, error_type="invalid_request_error", param=param, code=code)


class OpenAIAPI:
    """FakeProviderServer's OpenAI endpoints (uses the shared answer logic and state of server.py)."""

    url: str

    @property
    def openai_base_url(self) -> str:
        """The base URL the OpenAI SDK is given (OPENAI_BASE_URL in env())."""
        return API.env(self.url)["OPENAI_BASE_URL"]

    # ---------------------------------------------------------------- OpenAI
    def validate_openai(self, body: Any) -> OpenAIRules | None:
        """The rules of the requested OpenAI model (None: a served model), or a _Reject."""
        if not isinstance(body, dict) or not isinstance(body.get("model"), str) or not body.get("messages"):
            raise _openai_400("model and a non-empty messages list are required")
        served = body["model"] in self.served_models
        if not served:
            unknown = sorted(name for name in body if name not in OPENAI_CHAT_ARGUMENTS)
            if unknown:  # [openai-unknown-arg]
                raise _openai_400(f"Unrecognized request argument supplied: {unknown[0]}")
        rules = None if served else OPENAI_MODELS.get(body["model"])
        if rules is None and not served:  # [openai-404]
            raise _Reject(
                404,
                f"The model `{body['model']}` does not exist or you do not have access to it.",
                error_type="invalid_request_error",
                code="model_not_found",
            )
        if rules is not None and not rules.chat_completions:  # [gpt-5-5]; wording not found
            raise _openai_400(
                f"The model `{rules.id}` is only supported in v1/responses and not in v1/chat/completions.",
                "model",
                "unsupported_model",
            )
        if rules is not None and rules.reasoning:
            if body.get("max_tokens") is not None:  # [openai-max-tokens]
                raise _openai_400(
                    "Unsupported parameter: 'max_tokens' is not supported with this model. Use "
                    "'max_completion_tokens' instead.",
                    "max_tokens",
                    "unsupported_parameter",
                )
            for name in ("temperature", "top_p"):  # [openai-temperature]
                if body.get(name) is not None and body[name] != 1:
                    raise _openai_400(
                        f"Unsupported value: '{name}' does not support {body[name]} with this model. "
                        "Only the default (1) value is supported.",
                        name,
                        "unsupported_value",
                    )
            effort = body.get("reasoning_effort")
            if effort is not None and effort not in rules.efforts:  # [openai-reasoning]; wording as for temperature
                raise _openai_400(
                    f"Unsupported value: 'reasoning_effort' does not support {effort!r} with this "
                    f"model. Supported values are: {', '.join(map(repr, rules.efforts))}.",
                    "reasoning_effort",
                    "unsupported_value",
                )
        elif rules is not None and body.get("reasoning_effort") is not None:  # [openai-reasoning]
            raise _openai_400(
                "Unsupported parameter: 'reasoning_effort' is not supported with this model.",
                "reasoning_effort",
                "unsupported_parameter",
            )
        self._check_openai_tools(body)
        response_format = body.get("response_format")
        if isinstance(response_format, dict) and response_format.get("type") == "json_schema":
            spec = response_format.get("json_schema") or {}
            if not isinstance(spec.get("schema"), dict) or not spec.get("name"):
                raise _openai_400("response_format.json_schema needs a name and a schema", "response_format")
            problems = openai_strict_problems(spec["schema"]) if spec.get("strict") and not served else []
            if problems:  # [openai-strict]
                raise _openai_400(
                    f"Invalid schema for response_format '{spec['name']}': {problems[0]}", "response_format"
                )
        return rules

    @staticmethod
    def _check_openai_tools(body: dict) -> None:
        tools = body.get("tools") or []
        if not all(isinstance(tool, dict) and "name" in (tool.get("function") or {}) for tool in tools):
            raise _openai_400("tools: every tool needs type 'function' and a function name", "tools")
        choice = body.get("tool_choice")
        if isinstance(choice, dict) and (choice.get("function") or {}).get("name") not in {
            tool["function"]["name"] for tool in tools
        }:
            raise _openai_400(f"tool_choice names an unknown function {choice!r}", "tool_choice")

    def openai_completion(
        self, plan_or_body: _Plan | dict, fault: str | None, scripted: dict, cache: tuple[int, int, int, list[str]]
    ) -> tuple[dict, dict]:
        """(Chat Completion JSON, ledger usage) for a validated OpenAI or OpenRouter request."""
        plan = (
            plan_or_body
            if isinstance(plan_or_body, _Plan)
            else _Plan(
                "openai",
                plan_or_body["model"],
                OPENAI_MODELS.get(plan_or_body["model"]),
                plan_or_body,
                openai_prompt_parts,
            )
        )
        body, rules = plan.body, plan.rules
        tools = {t["function"]["name"]: t["function"] for t in body.get("tools") or [] if "function" in t}
        choice = body.get("tool_choice")
        tool_name = (
            choice["function"]["name"]
            if isinstance(choice, dict)
            else next(iter(tools), None)
            if choice == "required"
            else None
        )
        thinking, shown = self._openai_reasoning(plan)
        response_format = body.get("response_format") or {}
        json_schema = (
            (response_format.get("json_schema") or {}).get("schema")
            if response_format.get("type") == "json_schema"
            else {
                "type": "object",
                "properties": {"answer": {"type": "string"}},
                "required": ["answer"],
                "additionalProperties": False,
            }
            if response_format.get("type") == "json_object"
            else None
        )
        max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
        reasoning = body.get("reasoning") if isinstance(body.get("reasoning"), dict) else {}
        thought_tokens = self.thought_tokens(
            body.get("reasoning_effort") or reasoning.get("effort"),
            getattr(rules, "default_effort", "medium"),
            reasoning.get("max_tokens"),
        )
        answer = self._answer(
            body,
            tools[tool_name].get("parameters", {}) if tool_name else None,
            tool_name,
            thinking,
            max_tokens,
            scripted,
            fault,
            json_schema,
            thought_tokens=thought_tokens,
        )
        if answer.refused:  # `refusal` set, content null, no tool call [refusals-openai]
            answer.text = OPENAI_REFUSAL_TEXT
        message: dict[str, Any] = {
            "role": "assistant",
            "content": None if answer.tool_name or answer.refused else answer.text,
            "refusal": answer.text if answer.refused else None,
        }
        if answer.tool_name:
            message["tool_calls"] = [
                {
                    "id": f"call_{uuid.uuid4().hex[:24]}",
                    "type": "function",
                    "function": {"name": answer.tool_name, "arguments": answer.tool_json},
                }
            ]
        if answer.thoughts and shown:
            message["reasoning"] = message["reasoning_content"] = answer.thinking
        # OpenAI quirk kept on purpose: a tool forced by name finishes with "stop", not "tool_calls".
        finish = (
            "length"
            if answer.truncated
            else "stop"
            if isinstance(choice, dict) or not answer.tool_name
            else "tool_calls"
        )
        uncached, creation, read, _ = cache
        prompt_tokens = uncached + creation + read
        completion_usage: dict[str, Any] = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": answer.output_tokens,
            "total_tokens": prompt_tokens + answer.output_tokens,
            "prompt_tokens_details": {"cached_tokens": read},
            "completion_tokens_details": {"reasoning_tokens": sum(count_tokens(t) for t in answer.thoughts)},
        }
        if plan.api == "openrouter":  # usage.cost on every response [or-usage]
            cost = (
                (prompt_tokens - read) * rules.prompt_price
                + read * rules.cache_read_price
                + answer.output_tokens * rules.completion_price
            )
            completion_usage.update(cost=round(cost, 12), is_byok=False, cost_details={"upstream_inference_cost": None})
            completion_usage["prompt_tokens_details"]["cache_write_tokens"] = 0
        completion = {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
            "usage": completion_usage,
        }
        usage = {
            "input_tokens": uncached + creation,
            "output_tokens": answer.output_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": read,
            "thinking_tokens": answer.thinking_tokens,
        }
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
        if plan.api == "openai":  # a served model: reasoning text when asked for
            thinks = bool(
                body.get("include_reasoning")
                or body.get("reasoning_effort")
                or (reasoning and reasoning.get("enabled", True) and not reasoning.get("exclude"))
            )
            return thinks, thinks
        if "reasoning" not in rules.supported_parameters:
            return False, False
        off = reasoning.get("enabled") is False or reasoning.get("effort") == "none"
        asked = bool(reasoning) or bool(body.get("include_reasoning"))
        thinks = rules.reasoning_mandatory or (not off and (asked or rules.reasoning_default))
        shown = thinks and not reasoning.get("exclude") and body.get("include_reasoning") is not False
        return thinks, shown  # [or-reasoning]

    def openai_model(self, model_id: str) -> dict:
        if model_id not in OPENAI_MODELS and model_id not in self.served_models:  # [openai-404]
            raise _Reject(
                404,
                f"The model `{model_id}` does not exist or you do not have access to it.",
                error_type="invalid_request_error",
                code="model_not_found",
            )
        rules = OPENAI_MODELS.get(model_id)
        return {
            "id": model_id,
            "object": "model",
            "created": rules.created if rules else 0,
            "owned_by": "openai" if rules else "vllm",
        }

    def openai_models(self) -> dict:
        return {
            "object": "list",
            "data": [self.openai_model(model_id) for model_id in list(OPENAI_MODELS) + sorted(self.served_models)],
        }

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
            self._files[file_id] = {
                "id": file_id,
                "filename": filename,
                "purpose": purpose,
                "content": content,
                "created": int(time.time()),
            }
        return self.file_object(file_id)

    def _file(self, file_id: str) -> dict:
        with self._lock:
            if file_id not in self._files:
                raise _Reject(404, f"No such File object: {file_id}")
            return self._files[file_id]

    def file_object(self, file_id: str) -> dict:
        stored = self._file(file_id)
        return {
            "id": file_id,
            "object": "file",
            "bytes": len(stored["content"]),
            "created_at": stored["created"],
            "filename": stored["filename"],
            "purpose": stored["purpose"],
            "status": "processed",
            "expires_at": None,
            "status_details": None,
        }

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
        batch = {
            "id": batch_id,
            "input_file_id": body["input_file_id"],
            "endpoint": body["endpoint"],
            "metadata": body.get("metadata"),
            "created": time.time(),
            "ended": None,
            "status": None,
            "errors": None,
            "counts": (0, 0, 0),
            "output_file_id": None,
            "error_file_id": None,
            "timer": threading.Timer(self.batch_delay_s, self._process_openai_batch, (batch_id,)),
        }
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
                errors.append(
                    {
                        "code": "invalid_json_line",
                        "message": "This line is not parseable as valid JSON.",
                        "param": None,
                        "line": number,
                    }
                )
                continue
            custom_id = line.get("custom_id") if isinstance(line, dict) else None
            if not isinstance(custom_id, str) or custom_id in seen:
                errors.append(
                    {
                        "code": "duplicate_custom_id" if custom_id in seen else "missing_required_parameter",
                        "message": "every line needs a unique custom_id",
                        "param": "custom_id",
                        "line": number,
                    }
                )
            elif (
                line.get("method") != "POST"
                or line.get("url") != batch["endpoint"]
                or not isinstance(line.get("body"), dict)
            ):
                errors.append(
                    {
                        "code": "invalid_request",
                        "message": f"method must be POST, url {batch['endpoint']} and body an object",
                        "param": "url",
                        "line": number,
                    }
                )
            seen.add(custom_id)
            lines.append(line)
        if not lines and not errors:
            errors.append(
                {"code": "empty_file", "message": "The batch input file is empty.", "param": None, "line": None}
            )
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
                raise openai_billing_reject(fault)
            if "status" in scripted or fault in ("429", "529", "500", "503", "drop"):
                status = scripted.get("status") or {"drop": 500, "529": 503}.get(fault) or int(fault)
                raise _Reject(status, ERROR_MESSAGES.get(status, "error"), fault=fault)
            cache = self._cache_usage(plan.namespace, plan.prompt_parts(), plan.min_cache)
            completion, usage = self.openai_completion(plan, fault, scripted, cache)
            self._remember(cache[3])
            self._record(
                LedgerEntry(
                    "openai_batch", path, body, 200, fault, True, request_key(body), usage, request_id, time.time()
                )
            )
            return True, {"status_code": 200, "request_id": request_id, "body": completion}
        except Exception as raised:
            reject = raised if isinstance(raised, _Reject) else _internal_error(raised)
            self._record(
                LedgerEntry(
                    "openai_batch",
                    path,
                    body,
                    reject.status,
                    reject.fault,
                    False,
                    request_key(body),
                    None,
                    request_id,
                    time.time(),
                )
            )
            return False, {"status_code": reject.status, "request_id": request_id, "body": openai_error_body(reject)}

    def _process_openai_batch(self, batch_id: str, cancel: bool = False) -> None:
        with self._lock:
            batch = self._openai_batches[batch_id]
            if batch["status"] is not None:
                return
            batch["status"] = "claimed"  # by this call; set to its final value below
        lines, errors = self._batch_lines(batch)
        outputs, failures = [], []
        if not errors:
            for line in lines:
                entry = {"id": f"batch_req_{uuid.uuid4().hex[:24]}", "custom_id": line["custom_id"]}
                if cancel:
                    failures.append(
                        {
                            **entry,
                            "response": None,
                            "error": {
                                "code": "batch_cancelled",
                                "message": "This request was not run: the batch was cancelled.",
                            },
                        }
                    )
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
            batch.update(
                status="failed" if errors else "cancelled" if cancel else "completed",
                ended=time.time(),
                errors=errors or None,
                counts=(len(lines), len(outputs), len(failures)),
                output_file_id=output_file_id,
                error_file_id=error_file_id,
            )

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

        return {
            "id": batch_id,
            "object": "batch",
            "endpoint": batch["endpoint"],
            "errors": {"object": "list", "data": batch["errors"]} if batch["errors"] else None,
            "input_file_id": batch["input_file_id"],
            "completion_window": "24h",
            "status": status,
            "output_file_id": batch["output_file_id"],
            "error_file_id": batch["error_file_id"],
            "created_at": int(created),
            "in_progress_at": at(status != "validating", created),
            "expires_at": int(created) + 86400,
            "finalizing_at": at(ended is not None, ended),
            "completed_at": at(status == "completed", ended),
            "failed_at": at(status == "failed", ended),
            "expired_at": None,
            "cancelling_at": at("cancelled" in batch, batch.get("cancelled")),
            "cancelled_at": at(status == "cancelled", ended),
            "request_counts": {"total": total, "completed": completed, "failed": failed},
            "metadata": batch["metadata"],
        }


def _openai_stream(completion: dict, include_usage: bool) -> list[bytes]:
    choice = completion["choices"][0]
    message = choice["message"]
    head = {k: completion[k] for k in ("id", "created", "model")}

    def chunk(delta: dict, finish: str | None = None) -> dict:
        return {
            **head,
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
        }

    chunks = [chunk({"role": "assistant", "content": ""})]
    chunks += [
        chunk({"reasoning": p, "reasoning_content": p})
        for p in _pieces(message.get("reasoning", ""))
        if message.get("reasoning")
    ]
    for call in message.get("tool_calls", []):
        chunks.append(
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": call["id"],
                            "type": "function",
                            "function": {"name": call["function"]["name"], "arguments": ""},
                        }
                    ]
                }
            )
        )
        chunks += [
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": p}}]})
            for p in _pieces(call["function"]["arguments"])
        ]
    if message["content"]:
        chunks += [chunk({"content": p}) for p in _pieces(message["content"])]
    if message.get("refusal"):  # delta.refusal [refusals-openai]
        chunks += [chunk({"refusal": p}) for p in _pieces(message["refusal"])]
    chunks.append(chunk({}, choice["finish_reason"]))
    if include_usage:
        chunks.append({**head, "object": "chat.completion.chunk", "choices": [], "usage": completion["usage"]})
    return [f"data: {json.dumps(c)}\n\n".encode() for c in chunks] + [b"data: [DONE]\n\n"]


def openai_billing_reject(fault: str) -> _Reject:
    """OpenAI's exhausted-quota error, its answer to every billing fault [openai-quota]."""
    return _Reject(
        429, OPENAI_QUOTA, fault=fault, error_type="insufficient_quota", code="insufficient_quota", retry_after=False
    )


def openai_error_body(reject: _Reject) -> dict:
    """OpenAI's error JSON for `reject`."""
    return {
        "error": {
            "message": reject.message,
            "type": reject.error_type or OPENAI_ERROR_TYPES.get(reject.status, "server_error"),
            "param": reject.param,
            "code": reject.code or ("rate_limit_exceeded" if reject.status == 429 else None),
        }
    }


# List prices in USD per million tokens: (input, output, cache write 5 min, cache write 1 h, cache read). The fake
# bills every answered request at its own model's price (LedgerEntry.cost_usd; batches at half price [batch-ttl]).
PRICES: dict[str, tuple[float, float, float, float, float]] = {
    "gpt-4.1": (2, 8, 2, 2, 0.5),
    "gpt-4.1-mini": (0.4, 1.6, 0.4, 0.4, 0.1),
    "gpt-4o": (2.5, 10, 2.5, 2.5, 1.25),
    "gpt-5.4": (2.5, 15, 2.5, 2.5, 0.25),
    "gpt-5.4-mini": (0.75, 4.5, 0.75, 0.75, 0.075),
    "gpt-5.5": (5, 30, 5, 5, 0.5),
    "gpt-5.5-pro": (30, 180, 30, 30, 30),  # [gpt-5-5]
    "gpt-5.6": (5, 30, 5, 5, 0.5),
    "gpt-5.6-sol": (5, 30, 5, 5, 0.5),  # [gpt-5-6]
    "gpt-6-sol": (2, 10, 2.5, 2.5, 0.2),
    "gpt-6.1-sol": (2, 10, 2.5, 2.5, 0.2),  # [gpt-6-sol]
    "gpt-6.2-sol": (2, 10, 2.5, 2.5, 0.1),  # [gpt-6-2-sol]
    "o3": (2, 8, 2, 2, 0.5),
}


def chat_rate_limit_headers(state: dict, now: float) -> dict[str, str]:
    """x-ratelimit-{limit,remaining,reset}-{requests,tokens} (reset: a duration), as OpenAI sends them."""
    return {
        "x-ratelimit-limit-requests": str(state["requests"][0]),
        "x-ratelimit-remaining-requests": str(state["requests"][1]),
        "x-ratelimit-reset-requests": _duration(max(0.0, state["requests"][2] - now)),
        "x-ratelimit-limit-tokens": str(state["input"][0]),
        "x-ratelimit-remaining-tokens": str(state["input"][1]),
        "x-ratelimit-reset-tokens": _duration(max(0.0, state["input"][2] - now)),
    }


def chat_answer(
    fake, body: dict, plan: _Plan, fault, scripted: dict, cache, include_usage: bool = False
) -> tuple[dict, dict, list[bytes] | None]:
    """A Chat Completion and its stream (usage in the last chunk when `include_usage` or when the body asks)."""
    answer, usage = fake.openai_completion(plan, fault, scripted, cache)
    include_usage = include_usage or bool((body.get("stream_options") or {}).get("include_usage"))
    return answer, usage, _openai_stream(answer, include_usage) if body.get("stream") else None


def _validate(fake, body: Any) -> _Plan:
    rules = fake.validate_openai(body)
    return _Plan(
        "openai", body["model"], rules, body, openai_prompt_parts, OPENAI_MIN_CACHE if rules is not None else 0
    )


API = FakeApi(
    sources=SOURCES,
    name="openai",
    batch_api="openai_batch",
    methods=OpenAIAPI,
    routes=(
        Route("POST", "/v1/chat/completions"),
        Route("POST", "/v1/files", lambda fake, query, body: fake.upload_file(body)),
        Route("POST", "/v1/batches", lambda fake, query, body: fake.create_openai_batch(body)),
        Route(
            "POST", "/v1/batches/([^/]+)/cancel", lambda fake, query, body, batch_id: fake.cancel_openai_batch(batch_id)
        ),
        Route("GET", "/v1/models", lambda fake, query, body: fake.openai_models(), "model_lookup"),
        Route(
            "GET", "/v1/models/([^/]+)", lambda fake, query, body, model_id: fake.openai_model(model_id), "model_lookup"
        ),
        Route("GET", "/v1/batches/([^/]+)", lambda fake, query, body, batch_id: fake.openai_batch_object(batch_id)),
        Route("GET", "/v1/files/([^/]+)", lambda fake, query, body, file_id: fake.file_object(file_id)),
        Route("GET", "/v1/files/([^/]+)/content", lambda fake, query, body, file_id: fake.file_content(file_id)),
    ),
    validate=_validate,
    answer=chat_answer,
    env=lambda url: {"OPENAI_BASE_URL": url + "/v1", "OPENAI_API_KEY": "fake-openai-key"},
    check_auth=bearer_auth,
    error_body=lambda reject, request_id: openai_error_body(reject),
    billing_reject=openai_billing_reject,
    rate_limit_headers=chat_rate_limit_headers,
    bill=lambda body, usage: list_price_usd(PRICES, body.get("model", ""), body, usage),
    stores=("_openai_batches", "_files"),
    fault_status=lambda fault: int(fault) if fault in ("429", "500") else 503,
)
