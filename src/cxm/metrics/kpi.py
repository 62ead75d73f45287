"""Survey KPIs: NPS, CSAT, CES and response rate, each with a confidence interval.

Every function takes plain scores (and optional non-negative weights) and returns a frozen
:class:`KpiResult`; nothing here touches the database, so callers aggregate however they like
and tests need no fixtures.

Conventions shared by all KPIs:

- Scores must be finite whole numbers on the KPI's scale; anything else raises ``ValueError``
  naming the first offending position. Silently dropping or rounding a bad score would hide an
  ingest bug behind a plausible-looking number.
- ``weights`` (optional) must be finite, non-negative, the same length as ``scores`` and not all
  zero. Values are weighted; ``counts`` and ``responses`` stay unweighted (what an analyst means
  by "how many people answered"); intervals use Kish's effective sample size
  ``n_eff = (Σw)² / Σw²`` so that up-weighting does not fake precision.
- ``value`` is ``None`` when there are no answers; ``ci`` is ``None`` when fewer than two answers
  carry a positive weight (an interval from one answer would be pure decoration).
- Intervals are clamped to the KPI's range, and always contain ``value``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import stats

__all__ = [
    "KINDS",
    "Interval",
    "KpiResult",
    "RateResult",
    "ScoreCounts",
    "ces",
    "ces_from_counts",
    "classify_ces",
    "classify_csat",
    "classify_nps",
    "compute",
    "compute_from_counts",
    "contributions",
    "csat",
    "csat_from_counts",
    "empty",
    "nps",
    "nps_from_counts",
    "response_rate",
]

KINDS: tuple[str, ...] = ("nps", "csat", "ces")
DEFAULT_LEVEL = 0.95

# Adjusted-Wald pseudo-counts for NPS (Rocks 2016, The American Statistician; the method
# MeasuringU recommends): add 3 answers — ¾ promoter, ¾ detractor, 1½ passive. Coverage stays
# close to 95 % for small samples and a sample of all promoters or all passives still gets an
# honest, non-zero-width interval.
_NPS_ADD_N = 3.0
_NPS_ADD_EACH = 0.75

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

# ScoreCounts.of accepts any whole-number scale; the KPI checks its own when computing.
_ANY_SCALE = 10**9


@dataclass(frozen=True)
class Interval:
    """A two-sided confidence interval on the KPI's own scale."""

    low: float
    high: float
    level: float = DEFAULT_LEVEL

    def as_dict(self, digits: int = 1) -> dict[str, float]:
        return {"low": round(self.low, digits), "high": round(self.high, digits),
                "level": self.level}


@dataclass(frozen=True)
class KpiResult:
    """One KPI over one set of answers.

    ``counts`` keys (all present, zeros included, so charts never miss a bar):

    - nps: ``"promoters"``, ``"passives"``, ``"detractors"``.
    - csat: ``"satisfied"``, ``"neutral"``, ``"dissatisfied"`` and one key per scale point,
      ``"1"`` … ``str(scale_max)``.
    - ces: ``"easy"``, ``"neutral"``, ``"difficult"`` and one key per scale point,
      ``"1"`` … ``str(scale_max)``.

    ``distribution`` holds the per-scale-point counts alone for every kind (``"0"``…``"10"``
    for NPS), and ``shares`` the weighted percentage of each class (sums to 100).
    """

    kind: str
    value: float | None
    responses: int
    weighted_responses: float
    counts: dict[str, int]
    ci: Interval | None
    distribution: dict[str, int] = field(default_factory=dict)
    shares: dict[str, float] = field(default_factory=dict)
    scale: tuple[int, int] = (0, 0)

    @property
    def value_range(self) -> tuple[float, float]:
        """Range ``value`` lives in: -100..100 (NPS), 0..100 (CSAT), the answer scale (CES)."""
        return _value_range(self.kind, self.scale)

    def as_dict(self) -> dict[str, Any]:
        digits = 2 if self.kind == "ces" else 1
        return {
            "kind": self.kind,
            "value": None if self.value is None else round(self.value, digits),
            "responses": self.responses,
            "weighted_responses": round(self.weighted_responses, 3),
            "counts": dict(self.counts),
            "distribution": dict(self.distribution),
            "shares": {k: round(v, 1) for k, v in self.shares.items()},
            "scale": list(self.scale),
            "ci": None if self.ci is None else self.ci.as_dict(digits),
        }


