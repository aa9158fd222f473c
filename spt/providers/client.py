"""LLMClient: the one object every API stage talks to.

Before the first paid call (`async with client`) the provider is asked whether it still serves the
model (free model lookups); a retired or unknown model stops the run with one line (ModelUnavailable).
`await client.complete(request, validate=...)` looks the request up in the response cache, else
makes the call through the rate limiter (requests/input/output tokens per minute), the concurrency
bound and bounded retries, prices it from the model registry (or OpenRouter's own usage.cost),
stores it in the cache (committed before it returns) and checks the answer: the JSON answer
(structured output or tool input, after the stage's optional `normalize`) against the full JSON
schema, then the stage's `validate`.
Every request is shaped, limited and priced from the registry entry of its own model
(`request.model`: a stage-3 review model sharing the generator's client is priced at its own
prices), and gets room for the thinking it may do (thinking.py); a max_tokens stop of such a
request is asked again once with twice the room, up to the model's limit.
A bad answer (or a max_tokens stop) is shown back to the model with its problems listed, up to 3
attempts in all, then InvalidOutputError. A refusal (Anthropic `stop_reason: "refusal"`, OpenAI
`message.refusal`) is an outcome, never re-asked: `Refused` carries the paid answer, or with
`accept_refusal=True` (a stage-2 target's answer is data) it is returned. Once --max_cost is spent no new paid call starts
(CostLimitReached). With --batch_api the calls go into provider batches at the batch price
(batch.py): Anthropic Message Batches, or the OpenAI Batch API for provider openai (OpenAI or an
OpenAI-compatible server that implements it); OpenRouter has no batch API.
Reads and writes the response cache (response_cache.py); nothing else.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
from tqdm import tqdm

from spt.utils import RESPONSE_CACHE_DIR, DataError

from . import registry, thinking
from .base import AnswerFormat, ProviderAdapter, ProviderSpec, estimate_tokens
from .batch import ProviderBatcher
from .errors import (
    CostLimitReached,
    InvalidOutputError,
    MissingAPIKeyError,
    ModelUnavailable,
    ProviderError,
    Refused,
    TransientError,
    register_secret,
)
from .models import ModelRegistry, default_registry
from .rate_limiter import RateLimiter, RateLimits
from .response_cache import ResponseCache, request_key
from .retry import RetryPolicy, with_retries
from .schema_subset import provider_schema
from .types import LLMRequest, LLMResponse, Message, Usage

log = logging.getLogger("spt.providers")

MAX_ANSWER_ATTEMPTS = 3
MAX_TOKENS_GROWTH = 2  # a thinking request cut off at max_tokens is asked again with this many times the room
Validator = Callable[[Any], list[str]]


@dataclass
class CostBudget:
    """What a run may spend (`--max_cost`, None = no limit) and has spent, across its clients."""

    max_cost: float | None
    spent_usd: float = 0.0


class LLMClient:
    """One provider, one response cache, one rate limiter, one cost account; use as `async with`.

    Clients of one run that must share `--max_cost` (a generator and a review model on another
    provider) pass the same `budget`."""

    def __init__(
        self,
        provider: str,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        cache_dir: str | Path | None = None,
        max_cost: float | None = None,
        concurrency: int = 64,
        rate_limits: RateLimits = RateLimits(),
        retry: RetryPolicy = RetryPolicy(),
        batch_api: bool = False,
        timeout_s: float = 600.0,
        models: ModelRegistry | None = None,
        batch_idle_s: float = 1.0,
        batch_poll_s: float = 30.0,
        rate_burst_s: float = 1.0,
        budget: CostBudget | None = None,
        max_answer_attempts: int = MAX_ANSWER_ATTEMPTS,
        effort: str | None = None,
        thinking_budget: int | None = None,
        self_hosted: str | None = None,
    ):
        self.spec = registry.spec(provider)
        if batch_api and self.spec.batcher is None:
            raise DataError(
                f"--batch_api is supported for {' and '.join(registry.BATCH_PROVIDERS)}, not {provider}"
                + ("" if self.spec.simulated else f" ({self.spec.title} has no batch API)")
            )
        self.provider = provider
        self.model = model
        self.base_url = base_url.rstrip("/") if base_url else None
        self.cache_dir = Path(cache_dir) if cache_dir else RESPONSE_CACHE_DIR
        self.budget = budget or CostBudget(max_cost)
        self.max_answer_attempts = max_answer_attempts
        self.effort = effort  # the run's thinking settings, for requests that set none
        self.thinking_budget = thinking_budget
        self.concurrency = concurrency
        self.retry = retry
        self.batch_api = batch_api
        self.models = models or default_registry()
        self.limiter = RateLimiter(rate_limits, burst_s=rate_burst_s)
        self.adapter = _make_adapter(self.spec, api_key, self.base_url, timeout_s, self.models, self_hosted)
        self.info = self.adapter.info(model)
        self.require_prices(model)
        self._batch_settings = {"idle_s": batch_idle_s, "poll_s": batch_poll_s}
        self.batcher: ProviderBatcher | None = None
        self.cache: ResponseCache | None = None
        self._semaphore = asyncio.Semaphore(concurrency)
        self._inflight: dict[str, asyncio.Future] = {}
        self._prefix_written: dict[str, asyncio.Event] = {}
        self._bar: tqdm | None = None
        # Totals of this run (cache hits cost nothing and are not in `usage`).
        self.usage = Usage()
        self.cost_usd = 0.0
        self.calls_made = 0  # paid model calls that returned an answer
        self.cache_hits = 0  # model calls served from the response cache
        self.retries = 0  # failed attempts that were retried
        self.reasks = 0  # answers sent back to the model with their problems
        self.refusals = 0  # answers the model refused (never re-asked)
        self.max_tokens_retries = 0  # max_tokens stops of thinking requests asked again with a larger budget

    def require_prices(self, model: str) -> None:
        """DataError when --max_cost is set and `model` (one this client will call) has no prices."""
        info = self.adapter.info(model)
        if self.budget.max_cost is not None and info.prices is None and not self.spec.simulated:
            raise DataError(
                f"--max_cost: {model} has no prices in {self.models.where} ({info.entry}); "
                "add its prices there, or run without --max_cost"
            )

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> LLMClient:
        await self.preflight()
        self.cache = ResponseCache(self.cache_dir)
        if self.batch_api:
            self.batcher = self.spec.batcher(
                self.adapter, self.cache_dir, self._record_batch_result, **self._batch_settings
            )
        return self

    async def __aexit__(self, *exc_info) -> None:
        if self.batcher is not None:
            await self.batcher.aclose()
        await self.adapter.aclose()
        if self.cache is not None:
            self.cache.close()
        if self._bar is not None and not self._bar.disable:  # still open: show the final totals
            self._bar.set_postfix_str(self.postfix())

    async def preflight(self) -> None:
        """ModelUnavailable unless the provider serves the model (a free lookup, before any paid call)."""
        reason = await with_retries(lambda: self.adapter.model_status(self.model), self.retry, self._on_retry)
        if reason is None:
            if self.info.retired():
                log.warning(
                    "%s is past its retirement date (%s) in %s, but the provider still serves it",
                    self.model,
                    self.info.retirement,
                    self.models.where,
                )
            return
        state = "retired" if self.info.retired() else "not served by this provider"
        raise ModelUnavailable(self.model, state, reason, self.models.current_models(self.provider))

    # ------------------------------------------------------------------ progress

    def progress_bar(self, total: int, desc: str) -> tqdm:
        """A tqdm bar the stage advances per item; the client keeps tokens, cache share and cost in its postfix."""
        self._bar = tqdm(total=total, desc=desc, unit="item", dynamic_ncols=True)
        self._bar.set_postfix_str(self.postfix(), refresh=False)
        return self._bar

    def postfix(self) -> str:
        u = self.usage
        prompt = u.input_tokens + u.cache_creation_input_tokens + u.cache_read_input_tokens
        share = 100 * u.cache_read_input_tokens / prompt if prompt else 0.0
        return f"in {_short(prompt)} out {_short(u.output_tokens)} cached {share:.0f}% ${self.cost_usd:.3f}" + (
            f" retries {self.retries}" if self.retries else ""
        )

    def summary(self) -> str:
        """One line for the end of a run."""
        return (
            f"{self.calls_made} paid calls, {self.cache_hits} from the response cache, {self.retries} retries, "
            f"{self.reasks} re-asks, {self.refusals} refusals, {self.max_tokens_retries} max_tokens stops asked "
            f"again with a larger budget; tokens {self.postfix()}"
        )

    # ------------------------------------------------------------------ the public call

    async def complete(
        self,
        request: LLMRequest,
        validate: Validator | None = None,
        *,
        normalize: Callable[[Any], Any] | None = None,
        accept_max_tokens: bool = False,
        accept_refusal: bool = False,
    ) -> LLMResponse:
        """The validated answer to `request` (see the module docstring).

        `request.max_tokens` is the answer's budget: the thinking the request may do (thinking.py, from
        the registry entry of `request.model`) is added on top, up to the model's output limit.
        `normalize(tool_input)` returns the tool input respelt (or otherwise prepared by the stage)
        before it is checked; the response carries what it returned.
        `validate(tool_input)` (or `validate(text)` without a tool) returns a list of problems.
        `accept_max_tokens=True` returns a text answer cut off at max_tokens instead of re-asking.
        A max_tokens stop of a request that may think is first retried once with a larger budget
        (`max_tokens_retries`), since the thinking may have used up the room of the answer.
        A refused answer raises Refused, or with `accept_refusal=True` is returned unchecked (`.refused`):
        it is never asked again, neither as a bad answer nor as a max_tokens stop.
        """
        if self.cache is None:
            raise RuntimeError("use the client as `async with client:` before calling complete()")
        info = self.adapter.info(request.model)
        request = thinking.resolve(
            request, info, self.models.thinking_allowance, effort=self.effort, thinking_budget=self.thinking_budget
        )
        may_think = thinking.plan(request, info, self.models.thinking_allowance).thinks
        messages = list(request.messages)
        total_usage, total_cost, all_cached, enlarged, attempt = Usage(), 0.0, True, False, 0
        while attempt < self.max_answer_attempts:
            current = replace(request, messages=tuple(messages))
            response = await self._call(current)
            total_usage += response.usage
            total_cost += response.cost_usd
            all_cached = all_cached and response.from_cache
            if (
                response.stop_reason == "max_tokens"
                and may_think
                and not enlarged
                and request.max_tokens < info.max_output_tokens
            ):
                enlarged = True
                self.max_tokens_retries += 1
                request = replace(
                    request, max_tokens=min(MAX_TOKENS_GROWTH * request.max_tokens, info.max_output_tokens)
                )
                log.info(
                    "max_tokens stop%s: asking again with max_tokens %d",
                    f" ({request.label})" if request.label else "",
                    request.max_tokens,
                )
                continue
            attempt += 1
            response = replace(
                response,
                usage=total_usage,
                cost_usd=total_cost,
                from_cache=all_cached,
                attempts=attempt + enlarged,
                extra=dict(response.extra),
            )
            if response.refused:  # an outcome: asking again would be refused again, and paid again
                self.refusals += 1
                log.info("refused%s: %s", f" ({request.label})" if request.label else "", response.text[:200])
                if accept_refusal:
                    return response
                raise Refused(response)
            if normalize is not None and response.tool_input is not None:
                response = replace(response, tool_input=normalize(response.tool_input))
            fmt = self.adapter.answer_format(current)
            problems = answer_problems(current, response, validate, accept_max_tokens, fmt)
            if not problems:
                return response
            if attempt == self.max_answer_attempts:
                break
            self.reasks += 1
            log.info("re-asking%s: %s", f" ({request.label})" if request.label else "", "; ".join(problems[:3]))
            messages += [
                Message("assistant", answer_as_text(response, fmt)),
                Message("user", reask_text(problems, fmt)),
            ]
        raise InvalidOutputError(problems, response)

    # ------------------------------------------------------------------ one model call

    async def _call(self, request: LLMRequest) -> LLMResponse:
        """One model call, from the cache if it was ever paid for; identical concurrent calls share one."""
        key = request_key(request, self.provider, self.base_url)
        cached = self.cache.get(key)
        while cached is None and key in self._inflight:  # the same call is being made: wait, then look again
            await asyncio.wait([self._inflight[key]])
            cached = self.cache.get(key)
        if cached is None and self.batcher is not None and self.batcher.unfinished_batch_of(key):
            await self._resume_batch(key)
            cached = self.cache.get(key)
        if cached is not None:
            self.cache_hits += 1
            return replace(cached, cost_usd=0.0, from_cache=True)
        done = asyncio.get_running_loop().create_future()
        self._inflight[key] = done
        try:
            if self.batcher is not None:
                self._check_budget()
                return await with_retries(lambda: self.batcher.submit(key, request), self.retry, self._on_retry)
            return await self._paid_call(key, request)
        finally:  # success or not: waiters look in the cache again (and make the call themselves if it failed)
            del self._inflight[key]
            done.set_result(None)

    async def _paid_call(self, key: str, request: LLMRequest) -> LLMResponse:
        self._check_budget()
        # The first call with a new cached prefix goes alone; the others wait and then read it from the
        # provider's prompt cache instead of all writing it at once.
        info = self.adapter.info(request.model)  # every limit and price from the request's own model
        prefix_tokens, prefix_id = cached_prefix(request) if not self.spec.simulated else (0, None)
        if prefix_tokens < info.min_cache_tokens:
            prefix_id = None  # too short for the provider to cache: nothing to wait for
        writes_prefix = prefix_id is not None and prefix_id not in self._prefix_written
        estimated_input = estimate_input_tokens(request)
        if writes_prefix:
            self._prefix_written[prefix_id] = asyncio.Event()
        elif prefix_id is not None:
            await self._prefix_written[prefix_id].wait()
            estimated_input = max(1, estimated_input - prefix_tokens)  # cache reads do not count toward ITPM
        try:
            async with self._semaphore:
                self._check_budget()
                wire = await with_retries(lambda: self._attempt(request, estimated_input), self.retry, self._on_retry)
        finally:
            if writes_prefix:
                self._prefix_written[prefix_id].set()
        response = wire.response
        provider_cost = response.extra.get("provider_cost_usd")
        response = replace(response, cost_usd=provider_cost if provider_cost is not None else info.cost(response.usage))
        self._record(key, response)
        return response

    async def _attempt(self, request: LLMRequest, estimated_input: int):
        """One try through the rate limiter, which is then corrected by the real usage."""
        await self.limiter.acquire(estimated_input, request.max_tokens)
        try:
            wire = await self.adapter.send(request)
        except TransientError as exc:
            self.limiter.settle(estimated_input, estimated_input, request.max_tokens, 0)
            if exc.rate_limited and exc.retry_after:
                self.limiter.pause(exc.retry_after)
            raise
        usage = wire.response.usage
        self.limiter.observe_headers(wire.headers)
        self.limiter.settle(
            estimated_input,
            usage.input_tokens + usage.cache_creation_input_tokens,
            request.max_tokens,
            usage.output_tokens,
        )
        return wire

    def _record(self, key: str, response: LLMResponse) -> None:
        """Store a paid response (committed) and count it."""
        self.cache.put(key, response)
        self.usage += response.usage
        self.cost_usd += response.cost_usd
        self.budget.spent_usd += response.cost_usd
        self.calls_made += 1
        if self._bar is not None:
            self._bar.set_postfix_str(self.postfix(), refresh=False)

    def _record_batch_result(self, key: str, response: LLMResponse) -> LLMResponse:
        info = self.adapter.info(response.extra.get("request_model") or response.model)
        response = replace(response, cost_usd=info.cost(response.usage, batch=True, cache_ttl=self.batcher.cache_ttl))
        self._record(key, response)
        return response

    async def _resume_batch(self, key: str) -> None:
        batch_id = self.batcher.unfinished_batch_of(key)
        try:
            await self.batcher.resume(batch_id)
        except (ProviderError, TransientError) as exc:
            log.warning("could not resume batch %s (%s); submitting its requests again", batch_id, exc)
            self.batcher.forget(batch_id)

    def _check_budget(self) -> None:
        if self.budget.max_cost is not None and self.budget.spent_usd >= self.budget.max_cost:
            raise CostLimitReached(self.budget.spent_usd, self.budget.max_cost)

    def _on_retry(self, error: TransientError, wait_s: float) -> None:
        self.retries += 1
        log.debug("retrying in %.2f s after: %s", wait_s, error)
        if self._bar is not None:
            self._bar.set_postfix_str(self.postfix(), refresh=False)


# ---------------------------------------------------------------------- answer checking


@lru_cache(maxsize=64)
def _schema_validator(schema_json: str) -> jsonschema.protocols.Validator:
    schema = json.loads(schema_json)
    return jsonschema.validators.validator_for(schema)(schema)


def schema_problems(schema: dict, value: Any) -> list[str]:
    """Every way `value` breaks `schema`, one line each, with the path to the offending field."""
    validator = _schema_validator(json.dumps(schema, sort_keys=True))
    errors = sorted(validator.iter_errors(value), key=lambda e: list(map(str, e.absolute_path)))
    return [f"{'/'.join(map(str, error.absolute_path)) or '(top level)'}: {_describe(error)}" for error in errors]


def _describe(error: jsonschema.ValidationError) -> str:
    """A short problem statement; jsonschema's own message repeats the whole offending value."""
    if error.validator in ("minItems", "maxItems") and isinstance(error.instance, list):
        wanted = error.schema.get("minItems"), error.schema.get("maxItems")
        count = f"exactly {wanted[0]}" if wanted[0] == wanted[1] else f"{error.validator} {error.validator_value}"
        return f"expected {count} items, got {len(error.instance)}"
    if error.validator == "required":
        return error.message.split(" is a required property")[0] + " is a required property (missing)"
    return error.message[:300]


