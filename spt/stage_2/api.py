"""Stage 2 through the provider layer (--inference openrouter, openai or mock): one request per
missing sample, all concurrently; a job's samples are stored together once all are in, and the
changed files are saved at most every API_SAVE_INTERVAL_S seconds and at the end.

`run_api(args, jobs, files, settings)` answers the jobs and returns True when --max_cost
stopped the run; a fatal provider error (quota, a model that is gone) stops it at once, any
other error fails the job alone. A target thinks at its own setting unless --enable_thinking /
--no_enable_thinking switch it (with --enable_thinking, models that omit their thinking text by
default are asked for it, and it is stored apart from S); the client adds room for the thinking
to --max_new_tokens. A sampling flag the target refuses (--temperature on a reasoning model) is
dropped with one warning, never sent. A target model's refusal is data: stored as S (OpenAI's `refusal`
text, or what Claude wrote before `stop_reason: "refusal"`) with `refusal: true` and finish_reason
"refusal" (stage_2.files), never re-asked. The sampling values recorded with every answer are those the
request body really carries (`api_recorded_sampling`). Writes what stage_2.files writes and the
response cache.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import replace

from spt.providers import (
    CostLimitReached,
    LLMClient,
    LLMRequest,
    LLMResponse,
    Message,
    ProviderError,
    SystemBlock,
    client_from_args,
)
from spt.providers.estimate import sent_settings
from spt.stage_2.engine import Generation, SamplingSettings, split_thinking_text
from spt.stage_2.files import Job, Stage2Files

API_SAVE_INTERVAL_S = 1.0


def _finish_reason(stop_reason: str) -> str:
    return {
        "end_turn": "stop",
        "stop": "stop",
        "stop_sequence": "stop",
        "max_tokens": "length",
        "length": "length",
    }.get(stop_reason, stop_reason)


def _api_generation(response: LLMResponse, elapsed: float) -> Generation:
    usage = response.usage
    inline_thinking, answer = split_thinking_text(response.text)
    return Generation(
        text=answer,
        thinking="\n\n".join(part for part in (response.thinking.strip(), inline_thinking) if part),
        input_tokens=usage.input_tokens + usage.cache_read_input_tokens + usage.cache_creation_input_tokens,
        output_tokens=usage.output_tokens,
        finish_reason=_finish_reason(response.stop_reason),
        generation_time=elapsed,
        refused=response.refused,
    )


def api_recorded_sampling(client: LLMClient, settings: SamplingSettings, model: str) -> dict:
    """What an API run records: the values the request body really carries (None = not sent, so the
    provider's default applies), read from the body the provider layer renders for this model."""
    probe = LLMRequest(
        model=model,
        messages=(Message("user", "."),),
        max_tokens=settings.max_new_tokens,
        temperature=settings.temperature,
        top_p=settings.top_p,
        top_k=settings.top_k,
        reasoning=settings.enable_thinking,
    )
    return sent_settings(client.adapter.render(probe))


def job_request(model: str, settings: SamplingSettings, job: Job, sample: int) -> LLMRequest:
    """The request of one sample of one job (what a run sends and a dry run prices)."""
    return LLMRequest(
        model=model,
        system=(SystemBlock(job.system),) if job.system else (),
        messages=(Message("user", job.user),),
        max_tokens=settings.max_new_tokens,
        temperature=settings.temperature,
        top_p=settings.top_p,
        top_k=settings.top_k,
        reasoning=settings.enable_thinking,
        show_thinking=bool(settings.enable_thinking),
        sample_index=sample,
        label=job.label,
    )


class ApiRun:
    """The jobs of one run through one provider client: `answer_all(jobs)` answers every job and
    says whether --max_cost stopped the run."""

    def __init__(self, client: LLMClient, model: str, files: Stage2Files, settings: SamplingSettings):
        self.client, self.model, self.files, self.settings = client, model, files, settings
        self.cost_limited = False
        self.last_save = time.monotonic()
        self.bar = None

    async def answer(self, job: Job, sample: int) -> Generation:
        started = time.perf_counter()
        response = await self.client.complete(
            job_request(self.model, self.settings, job, sample), accept_max_tokens=True, accept_refusal=True
        )
        return _api_generation(response, time.perf_counter() - started)

    async def answer_job(self, job: Job) -> None:
        """All missing samples of one job; store them, or the job's failure."""
        try:
            generations = await asyncio.gather(*(self.answer(job, sample) for sample in job.sample_indices))
        except CostLimitReached:
            self.cost_limited = True
            return
        except ProviderError as exc:
            if exc.fatal:  # quota, a model that is gone: every other job would fail alike
                raise
            self.files.store_failure(job, str(exc))
        else:
            self.files.store(job, list(generations))
        finally:
            self.bar.update(1)
        if time.monotonic() - self.last_save >= API_SAVE_INTERVAL_S:
            self.files.save_dirty()
            self.last_save = time.monotonic()

    async def answer_all(self, jobs: list[Job]) -> bool:
        """Answer `jobs`; True when --max_cost stopped the run."""
        async with self.client:
            self.bar = self.client.progress_bar(total=len(jobs), desc="stage 2")
            try:
                await asyncio.gather(*(self.answer_job(job) for job in jobs))
            finally:
                self.bar.close()
                self.files.save_dirty()
            self.files.counts.cost_usd = self.client.cost_usd
            print(self.client.summary())
        return self.cost_limited


async def run_api(args: argparse.Namespace, jobs: list[Job], files: Stage2Files, settings: SamplingSettings) -> bool:
    """Answer `jobs` through the provider layer; True when --max_cost stopped the run."""
    # A target's refused sampling flag (--temperature on a reasoning model) is dropped with one warning, never sent.
    client = client_from_args(args, model=args.model, drop_refused_sampling=True)
    settings = replace(settings, temperature=args.temperature, top_p=args.top_p, top_k=args.top_k)
    files.recorded_sampling = api_recorded_sampling(client, settings, args.model)
    return await ApiRun(client, args.model, files, settings).answer_all(jobs)
