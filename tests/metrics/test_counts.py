"""KPIs from counts per score value equal the KPIs from the answer rows; no database.

The results pages count answers per score value in SQL (``GROUP BY score``) and compute the
KPI from those counts (``kpi.compute_from_counts``). These tests check that this gives what the
row-based functions give on the same answers: against the pre-counts row implementation frozen
in ``row_reference.py`` and against today's row functions, with answers tallied in arbitrary
groups and added up as a database's groups are.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cxm.metrics import kpi, slicing
from cxm.metrics.kpi import KpiResult, ScoreCounts
from tests.metrics import row_reference

SCALES = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}


def scores_of(kind: str, max_size: int = 80) -> st.SearchStrategy[list[int]]:
    low, high = SCALES[kind]
    return st.lists(st.integers(low, high), max_size=max_size)


# Multiples of 1/8 up to 20: every sum of them is exact in binary floating point, so a sum
# does not depend on the order or grouping it was added in (as a database's SUM does not).
dyadic = st.integers(0, 160).map(lambda k: k / 8)


def _same_except_ci(a: KpiResult, b: KpiResult) -> None:
    assert (a.kind, a.value, a.responses, a.weighted_responses, a.counts, a.distribution,
            a.shares, a.scale) == (b.kind, b.value, b.responses, b.weighted_responses,
                                   b.counts, b.distribution, b.shares, b.scale)


def _close(a: KpiResult, b: KpiResult, rel: float = 1e-12) -> None:
    assert a.kind == b.kind and a.responses == b.responses and a.counts == b.counts
    assert a.distribution == b.distribution and a.scale == b.scale
    for x, y in ((a.value, b.value), (a.weighted_responses, b.weighted_responses)):
        assert (x is None and y is None) or x == pytest.approx(y, rel=rel, abs=1e-9)
    assert a.shares.keys() == b.shares.keys()
    for key in a.shares:
        assert a.shares[key] == pytest.approx(b.shares[key], rel=rel, abs=1e-9)
    assert (a.ci is None) == (b.ci is None)
    if a.ci is not None and b.ci is not None:
        assert a.ci.low == pytest.approx(b.ci.low, rel=rel, abs=1e-9)
        assert a.ci.high == pytest.approx(b.ci.high, rel=rel, abs=1e-9)


def _in_groups(scores: list[int], weights: list[float] | None, parts: int,
               seed: int) -> ScoreCounts:
    """The answers tallied in ``parts`` random groups, the groups added up in random order —
    what adding up a database's per-slice counts does."""
    rng = random.Random(seed)
    groups: list[list[int]] = [[] for _ in range(max(parts, 1))]
    for index in range(len(scores)):
        groups[rng.randrange(len(groups))].append(index)
    rng.shuffle(groups)
    total = ScoreCounts({})
    for members in groups:
        part = ScoreCounts.of([scores[i] for i in members],
                              None if weights is None else [weights[i] for i in members])
        total = total + part
    return total


# --- against the row implementation as it was before the counts path -----------------------


@pytest.mark.parametrize("kind", ["nps", "csat"])
@settings(max_examples=300)
@given(data=st.data())
def test_unweighted_nps_and_csat_equal_the_old_rows_bit_for_bit(kind: str,
                                                                 data: st.DataObject) -> None:
    scores = data.draw(scores_of(kind))
    counts = ScoreCounts(Counter(scores))
    # Dataclass equality: every float — value, shares, interval ends — identical.
    assert kpi.compute_from_counts(kind, counts) == row_reference.compute(kind, scores)


@settings(max_examples=300)
@given(scores_of("ces"))
def test_unweighted_ces_equals_the_old_rows(scores: list[int]) -> None:
    new = kpi.compute_from_counts("ces", ScoreCounts(Counter(scores)))
    old = row_reference.ces(scores)
    # The mean, counts and shares are sums of whole numbers: identical. The interval's
    # Σ(x − x̄)² is now summed per score value (7 terms) instead of per answer, so it may
    # differ in the last bits (and is, if anything, more exact).
    _same_except_ci(new, old)
    _close(new, old)


