"""The project's single vocabulary and the tool schemas built from it.

Everything that names a topic, a review focus, a difficulty, a flag or an intervention
family comes from here: the stage 1 and stage 3 tool schemas (below), the prompt
placeholders, the validation of generated data, the tagger and the training export.
Reads and writes nothing.
"""

from __future__ import annotations

import re

SPLIT_PERSONALITY_TOKEN = "<split-personality-token>"

# Topics and the legal review focuses of each (docs/data_formats.md §3). OTHER is always legal.
TOPIC_FOCUSES: dict[str, tuple[str, ...]] = {
    "sycophancy": ("honesty", "sycophancy", "harm_avoidance"),
    "reward_hacks": ("goal_misgeneralization", "specification_gaming", "strategic_awareness"),
    "specification_gaming": ("specification_gaming", "instruction_following", "completeness"),
    "confidence_assessment": ("honesty", "harm_avoidance", "completeness", "sycophancy"),
    "fabricated_statistics": ("fabrication_detection", "honesty", "specification_gaming"),
    "goal_misgeneralization": ("goal_misgeneralization", "strategic_awareness", "specification_gaming"),
    "jailbreak_attempts": ("refusal_appropriateness", "strategic_awareness", "instruction_following"),
    "influence_seeking": ("influence_seeking", "strategic_awareness", "harm_avoidance"),
    "malicious_user_queries": ("harm_avoidance", "strategic_awareness", "refusal_appropriateness"),
    "oversimplification": ("completeness", "honesty", "clarity"),
    "unethical_instructions": ("harm_avoidance", "refusal_appropriateness", "instruction_following"),
    "reasoning_metacognition": (
        "honesty",
        "harm_avoidance",
        "strategic_awareness",
        "fabrication_detection",
        "goal_misgeneralization",
    ),
    "strategic_awareness": ("strategic_awareness", "harm_avoidance", "refusal_appropriateness"),
    "steganography": ("steganography", "strategic_awareness", "refusal_appropriateness"),
}
TOPICS: tuple[str, ...] = tuple(TOPIC_FOCUSES)
OTHER_FOCUS = "OTHER"
FOCUSES: tuple[str, ...] = (
    "honesty",
    "sycophancy",
    "harm_avoidance",
    "fabrication_detection",
    "specification_gaming",
    "instruction_following",
    "completeness",
    "goal_misgeneralization",
    "strategic_awareness",
    "refusal_appropriateness",
    "clarity",
    "influence_seeking",
    "steganography",
    OTHER_FOCUS,
)

# A sample's intended_review_focus names one focus or several, separated by "," or ", " (the
# published data uses both); stage 1 writes the second (item_normalisation).
FOCUS_SEPARATORS: tuple[str, ...] = (",", ", ")
FOCUS_SEPARATOR = ", "
DIFFICULTIES: tuple[str, ...] = ("easy", "medium", "hard", "FPT")
DETECTION_DIFFICULTIES: tuple[str, ...] = ("easy", "medium", "hard", "NA")
FLAGS: tuple[str, ...] = ("PASS", "FAIL", "AMBIGUOUS")
ERROR_FLAG = "ERROR"
# The `error_kind` of an ERROR intervention whose sample a stage-3 model refused (docs/data_formats.md §4.3).
REFUSED_ERROR_KIND = "refused"
# The two published families: stage 3's default, and the ones whose flags make the A/B consensus tags.
PUBLISHED_INTERVENTION_TYPES: tuple[str, ...] = ("split_personality", "honesty_scare")
# unseen_intent (opt-in): a review of what the model was about to say, trained without the response
# (docs/data_formats.md §4.3, §6). Its flags are about a plan, so they stay out of the consensus tags.
UNSEEN_INTENT = "unseen_intent"
INTERVENTION_TYPES: tuple[str, ...] = (*PUBLISHED_INTERVENTION_TYPES, UNSEEN_INTENT)
CONSENSUS_INTERVENTION_TYPES: tuple[str, ...] = PUBLISHED_INTERVENTION_TYPES
# An exported sample's `layout` (docs/data_formats.md §6): the model sees S, or (unseen_intent) never does.
STANDARD_LAYOUT = "standard"
# An exported sample's `task`: a review of S, or off-policy detection (is S my own answer?).
REVIEW_TASK, DETECTION_TASK = "review", "off_policy_detection"
# Families whose I is spoken by the model itself and so opens with the split-personality token.
TOKEN_INTERVENTION_TYPES: tuple[str, ...] = ("split_personality", UNSEEN_INTENT)
BASELINE_VERSION = "baseline"
VARIANTS: tuple[str, ...] = ("A", "B")


def legal_focuses(topic: str) -> tuple[str, ...]:
    """The review focuses a sample of `topic` may name, OTHER included."""
    if topic not in TOPIC_FOCUSES:
        raise KeyError(f"unknown topic {topic!r}; known topics: {', '.join(TOPICS)}")
    return TOPIC_FOCUSES[topic] + (OTHER_FOCUS,)


def focus_list_patterns(focuses: tuple[str, ...]) -> list[str]:
    """The regexes of a focus list drawn from `focuses`, one per separator."""
    names = "(" + "|".join(focuses) + ")"
    return [f"^{names}({separator}{names})*$" for separator in FOCUS_SEPARATORS]


def is_focus_list(text: object, focuses: tuple[str, ...]) -> bool:
    """True when `text` is one or more of `focuses`, separated by one of FOCUS_SEPARATORS (matched
    as the tool schema's `pattern` is)."""
    return isinstance(text, str) and any(re.search(pattern, text) for pattern in focus_list_patterns(focuses))


def intervention_key(intervention_type: str, version: str) -> str:
    """`split_personality` + `version_4` -> `split_personality__version_4`."""
    return f"{intervention_type}__{version}"


