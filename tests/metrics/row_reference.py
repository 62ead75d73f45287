"""The row-based NPS, CSAT and CES exactly as ``cxm.metrics.kpi`` computed them before the
counts path (one pass over every answer's score and weight). Frozen here as the oracle the
counts-based maths is tested against; not used by the product.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from cxm.metrics.kpi import DEFAULT_LEVEL, Interval, KpiResult

_NPS_ADD_N = 3.0
_NPS_ADD_EACH = 0.75

FloatArray = NDArray[np.float64]


def _bottom_max(scale_max: int, top_min: int) -> int:
    return min(scale_max - top_min + 1, top_min - 1)


def nps(scores: Iterable[float], weights: Iterable[float] | None = None, *,
        level: float = DEFAULT_LEVEL) -> KpiResult:
    """Net Promoter Score: % promoters (9–10) − % detractors (0–6), in -100..100.

    Interval: adjusted Wald for the difference of two trinomial proportions. With
    ``p`` and ``d`` the promoter and detractor shares after adding ¾ promoter, ¾ detractor and
    1½ passive pseudo-answers (``n' = n_eff + 3``), the interval is
    ``100·(p − d) ± z·100·√((p + d − (p − d)²) / n')``. It is centred on the slightly shrunk
    adjusted score, so it is not symmetric around ``value``; it is clamped to -100..100 and,
    should a tiny effective sample (heavy weights) leave ``value`` outside, widened to include it.
    """
    z = _z(level)
    x, w = _prepare(scores, weights, 0, 10, "NPS")
    promoter = x >= 9
    detractor = x < 7
    passive = ~promoter & ~detractor
    counts = {"promoters": int(promoter.sum()), "passives": int(passive.sum()),
              "detractors": int(detractor.sum())}
    distribution = _distribution(x, 0, 10)
    if x.size == 0:
        return _empty_result("nps", counts, distribution, (0, 10))
    total = float(w.sum())
    p = float(w[promoter].sum()) / total
    d = float(w[detractor].sum()) / total
    value = 100.0 * (p - d)
    ci = None
    if _positive(w) >= 2:
        n_adj = _n_eff(w) + _NPS_ADD_N
        pa = (p * (n_adj - _NPS_ADD_N) + _NPS_ADD_EACH) / n_adj
        da = (d * (n_adj - _NPS_ADD_N) + _NPS_ADD_EACH) / n_adj
        centre = pa - da
        se = math.sqrt(max(pa + da - centre * centre, 0.0) / n_adj)
        ci = _interval(100.0 * (centre - z * se), 100.0 * (centre + z * se), value,
                       -100.0, 100.0, level)
    shares = {"promoters": 100.0 * p, "passives": 100.0 * (1.0 - p - d),
              "detractors": 100.0 * d}
    return KpiResult("nps", value, int(x.size), total, counts, ci, distribution, shares, (0, 10))


def csat(scores: Iterable[float], weights: Iterable[float] | None = None, *,
         scale_max: int = 5, satisfied_min: int = 4, level: float = DEFAULT_LEVEL) -> KpiResult:
    """Customer Satisfaction: % of answers scoring ``satisfied_min`` or more on 1..scale_max.

    Default is top-2-box on 1..5. Interval: Wilson score interval for a proportion, with the
    effective sample size standing in for ``n`` when weighted. Wilson (not the textbook
    ``p ± z√(p(1−p)/n)``) because it stays inside 0..100 and is not zero-width at 0 % or 100 %.
    """
    _check_scale(scale_max, satisfied_min, "satisfied_min")
    _z(level)
    x, w = _prepare(scores, weights, 1, scale_max, "CSAT")
    top = x >= satisfied_min
    bottom = x <= _bottom_max(scale_max, satisfied_min)
    mid = ~top & ~bottom
    distribution = _distribution(x, 1, scale_max)
    counts = {"satisfied": int(top.sum()), "neutral": int(mid.sum()),
              "dissatisfied": int(bottom.sum()), **distribution}
    if x.size == 0:
        return _empty_result("csat", counts, distribution, (1, scale_max))
    total = float(w.sum())
    p = float(w[top].sum()) / total
    b = float(w[bottom].sum()) / total
    value = 100.0 * p
    ci = None
    if _positive(w) >= 2:
        low, high = _wilson(p, _n_eff(w), level)
        ci = _interval(100.0 * low, 100.0 * high, value, 0.0, 100.0, level)
    shares = {"satisfied": value, "neutral": 100.0 * (1.0 - p - b), "dissatisfied": 100.0 * b}
    return KpiResult("csat", value, int(x.size), total, counts, ci, distribution, shares,
                     (1, scale_max))


def ces(scores: Iterable[float], weights: Iterable[float] | None = None, *,
        scale_max: int = 7, easy_min: int = 5, level: float = DEFAULT_LEVEL) -> KpiResult:
    """Customer Effort Score: mean answer on 1..scale_max (default 1..7, higher = easier).

    Interval: Student t, ``mean ± t(1 − α/2, n − 1) · s / √n``. Weighted: weighted mean, the
    weighted variance ``Σw(x − x̄)²/Σw`` inflated by ``n_eff/(n_eff − 1)`` and ``n = n_eff``
    (fractional degrees of freedom are fine for the t distribution). When every answer is
    identical ``s = 0`` and the interval has zero width — that is what the t method says; read it
    together with ``responses``.
    """
    _check_scale(scale_max, easy_min, "easy_min")
    _z(level)
    x, w = _prepare(scores, weights, 1, scale_max, "CES")
    top = x >= easy_min
    bottom = x <= _bottom_max(scale_max, easy_min)
    mid = ~top & ~bottom
    distribution = _distribution(x, 1, scale_max)
    counts = {"easy": int(top.sum()), "neutral": int(mid.sum()), "difficult": int(bottom.sum()),
              **distribution}
    if x.size == 0:
        return _empty_result("ces", counts, distribution, (1, scale_max))
    total = float(w.sum())
    mean = float(np.dot(w, x)) / total
    ci = None
    if _positive(w) >= 2:
        n_eff = _n_eff(w)
        # Guard against n_eff rounding to exactly 1 with extreme weights.
        df = max(n_eff - 1.0, 1e-9)
        var = float(np.dot(w, (x - mean) ** 2)) / total * n_eff / df
        half = 0.0
        if var > 0:
            half = float(stats.t.ppf(0.5 + level / 2.0, df)) * math.sqrt(var / n_eff)
        if not math.isfinite(half):
            half = float(scale_max)
        ci = _interval(mean - half, mean + half, mean, 1.0, float(scale_max), level)
    shares = {"easy": 100.0 * float(w[top].sum()) / total,
              "neutral": 100.0 * float(w[mid].sum()) / total,
              "difficult": 100.0 * float(w[bottom].sum()) / total}
    return KpiResult("ces", mean, int(x.size), total, counts, ci, distribution, shares,
                     (1, scale_max))



def _check_scale(scale_max: int, top_min: int, name: str) -> None:
    if int(scale_max) != scale_max or scale_max < 2:
        raise ValueError(f"scale_max must be a whole number ≥ 2; got {scale_max!r}")
    if int(top_min) != top_min or not 2 <= top_min <= scale_max:
        raise ValueError(f"{name} must be a whole number from 2 to {scale_max}; got {top_min!r}")


def _check_one(score: float, low: int, high: int, label: str) -> float:
    x, _ = _prepare([score], None, low, high, label)
    return float(x[0])


def _prepare(scores: Iterable[float], weights: Iterable[float] | None, low: int, high: int,
             label: str) -> tuple[FloatArray, FloatArray]:
    """Validate and convert to float arrays; raise ``ValueError`` naming the first bad item."""
    raw = list(scores)
    for i, item in enumerate(raw):
        # numpy would quietly parse "9"; a string here means a caller forgot to convert.
        if isinstance(item, str | bytes):
            raise ValueError(f"{label} scores must be numbers; got {item!r} at position {i}")
    try:
        x = np.asarray(raw, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{label} scores must be numbers: {exc}") from None
    if x.size != len(raw):
        raise ValueError(f"{label} scores must be a flat sequence of numbers")
    bad = ~np.isfinite(x) | (x != np.round(x)) | (x < low) | (x > high)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{label} scores must be whole numbers from {low} to {high}; "
                         f"got {raw[i]!r} at position {i}")
    if weights is None:
        return x, np.ones_like(x)
    raw_w = list(weights)
    try:
        w = np.asarray(raw_w, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"weights must be numbers: {exc}") from None
    if w.size != x.size or len(raw_w) != x.size:
        raise ValueError(f"got {x.size} scores but {len(raw_w)} weights")
    wrong = ~np.isfinite(w) | (w < 0)
    if wrong.any():
        i = int(np.argmax(wrong))
        raise ValueError(f"weights must be finite and ≥ 0; got {raw_w[i]!r} at position {i}")
    if not math.isfinite(float(w.sum())):
        raise ValueError("weights are too large: their sum overflows")
    if x.size and not (w > 0).any():
        raise ValueError("weights are all zero; at least one answer must count")
    return x, w


def _distribution(x: FloatArray, low: int, high: int) -> dict[str, int]:
    counts = np.bincount((x - low).astype(np.int64), minlength=high - low + 1)
    return {str(low + i): int(c) for i, c in enumerate(counts)}


def _empty_result(kind: str, counts: dict[str, int], distribution: dict[str, int],
                  scale: tuple[int, int]) -> KpiResult:
    return KpiResult(kind, None, 0, 0.0, counts, None, distribution, {}, scale)


def _positive(w: FloatArray) -> int:
    return int((w > 0).sum())


def _n_eff(w: FloatArray) -> float:
    """Kish's effective sample size; equals ``n`` when all weights are equal."""
    # Scale first so that tiny or huge weights cannot under/overflow Σw².
    scaled = w / float(w.max())
    return float(scaled.sum()) ** 2 / float(np.dot(scaled, scaled))


def _z(level: float) -> float:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be between 0 and 1; got {level!r}")
    return float(stats.norm.ppf(0.5 + level / 2.0))


def _wilson(p: float, n: float, level: float) -> tuple[float, float]:
    z = _z(level)
    z2n = z * z / n
    centre = (p + z2n / 2.0) / (1.0 + z2n)
    half = z / (1.0 + z2n) * math.sqrt(max(p * (1.0 - p) / n + z2n / (4.0 * n), 0.0))
    return centre - half, centre + half


def _interval(low: float, high: float, value: float, floor: float, ceiling: float,
              level: float) -> Interval:
    # Rounding in the Wilson/adjusted formulas can leave the estimate a hair outside its own
    # interval; a CI that excludes the number printed beside it only confuses readers.
    low = max(floor, min(low, value))
    high = min(ceiling, max(high, value))
    return Interval(low, high, level)


def compute(kind: str, scores: Iterable[float], weights: Iterable[float] | None = None
            ) -> KpiResult:
    return {"nps": nps, "csat": csat, "ces": ces}[kind](scores, weights)
