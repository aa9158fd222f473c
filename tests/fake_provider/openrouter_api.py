"""The fake OpenRouter API under `/api/v1`: its model table (OPENROUTER_MODELS: supported_parameters,
mandatory reasoning, its own prices in usage.cost), the request check that drops unsupported
parameters, and `GET /api/v1/models`, as the `OpenRouterAPI` part of FakeProviderServer (its answers
come from openai_api's Chat Completions); its error bodies and credits error; `API` declares the part to
the server (common.FakeApi).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .common import FakeApi, Route, _Plan, _price, _Reject, bearer_auth
from .openai_api import chat_answer, chat_rate_limit_headers, openai_prompt_parts

# The documentation tags this part's rule comments cite (with common.SOURCES: fake_provider.SOURCES).
SOURCES = {
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
    "or-models": "https://openrouter.ai/docs/models ; no auth needed [3p] https://smithery.ai/skills/jeremylongshore/"
    "openrouter-model-catalog",
    "or-invalid-model": "[3p] https://github.com/OpenRouterTeam/openrouter-examples/issues/74 ('claude-sonnet-4-6 is "
    "not a valid model ID', 400; the slug is anthropic/claude-sonnet-4.6, with a dot)",
    "or-errors": "https://openrouter.ai/docs/errors ({error: {code, message, metadata}}; 402 insufficient credits; "
    "502 model down)",
    "or-claude-5-5": "https://openrouter.ai/docs/cookbook/evaluate-and-optimize/model-migrations/claude-5-5",
}

# --------------------------------------------------------------------------- OpenRouter rule table


@dataclass(frozen=True)
class OpenRouterModel:
    id: str
    name: str
    context_length: int
    supported_parameters: tuple  # what GET /api/v1/models lists; other parameters are dropped [or-ignored]
    reasoning_mandatory: bool  # reasoning cannot be disabled [or-mandatory]
    reasoning_default: bool  # reasoning on when the request does not mention it
    prompt_price: float  # USD per token (the fake's own price table: usage.cost)
    completion_price: float
    cache_read_price: float
    forced_tool_choice: bool = True  # tool_choice "required" / a named function accepted


_OPEN_WEIGHT_PARAMS = (
    "frequency_penalty",
    "include_reasoning",
    "logit_bias",
    "max_tokens",
    "min_p",
    "presence_penalty",
    "reasoning",
    "repetition_penalty",
    "response_format",
    "seed",
    "stop",
    "structured_outputs",
    "temperature",
    "tool_choice",
    "tools",
    "top_k",
    "top_p",
)
# CHOICE: supported_parameters and prices are illustrative (OpenRouter's listing changes; the docs say to check
# GET /api/v1/models [or-models]); the Anthropic row copies Anthropic's list price ($2 / $10 per MTok).
OPENROUTER_MODELS: dict[str, OpenRouterModel] = {
    "qwen/qwen3-32b": OpenRouterModel(
        "qwen/qwen3-32b",
        "Qwen: Qwen3 32B",
        40_960,
        _OPEN_WEIGHT_PARAMS,
        reasoning_mandatory=False,
        reasoning_default=True,  # Qwen3 thinks unless told not to (its chat template); [or-reasoning]
        prompt_price=0.10e-6,
        completion_price=0.30e-6,
        cache_read_price=0.05e-6,
    ),
    "qwen/qwen3-14b": OpenRouterModel(
        "qwen/qwen3-14b",
        "Qwen: Qwen3 14B",
        40_960,
        _OPEN_WEIGHT_PARAMS,
        reasoning_mandatory=False,
        reasoning_default=True,
        prompt_price=0.06e-6,
        completion_price=0.24e-6,
        cache_read_price=0.03e-6,
    ),
    "google/gemma-3-12b-it": OpenRouterModel(
        "google/gemma-3-12b-it",
        "Google: Gemma 3 12B",
        131_072,
        tuple(p for p in _OPEN_WEIGHT_PARAMS if p not in ("reasoning", "include_reasoning", "tools", "tool_choice")),
        reasoning_mandatory=False,
        reasoning_default=False,  # no reasoning, no tools (CHOICE)
        prompt_price=0.05e-6,
        completion_price=0.10e-6,
        cache_read_price=0.05e-6,
    ),
    "meta-llama/llama-3.3-70b-instruct": OpenRouterModel(
        "meta-llama/llama-3.3-70b-instruct",
        "Meta: Llama 3.3 70B Instruct",
        131_072,
        tuple(p for p in _OPEN_WEIGHT_PARAMS if p not in ("reasoning", "include_reasoning")),
        reasoning_mandatory=False,
        reasoning_default=False,
        prompt_price=0.13e-6,
        completion_price=0.40e-6,
        cache_read_price=0.13e-6,
    ),
    "deepseek/deepseek-r1": OpenRouterModel(
        "deepseek/deepseek-r1",
        "DeepSeek: R1",
        163_840,
        tuple(
            p for p in _OPEN_WEIGHT_PARAMS if p not in ("tools", "tool_choice", "response_format", "structured_outputs")
        ),
        reasoning_mandatory=True,  # reasoning cannot be disabled [or-mandatory]
        reasoning_default=True,
        prompt_price=0.70e-6,
        completion_price=2.50e-6,
        cache_read_price=0.35e-6,
    ),
    # OpenRouter writes Anthropic slugs with a dot (anthropic/claude-sonnet-4.6) [or-invalid-model].
    "anthropic/claude-sonnet-5.5": OpenRouterModel(
        "anthropic/claude-sonnet-5.5",
        "Anthropic: Claude Sonnet 5.5",
        1_000_000,
        # Sampling parameters are removed on Claude 5.5 [or-claude-5-5]: not listed, so dropped [or-ignored].
        (
            "include_reasoning",
            "max_tokens",
            "reasoning",
            "response_format",
            "stop",
            "structured_outputs",
            "tool_choice",
            "tools",
            "verbosity",
        ),
        reasoning_mandatory=False,  # CHOICE: docs silent on enabled:false (Anthropic maps it to between_tools?)
        reasoning_default=True,  # adaptive thinking by default [or-claude-5-5]
        prompt_price=2e-6,
        completion_price=10e-6,
        cache_read_price=0.10e-6,
        forced_tool_choice=False,
    ),  # Anthropic refuses forced tool use [sonnet-5-5-new]; CHOICE: OpenRouter's 404
}
# Request fields that are not model parameters: never dropped.
OPENROUTER_ENVELOPE = frozenset(
    {
        "model",
        "messages",
        "stream",
        "stream_options",
        "provider",
        "models",
        "route",
        "transforms",
        "plugins",
        "usage",
        "user",
        "session_id",
        "prompt",
        "metadata",
    }
)
# ^ [openai-quota]
OPENROUTER_CREDITS = "Insufficient credits. Add more using https://openrouter.ai/settings/credits"  # 402 [or-errors]
OR_NO_ENDPOINT_PARAMS = "No endpoints found that can handle the requested parameters."  # [or-404-params]
OR_ROUTING_HELP = " To learn more about provider routing, visit: https://openrouter.ai/docs/provider-routing"
OR_REASONING_MANDATORY = "Reasoning is mandatory for this endpoint and cannot be disabled."  # [or-mandatory]


class OpenRouterAPI:
    """FakeProviderServer's OpenRouter endpoints (the model check and the model list)."""

    url: str

    @property
    def openrouter_base_url(self) -> str:
        """The base URL the OpenAI SDK is given for OpenRouter (OPENROUTER_BASE_URL in env())."""
        return API.env(self.url)["OPENROUTER_BASE_URL"]

    # ---------------------------------------------------------------- OpenRouter
    def validate_openrouter(self, body: Any) -> _Plan:
        """Route an OpenRouter request: refuse what no endpoint serves, drop what the model ignores."""
        if not isinstance(body, dict) or not isinstance(body.get("model"), str) or not body.get("messages"):
            raise _Reject(400, "model and a non-empty messages list are required")
        model = OPENROUTER_MODELS.get(body["model"])
        if model is None:
            raise _Reject(400, f"{body['model']} is not a valid model ID")  # [or-invalid-model]
        reasoning = body.get("reasoning") if isinstance(body.get("reasoning"), dict) else {}
        if model.reasoning_mandatory and (reasoning.get("enabled") is False or reasoning.get("effort") == "none"):
            raise _Reject(400, OR_REASONING_MANDATORY)  # [or-mandatory]
        supported = set(model.supported_parameters) | (
            {"max_completion_tokens"} if "max_tokens" in model.supported_parameters else set()
        )
        if body.get("tools") and "tools" not in supported:
            raise _Reject(404, "No endpoints found that support tool use." + OR_ROUTING_HELP)  # [or-404-tools]
        choice = body.get("tool_choice")
        if body.get("tools") and (choice == "required" or isinstance(choice, dict)) and not model.forced_tool_choice:
            raise _Reject(404, "No endpoints found that support the provided 'tool_choice' value." + OR_ROUTING_HELP)
        self._check_openai_tools(body)
        dropped = sorted(name for name in body if name not in OPENROUTER_ENVELOPE and name not in supported)
        if dropped and (body.get("provider") or {}).get("require_parameters"):
            raise _Reject(404, OR_NO_ENDPOINT_PARAMS)  # [or-404-params][or-routing]
        effective = {name: value for name, value in body.items() if name not in dropped}  # [or-ignored]
        return _Plan("openrouter", model.id, model, effective, openai_prompt_parts, 0, dropped)

    def openrouter_models(self, query: dict[str, list[str]]) -> dict:
        """GET /api/v1/models [or-models], with the `supported_parameters` filter."""
        wanted = {value for raw in query.get("supported_parameters", []) for value in raw.split(",") if value}
        return {
            "data": [
                {
                    "id": model.id,
                    "canonical_slug": model.id,
                    "name": model.name,
                    "created": 0,
                    "description": "",
                    "context_length": model.context_length,
                    "architecture": {
                        "modality": "text->text",
                        "input_modalities": ["text"],
                        "output_modalities": ["text"],
                        "tokenizer": "Other",
                        "instruct_type": None,
                    },
                    "pricing": {
                        "prompt": _price(model.prompt_price),
                        "completion": _price(model.completion_price),
                        "request": "0",
                        "image": "0",
                        "input_cache_read": _price(model.cache_read_price),
                    },
                    "top_provider": {
                        "context_length": model.context_length,
                        "max_completion_tokens": None,
                        "is_moderated": False,
                    },
                    "per_request_limits": None,
                    "supported_parameters": list(model.supported_parameters),
                    "reasoning": {"mandatory": model.reasoning_mandatory, "default_enabled": model.reasoning_default},
                }
                for model in OPENROUTER_MODELS.values()
                if wanted <= set(model.supported_parameters)
            ]
        }


