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
* ``!`` counts;
* a static sentence embedding (format 2): the text is split into WordPiece tokens by the
  all-MiniLM-L6-v2 tokenizer (``models/tokenizer.json``, read with the ``tokenizers`` library) and
  the tokens' static vectors (``models/static_embeddings.npz``) are averaged and L2-normalised.
  The vectors were distilled at training time from all-MiniLM-L6-v2 (Apache-2.0): every
  vocabulary token run through the transformer alone, mean-pooled, PCA-reduced, stored as int8
  with one scale per dimension (see :func:`cxm.text.train.distill_static_embeddings`). They give
  words the training sentences never contained ("tasty", "bland") a position near words they did.
  Negation-aware pooling (format 3): tokens of the words in a negation's scope — exactly the
  words the sparse side marks ``NOT_<word>`` — are left out of the average ("Not bad at all, I
  would recommend it." is pooled as "Not, I would recommend it."), so the embedding never
  reads a negated word as its plain self.

The sparse feature vector is L2-normalised over the features the model knows; the embedding is
appended (×``embedding_weight``) and the whole is scored with a multinomial logistic
regression. ``score`` = P(positive) - P(negative), in [-1, 1].
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

from cxm.text.transformer import LABELS as TRANSFORMER_LABELS
from cxm.text.transformer import TransformerClassifier
from cxm.text.transformer import load as load_transformer

LABELS: tuple[str, str, str] = ("negative", "neutral", "positive")
MODELS_DIR = Path(__file__).resolve().parent / "models"
MODEL_PATH = MODELS_DIR / "sentiment.npz"
EMBEDDINGS_PATH = MODELS_DIR / "static_embeddings.npz"
TOKENIZER_PATH = MODELS_DIR / "tokenizer.json"
# 2: optional static-embedding block (``dense_weights``); 3: same layout, but the embedding
# leaves out the words in a negation's scope — a format-2 model was trained without that.
FORMAT_VERSION = 3
EMBEDDINGS_FORMAT_VERSION = 1

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


def _normalise(text: str) -> str:
    """Lower-cased, apostrophes unified, and as long as ``text`` (so that character offsets
    stay valid for the embedding tokenizer's offsets); the rare character whose lower case is
    longer ("İ") is left as it is."""
    lowered = text.lower()
    if len(lowered) != len(text):
        lowered = "".join(ch.lower() if len(ch.lower()) == 1 else ch for ch in text)
    return lowered.translate(_APOSTROPHES)


def tokenize(text: str) -> list[str]:
    return _TOKEN_RE.findall(_normalise(text))


def _is_negator(token: str) -> bool:
    return token.endswith("n't") or token.replace("'", "") in NEGATORS


Span = tuple[int, int]  # character offsets [start, end) of a word in the text


def _sentences(matches: Iterable[re.Match[str]]) -> Iterable[list[tuple[str, Span]]]:
    sentence: list[tuple[str, Span]] = []
    for match in matches:
        token = match.group()
        if token in SENTENCE_END:
            if token == EXCLAMATION_MARK:
                sentence.append((token, match.span()))
            if sentence:
                yield sentence
            sentence = []
        else:
            sentence.append((token, match.span()))
    if sentence:
        yield sentence


def features(text: str, lexicon: dict[str, float]) -> dict[str, float]:
    """The raw (not yet normalised) feature values of one text."""
    return analyse(text, lexicon)[0]


def analyse(text: str, lexicon: dict[str, float]) -> tuple[dict[str, float], list[Span]]:
    """The raw feature values of one text and the character spans of the words in a negation's
    scope (the words that became ``NOT_<word>``): the static sentence embedding leaves those
    out (:meth:`StaticEmbeddings.sentence_vector`), so "not bad" is not averaged as "bad"."""
    values: dict[str, float] = {}
    negated_spans: list[Span] = []

    def add(key: str, amount: float) -> None:
        values[key] = values.get(key, 0.0) + amount

    for sentence in _sentences(_TOKEN_RE.finditer(_normalise(text))):
        contrast_at = max(
            (i for i, (token, _) in enumerate(sentence) if token in CONTRAST_WORDS), default=-1)
        negation_left = 0
        previous = ""
        for i, (token, span) in enumerate(sentence):
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
            if negated:
                negated_spans.append(span)
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
    return values, negated_spans


class StaticEmbeddings:
    """One static vector per WordPiece token id of the shipped tokenizer.

    ``vectors`` is int8 ``(vocabulary size, dims)``; a row times ``scale`` is the token's vector.
    Needs ``tokenizers`` (not onnxruntime: the transformer ran at training time only)."""

    def __init__(self, vectors: npt.NDArray[np.int8], scale: npt.NDArray[np.float32],
                 tokenizer_path: Path = TOKENIZER_PATH,
                 metadata: dict[str, Any] | None = None) -> None:
        from tokenizers import Tokenizer

        self.vectors = vectors
        self.scale = scale.astype(np.float32)
        self.metadata = dict(metadata or {})
        self.tokenizer_path = tokenizer_path
        self._tokenizer = Tokenizer.from_file(str(tokenizer_path))
        # The file pads/truncates to 128 for the transformer; a bag of vectors needs neither.
        self._tokenizer.no_padding()
        self._tokenizer.no_truncation()
        if self._tokenizer.get_vocab_size() != vectors.shape[0]:
            raise ValueError(f"{tokenizer_path}: {self._tokenizer.get_vocab_size()} tokens, "
                             f"embeddings have {vectors.shape[0]} rows")

    @property
    def dims(self) -> int:
        return int(self.vectors.shape[1])

    def token_ids(self, text: str) -> list[int]:
        ids: list[int] = self._tokenizer.encode(text, add_special_tokens=False).ids
        return ids

    def sentence_vector(self, text: str,
                        skip: Sequence[Span] = ()) -> npt.NDArray[np.float32]:
        """Mean of the token vectors, L2-normalised (zeros for a text without tokens).

        ``skip``: character spans of ``text`` whose tokens are left out — the words in a
        negation's scope (:func:`analyse`), so that "not bad" does not average to "bad"."""
        if skip:
            encoding = self._tokenizer.encode(text, add_special_tokens=False)
            skipped = {position for start, end in skip for position in range(start, end)}
            ids = [token_id for token_id, (start, _) in zip(encoding.ids, encoding.offsets,
                                                            strict=True)
                   if start not in skipped]
        else:
            ids = self.token_ids(text)
        if not ids:
            return np.zeros(self.dims, dtype=np.float32)
        vector: npt.NDArray[np.float32] = (
            self.vectors[ids].sum(axis=0, dtype=np.float32) * self.scale)
        norm = float(np.sqrt(vector @ vector))
        return vector / norm if norm > 0 else vector

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            np.savez_compressed(
                handle,
                format_version=np.asarray(EMBEDDINGS_FORMAT_VERSION),
                vectors=self.vectors.astype(np.int8),
                scale=self.scale.astype(np.float32),
                metadata=np.asarray(json.dumps(self.metadata, sort_keys=True)),
            )

    @classmethod
    def load(cls, path: Path = EMBEDDINGS_PATH,
             tokenizer_path: Path | None = None) -> StaticEmbeddings:
        with np.load(path, allow_pickle=False) as data:
            version = int(data["format_version"])
            if version != EMBEDDINGS_FORMAT_VERSION:
                raise ValueError(f"{path}: embeddings format {version}, this code reads "
                                 f"{EMBEDDINGS_FORMAT_VERSION}")
            return cls(
                vectors=np.ascontiguousarray(data["vectors"], dtype=np.int8),
                scale=np.asarray(data["scale"], dtype=np.float32),
                tokenizer_path=tokenizer_path or path.parent / TOKENIZER_PATH.name,
                metadata=json.loads(str(data["metadata"])),
            )


@dataclass(frozen=True)
class SentimentResult:
    label: str  # one of LABELS
    score: float  # P(positive) - P(negative), in [-1, 1]
    probabilities: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class SentimentModel:
    """A linear model over :func:`features`; ``weights`` has one row per feature, one column per
    label in ``labels`` order. With ``embeddings``, ``dense_weights`` (one row per embedding
    dimension) scores ``embedding_weight`` × the text's static sentence embedding as well."""

    vocabulary: dict[str, int]
    weights: npt.NDArray[np.float32]
    bias: npt.NDArray[np.float32]
    labels: tuple[str, ...]
    lexicon: dict[str, float]
    metadata: dict[str, Any] = field(default_factory=dict)
    embeddings: StaticEmbeddings | None = None
    dense_weights: npt.NDArray[np.float32] | None = None
    embedding_weight: float = 1.0

    def vector(self, text: str) -> tuple[list[int], npt.NDArray[np.float64]]:
        """Indices and L2-normalised values of the features of ``text`` this model knows."""
        return self._sparse(features(text, self.lexicon))

    def _sparse(self, raw: dict[str, float]) -> tuple[list[int], npt.NDArray[np.float64]]:
        indices: list[int] = []
        values: list[float] = []
        for key, value in raw.items():
            index = self.vocabulary.get(key)
            if index is not None:
                indices.append(index)
                values.append(value)
        array = np.asarray(values, dtype=np.float64)
        norm = math.sqrt(float(array @ array)) if values else 0.0
        return indices, (array / norm if norm > 0 else array)

    def logits(self, text: str) -> npt.NDArray[np.float64]:
        raw, negated_spans = analyse(text, self.lexicon)
        indices, values = self._sparse(raw)
        result: npt.NDArray[np.float64] = self.bias.astype(np.float64)
        if indices:
            result = result + values @ self.weights[indices]
        if self.embeddings is not None and self.dense_weights is not None:
            dense = self.embeddings.sentence_vector(text, negated_spans) @ self.dense_weights
            result = result + self.embedding_weight * dense.astype(np.float64)
        return result

    def probabilities(self, text: str) -> npt.NDArray[np.float64]:
        logits = self.logits(text)
        exp = np.exp(logits - logits.max())
        result: npt.NDArray[np.float64] = exp / exp.sum()
        return result

    def classify(self, text: str) -> SentimentResult:
        return _result(self.labels, self.probabilities(text))

    def save(self, path: Path) -> None:
        """Writes the linear model; the embedding table is a file of its own
        (:meth:`StaticEmbeddings.save`), found beside the model by :meth:`load`."""
        keys = sorted(self.vocabulary, key=self.vocabulary.__getitem__)
        words = sorted(self.lexicon)
        dense: dict[str, Any] = {}
        if self.dense_weights is not None:
            dense = {"dense_weights": self.dense_weights.astype(np.float32),
                     "embedding_weight": np.asarray(self.embedding_weight, dtype=np.float64)}
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            np.savez_compressed(
                handle,
                **dense,
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
    def load(cls, path: Path, embeddings_path: Path | None = None) -> SentimentModel:
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
            metadata = json.loads(str(data["metadata"]))
            embeddings = dense_weights = None
            embedding_weight = 1.0
            if "dense_weights" in data.files:
                dense_weights = np.ascontiguousarray(data["dense_weights"], dtype=np.float32)
                embedding_weight = float(data["embedding_weight"])
                embeddings = StaticEmbeddings.load(
                    embeddings_path or path.parent / EMBEDDINGS_PATH.name)
                expected = metadata.get("embeddings_id")
                if expected and embeddings.metadata.get("id") != expected:
                    raise ValueError(f"{path} was trained with static embeddings {expected}, "
                                     f"found {embeddings.metadata.get('id')}; retrain")
                if embeddings.dims != dense_weights.shape[0]:
                    raise ValueError(f"{path}: {dense_weights.shape[0]} embedding weights, "
                                     f"embeddings have {embeddings.dims} dimensions")
            return cls(
                vocabulary=vocabulary,
                weights=np.ascontiguousarray(data["weights"], dtype=np.float32),
                bias=np.asarray(data["bias"], dtype=np.float32),
                labels=tuple(str(label) for label in data["labels"].tolist()),
                lexicon=lexicon,
                metadata=metadata,
                embeddings=embeddings,
                dense_weights=dense_weights,
                embedding_weight=embedding_weight,
            )


# The linear model answers alone when its most likely class has at least this probability;
# the rest go to the transformer (``cxm.text.transformer``), ~10x slower and ~0.06 macro-F1
# better on unseen domains. Chosen for speed, not tuned on a test set: at 0.9 about half of
# the held-out texts go to the transformer (docs/text.md has the share per rotation).
CONFIDENT = 0.9


@dataclass(frozen=True)
class CascadeModel:
    """The linear model first; texts it is not confident about go to the transformer."""

    linear: SentimentModel
    transformer: TransformerClassifier
    confident: float = CONFIDENT

    def classify_many(self, texts: Sequence[str]) -> list[SentimentResult]:
        probabilities = [self.linear.probabilities(text) for text in texts]
        unsure = [i for i, p in enumerate(probabilities) if float(p.max()) < self.confident]
        decided: dict[int, npt.NDArray[Any]] = {}
        if unsure:
            order = [TRANSFORMER_LABELS.index(label) for label in self.linear.labels]
            found = self.transformer.probabilities([texts[i] for i in unsure])
            decided = {i: found[row][order] for row, i in enumerate(unsure)}
        return [_result(self.linear.labels, decided.get(i, p))
                for i, p in enumerate(probabilities)]

    def classify(self, text: str) -> SentimentResult:
        return self.classify_many([text])[0]

    def routed(self, texts: Sequence[str]) -> float:
        """The share of ``texts`` the transformer would decide."""
        if not texts:
            return 0.0
        return sum(float(self.linear.probabilities(t).max()) < self.confident
                   for t in texts) / len(texts)


def _result(labels: Sequence[str], probs: npt.NDArray[Any]) -> SentimentResult:
    by_label = {label: float(p) for label, p in zip(labels, probs, strict=True)}
    score = by_label.get("positive", 0.0) - by_label.get("negative", 0.0)
    return SentimentResult(
        label=labels[int(np.argmax(probs))],
        score=round(max(-1.0, min(1.0, score)), 4),
        probabilities={label: round(p, 4) for label, p in by_label.items()},
    )


@functools.cache
def load_cascade() -> CascadeModel:
    """The shipped linear model and transformer, read once per process."""
    return CascadeModel(load_model(), load_transformer())


@functools.cache
def load_model(path: Path = MODEL_PATH) -> SentimentModel:
    """The shipped model, read once per process (and per path)."""
    if not path.exists():
        raise FileNotFoundError(
            f"sentiment model missing at {path}; build it with "
            "`python -m cxm.text.train --data <shared data dir>`")
    return SentimentModel.load(path)


def classify(text: str) -> SentimentResult:
    return load_cascade().classify(text)


def classify_many(texts: Sequence[str]) -> list[SentimentResult]:
    return load_cascade().classify_many(texts)
