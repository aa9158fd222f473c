"""Text checks on generated interventions (I) and reviews (R), shared by stage 3's
validation and the tagger. Reads and writes nothing.

- `leakage_matches` / `has_leakage`: the data-generation leakage patterns of docs/data_formats.md §5.1.
  The letters A/B and the acronym FPT match case-sensitively and as whole words (fix §5.2.1:
  the article "a" in "a prompt injection" is not a leak); every other pattern is
  case-insensitive.
- `third_person_review_matches` / `is_first_person`: a review must be written by the model
  about itself ("I did X"), not by an outside observer ("the model did X").
- `mentions_biased_prompt`: "the biased (system) prompt" without a letter, a leak that the
  published pattern (which needs the letter) misses.
- `starts_with_split_personality_token`: a split_personality or unseen_intent I must open with the token.
- `written_response_matches`: an unseen_intent review is spoken before the response exists, so
  it must not treat the response as written or visible ("my response above", "as I wrote").

Speed (measured on the reference data): Python's `re` scans fast only for patterns that
start with a literal, and cannot prefilter an alternation. So case-insensitive patterns are
written in lower case, start with their first word and run on `text.lower()`, and every
pattern runs only when one of its keywords (a word each of its matches contains) occurs in
the lower-cased text: about 15 µs per review, against ~50 µs for one combined alternation
of named groups with (?i:...) parts. The keyword prefilter matters to the tagger: the checks
of the 940 reference interventions take 0.036 s with it and 0.118 s without, which on
tests/benchmarks/bench_tagging.py (153 MB, ~4.4 CPU-s in all) would add ~2.9 s (~65%).
"""

from __future__ import annotations

import re
from typing import Literal, NamedTuple

from spt.shared_tools import SPLIT_PERSONALITY_TOKEN


class TextPattern(NamedTuple):
    name: str
    regex: re.Pattern[str]
    on_lowered: bool  # True: the (lower-case) regex runs on text.lower(), i.e. case-insensitively
    keywords: tuple[str, ...]  # lower-case; every match contains one of them


def _word(word: str) -> str:
    """`word` at the start of a word: the literal comes first so that `re` can scan for it
    quickly; the look-behind then rejects a word character before it (like a leading \b)."""
    return rf"{word}(?<!\w{word})"


def _first_word(source: str) -> tuple[str, ...]:
    return (re.match(r"[a-zA-Z]+", source).group(0).lower(),)


def _lowered(name: str, source: str, keywords: tuple[str, ...] = ()) -> TextPattern:
    """A case-insensitive pattern (written in lower case); keywords default to its first word."""
    return TextPattern(name, re.compile(source), True, keywords or _first_word(source))


def _exact_case(name: str, source: str, keywords: tuple[str, ...] = ()) -> TextPattern:
    return TextPattern(name, re.compile(source), False, keywords or _first_word(source))


# Only the letters A/B and "FPT" are case-sensitive (fix §5.2.1); those patterns run on the
# original text with (?i:...) around their other words. `_AB` is a whole-word A, B or A/B.
_AB = r"(?<![\w/])(?:A/B|A|B)(?![\w/])"
LEAKAGE_PATTERNS_I_AND_R: tuple[TextPattern, ...] = (
    _exact_case("variant_letter_prompt", _AB + r"\s+(?i:variants?|prompts?)\b", ("variant", "prompt")),
    _exact_case("the_variant_prompt", r"(?i:\bthe)\s+" + _AB + r"\s+(?i:prompts?)\b", ("prompt",)),
    _exact_case("biased_letter_prompt", r"(?i:\b(?:un)?biased)\s+" + _AB + r"\s+(?i:prompts?)\b", ("biased",)),
    _exact_case("system_prompt_letter", r"(?i:\bsystem\s+prompt)\s+" + _AB, ("system",)),
    _lowered("stage_number", _word("stage") + r"\s*[1-3]\b"),
    _lowered("sample_numbering", _word("sample") + r"\s+\d+\s*(?::|-)"),
    _lowered("batch_number", _word("batch") + r"\s+\d+"),
    _lowered("item_i_of_n", _word("item") + r"\s+\d+\s+of\s+\d+"),
    _exact_case("fpt_acronym", _word("FPT") + r"s?\b"),
    _lowered("false_positive_test", _word("false") + r"[\s-]+positive\s+tests?\b"),
    _lowered("honesty_scare", _word("honesty") + r"[\s_-]+scares?\b"),
    # Hyphenated too (docs/data_formats.md §5.2.5), but not the token `<split-personality-token>` itself.
    _lowered("split_personality", _word("split") + r"[\s_-]+personalit(?:y|ies)\b(?!-token>)"),
    _lowered("intervention_type", _word("intervention") + r"\s+(?:types?|names?|methods?)\b"),
    _lowered("this_sample", _word("this") + r"\s+sample\s+(?:tests|demonstrates|uses)\b", ("sample",)),
    _lowered("using_the_intervention", r"\b(?:using|applying)\s+the\s+\w+\s+intervention\b", ("intervention",)),
    _lowered(
        "response_generated_using", _word("this") + r"\s+response\s+(?:was\s+)?generated\s+using\b", ("generated",)
    ),
)
LEAKAGE_PATTERNS_R_ONLY: tuple[TextPattern, ...] = (
    _lowered("review_focus_is", _word("review") + r"\s+focus\s+(?:is|was|should)\b", ("focus",)),
    _lowered("selected_review_focus", _word("selected") + r"\s+review\s+focus\b"),
    _lowered("intended_review_focus", _word("intended") + r"\s+review\s+focus\b"),
    _lowered("formal_investigation", _word("formal") + r"\s+investigation\b"),
    _lowered(
        "under_review", _word("under") + r"\s+(?:review|investigation|audit)\b", ("review", "investigation", "audit")
    ),
)
_LEAKAGE_PATTERNS = {"I": LEAKAGE_PATTERNS_I_AND_R, "R": LEAKAGE_PATTERNS_I_AND_R + LEAKAGE_PATTERNS_R_ONLY}


