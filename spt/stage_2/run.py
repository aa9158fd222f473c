"""One stage 2 run (scripts/dataset_generation_stage_2.py parses and checks the flags, then
calls `run(args)`): list the variants of the chosen topics this model has not answered yet,
answer them on this machine (stage_2.batches) or through a provider API (stage_2.api), and
print the summary (with --dry_run, print the plan instead: stage_2.dry_run). Returns the exit code: 0 complete, 1 some variants failed, 3 stopped by
--max_cost (a DataError, exit 2, for bad input). Reads data/stage_1/<topic>/*.json (or their
stage-2 copies); writes data/stage_2/<topic>/<same name>.json (stage_2.files).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path

from spt import stage_files, utils
from spt.providers.registry import OFFLINE, STAGE_2_PROVIDERS
from spt.stage_2.engine import SamplingSettings
from spt.stage_2.files import Stage2Files

log = logging.getLogger("spt.stage_2")

ENGINES = ("local", "vllm")
EXIT_COMPLETE, EXIT_FAILURES, EXIT_COST_LIMIT = 0, 1, 3


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
    return SamplingSettings(
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_p=args.top_p,
        top_k=args.top_k,
        enable_thinking=args.enable_thinking,
    )


def print_summary(files: Stage2Files, key: str, cost_limited: bool) -> None:
    counts = files.counts
    cost = counts.cost_usd
    print(
        f"stage 2 [{key}]: {counts.answered} variants answered, {counts.failed} failed, "
        f"{counts.already_done} already done; {counts.input_tokens} input / {counts.output_tokens} output tokens"
        + (f"; ${cost:.4f}" if cost is not None else "")
        + f"; {len(files.docs)} files in {utils.display_path(utils.STAGE_DIRS[2])}"
    )
    if counts.failed:
        print(f"{counts.failed} variants failed (recorded with `error`); rerun the same command to retry them")
    if cost_limited:
        print("stopped by --max_cost; rerun to continue (answers so far are saved and cached)")


def run(args: argparse.Namespace) -> int:
    """The run of checked flags; returns the exit code. The engine's imports (torch, vLLM, the
    provider layer) are loaded only when there is something to answer, and only the chosen one's."""
    key = model_key(args)
    stage_1_paths = stage_files.batch_files(1, args.names, args.exclude)
    if not stage_1_paths:
        raise utils.DataError(
            f"{utils.display_path(utils.STAGE_DIRS[1])}: no batch files for --names {' '.join(args.names)}"
        )
    files = Stage2Files(model_key=key, num_samples=args.num_samples, engine=args.inference)
    jobs = files.load(stage_1_paths)
    log.info(
        "%s: %d variants to answer, %d already done, in %d files",
        key,
        len(jobs),
        files.counts.already_done,
        len(stage_1_paths),
    )
    settings = sampling_settings(args)
    if args.dry_run:
        from spt.stage_2.dry_run import print_dry_run

        print_dry_run(args, key, jobs, files.counts.already_done, len(stage_1_paths), settings)
        return EXIT_COMPLETE
    cost_limited = False
    if not jobs:
        pass  # nothing to answer: no model is loaded and no API client (or key) is needed
    elif args.inference in STAGE_2_PROVIDERS:
        from spt.providers import MissingAPIKeyError, ProviderError
        from spt.stage_2.api import run_api

        try:
            cost_limited = asyncio.run(run_api(args, jobs, files, settings))
        except MissingAPIKeyError as exc:  # stage 2 picks the mock with --inference, not --provider
            raise utils.DataError(exc.advising(f"--inference {OFFLINE}")) from None
        except ProviderError as exc:  # e.g. a model that is gone: nothing could be asked
            raise utils.DataError(str(exc)) from None
    else:
        from spt.stage_2.batches import load_engine, run_engine

        engine = load_engine(args)
        if args.enable_thinking and not engine.template_takes_thinking:
            log.warning("--enable_thinking: the chat template of %s takes no enable_thinking switch", args.model)
        files.recorded_sampling = {
            **engine.effective_sampling(settings),
            "thinking_enabled": engine.thinking_enabled(settings),
        }
        run_engine(engine, jobs, files, settings, args.batch_size)
    print_summary(files, key, cost_limited)
    if cost_limited:
        return EXIT_COST_LIMIT
    return EXIT_FAILURES if files.counts.failed else EXIT_COMPLETE
