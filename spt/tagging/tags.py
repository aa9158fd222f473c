"""The tags of stage-3 data (docs/data_formats.md §5), in one place: every tag's name, its rule and its
description (what `tag_stage_3_data.py --list_tags` prints), the order in which tags are
written (TAG_ORDER), the PASS/FAIL `consensus` of a variant, the `id_string` / `id_numeric`
rules and where the stage-3 files are (`stage_3_files`). The tagger, the analysis, the export
and the config check import it. Reads nothing but the directory listing of `stage_3_files`;
writes nothing.

Rules, per model entry of an item (variants A and B) after baseline interventions are dropped:
- variant tags: GENERATION_EXCEEDED_TOKEN_LIMIT, the disagreement tags of its flags,
  NO_A_B_SEPARATION (A without B), then the consensus tags of the entry (both variants), then
  MALFORMED_FIELDS when a field of the variant has the wrong type (`malformed_variant_fields`);
- intervention tags: `intervention_tags` (the published ones computed from the intervention),
  then the variant's disagreement and consensus tags (PROPAGATED_TAGS), then
  `new_intervention_tags` (this project's, docs/data_formats.md §5.2.4; MALFORMED_FIELDS last).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from spt.review_checks import (
    has_leakage,
    is_first_person,
    mentions_biased_prompt,
    starts_with_split_personality_token,
)
from spt.shared_tools import (
    CONSENSUS_INTERVENTION_TYPES,
    DETECTION_DIFFICULTIES,
    ERROR_FLAG,
    FLAGS,
    INTERVENTION_TYPES,
    REFUSED_ERROR_KIND,
    TOKEN_INTERVENTION_TYPES,
)
from spt.utils import DataError, display_path, require_field
from spt.verification.verdict import failed_verification

# ------------------------------------------------------------------------------ tag names
# Published tags (docs/data_formats.md §5 table), in table order; then this project's new tags (§5.2.4).
GENERATION_EXCEEDED_TOKEN_LIMIT = "generation_exceeded_token_limit"
CONFIDENCE_THRESHOLDS = (5, 4, 3, 2)
CONFIDENCE_TAGS = tuple(f"confidence_below_{n}" for n in CONFIDENCE_THRESHOLDS)
DATA_IS_FAULTY = "data_is_faulty"
MISMATCHING_REVIEW_FOCUS = "mismatching_review_focus"
DIFFICULTY_LEVELS = {"easy": 1, "medium": 2, "hard": 3}
EXTERNAL_DIFFICULTY_TAGS = tuple(f"{level}_detection_difficulty_external" for level in DIFFICULTY_LEVELS)
INTERNAL_DIFFICULTY_TAGS = tuple(f"{level}_detection_difficulty_internal" for level in DIFFICULTY_LEVELS)
EASIER_EXTERNALLY = "detection_difficulty_easier_externally_than_internally"
TRAINING_DATA_LEAKAGE = "training_data_leakage"
FAILED_EXTERNAL_REVIEW = "failed_external_review"
DISAGREE_ONCE = "intervention_tags_disagree_once"
DISAGREE_TWICE = "intervention_tags_disagree_twice"
NO_A_B_SEPARATION = "no_a_b_separation"
MISSING_CONSENSUS_ON_A = "missing_consensus_on_a"
MISSING_CONSENSUS_ON_B = "missing_consensus_on_b"
UNCLEAR_A_B_SEPARATION = "unclear_a_b_separation"
A_FAILS_BUT_B_PASSES = "a_fails_but_b_passes"
# New tags of this project (intervention level, after all published tags).
REVIEW_IN_THIRD_PERSON = "review_in_third_person"
SPLIT_PERSONALITY_MISSING_TOKEN = "split_personality_missing_token"
MENTIONS_BIASED_PROMPT = "mentions_biased_prompt"
REFUSED_IN_STAGE_3 = "refused_in_stage_3"
FAILED_CAUSAL_VERIFICATION = "failed_causal_verification"  # variant level, propagated
MALFORMED_FIELDS = "malformed_fields"  # intervention or variant level

PUBLISHED_TAGS: tuple[str, ...] = (
    GENERATION_EXCEEDED_TOKEN_LIMIT,
    *CONFIDENCE_TAGS,
    DATA_IS_FAULTY,
    MISMATCHING_REVIEW_FOCUS,
    *EXTERNAL_DIFFICULTY_TAGS,
    *INTERNAL_DIFFICULTY_TAGS,
    EASIER_EXTERNALLY,
    TRAINING_DATA_LEAKAGE,
    FAILED_EXTERNAL_REVIEW,
    DISAGREE_ONCE,
    DISAGREE_TWICE,
    NO_A_B_SEPARATION,
    MISSING_CONSENSUS_ON_A,
    MISSING_CONSENSUS_ON_B,
    UNCLEAR_A_B_SEPARATION,
    A_FAILS_BUT_B_PASSES,
)
NEW_TAGS: tuple[str, ...] = (
    REVIEW_IN_THIRD_PERSON,
    SPLIT_PERSONALITY_MISSING_TOKEN,
    MENTIONS_BIASED_PROMPT,
    REFUSED_IN_STAGE_3,
    FAILED_CAUSAL_VERIFICATION,
    MALFORMED_FIELDS,
)
TAG_ORDER: tuple[str, ...] = PUBLISHED_TAGS + NEW_TAGS
# Tags that live on a variant only, and tags written to a variant and copied to its interventions.
VARIANT_ONLY_TAGS: tuple[str, ...] = (GENERATION_EXCEEDED_TOKEN_LIMIT, NO_A_B_SEPARATION)
PROPAGATED_TAGS: tuple[str, ...] = (
    DISAGREE_ONCE,
    DISAGREE_TWICE,
    MISSING_CONSENSUS_ON_A,
    MISSING_CONSENSUS_ON_B,
    UNCLEAR_A_B_SEPARATION,
    A_FAILS_BUT_B_PASSES,
)
# Every tag a variant can carry (the tagger's count table has a variant column for these).
VARIANT_TAGS: tuple[str, ...] = VARIANT_ONLY_TAGS + PROPAGATED_TAGS + (FAILED_CAUSAL_VERIFICATION, MALFORMED_FIELDS)
TAG_DESCRIPTIONS: dict[str, str] = {
    GENERATION_EXCEEDED_TOKEN_LIMIT: "variant: the response used >= 2048 output tokens (probably cut off)",
    **{tag: f"intervention: confidence < {n}" for tag, n in zip(CONFIDENCE_TAGS, CONFIDENCE_THRESHOLDS)},
    DATA_IS_FAULTY: "intervention: the generator marked the sample as faulty",
    MISMATCHING_REVIEW_FOCUS: "intervention: selected and intended review focus differ",
    **{tag: "intervention: external detection difficulty" for tag in EXTERNAL_DIFFICULTY_TAGS},
    **{tag: "intervention: internal detection difficulty" for tag in INTERNAL_DIFFICULTY_TAGS},
    EASIER_EXTERNALLY: "intervention: easier to detect from outside than for the model itself",
    TRAINING_DATA_LEAKAGE: "intervention: I or R leaks the data-generation method (docs/data_formats.md §5.1)",
    FAILED_EXTERNAL_REVIEW: "intervention: stage 3's quality review rejected it",
    DISAGREE_ONCE: "propagated: the variant's flags contain >= 1 PASS and >= 1 FAIL",
    DISAGREE_TWICE: "propagated: the variant's flags contain >= 2 PASS and >= 2 FAIL",
    NO_A_B_SEPARATION: "variant: the model entry has A but no B",
    MISSING_CONSENSUS_ON_A: "propagated: PASS/FAIL tie (or no flag) on variant A",
    MISSING_CONSENSUS_ON_B: "propagated: PASS/FAIL tie (or no flag) on variant B",
    UNCLEAR_A_B_SEPARATION: "propagated: A and B reach the same consensus",
    A_FAILS_BUT_B_PASSES: "propagated: consensus FAIL on A but PASS on B",
    REVIEW_IN_THIRD_PERSON: "new, intervention: R is not written in the first person (outside-observer review)",
    SPLIT_PERSONALITY_MISSING_TOKEN: "new, intervention: a split_personality or unseen_intent I does not start with the token",
    MENTIONS_BIASED_PROMPT: "new, intervention: I or R mentions 'the biased (system) prompt' without a letter "
    "(a leak the published pattern, which needs the letter A/B, misses)",
    REFUSED_IN_STAGE_3: "new, intervention: a stage-3 model (the generator, or the quality reviewer) refused the "
    'sample: an ERROR record with error_kind "refused" (docs/data_formats.md §4.3)',
    FAILED_CAUSAL_VERIFICATION: "new, propagated: the item's causal verification (scripts/verify_ab_factors.py) "
    "found that its B factor does not reliably and covertly cause the behaviour, "
    "or the judge model refused every judge call of the item",
    MALFORMED_FIELDS: "new, intervention or variant: a field present with a value of the wrong type or out of "
    'range (e.g. confidence "high"), which the other rules cannot judge (docs/data_formats.md §4.2-4.3)',
}
OUTPUT_TOKEN_LIMIT = 2048


def describe_tags() -> str:
    """Every tag with its rule, one line each in TAG_ORDER (`--list_tags`)."""
    return "\n".join(f"{tag}: {TAG_DESCRIPTIONS[tag]}" for tag in TAG_ORDER)


# ------------------------------------------------------------------------------ rules


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# What a field must hold where it is present (docs/data_formats.md §4.2-4.3): (test, expectation).
# An absent field is not malformed (an ERROR record has no confidence); null is, except where allowed.
INTERVENTION_FIELD_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "intervention_type": (lambda value: value in INTERVENTION_TYPES, f"one of {', '.join(INTERVENTION_TYPES)}"),
    "confidence": (lambda value: _integer(value) and 1 <= value <= 5, "an integer 1-5"),
    "P": (lambda value: value in (*FLAGS, ERROR_FLAG), f"one of {', '.join((*FLAGS, ERROR_FLAG))}"),
    "detection_difficulty_internal": (
        lambda value: value in DETECTION_DIFFICULTIES,
        f"one of {', '.join(DETECTION_DIFFICULTIES)}",
    ),
    "detection_difficulty_external": (
        lambda value: value in DETECTION_DIFFICULTIES,
        f"one of {', '.join(DETECTION_DIFFICULTIES)}",
    ),
    "faulty_data": (lambda value: isinstance(value, bool), "true or false"),
    "stage_3_reviews_passed": (lambda value: value is None or isinstance(value, bool), "true, false or null"),
    "selected_review_focus": (lambda value: isinstance(value, str), "a string"),
    "thought_process": (lambda value: isinstance(value, str), "a string"),
}
VARIANT_FIELD_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "S": (lambda value: isinstance(value, str), "a string"),
    "output_tokens": (lambda value: _integer(value) and value >= 0, "an integer >= 0"),
}


def _malformed(entry: dict, rules: dict[str, tuple[Callable[[Any], bool], str]]) -> list[str]:
    return [
        f"{field} {entry[field]!r} (expected {expected})"
        for field, (test, expected) in rules.items()
        if field in entry and not test(entry[field])
    ]


def malformed_intervention_fields(intervention: dict) -> list[str]:
    """Each field of the intervention with a value of the wrong type or out of range, described
    ("confidence 'high' (expected an integer 1-5)"); empty when it is well formed."""
    return _malformed(intervention, INTERVENTION_FIELD_RULES)


def malformed_variant_fields(variant: dict) -> list[str]:
    """Like `malformed_intervention_fields`, for a variant's own fields (S, output_tokens)."""
    return _malformed(variant, VARIANT_FIELD_RULES)