@dataclass(frozen=True)
class RateResult:
    """Response rate: ``value`` is the percentage of invited people who answered."""

    value: float | None
    invited: int
    responded: int
    ci: Interval | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "value": None if self.value is None else round(self.value, 1),
            "invited": self.invited,
            "responded": self.responded,
            "ci": None if self.ci is None else self.ci.as_dict(1),
        }


@dataclass(frozen=True)
class ScoreCounts:
    """A set of answers reduced to what every KPI here needs: per score value, how many answers
    gave it and — when weighted — how many of those carry a positive weight, the sum of their
    weights and the sum of their squared weights.

    That is exactly what a database returns from one ``GROUP BY score`` (``COUNT(*)``,
    ``SUM(w)``, ``SUM(w * w)``), so a KPI over millions of answers needs at most a dozen rows
    per slice instead of every answer. ``weights`` is None for unweighted answers (each weighs
    1). ``squares`` holds ``Σ(w / unit)²``: :meth:`of` scales by a power of two near the largest
    weight so that squares of huge or tiny weights neither overflow nor vanish; from a
    database ``unit`` is 1.
    Keys are score values (``9`` and ``9.0`` are the same key); they are checked against the
    KPI's scale when a KPI is computed, not here.
    """

    counts: Mapping[float, int]
    weights: Mapping[float, float] | None = None
    squares: Mapping[float, float] | None = None
    positive: Mapping[float, int] | None = None
    unit: float = 1.0

    def __post_init__(self) -> None:
        given = [m is not None for m in (self.weights, self.squares, self.positive)]
        if any(given) and not all(given):
            raise ValueError("weighted counts need weights, squares and positive together")
        if not (math.isfinite(self.unit) and self.unit > 0):
            raise ValueError(f"unit must be finite and > 0; got {self.unit!r}")

    @classmethod
    def of(cls, scores: Iterable[float], weights: Iterable[float] | None = None
           ) -> ScoreCounts:
        """Tally answers (checked like the KPI functions check them, on any whole scale)."""
        # A group may weigh nothing at all; the KPI refuses that only for the whole tally.
        x, w = _prepare(scores, weights, -_ANY_SCALE, _ANY_SCALE, "answer", all_zero=True)
        low = int(x.min()) if x.size else 0
        high = int(x.max()) if x.size else 0
        return _tally(x, w, low, high, weighted=weights is not None)

    @property
    def weighted(self) -> bool:
        return self.weights is not None

    @property
    def responses(self) -> int:
        return sum(int(n) for n in self.counts.values())

    def __add__(self, other: ScoreCounts) -> ScoreCounts:
        """The tally of both sets of answers (a slice made of several groups)."""
        if not isinstance(other, ScoreCounts):
            return NotImplemented
        if not self.weighted and not other.weighted:
            merged: dict[float, int] = dict(self.counts)
            for key, n in other.counts.items():
                merged[key] = merged.get(key, 0) + n
            return ScoreCounts(merged)
        unit = max(self.unit, other.unit)
        counts: dict[float, int] = {}
        weights: dict[float, float] = {}
        squares: dict[float, float] = {}
        positive: dict[float, int] = {}
        for part in (self, other):
            scale = (part.unit / unit) ** 2
            for key, n in part.counts.items():
                counts[key] = counts.get(key, 0) + n
                w, sq, pos = part._weighted(key)
                weights[key] = weights.get(key, 0.0) + w
                squares[key] = squares.get(key, 0.0) + sq * scale
                positive[key] = positive.get(key, 0) + pos
        return ScoreCounts(counts, weights, squares, positive, unit)

    def _weighted(self, key: float) -> tuple[float, float, int]:
        """(Σw, Σ(w/unit)², answers with w > 0) of one score value."""
        if self.weights is None or self.squares is None or self.positive is None:
            n = int(self.counts.get(key, 0))
            return float(n), float(n), n
        return (float(self.weights.get(key, 0.0)), float(self.squares.get(key, 0.0)),
                int(self.positive.get(key, 0)))


