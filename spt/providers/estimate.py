"""What a run would send and cost, without calling anything (for the stages' --dry-run).

`render_wire_request(request, provider, base_url)` is the exact JSON body the provider would
receive (shaped from the model registry, as the adapters shape it, the request's thinking resolved
as the client resolves it: thinking.py); `estimate_cost(requests, provider)` adds up tokens
(characters/4; output = max_tokens with the room for thinking, an upper bound) and prices them
without prompt caching, with it (the first request with a cached prefix writes it, later ones
read it; a prefix shorter than the model's minimum is never cached) and as a batch. Reads
config/models.json; writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from . import registry, thinking
from .client import cached_prefix, estimate_input_tokens
from .models import ModelPrices, ModelRegistry, default_registry
from .types import LLMRequest

FREE = ModelPrices(0.0, 0.0, 0.0, 0.0, 0.0)


def render_wire_request(
    request: LLMRequest,
    provider: str,
    base_url: str | None = None,
    models: ModelRegistry | None = None,
    self_hosted: str | None = None,
) -> dict[str, Any]:
    """The JSON body `provider` would receive for `request` (its thinking resolved as the client resolves it;
    `self_hosted`: --self_hosted)."""
    models = models or default_registry()
    spec = registry.spec(provider)
    info = registry.model_info(models, request.model, provider, base_url, self_hosted)
    request = thinking.resolve(request, info, models.thinking_allowance)
    return spec.render(request, info, registry.is_self_hosted(provider, base_url, self_hosted))


def sent_settings(body: dict[str, Any]) -> dict[str, Any]:
    """The sampling values and the thinking switch a rendered body carries (None = not sent)."""
    thinking_on = None
    if isinstance(body.get("chat_template_kwargs"), dict):
        thinking_on = body["chat_template_kwargs"].get("enable_thinking")
    elif isinstance(body.get("reasoning"), dict):
        thinking_on = body["reasoning"].get("enabled", True)
    elif "reasoning_effort" in body:
        thinking_on = body["reasoning_effort"] != "none"
    elif isinstance(body.get("thinking"), dict):
        thinking_on = body["thinking"].get("type") in ("enabled", "adaptive")
    return {
        "temperature": body.get("temperature"),
        "top_p": body.get("top_p"),
        "top_k": body.get("top_k"),
        "thinking_enabled": thinking_on,
    }


def estimate_cost(
    requests: Iterable[LLMRequest],
    provider: str,
    models: ModelRegistry | None = None,
    base_url: str | None = None,
    self_hosted: str | None = None,
) -> dict[str, Any]:
    """Token and USD estimates of sending `requests` to `provider`, each priced at its own model's entry
    (the mock, and an unpriced model, cost nothing here: `priced` says which). Output tokens are each
    request's max_tokens with the room for thinking (an upper bound); a batch writes the prompt cache at
    the 1-hour price on Anthropic (its batcher's cache_ttl)."""
    models = models or default_registry()
    spec = registry.spec(provider)
    batch_ttl = spec.batcher.cache_ttl if spec.batcher else None
    totals = {
        "requests": 0,
        "input_tokens": 0,
        "output_tokens": 0,
        "cached_prefix_tokens": 0,
        "cost_usd": 0.0,
        "cost_usd_with_caching": 0.0,
        "cost_usd_batch": 0.0,
        "cost_usd_batch_with_caching": 0.0,
        "priced": True,
    }
    written: set[str] = set()
    for request in requests:
        info = registry.model_info(models, request.model, provider, base_url, self_hosted)
        request = thinking.resolve(request, info, models.thinking_allowance)
        totals["priced"] = totals["priced"] and (info.prices is not None or spec.simulated)
        price = FREE if spec.simulated or info.prices is None else info.prices
        input_tokens, output_tokens = estimate_input_tokens(request), request.max_tokens
        prefix_tokens, prefix_id = cached_prefix(request)
        prefix_tokens = min(prefix_tokens, input_tokens)
        if prefix_tokens < info.min_cache_tokens:
            prefix_tokens, prefix_id = 0, None
        output_usd = output_tokens * price.output
        plain = input_tokens * price.input + output_usd
        with_caching = with_caching_batch = plain
        if prefix_id:
            batch_write = price.cache_write_1h if batch_ttl == "1h" else price.cache_write_5m
            read = prefix_id in written
            rest = (input_tokens - prefix_tokens) * price.input + output_usd
            with_caching = rest + prefix_tokens * (price.cache_read if read else price.cache_write_5m)
            with_caching_batch = rest + prefix_tokens * (price.cache_read if read else batch_write)
            written.add(prefix_id)
        discount = 1 - info.batch_discount
        totals["requests"] += 1
        totals["input_tokens"] += input_tokens
        totals["output_tokens"] += output_tokens
        totals["cached_prefix_tokens"] += prefix_tokens
        totals["cost_usd"] += plain / 1e6
        totals["cost_usd_with_caching"] += with_caching / 1e6
        totals["cost_usd_batch"] += plain * discount / 1e6
        totals["cost_usd_batch_with_caching"] += with_caching_batch * discount / 1e6
    return totals
