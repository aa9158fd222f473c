"""Measured shortcut warnings of the training export (docs/data_formats.md §6): how well a simple
classifier predicts the flag P from one text of the sample alone, trained on the train split and
scored on the validation split, next to the majority-class share of validation.

The classifier is multinomial naive Bayes on a bag of lower-cased words with add-one smoothing;
an empty text is the single word EMPTY_TEXT, so "the system prompt is absent" is a feature like
any other. Each view is the text as the model sees it: S is empty for an unseen-intent sample
(layout unseen_intent), whose response the model never sees. It is deterministic (ties go to the
first flag in sorted order), so no seed is needed.

A view warns when its accuracy beats the baseline by more than the margin and that excess is
unlikely to be luck: the one-sided binomial probability of at least as many correct validation
samples from a classifier no better than the baseline must be below CHANCE_P_VALUE. On a small
validation split (the demo's 9 samples: 5 right vs a 44% baseline, p = 0.37) the excess is
reported as a note instead. Reads and writes nothing.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from typing import Any

from shared_tools import UNSEEN_INTENT

_WORD = re.compile(r"[a-z0-9']+")
EMPTY_TEXT = "<empty>"
# The texts each classifier sees: the system prompt as the model sees it, the intervention, the response.
VIEWS = {"system prompt (visible)": "system_prompt", "I": "I", "S": "S"}
CHANCE_P_VALUE = 0.05


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
        self.log_likelihood = {label: {word: math.log(n + 1) + self.unseen[label] for word, n in counts[label].items()}
                               for label in self.labels}

    def predict(self, text: str) -> str:
        def score(label: str) -> float:
            table, unseen = self.log_likelihood[label], self.unseen[label]
            return self.prior[label] + sum(table.get(word, unseen) for word in words(text))
        return max(self.labels, key=score)  # max keeps the first of equal scores


def majority_share(labels: list[str]) -> float:
    return Counter(labels).most_common(1)[0][1] / len(labels) if labels else 0.0


def visible_text(sample: dict, field: str) -> str:
    """`sample[field]` as the model sees it: an unseen-intent sample's S is not shown."""
    if field == "S" and sample.get("layout") == UNSEEN_INTENT:
        return ""
    return sample[field]


def accuracy(train: list[dict], validation: list[dict], field: str) -> float:
    model = NaiveBayes([visible_text(s, field) for s in train], [s["P"] for s in train])
    return sum(model.predict(visible_text(s, field)) == s["P"] for s in validation) / len(validation)


def shortcut_measures(train: list[dict], validation: list[dict]) -> dict[str, Any] | None:
    """Accuracy of each view's classifier on validation and the validation majority share;
    None when either split is empty (nothing to train on or to score)."""
    if not train or not validation:
        return None
    return {"train_samples": len(train), "validation_samples": len(validation),
            "majority_baseline": majority_share([s["P"] for s in validation]),
            "accuracy": {view: accuracy(train, validation, field) for view, field in VIEWS.items()}}


def chance_p_value(correct: int, samples: int, baseline: float) -> float:
    """P(at least `correct` of `samples` right) for a classifier right with probability `baseline`."""
    return sum(math.comb(samples, k) * baseline ** k * (1 - baseline) ** (samples - k)
               for k in range(correct, samples + 1))


def measured_warnings(measures: dict[str, Any] | None, margin: float, when: str) -> list[str]:
    """A WARNING for every view whose classifier beats the majority baseline by more than `margin`
    beyond chance (p < CHANCE_P_VALUE); a note where the margin is beaten but chance could explain it."""
    if measures is None:
        return []
    baseline, samples = measures["majority_baseline"], measures["validation_samples"]
    lines = []
    for view, acc in measures["accuracy"].items():
        if acc - baseline <= margin:
            continue
        p_value = chance_p_value(round(acc * samples), samples, baseline)
        finding = (f"shortcut {when}: the flag is predictable from {view} alone: naive Bayes scores {100 * acc:.1f}% "
                   f"on {samples} validation samples vs a majority baseline of {100 * baseline:.1f}% (margin "
                   f"shortcut_warning_margin = {100 * margin:.0f} points; chance p = {p_value:.2g})")
        lines.append(f"WARNING: {finding}" if p_value < CHANCE_P_VALUE else
                     f"note: {finding}, too few validation samples to tell from chance")
    return lines