def consensus(flags: list[Any]) -> str | None:
    """PASS or FAIL by majority; None for a tie (including no PASS/FAIL at all)."""
    passes, fails = flags.count("PASS"), flags.count("FAIL")
    if passes > fails:
        return "PASS"
    if fails > passes:
        return "FAIL"
    return None


def consensus_flags(interventions: dict[str, dict]) -> list[Any]:
    """The flags (P) of one variant's interventions that the disagreement and consensus tags count:
    those of the published families (CONSENSUS_INTERVENTION_TYPES). An unseen_intent flag judges a
    plan, not the written response, so it is left out; the tags still reach its intervention."""
    return [
        intervention.get("P")
        for key, intervention in interventions.items()
        if (intervention.get("intervention_type") or key.partition("__")[0]) in CONSENSUS_INTERVENTION_TYPES
    ]


def disagreement_tags(flags: list[Any]) -> list[str]:
    """DISAGREE_ONCE / DISAGREE_TWICE from the flags (P) of one variant's interventions."""
    passes, fails = flags.count("PASS"), flags.count("FAIL")
    tags = []
    if passes >= 1 and fails >= 1:
        tags.append(DISAGREE_ONCE)
    if passes >= 2 and fails >= 2:
        tags.append(DISAGREE_TWICE)
    return tags


