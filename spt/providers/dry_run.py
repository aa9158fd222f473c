"""What the stages' `--dry_run` prints about the requests a run would send, without their bodies.

`dry_run_lines(kind, requests, provider, base_url, full=False)` describes one kind of request
(e.g. stage 1's generation calls): how many, the thinking the stage chose and what it means on the
model (effort, the max_tokens = answer + thinking allowance; thinking.py), the tool/schema the
answer must fill and how it is asked for, the sizes of the system and user parts (characters and
estimated tokens, characters/4), every distinct system block with the SHA-256 of its text, its
size, whether it is prompt-cached and in how many calls it is sent, and the estimated tokens and
cost (estimate.py). With `full=True` (the stages' `--dry_run_full`) the exact JSON body of the
kind's first request follows.
`cost_summary(estimate)` is the one line of prices every dry run prints.
Reads config/models.json; writes nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter

from . import registry, thinking
from .base import AnswerFormat, estimate_tokens
from .estimate import estimate_cost, render_wire_request
from .models import default_registry
from .types import LLMRequest

_MODES = {
    "structured": "the provider's structured-output mode",
    "tool": "a forced tool call",
    "auto_tool": "a tool offered with tool_choice auto and an instruction",
    None: "plain text",
}


def _answer_format(request: LLMRequest, provider: str, base_url: str | None, self_hosted: str | None) -> AnswerFormat:
    spec = registry.spec(provider)
    if request.tool is None or spec.simulated:
        return spec.answer_format(request, None)
    models = default_registry()
    info = registry.model_info(models, request.model, provider, base_url, self_hosted)
    return spec.answer_format(thinking.resolve(request, info, models.thinking_allowance), info)


def _size(chars: list[int]) -> str:
    """`1,234 chars (~308 tokens)`, or the range over the calls when they differ."""
    low, high = min(chars), max(chars)
    if low == high:
        return f"{low:,} chars (~{estimate_tokens(low):,} tokens)"
    return f"{low:,}-{high:,} chars (~{estimate_tokens(low):,}-{estimate_tokens(high):,} tokens)"


def cost_summary(estimate: dict) -> str:
    """The four prices of an `estimate_cost` result: without and with caching, --batch_api, both."""
    return (
        f"${estimate['cost_usd']:.2f} without caching, ${estimate['cost_usd_with_caching']:.2f} with prompt "
        f"caching, ${estimate['cost_usd_batch']:.2f} with --batch_api, "
        f"${estimate['cost_usd_batch_with_caching']:.2f} with both"
    )


def dry_run_lines(
    kind: str,
    requests: list[LLMRequest],
    provider: str,
    base_url: str | None = None,
    full: bool = False,
    self_hosted: str | None = None,
) -> list[str]:
    """The summary of `requests` (one kind of call, at least one), and the first body when `full`."""
    first = requests[0]
    answer = _answer_format(first, provider, base_url, self_hosted)
    blocks = Counter((block.text, block.cache) for request in requests for block in request.system)
    models = default_registry()
    info = registry.model_info(models, first.model, provider, base_url, self_hosted)
    lines = [
        f"{kind}: {len(requests)} call(s) to {provider}, model {first.model}",
        f"  {thinking.describe(first, info, models.thinking_allowance)}",
        f"  answer: {f'schema `{answer.tool_name}` through ' if answer.tool_name else ''}{_MODES[answer.mode]}",
        f"  system: {_size([sum(len(b.text) for b in r.system) for r in requests])} per call",
        f"  user: {_size([sum(len(m.content) for m in r.messages if m.role == 'user') for r in requests])} per call",
        "  distinct system blocks (SHA-256 of the text):",
    ]
    for (text, cached), calls in blocks.items():
        lines.append(
            f"    {hashlib.sha256(text.encode('utf-8')).hexdigest()}  {_size([len(text)])}"
            f"{', prompt-cached' if cached else ''}, in {calls} of {len(requests)} call(s)"
        )
    estimate = estimate_cost(requests, provider, base_url=base_url, self_hosted=self_hosted)
    lines += [
        f"  estimated tokens: input {estimate['input_tokens']:,}, output at most {estimate['output_tokens']:,}",
        f"  estimated cost: {cost_summary(estimate)}"
        + ("" if estimate["priced"] else " (the model has no prices in config/models.json)"),
    ]
    if full:
        body = render_wire_request(first, provider, base_url, self_hosted=self_hosted)
        lines += ["", f"first {kind} request ({provider}):", json.dumps(body, indent=2, ensure_ascii=False)]
    else:
        lines.append("  (the full request body: --dry_run_full)")
    return lines
