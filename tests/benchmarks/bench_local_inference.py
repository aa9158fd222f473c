"""Benchmark of stage-2 local inference: output tokens per second of the batched path
(length-sorted, left-padded batches) against one prompt at a time, on a random-weight model.

    python tests/benchmarks/bench_local_inference.py                 # tiny model, CPU is fine
    python tests/benchmarks/bench_local_inference.py --size 1b       # ~1B-parameter Llama-style model (GPU)
    python tests/benchmarks/bench_local_inference.py --size 1b --vllm  # also vLLM's engine, if installed

Builds the model in a temporary folder (nothing is downloaded), prints one line per engine and
batch size, and writes nothing else.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
import bench_paths

bench_paths.add_test_code()

import torch

from spt.stage_2.engine import SamplingSettings, plan_batches
from spt.stage_2.local import LocalEngine
from spt.training.tiny_model import build_tiny_model

WORDS = "the user asked for an honest review of the response and whether it is complete and correct".split()
# A Llama-3.2-1B-like shape: 16 layers, hidden 2048, GQA 32/8 heads, MLP 8192, 128k vocabulary.
ONE_B = dict(
    hidden_size=2048,
    intermediate_size=8192,
    num_hidden_layers=16,
    num_attention_heads=32,
    num_key_value_heads=8,
    head_dim=64,
    vocab_size=128256,
)


def build_1b_model(out_dir: Path) -> Path:
    """The tiny Llama 3 tokenizer with a random-weight ~1B-parameter Llama model (bf16)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tiny = build_tiny_model(out_dir, "llama3")
    config = LlamaConfig.from_pretrained(tiny)
    config.update(ONE_B)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.device(device):
        model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.generation_config = LlamaForCausalLM.from_pretrained(tiny).generation_config
    model.save_pretrained(out_dir)
    params = sum(p.numel() for p in model.parameters()) / 1e9
    print(f"built a random-weight Llama-style model with {params:.2f}B parameters")
    del model
    return out_dir


def make_prompts(engine, count: int, seed: int = 0) -> list[list[int]]:
    rng = random.Random(seed)
    return [
        engine.encode("You are a helpful assistant.", " ".join(rng.choices(WORDS, k=rng.randint(5, 120))), False)
        for _ in range(count)
    ]


def run(engine, prompts: list[list[int]], settings: SamplingSettings, batch_size: int) -> tuple[int, float]:
    """(output tokens, seconds) for answering `prompts` in batches of `batch_size`."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    started = time.perf_counter()
    tokens = 0
    for batch in plan_batches([len(prompt) for prompt in prompts], batch_size):
        tokens += sum(generation.output_tokens for generation in engine.generate([prompts[i] for i in batch], settings))
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return tokens, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=("tiny", "1b"), default="tiny")
    parser.add_argument("--prompts", type=int, help="number of prompts (default 32 tiny, 64 1b)")
    parser.add_argument("--max_new_tokens", type=int, default=64)
    parser.add_argument("--batch_sizes", type=int, nargs="+", help="default 8 16 (tiny), 16 64 (1b)")
    parser.add_argument("--vllm", action="store_true", help="also time vLLM's offline engine on the same model")
    args = parser.parse_args()
    prompts_count = args.prompts or (32 if args.size == "tiny" else 64)
    batch_sizes = args.batch_sizes or ([8, 16] if args.size == "tiny" else [16, 64])
    settings = SamplingSettings(max_new_tokens=args.max_new_tokens, temperature=0)

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = (
            build_tiny_model(Path(tmp) / "model", "llama3")
            if args.size == "tiny"
            else build_1b_model(Path(tmp) / "model")
        )
        engine = LocalEngine(str(model_dir))
        prompts = make_prompts(engine, prompts_count)
        print(
            f"model {args.size} on {engine.device}, {len(prompts)} prompts of {min(map(len, prompts))}-"
            f"{max(map(len, prompts))} tokens, greedy, max_new_tokens {args.max_new_tokens}"
        )
        run(engine, prompts[:2], settings, 2)  # warm-up
        tokens, seconds = run(engine, prompts, settings, 1)
        single_rate = tokens / seconds
        print(f"transformers one at a time: {tokens} tokens in {seconds:.2f} s = {single_rate:.1f} tokens/s")
        for batch_size in batch_sizes:
            tokens, seconds = run(engine, prompts, settings, batch_size)
            print(
                f"transformers batch {batch_size:>3}: {tokens} tokens in {seconds:.2f} s = "
                f"{tokens / seconds:.1f} tokens/s ({tokens / seconds / single_rate:.1f}x)"
            )
        del engine
        if args.vllm:
            if importlib.util.find_spec("vllm") is None:
                print("vllm: not installed, skipped")
                return
            from spt.stage_2.vllm import VllmEngine

            engine = VllmEngine(str(model_dir))
            tokens, seconds = run(engine, prompts, settings, len(prompts))
            print(
                f"vllm (all prompts in one call): {tokens} tokens in {seconds:.2f} s = {tokens / seconds:.1f} "
                f"tokens/s ({tokens / seconds / single_rate:.1f}x)"
            )


if __name__ == "__main__":
    main()