def consensus_tags(flags_a: list[Any], flags_b: list[Any]) -> list[str]:
    """Consensus tags of one model entry with both variants (propagated to both)."""
    consensus_a, consensus_b = consensus(flags_a), consensus(flags_b)
    tags = []
    if consensus_a is None:
        tags.append(MISSING_CONSENSUS_ON_A)
    if consensus_b is None:
        tags.append(MISSING_CONSENSUS_ON_B)
    if consensus_a == consensus_b:
        tags.append(UNCLEAR_A_B_SEPARATION)
    if consensus_a == "FAIL" and consensus_b == "PASS":
        tags.append(A_FAILS_BUT_B_PASSES)
    return tags


def causal_verification_tags(item: dict) -> list[str]:
    """FAILED_CAUSAL_VERIFICATION when the item carries a verdict whose `verified` is false, or null
    (every judge call refused) (the item-level verdict, which is what stage 3's --verified_only
    reads); nothing without a verdict."""
    return [FAILED_CAUSAL_VERIFICATION] if failed_verification(item) else []


def variant_own_tags(variant: dict, letter: str, has_b: bool, disagreement: list[str]) -> list[str]:
    """A variant's tags before the entry's consensus tags: token limit, its disagreement
    tags, and NO_A_B_SEPARATION for an A without B."""
    tags = []
    output_tokens = variant.get("output_tokens")
    if (
        isinstance(output_tokens, (int, float))
        and not isinstance(output_tokens, bool)
        and output_tokens >= OUTPUT_TOKEN_LIMIT
    ):
        tags.append(GENERATION_EXCEEDED_TOKEN_LIMIT)
    tags += disagreement
    if letter == "A" and not has_b:
        tags.append(NO_A_B_SEPARATION)
    return tags


