"""Measured shortcut warnings of the training export (docs/data_formats.md §6): how well a simple
classifier predicts the flag P from one view of the sample alone, trained on the train split and
scored on the validation split, next to the majority-class share of validation.

Views (VIEWS): the system prompt as shown, T, I and S, each by multinomial naive Bayes on a bag of
lower-cased words with add-one smoothing (an empty text is the single word EMPTY_TEXT, so "the
system prompt is absent" is a feature like any other), and the style of S by logistic regression
on its style features alone (export.style). Each view is the text as the model sees it: S is
empty for an unseen-intent sample (layout unseen_intent), whose response the model never sees.
Both classifiers are deterministic. They are lower bounds: a view they cannot exploit may still
give the flag away to a stronger reader (the model being trained), so silence is not evidence
that a view is clean.

Uncertainty: samples cluster by item (the A and B samples of an item, several data models and
interventions per item), so intervals come from an item-level bootstrap: BOOTSTRAP_RESAMPLES
seeded resamples of the validation items with replacement, each item bringing all its samples;
the interval is the central 95% of the resampled accuracies. A view warns when the interval's
lower end is above the majority baseline and the accuracy beats the baseline by more than the
margin; beating the margin with an interval that reaches the baseline is a note (too few items to
tell). A view whose text is the same in every train and validation sample (the prompt view when
every prompt is removed) is constant by construction: it is marked, not scored as evidence.
Accuracy per variant and recall per flag come with the same resamples. Reads and writes nothing.
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np

from spt.export.style import StyleClassifier
from spt.shared_tools import UNSEEN_INTENT, VARIANTS

_WORD = re.compile(r"[a-z0-9']+")
EMPTY_TEXT = "<empty>"
STYLE_VIEW = "style of S"
# The text each classifier sees: the system prompt as the model sees it, T, the intervention, the response.
VIEWS = {"system prompt (visible)": "system_prompt", "T": "T", "I": "I", "S": "S", STYLE_VIEW: "S"}
# The views that must not predict an off-policy detection sample's flag: all but the words of S (its signal).
DETECTION_VIEWS = [view for view in VIEWS if view != "S"]
BOOTSTRAP_RESAMPLES = 1000
CV_FOLDS = 5
INTERVAL = (2.5, 97.5)
# Below this many validation items an item bootstrap has too few clusters for its interval to hold
# its stated coverage (it comes out too narrow), so a finding is a note, never a WARNING.
MIN_ITEMS_FOR_WARNING = 10


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower()) or [EMPTY_TEXT]


class NaiveBayes:
    """Multinomial naive Bayes over word counts, add-one smoothing."""

    def __init__(self, texts: list[str], labels: list[str]) -> None:
        self.labels = sorted(set(labels))
        self.prior = {label: math.log(labels.count(label) / len(labels)) for label in self.labels}
        counts = {label: Counter() for label in self.labels}
        for text, label in zip(texts, labels):
            counts[label].update(words(text))
        vocabulary = set().union(*counts.values())
        self.unseen = {label: -math.log(sum(counts[label].values()) + len(vocabulary)) for label in self.labels}
        self.log_likelihood = {
            label: {word: math.log(n + 1) + self.unseen[label] for word, n in counts[label].items()}
            for label in self.labels
        }

    def predict(self, text: str) -> str:
        def score(label: str) -> float:
            table, unseen = self.log_likelihood[label], self.unseen[label]
            return self.prior[label] + sum(table.get(word, unseen) for word in words(text))

        return max(self.labels, key=score)  # max keeps the first of equal scores

    def predict_many(self, texts: list[str]) -> list[str]:
        return [self.predict(text) for text in texts]


CLASSIFIERS: dict[str, Callable[[list[str], list[str]], Any]] = {STYLE_VIEW: StyleClassifier}


def majority_share(labels: list[str]) -> float:
    return Counter(labels).most_common(1)[0][1] / len(labels) if labels else 0.0


def visible_text(sample: dict, field: str) -> str:
    """`sample[field]` as the model sees it: an unseen-intent sample's S is not shown."""
    if field == "S" and sample.get("layout") == UNSEEN_INTENT:
        return ""
    return sample[field]


def item_key(sample: dict) -> tuple[str, int]:
    return sample["source_file"], sample["item_index"]


def correct_predictions(train: list[dict], validation: list[dict], view: str) -> np.ndarray:
    """Per validation sample, whether the view's classifier trained on `train` predicts its flag."""
    field = VIEWS[view]
    model = CLASSIFIERS.get(view, NaiveBayes)([visible_text(s, field) for s in train], [s["P"] for s in train])
    predicted = model.predict_many([visible_text(s, field) for s in validation])
    return np.array([guess == s["P"] for guess, s in zip(predicted, validation)], dtype=float)


