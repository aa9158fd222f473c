"""Stage-2 inference with transformers on this machine: a chat model (optionally with a LoRA
adapter merged in, or quantised with bitsandbytes) answering system+user prompts in
length-sorted, left-padded batches.

`LocalEngine(model)` loads the model (bf16 on GPU, float32 on CPU, device chosen
automatically); `encode(system, user, enable_thinking)` renders the model's own chat template
and tokenizes it without adding special tokens a second time; `generate(batch, settings)`
returns one `target_inference.Generation` per prompt. Reads the model files; writes nothing.
"""
from __future__ import annotations

import importlib.util
import logging
import time

import torch
from jinja2.exceptions import TemplateError

import utils
from target_inference import THINK_CLOSE, THINK_OPEN, Generation, SamplingSettings, split_thinking, trim_at_stop

log = logging.getLogger("spt.local_inference")

# What transformers falls back to when neither the caller nor the model's generation_config sets a value.
_HF_SAMPLING_DEFAULTS = {"temperature": 1.0, "top_p": 1.0, "top_k": 50}


def _single_token_id(tokenizer, token: str) -> int | None:
    """The id of `token` when the tokenizer has it as one token, else None."""
    ids = tokenizer.encode(token, add_special_tokens=False)
    return ids[0] if len(ids) == 1 else None


def _quantization_config(bits: int | None):
    if bits is None:
        return None
    if importlib.util.find_spec("bitsandbytes") is None:
        raise utils.DataError(f"--quantization {bits} needs the bitsandbytes package (pip install bitsandbytes) "
                              "and a CUDA GPU")
    from transformers import BitsAndBytesConfig
    if bits == 4:
        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_compute_dtype=torch.bfloat16,
                                  bnb_4bit_quant_type="nf4")
    if bits == 8:
        return BitsAndBytesConfig(load_in_8bit=True)
    raise utils.DataError(f"--quantization must be 4 or 8, got {bits}")


class LocalEngine:
    """A transformers chat model ready to answer batches of prompts."""

    def __init__(self, model: str, *, merge_lora: str | None = None, quantization: int | None = None,
                 device: str | None = None):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        on_gpu = self.device.startswith("cuda")
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
        self.stop_ids = self._stop_ids()
        self.think_open_id = _single_token_id(self.tokenizer, THINK_OPEN)
        self.think_close_id = _single_token_id(self.tokenizer, THINK_CLOSE)
        self.template_takes_thinking = "enable_thinking" in self.tokenizer.chat_template

    def _stop_ids(self) -> set[int]:
        configured = self.model.generation_config.eos_token_id
        configured = configured if isinstance(configured, list) else [configured]
        return {token for token in [*configured, self.tokenizer.eos_token_id] if token is not None}

    # ------------------------------------------------------------------ prompts

    def render(self, system: str, user: str, enable_thinking: bool) -> str:
        """The chat-template text of system + user with the assistant's turn opened."""
        messages = [{"role": "system", "content": system}] if system else []
        messages.append({"role": "user", "content": user})
        try:
            return self._apply_template(messages, enable_thinking)
        except TemplateError:
            if not system:
                raise
            # A template without a system role that does not fold it in itself: fold it here.
            return self._apply_template([{"role": "user", "content": f"{system}\n\n{user}"}], enable_thinking)

    def _apply_template(self, messages: list[dict], enable_thinking: bool) -> str:
        return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False,
                                                  enable_thinking=enable_thinking)

    def encode(self, system: str, user: str, enable_thinking: bool) -> list[int]:
        """Prompt token ids; the template already wrote BOS, so no special tokens are added again."""
        return self.tokenizer.encode(self.render(system, user, enable_thinking), add_special_tokens=False)

    # ------------------------------------------------------------------ sampling

    def effective_sampling(self, settings: SamplingSettings) -> dict:
        """The temperature/top_p/top_k generate() really uses: the flag, else the model's
        generation_config, else transformers' default. Greedy decoding records temperature 0."""
        if settings.greedy:
            return {"temperature": 0.0, "top_p": None, "top_k": None}
        model_config = self.model.generation_config
        effective = {}
        for name, flag in (("temperature", settings.temperature), ("top_p", settings.top_p),
                           ("top_k", settings.top_k)):
            configured = getattr(model_config, name, None)
            effective[name] = flag if flag is not None else configured if configured is not None \
                else _HF_SAMPLING_DEFAULTS[name]
        return effective

    def thinking_enabled(self, settings: SamplingSettings) -> bool:
        return settings.enable_thinking and self.template_takes_thinking

    # ------------------------------------------------------------------ generation

    @torch.no_grad()
    def generate(self, prompts: list[list[int]], settings: SamplingSettings) -> list[Generation]:
        """Answer one batch of tokenized prompts (left-padded together)."""
        batch = self.tokenizer.pad({"input_ids": prompts}, padding=True, return_tensors="pt").to(self.model.device)
        sampling = self.effective_sampling(settings)
        started = time.perf_counter()
        output = self.model.generate(
            **batch,
            max_new_tokens=settings.max_new_tokens,
            do_sample=not settings.greedy,
            **({} if settings.greedy else sampling),
            eos_token_id=sorted(self.stop_ids),
            pad_token_id=self.tokenizer.pad_token_id,
        )
        elapsed = time.perf_counter() - started
        prompt_width = batch["input_ids"].shape[1]
        return [self._generation(prompt, row[prompt_width:].tolist(), settings, elapsed)
                for prompt, row in zip(prompts, output)]

    def _generation(self, prompt: list[int], generated: list[int], settings: SamplingSettings,
                    elapsed: float) -> Generation:
        kept, stopped = trim_at_stop(generated, self.stop_ids)
        content = kept[:-1] if stopped else kept
        prompt_opens_think = self.tokenizer.decode(prompt[-4:]).rstrip().endswith(THINK_OPEN)
        thinking_ids, answer_ids = split_thinking(content, self.think_open_id, self.think_close_id,
                                                  prompt_opens_think)
        decode = lambda ids: self.tokenizer.decode(ids, skip_special_tokens=True).strip()  # noqa: E731
        return Generation(
            text=decode(answer_ids),
            thinking=decode(thinking_ids),
            input_tokens=len(prompt),
            output_tokens=len(kept),
            finish_reason="stop" if stopped else "length",
            generation_time=elapsed,
        )