def _matching(patterns: tuple[TextPattern, ...], text: str) -> list[str]:
    lowered = text.lower()
    return [
        pattern.name
        for pattern in patterns
        if any(word in lowered for word in pattern.keywords)
        and pattern.regex.search(lowered if pattern.on_lowered else text)
    ]


def _flat_checks(patterns: tuple[TextPattern, ...]) -> tuple[tuple[str, re.Pattern[str], bool], ...]:
    """(keyword, regex, on_lowered) triples: the hot loop of `_any_matching` without calls."""
    return tuple((word, p.regex, p.on_lowered) for p in patterns for word in p.keywords)


def _any_matching(checks: tuple[tuple[str, re.Pattern[str], bool], ...], text: str) -> bool:
    lowered = text.lower()
    for word, regex, on_lowered in checks:
        if word in lowered and regex.search(lowered if on_lowered else text):
            return True
    return False


_LEAKAGE_CHECKS = {field: _flat_checks(patterns) for field, patterns in _LEAKAGE_PATTERNS.items()}


def _leakage_patterns(field: str) -> tuple[TextPattern, ...]:
    if field not in _LEAKAGE_PATTERNS:
        raise ValueError(f"field must be 'I' or 'R', not {field!r}")
    return _LEAKAGE_PATTERNS[field]


def leakage_matches(text: str, field: Literal["I", "R"]) -> list[str]:
    """Names of the leakage patterns that occur in `text` (R-only patterns only for "R"),
    in definition order."""
    return _matching(_leakage_patterns(field), text)


def has_leakage(text: str, field: Literal["I", "R"]) -> bool:
    """True when any leakage pattern occurs (stops at the first match)."""
    _leakage_patterns(field)  # validates `field`
    return _any_matching(_LEAKAGE_CHECKS[field], text)


# "the biased prompt" without a letter: the published leakage pattern needs "A"/"B" after
# "biased", so these leaks were missed; the tagger reports them under a separate, new tag.
_BIASED_PROMPT = re.compile(r"biased(?<!\wbiased)(?<!\w\wun\wbiased)\s+(?:system\s+)?prompts?\b")


def mentions_biased_prompt(text: str) -> bool:
    """True when the text speaks of "the biased prompt" / "an unbiased system prompt"."""
    return _BIASED_PROMPT.search(text.lower()) is not None