def answer_problems(
    request: LLMRequest, response: LLMResponse, validate: Validator | None, accept_max_tokens: bool, fmt: AnswerFormat
) -> list[str]:
    """Why `response` is not an acceptable answer to `request` ([] = acceptable)."""
    if response.stop_reason == "max_tokens" and not (accept_max_tokens and request.tool is None):
        return [
            f"the answer was cut off at the output limit of {request.max_tokens} tokens; "
            "give a complete answer that is shorter"
        ]
    if request.tool is not None:
        if response.tool_input is None:
            if "raw_tool_arguments" in response.extra:
                return [
                    "your answer was not valid JSON"
                    if fmt.mode == "structured"
                    else f"the input of your `{request.tool.name}` call was not valid JSON"
                ]
            return [
                "your answer was empty"
                if fmt.mode == "structured"
                else f"you did not call the tool `{request.tool.name}`; answer only by calling it"
            ]
        problems = schema_problems(request.tool.input_schema, response.tool_input)
        if problems:
            return problems
        return list(validate(response.tool_input)) if validate else []
    return list(validate(response.text)) if validate else []


def answer_as_text(response: LLMResponse, fmt: AnswerFormat) -> str:
    """The rejected answer as an assistant turn (provider-neutral: plain text; never its thinking)."""
    raw = (
        json.dumps(response.tool_input, ensure_ascii=False)
        if response.tool_input is not None
        else response.extra.get("raw_tool_arguments")
    )
    if raw is None:
        return response.text or "(my answer was empty)"
    return raw if fmt.mode == "structured" else f"I called `{fmt.tool_name}` with this input:\n{raw}"


