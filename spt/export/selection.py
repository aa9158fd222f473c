"""Which samples of the tagged stage-3 data the training export keeps (docs/data_formats.md §6), with the
count remaining after every selection stage, and their split between train and validation
(seeded, by item). The samples of held-out topics (by default every topic of the data outside
train_topics and validation_topics) pass the same stages and are kept apart, for the held-out-topic
evaluation file. Reads the tagged files it is given; writes nothing.

Refused (DataError, one line): a part of a file that is not a JSON object, an untagged sample,
a sample with malformed fields but no `malformed_fields` tag (tagged by an older tagger), and
a selection of the config that matches nothing (with what the data has instead).
"""

from __future__ import annotations

import random
import sys
from collections import Counter
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any, NamedTuple

from tqdm import tqdm

from spt import utils
from spt.export.decisions import TOPIC_STAGE, dropped_record
from spt.export.provenance import intervention_generation
from spt.shared_tools import FLAGS, STANDARD_LAYOUT, UNSEEN_INTENT, VARIANTS
from spt.tagging.tags import (
    MALFORMED_FIELDS,
    TAG_ORDER,
    malformed_intervention_fields,
    malformed_variant_fields,
    model_entries,
    require_object,
)
from spt.training_filters import filter_hits, topic_selected
from spt.utils import DataError, display_path
from spt.verification.verdict import sample_provenance

COMPLETE_SAMPLES = "complete samples (flag PASS/FAIL/AMBIGUOUS, all texts)"


def stage_order(config: dict[str, Any]) -> list[str]:
    """The selection stages in the order they apply (the rows of the export report)."""
    return [
        "all interventions",
        "data_models",
        TOPIC_STAGE,
        "intervention_types",
        COMPLETE_SAMPLES,
        *(f"tag {tag}" for tag in config["tags_to_filter"]),
    ]


class StageCounts:
    """Samples remaining after each selection stage, in total and per topic/variant/flag."""

    def __init__(self) -> None:
        self.stages: dict[str, dict[str, Any]] = {}

    def add(self, stage: str, topic: str, variant: str, flag: Any) -> None:
        counts = self.stages.setdefault(
            stage, {"total": 0, "topic": Counter(), "variant": Counter(), "flag": Counter()}
        )
        counts["total"] += 1
        counts["topic"][topic] += 1
        counts["variant"][variant] += 1
        counts["flag"][str(flag)] += 1

    def total(self, stage: str) -> int:
        return self.stages[stage]["total"] if stage in self.stages else 0

    def topics(self, stage: str) -> set[str]:
        return set(self.stages[stage]["topic"]) if stage in self.stages else set()

    def as_json(self, stage_order: list[str]) -> list[dict[str, Any]]:
        rows = []
        for stage in stage_order:
            counts = self.stages.get(stage, {"total": 0, "topic": {}, "variant": {}, "flag": {}})
            rows.append(
                {
                    "stage": stage,
                    "remaining": counts["total"],
                    **{key: dict(sorted(counts[key].items())) for key in ("topic", "variant", "flag")},
                }
            )
        return rows


def _string_fields(values: dict[str, Any]) -> bool:
    return all(isinstance(value, str) for value in values.values())


def _tag_list(value: Any, where: str) -> list:
    if not isinstance(value, list) or not all(isinstance(tag, str) for tag in value):
        raise DataError(f"{where}: field 'tags' must be a list of tag names")
    unknown = [tag for tag in value if tag not in TAG_ORDER]
    if unknown:
        raise DataError(
            f"{where}: tag {unknown[0]!r} is not one the tagger writes (a hand edit?); "
            "rerun scripts/tag_stage_3_data.py"
        )
    return value


class Found(NamedTuple):
    """One intervention of a tagged file, with where it sits."""

    where: str  # file and JSON path, for error messages
    item_index: int
    item: dict
    model_id: str
    letter: str
    variant: dict
    key: str
    intervention: dict


def _interventions(document: Any, where: str) -> Iterator[Found]:
    """Every intervention of a loaded tagged file. A part that is not a JSON object (an item,
    its inferences, a model entry, a variant, its interventions, an intervention) is an error
    naming it: such data is never silently skipped."""
    for item_index, item, model_id, model_entry, model_where in model_entries(document, where):
        for letter in VARIANTS:
            if model_entry.get(letter) is None:
                continue
            variant = require_object(model_entry[letter], f"{model_where}.{letter}")
            interventions = variant.get("interventions") or {}
            for key, intervention in require_object(interventions, f"{model_where}.{letter}.interventions").items():
                intervention_where = f"{model_where}.{letter}.interventions[{key!r}]"
                yield Found(
                    intervention_where,
                    item_index,
                    item,
                    model_id,
                    letter,
                    variant,
                    key,
                    require_object(intervention, intervention_where),
                )


