"""Stage 3's batch generation call, and the splitting in halves that all stage-3 calls share.

`in_halves(group, ...)` makes one call for a group of samples (a generation batch, the rewrites
of rejected items, a quality review): a request whose estimated size is over the
`max_context_tokens` budget, or that the provider rejects as too long (HTTP 413 or a
context-length message), is made again for each half, down to single samples; a single sample
still too long fails with an error marked as overlong (`is_context_overflow`). A group the model
refuses (providers.errors.Refused, never re-asked) is sent again one request per sample, so that
only the refusing sample(s) fail, marked as refused, at 1 + (refusing samples) refused calls (a
stage-2 item's A and B share its task, so halving would pay for one more refusal). On request, a
group whose answer stays invalid after the provider layer's re-asks is split in halves too.
`generate(settings, topic, intervention_type, samples)` asks `settings.client` (a
GenerationSettings) for one intervention per sample in a single forced-tool call, validated by
stage_3.validation (bad answers are re-asked by the provider layer); any failure but an
overflow comes back as an error for every sample of the call (CostLimitReached propagates).
Reads and writes nothing.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from spt.providers.client import estimate_input_tokens
from spt.providers.errors import CostLimitReached, InvalidOutputError, ProviderError, Refused
from spt.providers.types import LLMRequest
from spt.stage_3.requests import Sample, generation_request
from spt.stage_3.validation import generation_normaliser, generation_validator

# Provider wordings of "the request does not fit the context window".
_CONTEXT_OVERFLOW = re.compile(
    r"context.{0,20}(length|window|limit)|prompt is too long|too many (input )?tokens|maximum context"
    r"|input is too long|exceeds? the .{0,20}(context|maximum)",
    re.IGNORECASE,
)

Member = TypeVar("Member")
Result = TypeVar("Result")


class OverContextBudget(ProviderError):
    """Not sent: the request's estimated size is over --max_context_tokens."""

    def __init__(self, tokens: int, budget: int):
        super().__init__(f"request of about {tokens} tokens is over --max_context_tokens {budget}")


@dataclass
class Generated:
    """The outcome of generating one sample's intervention."""

    sample: Sample
    item: dict | None = None
    error: str | None = None
    overlong: bool = False
    refused: bool = False  # the error is the generator's refusal of this sample
    position: int = 0  # 1-based place of the sample in the call that produced it
    count: int = 0  # samples in that call
    batch_thinking: str = ""
    model_used: str = ""
    generation_time: float = 0.0
    normalised: list[str] = field(default_factory=list)  # the item's fields respelt before validation


def is_context_overflow(error: ProviderError) -> bool:
    """The request is too long: refused by the provider (HTTP 413, or a context-length message) or,
    by its estimate, not sent."""
    if isinstance(error, InvalidOutputError):
        return False
    return isinstance(error, OverContextBudget) or error.status == 413 or bool(_CONTEXT_OVERFLOW.search(str(error)))


async def in_halves(
    group: list[Member],
    request_for: Callable[[list[Member]], LLMRequest],
    send: Callable[[list[Member], LLMRequest], Awaitable[list[Result]]],
    failed: Callable[[list[Member], ProviderError], list[Result]],
    max_context_tokens: int,
    split_invalid: bool = False,
) -> list[Result]:
    """`send(group, request_for(group))`, or the results of both halves when the request is too long
    (or, with `split_invalid`, got no valid answer), or of one call per member when it was refused;
    `failed(group, error)` when a call fails for another reason or a single member cannot be sent.
    CostLimitReached propagates."""
    request = request_for(group)
    estimated_tokens = estimate_input_tokens(request)
    if estimated_tokens > max_context_tokens:
        if len(group) == 1:
            return failed(group, OverContextBudget(estimated_tokens, max_context_tokens))
    else:
        try:
            return await send(group, request)
        except ProviderError as error:
            if isinstance(error, CostLimitReached) or error.fatal:  # every other call would fail alike
                raise
            splits = (
                is_context_overflow(error)
                or isinstance(error, Refused)
                or (split_invalid and isinstance(error, InvalidOutputError))
            )
            if len(group) == 1 or not splits:
                return failed(group, error)
            if isinstance(error, Refused):
                alone = await asyncio.gather(
                    *(
                        in_halves([member], request_for, send, failed, max_context_tokens, split_invalid)
                        for member in group
                    )
                )
                return [result for results in alone for result in results]
    half = len(group) // 2
    first = await in_halves(group[:half], request_for, send, failed, max_context_tokens, split_invalid)
    return first + await in_halves(group[half:], request_for, send, failed, max_context_tokens, split_invalid)


@dataclass(frozen=True)
class GenerationSettings:
    """Who writes a run's interventions (and rewrites the rejected ones): the client, the model
    asked, and the estimated prompt size above which a request is split (--max_context_tokens)."""

    client: Any
    model: str
    max_context_tokens: int


@dataclass(frozen=True)
class _GenerationCall:
    """The generation calls of one topic and family: the request of a group of samples, what a
    valid answer makes of it, and what a failure does."""

    settings: GenerationSettings
    topic: str
    intervention_type: str

    def request(self, group: list[Sample]) -> LLMRequest:
        return generation_request(self.settings.model, self.topic, self.intervention_type, group)

    async def send(self, group: list[Sample], request: LLMRequest) -> list[Generated]:
        normaliser = generation_normaliser()
        response = await self.settings.client.complete(
            request, validate=generation_validator(self.topic, self.intervention_type, len(group)), normalize=normaliser
        )
        now = time.time()
        return [
            Generated(
                sample,
                item=item,
                position=position,
                count=len(group),
                batch_thinking=response.tool_input.get("batch_thinking", ""),
                model_used=response.model or self.settings.model,
                generation_time=now,
                normalised=fields,
            )
            for position, (sample, item, fields) in enumerate(
                zip(group, response.tool_input["items"], normaliser.fields), start=1
            )
        ]

    @staticmethod
    def failed(group: list[Sample], error: ProviderError) -> list[Generated]:
        return [
            Generated(
                sample,
                error=str(error),
                overlong=is_context_overflow(error),
                refused=isinstance(error, Refused),
                generation_time=time.time(),
            )
            for sample in group
        ]


async def generate(
    settings: GenerationSettings, topic: str, intervention_type: str, samples: list[Sample]
) -> list[Generated]:
    """One Generated per sample, in order."""
    call = _GenerationCall(settings, topic, intervention_type)
    return await in_halves(samples, call.request, call.send, call.failed, settings.max_context_tokens)