# --- classification -----------------------------------------------------------------------


def classify_nps(score: float) -> str:
    """``"promoter"`` (9–10), ``"passive"`` (7–8) or ``"detractor"`` (0–6)."""
    value = _check_one(score, 0, 10, "NPS")
    if value >= 9:
        return "promoter"
    if value >= 7:
        return "passive"
    return "detractor"


def _bottom_max(scale_max: int, top_min: int) -> int:
    """Highest score in the bottom box: the mirror image of the top box on a 1..N scale.

    On 1..5 with top-2-box (4–5) that is 1–2, leaving 3 neutral; on 1..7 with 5–7 "easy" it is
    1–3, leaving 4 neutral. Never overlaps the top box when the top box is wider than half.
    """
    return min(scale_max - top_min + 1, top_min - 1)


def classify_csat(score: float, *, scale_max: int = 5, satisfied_min: int = 4) -> str:
    """``"satisfied"`` (≥ satisfied_min), ``"dissatisfied"`` (mirror box) or ``"neutral"``."""
    _check_scale(scale_max, satisfied_min, "satisfied_min")
    value = _check_one(score, 1, scale_max, "CSAT")
    if value >= satisfied_min:
        return "satisfied"
    if value <= _bottom_max(scale_max, satisfied_min):
        return "dissatisfied"
    return "neutral"


def classify_ces(score: float, *, scale_max: int = 7, easy_min: int = 5) -> str:
    """``"easy"`` (≥ easy_min), ``"difficult"`` (mirror box, ≤ 3 on 1..7) or ``"neutral"``."""
    _check_scale(scale_max, easy_min, "easy_min")
    value = _check_one(score, 1, scale_max, "CES")
    if value >= easy_min:
        return "easy"
    if value <= _bottom_max(scale_max, easy_min):
        return "difficult"
    return "neutral"


# --- KPIs ---------------------------------------------------------------------------------


def nps(scores: Iterable[float], weights: Iterable[float] | None = None, *,
        level: float = DEFAULT_LEVEL) -> KpiResult:
    """Net Promoter Score: % promoters (9–10) − % detractors (0–6), in -100..100.

    Interval: see :func:`nps_from_counts` — the answers are tallied per score value and the
    tally decides everything, so a database's ``GROUP BY score`` gives the same result.
    """
    x, w = _prepare(scores, weights, 0, 10, "NPS")
    return nps_from_counts(_tally(x, w, 0, 10, weighted=weights is not None), level=level)


def csat(scores: Iterable[float], weights: Iterable[float] | None = None, *,
         scale_max: int = 5, satisfied_min: int = 4, level: float = DEFAULT_LEVEL) -> KpiResult:
    """Customer Satisfaction: % of answers scoring ``satisfied_min`` or more on 1..scale_max.

    Default is top-2-box on 1..5; interval: see :func:`csat_from_counts`.
    """
    _check_scale(scale_max, satisfied_min, "satisfied_min")
    x, w = _prepare(scores, weights, 1, scale_max, "CSAT")
    return csat_from_counts(_tally(x, w, 1, scale_max, weighted=weights is not None),
                            scale_max=scale_max, satisfied_min=satisfied_min, level=level)


def ces(scores: Iterable[float], weights: Iterable[float] | None = None, *,
        scale_max: int = 7, easy_min: int = 5, level: float = DEFAULT_LEVEL) -> KpiResult:
    """Customer Effort Score: mean answer on 1..scale_max (default 1..7, higher = easier).

    Interval: see :func:`ces_from_counts`.
    """
    _check_scale(scale_max, easy_min, "easy_min")
    x, w = _prepare(scores, weights, 1, scale_max, "CES")
    return ces_from_counts(_tally(x, w, 1, scale_max, weighted=weights is not None),
                           scale_max=scale_max, easy_min=easy_min, level=level)


