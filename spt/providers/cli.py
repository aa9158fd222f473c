"""The provider flags every API stage shares, and the client they describe.

`add_provider_arguments(parser)` adds --provider, --base_url, --batch_api, --max_cost,
--concurrency, --cache_dir, --rpm/--itpm/--otpm, and with `thinking=True` --effort and
--thinking_budget; `client_from_args(args, model=...)` builds the LLMClient (provider from the
model registry, else from the model name, unless --provider is given; keys from the environment
or .env) after checking, before any call, that the model can honour the thinking and sampling
flags. Defaults come from config/providers.json (or the file named by SPT_PROVIDERS_CONFIG).
Reads .env, the providers config and the model registry; writes nothing.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from spt.utils import (
    CONFIG_DIR,
    RESPONSE_CACHE_DIR,
    DataError,
    check_writable_dir,
    data_path,
    display_path,
    load_env,
    read_json,
)

from . import registry
from .client import LLMClient
from .models import EFFORT_LEVELS, MIN_THINKING_BUDGET, check_settings, default_registry, refused_sampling
from .openai_provider import SELF_HOSTED_CHOICES
from .rate_limiter import RateLimits
from .retry import RetryPolicy

log = logging.getLogger("spt.providers")
PROVIDERS_CONFIG = CONFIG_DIR / "providers.json"


def provider_for_model(model: str) -> str:
    """The registry entry's provider; else the first provider whose model names match
    (ProviderSpec.names_model: claude-* -> anthropic; gpt-*, o1/o3/o4* -> openai; org/model -> openrouter)."""
    info = default_registry().lookup(model, registry.OFFLINE, quiet=True)
    if info.known:
        return info.provider
    provider = registry.named_by(model)
    if provider is None:
        raise DataError(f"cannot tell the provider of model {model!r}; pass --provider")
    return provider


def load_provider_config(path: str | Path | None = None) -> dict:
    """config/providers.json (or $SPT_PROVIDERS_CONFIG), checked for the keys the client needs. A provider
    without an entry, or an entry without some keys, gets provider_defaults (so a new provider needs none)."""
    path = Path(path or os.environ.get("SPT_PROVIDERS_CONFIG") or PROVIDERS_CONFIG)
    config = read_json(path)
    where = display_path(path)
    if not isinstance(config, dict):
        raise DataError(f"{where}: expected a JSON object at the top level")
    for key in ("concurrency", "timeout_s", "retry", "batch", "providers"):
        if key not in config:
            raise DataError(f"{where}: missing key {key!r}")
    _check_number(config, "concurrency", where, whole=True, least=1)
    _check_number(config, "timeout_s", where, above_zero=True)
    for section, keys in (("retry", ("max_attempts", "base_s", "cap_s")), ("batch", ("idle_s", "poll_s"))):
        if not isinstance(config[section], dict):
            raise DataError(f"{where}: {section} must be an object")
        unknown = set(config[section]) - set(keys)
        if unknown:
            raise DataError(f"{where}: {section}: unknown key {sorted(unknown)[0]!r}")
        for key in keys:
            if key in config[section]:
                _check_number(
                    config[section],
                    key,
                    f"{where}: {section}",
                    whole=key == "max_attempts",
                    least=1 if key == "max_attempts" else 0,
                )
    if not isinstance(config["providers"], dict):
        raise DataError(f"{where}: providers must be an object")
    for provider in registry.NAMES:
        defaults = config["providers"].get(provider, {})
        if not isinstance(defaults, dict):
            raise DataError(f"{where}: providers.{provider} must be an object")
        for key in ("rpm", "itpm", "otpm"):
            if defaults.get(key) is not None:
                _check_number(defaults, key, f"{where}: providers.{provider}", least=0)
        if not isinstance(defaults.get("base_url"), (str, type(None))):
            raise DataError(f"{where}: providers.{provider}.base_url must be a string or null")
        config["providers"][provider] = {**provider_defaults(provider), **defaults}
    return config


def provider_defaults(provider: str) -> dict:
    """What a provider without an entry in config/providers.json gets: no rate limits of our own (the
    provider's rate-limit headers still tighten the limiter) and its spec's default_base_url."""
    return {"rpm": None, "itpm": None, "otpm": None, "base_url": registry.spec(provider).default_base_url}


def _check_number(
    section: dict, key: str, where: str, *, whole: bool = False, least: float | None = None, above_zero: bool = False
) -> None:
    """DataError naming `where` and `key` unless section[key] is a number (an integer when `whole`)
    of at least `least` (above 0 when `above_zero`)."""
    value = section[key]
    kind = int if whole else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind):
        raise DataError(f"{where}: {key} must be {'a whole number' if whole else 'a number'}, got {value!r}")
    if (least is not None and value < least) or (above_zero and value <= 0):
        raise DataError(f"{where}: {key} must be {'above 0' if above_zero else f'at least {least}'}, got {value!r}")


def add_provider_arguments(
    parser: argparse.ArgumentParser, *, thinking: bool = False, dry_run: str | None = None
) -> None:
    """The provider flags; with `dry_run` (what a dry run prints) also --dry_run and --dry_run_full."""
    group = parser.add_argument_group(
        "provider (see config/providers.json for the defaults, config/models.json for what each model accepts)"
    )
    if dry_run:
        group.add_argument("--dry_run", action="store_true", help=f"print {dry_run}; call nothing, write nothing")
        group.add_argument(
            "--dry_run_full",
            dest="dry_run",
            action="store_const",
            const="full",
            help="--dry_run plus the full JSON body of the first request",
        )
    if thinking:
        group.add_argument(
            "--effort",
            choices=EFFORT_LEVELS,
            default=None,
            help="thinking effort of adaptive-thinking models (default: the model's own)",
        )
        group.add_argument(
            "--thinking_budget",
            type=int,
            default=None,
            metavar="TOKENS",
            help="thinking tokens of budget-thinking models (at least 1024, below --max_tokens)",
        )
    named = ", ".join(f"{spec.model_hint} {name}" for name, spec in registry.PROVIDERS.items() if spec.model_hint)
    group.add_argument(
        "--provider",
        choices=registry.NAMES,
        default=None,
        help=f"API provider; default from the model name ({named}). `{registry.OFFLINE}` answers "
        "offline with generated fake data.",
    )
    group.add_argument(
        "--base_url", default=None, help="API endpoint (a proxy, a vLLM/SGLang server); default $<PROVIDER>_BASE_URL"
    )
    group.add_argument(
        "--self_hosted",
        choices=SELF_HOSTED_CHOICES,
        default="auto",
        help="provider openai: is --base_url a server of your own (vLLM, SGLang: no charge, top_k "
        "and chat-template switches accepted; unknown models get the openai-compatible defaults) "
        "rather than OpenAI or a proxy / Azure deployment of it? auto: yes unless the URL names "
        "api.openai.com",
    )
    batching = "; ".join(f"{name}: {spec.batch_about}" for name, spec in registry.PROVIDERS.items() if spec.batcher)
    unbatched = ", ".join(name for name, spec in registry.PROVIDERS.items() if not spec.batcher and not spec.simulated)
    group.add_argument(
        "--batch_api",
        action="store_true",
        help=f"send the calls as provider batches at half price, results within 24 h ({batching}; not {unbatched})",
    )
    group.add_argument(
        "--max_cost",
        type=float,
        default=None,
        metavar="USD",
        help="stop cleanly (exit 3) once this much has been spent in this run",
    )
    group.add_argument(
        "--concurrency",
        type=int,
        default=None,
        metavar="N",
        help="most requests in flight at once (the rate limits usually bind first)",
    )
    group.add_argument(
        "--cache_dir",
        type=data_path,
        default=None,
        help="response cache folder (default data/.response_cache); reruns reuse it",
    )
    for flag, what in (("--rpm", "requests"), ("--itpm", "input tokens"), ("--otpm", "output tokens")):
        group.add_argument(
            flag, type=float, default=None, metavar="N", help=f"{what} per minute (0 = no limit of our own)"
        )


def check_output_folders(args: argparse.Namespace, output_dir: Path, what: str) -> None:
    """Before any paid call (not on a dry run): the step's output folder and the response cache can be
    written (utils.check_writable_dir: one-line error, exit 2)."""
    if not getattr(args, "dry_run", False):
        check_writable_dir(output_dir, what)
        check_writable_dir(args.cache_dir or RESPONSE_CACHE_DIR, "--cache_dir")


def client_from_args(
    args: argparse.Namespace, model: str | None = None, *, drop_refused_sampling: bool = False, **overrides
) -> LLMClient:
    """The LLMClient the parsed flags describe; MissingAPIKeyError if the provider's key is not set.

    `drop_refused_sampling`: see check_flags. `overrides` are passed on to LLMClient (e.g.
    retry=RetryPolicy(...) in tests).
    """
    load_env()
    model = model or getattr(args, "model", None)
    if not model:
        raise DataError("no model given (--model)")
    provider = getattr(args, "provider", None) or provider_for_model(model)
    config = load_provider_config()
    defaults = config["providers"][provider]
    spec = registry.spec(provider)
    base_url = (
        getattr(args, "base_url", None) or os.environ.get(spec.base_url_variable or "") or defaults.get("base_url")
    )
    limits = RateLimits(*(_limit(getattr(args, name, None), defaults.get(name)) for name in ("rpm", "itpm", "otpm")))
    concurrency = getattr(args, "concurrency", None)
    concurrency = config["concurrency"] if concurrency is None else concurrency
    if concurrency < 1:
        raise DataError(f"--concurrency must be at least 1, got {concurrency}")
    for name in ("rpm", "itpm", "otpm"):
        value = getattr(args, name, None)
        if value is not None and value < 0:
            raise DataError(f"--{name} must be 0 (no limit of our own) or more, got {value:g}")
    budget = getattr(args, "thinking_budget", None)
    if budget is not None and budget < MIN_THINKING_BUDGET:
        raise DataError(f"--thinking_budget must be at least {MIN_THINKING_BUDGET} tokens, got {budget}")
    max_cost = getattr(args, "max_cost", None)
    if max_cost is not None and max_cost < 0:
        raise DataError(f"--max_cost must not be negative, got {max_cost}")
    check_flags(args, model, provider, base_url, drop_refused_sampling=drop_refused_sampling)
    settings = dict(
        api_key=os.environ.get(spec.api_key_variable) if spec.api_key_variable else None,
        base_url=base_url,
        cache_dir=getattr(args, "cache_dir", None),
        max_cost=max_cost,
        concurrency=concurrency,
        rate_limits=limits,
        retry=RetryPolicy(**config["retry"]),
        batch_api=bool(getattr(args, "batch_api", False)),
        timeout_s=float(config["timeout_s"]),
        batch_idle_s=float(config["batch"]["idle_s"]),
        batch_poll_s=float(config["batch"]["poll_s"]),
        effort=getattr(args, "effort", None),
        thinking_budget=getattr(args, "thinking_budget", None),
        self_hosted=getattr(args, "self_hosted", None),
    )
    settings.update(overrides)
    return LLMClient(provider, model, **settings)


def check_flags(
    args: argparse.Namespace,
    model: str,
    provider: str | None = None,
    base_url: str | None = None,
    *,
    drop_refused_sampling: bool = False,
) -> None:
    """DataError, before any call, when the model (as config/models.json describes it) cannot honour
    the thinking or sampling flags in `args` (--effort, --thinking_budget, --max_tokens, --temperature,
    --top_p, --top_k; those a stage lacks count as not given). With `drop_refused_sampling` a sampling
    flag the model refuses is instead set to None on `args` with one warning, so it is never sent."""
    provider = provider or getattr(args, "provider", None) or provider_for_model(model)
    if registry.spec(provider).simulated:
        return
    base_url = base_url or getattr(args, "base_url", None)
    info = registry.model_info(default_registry(), model, provider, base_url, getattr(args, "self_hosted", None))
    sampling = {name: getattr(args, name, None) for name in ("temperature", "top_p", "top_k")}
    if drop_refused_sampling:
        for name, why in refused_sampling(info, sampling).items():
            log.warning(
                "--%s %s is not sent: %s %s (config/models.json: %s)", name, sampling[name], model, why, info.entry
            )
            setattr(args, name, None)
            sampling[name] = None
    check_settings(
        info,
        max_tokens=getattr(args, "max_tokens", None),
        effort=getattr(args, "effort", None),
        thinking_budget=getattr(args, "thinking_budget", None),
        sampling=sampling,
    )


def _limit(flag: float | None, default: float | None) -> float | None:
    value = flag if flag is not None else default
    return value if value else None