def reask_text(problems: list[str], fmt: AnswerFormat) -> str:
    listed = "\n".join(f"- {problem}" for problem in problems)
    how = (
        " as JSON in the required format"
        if fmt.mode == "structured"
        else f" by calling the tool `{fmt.tool_name}`"
        if fmt.mode
        else ""
    )
    return f"Your answer has these problems:\n{listed}\n\nAnswer again in full{how}, fixing all of them."


# ---------------------------------------------------------------------- helpers


def estimate_input_tokens(request: LLMRequest) -> int:
    """Characters/4 of everything sent (the limiter's reservation before the real usage is known)."""
    chars = sum(len(block.text) for block in request.system) + sum(len(m.content) for m in request.messages)
    if request.tool is not None:
        chars += len(json.dumps(request.tool.input_schema)) + len(request.tool.description)
    return estimate_tokens(chars)


def cached_prefix(request: LLMRequest) -> tuple[int, str | None]:
    """(estimated tokens, identity) of the prompt prefix up to the last cache breakpoint
    (tool definition -> system blocks -> messages; the tool always carries one), or (0, None).
    The tool counts as sent: its provider-safe schema, which does not depend on an item count."""
    pieces: list[str] = []
    end = 0
    if request.tool is not None:
        pieces.append(json.dumps(provider_schema(request.tool.input_schema)) + request.tool.description)
        end = len(pieces)
    for block in request.system:
        pieces.append(block.text)
        end = len(pieces) if block.cache else end
    for message in request.messages:
        pieces.append(message.content)
        end = len(pieces) if message.cache else end
    if not end:
        return 0, None
    prefix = pieces[:end]
    identity = hashlib.sha256(json.dumps([request.model] + prefix).encode()).hexdigest()
    return estimate_tokens(sum(map(len, prefix))), identity


def _short(count: int) -> str:
    return f"{count / 1e6:.2f}M" if count >= 1e6 else f"{count / 1e3:.1f}k" if count >= 1e3 else str(count)


def _make_adapter(
    spec: ProviderSpec,
    api_key: str | None,
    base_url: str | None,
    timeout_s: float,
    models: ModelRegistry,
    self_hosted: str | None = None,
) -> ProviderAdapter:
    """The provider's adapter; MissingAPIKeyError when it needs a key and has none."""
    if spec.api_key_variable is not None:
        if not api_key:
            raise MissingAPIKeyError(spec.api_key_variable, spec.name)
        register_secret(api_key)
    return spec.adapter(api_key, base_url, timeout_s, models, spec.self_hosted(base_url, self_hosted))
