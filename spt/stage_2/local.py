"""Stage-2 inference with transformers on this machine: a chat model (optionally with a LoRA
adapter merged in, or quantised with bitsandbytes) answering prompts in left-padded batches.

`LocalEngine(model)` loads the model (bf16 on GPU, float32 on CPU, device chosen
automatically); `encode(system, user, enable_thinking)` (from stage_2.engine.ChatEngine)
renders the model's own chat template; `generate(prompts, settings)` returns one
`stage_2.engine.Generation` per prompt. Reads the model files; writes nothing.
"""

from __future__ import annotations

import importlib.util
import time

import torch

from spt import utils
from spt.stage_2.engine import ChatEngine, Generation, SamplingSettings

# What transformers falls back to when neither the caller nor the model's generation_config sets a value.
_HF_SAMPLING_DEFAULTS = {"temperature": 1.0, "top_p": 1.0, "top_k": 50}


def _quantization_config(bits: int | None):
    if bits is None:
        return None
    if importlib.util.find_spec("bitsandbytes") is None:
        raise utils.DataError(
            f"--quantization {bits} needs the bitsandbytes package (pip install bitsandbytes) and a CUDA GPU"
        )
    from transformers import BitsAndBytesConfig

    if bits == 4:
        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_compute_dtype=torch.bfloat16, bnb_4bit_quant_type="nf4")
    if bits == 8:
        return BitsAndBytesConfig(load_in_8bit=True)
    raise utils.DataError(f"--quantization must be 4 or 8, got {bits}")


class LocalEngine(ChatEngine):
    """A transformers chat model ready to answer batches of prompts."""

    def __init__(self, model: str, *, merge_lora: str | None = None, quantization: int | None = None, seed: int = 0):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        torch.manual_seed(seed)  # sampled answers are reproducible for the same prompts and batch size

        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        on_gpu = self.device == "cuda"
        quantization_config = _quantization_config(quantization)
        self.tokenizer = AutoTokenizer.from_pretrained(model)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if not self.tokenizer.chat_template:
            raise utils.DataError(f"--model {model}: the tokenizer has no chat template (stage 2 needs a chat model)")
        self.model = AutoModelForCausalLM.from_pretrained(
            model,
            dtype=torch.bfloat16 if on_gpu else torch.float32,
            device_map="auto" if on_gpu else None,
            quantization_config=quantization_config,
        )
        if merge_lora:
            from peft import PeftModel

            self.model = PeftModel.from_pretrained(self.model, merge_lora).merge_and_unload()
        if not on_gpu:
            self.model.to(self.device)
        self.model.eval()
        configured = self.model.generation_config.eos_token_id
        configured = configured if isinstance(configured, list) else [configured]
        self.stop_ids = {token for token in [*configured, self.tokenizer.eos_token_id] if token is not None}
        self._init_thinking()

    def effective_sampling(self, settings: SamplingSettings) -> dict:
        """The temperature/top_p/top_k generate() really uses: the flag, else the model's
        generation_config, else transformers' default. Greedy decoding records temperature 0."""
        if settings.greedy:
            return {"temperature": 0.0, "top_p": None, "top_k": None}
        model_config = self.model.generation_config
        effective = {}
        for name, flag in (("temperature", settings.temperature), ("top_p", settings.top_p), ("top_k", settings.top_k)):
            configured = getattr(model_config, name, None)
            effective[name] = (
                flag if flag is not None else configured if configured is not None else _HF_SAMPLING_DEFAULTS[name]
            )
        return effective

    @torch.no_grad()
    def generate(self, prompts: list[list[int]], settings: SamplingSettings) -> list[Generation]:
        """Answer one batch of tokenized prompts (left-padded together)."""
        batch = self.tokenizer.pad({"input_ids": prompts}, padding=True, return_tensors="pt").to(self.model.device)
        started = time.perf_counter()
        output = self.model.generate(
            **batch,
            max_new_tokens=settings.max_new_tokens,
            do_sample=not settings.greedy,
            **({} if settings.greedy else self.effective_sampling(settings)),
            eos_token_id=sorted(self.stop_ids),
            pad_token_id=self.tokenizer.pad_token_id,
        )
        elapsed = time.perf_counter() - started
        prompt_width = batch["input_ids"].shape[1]
        return [
            self.to_generation(prompt, row[prompt_width:].tolist(), elapsed) for prompt, row in zip(prompts, output)
        ]