def test_ces_interval_is_the_same_at_scale() -> None:
    rng = random.Random(3)
    scores = [rng.choice((1, 2, 3, 4, 5, 5, 6, 6, 7, 7)) for _ in range(100_000)]
    new = kpi.compute_from_counts("ces", ScoreCounts(Counter(scores)))
    old = row_reference.ces(scores)
    _same_except_ci(new, old)
    _close(new, old, rel=1e-12)
    assert new.as_dict() == old.as_dict()


@pytest.mark.parametrize("kind", kpi.KINDS)
@settings(max_examples=150)
@given(data=st.data())
def test_weighted_equals_the_old_rows(kind: str, data: st.DataObject) -> None:
    pairs = data.draw(st.lists(st.tuples(st.integers(*SCALES[kind]),
                                         st.floats(0.0, 50.0, allow_nan=False)),
                               min_size=1, max_size=60))
    scores, weights = [s for s, _ in pairs], [w for _, w in pairs]
    if not any(weights):
        return
    # Σw per score value is added in another order than the old per-class sums, so weighted
    # figures agree to rounding, not bit for bit.
    new = kpi.compute_from_counts(kind, ScoreCounts.of(scores, weights))
    old = row_reference.compute(kind, scores, weights)
    positive = [s for s, w in zip(scores, weights, strict=True) if w > 0]
    if kind == "ces" and len(set(positive)) == 1 and new.ci is not None:
        # Every weighted answer is the same score: the spread is zero and so is the
        # interval. The old per-answer sum left rounding noise in x̄ (3.0000000000000004),
        # which a t quantile at an effective n near 1 (df ≈ 0.09) blew up to ±0.14; the
        # counts path sums per score value and gets exactly 0 (found by hypothesis).
        assert new.ci.low == new.ci.high == pytest.approx(positive[0])
        assert new.value == pytest.approx(old.value, rel=1e-9)
        return
    _close(new, old, rel=1e-9)


# --- counts added up in groups equal the row functions exactly --------------------------------


@pytest.mark.parametrize("kind", kpi.KINDS)
@settings(max_examples=150)
@given(data=st.data())
def test_counts_from_groups_equal_the_rows_exactly(kind: str, data: st.DataObject) -> None:
    scores = data.draw(scores_of(kind))
    weighted = data.draw(st.booleans())
    weights = data.draw(st.lists(dyadic, min_size=len(scores), max_size=len(scores))
                        ) if weighted else None
    if weights is not None and scores and not any(weights):
        weights[0] = 1.0
    parts = data.draw(st.integers(1, 6))
    counts = _in_groups(scores, weights, parts, data.draw(st.integers(0, 10**6)))
    assert kpi.compute_from_counts(kind, counts) == kpi.compute(kind, scores, weights)


def test_zero_weights_count_but_do_not_weigh_from_counts() -> None:
    counts = ScoreCounts({10: 1, 0: 1}, weights={10: 1.0, 0: 0.0}, squares={10: 1.0, 0: 0.0},
                         positive={10: 1, 0: 0})
    result = kpi.compute_from_counts("nps", counts)
    assert result == kpi.nps([10, 0], [1, 0])
    assert result.value == 100.0 and result.responses == 2 and result.ci is None


def test_extreme_weights_neither_overflow_nor_vanish() -> None:
    for scale in (1e-200, 1.0, 1e200):
        scores, weights = [10, 9, 3, 7], [scale, 2 * scale, scale, 3 * scale]
        left = ScoreCounts.of(scores[:2], weights[:2])
        right = ScoreCounts.of(scores[2:], weights[2:])
        merged = kpi.compute_from_counts("nps", left + right)
        plain = kpi.nps(scores, [w / scale for w in weights])
        assert merged.value == pytest.approx(plain.value)
        assert merged.ci is not None and plain.ci is not None
        assert merged.ci.low == pytest.approx(plain.ci.low)
        assert merged.ci.high == pytest.approx(plain.ci.high)


def test_empty_counts_are_the_empty_result() -> None:
    for kind in kpi.KINDS:
        assert kpi.compute_from_counts(kind, ScoreCounts({})) == kpi.empty(kind)
        assert kpi.compute_from_counts(kind, ScoreCounts({5: 0})) == kpi.empty(kind)


def test_database_floats_and_ints_are_the_same_score() -> None:
    counts = ScoreCounts({9.0: 2}) + ScoreCounts({9: 1, 0.0: 1})
    assert kpi.compute_from_counts("nps", counts) == kpi.nps([9, 9, 9, 0])