# An outside observer's review: it talks about "the model"/"the assistant"/"the AI" or about
# "the response" as "it" instead of saying "I"/"my response". Run on the lower-cased review.
_OBSERVER = r"(?:model|assistant|ai|ai\s+assistant|ai\s+model|language\s+model|chatbot)"
_OBSERVER_VERBS = (
    r"(?:'s|\s+(?:was|is|did|does|has|had|should|could|would|failed|fails|provided|provides|gave|gives|"
    r"responded|responds|chose|chooses|correctly|appropriately|seems|appears|clearly|then|also|"
    r"attempted|tried|acknowledged|acknowledges|maintained|maintains|demonstrated|demonstrates|"
    r"showed|shows|followed|follows|refused|refuses|declined|declines|complied|complies|"
    r"accepted|accepts|recognized|recognizes|identified|identifies)\b)"
)
_IT_VERBS = (
    r"(?:is|was|does|did|doesn't|didn't|does\s+not|did\s+not|has|had|provides|provided|fails|failed|"
    r"correctly|appropriately|also|clearly|avoids|avoided|maintains|maintained|shows|showed|"
    r"demonstrates|demonstrated)\b"
)
THIRD_PERSON_PATTERNS: tuple[TextPattern, ...] = (
    _lowered(
        "it_appears_the_model", r"\b(?:appears|seems)\s+(?:that\s+)?the\s+" + _OBSERVER + r"\b", ("appears", "seems")
    ),
    _lowered(
        "the_model_did", _word("the") + r"\s+" + _OBSERVER + _OBSERVER_VERBS, ("model", "assistant", "ai", "chatbot")
    ),
    # "The response ... it does": "it" refers back to the response, in its sentence or the next.
    _lowered(
        "the_response_it",
        r"(?:the(?<!\wthe)|this(?<!\wthis))\s+response\b(?:[^.!?]{0,200}?[.!?]\s+)?[^.!?]{0,200}?"
        r"\bit\s+" + _IT_VERBS,
        ("response",),
    ),
)
_THIRD_PERSON_CHECKS = _flat_checks(THIRD_PERSON_PATTERNS)
# I, my, me, myself as whole words (a leading character class lets `re` scan quickly).
_FIRST_PERSON = re.compile(r"[IMm](?<!\w[IMm])(?:(?<=I)|(?<=[Mm])(?:y|e|yself))(?!\w)")
# Quoted text is the response being reviewed, not the reviewer's voice: "I cannot guarantee"
# inside quotes says nothing about who writes the review. Apostrophes inside words are kept.
_QUOTATION = re.compile("\"[^\"]*\"|\u201c[^\u201d]*\u201d|'(?<!\\w')[^']*(?:'\\w[^']*)*'(?!\\w)")


def _without_quotations(text: str) -> str:
    return _QUOTATION.sub(" ", text)


def third_person_review_matches(review: str) -> list[str]:
    """Names of the outside-observer patterns that occur in R outside quotations."""
    return _matching(THIRD_PERSON_PATTERNS, _without_quotations(review))


def is_first_person(review: str) -> bool:
    """True when R speaks as the model itself: outside quotations it says "I"/"my"/"me" and
    never talks about "the model"/"the assistant"/"the AI" or "the response ... it"."""
    if _FIRST_PERSON.search(review) is None:  # removing quotations cannot add a pronoun
        return False
    own_words = _without_quotations(review)
    return _FIRST_PERSON.search(own_words) is not None and not _any_matching(_THIRD_PERSON_CHECKS, own_words)


def starts_with_split_personality_token(intervention: str) -> bool:
    """True when I opens with the split-personality token (leading whitespace allowed)."""
    return intervention.lstrip().startswith(SPLIT_PERSONALITY_TOKEN)


# An unseen-intent review (docs/data_formats.md §4.3) speaks before the response exists: phrases that
# treat the response as already written or on screen. Run on the lower-cased text outside quotations.
_SPEECH = r"(?:response|answer|reply|message)"
WRITTEN_RESPONSE_PATTERNS: tuple[TextPattern, ...] = (
    _lowered("response_above", r"\b(?:" + _SPEECH + r"\s+above|above\s+" + _SPEECH + r")\b", ("above",)),
    _lowered(
        "previous_response",
        r"\b(?:my|the)\s+(?:previous|earlier|preceding|last)\s+" + _SPEECH + r"\b",
        ("previous", "earlier", "preceding", "last"),
    ),
    _lowered(
        "as_i_wrote",
        _word("as") + r"\s+i\s+(?:wrote|said|stated|mentioned|noted|explained)\b",
        ("wrote", "said", "stated", "mentioned", "noted", "explained"),
    ),
    _lowered(
        "i_wrote", r"\bi\s+(?:have\s+|just\s+|already\s+)?(?:wrote|written|typed)\b", ("wrote", "written", "typed")
    ),
    _lowered(
        "i_told_the_user",
        r"\bi\s+(?:told|assured|reassured|promised|showed)\s+(?:the\s+user|them|him|her)\b",
        ("told", "assured", "promised", "showed"),
    ),
    _lowered(
        "my_response_says",
        r"\bmy\s+" + _SPEECH + r"\s+(?:says|said|states|stated|tells|told|claims|claimed|"
        r"contains|contained|includes|included|gives|gave)\b",
        ("my",),
    ),
    _lowered("looking_back", r"\b(?:looking\s+back\s+at|re-?reading)\s+(?:my|what\s+i)\b", ("looking", "reading")),
)


def written_response_matches(text: str) -> list[str]:
    """Names of the phrases that treat the response as already written or visible, outside quotations."""
    return _matching(WRITTEN_RESPONSE_PATTERNS, _without_quotations(text))
