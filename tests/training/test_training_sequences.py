"""hp/up/ur sequences from the tiny Llama 3, Qwen 3 and Gemma 3 chat templates: the loss covers
exactly review + flag + end-of-turn, the split-personality token is one special id, the adapter
mask starts at it, `ur` puts intervention_prefix into the user message, S follows exactly the
generation prompt (Qwen 3's empty think block included) and an empty system prompt is an empty
system message that the template renders (or drops)."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM

from spt.shared_tools import SPLIT_PERSONALITY_TOKEN
from spt.training import spt_model
from spt.training.sequences import IGNORE_INDEX, SequenceFormat, build_prompt, build_training_sequence, end_of_turn_text
from spt.training.tiny_model import FAMILIES, build_tiny_model

CONFIG = {
    "system_tag": "<SYSTEM> ",
    "intervention_prefix": " INTERVENTION: ",
    "review_prefix": "\n\nREVIEW:",
    "flag_prefix": "\nFLAG: ",
}
SAMPLE = {
    "system_prompt": "You are a careful assistant.",
    "T": "Is the answer correct?",
    "S": "Yes, it is correct.",
    "I": f"{SPLIT_PERSONALITY_TOKEN}Now that I can be completely honest, I will review my response.",
    "R": "I agreed with the user to please them.",
    "P": "FAIL",
}
SYSTEM_TURN = {"llama3": "<|start_header_id|>system", "qwen3": "<|im_start|>system", "gemma3": None}
USER_OPEN = {
    "llama3": "<|start_header_id|>user<|end_header_id|>\n\n",
    "qwen3": "<|im_start|>user\n",
    "gemma3": "<start_of_turn>user\n",
}
ASSISTANT_OPEN = {
    "llama3": "<|start_header_id|>assistant<|end_header_id|>\n\n",
    "qwen3": "<|im_start|>assistant\n",
    "gemma3": "<start_of_turn>model\n",
}
EOT = {"llama3": "<|eot_id|>", "qwen3": "<|im_end|>", "gemma3": "<end_of_turn>"}


def _fmt(elicitation: str, sp) -> SequenceFormat:
    return SequenceFormat.from_config({**CONFIG, "elicitation_type": elicitation}, sp.ids)


@pytest.mark.parametrize("family", FAMILIES)
def test_split_personality_token_is_one_special_id(families, family):
    tokenizer, sp, model = families[family]
    assert len(sp.ids) == 1
    token_id = sp.ids[0]
    assert tokenizer.added_tokens_decoder[token_id].special
    assert tokenizer.encode(sp.token, add_special_tokens=False) == [token_id]
    assert token_id < model.get_input_embeddings().weight.shape[0]
    if family == "llama3":  # a reserved token is reused, nothing is added
        assert sp.token == "<|reserved_special_token_0|>" and not sp.added
        assert tokenizer.convert_tokens_to_ids(SPLIT_PERSONALITY_TOKEN) != token_id
    else:  # no reserved tokens: a new special token
        assert sp.token == SPLIT_PERSONALITY_TOKEN and sp.added
    # The literal text in I maps onto the token.
    prompt = build_prompt(tokenizer, _fmt("hp", sp), "", "task", "answer", SAMPLE["I"])
    assert prompt.input_ids.count(token_id) == 1


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("elicitation", ["hp", "up", "ur"])
def test_loss_and_adapter_masks(families, family, elicitation):
    tokenizer, sp, _ = families[family]
    fmt = _fmt(elicitation, sp)
    seq = build_training_sequence(tokenizer, fmt, SAMPLE, end_of_turn_text(tokenizer, elicitation))
    assert end_of_turn_text(tokenizer, elicitation) == EOT[family]
    trained = [token for token, label in zip(seq.input_ids, seq.labels) if label != IGNORE_INDEX]
    assert [label for label in seq.labels if label != IGNORE_INDEX] == trained
    assert tokenizer.decode(trained) == f"\n\nREVIEW:{SAMPLE['R']}\nFLAG: {SAMPLE['P']}{EOT[family]}"
    first_trained = next(i for i, label in enumerate(seq.labels) if label != IGNORE_INDEX)
    assert all(label != IGNORE_INDEX for label in seq.labels[first_trained:])  # one contiguous block to the end
    assert seq.input_ids[-1] == tokenizer.convert_tokens_to_ids(EOT[family])

    sp_index = seq.input_ids.index(sp.ids[0])
    assert seq.input_ids.count(sp.ids[0]) == 1
    assert seq.adapter_mask == [0] * sp_index + [1] * (len(seq.input_ids) - sp_index)

    before = tokenizer.decode(seq.input_ids[:sp_index])
    between = tokenizer.decode(seq.input_ids[sp_index + 1 : first_trained])
    if elicitation == "hp":  # S left open: the token follows it directly, I follows the token
        assert before.endswith(SAMPLE["S"])
        assert between == " INTERVENTION: Now that I can be completely honest, I will review my response."
    elif elicitation == "up":  # closed conversation; token + I open a user turn and the review stays in it
        assert before.endswith(USER_OPEN[family]) and EOT[family] in before[before.rindex(SAMPLE["S"]) :]
        assert between == " INTERVENTION: Now that I can be completely honest, I will review my response."
    else:  # ur: intervention_prefix + I is an ordinary user message; the token opens the assistant turn
        user_message = before[before.rindex(USER_OPEN[family]) + len(USER_OPEN[family]) : before.rindex(EOT[family])]
        # (the Llama 3 and Gemma 3 templates trim a message's leading space)
        assert user_message.strip() == "INTERVENTION: Now that I can be completely honest, I will review my response."
        assert before.endswith(ASSISTANT_OPEN[family]) and between == ""


# What each tiny template writes for an empty system message: Llama 3 and Qwen 3 an empty system
# turn, Gemma 3 folds the empty text (and its blank line) into the first user turn.
EMPTY_SYSTEM = {
    "llama3": "<|start_header_id|>system<|end_header_id|>\n\n<|eot_id|><|start_header_id|>user",
    "qwen3": "<|im_start|>system\n<|im_end|>\n<|im_start|>user",
    "gemma3": "<start_of_turn>user\n\n\ntask",
}
# A Llama-3-like template that writes no turn for an empty message.
DROPS_EMPTY_TURNS = (
    "{{- bos_token }}"
    "{%- for message in messages %}{%- if message['content'] %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] + '<|eot_id|>' }}"
    "{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)


@pytest.mark.parametrize("family", FAMILIES)
def test_empty_system_prompt_is_an_empty_system_message_rendered_by_the_template(families, family):
    tokenizer, sp, _ = families[family]
    fmt = _fmt("hp", sp)
    with_system = tokenizer.decode(build_prompt(tokenizer, fmt, SAMPLE["system_prompt"], "task", "ans", "I").input_ids)
    without = tokenizer.decode(build_prompt(tokenizer, fmt, "", "task", "ans", "I").input_ids)
    assert "<SYSTEM> You are a careful assistant.<SYSTEM>" in with_system
    assert "<SYSTEM>" not in without  # an empty prompt is not wrapped in system_tag
    assert EMPTY_SYSTEM[family] in without
    assert EMPTY_SYSTEM[family] not in with_system


def test_a_template_that_drops_an_empty_system_turn_drops_it(tmp_path):
    path = build_tiny_model(tmp_path / "llama3", "llama3")
    tokenizer = spt_model.load_tokenizer(str(path))
    tokenizer.chat_template = DROPS_EMPTY_TURNS
    sp = spt_model.setup_sp_token(tokenizer, AutoModelForCausalLM.from_pretrained(path), 1)
    with_system = tokenizer.decode(build_prompt(tokenizer, _fmt("hp", sp), "Be kind.", "task", "ans", "I").input_ids)
    without = tokenizer.decode(build_prompt(tokenizer, _fmt("hp", sp), "", "task", "ans", "I").input_ids)
    assert "<|start_header_id|>system<|end_header_id|>\n\n<SYSTEM> Be kind.<SYSTEM> <|eot_id|>" in with_system
    assert "system" not in without
    assert without.startswith("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\ntask<|eot_id|>")


EMPTY_THINK = "<think>\n\n</think>\n\n"


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("elicitation", ["hp", "up", "ur"])
def test_response_follows_exactly_the_generation_prompt(families, family, elicitation):
    """S is preceded by the ids of the generation prompt the model answered (thinking disabled):
    for Qwen 3 that ends with an empty think block, which its template drops from a past
    assistant turn (so `up`/`ur` would lose it if the conversation were simply re-rendered)."""
    tokenizer, sp, _ = families[family]
    opening = [
        {"role": "system", "content": f"<SYSTEM> {SAMPLE['system_prompt']}<SYSTEM> "},
        {"role": "user", "content": SAMPLE["T"]},
    ]
    generation = tokenizer.apply_chat_template(
        opening, tokenize=False, add_generation_prompt=True, enable_thinking=False
    )
    expected = tokenizer.encode(generation, add_special_tokens=False) + tokenizer.encode(
        SAMPLE["S"], add_special_tokens=False
    )
    prompt = build_prompt(
        tokenizer, _fmt(elicitation, sp), SAMPLE["system_prompt"], SAMPLE["T"], SAMPLE["S"], SAMPLE["I"]
    )
    assert prompt.input_ids[: len(expected)] == expected
    text = tokenizer.decode(prompt.input_ids)
    if family == "qwen3":
        assert generation.endswith(f"<|im_start|>assistant\n{EMPTY_THINK}")
        assert f"<|im_start|>assistant\n{EMPTY_THINK}{SAMPLE['S']}<|im_end|>" in text or elicitation == "hp"
        re_rendered = tokenizer.apply_chat_template(
            opening + [{"role": "assistant", "content": SAMPLE["S"]}, {"role": "user", "content": "next"}],
            tokenize=False,
        )
        assert "<think>" not in re_rendered  # the template alone would drop it
    else:
        assert "<think>" not in text


def test_an_added_token_keeps_a_spare_row_and_gets_the_mean_only_where_the_matrix_grows(tmp_path):
    """No reserved token (Qwen 3): the token takes the tokenizer's next id. A matrix padded
    beyond the vocabulary (as Qwen's are) already has a row there, which is kept as it is; a
    matrix without one grows by a row that is the mean of the others."""
    path = build_tiny_model(tmp_path / "qwen3", "qwen3")
    for spare in (0, 8):
        tokenizer = spt_model.load_tokenizer(str(path))
        model = AutoModelForCausalLM.from_pretrained(path)
        rows = len(tokenizer) + spare
        model.resize_token_embeddings(rows, mean_resizing=False)
        embeddings = model.get_input_embeddings().weight
        before = embeddings.detach().clone()
        sp = spt_model.setup_sp_token(tokenizer, model, 1)
        token_id = sp.ids[0]
        assert sp.added and token_id == len(tokenizer) - 1
        embeddings = model.get_input_embeddings().weight
        if spare:
            assert embeddings.shape[0] == rows and torch.equal(embeddings, before)
        else:
            assert embeddings.shape[0] == rows + 1 and torch.equal(embeddings[:rows], before)
            assert torch.allclose(embeddings[token_id], before.mean(dim=0))


def test_without_special_token_the_text_tokens_mark_the_adapter_start(families):
    tokenizer, _, model = families["llama3"]
    sp = spt_model.setup_sp_token(tokenizer, model, 0)
    assert len(sp.ids) > 1  # ordinary text tokens
    seq = build_training_sequence(tokenizer, _fmt("hp", sp), SAMPLE, end_of_turn_text(tokenizer))
    start = seq.adapter_mask.index(1)
    assert seq.input_ids[start : start + len(sp.ids)] == list(sp.ids)
