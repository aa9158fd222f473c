"""What a run would send and cost, without calling anything (for the stages' --dry-run).

`render_wire_request(request, provider)` is the exact JSON body the provider would receive;
`estimate_cost(requests, provider)` adds up tokens (characters/4; output = max_tokens, an upper
bound) and prices them without prompt caching, with it (the first request with a cached prefix
writes it, later ones read it) and as a batch. Reads config/model_prices.json; writes nothing.
"""
from __future__ import annotations

from typing import Any, Iterable

from .anthropic_provider import render_anthropic
from .client import PROVIDERS, cached_prefix, estimate_input_tokens
from .mock_provider import MockAdapter
from .openai_provider import render_openai
from .pricing import PriceTable, default_prices
from .types import LLMRequest


def render_wire_request(request: LLMRequest, provider: str) -> dict[str, Any]:
    """The JSON body `provider` would receive for `request`."""
    if provider == "anthropic":
        return render_anthropic(request)
    if provider in ("openai", "openrouter"):
        return render_openai(request, provider)
    if provider == "mock":
        return MockAdapter().render(request)
    raise ValueError(f"unknown provider {provider!r}; choose one of {', '.join(PROVIDERS)}")


def estimate_cost(requests: Iterable[LLMRequest], provider: str, prices: PriceTable | None = None) -> dict[str, Any]:
    """Token and USD estimates of sending `requests` to `provider` (the mock costs nothing)."""
    prices = prices or default_prices()
    free = provider == "mock"
    totals = {"requests": 0, "input_tokens": 0, "output_tokens": 0, "cached_prefix_tokens": 0,
              "cost_usd": 0.0, "cost_usd_with_caching": 0.0}
    written: set[str] = set()
    for request in requests:
        price = prices.price(request.model)
        input_tokens, output_tokens = estimate_input_tokens(request), request.max_tokens
        prefix_tokens, prefix_id = cached_prefix(request)
        prefix_tokens = min(prefix_tokens, input_tokens)
        output_usd = output_tokens * price.output
        plain = input_tokens * price.input + output_usd
        prefix_price = price.cache_read if prefix_id in written else price.cache_write
        with_caching = (input_tokens - prefix_tokens) * price.input + prefix_tokens * prefix_price + output_usd \
            if prefix_id else plain
        if prefix_id:
            written.add(prefix_id)
        totals["requests"] += 1
        totals["input_tokens"] += input_tokens
        totals["output_tokens"] += output_tokens
        totals["cached_prefix_tokens"] += prefix_tokens
        totals["cost_usd"] += 0.0 if free else plain / 1e6
        totals["cost_usd_with_caching"] += 0.0 if free else with_caching / 1e6
    totals["cost_usd_batch"] = totals["cost_usd"] * (1 - prices.batch_discount)
    totals["cost_usd_batch_with_caching"] = totals["cost_usd_with_caching"] * (1 - prices.batch_discount)
    return totals