def constant_view(samples: list[dict], view: str) -> bool:
    """True when every sample shows the view the same way (one text for every sample): nothing to learn."""
    return len({visible_text(s, VIEWS[view]) for s in samples}) <= 1


class ItemBootstrap:
    """Seeded resamples of the validation items (with replacement) as a weight per item and resample:
    every statistic of one validation set uses the same resamples."""

    def __init__(self, validation: list[dict], seed: int, resamples: int = BOOTSTRAP_RESAMPLES) -> None:
        items = sorted({item_key(s) for s in validation})
        index = {key: position for position, key in enumerate(items)}
        self.sample_item = np.array([index[item_key(s)] for s in validation])
        rng = np.random.default_rng(seed)
        self.weights = rng.multinomial(len(items), np.full(len(items), 1 / len(items)), size=resamples).astype(float)
        self.items = len(items)

    def share(self, hits: np.ndarray, among: np.ndarray) -> dict[str, Any]:
        """hits / among over the samples where `among` is 1, with its item-bootstrap interval (None where empty)."""
        per_item_hits = np.bincount(self.sample_item, weights=hits * among, minlength=self.items)
        per_item_total = np.bincount(self.sample_item, weights=among, minlength=self.items)
        total = per_item_total.sum()
        if not total:
            return {"value": None, "interval": None, "samples": 0}
        with np.errstate(invalid="ignore", divide="ignore"):
            resampled = (self.weights @ per_item_hits) / (self.weights @ per_item_total)
        low, high = np.nanpercentile(resampled, INTERVAL)
        return {
            "value": float(per_item_hits.sum() / total),
            "interval": [float(low), float(high)],
            "samples": int(total),
        }


def view_measure(correct: np.ndarray, validation: list[dict], bootstrap: ItemBootstrap) -> dict[str, Any]:
    everything = np.ones(len(validation))
    overall = bootstrap.share(correct, everything)
    by_variant = {
        letter: bootstrap.share(correct, np.array([s["variant"] == letter for s in validation], dtype=float))
        for letter in VARIANTS
    }
    by_flag = {
        flag: bootstrap.share(correct, np.array([s["P"] == flag for s in validation], dtype=float))
        for flag in sorted({s["P"] for s in validation})
    }
    return {
        "accuracy": overall["value"],
        "interval": overall["interval"],
        "accuracy_by_variant": by_variant,
        "recall_by_flag": by_flag,
    }


def shortcut_measures(train: list[dict], validation: list[dict], seed: int) -> dict[str, Any] | None:
    """Per view, the accuracy of its classifier on validation with the item-bootstrap interval, the
    accuracy per variant and the recall per flag, and the validation majority share; None when
    either split is empty (nothing to train on or to score). `seed` fixes the resamples."""
    if not train or not validation:
        return None
    bootstrap = ItemBootstrap(validation, seed)
    views = {view: view_measure(correct_predictions(train, validation, view), validation, bootstrap) for view in VIEWS}
    return {
        "train_samples": len(train),
        "validation_samples": len(validation),
        "validation_items": bootstrap.items,
        "bootstrap_resamples": BOOTSTRAP_RESAMPLES,
        "majority_baseline": majority_share([s["P"] for s in validation]),
        "accuracy": {view: measure["accuracy"] for view, measure in views.items()},
        "interval": {view: measure["interval"] for view, measure in views.items()},
        "accuracy_by_variant": {view: measure["accuracy_by_variant"] for view, measure in views.items()},
        "recall_by_flag": {view: measure["recall_by_flag"] for view, measure in views.items()},
        "constant_views": [view for view in VIEWS if constant_view(train + validation, view)],
    }


def cross_validated(samples: list[dict], view: str, seed: int, folds: int = CV_FOLDS) -> dict[str, Any] | None:
    """The view's accuracy over all `samples` by item-grouped k-fold cross-validation (every item's samples
    in one seeded fold; each fold scored by a classifier trained on the others), with the item-bootstrap
    interval of the pooled out-of-fold predictions: steadier than one small validation split."""
    items = sorted({item_key(s) for s in samples})
    if len(items) < folds:
        return None
    random.Random(f"{seed}:folds").shuffle(items)
    fold_of = {key: position % folds for position, key in enumerate(items)}
    correct = np.zeros(len(samples))
    for fold in range(folds):
        inside = [i for i, s in enumerate(samples) if fold_of[item_key(s)] == fold]
        train = [s for s in samples if fold_of[item_key(s)] != fold]
        correct[inside] = correct_predictions(train, [samples[i] for i in inside], view)
    bootstrap = ItemBootstrap(samples, seed)
    pooled = bootstrap.share(correct, np.ones(len(samples)))
    return {
        "folds": folds,
        "samples": len(samples),
        "items": len(items),
        "accuracy": pooled["value"],
        "interval": pooled["interval"],
        "majority_baseline": majority_share([s["P"] for s in samples]),
    }


