"""Re-run the held-out evaluation (unseen review domain + unseen intent corpus) against VADER.

Skips when the shared data directory is absent ($CXM_SHARED_DATA, default ../shared/data).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cxm.text import evaluate

DATA = Path(os.environ.get(
    "CXM_SHARED_DATA", Path(__file__).resolve().parents[2] / ".." / "shared" / "data"))
TARGET_MARGIN = 0.20  # the target: macro-F1 at least 0.20 above VADER's
# What the model achieved when this test was written (see docs/text.md): a regression guard.
# Format 3 (negation-aware pooling, synthetic CX comments, intent-corpus complaints labelled
# negative) measured +0.149..+0.200 (mean +0.180) and macro-F1 0.815..0.845; format 2
# +0.159..+0.197 (mean +0.181); sparse-only format 1 +0.130..+0.165. These leave ~0.01 of slack.
ACHIEVED_MIN_MARGIN = 0.14
ACHIEVED_MEAN_MARGIN = 0.165
ACHIEVED_MIN_MACRO_F1 = 0.80

pytestmark = pytest.mark.skipif(
    not (DATA / "sentiment_labelled_sentences").is_dir(),
    reason=f"shared data not found at {DATA} (set CXM_SHARED_DATA)")


@pytest.fixture(scope="module")
def report() -> evaluate.EvaluationReport:
    pytest.importorskip("vaderSentiment", reason="the VADER baseline needs the test extra")
    return evaluate.run_evaluation(DATA)


def test_every_rotation_beats_vader_by_the_achieved_margin(
        report: evaluate.EvaluationReport) -> None:
    assert len(report.rotations) == 3
    for rotation in report.rotations:
        assert rotation.ours["n"] == 1500
        assert rotation.ours["macro_f1"] >= ACHIEVED_MIN_MACRO_F1, rotation
        assert rotation.margin >= ACHIEVED_MIN_MARGIN, rotation
        assert rotation.held_out[0] not in rotation.trained_on
        assert rotation.held_out[1] not in rotation.trained_on
    mean_margin = report.mean("ours", "macro_f1") - report.mean("vader", "macro_f1")
    assert mean_margin >= ACHIEVED_MEAN_MARGIN


def test_target_margin_over_vader(report: evaluate.EvaluationReport) -> None:
    """The shipped design (the cascade) on every unseen domain, each rotation with a
    transformer fine-tuned without that rotation's corpora (tests/text/models/*.json)."""
    for rotation in report.rotations:
        assert rotation.system == "cascade", rotation.held_out
        assert rotation.margin >= TARGET_MARGIN, rotation
        # the transformer earns its cost: the cascade beats the linear model alone
        assert rotation.ours["macro_f1"] > rotation.linear["macro_f1"] + 0.02, rotation
        assert 0.2 <= rotation.routed <= 0.8, rotation


def test_each_rotation_transformer_never_saw_its_held_out_corpora() -> None:
    import json

    for review, intent in evaluate.ROTATIONS:
        card = json.loads((evaluate.EVAL_TRANSFORMERS_DIR
                           / f"sentiment_transformer-{review}.json").read_text())
        assert review not in card["trained_on"] and intent not in card["trained_on"], card


def test_scores_metric() -> None:
    result = evaluate.scores(["positive", "negative", "neutral", "neutral"],
                             ["positive", "neutral", "neutral", "neutral"])
    assert result["accuracy"] == 0.75
    assert result["f1"] == {"negative": 0.0, "neutral": 0.8, "positive": 1.0}
    assert result["macro_f1"] == pytest.approx(0.6)