def openrouter_billing_reject(fault: str) -> _Reject:
    """OpenRouter's insufficient-credits error, its answer to every billing fault [or-errors]."""
    return _Reject(402, OPENROUTER_CREDITS, fault=fault, retry_after=False)


def openrouter_error_body(reject: _Reject) -> dict:
    """OpenRouter's error JSON for `reject` [or-errors]."""
    return {"error": {"code": reject.status, "message": reject.message}}


def _fault_status(fault: str) -> int:
    """429 and 500 as drawn; an overload is 502 "model is down", any other 503 [or-errors]."""
    if fault in ("429", "500"):
        return int(fault)
    return 502 if fault == "529" else 503


API = FakeApi(
    sources=SOURCES,
    name="openrouter",
    methods=OpenRouterAPI,
    routes=(
        Route("POST", "/api/v1/chat/completions"),
        Route(  # no auth needed [or-models]
            "GET", "/api/v1/models", lambda fake, query, body: fake.openrouter_models(query), "model_lookup", auth=False
        ),
    ),
    validate=lambda fake, body: fake.validate_openrouter(body),
    # OpenRouter puts usage in the last chunk of every stream [or-usage]; OpenAI when asked.
    answer=lambda fake, body, plan, fault, scripted, cache: chat_answer(
        fake, body, plan, fault, scripted, cache, include_usage=True
    ),
    env=lambda url: {"OPENROUTER_BASE_URL": url + "/api/v1", "OPENROUTER_API_KEY": "fake-openrouter-key"},
    check_auth=bearer_auth,
    error_body=lambda reject, request_id: openrouter_error_body(reject),
    billing_reject=openrouter_billing_reject,
    rate_limit_headers=chat_rate_limit_headers,
    bill=lambda body, usage: float(usage.get("cost") or 0.0),  # its own usage.cost [or-usage]
    fault_status=_fault_status,
    paid_id_prefix="gen-",
    unrouted_prefix="/api/",
)