# --- the same KPIs from counts per score value ----------------------------------------------


def nps_from_counts(counts: ScoreCounts, *, level: float = DEFAULT_LEVEL) -> KpiResult:
    """:func:`nps` from a tally per score value.

    Interval: adjusted Wald for the difference of two trinomial proportions. With
    ``p`` and ``d`` the promoter and detractor shares after adding ¾ promoter, ¾ detractor and
    1½ passive pseudo-answers (``n' = n_eff + 3``), the interval is
    ``100·(p − d) ± z·100·√((p + d − (p − d)²) / n')``. It is centred on the slightly shrunk
    adjusted score, so it is not symmetric around ``value``; it is clamped to -100..100 and,
    should a tiny effective sample (heavy weights) leave ``value`` outside, widened to include it.
    """
    z = _z(level)
    t = _Table.of(counts, 0, 10, "NPS")
    promoter = t.values >= 9
    detractor = t.values < 7
    passive = ~promoter & ~detractor
    counts_out = {"promoters": t.count(promoter), "passives": t.count(passive),
                  "detractors": t.count(detractor)}
    distribution = t.distribution()
    if t.responses == 0:
        return _empty_result("nps", counts_out, distribution, (0, 10))
    total = t.total
    p = t.weight(promoter) / total
    d = t.weight(detractor) / total
    value = 100.0 * (p - d)
    ci = None
    if t.positive >= 2:
        n_adj = t.n_eff + _NPS_ADD_N
        pa = (p * (n_adj - _NPS_ADD_N) + _NPS_ADD_EACH) / n_adj
        da = (d * (n_adj - _NPS_ADD_N) + _NPS_ADD_EACH) / n_adj
        centre = pa - da
        se = math.sqrt(max(pa + da - centre * centre, 0.0) / n_adj)
        ci = _interval(100.0 * (centre - z * se), 100.0 * (centre + z * se), value,
                       -100.0, 100.0, level)
    shares = {"promoters": 100.0 * p, "passives": 100.0 * (1.0 - p - d),
              "detractors": 100.0 * d}
    return KpiResult("nps", value, t.responses, total, counts_out, ci, distribution, shares,
                     (0, 10))


def csat_from_counts(counts: ScoreCounts, *, scale_max: int = 5, satisfied_min: int = 4,
                     level: float = DEFAULT_LEVEL) -> KpiResult:
    """:func:`csat` from a tally per score value.

    Interval: Wilson score interval for a proportion, with the effective sample size standing
    in for ``n`` when weighted. Wilson (not the textbook ``p ± z√(p(1−p)/n)``) because it stays
    inside 0..100 and is not zero-width at 0 % or 100 %.
    """
    _check_scale(scale_max, satisfied_min, "satisfied_min")
    _z(level)
    t = _Table.of(counts, 1, scale_max, "CSAT")
    top = t.values >= satisfied_min
    bottom = t.values <= _bottom_max(scale_max, satisfied_min)
    mid = ~top & ~bottom
    distribution = t.distribution()
    counts_out = {"satisfied": t.count(top), "neutral": t.count(mid),
                  "dissatisfied": t.count(bottom), **distribution}
    if t.responses == 0:
        return _empty_result("csat", counts_out, distribution, (1, scale_max))
    total = t.total
    p = t.weight(top) / total
    b = t.weight(bottom) / total
    value = 100.0 * p
    ci = None
    if t.positive >= 2:
        low, high = _wilson(p, t.n_eff, level)
        ci = _interval(100.0 * low, 100.0 * high, value, 0.0, 100.0, level)
    shares = {"satisfied": value, "neutral": 100.0 * (1.0 - p - b), "dissatisfied": 100.0 * b}
    return KpiResult("csat", value, t.responses, total, counts_out, ci, distribution, shares,
                     (1, scale_max))


