"""Driver analysis on planted effects; no database."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from cxm.metrics import kpi
from cxm.metrics.drivers import DriverInput, _welch, analyze_drivers, key_driver_regression

DELAY = "theme:Delivery delay"
EMAIL = "touchpoint:email"
NOISE = "theme:Packaging"


def planted(n: int = 800, seed: int = 7) -> list[DriverInput]:
    """NPS answers where "Delivery delay" lowers the score and "Packaging" does nothing."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        features = set()
        if rng.random() < 0.25:
            features.add(DELAY)
        if rng.random() < 0.4:
            features.add(NOISE)
        if rng.random() < 0.5:
            features.add(EMAIL)
        if DELAY in features:
            score = rng.choice([0, 2, 4, 6, 7, 9], p=[0.2, 0.2, 0.2, 0.2, 0.1, 0.1])
        else:
            score = rng.choice([5, 7, 8, 9, 10], p=[0.1, 0.2, 0.2, 0.25, 0.25])
        rows.append(DriverInput(float(score), frozenset(features)))
    return rows


def test_planted_effect_found_with_right_sign_and_size() -> None:
    rows = planted()
    drivers = {d.feature: d for d in analyze_drivers("nps", rows)}
    delay = drivers[DELAY]
    with_scores = [r.score for r in rows if DELAY in r.features]
    without_scores = [r.score for r in rows if DELAY not in r.features]
    assert delay.kpi_with == pytest.approx(kpi.nps(with_scores).value)
    assert delay.kpi_without == pytest.approx(kpi.nps(without_scores).value)
    assert delay.kpi_with is not None and delay.kpi_without is not None
    assert delay.difference == pytest.approx(delay.kpi_with - delay.kpi_without)
    # Expected NPS: with ≈ 10 − 80 = −70, without ≈ 50 − 10 = 40, so about −110.
    assert -125 < delay.difference < -95
    overall = kpi.nps([r.score for r in rows]).value
    assert overall is not None
    assert delay.impact == pytest.approx(overall - delay.kpi_without)
    assert delay.impact == pytest.approx(delay.difference * delay.with_count / len(rows))
    assert delay.significant and delay.p_value is not None and delay.p_value < 1e-6
    assert delay.q_value is not None and delay.q_value < 0.05
    assert "lower" in delay.summary and "costs the overall NPS" in delay.summary
    assert "“Delivery delay”" in delay.summary and "p < 0.001" in delay.summary
    assert next(iter(analyze_drivers("nps", rows))).feature == DELAY


def test_no_effect_is_not_significant() -> None:
    drivers = {d.feature: d for d in analyze_drivers("nps", planted())}
    for feature in (NOISE, EMAIL):
        assert not drivers[feature].significant, drivers[feature].summary
        p_value = drivers[feature].p_value
        assert p_value is not None and p_value > 0.05


def test_tiny_groups_never_flagged() -> None:
    rows = [DriverInput(0.0, frozenset({"theme:Rare"}))] * 3 + \
        [DriverInput(float(s), frozenset()) for s in [9, 10, 8, 9, 10, 9, 10, 7, 9, 10] * 5]
    (rare,) = analyze_drivers("nps", rows)
    assert rare.with_count == 3 and not rare.significant
    assert "Too few answers" in rare.summary


def test_zero_variance_gives_none_without_warnings() -> None:
    rows = [DriverInput(9.0, frozenset({"a"}))] * 12 + [DriverInput(10.0, frozenset())] * 12
    (driver,) = analyze_drivers("nps", rows)
    assert driver.p_value is None and not driver.significant and driver.difference == 0.0
    assert "do not vary" in driver.summary
    # Both sides constant but different: perfect separation.
    rows = [DriverInput(1.0, frozenset({"a"}))] * 12 + [DriverInput(10.0, frozenset())] * 12
    (driver,) = analyze_drivers("nps", rows)
    assert driver.p_value == 0.0 and driver.significant


def test_feature_in_every_answer() -> None:
    rows = [DriverInput(float(s), frozenset({"touchpoint:web"})) for s in range(11)]
    (driver,) = analyze_drivers("nps", rows)
    assert driver.without_count == 0 and driver.kpi_without is None
    assert driver.impact == 0.0 and driver.p_value is None and not driver.significant
    assert "every answer" in driver.summary


def test_welch_matches_scipy() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(0, 1, 40), rng.normal(0.5, 2, 25)
    expected = stats.ttest_ind(a, b, equal_var=False).pvalue
    assert _welch(a, b) == pytest.approx(float(expected))


def test_csat_and_ces_units() -> None:
    rows = [DriverInput(2.0, frozenset({"theme:Wait"}))] * 15 + \
        [DriverInput(5.0, frozenset())] * 10 + [DriverInput(4.0, frozenset())] * 10 + \
        [DriverInput(4.0, frozenset({"theme:Wait"}))] * 5
    (csat_driver,) = analyze_drivers("csat", rows)
    assert csat_driver.kpi_with == 25.0 and csat_driver.kpi_without == 100.0
    assert "percentage points lower (CSAT 25% vs 100%)" in csat_driver.summary
    (ces_driver,) = analyze_drivers("ces", rows, scale_max=7)
    assert ces_driver.kpi_with == pytest.approx(2.5) and ces_driver.kpi_without == 4.5
    assert ces_driver.difference == pytest.approx(-2.0)
    assert ces_driver.as_dict()["difference"] == -2.0
    assert "2.00 points lower (CES 2.5 vs 4.5)" in ces_driver.summary


