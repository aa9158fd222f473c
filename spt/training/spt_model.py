"""Model side of Split Personality Training: loading the (possibly poisoned) base model, the
split-personality special token, and the LoRA adapter (plain LoRA or LoRA-mask).

- `check_model_name` refuses a model that is neither a folder nor a Hugging Face id before
  anything loads; a model that fails to load is a one-line DataError too.
- `load_base_model` loads any causal LM and merges the adapters of `merge_checkpoints_train`
  into it (`PeftModel.from_pretrained(...).merge_and_unload()`): that is the "poisoned" model.
- `setup_sp_token` makes `<split-personality-token>` a real special token: a reserved unused
  special token of the tokenizer when there is one (Llama 3: `<|reserved_special_token_0|>`),
  otherwise a new special token with the tokenizer's next id: where the embedding matrix has
  no row for that id it grows and the new row is the mean of the others; where it already has
  a spare row there (matrices padded beyond the vocabulary, as Qwen's), the token keeps that
  row as the checkpoint holds it. Its embedding row is trained through peft's
  `trainable_token_indices` (not for models with tied input/output embeddings).
- `add_lora` wraps the model with peft. `lora_patch: 1` uses peft's Activated LoRA
  (`alora_invocation_tokens`): the adapter is inactive on every token before the
  split-personality token, so the conversation's hidden states and KV cache are exactly the
  base model's.
Reads model/adapter directories; writes nothing (checkpoints are written by train_lora.py).
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from spt.shared_tools import SPLIT_PERSONALITY_TOKEN
from spt.utils import DataError, check_model_folder

# Names of unused placeholder tokens in the families' vocabularies (Llama 3 "reserved_special_token",
# Gemma "unused"): matched among the tokenizer's special added tokens.
_RESERVED_NAME = re.compile(r"reserved|unused", re.IGNORECASE)
_HUB_ID = re.compile(r"[\w.-]+(/[\w.-]+)?")  # a Hugging Face model id: `name` or `org/name`


@dataclass(frozen=True)
class SpToken:
    """How the split-personality token is encoded for one tokenizer."""

    ids: tuple[int, ...]  # one special id (add_sp_token 1) or the text's ordinary tokens (add_sp_token 0)
    token: str  # the tokenizer's own name for it
    added: bool  # True when it was added to the vocabulary (the tokenizer must be saved with the adapter)

    def to_json(self) -> dict:
        return {**asdict(self), "ids": list(self.ids)}

    @classmethod
    def from_json(cls, raw: dict) -> SpToken:
        return cls(ids=tuple(raw["ids"]), token=raw["token"], added=raw["added"])


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def base_dtype(device: torch.device) -> torch.dtype:
    """bf16 on GPU, fp32 on CPU (adapter weights and optimizer state are always fp32)."""
    return torch.bfloat16 if device.type == "cuda" else torch.float32


def check_model_name(name_or_dir: str, what: str) -> None:
    """Before anything loads: `name_or_dir` is a model folder or spelled like a Hugging Face id
    (`org/name`); otherwise a DataError naming `what` set it (a flag, a config key)."""
    if not Path(name_or_dir).is_dir() and not _HUB_ID.fullmatch(name_or_dir):
        raise DataError(f"{what} {name_or_dir}: no such model folder (nor a Hugging Face id such as org/name)")
    check_model_folder(name_or_dir, what)
    if not Path(name_or_dir).is_dir() and _offline():
        from huggingface_hub import try_to_load_from_cache

        if not isinstance(try_to_load_from_cache(name_or_dir, "config.json"), str):
            raise DataError(
                f"{what} {name_or_dir}: not in the local Hugging Face cache, and HF_HUB_OFFLINE is set; "
                "download it first (hf download <id>) or give a model folder"
            )


def _offline() -> bool:
    """HF_HUB_OFFLINE is set to a true value (as huggingface_hub reads it)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _cannot_load(name_or_dir: str, exc: OSError) -> DataError:
    """transformers' error (a missing file, an unknown hub id, no network) as one line."""
    return DataError(f"{name_or_dir}: cannot load the model ({str(exc).strip().splitlines()[0]})")


