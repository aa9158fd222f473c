"""Stage 2: the target model answers every stage-1 sample under the neutral (A) and, where the
sample has one, the biased (B) system prompt.

Reads  data/stage_1/<topic>/*.json (or, when it exists, the same file under data/stage_2/, so that
       several target models accumulate in one file)
Writes data/stage_2/<topic>/<same name>.json with `inferences[<model id>][A|B]` added (SPEC §4.2):
       S, thinking (when the model thought), input_tokens, output_tokens, string_length,
       generation_time, temperature, top_p, top_k, thinking_enabled, finish_reason, inference,
       samples (with --num_samples > 1). A variant whose generation failed gets `error` and no S.

Engines (--inference): local (transformers on this machine), vllm (vLLM's offline engine),
openrouter / openai (any OpenAI-compatible server via --base_url) / mock (offline) through the
provider layer. Variants already answered by this model are skipped, results are saved
atomically after every batch (local/vllm) or every second (API), failures are retried by the
next run. Exit codes: 0 complete, 1 some variants failed, 2 bad input, 3 stopped by --max_cost.

    python scripts/dataset_generation_stage_2.py --names sycophancy --model qwen/qwen3-32b --inference openrouter
    python scripts/dataset_generation_stage_2.py --names all --model meta-llama/Llama-3.2-1B-Instruct --inference local
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import stage_files
import utils
from target_inference import Generation, SamplingSettings, plan_batches, split_thinking_text

log = logging.getLogger("spt.stage_2")

ENGINES = ("local", "vllm")
API_PROVIDERS = ("openrouter", "openai", "mock")
DEFAULT_INFERENCE = "openrouter"
DEFAULT_BATCH_SIZE = {"local": 8, "vllm": 256}
EXIT_COMPLETE, EXIT_FAILURES, EXIT_COST_LIMIT = 0, 1, 3
API_SAVE_INTERVAL_S = 1.0


# --------------------------------------------------------------------------- arguments

def build_parser(provider_flags: bool = True) -> argparse.ArgumentParser:
    """The stage's flags; the provider layer's flags (--provider, --base_url, --max_cost,
    --concurrency, ...) only for the API engines, which also spares local runs its imports."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--names", nargs="+", default=[stage_files.ALL],
                        help="topics to answer, or `all` (default)")
    parser.add_argument("--exclude", nargs="*", default=[], help="topics to leave out")
    parser.add_argument("--model", required=True,
                        help="HF id or local directory (local/vllm) or provider model id (API engines)")
    parser.add_argument("--model_key", help="key under `inferences` (default: the lower-cased --model, or a "
                                            "local directory's name)")
    parser.add_argument("--inference", choices=ENGINES + API_PROVIDERS, default=DEFAULT_INFERENCE)
    parser.add_argument("--batch_size", type=int,
                        help="prompts per generate() call; results are saved after each (local: 8, vllm: 256)")
    parser.add_argument("--max_new_tokens", type=int, default=2048)
    parser.add_argument("--temperature", type=float, help="0 = greedy; default: the model's/provider's default")
    parser.add_argument("--top_p", type=float)
    parser.add_argument("--top_k", type=int)
    parser.add_argument("--enable_thinking", action=argparse.BooleanOptionalAction, default=None,
                        help="switch reasoning on (or off with --no-enable_thinking; thinking text is stored apart "
                             "from S). Default: local/vllm off; API engines send nothing, so the model's default "
                             "applies (a model whose reasoning cannot be switched off is never asked to)")
    parser.add_argument("--num_samples", type=int, default=1,
                        help="responses per prompt; the first is S, all are kept in `samples`")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (local/vllm)")
    parser.add_argument("--merge_lora", metavar="PATH", help="LoRA adapter merged into the model (local/vllm)")
    parser.add_argument("--quantization", type=int, choices=(4, 8), help="bitsandbytes quantisation (local)")
    parser.add_argument("--tensor_parallel_size", type=int, default=1, help="GPUs per model (vllm)")
    parser.add_argument("--verbose", action="store_true")
    if provider_flags:
        from providers import add_provider_arguments
        add_provider_arguments(parser)
    return parser


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    engine_parser = argparse.ArgumentParser(add_help=False)
    engine_parser.add_argument("--inference", choices=ENGINES + API_PROVIDERS, default=DEFAULT_INFERENCE)
    known, _ = engine_parser.parse_known_args(argv)
    return build_parser(provider_flags=known.inference in API_PROVIDERS).parse_args(argv)