def detection_measures(train: list[dict], validation: list[dict], seed: int) -> dict[str, Any] | None:
    """The shortcut measures of the off-policy detection samples (train -> validation), with the style-only
    baseline and naive Bayes on S also cross-validated over both splits (`cross_validated`)."""
    measures = shortcut_measures(train, validation, seed)
    if measures is not None:
        measures["cross_validated"] = {
            view: cross_validated(train + validation, view, seed) for view in (STYLE_VIEW, "S")
        }
    return measures


def sample_key(sample: dict) -> tuple:
    """A review sample's identity: its item, data model, variant and intervention."""
    return sample["source_file"], sample["item_index"], sample["model"], sample["variant"], sample["intervention_key"]


def before_and_after(
    before: dict[str, list[dict]], exported: dict[str, list[dict]], seed: int
) -> dict[str, dict[str, Any] | None]:
    """The shortcut measures before mitigation (classifiers trained on the unmitigated train split)
    and as exported (trained on the exported train split), both scored on ONE fixed validation set:
    the exported validation samples, as they were before mitigation and as exported (samples set
    aside by mitigation are in neither), with the same item resamples. `before`: copies of the
    splits' samples taken before the mitigations changed them."""
    original = {sample_key(s): s for s in before["validation"]}
    fixed = [s for s in exported["validation"] if sample_key(s) in original]
    return {
        "before mitigation": shortcut_measures(before["train"], [original[sample_key(s)] for s in fixed], seed),
        "as exported": shortcut_measures(exported["train"], fixed, seed),
    }


def measured_warnings(
    measures: dict[str, Any] | None, margin: float, when: str, views: list[str] | None = None
) -> list[str]:
    """A WARNING for every view (of `views`, default all) whose accuracy beats the majority baseline
    by more than `margin` and whose interval's lower end is above the baseline, on at least
    MIN_ITEMS_FOR_WARNING items; a note where the margin is beaten but the interval reaches the
    baseline or the items are too few. Constant views are skipped."""
    if measures is None:
        return []
    baseline, samples, items = (
        measures["majority_baseline"],
        measures["validation_samples"],
        measures["validation_items"],
    )
    lines = []
    for view in views or list(measures["accuracy"]):
        acc, (low, high) = measures["accuracy"][view], measures["interval"][view]
        if view in measures["constant_views"] or acc - baseline <= margin:
            continue
        classifier = "logistic regression on style features" if view == STYLE_VIEW else "naive Bayes"
        finding = (
            f"shortcut {when}: the flag is predictable from {view} alone: {classifier} scores {100 * acc:.1f}% "
            f"(95% item-bootstrap interval {100 * low:.1f}-{100 * high:.1f}%) on {samples} validation samples "
            f"of {items} items vs a majority baseline of {100 * baseline:.1f}% (margin "
            f"shortcut_warning_margin = {100 * margin:.0f} points)"
        )
        if items < MIN_ITEMS_FOR_WARNING:
            lines.append(
                f"note: {finding}; fewer than {MIN_ITEMS_FOR_WARNING} validation items: too few for the "
                "interval to tell a shortcut from chance"
            )
        else:
            lines.append(
                f"WARNING: {finding}"
                if low > baseline
                else f"note: {finding}; the interval reaches the baseline: too few validation items to tell from chance"
            )
    return lines


def detection_warnings(measures: dict[str, Any] | None, margin: float) -> list[str]:
    """measured_warnings for the detection samples' DETECTION_VIEWS (train -> validation), and for the
    style-only baseline cross-validated over both splits (the steadier figure)."""
    if measures is None:
        return []
    where = "in the off-policy detection samples"
    lines = measured_warnings(measures, margin, where, DETECTION_VIEWS)
    style = measures["cross_validated"][STYLE_VIEW]
    if style is not None:
        pooled = {
            "majority_baseline": style["majority_baseline"],
            "validation_samples": style["samples"],
            "validation_items": style["items"],
            "constant_views": [],
            "accuracy": {STYLE_VIEW: style["accuracy"]},
            "interval": {STYLE_VIEW: style["interval"]},
        }
        lines += measured_warnings(pooled, margin, f"{where}, cross-validated over train and validation")
    return lines