class Selection:
    """The walk over the tagged files: the kept samples (in file order), the count remaining
    after each stage, the tag drops, and what the data offers where a stage matches nothing."""

    def __init__(self, config: dict[str, Any], takes_topic: Callable[[str], bool]) -> None:
        self.config = config
        self.takes_topic = takes_topic  # the topics whose samples this selection keeps
        self.samples: list[dict] = []
        self.stage_counts = StageCounts()
        self.individual_drops: Counter = Counter()
        self.cumulative_drops: Counter = Counter()
        self.models_found: set[str] = set()
        self.keys_found: set[str] = set()  # intervention keys of data_models' answers in the selected topics
        self.dropped: list[dict] = []  # the decision record of every intervention a stage removed

    def read_file(self, path: Path, data_dir: Path) -> Any:
        """Take every intervention of one tagged file; returns the loaded file."""
        document = utils.read_json(path)
        self.take(path, data_dir, document)
        return document

    def take(self, path: Path, data_dir: Path, document: Any) -> None:
        """Take every intervention of one loaded tagged file."""
        topic = path.parent.name
        source_file = path.relative_to(data_dir).as_posix()
        for found in _interventions(document, display_path(path)):
            self.models_found.add(found.model_id)
            self.add(found, topic, source_file)

    def add(self, found: Found, topic: str, source_file: str) -> None:
        """Take one intervention through the stages of `stage_order`; keep it as a sample if it passes."""
        config, intervention, variant, letter = self.config, found.intervention, found.variant, found.letter
        flag = intervention.get("P")

        def drop(stage: str, filters_hit: list[str] | None = None) -> None:
            self.dropped.append(
                dropped_record(
                    intervention,
                    source_file,
                    topic,
                    found.item_index,
                    found.model_id,
                    letter,
                    found.key,
                    stage,
                    filters_hit,
                )
            )

        self.stage_counts.add("all interventions", topic, letter, flag)
        if found.model_id not in config["data_models"]:
            return drop("data_models")
        self.stage_counts.add("data_models", topic, letter, flag)
        if not self.takes_topic(topic):
            return drop(TOPIC_STAGE)
        self.stage_counts.add(TOPIC_STAGE, topic, letter, flag)
        self.keys_found.add(found.key)
        if found.key not in config["intervention_types"]:
            return drop("intervention_types")
        self.stage_counts.add("intervention_types", topic, letter, flag)
        item = found.item
        texts = {
            "system prompt": item.get(letter),
            "T": item.get("T"),
            "S": variant.get("S"),
            "I": intervention.get("I"),
            "R": intervention.get("R"),
        }
        if flag not in FLAGS or not _string_fields(texts):
            return drop(COMPLETE_SAMPLES)  # a failed generation (P = ERROR) or a sample missing a text
        self.stage_counts.add(COMPLETE_SAMPLES, topic, letter, flag)
        if "tags" not in intervention or "id_string" not in intervention:
            raise DataError(f"{found.where}: not tagged (run tag_stage_3_data.py first)")
        tags = _tag_list(intervention["tags"], found.where)
        variant_tags = _tag_list(variant.get("tags", []), found.where.rpartition(".interventions")[0])
        _refuse_stale_tags(found, tags, variant_tags)
        self.count_tag_filters(tags, variant_tags, topic, letter, flag)
        # topic and key were checked above (training_filters.kept_by_filters)
        hits = filter_hits(tags, variant_tags, config)
        if hits:
            return drop(f"tag {hits[0]}", hits)
        family = intervention.get("intervention_type") or found.key.partition("__")[0]
        self.samples.append(
            {
                "id_string": intervention["id_string"],
                "id_numeric": intervention.get("id_numeric"),
                "source_file": source_file,
                "item_index": found.item_index,
                "topic": topic,
                "model": found.model_id,
                "variant": letter,
                "system_prompt": item[letter],
                "system_prompt_source": letter,
                "T": item["T"],
                "S": variant["S"],
                "intervention_key": found.key,
                "intervention_type": family,
                "I": intervention["I"],
                "R": intervention["R"],
                "P": flag,
                # The config check (training_config) lets unseen_intent keys through only with unseen_intent true.
                "layout": UNSEEN_INTENT if family == UNSEEN_INTENT else STANDARD_LAYOUT,
                "_other_prompt": item.get("B" if letter == "A" else "A") or "",
                "verification": sample_provenance(item, found.model_id),
                "_generation": intervention_generation(intervention),
            }
        )

    def count_tag_filters(self, tags: list[str], variant_tags: list[str], topic: str, letter: str, flag: str) -> None:
        hits = filter_hits(tags, variant_tags, self.config)
        self.individual_drops.update(hits)
        if hits:
            self.cumulative_drops[hits[0]] += 1
        for tag in self.config["tags_to_filter"]:
            if tag in hits:
                break
            self.stage_counts.add(f"tag {tag}", topic, letter, flag)

    def tag_drops(self) -> dict[str, dict[str, int]]:
        return {
            tag: {"individual": self.individual_drops[tag], "cumulative": self.cumulative_drops[tag]}
            for tag in self.config["tags_to_filter"]
        }

    def check_selections(self, data_dir: Path) -> None:
        """A selection of the config that matches nothing is an error naming it and what the data
        has instead (an empty export would replace a good one)."""
        config, where = self.config, display_path(data_dir)
        models = config["data_models"]
        for model in models:
            if model not in self.models_found:
                found = ", ".join(sorted(self.models_found)) or "none"
                raise DataError(
                    f"config key 'data_models': model {model!r} not found in {where} (models found: {found})"
                )
        topics = self.stage_counts.topics("data_models")
        for key in ("train_topics", "validation_topics"):
            if config[key] and not topics & set(config[key]):
                raise DataError(
                    f"config key {key!r}: {config[key]!r} match nothing in {where} for data_models "
                    f"{models!r}; the data has {', '.join(sorted(topics)) or 'no interventions of them'}"
                )
        if not self.stage_counts.total("intervention_types"):
            raise DataError(
                f"config key 'intervention_types': {config['intervention_types']!r} match nothing in "
                f"{where} for data_models {models!r} in the train/validation topics; the data has "
                f"{', '.join(sorted(self.keys_found))}"
            )

    def check_samples_left(self, data_dir: Path) -> None:
        """Selected interventions that are all incomplete, or all dropped by the tag filters, are an error."""
        config, where = self.config, display_path(data_dir)
        if not self.stage_counts.total(COMPLETE_SAMPLES):
            raise DataError(
                f"{where}: none of the {self.stage_counts.total('intervention_types')} selected "
                "interventions is complete (flag PASS/FAIL/AMBIGUOUS and all texts); nothing to export"
            )
        if not self.samples:
            counts = ", ".join(
                f"{tag}: {self.individual_drops[tag]}" for tag in config["tags_to_filter"] if self.individual_drops[tag]
            )
            raise DataError(
                f"config key 'tags_to_filter' drops all {self.stage_counts.total(COMPLETE_SAMPLES)} "
                f"complete samples in {where} ({counts}); nothing to export"
            )


