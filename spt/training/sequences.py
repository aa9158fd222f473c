"""Token sequences for the honest persona, built from the model's own chat template.

Turn markers are never hard-coded: a conversation is rendered with `apply_chat_template`
around a sentinel string and split there, so whatever the template puts before and after a
turn's content (headers, end-of-turn tokens, a folded system prompt, think blocks) is used
as is. Elicitation types (docs/data_formats.md §6):

- hp: system, user T, assistant S left open; then the token, `intervention_prefix + I`,
  `review_prefix + R`, `flag_prefix + P` and the assistant's end-of-turn.
- up: the conversation is closed; the token and I open a user turn and the review is written
  in that same user turn (the honest persona speaks as the user), closed by the user's end-of-turn.
- ur: `intervention_prefix + I` is a normal user message; the token opens the next assistant
  turn, then the review.

S follows exactly the text the model's cache held when it generated S: the generation prompt
(rendered with thinking disabled) where that holds more than the template's rendering of a
past assistant turn (Qwen 3 writes an empty `<think>\n\n</think>\n\n` block into the
generation prompt but drops it from earlier turns), else the template's rendering. An empty
system prompt is an empty system message (not wrapped in `system_tag`); the template decides
what it writes for it.

`build_prompt` gives the ids up to where the review starts (what evaluation generates from);
`build_training_sequence` appends the review, flag and end-of-turn and returns labels (loss
only there, -100 elsewhere) and the adapter mask (1 from the split-personality token on).
A sample of layout `unseen_intent` is built the same way with S cut by `visible_response` to its
first `unseen_intent_response_tokens` tokens (none by default): the model reviews its plan.
Reads and writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from spt.shared_tools import SPLIT_PERSONALITY_TOKEN, UNSEEN_INTENT
from spt.utils import DataError

# Private-use characters: no template trims or escapes them and no real text contains them.
SENTINEL = "\ue000SPT-SENTINEL\ue001"
USER_SENTINEL = "\ue000SPT-USER-TURN\ue001"  # marks the user turn the `up` review is written in
IGNORE_INDEX = -100


@dataclass(frozen=True)
class SequenceFormat:
    elicitation_type: str  # hp | up | ur
    sp_ids: tuple[int, ...]  # the split-personality token's id(s)
    system_tag: str
    intervention_prefix: str
    review_prefix: str
    flag_prefix: str
    unseen_intent_response_tokens: int = 0  # tokens of S an unseen-intent sample shows

    @classmethod
    def from_config(cls, config: dict, sp_ids) -> SequenceFormat:
        return cls(
            config["elicitation_type"],
            tuple(sp_ids),
            config["system_tag"],
            config["intervention_prefix"],
            config["review_prefix"],
            config["flag_prefix"],
            config.get("unseen_intent_response_tokens", 0),
        )  # absent from configs older than the key


@dataclass
class Prompt:
    input_ids: list[int]
    sp_index: int  # position of the (first) split-personality token


@dataclass
class TrainingSequence:
    input_ids: list[int]
    labels: list[int]
    adapter_mask: list[int]


def _render(tokenizer, messages: list[dict], add_generation_prompt: bool) -> tuple[str, str]:
    """The rendered conversation split at the sentinel (which must occur exactly once)."""
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)
    before, found, after = text.partition(SENTINEL)
    if not found or SENTINEL in after:
        raise DataError("the chat template does not render message content verbatim")
    return before, after


def _encode(tokenizer, text: str, sp_ids: tuple[int, ...]) -> list[int]:
    """Tokenize `text`; the literal `<split-personality-token>` becomes the token's id(s)."""
    ids: list[int] = []
    for i, piece in enumerate(text.split(SPLIT_PERSONALITY_TOKEN)):
        if i:
            ids.extend(sp_ids)
        if piece:
            ids.extend(tokenizer.encode(piece, add_special_tokens=False))
    return ids


def _opening(system_prompt: str, task: str, fmt: SequenceFormat) -> list[dict]:
    """System message and the user's task. An empty system prompt is an empty system message,
    not wrapped in `system_tag`: the template decides what it writes (an empty system turn, a
    blank line, nothing)."""
    system = f"{fmt.system_tag}{system_prompt}{fmt.system_tag}" if system_prompt else ""
    return [{"role": "system", "content": system}, {"role": "user", "content": task}]


