"""The shipped sentiment model: file format, features (negation, contrast) and behaviour."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cxm.text import sentiment
from cxm.text.sentiment import LABELS, SentimentModel, features, load_model

LEXICON = {"good": 1.9, "bad": -2.5, "great": 3.1}


def test_shipped_model_loads_small_and_described() -> None:
    model = load_model()
    assert sentiment.MODEL_PATH.stat().st_size < 3 * 1024 * 1024
    assert model.labels == LABELS
    assert model.weights.shape == (len(model.vocabulary), 3)
    assert (sentiment.MODEL_PATH.parent / "MODEL_CARD.md").exists()
    assert "train_counts" in model.metadata


def test_model_is_loaded_once() -> None:
    assert load_model() is load_model()


def test_inference_does_not_import_sklearn() -> None:
    code = ("import sys; from cxm.text import sentiment, emotion; "
            "sentiment.classify('great service'); emotion.label('thanks'); "
            "print('sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def test_negation_marks_following_words_and_flips_valence() -> None:
    plain = features("good", LEXICON)
    negated = features("not good", LEXICON)
    assert "good" in plain and "NOT_good" in negated and "good" not in negated
    assert sentiment.LEX_POSITIVE in plain and sentiment.LEX_NEGATIVE in negated
    # the scope ends at punctuation
    assert "good" in features("not now, good", LEXICON)
    # and after NEGATION_WINDOW words
    assert "good" in features("never one two three good", LEXICON)


def test_contrast_weights_the_clause_after_but() -> None:
    values = features("good but bad", LEXICON)
    assert values["good"] == pytest.approx(sentiment.BEFORE_CONTRAST)
    assert values["bad"] == pytest.approx(sentiment.AFTER_CONTRAST)


@pytest.mark.parametrize(("text", "expected"), [
    ("The support agent was friendly and solved my problem quickly.", "positive"),
    ("Absolutely love this product, works great!", "positive"),
    ("Terrible service, I waited an hour and nobody helped.", "negative"),
    ("The app keeps crashing and it is useless.", "negative"),
    ("The food was not good.", "negative"),
    ("Not bad at all, I would recommend it.", "positive"),
    ("The room was nice but the staff were rude and unhelpful.", "negative"),
    ("It was expensive but worth every penny.", "positive"),
    ("How do I change my delivery address?", "neutral"),
    ("Can I pay with a different card?", "neutral"),
    ("What are your opening hours on Sunday?", "neutral"),
])
def test_hand_picked_cases(text: str, expected: str) -> None:
    assert sentiment.classify(text).label == expected


def test_score_in_range_and_consistent_with_label() -> None:
    for text in ["great", "awful awful awful", "where is the store", "", "!!!", "1234"]:
        result = sentiment.classify(text)
        assert -1.0 <= result.score <= 1.0
        assert result.label in LABELS
        assert sum(result.probabilities.values()) == pytest.approx(1.0, abs=1e-3)
        if result.label == "positive":
            assert result.score > 0
        if result.label == "negative":
            assert result.score < 0


def test_save_load_round_trip(tmp_path: Path) -> None:
    model = SentimentModel(
        vocabulary={"good": 0, "bad": 1}, weights=np.asarray([[0, 0, 2], [2, 0, 0]], np.float32),
        bias=np.zeros(3, np.float32), labels=LABELS, lexicon=LEXICON, metadata={"C": 1.0})
    path = tmp_path / "m.npz"
    model.save(path)
    loaded = SentimentModel.load(path)
    assert loaded.vocabulary == model.vocabulary
    assert loaded.lexicon == pytest.approx(LEXICON)
    assert loaded.metadata == {"C": 1.0}
    assert loaded.classify("good").label == "positive"
    assert loaded.classify("bad").label == "negative"
