"""Held-out evaluation of the sentiment model against VADER, both scored in the same run.

Each rotation holds out one review corpus (positive/negative) and one intent corpus (neutral):
a model is trained — including its choice of C — on the other two of each, with the same code
as the shipped model, and scored on the held-out texts next to VADER. So every figure is on a
domain the model never saw. Used by ``cxm text evaluate``, ``bench/sentiment.py`` and
``tests/text/test_evaluation.py``; needs scikit-learn (training) and vaderSentiment (baseline).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cxm.text.sentiment import LABELS, StaticEmbeddings

# (held-out review corpus, held-out intent corpus); the first is the primary one.
ROTATIONS: tuple[tuple[str, str], ...] = (
    ("yelp", "clinc150"),
    ("amazon", "banking77"),
    ("imdb", "bitext"),
)
VADER_THRESHOLD = 0.05  # compound ≥ +0.05 positive, ≤ -0.05 negative: VADER's documented cut
POLARITY_WORD_VALENCE = 1.0  # a "polarity word" has |VADER valence| ≥ 1


def scores(gold: Sequence[str], predicted: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro-F1 over the three labels and F1 per label (0 when undefined)."""
    if len(gold) != len(predicted):
        raise ValueError("gold and predicted differ in length")
    per_label: dict[str, float] = {}
    for label in LABELS:
        tp = sum(1 for g, p in zip(gold, predicted, strict=True) if g == p == label)
        fp = sum(1 for g, p in zip(gold, predicted, strict=True) if p == label != g)
        fn = sum(1 for g, p in zip(gold, predicted, strict=True) if g == label != p)
        per_label[label] = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    correct = sum(1 for g, p in zip(gold, predicted, strict=True) if g == p)
    return {
        "accuracy": round(correct / len(gold), 4) if gold else 0.0,
        "macro_f1": round(sum(per_label.values()) / len(LABELS), 4),
        "f1": {label: round(value, 4) for label, value in per_label.items()},
        "n": len(gold),
    }


def vader_labeller() -> Callable[[str], str]:
    try:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    except ImportError as error:
        raise RuntimeError("the VADER baseline needs vaderSentiment (the test extra)") from error
    analyzer = SentimentIntensityAnalyzer()

    def label(text: str) -> str:
        compound = analyzer.polarity_scores(text)["compound"]
        if compound >= VADER_THRESHOLD:
            return "positive"
        if compound <= -VADER_THRESHOLD:
            return "negative"
        return "neutral"

    return label


@dataclass
class RotationResult:
    held_out: tuple[str, str]
    trained_on: list[str]
    c: float
    ours: dict[str, Any]
    vader: dict[str, Any]
    # Neutral held-out texts that contain a polarity word ("lost", "stolen", "great"):
    # the share of them each system still calls neutral.
    neutral_with_polarity_words: dict[str, Any] = field(default_factory=dict)
    # "cascade" (the linear model + the rotation's transformer, as shipped) or "linear" (no
    # transformer trained without this rotation's corpora was found). For a cascade, ``linear``
    # scores the linear model alone and ``routed`` is the share the transformer decided.
    system: str = "linear"
    linear: dict[str, Any] = field(default_factory=dict)
    routed: float = 0.0

    @property
    def margin(self) -> float:
        return round(float(self.ours["macro_f1"]) - float(self.vader["macro_f1"]), 4)


@dataclass
class EvaluationReport:
    rotations: list[RotationResult]

    @property
    def primary(self) -> RotationResult:
        return self.rotations[0]

    def mean(self, system: str, metric: str) -> float:
        values = [float(getattr(r, system)[metric]) for r in self.rotations]
        return round(sum(values) / len(values), 4) if values else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "rotations": [dict(asdict(r), margin=r.margin) for r in self.rotations],
            "mean": {system: {metric: self.mean(system, metric)
                              for metric in ("macro_f1", "accuracy")}
                     for system in ("ours", "vader")},
        }


# Per-rotation transformers live with the tests in a source checkout (~19 MB each; the wheel
# ships only the one trained on every corpus).
EVAL_TRANSFORMERS_DIR = Path(__file__).resolve().parents[3] / "tests" / "text" / "models"


