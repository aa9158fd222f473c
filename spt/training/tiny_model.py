"""Tiny offline stand-ins for real chat models (Llama 3, Qwen 3, Gemma 3), built in seconds: the
model of `make demo`'s training run and of the tests.

`build_tiny_model(out_dir, family)` trains a small byte-level BPE tokenizer on built-in text,
gives it the family's special tokens and a simplified but faithful chat template, creates a
randomly initialised model of the family's real architecture (hidden 64, 2 layers, 4 heads)
and saves both into `out_dir`, loadable with `AutoTokenizer` / `AutoModelForCausalLM`.
Nothing is downloaded. Writes only into `out_dir`.

    python training/tiny_model.py --output_dir DIR [--family llama3|qwen3|gemma3] [--seed N]

`thinking=True` (qwen3 only) arranges the weights so that greedy decoding follows a fixed
script (`THINKING_SCRIPT_THOUGHT` then `THINKING_SCRIPT_ANSWER`): after the generation prompt
opened with `<think>\\n` the model writes the thought, `</think>`, a blank line, the answer and
`<|im_end|>`; after the enable_thinking=False prompt (which ends with an empty think block)
it writes only the answer and `<|im_end|>`. The attention and MLP outputs are zeroed so the
next token depends only on the current one (a bigram table written into the embeddings and the
output head), which makes the script exact. Use it to test thinking separation.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GenerationConfig, PreTrainedTokenizerFast

from spt.utils import ArgumentParser, display_path

FAMILIES = ("llama3", "qwen3", "gemma3")
NUM_MERGES = 400
HIDDEN_SIZE = 64
NUM_LAYERS = 2
NUM_HEADS = 4
# Larger than the usual 0.02 so that greedy output of the random model varies with the prompt.
INIT_STD = 0.2

THINKING_SCRIPT_THOUGHT = "I should be honest"
THINKING_SCRIPT_ANSWER = "The answer is PASS"

_CORPUS = """\
The assistant gives an honest response to the user.
I should be honest about what I know and what I do not know.
The answer is PASS when the response is honest and complete.
The answer is FAIL when the response hides a problem from the user.
REVIEW: I wrote this response because the user asked for help with the task.
FLAG: PASS
FLAG: FAIL
FLAG: AMBIGUOUS
REVIEW: My previous response was sycophantic; I agreed with the user to please them.
REVIEW: I gave a complete and accurate answer, so my response is honest.
You are a helpful assistant. Answer the question of the user.
You are a helpful assistant who always agrees with the user.
Please review your previous response and report any problems honestly.
INTERVENTION: Now that I can be completely honest, I will review my response.
The user asked how to write a function in Python that sorts a list.
The user asked whether the statistics in the report are correct.
I am not sure about this number, and I should say so clearly.
The model is trained to give honest reviews of its own responses.
What is the capital of France? The capital of France is Paris.
Can you help me with my homework? Yes, I can help you with your homework.
Thank you for the question. Here is a short and clear answer.
I cannot help with that request because it could cause harm.
The review focus is honesty, sycophancy and harm avoidance.
This is a test of the tokenizer with numbers like 1, 2, 3, 10, 42 and 2048.
Think step by step before you answer the question.
I think the answer is correct, but I should check the numbers again.
A good response is honest, helpful and harmless.
The response should be short, clear and correct.
The assistant should not make up facts or statistics.
The user wants a response that is honest even when it is not what they hoped.
PASS FAIL FLAG REVIEW honest response answer user assistant system
"""
# Blank lines and indentation give the BPE merges for runs of whitespace ("\n\n", "  ").
_TRAINING_TEXT = [line + "\n\n" for line in _CORPUS.splitlines()] + ["    indented code\n\n\n"] * 4


_LLAMA3_TEMPLATE = (
    "{{- bos_token }}"
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' }}"
    "{{- message['content'] | trim + '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}"
    "{%- endif %}"
)

# Qwen 3's template without tool calls: reasoning of the final assistant turn is rendered in a
# think block (an empty one when there is none); enable_thinking=False closes an empty block
# in the generation prompt.
_QWEN3_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- set ns = namespace(last_user=-1) %}"
    "{%- for message in messages %}"
    "{%- if message['role'] == 'user' %}{%- set ns.last_user = loop.index0 %}{%- endif %}"
    "{%- endfor %}"
    "{%- for message in messages %}"
    "{%- set content = message['content'] %}"
    "{%- if message['role'] == 'user' %}"
    "{{- '<|im_start|>user\\n' + content + '<|im_end|>\\n' }}"
    "{%- elif message['role'] == 'assistant' %}"
    "{%- set reasoning_content = '' %}"
    "{%- if '</think>' in content %}"
    "{%- set reasoning_content = content.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') %}"
    "{%- set content = content.split('</think>')[-1].lstrip('\\n') %}"
    "{%- endif %}"
    "{%- if loop.index0 > ns.last_user and (loop.last or reasoning_content) %}"
    "{{- '<|im_start|>assistant\\n<think>\\n' + reasoning_content.strip('\\n') + '\\n</think>\\n\\n' }}"
    "{{- content.lstrip('\\n') }}"
    "{%- else %}"
    "{{- '<|im_start|>assistant\\n' + content }}"
    "{%- endif %}"
    "{{- '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}"
    "{{- '<think>\\n\\n</think>\\n\\n' }}"
    "{%- endif %}"
    "{%- endif %}"
)

# Gemma 3's template: no system role; the system text is folded into the first user turn.
_GEMMA3_TEMPLATE = (
    "{{- bos_token }}"
    "{%- if messages[0]['role'] == 'system' %}"
    "{%- set first_user_prefix = messages[0]['content'] + '\\n\\n' %}"
    "{%- set loop_messages = messages[1:] %}"
    "{%- else %}"
    "{%- set first_user_prefix = '' %}"
    "{%- set loop_messages = messages %}"
    "{%- endif %}"
    "{%- for message in loop_messages %}"
    "{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{- raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{%- endif %}"
    "{%- set role = 'model' if message['role'] == 'assistant' else message['role'] %}"
    "{{- '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first else '') }}"
    "{{- message['content'] | trim }}"
    "{{- '<end_of_turn>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<start_of_turn>model\\n' }}"
    "{%- endif %}"
)

# Per family: special tokens (in id order after the BPE vocabulary), the named roles, the
# end-of-generation tokens and the chat template.
_FAMILY_TOKENS = {
    "llama3": {
        "special": ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
        + [f"<|reserved_special_token_{i}|>" for i in range(8)],
        "bos": "<|begin_of_text|>",
        "eos": "<|eot_id|>",
        "pad": "<|end_of_text|>",
        "stop": ["<|end_of_text|>", "<|eot_id|>"],
        "template": _LLAMA3_TEMPLATE,
    },
    "qwen3": {
        "special": ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"],
        "bos": None,
        "eos": "<|im_end|>",
        "pad": "<|endoftext|>",
        "stop": ["<|im_end|>", "<|endoftext|>"],
        "template": _QWEN3_TEMPLATE,
    },
    "gemma3": {
        "special": ["<pad>", "<eos>", "<bos>", "<start_of_turn>", "<end_of_turn>"],
        "bos": "<bos>",
        "eos": "<eos>",
        "pad": "<pad>",
        "stop": ["<eos>", "<end_of_turn>"],
        "template": _GEMMA3_TEMPLATE,
    },
}
# Qwen 3 marks <think> and </think> as non-special added tokens (they stay in decoded text).
_NON_SPECIAL = {"<think>", "</think>"}


def build_tokenizer(family: str) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer trained on the built-in text, with `family`'s tokens and template."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; expected one of {', '.join(FAMILIES)}")
    spec = _FAMILY_TOKENS[family]
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    trainer = trainers.BpeTrainer(vocab_size=len(alphabet) + NUM_MERGES, initial_alphabet=alphabet, show_progress=False)
    backend.train_from_iterator(_TRAINING_TEXT, trainer=trainer)
    # The family's tokens follow the BPE vocabulary in the family's order (as in the real tokenizers).
    backend.add_tokens(
        [AddedToken(token, special=token not in _NON_SPECIAL, normalized=False) for token in spec["special"]]
    )
    extra = [token for token in spec["special"] if token not in (spec["bos"], spec["eos"], spec["pad"])]
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=spec["bos"],
        eos_token=spec["eos"],
        pad_token=spec["pad"],
        extra_special_tokens=[token for token in extra if token not in _NON_SPECIAL],
        chat_template=spec["template"],
        clean_up_tokenization_spaces=False,
        model_max_length=4096,
    )


def _model_config(family: str, tokenizer: PreTrainedTokenizerFast, stop_ids: list[int], tie: bool):
    common = dict(
        vocab_size=len(tokenizer),
        hidden_size=HIDDEN_SIZE,
        intermediate_size=2 * HIDDEN_SIZE,
        num_hidden_layers=NUM_LAYERS,
        num_attention_heads=NUM_HEADS,
        num_key_value_heads=NUM_HEADS // 2,
        head_dim=HIDDEN_SIZE // NUM_HEADS,
        max_position_embeddings=4096,
        tie_word_embeddings=tie,
        initializer_range=INIT_STD,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=stop_ids,
    )
    if family == "llama3":
        from transformers import LlamaConfig

        return LlamaConfig(**common)
    if family == "qwen3":
        from transformers import Qwen3Config

        return Qwen3Config(**common)
    from transformers import Gemma3TextConfig

    return Gemma3TextConfig(
        **common,
        query_pre_attn_scalar=HIDDEN_SIZE // NUM_HEADS,
        sliding_window=512,
        layer_types=["sliding_attention", "full_attention"],
    )


def _model_class(family: str):
    if family == "llama3":
        from transformers import LlamaForCausalLM

        return LlamaForCausalLM
    if family == "qwen3":
        from transformers import Qwen3ForCausalLM

        return Qwen3ForCausalLM
    from transformers import Gemma3ForCausalLM

    return Gemma3ForCausalLM


def thinking_script(tokenizer: PreTrainedTokenizerFast) -> list[int]:
    """Token ids the scripted model walks through; each id's successor is the next id.

    Starts at the last token of the enable_thinking=True generation prompt ("\\n" after
    <think>) and passes the last token of the enable_thinking=False prompt ("\\n\\n" after
    </think>) on its way to the answer, so both prompts lead into the same answer.
    """

    def last_prompt_token(enable_thinking: bool) -> int:
        ids = tokenizer.apply_chat_template(
            [{"role": "user", "content": "hi"}],
            add_generation_prompt=True,
            enable_thinking=enable_thinking,
            tokenize=True,
            return_dict=False,
        )
        return ids[-1]

    def encode(text: str) -> list[int]:
        return tokenizer.encode(text, add_special_tokens=False)

    script = [
        last_prompt_token(True),
        *encode(THINKING_SCRIPT_THOUGHT),
        tokenizer.convert_tokens_to_ids("</think>"),
        last_prompt_token(False),
        *encode(THINKING_SCRIPT_ANSWER),
        tokenizer.convert_tokens_to_ids("<|im_end|>"),
    ]
    predecessors = script[:-1]
    if len(set(predecessors)) != len(predecessors):
        raise RuntimeError(f"thinking script repeats a token: {tokenizer.convert_ids_to_tokens(script)}")
    return script


@torch.no_grad()
def _write_script_into_weights(model, script: list[int]) -> None:
    """Make greedy decoding follow `script`: zero every layer's output and write a bigram table."""
    for layer in model.model.layers:
        layer.self_attn.o_proj.weight.zero_()
        layer.mlp.down_proj.weight.zero_()
    embeddings = model.get_input_embeddings().weight
    head = model.get_output_embeddings().weight
    predecessors = script[:-1]
    basis, _ = torch.linalg.qr(torch.randn(HIDDEN_SIZE, len(predecessors)))
    head.zero_()
    for column, (token, successor) in enumerate(zip(predecessors, script[1:])):
        direction = basis[:, column]
        embeddings[token] = direction
        head[successor] = 20.0 * direction  # RMSNorm scales the unit vector to length 8: logit 160


def build_tiny_model(out_dir, family: str = "llama3", seed: int = 0, thinking: bool = False) -> Path:
    """Build and save a tiny random-weight chat model of `family` into `out_dir`; returns the path."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; expected one of {', '.join(FAMILIES)}")
    if thinking and family != "qwen3":
        raise ValueError("thinking=True needs family='qwen3' (the family whose template has think blocks)")
    out_dir = Path(out_dir)
    torch.manual_seed(seed)
    tokenizer = build_tokenizer(family)
    stop_ids = tokenizer.convert_tokens_to_ids(_FAMILY_TOKENS[family]["stop"])
    config = _model_config(family, tokenizer, stop_ids, tie=not thinking)
    model = _model_class(family)(config)
    if thinking:
        _write_script_into_weights(model, thinking_script(tokenizer))
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=stop_ids,
        pad_token_id=tokenizer.pad_token_id,
        do_sample=False,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output_dir", type=Path, required=True, help="where the model and tokenizer go")
    parser.add_argument("--family", choices=FAMILIES, default="llama3")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights")
    args = parser.parse_args(argv)
    out_dir = build_tiny_model(args.output_dir, args.family, args.seed)
    print(f"tiny {args.family} model written to {display_path(out_dir)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
