"""The provider layer: one client for every API stage (see client.py and types.py).

from spt.providers import LLMClient, LLMRequest, Message, SystemBlock, Tool, add_provider_arguments, client_from_args
"""

from __future__ import annotations

from .cli import (
    add_provider_arguments,
    check_flags,
    check_output_folders,
    client_from_args,
    load_provider_config,
    provider_for_model,
)
from .client import LLMClient, answer_problems, schema_problems
from .errors import CostLimitReached, InvalidOutputError, MissingAPIKeyError, ModelUnavailable, ProviderError, Refused
from .estimate import estimate_cost, render_wire_request
from .models import ModelInfo, ModelRegistry, check_settings, default_registry
from .rate_limiter import RateLimiter, RateLimits
from .response_cache import ResponseCache, request_key
from .retry import RetryPolicy
from .types import LLMRequest, LLMResponse, Message, SystemBlock, Tool, Usage

__all__ = [
    "LLMClient",
    "LLMRequest",
    "LLMResponse",
    "Message",
    "SystemBlock",
    "Tool",
    "Usage",
    "add_provider_arguments",
    "check_flags",
    "check_output_folders",
    "client_from_args",
    "load_provider_config",
    "provider_for_model",
    "ProviderError",
    "MissingAPIKeyError",
    "CostLimitReached",
    "InvalidOutputError",
    "ModelUnavailable",
    "Refused",
    "estimate_cost",
    "render_wire_request",
    "answer_problems",
    "schema_problems",
    "ModelInfo",
    "ModelRegistry",
    "check_settings",
    "default_registry",
    "RateLimiter",
    "RateLimits",
    "ResponseCache",
    "request_key",
    "RetryPolicy",
]