def run_evaluation(
    data_dir: Path,
    *,
    corpora: dict[str, Any] | None = None,
    lexicon: dict[str, float] | None = None,
    rotations: Sequence[tuple[str, str]] = ROTATIONS,
    embeddings: StaticEmbeddings | None = None,
    use_embeddings: bool = True,
    synthetic: bool = True,
    transformers_dir: Path | None = EVAL_TRANSFORMERS_DIR,
) -> EvaluationReport:
    """``embeddings`` defaults to the shipped static embedding table: it is distilled from the
    transformer's vocabulary alone (no corpus, no label), so every rotation may share it.
    ``use_embeddings=False`` evaluates the sparse-only model (format 1's design).
    ``synthetic=False`` leaves our synthetic CX comments out of every training set (they are
    never in a test set). ``transformers_dir`` holds one transformer per rotation, fine-tuned
    without that rotation's corpora (``sentiment_transformer-<review>.onnx``); where one is
    found the rotation scores the shipped design, the cascade, and the linear model alone
    beside it."""
    from cxm.text import sentiment, train
    from cxm.text.transformer import TransformerClassifier

    corpora = dict(corpora) if corpora is not None else train.load_corpora(data_dir)
    if not synthetic:
        corpora.pop(train.SYNTHETIC_DOMAIN, None)
    lexicon = lexicon if lexicon is not None else train.vader_lexicon()
    if not use_embeddings:
        embeddings = None
    elif embeddings is None:
        embeddings = StaticEmbeddings.load(sentiment.EMBEDDINGS_PATH)
    vader = vader_labeller()
    cache: train.FeatureCache = {}
    embedding_cache: train.EmbeddingCache = {}
    results = []
    for review, intent in rotations:
        reviews = [d for d in train.REVIEW_DOMAINS if d != review]
        intents = [d for d in train.INTENT_DOMAINS if d != intent]
        c = train.choose_c(corpora, reviews, intents, lexicon, cache, embeddings,
                           embedding_cache)
        model = train.fit(train.training_set(corpora, reviews + intents), lexicon, c, cache,
                          embeddings, embedding_cache)
        test = train.test_set(corpora, (review, intent))
        gold = [example.label for example in test]
        linear = [model.classify(example.text).label for example in test]
        ours, system, routed = linear, "linear", 0.0
        path = (transformers_dir / f"sentiment_transformer-{review}.onnx"
                if transformers_dir is not None else None)
        if path is not None and path.exists():
            cascade = sentiment.CascadeModel(model, TransformerClassifier(path))
            texts = [example.text for example in test]
            ours = [result.label for result in cascade.classify_many(texts)]
            system, routed = "cascade", round(cascade.routed(texts), 4)
        baseline = [vader(example.text) for example in test]
        polar = [
            i for i, example in enumerate(test)
            if example.label == "neutral" and any(
                abs(lexicon.get(token, 0.0)) >= POLARITY_WORD_VALENCE
                for token in train.sentiment.tokenize(example.text))
        ]
        results.append(RotationResult(
            held_out=(review, intent),
            trained_on=reviews + intents + (
                [train.SYNTHETIC_DOMAIN] if train.SYNTHETIC_DOMAIN in corpora else []),
            c=c,
            ours=scores(gold, ours),
            system=system,
            linear=scores(gold, linear) if system != "linear" else {},
            routed=routed,
            vader=scores(gold, baseline),
            neutral_with_polarity_words={
                "n": len(polar),
                "ours_neutral_share": round(
                    sum(ours[i] == "neutral" for i in polar) / len(polar), 4) if polar else 0.0,
                "vader_neutral_share": round(
                    sum(baseline[i] == "neutral" for i in polar) / len(polar), 4)
                if polar else 0.0,
            },
        ))
    return EvaluationReport(results)


def markdown_table(report: EvaluationReport) -> list[str]:
    lines = [
        "| held out (pos/neg + neutral) | n | ours | ours macro-F1 | VADER macro-F1 | margin "
        "| ours acc. | VADER acc. | ours F1 neg/neu/pos | VADER F1 neg/neu/pos "
        "| polar neutrals kept neutral (ours / VADER) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report.rotations:
        polar = r.neutral_with_polarity_words
        system = (f"cascade ({r.routed:.0%} to the transformer; linear alone "
                  f"{r.linear['macro_f1']:.3f})" if r.system == "cascade" else "linear")
        lines.append(
            f"| {r.held_out[0]} + {r.held_out[1]} | {r.ours['n']:,} | {system} "
            f"| {r.ours['macro_f1']:.3f} "
            f"| {r.vader['macro_f1']:.3f} | {r.margin:+.3f} | {r.ours['accuracy']:.3f} "
            f"| {r.vader['accuracy']:.3f} | {_f1s(r.ours)} | {_f1s(r.vader)} "
            f"| {polar['ours_neutral_share']:.2f} / {polar['vader_neutral_share']:.2f} "
            f"(n={polar['n']}) |")
    lines.append(
        f"| **mean** | | | **{report.mean('ours', 'macro_f1'):.3f}** "
        f"| **{report.mean('vader', 'macro_f1'):.3f}** "
        f"| **{report.mean('ours', 'macro_f1') - report.mean('vader', 'macro_f1'):+.3f}** "
        f"| {report.mean('ours', 'accuracy'):.3f} | {report.mean('vader', 'accuracy'):.3f} "
        "| | | |")
    return lines


def _f1s(system: dict[str, Any]) -> str:
    return " / ".join(f"{system['f1'][label]:.2f}" for label in LABELS)