def test_empty_and_bad_input() -> None:
    assert analyze_drivers("nps", []) == []
    with pytest.raises(ValueError, match="unknown KPI kind"):
        analyze_drivers("xyz", [])
    with pytest.raises(ValueError, match="from 0 to 10"):
        analyze_drivers("nps", [DriverInput(12.0, frozenset())])


def test_regression_controls_for_overlap() -> None:
    # "Refund" only ever shows up alongside "Delivery delay" half the time and has no effect of
    # its own; one-at-a-time analysis blames it, the regression does not.
    rng = np.random.default_rng(11)
    rows = []
    for _ in range(1500):
        delay = rng.random() < 0.3
        refund = delay and rng.random() < 0.6
        score = int(rng.integers(0, 7) if delay else rng.integers(0, 11))
        features = {DELAY} if delay else set()
        if refund:
            features.add("theme:Refund")
        rows.append(DriverInput(float(score), frozenset(features)))
    single = {d.feature: d for d in analyze_drivers("nps", rows)}
    assert single["theme:Refund"].significant and single["theme:Refund"].difference < -30
    model = key_driver_regression("nps", rows)
    drivers = {d.feature: d for d in model.drivers}
    coefficient = drivers[DELAY].coefficient
    assert drivers[DELAY].significant and coefficient is not None and coefficient < -50
    assert not drivers["theme:Refund"].significant
    assert model.intercept is not None and model.r_squared is not None
    assert model.warnings == ()
    assert model.as_dict()["drivers"][0]["feature"] == DELAY


def test_regression_matches_lstsq() -> None:
    rows = planted(300, seed=5)
    model = key_driver_regression("nps", rows)
    features = [d.feature for d in model.drivers]
    y = kpi.contributions("nps", [r.score for r in rows])
    x = np.column_stack([np.ones(len(rows))] + [[f in r.features for r in rows]
                                                 for f in features]).astype(float)
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    assert model.intercept == pytest.approx(beta[0])
    for d, b in zip(model.drivers, beta[1:], strict=True):
        assert d.coefficient == pytest.approx(b)


def test_regression_drops_collinear_and_rare_features() -> None:
    rows = planted(400)
    twins = [DriverInput(r.score, r.features | ({"theme:Late"} if DELAY in r.features
                                                 else frozenset())) for r in rows]
    twins += [DriverInput(5.0, frozenset({"theme:Rare"}))] * 2
    model = key_driver_regression("nps", twins)
    dropped = {d.feature: d.dropped for d in model.drivers if d.dropped}
    assert "theme:Rare" in dropped and "too few" in (dropped["theme:Rare"] or "")
    collinear = [f for f in (DELAY, "theme:Late") if f in dropped]
    assert len(collinear) == 1
    assert "cannot be separated" in (dropped[collinear[0]] or "")
    assert all(d.coefficient is None for d in model.drivers if d.dropped)


def test_regression_small_sample_warns() -> None:
    rows = [DriverInput(float(s), frozenset({"a"} if i % 2 else {"b"} if i % 3 else set()))
            for i, s in enumerate([10, 9, 3, 5, 8, 7, 6, 10, 0, 9, 9, 4])]
    model = key_driver_regression("nps", rows, min_count=2)
    assert any("rough guide" in w for w in model.warnings)
    assert key_driver_regression("nps", []).responses == 0


def test_regression_perfect_fit_has_no_p_values_and_no_warnings() -> None:
    rows = [DriverInput(0.0, frozenset({"a"}))] * 10 + [DriverInput(10.0, frozenset())] * 10
    model = key_driver_regression("nps", rows)
    (driver,) = model.drivers
    assert driver.coefficient == pytest.approx(-200.0) and driver.p_value is None
    assert any("exactly" in w for w in model.warnings)


def test_ties_in_impact_sorted_by_name() -> None:
    rows = [DriverInput(0.0, frozenset({"b"})), DriverInput(0.0, frozenset({"a"})),
            DriverInput(10.0, frozenset()), DriverInput(10.0, frozenset())]
    assert [d.feature for d in analyze_drivers("nps", rows)] == ["a", "b"]


@settings(max_examples=80)
@given(st.lists(st.tuples(st.integers(0, 10), st.frozensets(st.sampled_from("abc"))),
                max_size=30),
       st.integers(1, 5))
def test_property_any_input_is_consistent(pairs: list[tuple[int, frozenset[str]]],
                                          min_count: int) -> None:
    rows = [DriverInput(float(s), f) for s, f in pairs]
    drivers = analyze_drivers("nps", rows, min_count=min_count)
    for d in drivers:
        assert d.with_count + d.without_count == len(rows)
        assert d.impact == pytest.approx(d.difference * d.with_count / len(rows), abs=1e-9)
        assert d.p_value is None or 0.0 <= d.p_value <= 1.0
        assert not d.significant or (d.with_count >= min_count and d.without_count >= min_count)
    assert [abs(d.impact) for d in drivers] == sorted((abs(d.impact) for d in drivers),
                                                      reverse=True)
    model = key_driver_regression("nps", rows, min_count=max(min_count, 1))
    assert len(model.drivers) == len(drivers)
