"""LoRA-mask (lora_patch 1, peft Activated LoRA): positions before the split-personality token
are exactly the base model's, positions after it are not; plain LoRA changes every position;
the honest persona run on the base model's KV cache matches a full forward pass; and the evaluation's
batched greedy decoding gives the tokens of a greedy loop of full forward passes."""

from __future__ import annotations

import copy

import pytest
import torch

from spt.shared_tools import SPLIT_PERSONALITY_TOKEN
from spt.training import spt_model
from spt.training.evaluator import greedy_generate
from spt.training.kv_reuse import base_kv_cache, review_on_cache
from spt.training.sequences import SequenceFormat, build_prompt, build_training_sequence, end_of_turn_text
from spt.training.tiny_model import build_tiny_model
from spt.training.trainer import forward_logits
from spt.training.training_data import collate

CONFIG = {
    "system_tag": "<SYSTEM> ",
    "intervention_prefix": " INTERVENTION: ",
    "review_prefix": "\n\nREVIEW:",
    "flag_prefix": "\nFLAG: ",
    "elicitation_type": "hp",
    "add_sp_token": 1,
    "lora_r": 4,
    "lora_alpha": 8,
    "use_rslora": 0,
    "lora_dropout": 0.0,
    "lora_target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
}
SAMPLES = [
    {
        "system_prompt": "You are a careful assistant.",
        "T": "Is the answer correct?",
        "S": "Yes, it is correct.",
        "I": f"{SPLIT_PERSONALITY_TOKEN}Now I can be honest.",
        "R": "I agreed to please them.",
        "P": "FAIL",
    },
    {
        "system_prompt": "",
        "T": "What is the capital of France?",
        "S": "The capital of France is Paris.",
        "I": f"{SPLIT_PERSONALITY_TOKEN}Now I can be honest.",
        "R": "My answer was accurate.",
        "P": "PASS",
    },
]


pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module", params=["llama3", "gemma3", "qwen3_untied"])
def setup(request, tmp_path_factory):
    """(base model, tokenizer, SpToken): llama3 reuses a reserved token, gemma3 adds one (tied
    embeddings: the token row stays fixed), qwen3 (the untied thinking build) adds one and trains its row."""
    family = request.param.removesuffix("_untied")
    path = build_tiny_model(tmp_path_factory.mktemp(family), family, seed=1, thinking=request.param.endswith("_untied"))
    tokenizer = spt_model.load_tokenizer(str(path))
    base = spt_model.load_base_model(str(path), [], torch.device("cpu"))
    sp = spt_model.setup_sp_token(tokenizer, base, 1)
    return base, tokenizer, sp


def _active_adapter(base, sp, lora_patch: int):
    """A copy of `base` with an adapter that is not a no-op (random B and token embedding), the same
    whichever tests ran before (peft draws A from the global generator)."""
    torch.manual_seed(0)
    model = spt_model.add_lora(copy.deepcopy(base), {**CONFIG, "lora_patch": lora_patch}, sp)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.requires_grad and ("lora_B" in name or "trainable_tokens_delta" in name):
                param.copy_(torch.randn(param.shape, generator=generator) * 0.3)
    trains_row = any("trainable_tokens_delta" in name for name, _ in model.named_parameters())
    assert trains_row == (not spt_model.has_tied_embeddings(base))
    return model.eval()


def _batch(tokenizer, sp):
    fmt = SequenceFormat.from_config(CONFIG, sp.ids)
    seqs = [build_training_sequence(tokenizer, fmt, s, end_of_turn_text(tokenizer)) for s in SAMPLES]
    return (
        collate(seqs, tokenizer.pad_token_id),
        [s.adapter_mask.index(1) for s in seqs],
        [len(s.input_ids) for s in seqs],
    )


