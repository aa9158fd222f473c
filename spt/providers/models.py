"""The model registry (config/models.json): what each model accepts and what it costs.

Every request is shaped from a `ModelInfo` (adapters read its thinking style, output mode,
sampling parameters, ...) and every call is priced from it. A model is found by its exact
id, else by the longest `prefix*` pattern, else it gets its provider's default entry (with one
warning per model). `check_settings` turns a flag the model cannot honour into an error before
any call. Reads the registry file (or $SPT_MODELS_CONFIG); writes nothing.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from spt.utils import CONFIG_DIR, DataError, display_path, read_json

from .types import Usage

MODELS_FILE = CONFIG_DIR / "models.json"
PRICE_FIELDS = ("input", "output", "cache_write_5m", "cache_write_1h", "cache_read")
THINKING_STYLES = ("none", "budget", "adaptive", "adaptive-always-on")
THINKING_OFF = ("disabled", "between_tools", "none", "reasoning_disabled")
OUTPUT_MODES = ("structured", "tool")
EFFORT_LEVELS = ("low", "medium", "high", "xhigh", "max")
SAMPLING_PARAMS = ("temperature", "top_p", "top_k")
MIN_THINKING_BUDGET = 1024
# Thinking tokens reserved per effort level where a registry file names none (config/models.json does; an assumption).
DEFAULT_THINKING_ALLOWANCE = {"minimal": 1024, "low": 4096, "medium": 8192, "high": 16384, "xhigh": 32768, "max": 65536}
ENTRY_FIELDS = (
    "provider",
    "prices",
    "batch_discount",
    "context_tokens",
    "max_output_tokens",
    "thinking",
    "effort_levels",
    "default_effort",
    "thinking_off",
    "thinking_display",
    "forced_tool",
    "sampling_params",
    "sampling_one_of",
    "structured_output",
    "output_mode",
    "chat_completions",
    "min_cache_tokens",
    "retirement",
    "source",
)
# Fields a provider default may leave out (the value shown applies).
OPTIONAL_FIELDS = {
    "provider": None,
    "batch_discount": None,
    "default_effort": None,
    "thinking_display": False,
    "sampling_one_of": False,
    "chat_completions": True,
}
log = logging.getLogger("spt.providers")
SELF_HOSTED_DEFAULTS = "openai-compatible"  # the defaults entry of an unknown model on a server of one's own


@dataclass(frozen=True)
class ModelPrices:
    """USD per million tokens of each kind."""

    input: float
    output: float
    cache_write_5m: float
    cache_write_1h: float
    cache_read: float


@dataclass(frozen=True)
class ModelInfo:
    """One model's registry entry, its provider default filled in."""

    model: str
    entry: str  # the registry key that matched ("defaults.<provider>" when none did)
    provider: str
    prices: ModelPrices | None  # None: unpriced
    batch_discount: float
    context_tokens: int
    max_output_tokens: int
    thinking: str
    effort_levels: tuple[str, ...]
    default_effort: str | None  # the effort the model thinks at when none is sent (None: not documented)
    thinking_off: str | None
    thinking_display: bool  # thinking text comes back empty unless `thinking.display` asks for it
    forced_tool: bool
    sampling_params: tuple[str, ...]
    sampling_one_of: bool  # temperature and top_p refused together: only one is sent
    structured_output: bool
    output_mode: str
    chat_completions: bool  # served on Chat Completions (False: the Responses API only)
    min_cache_tokens: int
    retirement: str | None
    source: str

    @property
    def known(self) -> bool:
        return not self.entry.startswith("defaults.")

    def retired(self, today: date | None = None) -> bool:
        return self.retirement is not None and date.fromisoformat(self.retirement) <= (today or date.today())

    def cost(self, usage: Usage, *, batch: bool = False, cache_ttl: str = "5m") -> float:
        """USD cost of `usage` (cache writes at the price of `cache_ttl`, 5m or 1h; 0 when unpriced)."""
        if self.prices is None:
            return 0.0
        p = self.prices
        write = p.cache_write_1h if cache_ttl == "1h" else p.cache_write_5m
        usd = (
            usage.input_tokens * p.input
            + usage.output_tokens * p.output
            + usage.cache_creation_input_tokens * write
            + usage.cache_read_input_tokens * p.cache_read
        ) / 1e6
        return usd * (1 - self.batch_discount) if batch else usd