@pytest.mark.parametrize(("counts", "message"), [
    (ScoreCounts({11: 1}), "whole numbers from 0 to 10; got 11"),
    (ScoreCounts({8.5: 1}), "got 8.5"),
    (ScoreCounts({math.nan: 1}), "got nan"),
    (ScoreCounts({"9": 1}), "got '9'"),  # type: ignore[dict-item]
    (ScoreCounts({9: -1}), "≥ 0"),
    (ScoreCounts({9: 1.5}), "whole numbers ≥ 0"),  # type: ignore[dict-item]
    (ScoreCounts({9: 1}, {9: 0.0}, {9: 0.0}, {9: 0}), "all zero"),
    (ScoreCounts({9: 1}, {9: -1.0}, {9: 1.0}, {9: 1}), "≥ 0"),
    (ScoreCounts({9: 1}, {9: 1.0}, {9: 1.0}, {9: 2}), "do not fit"),
])
def test_bad_counts_are_refused(counts: ScoreCounts, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        kpi.compute_from_counts("nps", counts)


def test_weighted_counts_need_all_three_sums() -> None:
    with pytest.raises(ValueError, match="together"):
        ScoreCounts({9: 1}, weights={9: 1.0})
    with pytest.raises(ValueError, match="unit"):
        ScoreCounts({9: 1}, unit=0.0)


def test_csat_and_ces_options_pass_through() -> None:
    scores = [7, 6, 6, 5, 2, 1]
    counts = ScoreCounts(Counter(scores))
    assert kpi.compute_from_counts("csat", counts, scale_max=7, satisfied_min=6) == \
        kpi.csat(scores, scale_max=7, satisfied_min=6)
    with pytest.raises(ValueError, match="unknown KPI kind"):
        kpi.compute_from_counts("foo", counts)


# --- slices and trends from counts ------------------------------------------------------------

LABELS = st.sampled_from([None, "", "email", "chat", "web", ("vip", "new"), ("vip",)])


@st.composite
def answers(draw: st.DrawFn) -> list[slicing.Answer]:
    start = datetime(2024, 12, 20, tzinfo=UTC)
    rows = draw(st.lists(st.tuples(st.integers(0, 10), st.integers(0, 80 * 24),
                                   LABELS), max_size=60))
    out = []
    for score, hours, label in rows:
        dims = {} if label is None else {"channel": label}
        out.append(slicing.Answer(score, start + timedelta(hours=hours), dims=dims))
    return out


@settings(max_examples=150)
@given(answers())
def test_slices_from_counts_equal_slices_from_rows(rows: list[slicing.Answer]) -> None:
    # One tally per (label, score) as GROUP BY returns them — the same label may come twice.
    grouped: Counter[tuple[Any, int]] = Counter(
        (r.dims.get("channel"), int(r.score)) for r in rows)
    groups = [(label, ScoreCounts({score: n})) for (label, score), n in grouped.items()]
    for missing in (slicing.UNKNOWN, None):
        assert slicing.by_dimension_from_counts("nps", groups, missing=missing) == \
            slicing.by_dimension("nps", rows, "channel", missing=missing)


@pytest.mark.parametrize("period", slicing.PERIODS)
@settings(max_examples=80)
@given(rows=answers())
def test_trend_from_counts_equals_trend_from_rows(period: slicing.Period,
                                                  rows: list[slicing.Answer]) -> None:
    by_bucket = Counter((slicing.bucket_start(r.at, period), int(r.score)) for r in rows)
    buckets = [(day, ScoreCounts({score: n})) for (day, score), n in by_bucket.items()]
    assert slicing.trend_from_counts("nps", buckets, period) == \
        slicing.trend("nps", rows, period)
    # Days roll up into weeks and months exactly.
    by_day = Counter((slicing.bucket_start(r.at, "day"), int(r.score)) for r in rows)
    days = [(day, ScoreCounts({score: n})) for (day, score), n in by_day.items()]
    assert slicing.trend_from_counts("nps", days, period) == slicing.trend("nps", rows, period)
    window = {"start": date(2025, 1, 3), "end": date(2025, 2, 10)}
    assert slicing.trend_from_counts("nps", buckets, period, max_buckets=5, **window) == \
        slicing.trend("nps", rows, period, max_buckets=5, **window)
