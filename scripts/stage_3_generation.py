"""Stage 3's batch generation call, split into smaller calls when the context is too long.

`generate(client, ...)` asks for one intervention per sample in a single forced-tool call,
validated by stage_3_validation (bad answers are re-asked by the provider layer). A request
whose estimated size is over the `max_context_tokens` budget, or that the provider rejects as
too long (HTTP 413 or a context-length message), is split in halves down to single samples; a single sample still too
long comes back as an error marked `overlong`. Any other failure comes back as an error for
every sample of the call (CostLimitReached propagates). Reads and writes nothing.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass

from providers.client import estimate_input_tokens
from providers.errors import CostLimitReached, InvalidOutputError, ProviderError
from stage_3_requests import Sample, generation_request
from stage_3_validation import generation_validator

# Provider wordings of "the request does not fit the context window".
_CONTEXT_OVERFLOW = re.compile(
    r"context.{0,20}(length|window|limit)|prompt is too long|too many (input )?tokens|maximum context"
    r"|input is too long|exceeds? the .{0,20}(context|maximum)", re.IGNORECASE)


@dataclass
class Generated:
    """The outcome of generating one sample's intervention."""
    sample: Sample
    item: dict | None = None
    error: str | None = None
    overlong: bool = False
    position: int = 0              # 1-based place of the sample in the call that produced it
    count: int = 0                 # samples in that call
    batch_thinking: str = ""
    model_used: str = ""
    generation_time: float = 0.0


def is_context_overflow(error: ProviderError) -> bool:
    """The provider refused the request as too long (HTTP 413, or a context-length message)."""
    if isinstance(error, InvalidOutputError):
        return False
    return error.status == 413 or bool(_CONTEXT_OVERFLOW.search(str(error)))


def _failed(samples: list[Sample], message: str, overlong: bool = False) -> list[Generated]:
    return [Generated(sample, error=message, overlong=overlong, generation_time=time.time()) for sample in samples]


async def generate(client, model: str, topic: str, intervention_type: str, samples: list[Sample],
                   max_context_tokens: int) -> list[Generated]:
    """One Generated per sample, in order."""
    request = generation_request(model, topic, intervention_type, samples)
    estimated_tokens = estimate_input_tokens(request)
    too_long = estimated_tokens > max_context_tokens
    if too_long and len(samples) == 1:
        return _failed(samples, f"request of about {estimated_tokens} tokens is over "
                                f"--max_context_tokens {max_context_tokens}", overlong=True)
    if not too_long:
        try:
            response = await client.complete(
                request, validate=generation_validator(topic, intervention_type, len(samples)))
        except CostLimitReached:
            raise
        except ProviderError as error:
            if not is_context_overflow(error):
                return _failed(samples, str(error))
            if len(samples) == 1:
                return _failed(samples, str(error), overlong=True)
        else:
            items = response.tool_input["items"]
            now = time.time()
            return [Generated(sample, item=item, position=position, count=len(samples),
                              batch_thinking=response.tool_input.get("batch_thinking", ""),
                              model_used=response.model or model, generation_time=now)
                    for position, (sample, item) in enumerate(zip(samples, items), start=1)]
    half = len(samples) // 2
    return (await generate(client, model, topic, intervention_type, samples[:half], max_context_tokens)
            + await generate(client, model, topic, intervention_type, samples[half:], max_context_tokens))