def _refuse_stale_tags(found: Found, tags: list[str], variant_tags: list[str]) -> None:
    """Malformed fields without the malformed_fields tag: tagged before the rule existed."""
    problems = malformed_intervention_fields(found.intervention) + malformed_variant_fields(found.variant)
    if problems and MALFORMED_FIELDS not in tags + variant_tags:
        raise DataError(
            f"{found.where}: {problems[0]} but no {MALFORMED_FIELDS} tag (tagged by an older "
            "tagger); run tag_stage_3_data.py again"
        )


class Collected(NamedTuple):
    selection: Selection  # the train/validation topics' samples, with their stage counts
    heldout: list[dict]  # the held-out topics' samples, through the same stages
    dropped: list[dict]  # the decision records of the interventions either walk dropped (export.decisions)


def collect_samples(
    files: list[Path],
    data_dir: Path,
    config: dict[str, Any],
    also: Callable[[Path, Any], None] | None = None,
    heldout_topics: Collection[str] | None = None,
) -> Collected:
    """Walk the tagged files once (`also(path, document)` is called with each loaded file, for work
    that needs the same files); stops with DataError where a selection of the config matches nothing
    or no sample is left. Held out: the samples of `heldout_topics`, by default of every topic outside
    train_topics and validation_topics."""
    selection = Selection(config, lambda topic: topic_selected(topic, config))
    heldout = Selection(
        config,
        (lambda topic: not topic_selected(topic, config))
        if heldout_topics is None
        else (lambda topic: topic in heldout_topics),
    )
    for path in tqdm(files, unit="file", desc="reading", file=sys.stderr):
        document = selection.read_file(path, data_dir)
        heldout.take(path, data_dir, document)
        if also is not None:
            also(path, document)
    selection.check_selections(data_dir)
    selection.check_samples_left(data_dir)
    return Collected(selection, heldout.samples, selection.dropped + heldout.dropped)


def split_by_item(samples: list[dict], config: dict[str, Any], seed: int) -> dict[str, list[dict]]:
    """Train/validation by item. Items of topics in both lists: a seeded, exact share
    round(validation_fraction x items) goes to validation; topics in one list go there."""
    items = sorted({(s["source_file"], s["item_index"], s["topic"]) for s in samples})
    shared = [item for item in items if item[2] in config["train_topics"] and item[2] in config["validation_topics"]]
    quota = round(config["validation_fraction"] * len(shared))
    validation_items = set(random.Random(f"{seed}:split").sample(shared, quota))
    validation_items |= {item for item in items if item[2] not in config["train_topics"]}
    splits: dict[str, list[dict]] = {"train": [], "validation": []}
    for sample in samples:
        item = (sample["source_file"], sample["item_index"], sample["topic"])
        splits["validation" if item in validation_items else "train"].append(sample)
    return splits