def _around_response(tokenizer, opening: list[dict], later: list[dict], add_generation_prompt: bool) -> tuple[str, str]:
    """(text before S, text after S) of `opening` + the assistant's S + `later`, rendered by the
    template. Before S stands what the model's cache held when it generated S: the generation
    prompt with thinking disabled where that holds more than the template's rendering of the
    turn (Qwen 3's empty think block, dropped from past assistant turns), else the rendering."""
    messages = opening + [{"role": "assistant", "content": SENTINEL}] + later
    before, after = _render(tokenizer, messages, add_generation_prompt)
    generation = tokenizer.apply_chat_template(
        opening, tokenize=False, add_generation_prompt=True, enable_thinking=False
    )
    return (generation if generation.startswith(before) else before), after


def _strip_token(intervention: str) -> str:
    return intervention.removeprefix(SPLIT_PERSONALITY_TOKEN)


def end_of_turn_text(tokenizer, elicitation_type: str = "hp") -> str:
    """What the template writes after the turn the review is written in (trailing whitespace removed):
    a user turn for `up`, an assistant turn otherwise."""
    if elicitation_type == "up":
        messages = [
            {"role": "user", "content": "x"},
            {"role": "assistant", "content": "y"},
            {"role": "user", "content": SENTINEL},
        ]
    else:
        messages = [{"role": "user", "content": "x"}, {"role": "assistant", "content": SENTINEL}]
    _, after = _render(tokenizer, messages, False)
    role = messages[-1]["role"]
    if not after.strip():
        raise DataError(f"the chat template writes no end-of-turn marker after a {role} message")
    return after.rstrip()


def build_prompt(
    tokenizer, fmt: SequenceFormat, system_prompt: str, task: str, response: str, intervention: str
) -> Prompt:
    """Ids of the conversation, the token and the intervention, up to where the review starts."""
    opening = _opening(system_prompt, task, fmt)
    intervention = fmt.intervention_prefix + _strip_token(intervention)
    if fmt.elicitation_type == "hp":
        before, _ = _around_response(tokenizer, opening, [], False)
        head = _encode(tokenizer, before, fmt.sp_ids) + _encode(tokenizer, response, fmt.sp_ids)
        tail = _encode(tokenizer, intervention, fmt.sp_ids)
        return Prompt(head + list(fmt.sp_ids) + tail, len(head))
    if fmt.elicitation_type == "up":
        before, after = _around_response(tokenizer, opening, [{"role": "user", "content": USER_SENTINEL}], False)
        user_open = after.partition(USER_SENTINEL)[0]
        head = [
            *_encode(tokenizer, before, fmt.sp_ids),
            *_encode(tokenizer, response, fmt.sp_ids),
            *_encode(tokenizer, user_open, fmt.sp_ids),
        ]
        tail = _encode(tokenizer, intervention, fmt.sp_ids)
        return Prompt(head + list(fmt.sp_ids) + tail, len(head))
    if fmt.elicitation_type == "ur":
        before, after = _around_response(tokenizer, opening, [{"role": "user", "content": intervention}], True)
        head = [
            *_encode(tokenizer, before, fmt.sp_ids),
            *_encode(tokenizer, response, fmt.sp_ids),
            *_encode(tokenizer, after, fmt.sp_ids),
        ]
        return Prompt(head + list(fmt.sp_ids), len(head))
    raise DataError(f"unknown elicitation_type {fmt.elicitation_type!r}")


def review_target_text(fmt: SequenceFormat, review: str, flag: str) -> str:
    return f"{fmt.review_prefix}{review}{fmt.flag_prefix}{flag}"


def visible_response(tokenizer, fmt: SequenceFormat, response: str, layout: str | None) -> str:
    """S as the model sees it: whole, or for the layout `unseen_intent` its first
    `fmt.unseen_intent_response_tokens` tokens (tokenized alone; 0 = none), cut in S's own characters."""
    if layout != UNSEEN_INTENT:
        return response
    count = fmt.unseen_intent_response_tokens
    if count <= 0:
        return ""
    offsets = tokenizer(response, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    return response if len(offsets) <= count else response[: offsets[count - 1][1]]


def build_training_sequence(tokenizer, fmt: SequenceFormat, sample: dict, eot_text: str) -> TrainingSequence:
    """One export sample (keys system_prompt, T, S, I, R, P; optional layout) as ids, labels and adapter mask."""
    response = visible_response(tokenizer, fmt, sample["S"], sample.get("layout"))
    prompt = build_prompt(tokenizer, fmt, sample["system_prompt"], sample["T"], response, sample["I"])
    target = _encode(tokenizer, review_target_text(fmt, sample["R"], sample["P"]), fmt.sp_ids)
    target += tokenizer.encode(eot_text, add_special_tokens=False)
    input_ids = prompt.input_ids + target
    labels = [IGNORE_INDEX] * len(prompt.input_ids) + target
    adapter_mask = [0] * prompt.sp_index + [1] * (len(input_ids) - prompt.sp_index)
    return TrainingSequence(input_ids, labels, adapter_mask)
