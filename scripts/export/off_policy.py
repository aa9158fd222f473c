"""Off-policy detection samples of the training export (docs/data_formats.md §6) and the evaluation
file of on/off-policy pairs (`off_policy_eval.json`, the input format of training/evaluate.py).

The unit is a pair (item, variant, data model): the data model's own answer S to one variant of
one item of a train/validation topic. The review filters (tags_to_filter, intervention_types)
judge reviews, not answers, so they do not limit the pairs: an item whose review samples were
all filtered out still has its answers, and gets a split by the export's rule (`item_splits`).
A pair is eligible when the data model's own answer is usable, and at least one other model's answer to the same item and variant is usable
and differs from it. Usable: S is a non-empty string, the variant carries no stage-2 `error`
and none of UNUSABLE_ANSWER_TAGS (a cut-off or malformed answer would give the detector a
reason to flag that has nothing to do with whose answer it is). The other tags (disagreement,
consensus, ...) judge reviews, not answers, and do not matter here.

Per split, a seeded, exact share round(off_policy_detection_fraction x eligible pairs) is chosen;
each chosen pair yields two samples with the same system prompt and T: on-policy (S = the data
model's own answer, an on-policy review, P = PASS) and off-policy (S = the answer of a source
model drawn, seeded, among the others with a usable answer; an off-policy review, P = FAIL).
Interventions and reviews are drawn, seeded, from the lists of prompts/off_policy_detection.md;
the on and off sample of a pair share one intervention (and the system prompt and T), so
neither I nor the system prompt tells them apart: only S does.

The evaluation file covers every eligible pair of the validation split (not only the chosen
ones): one on-policy row and one off-policy row per other model with a usable answer, all with
the first intervention of the prompt file. Reads the prompt file (the answers come from the
export's one read of the tagged files, `add_answers`); writes nothing.
"""
from __future__ import annotations

import random
import re
from collections import Counter
from pathlib import Path
from typing import Any, NamedTuple

from export.selection import split_by_item
from prompt_templates import load_prompt, prompt_file
from shared_tools import DETECTION_TASK, SPLIT_PERSONALITY_TOKEN, STANDARD_LAYOUT, VARIANTS
from tagging.tags import GENERATION_EXCEEDED_TOKEN_LIMIT, MALFORMED_FIELDS, model_entries, model_slug, variant_id
from utils import DataError, display_path

PROMPT_FILE = "off_policy_detection.md"
EVAL_FILE = "off_policy_eval.json"
DETECTION_KEY = "off_policy_detection"
UNUSABLE_ANSWER_TAGS = (GENERATION_EXCEEDED_TOKEN_LIMIT, MALFORMED_FIELDS)
SECTIONS = {"interventions": "Interventions", "on": "On-policy reviews", "off": "Off-policy reviews"}
_HEADING = re.compile(r"^##\s+(.+?)\s*$", re.MULTILINE)


class Templates(NamedTuple):
    interventions: list[str]  # each starts with the split-personality token
    on: list[str]
    off: list[str]


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
    return Templates([SPLIT_PERSONALITY_TOKEN + entry for entry in lists["interventions"]], lists["on"], lists["off"])


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
    model: str
    letter: str
    others: list[str]  # models with a usable answer that differs from the model's own, sorted


def add_answers(answers: dict[tuple[str, int], ItemAnswers], path: Path, document: Any, data_dir: Path) -> None:
    """Add to `answers`, keyed (source_file, item_index), the usable answers of every model to each
    item of one loaded tagged file (the export's own read of it: the files are read once)."""
    source_file = path.relative_to(data_dir).as_posix()
    for item_index, item, model_id, entry, _ in model_entries(document, display_path(path)):
        key = (source_file, item_index)
        if key not in answers:
            answers[key] = ItemAnswers(path.parent.name, {letter: item.get(letter) or "" for letter in VARIANTS},
                                       item.get("T") or "", {letter: {} for letter in VARIANTS})
        for letter in VARIANTS:
            text = usable_answer(entry.get(letter))
            if text is not None and (letter == "A" or answers[key].prompts[letter]):
                answers[key].answers[letter][model_id] = text


def item_splits(review_items: dict[tuple[str, int, str], str], answers: dict[tuple[str, int], ItemAnswers],
                config: dict[str, Any], seed: int) -> dict[tuple[str, int, str], str]:
    """(file, index, topic) -> split for every item with answers: items with review samples keep
    their split; the others (all their review samples filtered out, or none) are split by the
    export's own rule (selection.split_by_item) among themselves, so the review split never moves."""
    extra = [{"source_file": f, "item_index": i, "topic": found.topic} for (f, i), found in sorted(answers.items())
             if (f, i, found.topic) not in review_items]
    splits = split_by_item(extra, config, seed)
    return {**review_items, **{(s["source_file"], s["item_index"], s["topic"]): name
                               for name, samples in splits.items() for s in samples}}


