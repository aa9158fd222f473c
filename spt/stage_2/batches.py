"""Stage 2 on this machine's engines (--inference local or vllm): loading the engine and
answering the jobs in length-sorted batches.

`load_engine(args)` loads stage_2.local.LocalEngine or stage_2.vllm.VllmEngine; `run_engine`
encodes every job's prompt with the model's chat template, generates its missing samples in
batches of --batch_size prompts (longest first), stores each job once all its samples are in,
and saves the changed files after every batch. A failing batch is retried one prompt at a
time, so one bad prompt fails alone. Reads the model files; writes what stage_2.files writes.
"""

from __future__ import annotations

import argparse
import logging
import time

from tqdm import tqdm

from spt import utils
from spt.stage_2.engine import Generation, SamplingSettings, plan_batches
from spt.stage_2.files import Job, Stage2Files

log = logging.getLogger("spt.stage_2")


def load_engine(args: argparse.Namespace):
    """The local or vLLM engine; a model that cannot be loaded is a one-line DataError."""
    try:
        if args.inference == "vllm":
            from spt.stage_2.vllm import VllmEngine

            return VllmEngine(
                args.model, merge_lora=args.merge_lora, tensor_parallel_size=args.tensor_parallel_size, seed=args.seed
            )
        from spt.stage_2.local import LocalEngine

        return LocalEngine(args.model, merge_lora=args.merge_lora, quantization=args.quantization, seed=args.seed)
    except OSError as exc:  # transformers' "not a local folder and not a valid model id", missing files
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise utils.DataError(f"--model {args.model}: cannot load it: {first_line}") from None


class EngineRun:
    """The jobs of one run on one engine. A unit is one sample of one job; a job is stored once
    all its units are answered, and fails as a whole when one of them fails."""

    def __init__(self, engine, jobs: list[Job], files: Stage2Files, settings: SamplingSettings):
        self.engine, self.jobs, self.files, self.settings = engine, jobs, files, settings
        self.prompts: dict[int, list[int]] = {}  # job number -> prompt token ids
        for job_number, job in enumerate(jobs):
            try:
                self.prompts[job_number] = engine.encode(job.system, job.user, bool(settings.enable_thinking))
            except Exception as exc:  # e.g. a chat template that rejects this conversation
                files.store_failure(job, f"chat template: {type(exc).__name__}: {exc}")
        self.units = [(job_number, sample) for job_number in self.prompts for sample in jobs[job_number].sample_indices]
        self.pending: dict[int, dict[int, Generation]] = {}  # job number -> sample -> answer, until all are in
        self.failed_jobs: set[int] = set()

    def finish(self, unit_numbers: list[int], generations: list[Generation] | None, error: str | None) -> None:
        """Record the answers of `unit_numbers` (in order), or `error` for each of their jobs."""
        for position, unit_number in enumerate(unit_numbers):
            job_number, sample = self.units[unit_number]
            job = self.jobs[job_number]
            if job_number in self.failed_jobs:
                continue
            if error is not None:
                self.failed_jobs.add(job_number)
                self.pending.pop(job_number, None)
                self.files.store_failure(job, error)
                continue
            done = self.pending.setdefault(job_number, {})
            done[sample] = generations[position]
            if len(done) == len(job.sample_indices):
                self.files.store(job, [done[index] for index in job.sample_indices])
                del self.pending[job_number]

    def generate(self, unit_numbers: list[int]) -> None:
        """Answer one batch of units; when it fails, its units one at a time."""
        batch = [self.prompts[self.units[number][0]] for number in unit_numbers]
        try:
            self.finish(unit_numbers, self.engine.generate(batch, self.settings), None)
        except Exception as exc:  # one bad batch must not stop the run
            if len(unit_numbers) > 1:
                log.warning("batch of %d failed (%s); retrying its prompts one at a time", len(unit_numbers), exc)
                for number in unit_numbers:
                    self.generate([number])
            else:
                self.finish(unit_numbers, None, f"{type(exc).__name__}: {exc}")

    def run(self, batch_size: int) -> None:
        """Every unit in length-sorted batches, saving after each batch."""
        counts = self.files.counts
        bar = tqdm(total=len(self.units), desc="stage 2", unit="answer", dynamic_ncols=True)
        started = time.perf_counter()
        try:
            for batch in plan_batches([len(self.prompts[job_number]) for job_number, _ in self.units], batch_size):
                self.generate(batch)
                self.files.save_dirty()
                bar.update(len(batch))
                elapsed = time.perf_counter() - started
                bar.set_postfix(
                    in_tokens=counts.input_tokens,
                    out_tokens=counts.output_tokens,
                    out_tok_s=f"{counts.output_tokens / max(elapsed, 1e-9):.1f}",
                    failed=counts.failed,
                )
        finally:
            bar.close()
            self.files.save_dirty()


def run_engine(engine, jobs: list[Job], files: Stage2Files, settings: SamplingSettings, batch_size: int) -> None:
    """Answer `jobs` in length-sorted batches; save after every batch; a failing batch is retried
    one prompt at a time so one bad prompt fails alone."""
    EngineRun(engine, jobs, files, settings).run(batch_size)