def check_arguments(args: argparse.Namespace) -> None:
    """Flag combinations argparse cannot check; DataError (exit 2) on a bad one."""
    if args.batch_size is None:
        args.batch_size = DEFAULT_BATCH_SIZE.get(args.inference, 1)
    for name in ("batch_size", "max_new_tokens", "num_samples", "tensor_parallel_size"):
        if getattr(args, name) < 1:
            raise utils.DataError(f"--{name} must be at least 1")
    if args.merge_lora and args.inference not in ENGINES:
        raise utils.DataError("--merge_lora needs --inference local or vllm")
    if args.merge_lora and not Path(args.merge_lora).is_dir():
        raise utils.DataError(f"--merge_lora {args.merge_lora}: no such adapter directory")
    if args.quantization and args.inference != "local":
        raise utils.DataError("--quantization needs --inference local")
    if args.tensor_parallel_size != 1 and args.inference != "vllm":
        raise utils.DataError("--tensor_parallel_size needs --inference vllm")
    if args.inference in API_PROVIDERS:
        chosen = getattr(args, "provider", None)
        if chosen and chosen != args.inference:
            raise utils.DataError(f"--provider {chosen} contradicts --inference {args.inference}")
        args.provider = args.inference
    if args.temperature == 0 and args.num_samples > 1:
        log.warning("--num_samples %d with --temperature 0: greedy samples are identical", args.num_samples)


def model_key(args: argparse.Namespace) -> str:
    """The key under `inferences`: --model_key, a local directory's name, or the lower-cased id."""
    if args.model_key:
        return args.model_key
    local_dir = args.inference in ENGINES and Path(args.model).is_dir()
    key = Path(args.model).resolve().name if local_dir else args.model.lower()
    if args.merge_lora:
        key += f"+{Path(args.merge_lora).resolve().name}"
    return key


def sampling_settings(args: argparse.Namespace) -> SamplingSettings:
    return SamplingSettings(max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_p=args.top_p,
                            top_k=args.top_k, enable_thinking=args.enable_thinking)


# --------------------------------------------------------------------------- the files of this run

@dataclass
class Job:
    """One variant of one item that still needs answers from this model."""
    path: Path                  # the stage-2 file it belongs to
    item_index: int
    variant: str
    system: str
    user: str
    sample_indices: list[int]   # which of the --num_samples samples are missing

    @property
    def label(self) -> str:
        return f"{self.path.stem}[{self.item_index}].{self.variant}"


@dataclass
class RunCounts:
    answered: int = 0
    failed: int = 0
    already_done: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None   # API engines only


