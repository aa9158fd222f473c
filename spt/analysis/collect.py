"""The single pass over tagged stage-3 data behind `analyze_stage_3.py` (analysis.run).

`collect(files, detailed=, per_topic_limit=)` reads every file once (orjson), walks
items → models → variants → interventions, and keeps only compact counters (keyed by topic,
model, intervention key, variant, flag, tags, …), the output-token lists, the tasks for the
near-duplicate search, the per-batch flag counts, a bounded number of example payloads per
category and topic, and the sanity-check results keyed by file and item. Nothing of a file is kept once
it has been walked, so memory stays small on large data sets. Reads the given files only.
"""

from __future__ import annotations

import multiprocessing
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

from tqdm import tqdm

from spt import utils
from spt.review_checks import starts_with_split_personality_token
from spt.shared_tools import PUBLISHED_INTERVENTION_TYPES, TOKEN_INTERVENTION_TYPES, split_intervention_key
from spt.tagging.tags import (
    OUTPUT_TOKEN_LIMIT,
    consensus,
    malformed_intervention_fields,
    malformed_variant_fields,
    variant_id,
)

LOW_CONFIDENCE_MAX = 2
HIGH_CONFIDENCE_MIN = 4
TEXT_EXCERPT_CHARS = 300
S_EXCERPT_CHARS = 400
FILES_PER_PART = 4  # files per worker task when collecting in parallel

SANITY_CHECKS: dict[str, str] = {
    "file_readable": "the file is valid JSON with a `data` list of items",
    "topic_matches_folder": "each item's metadata.alignment_issue_type equals its topic folder",
    "both_families_per_version": "each variant has both published intervention families for every version "
    "it has them in (the opt-in unseen_intent family is not required)",
    "split_personality_token": "every split_personality and unseen_intent I starts with <split-personality-token>",
    "fields_well_formed": "each item's inferences, model entries, variants, interventions and each intervention are "
    "objects, and their fields have the documented types (the malformed_fields tag's rule)",
}

# Example categories filled during the pass (the others are derived afterwards).
PASS_CATEGORIES: dict[str, str] = {
    "b_passes": "B-variant interventions flagged PASS (the biased prompt did not make the response fail)",
    "a_fails": "A-variant interventions flagged FAIL (the neutral prompt's response failed)",
    "low_confidence": f"interventions with confidence <= {LOW_CONFIDENCE_MAX}",
    "token_cutoffs": f"responses that reached the {OUTPUT_TOKEN_LIMIT}-token limit (probably cut off)",
    "a_b_inversions": "model responses whose consensus is FAIL on A and PASS on B",
    "disagreeing_interventions": "variants whose interventions disagree (at least one PASS and one FAIL)",
    "disagreeing_high_confidence": "variants with a PASS and a FAIL that both have confidence "
    f">= {HIGH_CONFIDENCE_MIN}",
}


class InterventionRow(NamedTuple):
    """The fields of one intervention that the statistics count (the cube's key). Tags are
    kept as tuples so that tag counts, co-occurrence and the training filters can all be
    derived afterwards from the (few) distinct combinations instead of per intervention."""

    topic: str
    model: str
    key: str
    variant: str
    difficulty: str
    flag: str
    confidence: Any
    difficulty_internal: Any
    difficulty_external: Any
    focus_agrees: Any  # True / False / None (a focus missing)
    tags: tuple  # the intervention's tags
    variant_tags: tuple  # its variant's tags


@dataclass
class ExampleSink:
    """A bounded number of example payloads per (category, topic), and the true counts."""

    per_topic_limit: int
    examples: dict[str, list[dict]] = field(default_factory=lambda: defaultdict(list))
    totals: Counter = field(default_factory=Counter)  # (category, topic) -> count

    def offer(self, category: str, topic: str, build: Callable[[], dict]) -> None:
        self.totals[category, topic] += 1
        if self.totals[category, topic] <= self.per_topic_limit:
            self.examples[category].append(build())

    def merge(self, other: ExampleSink) -> None:
        """Add the examples of a later part of the data (same result as one serial pass)."""
        for category, examples in other.examples.items():
            shown = Counter(example["topic"] for example in self.examples[category])
            for example in examples:
                if shown[example["topic"]] < self.per_topic_limit:
                    self.examples[category].append(example)
                    shown[example["topic"]] += 1
        self.totals.update(other.totals)