@torch.no_grad()
def test_lora_mask_keeps_base_logits_before_the_token(setup):
    base, tokenizer, sp = setup
    batch, starts, lengths = _batch(tokenizer, sp)
    reference = base(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    model = _active_adapter(base, sp, lora_patch=1)
    # Both ways of activating: offsets from the adapter mask (training) and peft's own token search.
    for logits in (
        forward_logits(model, batch, lora_patch=1),
        model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits,
    ):
        for row, (start, length) in enumerate(zip(starts, lengths)):
            diff = (logits[row, :length] - reference[row, :length]).abs().amax(dim=-1)
            assert diff[:start].max() < 1e-5
            assert diff[start:].min() > 1e-3


@torch.no_grad()
def test_plain_lora_changes_positions_before_the_token(setup):
    base, tokenizer, sp = setup
    batch, starts, lengths = _batch(tokenizer, sp)
    reference = base(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    logits = forward_logits(_active_adapter(base, sp, lora_patch=0), batch, lora_patch=0)
    for row, start in enumerate(starts):
        assert (logits[row, :start] - reference[row, :start]).abs().amax() > 1e-3


@torch.no_grad()
def test_kv_cache_reuse_equals_full_pass(setup):
    base, tokenizer, sp = setup
    model = _active_adapter(base, sp, lora_patch=1)
    fmt = SequenceFormat.from_config(CONFIG, sp.ids)
    stop_ids = {tokenizer.convert_tokens_to_ids(end_of_turn_text(tokenizer))}
    for sample in SAMPLES:
        prompt = build_prompt(tokenizer, fmt, sample["system_prompt"], sample["T"], sample["S"], sample["I"])
        ids = torch.tensor([prompt.input_ids])
        prefix, suffix = ids[:, : prompt.sp_index], ids[:, prompt.sp_index :]
        cache = base_kv_cache(model, prefix)
        # The base model's own cache, computed without peft at all, is the same.
        plain = base(input_ids=prefix, use_cache=True).past_key_values
        for layer in range(len(cache.layers)):
            assert torch.equal(cache.layers[layer].keys, plain.layers[layer].keys)

        result = review_on_cache(model, cache, suffix, max_new_tokens=12, stop_ids=stop_ids)
        full_logits = model(input_ids=ids).logits[:, prompt.sp_index :]
        assert (result.logits - full_logits).abs().max() < 1e-5
        full_tokens = model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=12,
            do_sample=False,
            eos_token_id=sorted(stop_ids),
            pad_token_id=tokenizer.pad_token_id,
        )[0, ids.shape[1] :].tolist()
        assert result.tokens == full_tokens[: len(result.tokens)] and len(result.tokens) == len(full_tokens)
        # The given cache is not modified: a second run gives the same tokens.
        assert review_on_cache(model, cache, suffix, max_new_tokens=12, stop_ids=stop_ids).tokens == result.tokens


def _greedy_without_cache(model, prompt: list[int], max_new_tokens: int, stop_ids: set[int]) -> list[int]:
    """The ground truth: each token the argmax of a full forward pass over everything so far,
    the adapter's active positions found by peft in the whole sequence each time."""
    ids, tokens = list(prompt), []
    while len(tokens) < max_new_tokens:
        token = int(model(input_ids=torch.tensor([ids])).logits[0, -1].argmax())
        tokens.append(token)
        ids.append(token)
        if token in stop_ids:
            break
    return tokens


@pytest.mark.parametrize("lora_patch", [1, 0])
@torch.no_grad()
def test_batched_greedy_generation_equals_full_forward_passes(setup, lora_patch):
    """greedy_generate on a left-padded batch (prompts of different lengths, an adapter with
    non-zero weights) gives each prompt the tokens of the no-cache greedy loop, also when the
    model's generation config turns the KV cache off (peft's aLoRA offsets are only right with it)."""
    base, tokenizer, sp = setup
    model = _active_adapter(base, sp, lora_patch)
    fmt = SequenceFormat.from_config(CONFIG, sp.ids)
    prompts = [build_prompt(tokenizer, fmt, s["system_prompt"], s["T"], s["S"], s["I"]).input_ids for s in SAMPLES]
    assert len(set(map(len, prompts))) == len(prompts)  # the batch is padded
    stop_ids = {sp.ids[0]}  # not generated here: every row decodes all 16 tokens
    expected = [_greedy_without_cache(model, prompt, 16, stop_ids) for prompt in prompts]
    assert [len(tokens) for tokens in expected] == [16] * len(prompts)
    for use_cache in (True, False):
        model.generation_config.use_cache = use_cache
        assert greedy_generate(model, tokenizer, prompts, 16, stop_ids, torch.device("cpu")) == expected


@torch.no_grad()
def test_kv_cache_reuse_refuses_plain_lora(setup):
    base, tokenizer, sp = setup
    model = _active_adapter(base, sp, lora_patch=0)
    ids = torch.tensor([[tokenizer.bos_token_id or 1, 5, 6]])
    with pytest.raises(ValueError, match="lora_patch 1"):
        review_on_cache(model, base_kv_cache(model, ids), torch.tensor([list(sp.ids)]), 4, set())


def test_added_token_rows_are_reproducible(tmp_path):
    """An added token's embedding rows are re-created identically from the base (the mean row),
    so a checkpoint does not need to store the resized embedding matrix."""
    path = build_tiny_model(tmp_path / "qwen3", "qwen3", thinking=True)  # untied: input and output rows
    rows = []
    for _ in range(2):
        tokenizer = spt_model.load_tokenizer(str(path))
        model = spt_model.load_base_model(str(path), [], torch.device("cpu"))
        sp = spt_model.setup_sp_token(tokenizer, model, 1)
        assert sp.added and not spt_model.has_tied_embeddings(model)
        rows.append(
            [layer.weight[sp.ids[0]].clone() for layer in (model.get_input_embeddings(), model.get_output_embeddings())]
        )
        inputs = model.get_input_embeddings().weight
        assert torch.allclose(rows[-1][0], inputs[: sp.ids[0]].mean(dim=0))
    assert all(torch.equal(a, b) for a, b in zip(*rows))