@dataclass
class Stage2Files:
    """The stage-2 documents of this run: what is pending, storing answers, atomic saves."""
    model_key: str
    num_samples: int
    engine: str
    docs: dict[Path, dict] = field(default_factory=dict)
    dirty: set[Path] = field(default_factory=set)
    counts: RunCounts = field(default_factory=RunCounts)
    recorded_sampling: dict = field(default_factory=dict)   # temperature/top_p/top_k/thinking_enabled

    def load(self, stage_1_paths: list[Path]) -> list[Job]:
        """Read every file (the stage-2 copy when there is one) and list the variants left to answer."""
        jobs: list[Job] = []
        for stage_1_path in stage_1_paths:
            path = stage_files.stage_path(stage_1_path, 2)
            doc = stage_files.load_batch(path if path.exists() else stage_1_path)
            self.docs[path] = doc
            for index, item in enumerate(doc["data"]):
                for variant in stage_files.item_variants(item):
                    entry = item.get("inferences", {}).get(self.model_key, {}).get(variant)
                    have = len(entry.get("samples", [entry])) if entry and "S" in entry else 0
                    if have >= self.num_samples:
                        self.counts.already_done += 1
                        continue
                    jobs.append(Job(path, index, variant, system=item[variant], user=item["T"],
                                    sample_indices=list(range(have, self.num_samples))))
        return jobs

    def _variants(self, job: Job) -> dict:
        item = self.docs[job.path]["data"][job.item_index]
        return item.setdefault("inferences", {}).setdefault(self.model_key, {})

    def store(self, job: Job, generations: list[Generation]) -> None:
        """Record the answers of `job` (its missing samples, in order)."""
        variants = self._variants(job)
        samples = [_sample_record(generation) for generation in generations]
        existing = variants.get(job.variant)
        if job.sample_indices[0] > 0:   # more samples for an answered variant
            existing["samples"] = existing.get("samples", [_sample_record_of_entry(existing)]) + samples
        else:
            first = generations[0]
            entry = {"S": first.text}
            if first.thinking:
                entry["thinking"] = first.thinking
            entry.update(input_tokens=first.input_tokens, output_tokens=first.output_tokens,
                         string_length=len(first.text), generation_time=round(first.generation_time, 3),
                         **self.recorded_sampling, finish_reason=first.finish_reason, inference=self.engine,
                         generated_at=_now())
            if self.num_samples > 1:
                entry["samples"] = samples
            variants[job.variant] = entry
        self.counts.answered += 1
        self.counts.input_tokens += sum(generation.input_tokens for generation in generations)
        self.counts.output_tokens += sum(generation.output_tokens for generation in generations)
        self.dirty.add(job.path)

    def store_failure(self, job: Job, message: str) -> None:
        """Record a failed variant (`error`, no S) so the next run retries it; an answered
        variant that only lacked extra samples keeps its answer."""
        message = " ".join(str(message).split())[:500]
        log.warning("%s failed: %s", job.label, message)
        self.counts.failed += 1
        if job.sample_indices[0] == 0:
            variants = self._variants(job)
            previous = variants.get(job.variant) or {}
            variants[job.variant] = {"error": message, "failed_runs": previous.get("failed_runs", 0) + 1,
                                     "inference": self.engine, "failed_at": _now()}
            self.dirty.add(job.path)

    def save_dirty(self) -> None:
        for path in sorted(self.dirty):
            utils.atomic_write_json(path, self.docs[path])
        self.dirty.clear()


def _sample_record(generation: Generation) -> dict:
    record = {"S": generation.text}
    if generation.thinking:
        record["thinking"] = generation.thinking
    record.update(output_tokens=generation.output_tokens, finish_reason=generation.finish_reason)
    return record


def _sample_record_of_entry(entry: dict) -> dict:
    return {key: entry[key] for key in ("S", "thinking", "output_tokens", "finish_reason") if key in entry}


def _now() -> str:
    return datetime.now().isoformat(timespec="seconds")


# --------------------------------------------------------------------------- local / vLLM engines

def load_engine(args: argparse.Namespace):
    """The local or vLLM engine; a model that cannot be loaded is a one-line DataError."""
    try:
        if args.inference == "vllm":
            from vllm_inference import VllmEngine
            return VllmEngine(args.model, merge_lora=args.merge_lora, tensor_parallel_size=args.tensor_parallel_size,
                              seed=args.seed)
        from local_inference import LocalEngine
        return LocalEngine(args.model, merge_lora=args.merge_lora, quantization=args.quantization, seed=args.seed)
    except OSError as exc:   # transformers' "not a local folder and not a valid model id", missing files
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise utils.DataError(f"--model {args.model}: cannot load it: {first_line}") from None