def variant_malformed_tags(variant: dict) -> list[str]:
    """MALFORMED_FIELDS when a field of the variant is malformed (written after the consensus tags)."""
    return [MALFORMED_FIELDS] if malformed_variant_fields(variant) else []


def intervention_tags(intervention: dict, intervention_text: str, review: str, intended_focus: Any) -> list[str]:
    """The published intervention-level tags computed from the intervention itself."""
    tags: list[str] = []
    confidence = intervention.get("confidence")
    if isinstance(confidence, (int, float)) and not isinstance(confidence, bool):
        tags += [tag for tag, n in zip(CONFIDENCE_TAGS, CONFIDENCE_THRESHOLDS) if confidence < n]
    if intervention.get("faulty_data") is True:
        tags.append(DATA_IS_FAULTY)
    selected_focus = intervention.get("selected_review_focus")
    if (
        isinstance(intended_focus, str)
        and isinstance(selected_focus, str)
        and intended_focus
        and selected_focus
        and intended_focus not in selected_focus
        and selected_focus not in intended_focus
    ):
        tags.append(MISMATCHING_REVIEW_FOCUS)
    external = intervention.get("detection_difficulty_external")
    internal = intervention.get("detection_difficulty_internal")
    if external in DIFFICULTY_LEVELS:
        tags.append(f"{external}_detection_difficulty_external")
    if internal in DIFFICULTY_LEVELS:
        tags.append(f"{internal}_detection_difficulty_internal")
    if (
        external in DIFFICULTY_LEVELS
        and internal in DIFFICULTY_LEVELS
        and DIFFICULTY_LEVELS[external] < DIFFICULTY_LEVELS[internal]
    ):
        tags.append(EASIER_EXTERNALLY)
    if has_leakage(intervention_text, "I") or has_leakage(review, "R"):
        tags.append(TRAINING_DATA_LEAKAGE)
    if intervention.get("stage_3_reviews_passed") is False:
        tags.append(FAILED_EXTERNAL_REVIEW)
    return tags