def ces_from_counts(counts: ScoreCounts, *, scale_max: int = 7, easy_min: int = 5,
                    level: float = DEFAULT_LEVEL) -> KpiResult:
    """:func:`ces` from a tally per score value.

    Interval: Student t, ``mean ± t(1 − α/2, n − 1) · s / √n``. Weighted: weighted mean, the
    weighted variance ``Σw(x − x̄)²/Σw`` inflated by ``n_eff/(n_eff − 1)`` and ``n = n_eff``
    (fractional degrees of freedom are fine for the t distribution). When every answer is
    identical ``s = 0`` and the interval has zero width — that is what the t method says; read it
    together with ``responses``. ``Σw(x − x̄)²`` is summed per score value
    (``W_v·(v − x̄)²``), which is the same sum grouped, not an approximation.
    """
    _check_scale(scale_max, easy_min, "easy_min")
    _z(level)
    t = _Table.of(counts, 1, scale_max, "CES")
    top = t.values >= easy_min
    bottom = t.values <= _bottom_max(scale_max, easy_min)
    mid = ~top & ~bottom
    distribution = t.distribution()
    counts_out = {"easy": t.count(top), "neutral": t.count(mid), "difficult": t.count(bottom),
                  **distribution}
    if t.responses == 0:
        return _empty_result("ces", counts_out, distribution, (1, scale_max))
    total = t.total
    mean = float(np.dot(t.weights, t.values)) / total
    answered = t.values[t.weights > 0]
    if len(answered) == 1:
        # One score value only: the mean is that value exactly. Σwx/Σw can miss it in the
        # last bit, and that bit, squared, is a variance > 0 which a t quantile at an effective
        # n near 1 (df → 0) blows up into an interval spanning the scale.
        mean = float(answered[0])
    ci = None
    if t.positive >= 2:
        n_eff = t.n_eff
        # Guard against n_eff rounding to exactly 1 with extreme weights.
        df = max(n_eff - 1.0, 1e-9)
        var = float(np.dot(t.weights, (t.values - mean) ** 2)) / total * n_eff / df
        half = 0.0
        if var > 0:
            half = float(stats.t.ppf(0.5 + level / 2.0, df)) * math.sqrt(var / n_eff)
        if not math.isfinite(half):
            half = float(scale_max)
        ci = _interval(mean - half, mean + half, mean, 1.0, float(scale_max), level)
    shares = {"easy": 100.0 * t.weight(top) / total,
              "neutral": 100.0 * t.weight(mid) / total,
              "difficult": 100.0 * t.weight(bottom) / total}
    return KpiResult("ces", mean, t.responses, total, counts_out, ci, distribution, shares,
                     (1, scale_max))


def compute_from_counts(kind: str, counts: ScoreCounts, **options: Any) -> KpiResult:
    """:func:`compute` from a tally per score value (e.g. a database's ``GROUP BY score``).

    Equal to ``compute(kind, scores, weights)`` on the answers the tally was made from —
    bit for bit when the per-value sums are exact (always for unweighted answers): the row
    functions tally first and call this.
    """
    if kind == "nps":
        return nps_from_counts(counts, **options)
    if kind == "csat":
        return csat_from_counts(counts, **options)
    if kind == "ces":
        return ces_from_counts(counts, **options)
    raise ValueError(f"unknown KPI kind {kind!r}; expected one of {', '.join(KINDS)}")


def compute(kind: str, scores: Iterable[float], weights: Iterable[float] | None = None,
            **options: Any) -> KpiResult:
    """Dispatch to :func:`nps`, :func:`csat` or :func:`ces` by name.

    ``options`` are passed through (``scale_max``, ``satisfied_min``, ``easy_min``, ``level``).
    """
    if kind == "nps":
        return nps(scores, weights, **options)
    if kind == "csat":
        return csat(scores, weights, **options)
    if kind == "ces":
        return ces(scores, weights, **options)
    raise ValueError(f"unknown KPI kind {kind!r}; expected one of {', '.join(KINDS)}")