def eligible_pairs(items: dict[tuple[str, int, str], str], answers: dict[tuple[str, int], ItemAnswers],
                   data_models: list[str]) -> dict[str, list[Pair]]:
    """Per split, the eligible pairs (module docstring), sorted. `items`: (file, index, topic) -> split."""
    pairs: dict[str, list[Pair]] = {}
    for (source_file, item_index, topic), split in sorted(items.items()):
        pairs.setdefault(split, [])
        found = answers.get((source_file, item_index))
        if found is None:
            continue
        for model in data_models:
            for letter in VARIANTS:
                own = found.answers[letter].get(model)
                others = sorted(other for other, text in found.answers[letter].items() if other != model and text != own)
                if own is not None and others:
                    pairs[split].append(Pair(source_file, item_index, topic, model, letter, others))
    return pairs


def _sample(pair: Pair, found: ItemAnswers, policy: str, source: str, intervention: str, review: str) -> dict:
    stem = Path(pair.source_file).stem
    suffix = "on" if policy == "on" else f"off__{model_slug(source)}"
    return {
        "id_string": f"{variant_id(stem, pair.item_index, pair.model, pair.letter)}__{DETECTION_KEY}__{suffix}",
        "id_numeric": None, "source_file": pair.source_file, "item_index": pair.item_index, "topic": pair.topic,
        "model": pair.model, "variant": pair.letter, "system_prompt": found.prompts[pair.letter],
        "system_prompt_source": pair.letter, "T": found.T, "S": found.answers[pair.letter][source],
        "intervention_key": DETECTION_KEY, "intervention_type": "split_personality", "I": intervention, "R": review,
        "P": "PASS" if policy == "on" else "FAIL", "policy": policy, "task": DETECTION_TASK, "S_source_model": source,
        "layout": STANDARD_LAYOUT,
    }


def detection_samples(pairs: list[Pair], answers: dict[tuple[str, int], ItemAnswers], fraction: float,
                      templates: Templates, seed: int, split: str,
                      remove_fraction: float = 0.0) -> tuple[list[dict], dict[str, Any]]:
    """The detection samples of one split (an on and an off one per chosen pair) and their counts.
    An exact, seeded share `remove_fraction` of the chosen pairs (remove_system_prompt_fraction)
    lose their system prompt, both samples of the pair alike, so that a visible prompt does not
    mark the detection task where the review samples have theirs removed."""
    rng = random.Random(f"{seed}:off_policy:{split}")
    chosen = sorted(rng.sample(range(len(pairs)), round(fraction * len(pairs))))
    removed = set(random.Random(f"{seed}:off_policy_remove:{split}").sample(chosen, round(remove_fraction * len(chosen))))
    samples = []
    for index in chosen:
        pair = pairs[index]
        found = answers[(pair.source_file, pair.item_index)]
        source, intervention = rng.choice(pair.others), rng.choice(templates.interventions)
        pair_samples = [_sample(pair, found, "on", pair.model, intervention, rng.choice(templates.on)),
                        _sample(pair, found, "off", source, intervention, rng.choice(templates.off))]
        if index in removed:
            for sample in pair_samples:
                sample.update(system_prompt="", system_prompt_source="none")
        samples += pair_samples
    off = [s for s in samples if s["policy"] == "off"]
    counts = {"pairs_eligible": len(pairs), "pairs_chosen": len(chosen), "pairs_prompt_removed": len(removed),
              "on": len(samples) - len(off), "off": len(off),
              "on_by_model": dict(sorted(Counter(s["model"] for s in samples if s["policy"] == "on").items())),
              "off_by_source_model": dict(sorted(Counter(s["S_source_model"] for s in off).items()))}
    return samples, counts


def eval_rows(pairs: list[Pair], answers: dict[tuple[str, int], ItemAnswers], intervention: str) -> list[dict]:
    """Rows of off_policy_eval.json: per pair, the own answer (expected PASS) and every other
    usable answer (expected FAIL)."""
    rows = []
    for pair in pairs:
        found = answers[(pair.source_file, pair.item_index)]
        for source in [pair.model, *pair.others]:
            sample = _sample(pair, found, "on" if source == pair.model else "off", source, intervention, "")
            rows.append({"sample_id": sample["id_string"], "condition": DETECTION_TASK, "expected_flag": sample["P"],
                         "system_prompt": sample["system_prompt"], "prompt": sample["T"], "response": sample["S"],
                         "intervention": intervention, "task": DETECTION_TASK, "policy": sample["policy"],
                         "S_source_model": source, "data_model": pair.model, "topic": pair.topic,
                         "variant": pair.letter, "source_file": pair.source_file, "item_index": pair.item_index})
    return rows


def policy_counts(samples: list[dict]) -> dict[str, int]:
    """On/off-policy samples of a split, the off ones by origin (A<->B prompt swap, response swap)."""
    off = [s for s in samples if s["policy"] == "off"]
    response_swaps = sum(s["task"] == DETECTION_TASK for s in off)
    return {"on": len(samples) - len(off), "off": len(off), "off_ab_prompt_swap": len(off) - response_swaps,
            "off_response_swap": response_swaps}
