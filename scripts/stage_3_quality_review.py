"""Stage 3's external quality review: the items of one generation call are judged together, each
on its own, and the rejected ones are rewritten together with their critiques.

`quality_review(...)` sends the call's samples with their generated items to the review model in
one request (base prompt + the quality reviewer's prompt with the topic's criteria; forced tool
shared_tools.quality_review_tool), which answers with one verdict per sample. The rejected items
go back to the generator in one rewrite request carrying each critique, and the rewritten ones
are reviewed again together, up to `max_attempts` reviews per item; the last version is kept
either way. A request too long for the context is split in halves (stage_3_generation.in_halves),
as is one whose answer stays invalid after the provider layer's re-asks (a wrong verdict count,
a rewrite that breaks the rules); a single rewrite that never passes validation ends that item's
loop with its previous (valid) version. A review or rewrite that fails otherwise makes an error
for its items (CostLimitReached propagates). Reads and writes nothing.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from providers.errors import InvalidOutputError, ProviderError
from providers.types import LLMRequest
from stage_3_generation import Generated, in_halves, is_context_overflow
from stage_3_requests import Sample, quality_review_request, rewrite_request
from stage_3_validation import generation_validator


@dataclass
class ReviewOutcome:
    sample: Sample
    item: dict
    model_used: str                                      # generator model of the kept version
    verdicts: list[str] = field(default_factory=list)   # "accept" / "reject", one per review made
    critique: str = ""                                   # of the last review
    error: str | None = None
    overlong: bool = False

    @property
    def passed(self) -> bool:
        return bool(self.verdicts) and self.verdicts[-1] == "accept"

    def fail(self, error: ProviderError) -> None:
        self.error = str(error)
        self.overlong = is_context_overflow(error)


def verdict_problems(answer: Any, expected: int) -> list[str]:
    """What is wrong with a (schema-valid) review answer for `expected` samples ([] = acceptable):
    one verdict per sample, the sample numbers 1..expected each once. With a single sample there
    is nothing to mix up, so its number is not checked."""
    verdicts = answer["items"]
    if len(verdicts) != expected:
        return [f"items: expected exactly {expected} verdict(s), one per sample, got {len(verdicts)}"]
    numbers = sorted(entry["sample"] for entry in verdicts)
    if expected > 1 and numbers != list(range(1, expected + 1)):
        return [f"items: the sample numbers must be 1 to {expected}, each once; got {numbers}"]
    return []


def verdict_validator(expected: int) -> Callable[[Any], list[str]]:
    """The `validate=` callback of a quality review of `expected` samples."""
    return lambda answer: verdict_problems(answer, expected)


def in_sample_order(verdicts: list[dict]) -> list[dict]:
    """A validated answer's verdicts in sample order."""
    return sorted(verdicts, key=lambda entry: entry["sample"])


async def quality_review(generator, reviewer, model: str, review_model: str, topic: str, intervention_type: str,
                         generated: list[Generated], max_attempts: int,
                         max_context_tokens: int) -> list[ReviewOutcome]:
    """One ReviewOutcome per (successfully) generated item, in order."""
    async def review(group: list[ReviewOutcome], request: LLMRequest) -> list[ReviewOutcome]:
        response = await reviewer.complete(request, validate=verdict_validator(len(group)))
        for outcome, entry in zip(group, in_sample_order(response.tool_input["items"])):
            outcome.verdicts.append(entry["verdict"])
            outcome.critique = entry["critique"]
        return group

    async def rewrite(group: list[ReviewOutcome], request: LLMRequest) -> list[ReviewOutcome]:
        response = await generator.complete(request, validate=generation_validator(topic, intervention_type,
                                                                                   len(group)))
        for outcome, item in zip(group, response.tool_input["items"]):
            outcome.item = item
            outcome.model_used = response.model or model
        return group

    def review_failed(group: list[ReviewOutcome], error: ProviderError) -> list[ReviewOutcome]:
        for outcome in group:
            outcome.fail(error)
        return []

    def rewrite_failed(group: list[ReviewOutcome], error: ProviderError) -> list[ReviewOutcome]:
        if not isinstance(error, InvalidOutputError):   # else the previous version stays, not passed
            review_failed(group, error)
        return []

    outcomes = [ReviewOutcome(g.sample, g.item, g.model_used) for g in generated]
    pending = outcomes
    while pending:
        reviewed = await in_halves(
            pending, lambda group: quality_review_request(review_model, topic, intervention_type,
                                                          [(o.sample, o.item) for o in group]),
            review, review_failed, max_context_tokens, split_invalid=True)
        rejected = [o for o in reviewed if not o.passed and len(o.verdicts) < max_attempts]
        if not rejected:
            break
        pending = await in_halves(
            rejected, lambda group: rewrite_request(model, topic, intervention_type,
                                                    [(o.sample, o.item, o.critique) for o in group],
                                                    attempt=len(group[0].verdicts)),
            rewrite, rewrite_failed, max_context_tokens, split_invalid=True)
    return outcomes