def empty(kind: str, **options: Any) -> KpiResult:
    """The result for no answers (``value`` None) — what an empty time bucket shows."""
    return compute(kind, [], None, **options)


def contributions(kind: str, scores: Iterable[float], **options: Any) -> FloatArray:
    """Each answer's contribution, whose (weighted) mean is the KPI itself.

    NPS: +100 promoter, 0 passive, −100 detractor. CSAT: 100 if satisfied else 0. CES: the score.
    Driver analysis compares means of these, so a difference of means is a difference in KPI
    points.
    """
    if kind == "nps":
        x, _ = _prepare(scores, None, 0, 10, "NPS")
        return np.where(x >= 9, 100.0, np.where(x >= 7, 0.0, -100.0))
    if kind == "csat":
        scale_max = int(options.get("scale_max", 5))
        satisfied_min = int(options.get("satisfied_min", 4))
        _check_scale(scale_max, satisfied_min, "satisfied_min")
        x, _ = _prepare(scores, None, 1, scale_max, "CSAT")
        return np.where(x >= satisfied_min, 100.0, 0.0)
    if kind == "ces":
        scale_max = int(options.get("scale_max", 7))
        _check_scale(scale_max, int(options.get("easy_min", 5)), "easy_min")
        x, _ = _prepare(scores, None, 1, scale_max, "CES")
        return x
    raise ValueError(f"unknown KPI kind {kind!r}; expected one of {', '.join(KINDS)}")


def response_rate(invited: int, responded: int, *, level: float = DEFAULT_LEVEL) -> RateResult:
    """Percentage of invited people who answered, with a Wilson interval.

    ``value`` and ``ci`` are ``None`` when nobody was invited.
    """
    _z(level)
    for name, number in (("invited", invited), ("responded", responded)):
        if isinstance(number, bool) or int(number) != number or number < 0:
            raise ValueError(f"{name} must be a whole number ≥ 0; got {number!r}")
    if responded > invited:
        raise ValueError(f"responded ({responded}) cannot exceed invited ({invited})")
    if invited == 0:
        return RateResult(None, 0, int(responded), None)
    p = responded / invited
    low, high = _wilson(p, float(invited), level)
    ci = _interval(100.0 * low, 100.0 * high, 100.0 * p, 0.0, 100.0, level)
    return RateResult(100.0 * p, int(invited), int(responded), ci)


# --- helpers ------------------------------------------------------------------------------


def _value_range(kind: str, scale: tuple[int, int]) -> tuple[float, float]:
    if kind == "nps":
        return (-100.0, 100.0)
    if kind == "csat":
        return (0.0, 100.0)
    return (float(scale[0]), float(scale[1]))


def _check_scale(scale_max: int, top_min: int, name: str) -> None:
    if int(scale_max) != scale_max or scale_max < 2:
        raise ValueError(f"scale_max must be a whole number ≥ 2; got {scale_max!r}")
    if int(top_min) != top_min or not 2 <= top_min <= scale_max:
        raise ValueError(f"{name} must be a whole number from 2 to {scale_max}; got {top_min!r}")


def _check_one(score: float, low: int, high: int, label: str) -> float:
    x, _ = _prepare([score], None, low, high, label)
    return float(x[0])


def _prepare(scores: Iterable[float], weights: Iterable[float] | None, low: int, high: int,
             label: str, *, all_zero: bool = False) -> tuple[FloatArray, FloatArray]:
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
    if x.size and not all_zero and not (w > 0).any():
        raise ValueError("weights are all zero; at least one answer must count")
    return x, w


def _empty_result(kind: str, counts: dict[str, int], distribution: dict[str, int],
                  scale: tuple[int, int]) -> KpiResult:
    return KpiResult(kind, None, 0, 0.0, counts, None, distribution, {}, scale)


