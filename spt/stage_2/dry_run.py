"""What stage 2's `--dry_run` prints (stage_2.run calls `print_dry_run` once the pending variants
are listed): for an API engine (openrouter, openai, mock) the number of requests, their sizes,
estimated tokens and cost (providers.dry_run, the summary stages 1 and 3 print; with
--dry_run_full the first request's body); for local / vllm the samples to generate and the
generation settings, without loading the model (nor importing torch or the provider layer).
Calls nothing, reads nothing beyond what stage_2.files read, writes nothing.
"""

from __future__ import annotations

import argparse

from spt.stage_2.engine import SamplingSettings
from spt.stage_2.files import Job

ENGINE_NAMES = {"local": "transformers on this machine", "vllm": "vLLM's offline engine"}


def _samples(jobs: list[Job]) -> int:
    return sum(len(job.sample_indices) for job in jobs)


def _plan_line(args: argparse.Namespace, key: str, jobs: list[Job], already_done: int, files: int) -> str:
    return (
        f"stage 2 dry run [{key}]: {len(jobs)} variant(s) to answer ({_samples(jobs)} sample(s), "
        f"--num_samples {args.num_samples}), {already_done} already done, in {files} file(s)"
    )


def print_dry_run(
    args: argparse.Namespace, key: str, jobs: list[Job], already_done: int, files: int, settings: SamplingSettings
) -> None:
    """Print the plan of a run of `args` over `jobs` (the variants `key` has not answered yet)."""
    print(_plan_line(args, key, jobs, already_done, files))
    if not jobs:
        print("nothing to do: every variant is answered")
    elif args.inference in ENGINE_NAMES:
        print("\n".join(local_lines(args, settings)))
    else:
        print("\n".join(api_lines(args, jobs, settings)))


def local_lines(args: argparse.Namespace, settings: SamplingSettings) -> list[str]:
    """The generation settings of a local / vllm run, as the flags set them (the model is not loaded,
    so a value left to the model shows as its default)."""

    def value(setting):
        return "the model's default" if setting is None else f"{setting:g}"

    lines = [
        f"engine: {args.inference} ({ENGINE_NAMES[args.inference]}), model {args.model} (not loaded)",
        f"  max_new_tokens {settings.max_new_tokens}, temperature {value(settings.temperature)}"
        f"{' (greedy)' if settings.greedy else ''}, top_p {value(settings.top_p)}, top_k {value(settings.top_k)}",
        f"  thinking: {'on where the chat template takes enable_thinking' if settings.enable_thinking else 'off'}",
        f"  batch_size {args.batch_size} prompts per generate() call, seed {args.seed}",
    ]
    if args.merge_lora:
        lines.append(f"  LoRA merged in: {args.merge_lora}")
    if args.quantization:
        lines.append(f"  {args.quantization}-bit bitsandbytes quantisation")
    if args.inference == "vllm":
        lines.append(f"  tensor_parallel_size {args.tensor_parallel_size}")
    return lines


def api_lines(args: argparse.Namespace, jobs: list[Job], settings: SamplingSettings) -> list[str]:
    """The summary of the requests an API run would send (one per missing sample)."""
    from spt.providers.dry_run import dry_run_lines
    from spt.stage_2.api import job_request

    requests = [job_request(args.model, settings, job, sample) for job in jobs for sample in job.sample_indices]
    return dry_run_lines(
        "stage-2 inference",
        requests,
        args.provider,
        args.base_url,
        full=args.dry_run == "full",
        self_hosted=args.self_hosted,
    )