def run_engine(engine, jobs: list[Job], files: Stage2Files, settings: SamplingSettings, batch_size: int) -> None:
    """Answer `jobs` in length-sorted batches; save after every batch; a failing batch is retried
    one prompt at a time so one bad prompt fails alone."""
    from tqdm import tqdm

    prompts: dict[int, list[int]] = {}
    for job_number, job in enumerate(jobs):
        try:
            prompts[job_number] = engine.encode(job.system, job.user, bool(settings.enable_thinking))
        except Exception as exc:  # e.g. a chat template that rejects this conversation
            files.store_failure(job, f"chat template: {type(exc).__name__}: {exc}")
    units = [(job_number, sample) for job_number in prompts for sample in jobs[job_number].sample_indices]
    pending: dict[int, dict[int, Generation]] = {}   # job number -> sample -> answer, until all samples are in
    failed_jobs: set[int] = set()
    bar = tqdm(total=len(units), desc="stage 2", unit="answer", dynamic_ncols=True)

    def finish(unit_numbers: list[int], generations: list[Generation] | None, error: str | None) -> None:
        for position, unit_number in enumerate(unit_numbers):
            job_number, sample = units[unit_number]
            job = jobs[job_number]
            if job_number in failed_jobs:
                continue
            if error is not None:
                failed_jobs.add(job_number)
                pending.pop(job_number, None)
                files.store_failure(job, error)
                continue
            done = pending.setdefault(job_number, {})
            done[sample] = generations[position]
            if len(done) == len(job.sample_indices):
                files.store(job, [done[index] for index in job.sample_indices])
                del pending[job_number]

    def generate(unit_numbers: list[int]) -> None:
        batch = [prompts[units[number][0]] for number in unit_numbers]
        try:
            finish(unit_numbers, engine.generate(batch, settings), None)
        except Exception as exc:  # one bad batch must not stop the run
            if len(unit_numbers) > 1:
                log.warning("batch of %d failed (%s); retrying its prompts one at a time", len(unit_numbers), exc)
                for number in unit_numbers:
                    generate([number])
            else:
                finish(unit_numbers, None, f"{type(exc).__name__}: {exc}")

    started = time.perf_counter()
    try:
        for batch in plan_batches([len(prompts[job_number]) for job_number, _ in units], batch_size):
            generate(batch)
            files.save_dirty()
            bar.update(len(batch))
            elapsed = time.perf_counter() - started
            bar.set_postfix(in_tokens=files.counts.input_tokens, out_tokens=files.counts.output_tokens,
                            out_tok_s=f"{files.counts.output_tokens / max(elapsed, 1e-9):.1f}",
                            failed=files.counts.failed)
    finally:
        bar.close()
        files.save_dirty()


# --------------------------------------------------------------------------- API engines

def _finish_reason(stop_reason: str) -> str:
    return {"end_turn": "stop", "stop": "stop", "stop_sequence": "stop", "max_tokens": "length",
            "length": "length"}.get(stop_reason, stop_reason)


def _api_generation(response, elapsed: float) -> Generation:
    usage = response.usage
    inline_thinking, answer = split_thinking_text(response.text)
    return Generation(
        text=answer,
        thinking="\n\n".join(part for part in (response.thinking.strip(), inline_thinking) if part),
        input_tokens=usage.input_tokens + usage.cache_read_input_tokens + usage.cache_creation_input_tokens,
        output_tokens=usage.output_tokens,
        finish_reason=_finish_reason(response.stop_reason),
        generation_time=elapsed,
    )


def api_recorded_sampling(client, settings: SamplingSettings, model: str) -> dict:
    """What an API run records: the values the request body really carries (None = not sent, so the
    provider's default applies), read from the body the provider layer renders for this model."""
    from providers import LLMRequest, Message
    from providers.estimate import sent_settings

    probe = LLMRequest(model=model, messages=(Message("user", "."),), max_tokens=settings.max_new_tokens,
                       temperature=settings.temperature, top_p=settings.top_p, top_k=settings.top_k,
                       reasoning=settings.enable_thinking)
    return sent_settings(client.adapter.render(probe))


