"""The offline `mock` provider (only with --provider mock): deterministic fake answers, no network.

A forced tool gets an input sampled from the tool's JSON schema (schema_sampler: as many items as
the last message asks for); a plain text
request gets a few first-person sentences. Both are seeded from the request, so the same request
always gets the same answer and different requests (or sample_index values) differ.
Usage is estimated as characters/4; the mock costs nothing. Reads and writes nothing.
"""
from __future__ import annotations

import hashlib
import json
import random
from typing import Any

from .base import AnswerFormat, ProviderAdapter, WireResult, estimate_tokens
from .response_cache import request_key
from .schema_sampler import first_person_text, requested_count, sample_from_schema
from .types import LLMRequest, LLMResponse, Usage


class MockAdapter(ProviderAdapter):
    name = "mock"

    def answer_format(self, request: LLMRequest) -> AnswerFormat:
        return AnswerFormat("tool" if request.tool else None, request.tool.name if request.tool else None)

    def render(self, request: LLMRequest) -> dict[str, Any]:
        return {"model": request.model, "max_tokens": request.max_tokens,
                "system": [block.text for block in request.system],
                "messages": [{"role": m.role, "content": m.content} for m in request.messages],
                "tool": request.tool.name if request.tool else None,
                "sample_index": request.sample_index}

    async def send(self, request: LLMRequest) -> WireResult:
        seed = int(request_key(request, self.name, None)[:16], 16)
        rng = random.Random(seed)
        if request.tool is not None:
            user_texts = [m.content for m in request.messages if m.role == "user"]
            tool_input = sample_from_schema(request.tool.input_schema, rng, requested_count(user_texts))
            text, output = "", json.dumps(tool_input)
            stop_reason = "tool_use"
        else:
            tool_input, text = None, first_person_text(rng, sentences=3)
            output, stop_reason = text, "end_turn"
        prompt = json.dumps(self.render(request))
        response = LLMResponse(
            text=text, tool_input=tool_input, stop_reason=stop_reason,
            usage=Usage(input_tokens=estimate_tokens(len(prompt)), output_tokens=estimate_tokens(len(output))),
            request_id=f"mock-{hashlib.sha256(str(seed).encode()).hexdigest()[:12]}",
            model=request.model, provider=self.name,
        )
        return WireResult(response)
