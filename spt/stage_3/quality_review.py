"""Stage 3's external quality review: the items of one generation call are judged together, each
on its own, and the rejected ones are rewritten together with their critiques.

`quality_review(generation, review, topic, intervention_type, generated)` sends the call's
samples with their generated items to the review model (`review`, a ReviewSettings) in one
request (base prompt + the quality reviewer's prompt with the topic's criteria; forced tool
shared_tools.quality_review_tool), which answers with one verdict per sample. The rejected items
go back to the generator (`generation`, a GenerationSettings) in one rewrite request carrying
each critique, and the rewritten ones are reviewed again together, up to `review.max_attempts`
reviews per item; the last version is kept either way. A request too long for the context is
split in halves (stage_3.generation.in_halves), as is one whose answer stays invalid after the
provider layer's re-asks (a wrong verdict count, a rewrite that breaks the rules), or that the
model refuses (providers.errors.Refused); a single rewrite that never passes validation or is
refused ends that item's loop with its previous (valid) version, and a single review that is
refused makes an error marked as refused. A review or rewrite that fails otherwise makes an error
for its items (CostLimitReached propagates). Reads and writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from spt.providers.errors import InvalidOutputError, ProviderError, Refused
from spt.providers.types import LLMRequest
from spt.stage_3.generation import Generated, GenerationSettings, in_halves, is_context_overflow
from spt.stage_3.requests import Sample, quality_review_request, rewrite_request
from spt.stage_3.validation import generation_validator


@dataclass
class ReviewOutcome:
    sample: Sample
    item: dict
    model_used: str  # generator model of the kept version
    verdicts: list[str] = field(default_factory=list)  # "accept" / "reject", one per review made
    critique: str = ""  # of the last review
    error: str | None = None
    overlong: bool = False
    refused: bool = False  # the error is the review model's refusal

    @property
    def passed(self) -> bool:
        return bool(self.verdicts) and self.verdicts[-1] == "accept"

    def fail(self, error: ProviderError) -> None:
        self.error = str(error)
        self.overlong = is_context_overflow(error)
        self.refused = isinstance(error, Refused)


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


@dataclass(frozen=True)
class ReviewSettings:
    """How a run's items are quality-reviewed: the client and model that judge, the reviews an
    item gets at most (--max_review_attempts), and the estimated prompt size above which a review
    is split (--max_context_tokens)."""

    client: Any
    model: str
    max_attempts: int
    max_context_tokens: int


@dataclass(frozen=True)
class _ReviewCalls:
    """The review and rewrite calls of one topic and family: each call's request, what a valid
    answer does to the outcomes of its group, and what a failure does."""

    generation: GenerationSettings
    review: ReviewSettings
    topic: str
    intervention_type: str

    def review_request_for(self, group: list[ReviewOutcome]) -> LLMRequest:
        return quality_review_request(
            self.review.model, self.topic, self.intervention_type, [(o.sample, o.item) for o in group]
        )

    async def send_review(self, group: list[ReviewOutcome], request: LLMRequest) -> list[ReviewOutcome]:
        response = await self.review.client.complete(request, validate=verdict_validator(len(group)))
        for outcome, entry in zip(group, in_sample_order(response.tool_input["items"])):
            outcome.verdicts.append(entry["verdict"])
            outcome.critique = entry["critique"]
        return group

    @staticmethod
    def review_failed(group: list[ReviewOutcome], error: ProviderError) -> list[ReviewOutcome]:
        for outcome in group:
            outcome.fail(error)
        return []

    def rewrite_request_for(self, group: list[ReviewOutcome]) -> LLMRequest:
        return rewrite_request(
            self.generation.model,
            self.topic,
            self.intervention_type,
            [(o.sample, o.item, o.critique) for o in group],
            attempt=len(group[0].verdicts),
        )

    async def send_rewrite(self, group: list[ReviewOutcome], request: LLMRequest) -> list[ReviewOutcome]:
        response = await self.generation.client.complete(
            request, validate=generation_validator(self.topic, self.intervention_type, len(group))
        )
        for outcome, item in zip(group, response.tool_input["items"]):
            outcome.item = item
            outcome.model_used = response.model or self.generation.model
        return group

    @staticmethod
    def rewrite_failed(group: list[ReviewOutcome], error: ProviderError) -> list[ReviewOutcome]:
        if not isinstance(error, (InvalidOutputError, Refused)):  # else the previous version stays, not passed
            _ReviewCalls.review_failed(group, error)
        return []


async def quality_review(
    generation: GenerationSettings,
    review: ReviewSettings,
    topic: str,
    intervention_type: str,
    generated: list[Generated],
) -> list[ReviewOutcome]:
    """One ReviewOutcome per (successfully) generated item, in order."""
    calls = _ReviewCalls(generation, review, topic, intervention_type)
    outcomes = [ReviewOutcome(g.sample, g.item, g.model_used) for g in generated]
    pending = outcomes
    while pending:
        reviewed = await in_halves(
            pending,
            calls.review_request_for,
            calls.send_review,
            calls.review_failed,
            review.max_context_tokens,
            split_invalid=True,
        )
        rejected = [o for o in reviewed if not o.passed and len(o.verdicts) < review.max_attempts]
        if not rejected:
            break
        pending = await in_halves(
            rejected,
            calls.rewrite_request_for,
            calls.send_rewrite,
            calls.rewrite_failed,
            generation.max_context_tokens,
            split_invalid=True,
        )
    return outcomes
