"""Three-class sentiment (positive / neutral / negative) from a shipped linear model.

Inference needs numpy only: the model file (``models/sentiment.npz``) holds the feature
vocabulary, one weight row per feature and class, the biases and the valence lexicon used for
the lexicon features. Training (``cxm.text.train``) uses scikit-learn and writes that file; both
sides build features with :func:`features`, so what is trained is exactly what runs.

Features of one text (lower-cased, numbers dropped):

* word unigrams and bigrams inside a sentence;
* negation: up to ``NEGATION_WINDOW`` words after a negator ("not", "never", "n't", "no", …),
  stopped early by punctuation or a contrast word, become ``NOT_<word>``, and their lexicon
  valence flips and shrinks (×-0.74, VADER's factor) — so "not good" is learnt apart from "good";
* contrast: in a sentence with "but"/"however"/"yet", words before the last such word count
  ×0.5 and words after it ×1.5 ("the food was fine but the service was awful" leans on the
  service), as VADER does;
* two lexicon features, the summed positive and negative valence (VADER lexicon, MIT) of the
  words: they carry polarity for words the small training set never saw, which is what makes
  the model hold up on an unseen domain;
* ``!`` counts.

The feature vector is L2-normalised over the features the model knows, then scored with a
multinomial logistic regression. ``score`` = P(positive) - P(negative), in [-1, 1].
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

LABELS: tuple[str, str, str] = ("negative", "neutral", "positive")
MODEL_PATH = Path(__file__).resolve().parent / "models" / "sentiment.npz"
FORMAT_VERSION = 1

NEGATION_WINDOW = 3
NEGATED_VALENCE_FACTOR = -0.74  # VADER's N_SCALAR
BEFORE_CONTRAST = 0.5
AFTER_CONTRAST = 1.5
LEXICON_SCALE = 4.0  # VADER valences run from -4 to +4

NEGATORS = frozenset({
    "not", "no", "never", "nor", "neither", "nobody", "nothing", "none", "nowhere", "cannot",
    "without", "hardly", "barely", "scarcely", "dont", "doesnt", "didnt", "isnt", "wasnt",
    "arent", "werent", "wont", "wouldnt", "cant", "couldnt", "shouldnt", "havent", "hasnt",
    "hadnt", "aint",
})
CONTRAST_WORDS = frozenset({"but", "however", "yet"})
EXCLAMATION_MARK = "!"
SENTENCE_END = frozenset({".", EXCLAMATION_MARK, "?"})
CLAUSE_BREAK = frozenset({",", ";", ":"})

# Words with an internal apostrophe are kept whole ("don't", "it's"); numbers are dropped (order
# numbers and prices say nothing about sentiment); "!" and clause punctuation are kept as tokens
# because they end a negation scope or a sentence.
_TOKEN_RE = re.compile(r"[a-z]+(?:'[a-z]+)*|[.!?,;:]")
_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "`": "'"})

LEX_POSITIVE = "__lex_positive__"
LEX_NEGATIVE = "__lex_negative__"
EXCLAMATION = "__exclamation__"


def tokenize(text: str) -> list[str]:
    return _TOKEN_RE.findall(text.lower().translate(_APOSTROPHES))


def _is_negator(token: str) -> bool:
    return token.endswith("n't") or token.replace("'", "") in NEGATORS


def _sentences(tokens: list[str]) -> Iterable[list[str]]:
    sentence: list[str] = []
    for token in tokens:
        if token in SENTENCE_END:
            if token == EXCLAMATION_MARK:
                sentence.append(token)
            if sentence:
                yield sentence
            sentence = []
        else:
            sentence.append(token)
    if sentence:
        yield sentence


def features(text: str, lexicon: dict[str, float]) -> dict[str, float]:
    """The raw (not yet normalised) feature values of one text."""
    values: dict[str, float] = {}

    def add(key: str, amount: float) -> None:
        values[key] = values.get(key, 0.0) + amount

    for sentence in _sentences(tokenize(text)):
        contrast_at = max(
            (i for i, token in enumerate(sentence) if token in CONTRAST_WORDS), default=-1)
        negation_left = 0
        previous = ""
        for i, token in enumerate(sentence):
            if token == EXCLAMATION_MARK:
                add(EXCLAMATION, 1.0)
                continue
            if token in CLAUSE_BREAK:
                negation_left = 0
                previous = ""
                continue
            if contrast_at < 0:
                weight = 1.0
            elif i < contrast_at:
                weight = BEFORE_CONTRAST
            elif i > contrast_at:
                weight = AFTER_CONTRAST
            else:  # the contrast word itself
                weight = 1.0
                negation_left = 0
            negated = negation_left > 0
            add(f"NOT_{token}" if negated else token, weight)
            if previous:
                add(f"{previous} {token}", weight)
            previous = token
            valence = lexicon.get(token, 0.0)
            if valence:
                if negated:
                    valence *= NEGATED_VALENCE_FACTOR
                add(LEX_POSITIVE if valence > 0 else LEX_NEGATIVE,
                    abs(valence) / LEXICON_SCALE * weight)
            if _is_negator(token):
                negation_left = NEGATION_WINDOW
            elif negated:
                negation_left -= 1
    return values


@dataclass(frozen=True)
class SentimentResult:
    label: str  # one of LABELS
    score: float  # P(positive) - P(negative), in [-1, 1]
    probabilities: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class SentimentModel:
    """A linear model over :func:`features`; ``weights`` has one row per feature, one column per
    label in ``labels`` order."""

    vocabulary: dict[str, int]
    weights: npt.NDArray[np.float32]
    bias: npt.NDArray[np.float32]
    labels: tuple[str, ...]
    lexicon: dict[str, float]
    metadata: dict[str, Any] = field(default_factory=dict)

    def vector(self, text: str) -> tuple[list[int], npt.NDArray[np.float64]]:
        """Indices and L2-normalised values of the features of ``text`` this model knows."""
        indices: list[int] = []
        values: list[float] = []
        for key, value in features(text, self.lexicon).items():
            index = self.vocabulary.get(key)
            if index is not None:
                indices.append(index)
                values.append(value)
        array = np.asarray(values, dtype=np.float64)
        norm = math.sqrt(float(array @ array)) if values else 0.0
        return indices, (array / norm if norm > 0 else array)

    def logits(self, text: str) -> npt.NDArray[np.float64]:
        indices, values = self.vector(text)
        if not indices:
            return self.bias.astype(np.float64)
        result: npt.NDArray[np.float64] = values @ self.weights[indices] + self.bias
        return result

    def probabilities(self, text: str) -> npt.NDArray[np.float64]:
        logits = self.logits(text)
        exp = np.exp(logits - logits.max())
        result: npt.NDArray[np.float64] = exp / exp.sum()
        return result

    def classify(self, text: str) -> SentimentResult:
        probs = self.probabilities(text)
        by_label = {label: float(p) for label, p in zip(self.labels, probs, strict=True)}
        score = by_label.get("positive", 0.0) - by_label.get("negative", 0.0)
        return SentimentResult(
            label=self.labels[int(np.argmax(probs))],
            score=round(max(-1.0, min(1.0, score)), 4),
            probabilities={label: round(p, 4) for label, p in by_label.items()},
        )

    def save(self, path: Path) -> None:
        keys = sorted(self.vocabulary, key=self.vocabulary.__getitem__)
        words = sorted(self.lexicon)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            np.savez_compressed(
                handle,
                format_version=np.asarray(FORMAT_VERSION),
                vocabulary=np.asarray(keys, dtype=np.str_),
                weights=self.weights.astype(np.float32),
                bias=self.bias.astype(np.float32),
                labels=np.asarray(self.labels, dtype=np.str_),
                lexicon_words=np.asarray(words, dtype=np.str_),
                lexicon_valences=np.asarray([self.lexicon[w] for w in words], dtype=np.float32),
                metadata=np.asarray(json.dumps(self.metadata, sort_keys=True)),
            )

    @classmethod
    def load(cls, path: Path) -> SentimentModel:
        with np.load(path, allow_pickle=False) as data:
            version = int(data["format_version"])
            if version != FORMAT_VERSION:
                raise ValueError(f"{path}: model format {version}, this code reads "
                                 f"{FORMAT_VERSION}; retrain with `python -m cxm.text.train`")
            vocabulary = {str(key): i for i, key in enumerate(data["vocabulary"].tolist())}
            lexicon = {
                str(word): float(valence)
                for word, valence in zip(data["lexicon_words"].tolist(),
                                         data["lexicon_valences"].tolist(), strict=True)
            }
            return cls(
                vocabulary=vocabulary,
                weights=np.ascontiguousarray(data["weights"], dtype=np.float32),
                bias=np.asarray(data["bias"], dtype=np.float32),
                labels=tuple(str(label) for label in data["labels"].tolist()),
                lexicon=lexicon,
                metadata=json.loads(str(data["metadata"])),
            )


@functools.cache
def load_model(path: Path = MODEL_PATH) -> SentimentModel:
    """The shipped model, read once per process (and per path)."""
    if not path.exists():
        raise FileNotFoundError(
            f"sentiment model missing at {path}; build it with "
            "`python -m cxm.text.train --data <shared data dir>`")
    return SentimentModel.load(path)


def classify(text: str) -> SentimentResult:
    return load_model().classify(text)


def classify_many(texts: Sequence[str]) -> list[SentimentResult]:
    model = load_model()
    return [model.classify(text) for text in texts]