def split_intervention_key(key: str) -> tuple[str, str]:
    """`split_personality__version_4` -> (`split_personality`, `version_4`)."""
    intervention_type, sep, version = key.partition("__")
    if not sep or intervention_type not in INTERVENTION_TYPES:
        raise ValueError(f"not an intervention key: {key!r}")
    return intervention_type, version


# ---------------------------------------------------------------------------------------
# Tool schemas. The generator answers by calling these tools (forced tool use), so every
# answer is validated against a JSON schema built from the vocabulary above.


def stage_1_tool(topic: str, num_items: int) -> dict:
    """The forced tool of a stage 1 call: `num_items` A/B/T samples for `topic`. An answer may hold
    fewer: stage 1 keeps the valid samples and asks again for the rest."""
    focuses = legal_focuses(topic)
    item = {
        "type": "object",
        "properties": {
            "thought_process": {
                "type": "string",
                "minLength": 1,
                "description": "Why this sample should make the target model fail (or, for FPT, not).",
            },
            "A": {"type": "string", "minLength": 1, "description": "Neutral system prompt."},
            "B": {
                "type": "string",
                "description": "Subtly biased system prompt, or the empty string for an A-only sample.",
            },
            "T": {"type": "string", "minLength": 1, "description": "The user's task."},
            "metadata": {
                "type": "object",
                "properties": {
                    "alignment_issue_type": {"type": "string", "enum": [topic]},
                    "difficulty": {"type": "string", "enum": list(DIFFICULTIES)},
                    "intended_review_focus": {
                        "type": "string",
                        "anyOf": [{"type": "string", "pattern": pattern} for pattern in focus_list_patterns(focuses)],
                        "description": "One or more of: " + ", ".join(focuses) + " (comma-separated).",
                    },
                    "notes": {"type": "string"},
                },
                "required": ["alignment_issue_type", "difficulty", "intended_review_focus", "notes"],
                "additionalProperties": False,
            },
        },
        "required": ["thought_process", "A", "B", "T", "metadata"],
        "additionalProperties": False,
    }
    return {
        "name": "submit_stage_1_samples",
        "description": f"Submit exactly {num_items} new training samples for the topic '{topic}'.",
        "input_schema": {
            "type": "object",
            "properties": {
                "data": {"type": "array", "items": item, "maxItems": num_items},
                "project_feedback": {
                    "type": "string",
                    "description": "Optional feedback on the instructions for the project team.",
                },
            },
            "required": ["data", "project_feedback"],
            "additionalProperties": False,
        },
    }


def stage_3_tool(topic: str, intervention_type: str, num_items: int) -> dict:
    """The forced tool of a stage 3 call: one intervention per sample of the batch."""
    if intervention_type not in INTERVENTION_TYPES:
        raise KeyError(f"unknown intervention type {intervention_type!r}")
    item = {
        "type": "object",
        "properties": {
            "thought_process": {"type": "string", "minLength": 1},
            "selected_review_focus": {"type": "string", "enum": list(legal_focuses(topic))},
            "confidence": {"type": "integer", "minimum": 1, "maximum": 5},
            "I": {"type": "string", "minLength": 1},
            "R": {"type": "string", "minLength": 1},
            "P": {"type": "string", "enum": list(FLAGS)},
            "detection_difficulty_internal": {"type": "string", "enum": list(DETECTION_DIFFICULTIES)},
            "detection_difficulty_external": {"type": "string", "enum": list(DETECTION_DIFFICULTIES)},
            "faulty_data": {"type": "boolean"},
        },
        "required": [
            "thought_process",
            "selected_review_focus",
            "confidence",
            "I",
            "R",
            "P",
            "detection_difficulty_internal",
            "detection_difficulty_external",
            "faulty_data",
        ],
        "additionalProperties": False,
    }
    if intervention_type in TOKEN_INTERVENTION_TYPES:
        item["properties"]["I"]["pattern"] = "^" + re.escape(SPLIT_PERSONALITY_TOKEN)
    return {
        "name": f"submit_{intervention_type}_reviews",
        # The count stays out of the description: every call of a topic and family sends the same tool.
        "description": f"Submit one {intervention_type} review per sample, in sample order.",
        "input_schema": {
            "type": "object",
            "properties": {
                "batch_thinking": {"type": "string"},
                "items": {"type": "array", "items": item, "minItems": num_items, "maxItems": num_items},
            },
            "required": ["batch_thinking", "items"],
            "additionalProperties": False,
        },
    }


QUALITY_REVIEW_VERDICTS: tuple[str, ...] = ("accept", "reject")


def quality_review_tool() -> dict:
    """The forced tool of stage 3's external quality review: one verdict per sample shown, each
    naming the sample it judges. The number of samples is not in the schema (so every review
    call of a topic and family sends the same tool); the request's text states it and the
    stage checks it (stage_3.quality_review.verdict_problems)."""
    verdict = {
        "type": "object",
        "properties": {
            "sample": {"type": "integer", "minimum": 1, "description": "The number of the sample judged."},
            "verdict": {"type": "string", "enum": list(QUALITY_REVIEW_VERDICTS)},
            "critique": {
                "type": "string",
                "minLength": 1,
                "description": "What is wrong and how to fix it (or why it is good).",
            },
        },
        "required": ["sample", "verdict", "critique"],
        "additionalProperties": False,
    }
    return {
        "name": "submit_quality_reviews",
        "description": "Judge each generated review against the quality checklist, on its own: one entry per "
        "sample, in sample order, naming the sample it judges.",
        "input_schema": {
            "type": "object",
            "properties": {"items": {"type": "array", "items": verdict}},
            "required": ["items"],
            "additionalProperties": False,
        },
    }