def _tally(x: FloatArray, w: FloatArray, low: int, high: int, *, weighted: bool
           ) -> ScoreCounts:
    """Checked scores (and weights) on ``low..high`` → their :class:`ScoreCounts`."""
    size = high - low + 1
    index = (x - low).astype(np.int64)
    counts = np.bincount(index, minlength=size)
    keys = [low + i for i in range(size) if counts[i]]
    tally: dict[float, int] = {k: int(counts[k - low]) for k in keys}
    if not weighted:
        return ScoreCounts(tally)
    # A power of two near the largest weight: dividing by it is exact, so tallies of exactly
    # representable weights add up to exactly the tally of all their answers.
    largest = float(w.max()) if w.size else 0.0
    unit = math.ldexp(1.0, math.frexp(largest)[1]) if largest > 0 else 1.0
    sums = np.bincount(index, weights=w, minlength=size)
    squares = np.bincount(index, weights=(w / unit) ** 2, minlength=size)
    positive = np.bincount(index[w > 0], minlength=size)
    return ScoreCounts(tally, {k: float(sums[k - low]) for k in keys},
                       {k: float(squares[k - low]) for k in keys},
                       {k: int(positive[k - low]) for k in keys}, unit)


@dataclass(frozen=True)
class _Table:
    """A :class:`ScoreCounts` checked against one scale, as arrays indexed by score − low."""

    low: int
    values: FloatArray
    counts: IntArray
    weights: FloatArray
    squares: FloatArray
    positives: IntArray
    unit: float

    @classmethod
    def of(cls, tally: ScoreCounts, low: int, high: int, label: str) -> _Table:
        if not isinstance(tally, ScoreCounts):
            raise ValueError(f"{label} counts must be a ScoreCounts; got {type(tally).__name__}")
        size = high - low + 1
        counts = np.zeros(size, dtype=np.int64)
        weights = np.zeros(size)
        squares = np.zeros(size)
        positives = np.zeros(size, dtype=np.int64)
        for key, n in tally.counts.items():
            if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
                raise ValueError(f"{label} answer counts must be whole numbers ≥ 0; got {n!r} "
                                 f"for score {key!r}")
            if n == 0:
                continue
            if (isinstance(key, str | bytes) or not isinstance(key, int | float | np.number)
                    or not math.isfinite(key) or key != round(key) or not low <= key <= high):
                raise ValueError(f"{label} scores must be whole numbers from {low} to {high}; "
                                 f"got {key!r} ({n} answers)")
            w, sq, pos = tally._weighted(key)
            if not (math.isfinite(w) and w >= 0 and math.isfinite(sq) and sq >= 0):
                raise ValueError(f"weights must be finite and ≥ 0; got a sum of {w!r} "
                                 f"for score {key!r}")
            if not 0 <= pos <= n or (pos == 0) != (w == 0):
                raise ValueError(f"{pos!r} positive weights do not fit {n} answers weighing "
                                 f"{w!r} for score {key!r}")
            i = int(key) - low
            counts[i] += n
            weights[i] += w
            squares[i] += sq
            positives[i] += pos
        table = cls(low, np.arange(low, high + 1, dtype=np.float64), counts, weights, squares,
                    positives, float(tally.unit))
        if not math.isfinite(table.total):
            raise ValueError("weights are too large: their sum overflows")
        if table.responses and table.total == 0:
            raise ValueError("weights are all zero; at least one answer must count")
        return table

    @property
    def responses(self) -> int:
        return int(self.counts.sum())

    @property
    def total(self) -> float:
        return float(self.weights.sum())

    @property
    def positive(self) -> int:
        return int(self.positives.sum())

    @property
    def n_eff(self) -> float:
        """Kish's effective sample size ``(Σw)² / Σw²``; equals ``n`` when all weights are
        equal. Computed on weights divided by ``unit`` so that Σw² cannot under/overflow."""
        return (self.total / self.unit) ** 2 / float(self.squares.sum())

    def count(self, mask: NDArray[np.bool_]) -> int:
        return int(self.counts[mask].sum())

    def weight(self, mask: NDArray[np.bool_]) -> float:
        return float(self.weights[mask].sum())

    def distribution(self) -> dict[str, int]:
        return {str(self.low + i): int(n) for i, n in enumerate(self.counts)}


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