async def run_api(args: argparse.Namespace, jobs: list[Job], files: Stage2Files, settings: SamplingSettings) -> bool:
    """Answer `jobs` through the provider layer; True when --max_cost stopped the run."""
    from providers import CostLimitReached, LLMRequest, Message, ProviderError, SystemBlock, client_from_args

    client = client_from_args(args, model=args.model)
    files.recorded_sampling = api_recorded_sampling(client, settings, args.model)
    cost_limited = False
    last_save = time.monotonic()

    def request(job: Job, sample: int) -> LLMRequest:
        return LLMRequest(model=args.model, system=(SystemBlock(job.system),) if job.system else (),
                          messages=(Message("user", job.user),), max_tokens=settings.max_new_tokens,
                          temperature=settings.temperature, top_p=settings.top_p, top_k=settings.top_k,
                          reasoning=settings.enable_thinking, sample_index=sample, label=job.label)

    async def answer(job: Job, sample: int) -> Generation:
        started = time.perf_counter()
        response = await client.complete(request(job, sample), accept_max_tokens=True)
        return _api_generation(response, time.perf_counter() - started)

    async def answer_job(job: Job) -> None:
        nonlocal cost_limited, last_save
        try:
            generations = await asyncio.gather(*(answer(job, sample) for sample in job.sample_indices))
        except CostLimitReached:
            cost_limited = True
            return
        except ProviderError as exc:
            if exc.fatal:            # quota, a model that is gone: every other job would fail alike
                raise
            files.store_failure(job, str(exc))
        else:
            files.store(job, list(generations))
        finally:
            bar.update(1)
        if time.monotonic() - last_save >= API_SAVE_INTERVAL_S:
            files.save_dirty()
            last_save = time.monotonic()

    async with client:
        bar = client.progress_bar(total=len(jobs), desc="stage 2")
        try:
            await asyncio.gather(*(answer_job(job) for job in jobs))
        finally:
            bar.close()
            files.save_dirty()
        files.counts.cost_usd = client.cost_usd
        print(client.summary())
    return cost_limited


# --------------------------------------------------------------------------- main

def print_summary(files: Stage2Files, key: str, cost_limited: bool) -> None:
    counts = files.counts
    cost = counts.cost_usd
    print(f"stage 2 [{key}]: {counts.answered} variants answered, {counts.failed} failed, "
          f"{counts.already_done} already done; {counts.input_tokens} input / {counts.output_tokens} output tokens"
          + (f"; ${cost:.4f}" if cost is not None else "")
          + f"; {len(files.docs)} files in {utils.display_path(utils.STAGE_DIRS[2])}")
    if counts.failed:
        print(f"{counts.failed} variants failed (recorded with `error`); rerun the same command to retry them")
    if cost_limited:
        print("stopped by --max_cost; rerun to continue (answers so far are saved and cached)")


@utils.exit_on_data_error
def main(argv: list[str] | None = None) -> int:
    utils.load_env()
    args = parse_arguments(argv)
    utils.setup_logging(args.verbose)
    check_arguments(args)
    key = model_key(args)
    stage_1_paths = stage_files.batch_files(1, args.names, args.exclude)
    if not stage_1_paths:
        raise utils.DataError(f"{utils.display_path(utils.STAGE_DIRS[1])}: no batch files for "
                              f"--names {' '.join(args.names)}")
    files = Stage2Files(model_key=key, num_samples=args.num_samples, engine=args.inference)
    jobs = files.load(stage_1_paths)
    log.info("%s: %d variants to answer, %d already done, in %d files", key, len(jobs),
             files.counts.already_done, len(stage_1_paths))
    settings = sampling_settings(args)
    cost_limited = False
    if not jobs:
        pass   # nothing to answer: no model is loaded and no API client (or key) is needed
    elif args.inference in API_PROVIDERS:
        from providers import ProviderError
        try:
            cost_limited = asyncio.run(run_api(args, jobs, files, settings))
        except ProviderError as exc:   # e.g. a missing API key: nothing could be asked
            raise utils.DataError(str(exc)) from None
    else:
        engine = load_engine(args)
        if args.enable_thinking and not engine.template_takes_thinking:
            log.warning("--enable_thinking: the chat template of %s takes no enable_thinking switch", args.model)
        files.recorded_sampling = {**engine.effective_sampling(settings),
                                   "thinking_enabled": engine.thinking_enabled(settings)}
        run_engine(engine, jobs, files, settings, args.batch_size)
    print_summary(files, key, cost_limited)
    if cost_limited:
        return EXIT_COST_LIMIT
    return EXIT_FAILURES if files.counts.failed else EXIT_COMPLETE


if __name__ == "__main__":
    sys.exit(main())
