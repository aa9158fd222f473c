"""The one table of providers: every provider module declares a base.ProviderSpec, and PROVIDERS lists
them (in this order in --provider's choices and the error messages). Everything that differs by
provider (argparse choices, API-key and base-URL variables, the provider a model name implies,
request rendering, answer format, adapter, batcher, thinking switches, stage 2's engines) is read
from here; adding a provider is adding its module and one line below (docs/adding_a_provider.md).
Reads and writes nothing.
"""

from __future__ import annotations

from spt.utils import DataError

from . import anthropic_provider, mock_provider, openai_provider, openrouter_provider
from .base import ProviderSpec
from .models import ModelInfo, ModelRegistry

PROVIDERS: dict[str, ProviderSpec] = {
    spec.name: spec
    for spec in (
        anthropic_provider.SPEC,
        openai_provider.SPEC,
        openrouter_provider.SPEC,
        mock_provider.SPEC,
    )
}
NAMES = tuple(PROVIDERS)
API_KEY_VARIABLES = tuple(spec.api_key_variable for spec in PROVIDERS.values() if spec.api_key_variable)
BATCH_PROVIDERS = tuple(name for name, spec in PROVIDERS.items() if spec.batcher is not None)
STAGE_2_PROVIDERS = tuple(name for name, spec in PROVIDERS.items() if spec.serves_stage_2)
OFFLINE = next(name for name, spec in PROVIDERS.items() if spec.simulated)  # what runs without a key


def spec(provider: str) -> ProviderSpec:
    """The spec of `provider`; a DataError listing the choices for any other name."""
    if provider not in PROVIDERS:
        raise DataError(f"unknown provider {provider!r}; choose one of {', '.join(NAMES)}")
    return PROVIDERS[provider]


def named_by(model: str) -> str | None:
    """The first provider whose model names `model` matches (claude-* anthropic, ...), else None."""
    return next((name for name, spec in PROVIDERS.items() if spec.names_model(model)), None)


def is_self_hosted(provider: str, base_url: str | None, choice: str | None = None) -> bool:
    """Whether `provider` at `base_url` is a server of the user's own (--self_hosted `choice`)."""
    return spec(provider).self_hosted(base_url, choice)


def model_info(
    models: ModelRegistry, model: str, provider: str, base_url: str | None = None, self_hosted: str | None = None
) -> ModelInfo:
    """The registry entry `model` gets on `provider` at `base_url` (as the provider's adapter looks it up)."""
    return models.lookup(
        model, provider, self_hosted=is_self_hosted(provider, base_url, self_hosted), quiet=spec(provider).simulated
    )