class ModelRegistry:
    """The registry file, loaded and checked once."""

    def __init__(self, path: str | Path | None = None):
        path = Path(path or os.environ.get("SPT_MODELS_CONFIG") or MODELS_FILE)
        raw = read_json(path)
        self.where = where = display_path(path)
        if (
            not isinstance(raw, dict)
            or not isinstance(raw.get("models"), dict)
            or not isinstance(raw.get("defaults"), dict)
        ):
            raise DataError(f"{where}: expected an object with 'defaults' and 'models' objects")
        self.batch_discount = _fraction(raw.get("batch_discount", 0.5), f"{where}: batch_discount")
        self.thinking_allowance = _allowance(
            raw.get("thinking_allowance", DEFAULT_THINKING_ALLOWANCE), f"{where}: thinking_allowance"
        )
        self.defaults = {
            provider: self._checked(entry, f"{where}: defaults.{provider}", provider, complete=True)
            for provider, entry in raw["defaults"].items()
        }
        self.entries = {}
        for pattern, entry in raw["models"].items():
            checked = self._checked(entry, f"{where}: models[{pattern!r}]", None, complete=False)
            if checked["provider"] not in self.defaults:
                raise DataError(
                    f"{where}: models[{pattern!r}].provider {checked['provider']!r} has no entry under "
                    f"'defaults' ({', '.join(self.defaults)})"
                )
            self.entries[pattern] = checked
        self._warned: set[str] = set()

    def _checked(self, entry: object, where: str, provider: str | None, complete: bool) -> dict:
        if not isinstance(entry, dict):
            raise DataError(f"{where}: expected an object")
        unknown = sorted(set(entry) - set(ENTRY_FIELDS))
        if unknown:
            raise DataError(f"{where}: unknown field {unknown[0]!r} (fields: {', '.join(ENTRY_FIELDS)})")
        if complete:
            missing = [f for f in ENTRY_FIELDS if f not in OPTIONAL_FIELDS and f not in entry]
            if missing:
                raise DataError(f"{where}: missing field {missing[0]!r}")
            entry = {**{f: v for f, v in OPTIONAL_FIELDS.items() if v is not None}, **entry, "provider": provider}
        elif not isinstance(entry.get("provider"), str):
            raise DataError(f"{where}: 'provider' is required")
        prices = entry.get("prices")
        if prices is not None and (
            not isinstance(prices, dict)
            or set(prices) != set(PRICE_FIELDS)
            or not all(isinstance(prices[f], (int, float)) and prices[f] >= 0 for f in PRICE_FIELDS)
        ):
            raise DataError(
                f"{where}: prices must be null or have exactly the non-negative numbers {', '.join(PRICE_FIELDS)}"
            )
        for name, allowed in (("thinking", THINKING_STYLES), ("output_mode", OUTPUT_MODES)):
            if name in entry and entry[name] not in allowed:
                raise DataError(f"{where}: {name} must be one of {', '.join(allowed)}, got {entry[name]!r}")
        if entry.get("thinking_off") not in (None, *THINKING_OFF):
            raise DataError(f"{where}: thinking_off must be null or one of {', '.join(THINKING_OFF)}")
        for name, allowed in (("effort_levels", EFFORT_LEVELS + ("minimal",)), ("sampling_params", SAMPLING_PARAMS)):
            if name in entry and (not isinstance(entry[name], list) or set(entry[name]) - set(allowed)):
                raise DataError(f"{where}: {name} must be a list drawn from {', '.join(allowed)}")
        if entry.get("default_effort") is not None and entry["default_effort"] not in EFFORT_LEVELS + ("minimal",):
            raise DataError(f"{where}: default_effort must be null or one of {', '.join(EFFORT_LEVELS)}")
        for name in ("thinking_display", "sampling_one_of", "chat_completions", "forced_tool", "structured_output"):
            if name in entry and not isinstance(entry[name], bool):
                raise DataError(f"{where}: {name} must be true or false")
        if entry.get("retirement") is not None:
            try:
                date.fromisoformat(entry["retirement"])
            except (TypeError, ValueError):
                raise DataError(f"{where}: retirement must be a YYYY-MM-DD date or null") from None
        if "batch_discount" in entry:
            _fraction(entry["batch_discount"], f"{where}: batch_discount")
        return entry

    def lookup(
        self, model: str, provider: str | None = None, *, self_hosted: bool = False, quiet: bool = False
    ) -> ModelInfo:
        """The entry of `model` (ids compared as given, then lower-cased); `provider` (the one the run uses)
        picks the default for an unknown model, with a warning unless `quiet` (the mock takes any name).
        `self_hosted`: a model on a server of the user's own (the `openai-compatible` default applies)."""
        key = next((name for name in (model, model.lower()) if name in self.entries), None) or max(
            (p for p in self.entries if p.endswith("*") and model.lower().startswith(p[:-1])), key=len, default=None
        )
        entry = self.entries.get(key) if key else None
        if entry is not None and provider not in (None, entry["provider"]):
            entry = None  # the same id on another provider (e.g. a self-hosted copy): its default applies
        if entry is None:
            provider = provider or "openai"
            default = SELF_HOSTED_DEFAULTS if self_hosted else provider
            if default not in self.defaults:
                raise DataError(f"{self.where}: no 'defaults' entry for provider {default!r}")
            if model not in self._warned and not quiet:
                self._warned.add(model)
                log.warning(
                    "model %r is not in %s; using the conservative %r defaults (add an entry to shape "
                    "its requests and price it)",
                    model,
                    self.where,
                    default,
                )
            return _info(model, f"defaults.{default}", self.defaults[default], self.batch_discount)
        merged = {**self.defaults[entry["provider"]], **entry}
        return _info(model, key, merged, self.batch_discount)

    def current_models(self, provider: str, today: date | None = None) -> list[str]:
        """The exact (non-pattern) ids of `provider` in the registry that have not retired."""
        return [
            key
            for key, entry in self.entries.items()
            if entry["provider"] == provider and not key.endswith("*") and not self.lookup(key, provider).retired(today)
        ]


