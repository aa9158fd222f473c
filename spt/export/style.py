"""Style features of a response S and a small classifier on them (docs/data_formats.md §6): the
"style of S" view of the export's shortcut measures, and the style-only baseline of the
off-policy detection task. The features see only the surface of the text (length, Markdown
headers, bold, bullets, numbered lists, emoji, ...), never its words, so a classifier on them that
beats the majority share shows a task solvable by formatting alone. The same features pick, for
an off-policy detection sample, another model's answer close in style to the trained model's own
(`style_distance`, export.off_policy). Reads and writes nothing.
"""

from __future__ import annotations

import re

import numpy as np

_LINE_PATTERNS = {
    "headers": re.compile(r"^\s{0,3}#{1,6}\s", re.MULTILINE),
    "bullets": re.compile(r"^\s*[-*+•]\s", re.MULTILINE),
    "numbered": re.compile(r"^\s*\d+[.)]\s", re.MULTILINE),
    "table rows": re.compile(r"^\s*\|.*\|\s*$", re.MULTILINE),
}
_INLINE_PATTERNS = {
    "bold": re.compile(r"\*\*[^*\n]+\*\*|__[^_\n]+__"),
    "emoji": re.compile("[\U0001f300-\U0001faff\u2600-\u27bf\u2b50\u2705\u274c]"),
    "code fences": re.compile(r"```"),
    "exclamations": re.compile(r"!"),
    "questions": re.compile(r"\?"),
}
FEATURES = ("characters", "words", "paragraphs", *_LINE_PATTERNS, *_INLINE_PATTERNS)


def style_features(text: str) -> list[float]:
    """log(1 + count) of each of FEATURES in `text` (the log keeps a long answer from dominating)."""
    counts = [len(text), len(text.split()), len([part for part in re.split(r"\n\s*\n", text) if part.strip()])]
    counts += [len(pattern.findall(text)) for pattern in _LINE_PATTERNS.values()]
    counts += [len(pattern.findall(text)) for pattern in _INLINE_PATTERNS.values()]
    return [float(np.log1p(count)) for count in counts]


class StyleClassifier:
    """L2-regularised logistic regression (one label against the rest, by gradient descent from
    zero: deterministic) on the standardised style features and their squares. Labels are
    sorted; a tie goes to the first."""

    STEPS, RATE, L2 = 500, 0.5, 1e-3

    def __init__(self, texts: list[str], labels: list[str]) -> None:
        self.labels = sorted(set(labels))
        raw = np.array([style_features(text) for text in texts])
        self.mean, self.scale = raw.mean(axis=0), raw.std(axis=0)
        self.scale[self.scale == 0] = 1.0
        x = self._design(raw)
        self.weights = np.zeros((len(self.labels), x.shape[1]))
        if len(self.labels) > 1:
            targets = np.array([[label == name for name in self.labels] for label in labels], dtype=float)
            for _ in range(self.STEPS):
                probabilities = 1 / (1 + np.exp(-x @ self.weights.T))
                gradient = (probabilities - targets).T @ x / len(x) + self.L2 * self.weights
                self.weights -= self.RATE * gradient

    def _design(self, raw: np.ndarray) -> np.ndarray:
        z = (raw - self.mean) / self.scale
        return np.hstack([np.ones((len(z), 1)), z, z**2])

    def predict_many(self, texts: list[str]) -> list[str]:
        scores = self._design(np.array([style_features(text) for text in texts])) @ self.weights.T
        return [self.labels[int(index)] for index in np.argmax(scores, axis=1)]  # argmax keeps the first tie


def style_distance(text: str, other: str) -> float:
    """Euclidean distance between the style features of two texts."""
    return float(np.linalg.norm(np.subtract(style_features(text), style_features(other))))
