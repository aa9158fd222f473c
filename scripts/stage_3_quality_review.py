"""Stage 3's external quality review: every generated item is judged on its own, and redone
with the critique when rejected.

`quality_review(...)` sends the item to the review model (base prompt + the quality reviewer's
prompt with the topic's criteria; forced tool shared_tools.quality_review_tool). On `reject` it
asks the generator for a single-item rewrite that carries the critique, and reviews again, up
to `max_attempts` reviews; the last version is kept either way and the verdicts are returned.
A rewrite that never passes validation ends the loop with the previous (valid) version. A
context overflow or any other provider failure is returned as an error (CostLimitReached
propagates). Reads and writes nothing.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from providers.errors import CostLimitReached, InvalidOutputError, ProviderError
from stage_3_generation import is_context_overflow
from stage_3_requests import Sample, quality_review_request, regeneration_request
from stage_3_validation import generation_validator


@dataclass
class ReviewOutcome:
    item: dict
    verdicts: list[str] = field(default_factory=list)   # "accept" / "reject", one per review made
    model_used: str = ""                                 # generator model of the kept version
    error: str | None = None
    overlong: bool = False

    @property
    def passed(self) -> bool:
        return bool(self.verdicts) and self.verdicts[-1] == "accept"


async def quality_review(generator, reviewer, model: str, review_model: str, topic: str, intervention_type: str,
                         sample: Sample, item: dict, model_used: str, max_attempts: int) -> ReviewOutcome:
    outcome = ReviewOutcome(item=item, model_used=model_used)
    try:
        while len(outcome.verdicts) < max_attempts:
            review = await reviewer.complete(
                quality_review_request(review_model, topic, intervention_type, sample, outcome.item))
            outcome.verdicts.append(review.tool_input["verdict"])
            if outcome.passed or len(outcome.verdicts) == max_attempts:
                break
            try:
                rewrite = await generator.complete(
                    regeneration_request(model, topic, intervention_type, sample, outcome.item,
                                         review.tool_input["critique"], attempt=len(outcome.verdicts)),
                    validate=generation_validator(topic, intervention_type, 1))
            except InvalidOutputError:
                break   # keep the last valid version; it stays marked as not passed
            outcome.item = rewrite.tool_input["items"][0]
            outcome.model_used = rewrite.model or model
    except CostLimitReached:
        raise
    except ProviderError as error:
        outcome.error = str(error)
        outcome.overlong = is_context_overflow(error)
    return outcome
