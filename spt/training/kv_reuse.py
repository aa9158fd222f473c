"""Running the honest persona on the base model's existing KV cache.

With LoRA-mask (`lora_patch: 1`, peft Activated LoRA) the adapter contributes nothing before
the split-personality token, so the KV cache of a conversation computed by the base model
(adapter disabled) is exactly the cache the SPT model would have computed itself. The review
can then be produced by running only the suffix (token, intervention, review) with the
adapter on: same logits and same greedy tokens as a full forward pass, at the cost of the
suffix only. With plain LoRA (`lora_patch: 0`) the adapter changes every position, the base
cache is not the SPT model's, and `review_on_cache` refuses to run.
Reads and writes nothing.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch


@dataclass
class SuffixResult:
    logits: torch.Tensor  # [1, suffix_len, vocab]: logits of the suffix positions
    tokens: list[int]  # greedily generated tokens (up to and including a stop token)


def invocation_tokens(model) -> list[int] | None:
    """The split-personality token id(s) when the adapter is a LoRA-mask (aLoRA) adapter."""
    return getattr(model.peft_config[model.active_adapter], "alora_invocation_tokens", None)


@torch.no_grad()
def base_kv_cache(model, prefix_ids: torch.Tensor):
    """The conversation's KV cache computed by the base model (adapter disabled)."""
    with model.disable_adapter():
        return model(input_ids=prefix_ids, use_cache=True).past_key_values


@torch.no_grad()
def review_on_cache(
    model, prefix_cache, suffix_ids: torch.Tensor, max_new_tokens: int, stop_ids: set[int]
) -> SuffixResult:
    """Run `suffix_ids` (starting with the split-personality token) with the adapter on over a
    copy of `prefix_cache`, then decode greedily. Only exact with LoRA-mask."""
    invocation = invocation_tokens(model)
    if not invocation:
        raise ValueError(
            "KV-cache reuse is only exact with lora_patch 1 (LoRA-mask): plain LoRA changes the "
            "conversation's hidden states, so the base model's cache is not the SPT model's"
        )
    if suffix_ids.shape[0] != 1:
        raise ValueError("review_on_cache takes one sequence at a time")
    if suffix_ids[0, : len(invocation)].tolist() != list(invocation):
        raise ValueError("the suffix must start with the split-personality token")
    cache = copy.deepcopy(prefix_cache)
    # Every suffix position is at or after the token: the adapter is active on all of them.
    out = model(input_ids=suffix_ids, past_key_values=cache, use_cache=True, alora_offsets=[suffix_ids.shape[1]])
    suffix_logits, cache = out.logits, out.past_key_values
    tokens: list[int] = []
    next_token = int(suffix_logits[0, -1].argmax())
    while len(tokens) < max_new_tokens:
        tokens.append(next_token)
        if next_token in stop_ids:
            break
        out = model(
            input_ids=torch.tensor([[next_token]], device=suffix_ids.device),
            past_key_values=cache,
            use_cache=True,
            alora_offsets=[1],
        )
        cache = out.past_key_values
        next_token = int(out.logits[0, -1].argmax())
    return SuffixResult(suffix_logits, tokens)