@dataclass
class Collection:
    """Everything the reports need, gathered in one pass."""

    files_read: int = 0
    untagged: int = 0  # interventions without a `tags` field (the tagger has not run on them)
    cube: Counter = field(default_factory=Counter)  # InterventionRow -> count
    focus_pairs: Counter = field(default_factory=Counter)  # (topic, intended, selected)
    variants: Counter = field(default_factory=Counter)  # (topic, model, variant, cut_off)
    variant_tags: Counter = field(default_factory=Counter)  # (topic, model, variant, tag)
    output_tokens: dict = field(default_factory=lambda: defaultdict(list))  # (topic, model, variant) -> [int]
    items: Counter = field(default_factory=Counter)  # (topic, difficulty, has_b)
    model_entries: Counter = field(default_factory=Counter)  # (topic, model, has_b)
    consensus: Counter = field(default_factory=Counter)  # (topic, model, consensus A, consensus B)
    batches: dict = field(default_factory=dict)  # file -> {"topic", "batch_id", "flags": Counter((variant, P))}
    tasks: dict = field(default_factory=lambda: defaultdict(list))  # topic -> [(file, index, T)]
    sanity_counts: Counter = field(default_factory=Counter)  # check -> number of checks made
    sanity_failures: list = field(default_factory=list)  # dicts keyed by file and item
    examples: ExampleSink = None

    def merge(self, other: Collection) -> None:
        """Add what a worker collected from a later part of the files."""
        self.files_read += other.files_read
        self.untagged += other.untagged
        for name in (
            "cube",
            "focus_pairs",
            "variants",
            "variant_tags",
            "items",
            "model_entries",
            "consensus",
            "sanity_counts",
        ):
            getattr(self, name).update(getattr(other, name))
        for name in ("output_tokens", "tasks"):
            mine = getattr(self, name)
            for key, values in getattr(other, name).items():
                mine[key].extend(values)
        self.batches.update(other.batches)
        self.sanity_failures.extend(other.sanity_failures)
        self.examples.merge(other.examples)


# ------------------------------------------------------------------------------ helpers


def excerpt(text: Any, limit: int, *, tail: bool = False) -> str:
    """`text` cut to `limit` characters (head and tail when `tail`, for cut-off responses)."""
    text = text if isinstance(text, str) else ""
    if len(text) <= limit:
        return text
    if tail:
        half = limit // 2
        return text[:half] + " […] " + text[-half:]
    return text[:limit] + " […]"


def intended_focuses(metadata: dict) -> list[str]:
    raw = metadata.get("intended_review_focus")
    if not isinstance(raw, str):
        return []
    return [part.strip() for part in raw.split(",") if part.strip()]


def _focus_agrees(intended: list[str], selected: Any) -> bool | None:
    if not intended or not isinstance(selected, str) or not selected:
        return None
    return selected in intended


def _tags(entry: dict) -> list[str]:
    tags = entry.get("tags")
    return [tag for tag in tags if isinstance(tag, str)] if isinstance(tags, list) else []


def _scalar(value: Any) -> Any:
    """`value` when it can be counted (a JSON scalar); malformed values count as their repr."""
    return value if value is None or isinstance(value, (str, int, float)) else repr(value)


def _reached_token_limit(tokens: Any) -> bool:
    """The response used all OUTPUT_TOKEN_LIMIT tokens (probably cut off)."""
    return isinstance(tokens, int) and tokens >= OUTPUT_TOKEN_LIMIT


# ------------------------------------------------------------------------------ the pass


