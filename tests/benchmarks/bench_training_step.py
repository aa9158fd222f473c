"""Benchmark: tokens/second of one SPT training step (forward + backward + AdamW), with plain
LoRA and with LoRA-mask (peft Activated LoRA), on a random-weight model.

    python tests/benchmarks/bench_training_step.py                  # tiny model, CPU
    python tests/benchmarks/bench_training_step.py --size 1b        # ~1.2B, Llama-3.2-1B shape (GPU)

Builds the model in memory (nothing is downloaded or written) and prints one line per
LoRA mode. Sequences are random token ids; the split-personality token sits at 3/4 of each
sequence and the loss covers the last eighth, as in a typical review sample.
"""

from __future__ import annotations

import argparse
import time

# training/ is not a package (its modules are run as scripts); scripts/ is installed (pyproject.toml).
import bench_paths
import torch

bench_paths.add_test_code()
from spt.training import spt_model
from spt.training.trainer import forward_logits, token_loss_sum

SIZES = {
    "tiny": dict(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=1024,
    ),
    "1b": dict(
        hidden_size=2048,
        intermediate_size=8192,
        num_hidden_layers=16,
        num_attention_heads=32,
        num_key_value_heads=8,
        vocab_size=128256,
    ),
}
LORA = {
    "lora_r": 64,
    "lora_alpha": 128,
    "lora_dropout": 0.0,
    "add_sp_token": 1,
    "lora_target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
}


def build_model(size: str, device: torch.device):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(**SIZES[size], max_position_embeddings=8192, tie_word_embeddings=True)
    with device:
        model = LlamaForCausalLM(config).to(spt_model.base_dtype(device))
    print(f"model: {sum(p.numel() for p in model.parameters()) / 1e9:.2f}B parameters")
    return model


def make_batch(batch: int, seq_len: int, vocab: int, sp_id: int, device: torch.device) -> dict:
    input_ids = torch.randint(0, vocab - 1, (batch, seq_len), device=device)
    sp_pos = seq_len * 3 // 4
    input_ids[:, sp_pos] = sp_id
    labels = torch.full_like(input_ids, -100)
    labels[:, seq_len - seq_len // 8 :] = input_ids[:, seq_len - seq_len // 8 :]
    adapter_mask = torch.zeros_like(input_ids)
    adapter_mask[:, sp_pos:] = 1
    return {
        "input_ids": input_ids,
        "attention_mask": torch.ones_like(input_ids),
        "labels": labels,
        "adapter_mask": adapter_mask,
    }


def bench(size: str, lora_patch: int, args, device: torch.device) -> float:
    torch.manual_seed(0)
    base = build_model(size, device)
    sp = spt_model.SpToken(ids=(SIZES[size]["vocab_size"] - 1,), token="<sp>", added=False)
    model = spt_model.add_lora(base, {**LORA, "lora_patch": lora_patch}, sp)
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    batch = make_batch(args.batch, args.seq_len, SIZES[size]["vocab_size"], sp.ids[0], device)

    def step():
        loss = token_loss_sum(forward_logits(model, batch, lora_patch), batch["labels"])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(args.warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(args.steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - started
    return args.steps * args.batch * args.seq_len / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="tiny")
    parser.add_argument("--device", default=str(spt_model.default_device()))
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    for lora_patch, name in ((0, "plain LoRA"), (1, "LoRA-mask")):
        rate = bench(args.size, lora_patch, args, device)
        print(
            f"size={args.size} device={device} batch={args.batch} seq_len={args.seq_len} {name:10s}: "
            f"{rate:,.0f} tokens/s"
        )


if __name__ == "__main__":
    main()