def _info(model: str, entry_key: str, entry: dict, batch_discount: float) -> ModelInfo:
    prices = entry.get("prices")
    return ModelInfo(
        model=model,
        entry=entry_key,
        provider=entry["provider"],
        prices=ModelPrices(**{f: float(prices[f]) for f in PRICE_FIELDS}) if prices else None,
        batch_discount=float(entry.get("batch_discount", batch_discount)),
        context_tokens=int(entry["context_tokens"]),
        max_output_tokens=int(entry["max_output_tokens"]),
        thinking=entry["thinking"],
        effort_levels=tuple(entry["effort_levels"]),
        default_effort=entry.get("default_effort"),
        thinking_off=entry["thinking_off"],
        thinking_display=bool(entry["thinking_display"]),
        forced_tool=bool(entry["forced_tool"]),
        sampling_params=tuple(entry["sampling_params"]),
        sampling_one_of=bool(entry["sampling_one_of"]),
        structured_output=bool(entry["structured_output"]),
        output_mode=entry["output_mode"],
        chat_completions=bool(entry["chat_completions"]),
        min_cache_tokens=int(entry["min_cache_tokens"]),
        retirement=entry["retirement"],
        source=entry["source"],
    )


def _allowance(value: object, where: str) -> dict[str, int]:
    """The thinking tokens a request reserves at each effort level (see ThinkingPlan in thinking.py)."""
    levels = EFFORT_LEVELS + ("minimal",)
    if (
        not isinstance(value, dict)
        or set(value) != set(levels)
        or not all(isinstance(value[level], int) and value[level] >= 0 for level in levels)
    ):
        raise DataError(f"{where} must give a non-negative whole number of tokens for each of {', '.join(levels)}")
    return dict(value)


def _fraction(value: object, where: str) -> float:
    if not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise DataError(f"{where} must be a number in [0, 1), got {value!r}")
    return float(value)


def check_settings(
    info: ModelInfo,
    *,
    max_tokens: int | None,
    effort: str | None = None,
    thinking_budget: int | None = None,
    sampling: dict[str, float | None] | None = None,
    registry_file: str = "config/models.json",
) -> None:
    """DataError (before any call) when a flag cannot be honoured by the model as the registry describes it.
    `max_tokens` is the answer's budget: the thinking allowance (thinking.py) comes on top, up to the model's limit."""
    name = f"{info.model} ({info.entry} in {registry_file})"
    if not info.chat_completions:
        raise DataError(
            f"{name} is served only on OpenAI's Responses API, which this project does not use; choose another model"
        )
    if effort is not None:
        if info.thinking not in ("adaptive", "adaptive-always-on") or not info.effort_levels:
            raise DataError(
                f"--effort: {name} takes no effort setting"
                + (" (use --thinking_budget)" if info.thinking == "budget" else "")
            )
        if effort not in info.effort_levels:
            raise DataError(f"--effort {effort}: {name} accepts {', '.join(info.effort_levels)}")
    if thinking_budget is not None:
        if info.thinking != "budget":
            raise DataError(
                f"--thinking_budget: {name} does not take a thinking budget"
                + (" (use --effort)" if info.effort_levels else "")
            )
        if not MIN_THINKING_BUDGET <= thinking_budget < info.max_output_tokens:
            raise DataError(
                f"--thinking_budget must be at least {MIN_THINKING_BUDGET} and below the "
                f"{info.max_output_tokens} output tokens of {name}, got {thinking_budget}"
            )
    if max_tokens is not None and max_tokens > info.max_output_tokens:
        raise DataError(f"--max_tokens {max_tokens} is above the {info.max_output_tokens} output tokens of {name}")
    for param, why in refused_sampling(info, sampling or {}).items():
        raise DataError(f"--{param}: {name} {why}")


def refused_sampling(info: ModelInfo, sampling: dict[str, float | None]) -> dict[str, str]:
    """The sampling flags given (not None) that the model refuses, each with why; the renderers never send them."""
    refused = {}
    for param, value in sampling.items():
        if value is not None and param not in info.sampling_params:
            refused[param] = f"refuses it (sampling parameters it takes: {', '.join(info.sampling_params) or 'none'})"
    if info.sampling_one_of and sampling.get("temperature") is not None and sampling.get("top_p") is not None:
        refused["top_p"] = "takes temperature or top_p, not both (only temperature is sent)"
    return refused


_default_registry: ModelRegistry | None = None


def default_registry() -> ModelRegistry:
    """The project's registry, loaded on first use."""
    global _default_registry
    if _default_registry is None:
        _default_registry = ModelRegistry()
    return _default_registry
