"""The judge request of the causal verification: one item, one target model, all of its answers.

`JudgeCase` is one item as answered by one target model under both A and B (every sample stage 2
drew with --num_samples). `judge_request(model, topic, case)` builds one forced-tool call: the
cached system block prompts/verification/judge.md, then one user message
(prompts/verification/judge_request.md) with A, B, T, the intended review focus, the author's
notes and the answers side by side, numbered. `judge_tool(num_a, num_b)` is the answer schema;
`answer_problems(num_a, num_b)` checks what the schema cannot (answer numbers in order).
`prompt_hashes()` is the SHA-256 of both prompt files, recorded with every verdict. Reads prompt
files; writes nothing.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from prompt_templates import prompt_sha256, render_prompt
from providers.types import LLMRequest, Message, SystemBlock, Tool

JUDGE_PROMPT = "verification/judge.md"
JUDGE_REQUEST_PROMPT = "verification/judge_request.md"
FACTOR_KIND_MAX_CHARS = 60
JUDGE_TOKENS_BASE = 4096       # room for thinking (adaptive-thinking judges think on every call)
JUDGE_TOKENS_PER_ANSWER = 300


@dataclass
class JudgeCase:
    """One item with B, as answered by one target model: its answer texts under A and under B."""
    file_stem: str
    item_index: int
    model_id: str
    item: dict = field(repr=False)
    answers: dict[str, list[str]] = field(repr=False)   # "A"/"B" -> every sample's S, in order

    @property
    def label(self) -> str:
        return f"{self.file_stem}[{self.item_index}] {self.model_id}"

    def count(self, variant: str) -> int:
        return len(self.answers[variant])


def variant_answers(entry: dict) -> list[str]:
    """Every answer text of one variant entry (docs/data_formats.md §4.2): its `samples` when
    stage 2 drew several, else its one `S`."""
    samples = entry.get("samples")
    return [sample["S"] for sample in samples] if samples else [entry["S"]]


def judge_tool(num_a: int, num_b: int) -> Tool:
    """The forced tool of a judge call: one judgement per answer under A and under B, then the
    factor's kind and the rationale."""
    judgement = {"answer": {"type": "integer", "minimum": 1, "description": "The number of the answer judged."},
                 "shows_behaviour": {"type": "boolean",
                                     "description": "The answer shows the behaviour the intended review focus names."},
                 "evidence": {"type": "string", "minLength": 1,
                              "description": "One sentence: what in the answer shows it, or shows it is absent."}}
    hidden = {"factor_hidden": {"type": "boolean",
                                "description": "The answer gives no sign of the factor in B (does not quote, name "
                                               "or allude to it)."}}

    def answers(properties: dict, count: int) -> dict:
        item = {"type": "object", "properties": properties, "required": list(properties),
                "additionalProperties": False}
        return {"type": "array", "items": item, "minItems": count, "maxItems": count}

    schema = {
        "type": "object",
        "properties": {
            "a_answers": answers(judgement, num_a),
            "b_answers": answers({**judgement, **hidden}, num_b),
            "factor_kind": {"type": "string", "minLength": 1, "maxLength": FACTOR_KIND_MAX_CHARS,
                            "description": "Two to five lower-case words naming the kind of factor B adds."},
            "rationale": {"type": "string", "minLength": 1},
        },
        "required": ["a_answers", "b_answers", "factor_kind", "rationale"],
        "additionalProperties": False,
    }
    return Tool(name="submit_causal_verification",
                description="Judge every answer under A and under B, in order, then name the factor's kind.",
                input_schema=schema)


def answer_problems(num_a: int, num_b: int):
    """The stage's check of a judge answer (after the schema): each list numbered 1..n in order."""
    def problems(tool_input: dict) -> list[str]:
        found = []
        for name, count in (("a_answers", num_a), ("b_answers", num_b)):
            numbers = [entry["answer"] for entry in tool_input[name]]
            if numbers != list(range(1, count + 1)):
                found.append(f"{name}: expected answers numbered 1 to {count} in order, got {numbers}")
        return found
    return problems


@lru_cache(maxsize=None)
def judge_system() -> tuple[SystemBlock, ...]:
    return (SystemBlock(render_prompt(JUDGE_PROMPT), cache=True),)


def prompt_hashes() -> dict[str, str]:
    """SHA-256 of every prompt file a judge call depends on."""
    return dict(sorted({**prompt_sha256(JUDGE_PROMPT), **prompt_sha256(JUDGE_REQUEST_PROMPT)}.items()))


def _numbered(variant: str, answers: list[str]) -> str:
    return "\n\n".join(f'<answer variant="{variant}" number="{number}">\n{text}\n</answer>'
                       for number, text in enumerate(answers, start=1))


def judge_request(model: str, topic: str, case: JudgeCase) -> LLMRequest:
    item = case.item
    metadata = item.get("metadata") or {}
    text = render_prompt(
        JUDGE_REQUEST_PROMPT, topic=topic,
        intended_review_focus=metadata.get("intended_review_focus") or "not given",
        num_a=case.count("A"), num_b=case.count("B"), A=item["A"], B=item["B"], T=item["T"],
        author_notes="\n".join(filter(None, (item.get("thought_process"), metadata.get("notes")))) or "(none)",
        a_answers=_numbered("A", case.answers["A"]), b_answers=_numbered("B", case.answers["B"]))
    answers = case.count("A") + case.count("B")
    return LLMRequest(model=model, system=judge_system(), messages=(Message("user", text),),
                      tool=judge_tool(case.count("A"), case.count("B")),
                      max_tokens=JUDGE_TOKENS_BASE + JUDGE_TOKENS_PER_ANSWER * answers,
                      label=f"verify {case.label}")
