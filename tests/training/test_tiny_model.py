"""The tiny offline chat models: they load through the normal Auto* path, their templates
render like the real families' and their special tokens are single ids."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from spt.training.tiny_model import FAMILIES, THINKING_SCRIPT_ANSWER, THINKING_SCRIPT_THOUGHT, build_tiny_model

SYSTEM = "You are a careful assistant."
USER = "Is the answer PASS or FAIL?"
FAMILY_SPECIALS = {
    "llama3": ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
    + [f"<|reserved_special_token_{i}|>" for i in range(8)],
    "qwen3": ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<think>", "</think>"],
    "gemma3": ["<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>", "<pad>"],
}


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    return {family: build_tiny_model(root / family, family) for family in FAMILIES}


def _messages(with_system: bool) -> list[dict]:
    system = [{"role": "system", "content": SYSTEM}] if with_system else []
    return system + [{"role": "user", "content": USER}]


@pytest.mark.parametrize("family", FAMILIES)
def test_round_trip_load_and_generate(tiny_dirs, family):
    tokenizer = AutoTokenizer.from_pretrained(tiny_dirs[family])
    model = AutoModelForCausalLM.from_pretrained(tiny_dirs[family])
    assert model.config.vocab_size == len(tokenizer)
    assert model.config.hidden_size == 64 and model.config.num_hidden_layers == 2
    assert tokenizer.pad_token_id is not None and tokenizer.pad_token_id != tokenizer.eos_token_id
    assert tokenizer.eos_token_id in model.generation_config.eos_token_id
    batch = tokenizer.apply_chat_template(
        _messages(True), add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    out = model.generate(**batch, max_new_tokens=5, do_sample=False)
    assert out.shape[1] > batch["input_ids"].shape[1]


@pytest.mark.parametrize("family", FAMILIES)
def test_special_tokens_are_single_ids(tiny_dirs, family):
    tokenizer = AutoTokenizer.from_pretrained(tiny_dirs[family])
    for token in FAMILY_SPECIALS[family]:
        ids = tokenizer.encode(token, add_special_tokens=False)
        assert len(ids) == 1, token
        assert tokenizer.convert_ids_to_tokens(ids[0]) == token
    # Ordinary words are split into BPE pieces, never mapped onto a special token.
    words = tokenizer.encode("honest response PASS FAIL REVIEW", add_special_tokens=False)
    assert not set(words) & set(tokenizer.convert_tokens_to_ids(FAMILY_SPECIALS[family]))


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("with_system", [True, False])
def test_template_renders(tiny_dirs, family, with_system):
    tokenizer = AutoTokenizer.from_pretrained(tiny_dirs[family])
    text = tokenizer.apply_chat_template(_messages(with_system), add_generation_prompt=True, tokenize=False)
    assert USER in text
    assert (SYSTEM in text) == with_system
    ids = tokenizer.encode(text, add_special_tokens=False)
    if tokenizer.bos_token:
        assert text.startswith(tokenizer.bos_token) and ids.count(tokenizer.bos_token_id) == 1
    expected = {
        "llama3": [
            f"<|start_header_id|>system<|end_header_id|>\n\n{SYSTEM}<|eot_id|>" if with_system else "",
            f"<|start_header_id|>user<|end_header_id|>\n\n{USER}<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n",
        ],
        "qwen3": [
            f"<|im_start|>system\n{SYSTEM}<|im_end|>\n" if with_system else "",
            f"<|im_start|>user\n{USER}<|im_end|>\n<|im_start|>assistant\n",
        ],
        # Gemma has no system role: the system text opens the first user turn.
        "gemma3": [
            f"<start_of_turn>user\n{SYSTEM}\n\n{USER}" if with_system else f"<start_of_turn>user\n{USER}",
            "<end_of_turn>\n<start_of_turn>model\n",
        ],
    }[family]
    assert "".join(expected) in text
    assert text.endswith(expected[-1])


def test_qwen3_enable_thinking_switch(tiny_dirs):
    tokenizer = AutoTokenizer.from_pretrained(tiny_dirs["qwen3"])
    on = tokenizer.apply_chat_template(
        _messages(True), add_generation_prompt=True, tokenize=False, enable_thinking=True
    )
    off = tokenizer.apply_chat_template(
        _messages(True), add_generation_prompt=True, tokenize=False, enable_thinking=False
    )
    assert on.endswith("<|im_start|>assistant\n")
    assert off == on + "<think>\n\n</think>\n\n"


def test_qwen3_renders_final_assistant_turn_with_think_block(tiny_dirs):
    tokenizer = AutoTokenizer.from_pretrained(tiny_dirs["qwen3"])
    messages = _messages(False) + [{"role": "assistant", "content": "<think>\nhmm\n</think>\n\nPASS"}]
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    assert text.endswith("<|im_start|>assistant\n<think>\nhmm\n</think>\n\nPASS<|im_end|>\n")


def test_gemma3_rejects_non_alternating_roles(tiny_dirs):
    tokenizer = AutoTokenizer.from_pretrained(tiny_dirs["gemma3"])
    with pytest.raises(Exception, match="alternate"):
        tokenizer.apply_chat_template(_messages(False) * 2, tokenize=False)


def test_llama3_reserved_tokens_are_special(tiny_dirs):
    tokenizer = AutoTokenizer.from_pretrained(tiny_dirs["llama3"])
    ids = tokenizer.encode("honest<|reserved_special_token_0|> response", add_special_tokens=False)
    assert "<|reserved_special_token_0|>" not in tokenizer.decode(ids, skip_special_tokens=True)
    assert "<|reserved_special_token_0|>" in tokenizer.decode(ids)


def test_same_seed_same_weights(tmp_path):
    first = AutoModelForCausalLM.from_pretrained(build_tiny_model(tmp_path / "a", "llama3", seed=3))
    second = AutoModelForCausalLM.from_pretrained(build_tiny_model(tmp_path / "b", "llama3", seed=3))
    other = AutoModelForCausalLM.from_pretrained(build_tiny_model(tmp_path / "c", "llama3", seed=4))
    weight = "model.layers.0.self_attn.q_proj.weight"
    assert torch.equal(first.state_dict()[weight], second.state_dict()[weight])
    assert not torch.equal(first.state_dict()[weight], other.state_dict()[weight])


@pytest.mark.parametrize("enable_thinking", [True, False])
def test_thinking_model_follows_its_script(tmp_path, enable_thinking):
    path = build_tiny_model(tmp_path / "think", "qwen3", thinking=True)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    batch = tokenizer.apply_chat_template(
        _messages(True),
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
        enable_thinking=enable_thinking,
    )
    out = model.generate(**batch, max_new_tokens=40, do_sample=True, temperature=1.0)
    text = tokenizer.decode(out[0, batch["input_ids"].shape[1] :])
    thought = f"{THINKING_SCRIPT_THOUGHT}</think>\n\n" if enable_thinking else ""
    assert text == f"{thought}{THINKING_SCRIPT_ANSWER}<|im_end|>"


def test_thinking_needs_qwen3(tmp_path):
    with pytest.raises(ValueError, match="qwen3"):
        build_tiny_model(tmp_path, "llama3", thinking=True)
