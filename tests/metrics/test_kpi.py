"""KPI maths against hand computations; no database."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from cxm.metrics import kpi
from cxm.metrics.kpi import Interval, KpiResult

Z = 1.959963984540054


def nps_adjusted_wald(p_count: float, d_count: float, n: float) -> tuple[float, float]:
    """The adjusted-Wald interval written out by hand (percentage points, unclamped)."""
    n_adj = n + 3
    p = (p_count + 0.75) / n_adj
    d = (d_count + 0.75) / n_adj
    se = math.sqrt((p + d - (p - d) ** 2) / n_adj)
    return 100 * (p - d - Z * se), 100 * (p - d + Z * se)


def wilson(successes: float, n: float) -> tuple[float, float]:
    p = successes / n
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z / (1 + Z * Z / n) * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n))
    return 100 * (centre - half), 100 * (centre + half)


# --- NPS ----------------------------------------------------------------------------------


def test_nps_hand_computed_zero() -> None:
    result = kpi.nps([10, 9, 8, 7, 6, 0])
    assert result.value == 0.0
    assert result.counts == {"promoters": 2, "passives": 2, "detractors": 2}
    assert result.responses == 6 and result.weighted_responses == 6.0
    low, high = nps_adjusted_wald(2, 2, 6)
    assert result.ci is not None
    assert result.ci.low == pytest.approx(low) and result.ci.high == pytest.approx(high)
    assert result.ci.low == pytest.approx(-51.0725, abs=1e-3)
    assert result.distribution["0"] == 1 and result.distribution["5"] == 0
    assert sum(result.distribution.values()) == 6


def test_nps_boundaries_classify_as_documented() -> None:
    # Ties on the class edges: 9 is a promoter, 7 a passive, 6 a detractor.
    assert [kpi.classify_nps(s) for s in (10, 9, 8, 7, 6, 0)] == [
        "promoter", "promoter", "passive", "passive", "detractor", "detractor"]
    assert kpi.nps([9, 9, 6]).value == pytest.approx(100 / 3)


def test_nps_all_passives_has_non_degenerate_interval() -> None:
    result = kpi.nps([7, 8] * 5)
    assert result.value == 0.0
    assert result.ci is not None
    # By hand: p = d = 0.75/13, se = sqrt(1.5/13/13) → ±18.47 points.
    assert result.ci.high == pytest.approx(100 * Z * math.sqrt(1.5 / 13 / 13))
    assert result.ci.low == pytest.approx(-result.ci.high)
    assert result.ci.high - result.ci.low > 30


def test_nps_all_promoters_interval_reaches_100_but_not_zero_width() -> None:
    result = kpi.nps([10] * 20)
    assert result.value == 100.0
    assert result.ci is not None
    assert result.ci.high == 100.0
    assert result.ci.low < 95.0
    low, _ = nps_adjusted_wald(20, 0, 20)
    assert result.ci.low == pytest.approx(low)


def test_nps_weights_double_a_detractor() -> None:
    # One promoter, one passive, one detractor weighted 2: NPS = (1 - 2) / 4 = -25.
    result = kpi.nps([10, 8, 3], [1, 1, 2])
    assert result.value == pytest.approx(-25.0)
    assert result.counts == {"promoters": 1, "passives": 1, "detractors": 1}
    assert result.responses == 3 and result.weighted_responses == 4.0
    assert result.shares == pytest.approx({"promoters": 25.0, "passives": 25.0,
                                           "detractors": 50.0})
    # Interval on the effective sample size n_eff = 16 / 6.
    n_eff = 16 / 6
    low, high = nps_adjusted_wald(0.25 * n_eff, 0.5 * n_eff, n_eff)
    assert result.ci is not None
    assert result.ci.low == pytest.approx(low) and result.ci.high == pytest.approx(high)


def test_nps_weighted_duplicate_equals_repeated_value() -> None:
    assert kpi.nps([10, 3], [3, 1]).value == kpi.nps([10, 10, 10, 3]).value


def test_nps_empty() -> None:
    result = kpi.nps([])
    assert result.value is None and result.ci is None
    assert result.responses == 0 and result.weighted_responses == 0.0
    assert result.counts == {"promoters": 0, "passives": 0, "detractors": 0}
    assert result.as_dict()["value"] is None


def test_single_answer_has_value_but_no_interval() -> None:
    assert kpi.nps([9]).value == 100.0 and kpi.nps([9]).ci is None
    assert kpi.csat([5]).value == 100.0 and kpi.csat([5]).ci is None
    assert kpi.ces([6]).value == 6.0 and kpi.ces([6]).ci is None


def test_zero_weight_answers_count_but_do_not_weigh() -> None:
    result = kpi.nps([10, 0], [1, 0])
    assert result.value == 100.0 and result.responses == 2
    assert result.ci is None  # only one answer carries weight


@pytest.mark.parametrize("bad", [11, -1, 8.5, float("nan"), float("inf"), "9"])
def test_nps_rejects_bad_scores(bad: object) -> None:
    with pytest.raises(ValueError, match=r"position 1"):
        kpi.nps([9, bad])  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("weights", "message"),
    [([1.0], "2 scores but 1 weights"), ([1.0, -1.0], "≥ 0"), ([1.0, float("nan")], "≥ 0"),
     ([0.0, 0.0], "all zero"), ([1.0, float("inf")], "≥ 0")])
def test_nps_rejects_bad_weights(weights: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        kpi.nps([9, 3], weights)


def test_whole_number_floats_and_numpy_are_accepted() -> None:
    assert kpi.nps(np.array([9.0, 6.0])).value == 0.0
    assert kpi.nps(s for s in [10, 10]).value == 100.0


# --- CSAT ---------------------------------------------------------------------------------


def test_csat_top_two_box_with_wilson() -> None:
    result = kpi.csat([5, 4, 4, 3, 2, 1, 5, 5, 4, 1])
    assert result.value == 60.0
    assert result.counts == {"satisfied": 6, "neutral": 1, "dissatisfied": 3, "1": 2, "2": 1,
                             "3": 1, "4": 3, "5": 3}
    low, high = wilson(6, 10)
    assert result.ci is not None
    assert (result.ci.low, result.ci.high) == pytest.approx((low, high))
    # Hand computation to 4 digits: Wilson(6/10) = [31.27 %, 83.18 %].
    assert result.ci.low == pytest.approx(31.27, abs=0.01)
    assert result.ci.high == pytest.approx(83.18, abs=0.01)


def test_csat_all_satisfied_interval_not_degenerate() -> None:
    result = kpi.csat([5] * 8)
    assert result.value == 100.0
    assert result.ci is not None and result.ci.high == 100.0
    assert result.ci.low == pytest.approx(wilson(8, 8)[0])
    assert result.ci.low < 80


def test_csat_weighted_uses_effective_sample_size() -> None:
    result = kpi.csat([5, 1, 1], [2, 1, 1])
    assert result.value == 50.0
    n_eff = 16 / 6
    low, high = wilson(0.5 * n_eff, n_eff)
    assert result.ci is not None
    assert (result.ci.low, result.ci.high) == pytest.approx((low, high))


def test_csat_other_scales() -> None:
    result = kpi.csat([7, 6, 5, 4, 3, 2, 1], scale_max=7, satisfied_min=6)
    assert result.value == pytest.approx(200 / 7)
    assert (result.counts["satisfied"], result.counts["neutral"],
            result.counts["dissatisfied"]) == (2, 3, 2)
    assert kpi.classify_csat(3) == "neutral" and kpi.classify_csat(2) == "dissatisfied"
    with pytest.raises(ValueError, match="from 1 to 5"):
        kpi.csat([0])
    with pytest.raises(ValueError, match="satisfied_min"):
        kpi.csat([5], satisfied_min=6)


# --- CES ----------------------------------------------------------------------------------


def test_ces_t_interval_matches_scipy() -> None:
    scores = [7, 6, 6, 5, 4, 3, 7, 2]
    result = kpi.ces(scores)
    mean = float(np.mean(scores))
    low, high = stats.t.interval(0.95, len(scores) - 1, loc=mean,
                                 scale=stats.sem(scores))
    assert result.value == pytest.approx(5.0)
    assert result.ci is not None
    assert (result.ci.low, result.ci.high) == pytest.approx((low, high))
    assert result.counts == {"easy": 5, "neutral": 1, "difficult": 2, "1": 0, "2": 1, "3": 1,
                             "4": 1, "5": 1, "6": 2, "7": 2}


def test_ces_interval_clamped_to_scale() -> None:
    result = kpi.ces([7, 7, 1])
    assert result.ci is not None
    assert result.ci.low == 1.0 and result.ci.high == 7.0


def test_ces_identical_answers_give_zero_width_without_warnings() -> None:
    result = kpi.ces([5, 5, 5])
    assert result.ci == Interval(5.0, 5.0)


def test_ces_equal_weights_match_unweighted_interval() -> None:
    scores = [7, 6, 6, 5, 4, 3]
    assert kpi.ces(scores, [3.0] * 6).ci == pytest.approx(kpi.ces(scores).ci)


def test_ces_weighted_mean() -> None:
    assert kpi.ces([7, 1], [3, 1]).value == pytest.approx(5.5)


def test_ces_extreme_weights_do_not_blow_up() -> None:
    result = kpi.ces([7, 1], [1.0, 1e-12])
    assert result.ci is not None
    assert 1.0 <= result.ci.low <= result.ci.high <= 7.0


# --- dispatcher, JSON, response rate --------------------------------------------------------


def test_compute_dispatches_and_rejects_unknown_kind() -> None:
    assert kpi.compute("nps", [10]).kind == "nps"
    assert kpi.compute("csat", [4], scale_max=5).value == 100.0
    assert kpi.compute("ces", [3]).value == 3.0
    with pytest.raises(ValueError, match="unknown KPI kind 'foo'"):
        kpi.compute("foo", [1])


def test_as_dict_is_json_ready() -> None:
    data = kpi.nps([10, 9, 8, 7, 6, 0]).as_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["value"] == 0.0
    assert data["ci"] == {"low": -51.1, "high": 51.1, "level": 0.95}
    assert data["counts"] == {"promoters": 2, "passives": 2, "detractors": 2}
    assert kpi.ces([7, 6, 6]).as_dict()["value"] == 6.33


def test_response_rate() -> None:
    rate = kpi.response_rate(200, 50)
    assert rate.value == 25.0
    low, high = wilson(50, 200)
    assert rate.ci is not None and (rate.ci.low, rate.ci.high) == pytest.approx((low, high))
    assert kpi.response_rate(0, 0).value is None
    assert kpi.response_rate(0, 0).as_dict() == {"value": None, "invited": 0, "responded": 0,
                                                  "ci": None}
    with pytest.raises(ValueError, match="cannot exceed"):
        kpi.response_rate(3, 4)
    with pytest.raises(ValueError, match="whole number"):
        kpi.response_rate(-1, 0)


def test_contributions_mean_is_the_kpi() -> None:
    scores = [10, 9, 8, 3, 0, 10]
    assert float(kpi.contributions("nps", scores).mean()) == pytest.approx(kpi.nps(scores).value)
    csat_scores = [5, 4, 2, 1]
    assert float(kpi.contributions("csat", csat_scores).mean()) == kpi.csat(csat_scores).value


# --- properties -----------------------------------------------------------------------------

nps_scores = st.lists(st.integers(0, 10), min_size=0, max_size=60)
positive_weights = st.floats(0.05, 20, allow_nan=False, allow_infinity=False)


def _contains(result: KpiResult) -> None:
    low, high = result.value_range
    assert result.value is None or low - 1e-9 <= result.value <= high + 1e-9
    if result.ci is not None:
        assert result.value is not None
        assert low <= result.ci.low <= result.value + 1e-9
        assert result.value - 1e-9 <= result.ci.high <= high


@given(nps_scores)
def test_property_nps_in_range_and_ci_contains_value(scores: list[int]) -> None:
    result = kpi.nps(scores)
    _contains(result)
    assert sum(result.counts.values()) == len(scores)
    if len(scores) >= 2:
        assert result.ci is not None and result.ci.high > result.ci.low


@given(st.lists(st.tuples(st.integers(0, 10), positive_weights), min_size=1, max_size=40))
def test_property_weighted_nps_ci_contains_value(pairs: list[tuple[int, float]]) -> None:
    _contains(kpi.nps([s for s, _ in pairs], [w for _, w in pairs]))


@given(st.lists(st.integers(1, 5), max_size=60))
def test_property_csat(scores: list[int]) -> None:
    result = kpi.csat(scores)
    _contains(result)
    assert result.counts["satisfied"] + result.counts["neutral"] + \
        result.counts["dissatisfied"] == len(scores)


@given(st.lists(st.tuples(st.integers(1, 7), positive_weights), max_size=40))
def test_property_ces(pairs: list[tuple[int, float]]) -> None:
    _contains(kpi.ces([s for s, _ in pairs], [w for _, w in pairs]))


@settings(max_examples=60)
@given(st.sampled_from(kpi.KINDS), st.lists(st.integers(1, 5), max_size=40),
       st.floats(0.5, 10))
def test_property_equal_weights_change_nothing(kind: str, scores: list[int], w: float) -> None:
    plain = kpi.compute(kind, scores)
    weighted = kpi.compute(kind, scores, [w] * len(scores))
    if plain.value is None:
        assert weighted.value is None
        return
    assert weighted.value == pytest.approx(plain.value, abs=1e-9)
    assert weighted.counts == plain.counts
    if plain.ci is not None:
        assert weighted.ci is not None
        assert weighted.ci.low == pytest.approx(plain.ci.low, abs=1e-7)
        assert weighted.ci.high == pytest.approx(plain.ci.high, abs=1e-7)


@given(st.integers(0, 500), st.integers(0, 500))
def test_property_response_rate(a: int, b: int) -> None:
    invited, responded = max(a, b), min(a, b)
    rate = kpi.response_rate(invited, responded)
    if invited == 0:
        assert rate.value is None
        return
    assert rate.ci is not None and rate.value is not None
    assert 0 <= rate.ci.low <= rate.value <= rate.ci.high <= 100


def test_ces_of_one_score_value_has_a_zero_width_interval_whatever_the_weights() -> None:
    # Σwx/Σw = 3.0000000000000004 here; the spread must still be exactly zero (a t quantile at
    # an effective n of 1.05 turned the rounding bit into an interval over the whole scale).
    result = kpi.ces([3, 3], weights=[1.0, 42.604276608656576])
    assert result.value == 3.0
    assert result.ci is not None and (result.ci.low, result.ci.high) == (3.0, 3.0)