class _FileWalker:
    """Walks one parsed file into the collection."""

    def __init__(self, coll: Collection, detailed: bool):
        self.coll = coll
        self.detailed = detailed

    def fail(
        self,
        check: str,
        file: str,
        detail: str,
        item: int | None = None,
        model: str | None = None,
        variant: str | None = None,
    ) -> None:
        self.coll.sanity_failures.append(
            {"check": check, "file": file, "item_index": item, "model": model, "variant": variant, "detail": detail}
        )

    def walk_file(self, path: Path) -> None:
        coll = self.coll
        topic = path.parent.name
        file = utils.display_path(path)
        coll.sanity_counts["file_readable"] += 1
        try:
            doc = utils.read_json(path)
        except utils.DataError as exc:
            self.fail("file_readable", file, str(exc))
            return
        data = doc.get("data") if isinstance(doc, dict) else None
        if not isinstance(data, list):
            self.fail("file_readable", file, "no `data` list at the top level")
            return
        coll.files_read += 1
        batch = {"topic": topic, "batch_id": doc.get("batch_id") or path.stem, "flags": Counter()}
        coll.batches[file] = batch
        for index, item in enumerate(data):
            if not isinstance(item, dict):
                self.fail("file_readable", file, f"data[{index}] is not an object", index)
                continue
            self.walk_item(topic, file, path.stem, index, item, batch["flags"])

    def walk_item(self, topic: str, file: str, stem: str, index: int, item: dict, batch_flags: Counter) -> None:
        coll = self.coll
        metadata = item.get("metadata") if isinstance(item.get("metadata"), dict) else {}
        difficulty = metadata.get("difficulty") if isinstance(metadata.get("difficulty"), str) else "unknown"
        has_b = bool(item.get("B"))
        coll.items[topic, difficulty, has_b] += 1
        coll.sanity_counts["topic_matches_folder"] += 1
        if metadata.get("alignment_issue_type") != topic:
            self.fail(
                "topic_matches_folder",
                file,
                f"alignment_issue_type is {metadata.get('alignment_issue_type')!r}, folder is {topic!r}",
                index,
            )
        if isinstance(item.get("T"), str):
            coll.tasks[topic].append((file, index, item["T"]))
        intended = intended_focuses(metadata)
        for model, entry in self.well_formed_entries(file, index, item):
            coll.model_entries[topic, model, "B" in entry] += 1
            variant_flags: dict[str, list[str]] = {}
            context = {
                "topic": topic,
                "file": file,
                "stem": stem,
                "index": index,
                "item": item,
                "model": model,
                "difficulty": difficulty,
            }
            for variant, response in entry.items():
                if isinstance(response, dict) and isinstance(response.get("interventions"), dict):
                    for problem in malformed_variant_fields(response):
                        self.fail("fields_well_formed", file, problem, index, model, variant)
                    variant_flags[variant] = self.walk_variant(context, variant, response, intended, batch_flags)
            if "A" in variant_flags and "B" in variant_flags:
                a, b = consensus(variant_flags["A"]), consensus(variant_flags["B"])
                coll.consensus[topic, model, a, b] += 1
                if a == "FAIL" and b == "PASS":
                    coll.examples.offer(
                        "a_b_inversions",
                        topic,
                        lambda: {
                            **self.variant_ref(context, None),
                            "A": self.variant_example(context, "A", entry["A"]),
                            "B": self.variant_example(context, "B", entry["B"]),
                        },
                    )

    def well_formed_entries(self, file: str, index: int, item: dict) -> list[tuple[str, dict]]:
        """The item's (model, entry) pairs whose entry is an object; every part that should be an
        object and is not (inferences, a model entry, a variant, its interventions) is a failure."""
        self.coll.sanity_counts["fields_well_formed"] += 1
        inferences = item.get("inferences")
        if inferences is None:
            return []
        if not isinstance(inferences, dict):
            self.fail("fields_well_formed", file, f"inferences is {type(inferences).__name__}, not an object", index)
            return []
        entries = []
        for model, entry in inferences.items():
            if not isinstance(entry, dict):
                self.fail("fields_well_formed", file, f"inferences[{model!r}] is not an object", index, model)
                continue
            entries.append((model, entry))
            for variant, response in entry.items():
                interventions = response.get("interventions") if isinstance(response, dict) else None
                if not isinstance(response, dict) or not isinstance(interventions, (dict, type(None))):
                    self.fail(
                        "fields_well_formed",
                        file,
                        "the variant or its interventions is not an object",
                        index,
                        model,
                        variant,
                    )
        return entries

    def walk_variant(
        self, context: dict, variant: str, response: dict, intended: list[str], batch_flags: Counter
    ) -> list[str]:
        coll = self.coll
        topic, model, file, index = context["topic"], context["model"], context["file"], context["index"]
        variant_tags = tuple(_tags(response))
        tokens = response.get("output_tokens")
        cut_off = _reached_token_limit(tokens)
        coll.variants[topic, model, variant, cut_off] += 1
        if isinstance(tokens, int):
            coll.output_tokens[topic, model, variant].append(tokens)
        for tag in variant_tags:
            coll.variant_tags[topic, model, variant, tag] += 1
        if cut_off:
            coll.examples.offer("token_cutoffs", topic, lambda: self.variant_example(context, variant, response))

        flags: list[str] = []
        versions: dict[str, set[str]] = defaultdict(set)
        high_confidence_flags: set[str] = set()
        for key, intervention in response["interventions"].items():
            if not isinstance(intervention, dict):
                self.fail("fields_well_formed", file, f"intervention {key!r} is not an object", index, model, variant)
                continue
            for problem in malformed_intervention_fields(intervention):
                self.fail("fields_well_formed", file, f"{key}: {problem}", index, model, variant)
            try:
                family, version = split_intervention_key(key)
                if family in PUBLISHED_INTERVENTION_TYPES:  # the opt-in unseen_intent family is not required
                    versions[version].add(family)
            except ValueError:
                family = intervention.get("intervention_type")
            flag = intervention.get("P") if isinstance(intervention.get("P"), str) else "missing"
            flags.append(flag)
            batch_flags[variant, flag] += 1
            confidence = _scalar(intervention.get("confidence"))
            if isinstance(confidence, int) and confidence >= HIGH_CONFIDENCE_MIN and flag in ("PASS", "FAIL"):
                high_confidence_flags.add(flag)
            selected = intervention.get("selected_review_focus")
            coll.untagged += "tags" not in intervention
            coll.cube[
                InterventionRow(
                    topic,
                    model,
                    key,
                    variant,
                    context["difficulty"],
                    flag,
                    confidence,
                    _scalar(intervention.get("detection_difficulty_internal")),
                    _scalar(intervention.get("detection_difficulty_external")),
                    _focus_agrees(intended, selected),
                    tuple(_tags(intervention)),
                    variant_tags,
                )
            ] += 1
            if intended and isinstance(selected, str):
                coll.focus_pairs[topic, ",".join(intended), selected] += 1
            if family in TOKEN_INTERVENTION_TYPES:
                coll.sanity_counts["split_personality_token"] += 1
                text = intervention.get("I")
                if not (isinstance(text, str) and starts_with_split_personality_token(text)):
                    self.fail(
                        "split_personality_token",
                        file,
                        f"{key}: I does not start with the token",
                        index,
                        model,
                        variant,
                    )
            build = partial(self.intervention_example, context, variant, response, key, intervention)
            if variant == "B" and flag == "PASS":
                coll.examples.offer("b_passes", topic, build)
            if variant == "A" and flag == "FAIL":
                coll.examples.offer("a_fails", topic, build)
            if isinstance(confidence, int) and confidence <= LOW_CONFIDENCE_MAX:
                coll.examples.offer("low_confidence", topic, build)

        for version, families in sorted(versions.items()):
            coll.sanity_counts["both_families_per_version"] += 1
            missing = [family for family in PUBLISHED_INTERVENTION_TYPES if family not in families]
            if missing:
                self.fail(
                    "both_families_per_version", file, f"{version}: no {', '.join(missing)}", index, model, variant
                )
        if "PASS" in flags and "FAIL" in flags:
            coll.examples.offer(
                "disagreeing_interventions", topic, lambda: self.variant_example(context, variant, response)
            )
        if high_confidence_flags == {"PASS", "FAIL"}:
            coll.examples.offer(
                "disagreeing_high_confidence", topic, lambda: self.variant_example(context, variant, response)
            )
        return flags

    # -------------------------------------------------------------------- example payloads

    def variant_ref(self, context: dict, variant: str | None) -> dict:
        item = context["item"]
        ref = {
            "variant_id": variant_id(context["stem"], context["index"], context["model"], variant),
            "file": context["file"],
            "item_index": context["index"],
            "topic": context["topic"],
            "model": context["model"],
            "difficulty": context["difficulty"],
            "T": item.get("T") if self.detailed else excerpt(item.get("T"), TEXT_EXCERPT_CHARS),
        }
        if variant:
            ref["variant"] = variant
        if self.detailed:
            ref.update(A=item.get("A"), B=item.get("B"), metadata=item.get("metadata"))
        return ref

    def _response_fields(self, response: dict) -> dict:
        tokens = response.get("output_tokens")
        text = response.get("S")
        return {
            "S": text if self.detailed else excerpt(text, S_EXCERPT_CHARS, tail=_reached_token_limit(tokens)),
            "output_tokens": tokens,
            "variant_tags": _tags(response),
        }

    def _intervention_fields(self, key: str, intervention: dict) -> dict:
        fields = {
            "intervention": key,
            "id_string": intervention.get("id_string"),
            "I": intervention.get("I"),
            "R": intervention.get("R"),
            "P": intervention.get("P"),
            "confidence": intervention.get("confidence"),
            "selected_review_focus": intervention.get("selected_review_focus"),
            "tags": _tags(intervention),
        }
        if self.detailed:
            fields["thought_process"] = intervention.get("thought_process")
        return fields

    def intervention_example(self, context: dict, variant: str, response: dict, key: str, intervention: dict) -> dict:
        return {
            **self._intervention_fields(key, intervention),
            **self.variant_ref(context, variant),
            **self._response_fields(response),
        }

    def variant_example(self, context: dict, variant: str, response: dict) -> dict:
        interventions = response.get("interventions") or {}
        return {
            **self.variant_ref(context, variant),
            **self._response_fields(response),
            "flags": {key: value.get("P") for key, value in interventions.items() if isinstance(value, dict)},
            "interventions": [
                self._intervention_fields(key, value) for key, value in interventions.items() if isinstance(value, dict)
            ],
        }


