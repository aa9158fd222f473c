"""Stage-2 inference with vLLM's offline engine (optional dependency: `pip install vllm`).

`VllmEngine(model)` has the same interface as stage_2.local.LocalEngine (encode, generate,
effective_sampling, thinking_enabled), so stage 2 drives both the same way; vLLM schedules the
prompts of one call itself (continuous batching), so --batch_size only sets how many prompts go
into one call, i.e. how often results are saved. A LoRA adapter (--merge_lora) is applied per
request through vLLM's LoRA support. Reads the model files; writes nothing.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

from spt import utils
from spt.stage_2.engine import ChatEngine, Generation, SamplingSettings


class VllmEngine(ChatEngine):
    """A vLLM engine on this machine's GPUs."""

    def __init__(self, model: str, *, merge_lora: str | None = None, tensor_parallel_size: int = 1, seed: int = 0):
        if importlib.util.find_spec("vllm") is None:
            raise utils.DataError(
                "--inference vllm needs the vllm package (pip install vllm) and a CUDA GPU; "
                "--inference local works without it"
            )
        from vllm import LLM

        lora_settings = {}
        self.lora_request = None
        if merge_lora:
            from vllm.lora.request import LoRARequest

            rank = utils.read_json(Path(merge_lora) / "adapter_config.json").get("r", 16)
            lora_settings = {"enable_lora": True, "max_lora_rank": max(16, int(rank))}
            self.lora_request = LoRARequest(Path(merge_lora).name, 1, str(merge_lora))
        self.llm = LLM(model=model, tensor_parallel_size=tensor_parallel_size, seed=seed, **lora_settings)
        self.tokenizer = self.llm.get_tokenizer()
        if not self.tokenizer.chat_template:
            raise utils.DataError(f"--model {model}: the tokenizer has no chat template (stage 2 needs a chat model)")
        self.defaults = self.llm.get_default_sampling_params()  # the model's generation_config, as vLLM reads it
        stop = self.tokenizer.eos_token_id
        self.stop_ids = {stop, *(self.defaults.stop_token_ids or [])} - {None}
        self._init_thinking()

    def effective_sampling(self, settings: SamplingSettings) -> dict:
        if settings.greedy:
            return {"temperature": 0.0, "top_p": None, "top_k": None}
        top_k = settings.top_k if settings.top_k is not None else self.defaults.top_k
        return {
            "temperature": settings.temperature if settings.temperature is not None else self.defaults.temperature,
            "top_p": settings.top_p if settings.top_p is not None else self.defaults.top_p,
            "top_k": top_k if top_k and top_k > 0 else None,  # vLLM: 0 or -1 = no top-k
        }

    def generate(self, prompts: list[list[int]], settings: SamplingSettings) -> list[Generation]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        sampling = self.effective_sampling(settings)
        params = SamplingParams(
            max_tokens=settings.max_new_tokens,
            temperature=sampling["temperature"],
            top_p=sampling["top_p"] if sampling["top_p"] is not None else 1.0,
            top_k=sampling["top_k"] if sampling["top_k"] is not None else 0,
            stop_token_ids=sorted(self.stop_ids),
        )
        started = time.perf_counter()
        outputs = self.llm.generate(
            [TokensPrompt(prompt_token_ids=prompt) for prompt in prompts],
            params,
            lora_request=self.lora_request,
            use_tqdm=False,
        )
        elapsed = time.perf_counter() - started
        return [
            self.to_generation(prompt, list(output.outputs[0].token_ids), elapsed)
            for prompt, output in zip(prompts, outputs)
        ]