def new_intervention_tags(intervention: dict, key: str, intervention_text: str, review: str) -> list[str]:
    """This project's new tags (docs/data_formats.md §5.2.4), appended after the published ones."""
    tags: list[str] = []
    if review and not is_first_person(review):
        tags.append(REVIEW_IN_THIRD_PERSON)
    family = intervention.get("intervention_type") or key.partition("__")[0]
    if family in TOKEN_INTERVENTION_TYPES and not starts_with_split_personality_token(intervention_text):
        tags.append(SPLIT_PERSONALITY_MISSING_TOKEN)
    if mentions_biased_prompt(intervention_text) or mentions_biased_prompt(review):
        tags.append(MENTIONS_BIASED_PROMPT)
    if intervention.get("error_kind") == REFUSED_ERROR_KIND:
        tags.append(REFUSED_IN_STAGE_3)
    if malformed_intervention_fields(intervention):
        tags.append(MALFORMED_FIELDS)
    return tags


# ------------------------------------------------------------------------------ ids
# `id_numeric`: consecutive integers from --first_id_numeric (default 0) over every tagged
# intervention, in `stage_3_files` order, then item, model entry, variant (A, B) and
# intervention key as they stand in the file; baseline interventions are dropped, not numbered.


def model_slug(model_id: str) -> str:
    """The model id as it appears in an `id_string` (docs/data_formats.md §4.4): `/` replaced by `_`."""
    return model_id.replace("/", "_")


def variant_id(file_stem: str, item_index: int, model_id: str, letter: str | None = None) -> str:
    """`<file stem>__idx<item index>__<model slug>[_<letter>]`: the start of an `id_string`."""
    return f"{file_stem}__idx{item_index}__{model_slug(model_id)}" + (f"_{letter}" if letter else "")


def id_string(file_stem: str, item_index: int, model_id: str, letter: str, key: str) -> str:
    """`<file stem>__idx<item index>__<model slug>_<letter>__<intervention key>` (docs/data_formats.md §4.4)."""
    return f"{variant_id(file_stem, item_index, model_id, letter)}__{key}"


# ------------------------------------------------------------------------------ files


def stage_3_files(input_dir: Path) -> list[Path]:
    """`<input>/<topic>/*.json`, sorted by topic then file name."""
    if not input_dir.is_dir():
        raise DataError(f"{display_path(input_dir)}: input directory not found")
    files = sorted(path for path in input_dir.glob("*/*.json") if path.is_file())
    if not files:
        raise DataError(f"{display_path(input_dir)}: no <topic>/*.json files found")
    return files


def require_object(value: Any, where: str) -> dict:
    """`value` when it is a JSON object, else a DataError naming its place and what it is."""
    if not isinstance(value, dict):
        raise DataError(f"{where} must be a JSON object, not {type(value).__name__}")
    return value


def model_entries(document: Any, where: str) -> Iterator[tuple[int, dict, str, dict, str]]:
    """(item index, item, model id, model entry, the entry's place) of every target model's answers
    in a loaded stage-3 file. A part down to the model entry that is not what the format says (the
    file, its `data` list, an item, its inferences, a model entry) is an error naming it: such data
    is never skipped. Items without `inferences` have no answers and yield nothing."""
    items = require_field(require_object(document, where), "data", where)
    if not isinstance(items, list):
        raise DataError(f"{where}: field 'data' must be a list")
    for item_index, item in enumerate(items):
        item_where = f"{where}: data[{item_index}]"
        if require_object(item, item_where).get("inferences") is None:
            continue
        for model_id, model_entry in require_object(item["inferences"], f"{item_where}.inferences").items():
            model_where = f"{item_where}.inferences[{model_id!r}]"
            yield item_index, item, model_id, require_object(model_entry, model_where), model_where
