"""Off-policy detection samples of the training export (docs/data_formats.md §6) and the evaluation
file of on/off-policy rows (`off_policy_eval.json`, the input format of training/evaluate.py).

Whose answer is whose: the trained model is the data model of export.policy (config key
`trained_model_data_id`, or `base_model` when it is empty). Only its answers are ever labelled as
its own; data without its answers gets no detection sample (a one-line warning, not another
model's answer called "own").

The unit is a pair (item, variant X): the trained model's own usable answer S_X to variant X of one
item of a train/validation topic, shown with X's system prompt and T. A pair is eligible (`trainable`)
when it has at least one off-policy counterpart:
- other model: another model's usable answer to the same item and variant X that differs from S_X
  and is within the style radius of S_X (`style_radius`: the median style distance between the
  trained model's own A and B answers to one item, export.style), so that it could pass for the
  trained model's by formatting;
- other prompt: the trained model's own usable answer S_Y to the other variant Y of the item, when it
  differs from S_X and Y's system prompt is not X's: S_Y shown under X's prompt was written by the
  trained model, but not under the prompt it is shown with. Its style is the trained model's, so
  only the fit between the prompt and the answer can tell it from an own answer.
(The evaluation file below also takes the other models' answers outside the style radius.)
Usable: S is a non-empty string, the variant carries no stage-2 `error` and none of
UNUSABLE_ANSWER_TAGS (a cut-off or malformed answer would give the detector a reason to flag that
has nothing to do with whose answer it is). The review filters (tags_to_filter,
intervention_types) judge reviews, not answers, so they do not limit the pairs: an item whose
review samples were all filtered out still has its answers, and gets a split by the export's rule
(`item_splits`).

Per split, a seeded, exact share round(off_policy_detection_fraction x eligible pairs) is chosen;
each chosen pair yields two samples with the same T, system prompt and intervention: on-policy
(S = S_X, an on-policy review, P = PASS) and off-policy (P = FAIL) of one kind, other model (the
matched answer nearest in style) or other prompt, with a review written for that kind. The kinds
are balanced (`choose_pairs`), so that formatting alone (length, headers, bullets, ...) cannot tell
on from off: the export report measures that style-only baseline. Detection samples always
keep their system prompt: whether an answer is the one the model would have given depends on the
prompt it was given (remove_system_prompt_fraction applies to review samples only; the
detection intervention marks the task anyway). Interventions and reviews are drawn, seeded, from
the lists of prompts/off_policy_detection.md.

The evaluation file covers every eligible pair of the validation split (not only the chosen
ones): one on-policy row, one off-policy row per other model with a usable, different answer and
one for the other prompt where there is one, all with the first intervention of the prompt file.
Reads the prompt file (the answers come from the export's one read of the tagged files,
`add_answers`); writes nothing.
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from pathlib import Path
from statistics import median
from typing import Any, NamedTuple

from spt.export.policy import is_own_answer
from spt.export.selection import split_by_item
from spt.export.style import style_distance
from spt.prompt_templates import load_prompt, prompt_file
from spt.shared_tools import DETECTION_TASK, SPLIT_PERSONALITY_TOKEN, STANDARD_LAYOUT, VARIANTS
from spt.tagging.tags import GENERATION_EXCEEDED_TOKEN_LIMIT, MALFORMED_FIELDS, model_entries, model_slug, variant_id
from spt.utils import DataError, display_path

PROMPT_FILE = "off_policy_detection.md"
EVAL_FILE = "off_policy_eval.json"
DETECTION_KEY = "off_policy_detection"
UNUSABLE_ANSWER_TAGS = (GENERATION_EXCEEDED_TOKEN_LIMIT, MALFORMED_FIELDS)
OTHER_MODEL, OTHER_PROMPT = "other_model", "other_prompt"
# The share of the chosen pairs whose off-policy sample is another model's answer (the rest: the other prompt).
OTHER_MODEL_SHARE = 0.5
SECTIONS = {
    "interventions": "Interventions",
    "on": "On-policy reviews",
    OTHER_MODEL: "Off-policy reviews: another model's answer",
    OTHER_PROMPT: "Off-policy reviews: my answer to a different setup",
}
_HEADING = re.compile(r"^##\s+(.+?)\s*$", re.MULTILINE)


class Templates(NamedTuple):
    interventions: list[str]  # each starts with the split-personality token
    on: list[str]
    other_model: list[str]
    other_prompt: list[str]


def load_templates(relative: str = PROMPT_FILE) -> Templates:
    """The entries (`- ` lines) under each heading of SECTIONS; a missing or empty list is an error."""
    text = load_prompt(relative)
    where = display_path(prompt_file(relative))
    parts = _HEADING.split(text)
    sections = {title: body for title, body in zip(parts[1::2], parts[2::2])}
    lists = {}
    for name, title in SECTIONS.items():
        entries = [line[2:].strip() for line in sections.get(title, "").splitlines() if line.startswith("- ")]
        if not [entry for entry in entries if entry]:
            raise DataError(f"{where}: section '## {title}' missing or without '- ' entries")
        lists[name] = [entry for entry in entries if entry]
    return Templates(
        [SPLIT_PERSONALITY_TOKEN + entry for entry in lists["interventions"]],
        lists["on"],
        lists[OTHER_MODEL],
        lists[OTHER_PROMPT],
    )


def usable_answer(variant: Any) -> str | None:
    """The answer S of a variant, or None when it cannot serve as one (see the module docstring)."""
    if not isinstance(variant, dict) or "error" in variant:
        return None
    text, tags = variant.get("S"), variant.get("tags") or []
    if not isinstance(text, str) or not text.strip() or not isinstance(tags, list):
        return None
    return None if any(tag in tags for tag in UNUSABLE_ANSWER_TAGS) else text


class ItemAnswers(NamedTuple):
    topic: str
    prompts: dict[str, str]  # variant letter -> system prompt
    T: str
    answers: dict[str, dict[str, str]]  # variant letter -> model id -> usable S


class Pair(NamedTuple):
    source_file: str
    item_index: int
    topic: str
    model: str  # the trained model's stage-2 id as the data spells it
    letter: str  # X: the variant whose prompt is shown and whose own answer is on-policy
    others: list[str]  # other models with a usable answer to X that differs from the own one, sorted
    matched: list[str]  # those of `others` within the style radius, nearest in style first
    other_prompt: bool  # the own answer to the other variant can be shown under X's prompt


def add_answers(answers: dict[tuple[str, int], ItemAnswers], path: Path, document: Any, data_dir: Path) -> None:
    """Add to `answers`, keyed (source_file, item_index), the usable answers of every model to each
    item of one loaded tagged file (the export's own read of it: the files are read once)."""
    source_file = path.relative_to(data_dir).as_posix()
    for item_index, item, model_id, entry, _ in model_entries(document, display_path(path)):
        key = (source_file, item_index)
        if key not in answers:
            answers[key] = ItemAnswers(
                path.parent.name,
                {letter: item.get(letter) or "" for letter in VARIANTS},
                item.get("T") or "",
                {letter: {} for letter in VARIANTS},
            )
        for letter in VARIANTS:
            text = usable_answer(entry.get(letter))
            if text is not None and (letter == "A" or answers[key].prompts[letter]):
                answers[key].answers[letter][model_id] = text


def item_splits(
    review_items: dict[tuple[str, int, str], str],
    answers: dict[tuple[str, int], ItemAnswers],
    config: dict[str, Any],
    seed: int,
) -> dict[tuple[str, int, str], str]:
    """(file, index, topic) -> split for every item with answers: items with review samples keep
    their split; the others (all their review samples filtered out, or none) are split by the
    export's own rule (selection.split_by_item) among themselves, so the review split never moves."""
    extra = [
        {"source_file": f, "item_index": i, "topic": found.topic}
        for (f, i), found in sorted(answers.items())
        if (f, i, found.topic) not in review_items
    ]
    splits = split_by_item(extra, config, seed)
    return {
        **review_items,
        **{(s["source_file"], s["item_index"], s["topic"]): name for name, samples in splits.items() for s in samples},
    }


def own_model_id(answers: dict[tuple[str, int], ItemAnswers], config: dict[str, Any]) -> str | None:
    """The model id, as the data spells it, of the trained model's answers (export.policy), or None
    when the data holds none."""
    models = {model for found in answers.values() for by_model in found.answers.values() for model in by_model}
    return next((model for model in sorted(models) if is_own_answer(model, config)), None)


def _other_letter(letter: str) -> str:
    return "B" if letter == "A" else "A"


def style_radius(answers: dict[tuple[str, int], ItemAnswers], model: str) -> float:
    """How far apart in style the trained model's own answers are: the median style distance between its
    A and B answers to one item (infinite when no item has both: then nothing limits the other models)."""
    distances = [
        style_distance(found.answers["A"][model], found.answers["B"][model])
        for found in answers.values()
        if model in found.answers["A"] and model in found.answers["B"]
    ]
    return float(median(distances)) if distances else math.inf


def eligible_pairs(
    items: dict[tuple[str, int, str], str], answers: dict[tuple[str, int], ItemAnswers], model: str
) -> dict[str, list[Pair]]:
    """Per split, the pairs of the trained model `model` that have an off-policy counterpart (module
    docstring), sorted. `items`: (file, index, topic) -> split."""
    radius = style_radius(answers, model)
    pairs: dict[str, list[Pair]] = {}
    for (source_file, item_index, topic), split in sorted(items.items()):
        pairs.setdefault(split, [])
        found = answers.get((source_file, item_index))
        if found is None:
            continue
        for letter in VARIANTS:
            own = found.answers[letter].get(model)
            other = _other_letter(letter)
            own_other = found.answers[other].get(model)
            if own is None:
                continue
            others = sorted(m for m, text in found.answers[letter].items() if m != model and text != own)
            distance = {m: style_distance(own, found.answers[letter][m]) for m in others}
            matched = sorted((m for m in others if distance[m] <= radius), key=lambda m: (distance[m], m))
            other_prompt = own_other is not None and own_other != own and found.prompts[other] != found.prompts[letter]
            if others or other_prompt:
                pairs[split].append(Pair(source_file, item_index, topic, model, letter, others, matched, other_prompt))
    return pairs


def _sample(pair: Pair, found: ItemAnswers, kind: str, source: str, intervention: str, review: str) -> dict:
    """The sample of `pair` of one kind: "on", OTHER_MODEL (S of `source`) or OTHER_PROMPT (the own
    answer to the other variant, under the pair's prompt)."""
    stem = Path(pair.source_file).stem
    answer_letter = _other_letter(pair.letter) if kind == OTHER_PROMPT else pair.letter
    suffix = {"on": "on", OTHER_MODEL: f"off__{model_slug(source)}", OTHER_PROMPT: f"off__{OTHER_PROMPT}"}[kind]
    return {
        "id_string": f"{variant_id(stem, pair.item_index, pair.model, pair.letter)}__{DETECTION_KEY}__{suffix}",
        "id_numeric": None,
        "source_file": pair.source_file,
        "item_index": pair.item_index,
        "topic": pair.topic,
        "model": pair.model,
        "variant": answer_letter,
        "system_prompt": found.prompts[pair.letter],
        "system_prompt_source": pair.letter if answer_letter == pair.letter else f"{answer_letter}->{pair.letter}",
        "T": found.T,
        "S": found.answers[answer_letter][source],
        "intervention_key": DETECTION_KEY,
        "intervention_type": "split_personality",
        "I": intervention,
        "R": review,
        "P": "PASS" if kind == "on" else "FAIL",
        "policy": "on" if kind == "on" else "off",
        "task": DETECTION_TASK,
        "S_source_model": source,
        "layout": STANDARD_LAYOUT,
    }


def trainable(pair: Pair) -> bool:
    """A pair can give a training sample: another model's answer within the style radius, or the other prompt."""
    return bool(pair.matched) or pair.other_prompt


def choose_pairs(pairs: list[Pair], fraction: float, rng: random.Random) -> list[tuple[Pair, str]]:
    """The chosen pairs of one split with the kind of their off-policy sample, sorted: round(fraction x
    trainable pairs) in all; of them, (1 - OTHER_MODEL_SHARE) get OTHER_PROMPT (rounded down to an even
    count), as many A pairs as B pairs (so the
    answers shown off-policy come from A and B in the proportion of the on-policy ones; otherwise the
    style of B answers would tell off from on), the rest OTHER_MODEL. All drawn seeded. Where the data has
    too few pairs of one kind, the other kind fills the quota."""
    total = round(fraction * sum(map(trainable, pairs)))
    capable = {
        letter: [i for i, pair in enumerate(pairs) if pair.other_prompt and pair.letter == letter]
        for letter in VARIANTS
    }
    for indices in capable.values():
        rng.shuffle(indices)
    per_letter = min((total - round(OTHER_MODEL_SHARE * total)) // len(VARIANTS), *map(len, capable.values()))
    kinds = {index: OTHER_PROMPT for indices in capable.values() for index in indices[:per_letter]}
    others = [i for i, pair in enumerate(pairs) if pair.matched and i not in kinds]
    rng.shuffle(others)
    kinds.update((index, OTHER_MODEL) for index in others[: total - len(kinds)])
    spare = [i for indices in capable.values() for i in indices[per_letter:]]
    rng.shuffle(spare)
    kinds.update((index, OTHER_PROMPT) for index in spare[: total - len(kinds)])
    return [(pairs[index], kinds[index]) for index in sorted(kinds)]


def detection_samples(
    pairs: list[Pair],
    answers: dict[tuple[str, int], ItemAnswers],
    fraction: float,
    templates: Templates,
    seed: int,
    split: str,
) -> tuple[list[dict], dict[str, Any]]:
    """The detection samples of one split (an on and an off one per chosen pair) and their counts."""
    rng = random.Random(f"{seed}:off_policy:{split}")
    chosen = choose_pairs(pairs, fraction, rng)
    samples = []
    for pair, kind in chosen:
        found = answers[(pair.source_file, pair.item_index)]
        intervention = rng.choice(templates.interventions)
        source = pair.matched[0] if kind == OTHER_MODEL else pair.model
        samples += [
            _sample(pair, found, "on", pair.model, intervention, rng.choice(templates.on)),
            _sample(pair, found, kind, source, intervention, rng.choice(getattr(templates, kind))),
        ]
    off = [s for s in samples if s["policy"] == "off"]
    counts = {
        "pairs_eligible": sum(map(trainable, pairs)),
        "pairs_chosen": len(chosen),
        "on": len(samples) - len(off),
        "off": len(off),
        f"off_{OTHER_MODEL}": sum(s["S_source_model"] != s["model"] for s in off),
        f"off_{OTHER_PROMPT}": sum(s["S_source_model"] == s["model"] for s in off),
        "off_by_source_model": dict(
            sorted(Counter(s["S_source_model"] for s in off if s["S_source_model"] != s["model"]).items())
        ),
    }
    return samples, counts


def eval_rows(pairs: list[Pair], answers: dict[tuple[str, int], ItemAnswers], intervention: str) -> list[dict]:
    """Rows of off_policy_eval.json: per pair, the own answer (expected PASS), every other model's
    usable, different answer and the own answer to the other variant where eligible (expected FAIL)."""
    rows = []
    for pair in pairs:
        found = answers[(pair.source_file, pair.item_index)]
        kinds = [
            ("on", pair.model),
            *((OTHER_MODEL, model) for model in pair.others),
            *([(OTHER_PROMPT, pair.model)] if pair.other_prompt else []),
        ]
        for kind, source in kinds:
            sample = _sample(pair, found, kind, source, intervention, "")
            rows.append(
                {
                    "sample_id": sample["id_string"],
                    "condition": DETECTION_TASK,
                    "expected_flag": sample["P"],
                    "system_prompt": sample["system_prompt"],
                    "prompt": sample["T"],
                    "response": sample["S"],
                    "intervention": intervention,
                    "task": DETECTION_TASK,
                    "policy": sample["policy"],
                    "off_kind": "" if kind == "on" else kind,
                    "S_source_model": source,
                    "data_model": pair.model,
                    "topic": pair.topic,
                    "variant": sample["variant"],
                    "system_prompt_source": sample["system_prompt_source"],
                    "source_file": pair.source_file,
                    "item_index": pair.item_index,
                }
            )
    return rows