def load_tokenizer(name_or_dir: str):
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_dir)
    except OSError as exc:
        raise _cannot_load(name_or_dir, exc) from None
    if not tokenizer.chat_template:
        raise DataError(f"{name_or_dir}: the tokenizer has no chat template")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_base_model(
    name_or_dir: str, merge_checkpoints: list[str], device: torch.device, dtype: torch.dtype | None = None
):
    """The base model with every adapter of `merge_checkpoints` merged in, in eval mode, on
    `device` in `dtype` (default: bf16 on GPU, fp32 on CPU)."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    try:
        model = AutoModelForCausalLM.from_pretrained(name_or_dir, dtype=dtype or base_dtype(device)).to(device)
    except OSError as exc:
        raise _cannot_load(name_or_dir, exc) from None
    for adapter_dir in merge_checkpoints:
        if Path(adapter_dir).exists() and not Path(adapter_dir, "adapter_config.json").exists():
            raise DataError(f"merge_checkpoints_train: {adapter_dir}: not a LoRA adapter directory")
        model = PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()
    model.eval()
    return model


def find_reserved_special_token(tokenizer) -> tuple[str, int] | None:
    """The lowest-id unused reserved special token (by name), or None when there is none."""
    template = tokenizer.chat_template or ""
    for token_id, added in sorted(tokenizer.added_tokens_decoder.items()):
        if added.special and _RESERVED_NAME.search(added.content) and added.content not in template:
            return added.content, token_id
    return None


def setup_sp_token(tokenizer, model, add_sp_token: int) -> SpToken:
    """Choose (or add) the split-personality token. An added token's id may already have a
    (spare) embedding row, which it keeps; otherwise the embeddings grow (`grow_embeddings`)."""
    if not add_sp_token:
        ids = tuple(tokenizer.encode(SPLIT_PERSONALITY_TOKEN, add_special_tokens=False))
        return SpToken(ids=ids, token=SPLIT_PERSONALITY_TOKEN, added=False)
    reserved = find_reserved_special_token(tokenizer)
    if reserved:
        return SpToken(ids=(reserved[1],), token=reserved[0], added=False)
    from tokenizers import AddedToken

    tokenizer.add_tokens([AddedToken(SPLIT_PERSONALITY_TOKEN, special=True, normalized=False)], special_tokens=True)
    token_id = tokenizer.convert_tokens_to_ids(SPLIT_PERSONALITY_TOKEN)
    grow_embeddings(model, len(tokenizer))
    return SpToken(ids=(token_id,), token=SPLIT_PERSONALITY_TOKEN, added=True)


def has_tied_embeddings(model) -> bool:
    output = model.get_output_embeddings()
    return output is not None and output.weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()


@torch.no_grad()
def grow_embeddings(model, num_tokens: int) -> None:
    """Give the model at least `num_tokens` embedding rows; rows it lacks are added as the mean
    of the old ones, so the same base model always gets the same rows (the adapter does not need
    to store them). Rows it already has, spare ones included, are left as they are."""
    old = model.get_input_embeddings().weight.shape[0]
    if num_tokens <= old:
        return
    model.resize_token_embeddings(num_tokens, mean_resizing=False)
    layers = [model.get_input_embeddings()]
    if not has_tied_embeddings(model):
        layers.append(model.get_output_embeddings())
    for layer in layers:
        layer.weight[old:] = layer.weight[:old].mean(dim=0)


def lora_config(config: dict, sp: SpToken, train_token_row: bool):
    from peft import LoraConfig

    return LoraConfig(
        task_type="CAUSAL_LM",
        r=config["lora_r"],
        lora_alpha=config["lora_alpha"],
        use_rslora=bool(config["use_rslora"]),
        lora_dropout=config["lora_dropout"],
        target_modules=config["lora_target_modules"],
        alora_invocation_tokens=list(sp.ids) if config["lora_patch"] else None,
        trainable_token_indices=list(sp.ids) if train_token_row else None,
    )


def add_lora(model, config: dict, sp: SpToken):
    """Wrap `model` with a fresh trainable adapter (fp32 adapter weights).

    The split-personality token's embedding row is trained too, except when the input and
    output embeddings are tied: there a trained row would also change that token's output
    logit at every position, and the model before the token would no longer be exactly the
    base model. Tied models keep the token's initial embedding.
    """
    from peft import get_peft_model

    train_token_row = bool(config["add_sp_token"]) and len(sp.ids) == 1 and not has_tied_embeddings(model)
    return get_peft_model(model, lora_config(config, sp, train_token_row), autocast_adapter_dtype=True)


def load_adapter(model, adapter_dir: Path, trainable: bool = False):
    from peft import PeftModel

    return PeftModel.from_pretrained(model, adapter_dir, is_trainable=trainable)


def adapter_offsets(adapter_mask: torch.Tensor) -> list[int | None]:
    """peft's aLoRA offsets (active positions counted from the end) from a 0/1 adapter mask."""
    length = adapter_mask.shape[1]
    active = adapter_mask.bool()
    first = torch.where(
        active.any(dim=1), active.float().argmax(dim=1), torch.full_like(active[:, 0], length, dtype=torch.long)
    )
    return [int(length - f) if f < length else None for f in first.tolist()]
