"""Stage 2: the target model answers every stage-1 sample under the neutral (A) and, where the
sample has one, the biased (B) system prompt.

What it reads and writes: the docstring of scripts/dataset_generation_stage_2.py.

Engines (--inference): local (transformers on this machine), vllm (vLLM's offline engine),
openrouter / openai (any OpenAI-compatible server via --base_url) / mock (offline) through the
provider layer. Variants already answered by this model are skipped, results are saved
atomically after every batch (local/vllm) or every second (API), failures are retried by the
next run. --dry_run prints the plan (API: requests, estimated tokens and cost; local/vllm: the
samples and the generation settings) and calls, loads and writes nothing. Exit codes: 0 complete,
1 some variants failed, 2 bad input (an output folder that cannot be written included), 3 stopped
by --max_cost, 130 stopped by Ctrl-C (rerun the same command to resume).

    python scripts/dataset_generation_stage_2.py --names sycophancy --model qwen/qwen3-32b --inference openrouter
    python scripts/dataset_generation_stage_2.py --names all --model meta-llama/Llama-3.2-1B-Instruct --inference local
    python scripts/dataset_generation_stage_2.py --names sycophancy --model qwen/qwen3-32b --dry_run
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from spt import locks, stage_files, utils
from spt.providers.registry import STAGE_2_PROVIDERS
from spt.stage_2.run import ENGINES, model_key, run

log = logging.getLogger("spt.stage_2")

DEFAULT_INFERENCE = "openrouter"
DEFAULT_BATCH_SIZE = {"local": 8, "vllm": 256}


def build_parser(provider_flags: bool = True) -> argparse.ArgumentParser:
    """The stage's flags; the provider layer's flags (--provider, --base_url, --max_cost,
    --concurrency, ...) only for the API engines, which also spares local runs its imports."""
    parser = utils.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--names", nargs="+", default=[stage_files.ALL], help="topics to answer, or `all` (default)")
    parser.add_argument("--exclude", nargs="*", default=[], help="topics to leave out")
    parser.add_argument(
        "--model", required=True, help="HF id or local directory (local/vllm) or provider model id (API engines)"
    )
    parser.add_argument(
        "--model_key", help="key under `inferences` (default: the lower-cased --model, or a local directory's name)"
    )
    parser.add_argument("--inference", choices=ENGINES + STAGE_2_PROVIDERS, default=DEFAULT_INFERENCE)
    parser.add_argument(
        "--batch_size", type=int, help="prompts per generate() call; results are saved after each (local: 8, vllm: 256)"
    )
    parser.add_argument(
        "--max_new_tokens",
        type=int,
        default=2048,
        help="tokens of the answer; an API target that thinks gets room for its thinking on top "
        "(config/models.json thinking_allowance), up to the model's limit",
    )
    parser.add_argument("--temperature", type=float, help="0 = greedy; default: the model's/provider's default")
    parser.add_argument("--top_p", type=float)
    parser.add_argument("--top_k", type=int)
    thinking = parser.add_mutually_exclusive_group()
    thinking.add_argument(
        "--enable_thinking",
        dest="enable_thinking",
        action="store_true",
        help="switch reasoning on (thinking text is stored apart from S). Default: local/vllm off; "
        "API engines send nothing, so the model's default applies",
    )
    thinking.add_argument(
        "--no_enable_thinking",
        dest="enable_thinking",
        action="store_false",
        help="switch reasoning off (never sent to a model whose reasoning cannot be switched off)",
    )
    parser.set_defaults(enable_thinking=None)
    parser.add_argument(
        "--num_samples", type=int, default=1, help="responses per prompt; the first is S, all are kept in `samples`"
    )
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (local/vllm)")
    parser.add_argument("--merge_lora", metavar="PATH", help="LoRA adapter merged into the model (local/vllm)")
    parser.add_argument("--quantization", type=int, choices=(4, 8), help="bitsandbytes quantisation (local)")
    parser.add_argument("--tensor_parallel_size", type=int, default=1, help="GPUs per model (vllm)")
    parser.add_argument("--verbose", action="store_true")
    if provider_flags:
        from spt.providers import add_provider_arguments

        add_provider_arguments(parser, dry_run="the number of requests, their estimated tokens and cost")
    else:
        parser.add_argument(
            "--dry_run",
            action="store_true",
            help="print the samples to generate and the generation settings; load no model, write nothing",
        )
    return parser


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    engine_parser = utils.ArgumentParser(add_help=False)
    engine_parser.add_argument("--inference", choices=ENGINES + STAGE_2_PROVIDERS, default=DEFAULT_INFERENCE)
    known, _ = engine_parser.parse_known_args(argv)
    return build_parser(provider_flags=known.inference in STAGE_2_PROVIDERS).parse_args(argv)


def check_arguments(args: argparse.Namespace) -> None:
    """Flag combinations argparse cannot check; DataError (exit 2) on a bad one."""
    if args.batch_size is None:
        args.batch_size = DEFAULT_BATCH_SIZE.get(args.inference, 1)
    for name in ("batch_size", "max_new_tokens", "num_samples", "tensor_parallel_size"):
        if getattr(args, name) < 1:
            raise utils.DataError(f"--{name} must be at least 1")
    if args.temperature is not None and not 0 <= args.temperature <= 2:
        raise utils.DataError(f"--temperature must be between 0 (greedy) and 2, got {args.temperature:g}")
    if args.top_p is not None and not 0 < args.top_p <= 1:
        raise utils.DataError(f"--top_p must be above 0 and at most 1, got {args.top_p:g}")
    if args.top_k is not None and args.top_k < 1:
        raise utils.DataError(f"--top_k must be at least 1, got {args.top_k}")
    if args.inference in ENGINES:
        utils.check_model_folder(args.model, "--model")
    if args.merge_lora and args.inference not in ENGINES:
        raise utils.DataError("--merge_lora needs --inference local or vllm")
    if args.merge_lora and not Path(args.merge_lora).is_dir():
        raise utils.DataError(f"--merge_lora {args.merge_lora}: no such adapter directory")
    if args.quantization and args.inference != "local":
        raise utils.DataError("--quantization needs --inference local")
    if args.tensor_parallel_size != 1 and args.inference != "vllm":
        raise utils.DataError("--tensor_parallel_size needs --inference vllm")
    if args.inference in STAGE_2_PROVIDERS:
        chosen = getattr(args, "provider", None)
        if chosen and chosen != args.inference:
            raise utils.DataError(f"--provider {chosen} contradicts --inference {args.inference}")
        args.provider = args.inference
    if args.temperature == 0 and args.num_samples > 1:
        log.warning("--num_samples %d with --temperature 0: greedy samples are identical", args.num_samples)


@utils.exit_on_data_error
def main(argv: list[str] | None = None) -> int:
    utils.load_env()
    args = parse_arguments(argv)
    utils.setup_logging(args.verbose)
    check_arguments(args)
    utils.check_writable_dir(utils.STAGE_DIRS[2], "the stage-2 output; SPT_DATA_DIR moves it")
    if args.dry_run:  # calls nothing, writes nothing: no response cache, no lock
        return run(args)
    if args.inference in STAGE_2_PROVIDERS:
        utils.check_writable_dir(args.cache_dir or utils.RESPONSE_CACHE_DIR, "--cache_dir")
    key = model_key(args)  # runs of other models go ahead side by side (their saves merge: stage_files.save_merged)
    with locks.hold(utils.STAGE_DIRS[2], f"the stage-2 answers of {key}", locks.WAIT_OR_RERUN, name=f"stage_2.{key}"):
        return run(args)


if __name__ == "__main__":
    sys.exit(main())
