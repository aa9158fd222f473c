"""The offline `mock` provider (only with --provider mock): deterministic fake answers, no network.

A forced tool gets an input sampled from the tool's JSON schema (schema_sampler: as many items as
the last message asks for); stage-1 samples in it get the mix stage 1's prompts ask for
(`like_the_prompts`: half of them an empty B, an FPT sample about one time in twelve). A plain
text request gets a few first-person sentences. Both are seeded from the request, so the same
request always gets the same answer and different requests (or sample_index values) differ.
Usage is estimated as characters/4; the mock costs nothing, needs no key, takes any model name and
flag, and never thinks (ProviderSpec.simulated). Reads and writes nothing.
"""

from __future__ import annotations

import hashlib
import json
import random
from typing import Any

from spt.shared_tools import DIFFICULTIES

from .base import AnswerFormat, ProviderAdapter, ProviderSpec, WireResult, estimate_tokens
from .response_cache import request_key
from .schema_sampler import first_person_text, requested_count, sample_from_schema
from .types import LLMRequest, LLMResponse, Usage

# Stage 1's prompts ask for a B prompt in about half the samples and 5-10% FPT samples; a draw
# uniform over the schema would give every sample a B and a quarter of them FPT.
FPT_SHARE = 1 / 12
NAME = "mock"  # the --provider value (SPEC below)


def like_the_prompts(tool_input: Any, rng: random.Random) -> None:
    """Give the stage-1 samples of a tool answer (items of `data` with `B` and a difficulty) the
    mix stage 1's prompts ask for: half of them (one more or less, by chance, when the count is
    odd) an empty B, each FPT with probability FPT_SHARE and otherwise easy/medium/hard."""
    items = tool_input.get("data") if isinstance(tool_input, dict) else None
    samples = (
        [item for item in items if isinstance(item, dict) and "B" in item and "difficulty" in item.get("metadata", {})]
        if isinstance(items, list)
        else []
    )
    a_only = rng.sample(range(len(samples)), len(samples) // 2 + (len(samples) % 2 and rng.random() < 0.5))
    for index, sample in enumerate(samples):
        if index in a_only:
            sample["B"] = ""
        others = [level for level in DIFFICULTIES if level != "FPT"]
        sample["metadata"]["difficulty"] = "FPT" if rng.random() < FPT_SHARE else rng.choice(others)


def answer_format(request: LLMRequest, info: Any = None) -> AnswerFormat:
    """The mock always answers a tool request with a forced tool call."""
    return AnswerFormat("tool" if request.tool else None, request.tool.name if request.tool else None)


def render(request: LLMRequest, info: Any = None, self_hosted: bool = False) -> dict[str, Any]:
    """What the mock is "sent": the request's parts, for --dry_run_full and the seed of its answer."""
    return {
        "model": request.model,
        "max_tokens": request.max_tokens,
        "system": [block.text for block in request.system],
        "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        "tool": request.tool.name if request.tool else None,
        "sample_index": request.sample_index,
    }


class MockAdapter(ProviderAdapter):
    name = NAME
    quiet = True  # any model name is fine: no warning for one missing from config/models.json

    def answer_format(self, request: LLMRequest) -> AnswerFormat:
        return answer_format(request)

    def render(self, request: LLMRequest) -> dict[str, Any]:
        return render(request)

    async def send(self, request: LLMRequest) -> WireResult:
        seed = int(request_key(request, self.name, None)[:16], 16)
        rng = random.Random(seed)
        if request.tool is not None:
            user_texts = [m.content for m in request.messages if m.role == "user"]
            tool_input = sample_from_schema(request.tool.input_schema, rng, requested_count(user_texts))
            like_the_prompts(tool_input, rng)
            text, output = "", json.dumps(tool_input)
            stop_reason = "tool_use"
        else:
            tool_input, text = None, first_person_text(rng, sentences=3)
            output, stop_reason = text, "end_turn"
        prompt = json.dumps(self.render(request))
        response = LLMResponse(
            text=text,
            tool_input=tool_input,
            stop_reason=stop_reason,
            usage=Usage(input_tokens=estimate_tokens(len(prompt)), output_tokens=estimate_tokens(len(output))),
            request_id=f"mock-{hashlib.sha256(str(seed).encode()).hexdigest()[:12]}",
            model=request.model,
            provider=self.name,
        )
        return WireResult(response)


SPEC = ProviderSpec(
    name=NAME,
    title="the mock",
    render=render,
    answer_format=answer_format,
    adapter=lambda api_key, base_url, timeout_s, models, self_hosted: MockAdapter(models),
    serves_stage_2=True,
    simulated=True,
)
