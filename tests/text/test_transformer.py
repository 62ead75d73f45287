"""The shipped sentiment transformer (ONNX) and the cascade that uses it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cxm.text import sentiment, transformer

TEXTS = (
    "The delivery was late and nobody answered my emails.",
    "Absolutely love the new app, checkout takes seconds.",
    "How do I change the address on my account?",
    "ok",
    "",
    "The staff were friendly but the room was filthy and the wifi never worked. " * 6,
)


@pytest.fixture(scope="module")
def model() -> transformer.TransformerClassifier:
    return transformer.load()


def test_shipped_file_and_card(model: transformer.TransformerClassifier) -> None:
    assert transformer.MODEL_PATH.stat().st_size < 25 * 1024 * 1024
    card = model.card
    assert card["labels"] == list(transformer.LABELS) == list(sentiment.LABELS)
    assert "Apache-2.0" in card["base_model"]
    assert card["max_tokens"] == transformer.MAX_TOKENS


def test_probabilities_are_distributions_in_input_order(
        model: transformer.TransformerClassifier) -> None:
    together = model.probabilities(TEXTS)
    assert together.shape == (len(TEXTS), 3)
    assert np.allclose(together.sum(axis=1), 1.0, atol=1e-4)
    # batches are formed by length, answers come back in the caller's order
    alone = np.stack([model.probabilities([text])[0] for text in TEXTS])
    assert np.allclose(together, alone, atol=1e-3)
    labels = [transformer.LABELS[int(k)] for k in together.argmax(axis=1)]
    assert labels[:3] == ["negative", "positive", "neutral"]
    assert model.probabilities([]).shape == (0, 3)


def test_missing_model_file_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="sentiment_teacher"):
        transformer.load(tmp_path / "none.onnx")


def test_cascade_routes_only_what_the_linear_model_is_unsure_of(
        model: transformer.TransformerClassifier) -> None:
    linear = sentiment.load_model()
    texts = list(TEXTS)
    never = sentiment.CascadeModel(linear, model, confident=0.0)
    assert never.routed(texts) == 0.0
    assert never.classify_many(texts) == [linear.classify(text) for text in texts]
    always = sentiment.CascadeModel(linear, model, confident=1.01)
    assert always.routed(texts) == 1.0
    expected = [transformer.LABELS[int(k)] for k in model.probabilities(texts).argmax(axis=1)]
    assert [r.label for r in always.classify_many(texts)] == expected
    shipped = sentiment.load_cascade()
    results = shipped.classify_many(texts)
    for text, result in zip(texts, results, strict=True):
        unsure = float(linear.probabilities(text).max()) < shipped.confident
        assert result == (always if unsure else never).classify(text)
        assert -1.0 <= result.score <= 1.0
        assert result.score == pytest.approx(
            result.probabilities["positive"] - result.probabilities["negative"], abs=1e-3)
    assert sentiment.classify_many(texts) == results
    assert sentiment.classify(texts[0]) == results[0]


def test_an_open_last_word_gets_a_full_stop() -> None:
    # the intent corpora without punctuation taught "no final punctuation -> neutral"
    assert transformer._closed("My refund never arrived, I'm furious") == (
        "My refund never arrived, I'm furious.")
    for text in ("Great service!", "Where is my parcel?", "ok.", "", "   ", "thanks :)"):
        assert transformer._closed(text) == text
    assert sentiment.classify("My refund never arrived, I'm furious").label == "negative"