def _collect_part(task: tuple[list[Path], bool, int]) -> Collection:
    files, detailed, per_topic_limit = task
    coll = Collection(examples=ExampleSink(per_topic_limit))
    walker = _FileWalker(coll, detailed)
    for path in files:
        walker.walk_file(path)
    return coll


def collect(files: list[Path], *, detailed: bool, per_topic_limit: int, jobs: int = 1) -> Collection:
    """Read `files` once and gather everything the reports need. With `jobs` > 1 the files
    are split into consecutive parts read by worker processes and merged in file order, so
    the result is the same as a serial pass."""
    parts = [files[i : i + FILES_PER_PART] for i in range(0, len(files), FILES_PER_PART)]
    tasks = [(part, detailed, per_topic_limit) for part in parts]
    coll = Collection(examples=ExampleSink(per_topic_limit))
    with tqdm(total=len(files), desc="analysing", unit="file", disable=None) as progress:
        if jobs > 1 and len(parts) > 1:
            context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
            with context.Pool(min(jobs, len(parts)), initializer=utils.ignore_interrupts) as pool:
                for part, result in zip(parts, pool.imap(_collect_part, tasks)):
                    coll.merge(result)
                    progress.update(len(part))
        else:
            for part, task in zip(parts, tasks):
                coll.merge(_collect_part(task))
                progress.update(len(part))
    return coll
