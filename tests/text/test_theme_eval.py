"""Theme discovery quality against labelled texts must not regress (see docs/text.md, Themes).

The 36-comment sample and the demo generator's templated comments are always scored; banking77
is scored when the shared data directory holds it ($CXM_SHARED_DATA, default ../shared/data),
and skipped with a message otherwise. Floors are what ``bench/themes.py`` measured after the
near-duplicate / strict-assignment change, minus a margin of about 0.03–0.05.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cxm.demo import generator
from cxm.text import theme_eval

DATA = Path(os.environ.get(
    "CXM_SHARED_DATA", Path(__file__).resolve().parents[2] / ".." / "shared" / "data"))
BANKING77 = DATA / "banking77" / "test.csv"

# corpus name -> (min AMI, min purity, max overlapping names, min coverage); measured
# 0.898/0.868/0/0.917, 0.296/0.603/0/0.734, 0.346/0.666/0/0.799, 0.628/0.592/0/0.948,
# 0.491/0.207/1/0.904 (before the change: 0.638/0.828/9, 0.262/0.471/0, 0.262/0.520/4,
# 0.629/0.453/12, 0.492/0.186/9).
FLOORS = {
    "36 feedback comments, max 12": (0.85, 0.80, 0, 0.85),
    "demo comments, max 8": (0.26, 0.55, 1, 0.68),
    "demo comments, max 12": (0.30, 0.62, 1, 0.75),
    "banking77 (10 intents)": (0.59, 0.55, 2, 0.90),
    "banking77 (77 intents)": (0.46, 0.18, 4, 0.86),
}


def _demo_corpora() -> list[theme_eval.Corpus]:
    return theme_eval.standard_corpora(
        generator._COMMENT_PHRASES, openers=generator._OPENERS, closers=generator._CLOSERS,
        values=theme_eval.demo_values([p.name for p in generator._CATALOG], generator._AGENTS),
        data_dir=None)


def _check(score: theme_eval.ThemeScore) -> None:
    min_ami, min_purity, max_overlap, min_coverage = FLOORS[score.corpus]
    assert score.ami >= min_ami, score
    assert score.purity >= min_purity, score
    assert score.overlapping_names <= max_overlap, score
    assert score.coverage >= min_coverage, score
    assert 1 <= score.themes <= score.max_themes, score


@pytest.mark.parametrize("index", [0, 1, 2])
def test_offline_corpora_do_not_regress(index: int) -> None:
    _check(theme_eval.score(_demo_corpora()[index]))


def test_feedback_sample_finds_each_planted_theme_once() -> None:
    score = theme_eval.score(theme_eval.feedback_sample(12))
    assert score.themes <= 8  # 6 planted; 12 asked for — near-duplicates must be folded
    assert score.overlapping_names == 0


@pytest.mark.skipif(not BANKING77.is_file(),
                    reason=f"banking77 not found at {BANKING77} (set CXM_SHARED_DATA)")
@pytest.mark.parametrize(("every", "max_themes"), [(8, 12), (1, 30)])
def test_banking77_does_not_regress(every: int, max_themes: int) -> None:
    _check(theme_eval.score(theme_eval.banking77_corpus(BANKING77, every=every,
                                                        max_themes=max_themes)))


def test_templated_corpus_is_deterministic_and_labelled() -> None:
    first, second = _demo_corpora()[1], _demo_corpora()[1]
    assert first == second
    assert len(first.texts) == len(first.labels) == 1000
    assert set(first.labels) == set(generator._COMMENT_PHRASES)


def test_unassigned_texts_count_as_their_own_cluster() -> None:
    corpus = theme_eval.Corpus("tiny", ("a", "b"), ("x", "y"), 5)  # too few texts: no themes
    score = theme_eval.score(corpus)
    assert (score.themes, score.coverage, score.purity) == (0, 0.0, 0.0)
