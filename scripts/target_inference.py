"""What every stage-2 inference engine shares: the sampling settings in, one `Generation` out,
the length-sorted batch plan, and the split of generated tokens into thinking and answer.

Used by scripts/local_inference.py (transformers) and scripts/vllm_inference.py (vLLM).
Reads and writes nothing.
"""
from __future__ import annotations

from dataclasses import dataclass

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"


@dataclass(frozen=True)
class SamplingSettings:
    """The stage-2 sampling flags; None means "the model's own generation_config default"."""
    max_new_tokens: int
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    enable_thinking: bool = False
    seed: int = 0

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


@dataclass
class Generation:
    """One generated answer. Token counts are real counts from the engine's tokenizer:
    `output_tokens` includes the stop token when one was generated and never padding."""
    text: str
    thinking: str
    input_tokens: int
    output_tokens: int
    finish_reason: str            # "stop" (a stop token was generated) or "length" (max_new_tokens reached)
    generation_time: float        # seconds of the engine call that produced it (shared by its batch)


def plan_batches(lengths: list[int], batch_size: int) -> list[list[int]]:
    """Indexes of `lengths` grouped into batches of similar length, longest first (so that an
    out-of-memory batch shows up at once and padding stays small)."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    return [order[start:start + batch_size] for start in range(0, len(order), batch_size)]


def trim_at_stop(ids: list[int], stop_ids: set[int]) -> tuple[list[int], bool]:
    """Generated ids up to and including the first stop id; True when a stop id was found."""
    for position, token in enumerate(ids):
        if token in stop_ids:
            return ids[:position + 1], True
    return ids, False


def split_thinking(ids: list[int], think_open_id: int | None, think_close_id: int | None,
                   prompt_opens_think: bool) -> tuple[list[int], list[int]]:
    """(thinking ids, answer ids) of one generated sequence.

    With a `</think>` token in the output, everything before it is thinking (an opening `<think>`
    dropped) and everything after it the answer. Without one, the output is all thinking when
    the think block was open (opened by the prompt, or by the output's first token) and was cut
    off, and all answer otherwise.
    """
    if think_close_id is None:
        return [], ids
    opened = prompt_opens_think or (bool(ids) and ids[0] == think_open_id)
    body = ids[1:] if ids and ids[0] == think_open_id else ids
    if think_close_id in body:
        close = body.index(think_close_id)
        return body[:close], body[close + 1:]
    if opened:
        return body, []
    return [], ids
