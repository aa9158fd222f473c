"""What every stage-2 inference engine shares: the sampling settings in, one `Generation` out,
the length-sorted batch plan, and the split of generated tokens into thinking and answer.

Used by stage_2/local.py (transformers), stage_2/vllm.py (vLLM) and stage_2/api.py (provider API).
Reads and writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"


@dataclass(frozen=True)
class SamplingSettings:
    """The stage-2 sampling flags; None means "the model's own default" (enable_thinking None: local
    engines think only when asked, API engines send no switch)."""

    max_new_tokens: int
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    enable_thinking: bool | None = None

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


@dataclass
class Generation:
    """One generated answer. Token counts are real counts from the engine's tokenizer:
    `output_tokens` includes the stop token when one was generated and never padding."""

    text: str
    thinking: str
    input_tokens: int
    output_tokens: int
    finish_reason: str  # "stop" (a stop token was generated) or "length" (max_new_tokens reached)
    generation_time: float  # seconds of the engine call that produced it (shared by its batch)
    refused: bool = False  # an API model refused: `text` is its refusal (or what it wrote before it)


def plan_batches(lengths: list[int], batch_size: int) -> list[list[int]]:
    """Indexes of `lengths` grouped into batches of similar length, longest first (so that an
    out-of-memory batch shows up at once and padding stays small)."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


def trim_at_stop(ids: list[int], stop_ids: set[int]) -> tuple[list[int], bool]:
    """Generated ids up to and including the first stop id; True when a stop id was found."""
    for position, token in enumerate(ids):
        if token in stop_ids:
            return ids[: position + 1], True
    return ids, False


def split_thinking(
    ids: list[int], think_open_id: int | None, think_close_id: int | None, prompt_opens_think: bool
) -> tuple[list[int], list[int]]:
    """(thinking ids, answer ids) of one generated sequence.

    With a `</think>` token in the output, everything before it is thinking (an opening `<think>`
    dropped) and everything after it the answer. Without one, the output is all thinking when
    the think block was open (opened by the prompt, or by the output's first token) and was cut
    off, and all answer otherwise.
    """
    if think_close_id is None:
        return [], ids
    opened = prompt_opens_think or (bool(ids) and ids[0] == think_open_id)
    body = ids[1:] if ids and ids[0] == think_open_id else ids
    if think_close_id in body:
        close = body.index(think_close_id)
        return body[:close], body[close + 1 :]
    if opened:
        return body, []
    return [], ids


def split_thinking_text(text: str) -> tuple[str, str]:
    """(thinking, answer) of an API answer whose server left the think block in the text (an
    OpenAI-compatible server without a reasoning parser): the text before `</think>` is thinking."""
    if THINK_CLOSE not in text:
        return "", text.strip()
    thinking, _, answer = text.partition(THINK_CLOSE)
    return thinking.strip().removeprefix(THINK_OPEN).strip(), answer.strip()


def _single_token_id(tokenizer, token: str) -> int | None:
    """The id of `token` when the tokenizer has it as one token, else None."""
    ids = tokenizer.encode(token, add_special_tokens=False)
    return ids[0] if len(ids) == 1 else None


class ChatEngine:
    """What the local and vLLM engines share: rendering prompts with the model's own chat
    template and turning generated token ids into a `Generation`. Subclasses set
    `self.tokenizer` and `self.stop_ids`, call `_init_thinking()` and implement
    `generate(prompts, settings)` and `effective_sampling(settings)`."""

    tokenizer = None
    stop_ids: set[int] = set()

    def _init_thinking(self) -> None:
        self.think_open_id = _single_token_id(self.tokenizer, THINK_OPEN)
        self.think_close_id = _single_token_id(self.tokenizer, THINK_CLOSE)
        self.template_takes_thinking = "enable_thinking" in (self.tokenizer.chat_template or "")

    def thinking_enabled(self, settings: SamplingSettings) -> bool:
        return bool(settings.enable_thinking) and self.template_takes_thinking

    def render(self, system: str, user: str, enable_thinking: bool) -> str:
        """The chat-template text of system + user with the assistant's turn opened."""
        from jinja2.exceptions import TemplateError

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
        return self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=False, enable_thinking=enable_thinking
        )

    def encode(self, system: str, user: str, enable_thinking: bool) -> list[int]:
        """Prompt token ids; the template already wrote BOS, so no special tokens are added again."""
        return self.tokenizer.encode(self.render(system, user, enable_thinking), add_special_tokens=False)

    def to_generation(self, prompt: list[int], generated: list[int], elapsed: float) -> Generation:
        """A Generation from the prompt ids and the ids the model generated after it (padding allowed)."""
        kept, stopped = trim_at_stop(list(generated), self.stop_ids)
        content = kept[:-1] if stopped else kept
        prompt_opens_think = self.tokenizer.decode(prompt[-4:]).rstrip().endswith(THINK_OPEN)
        thinking_ids, answer_ids = split_thinking(content, self.think_open_id, self.think_close_id, prompt_opens_think)
        return Generation(
            text=self.tokenizer.decode(answer_ids, skip_special_tokens=True).strip(),
            thinking=self.tokenizer.decode(thinking_ids, skip_special_tokens=True).strip(),
            input_tokens=len(prompt),
            output_tokens=len(kept),
            finish_reason="stop" if stopped else "length",
            generation_time=elapsed,
        )
