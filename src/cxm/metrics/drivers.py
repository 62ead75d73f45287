"""Driver analysis: which themes and touchpoints move NPS, CSAT or CES.

Each answer becomes a *contribution* whose mean is the KPI itself (:func:`cxm.metrics.kpi.
contributions`: NPS +100 / 0 / −100, CSAT 100 / 0, CES the raw score), so every difference below
is in the KPI's own points and an analyst can read it without translating.

Two views:

- :func:`analyze_drivers` — one feature at a time: answers with the feature against answers
  without it, Welch's t-test for significance, and the feature's *impact* on the overall score.
  Simple and robust, but blind to overlap: if "Delivery delay" always comes with "Refund", both
  look bad.
- :func:`key_driver_regression` — all features at once (ordinary least squares on 0/1
  indicators), so each coefficient is the effect of a feature *holding the others fixed*.
  Needs more answers and breaks down when features travel together; it says so in ``warnings``
  and drops features it cannot separate.

Both are associations in observational data, not proof of cause.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import linalg, sparse, stats

from cxm.metrics import kpi

__all__ = [
    "ALPHA",
    "Driver",
    "DriverInput",
    "RegressionDriver",
    "RegressionResult",
    "analyze_drivers",
    "describe_feature",
    "key_driver_regression",
]

ALPHA = 0.05
_LABELS = {"nps": "NPS", "csat": "CSAT", "ces": "CES"}
# Below this share of its own variation left unexplained by the features already in the model
# a feature is treated as a copy of them: its coefficient would be noise amplified ~1/tol.
_COLLINEAR_TOL = 1e-6
_VIF_WARN = 10.0

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class DriverInput:
    """One answer: its score and the features it has, e.g. ``"theme:Delivery delay"``,
    ``"touchpoint:email"`` (``group:label``; the group only shapes the wording)."""

    score: float
    features: frozenset[str]


@dataclass(frozen=True)
class Driver:
    """One feature, compared one at a time against all answers without it.

    ``impact`` is how many points the overall KPI would move if the answers with this feature
    had scored like the answers without it, i.e. ``overall − kpi_without``, which equals
    ``share_with × difference``. It is the feature's contribution to today's score: a frequent
    mild problem can matter more than a rare severe one. Negative = the feature pulls the
    score down. ``difference`` is ``kpi_with − kpi_without`` (0 when either side is empty).

    ``p_value`` comes from Welch's t-test on the contributions (None when a side has fewer than
    two answers or no answer varies; 0.0 when both sides are constant but differ — perfect
    separation). ``significant`` needs ``p < 0.05`` *and* at least ``min_count`` answers on each
    side. ``q_value`` is the Benjamini–Hochberg adjusted p-value across all features in the
    run: with many themes some reach p < 0.05 by luck, and ``q < 0.05`` keeps the expected
    share of false alarms among the flagged ones under 5 %.
    """

    feature: str
    with_count: int
    without_count: int
    kpi_with: float | None
    kpi_without: float | None
    impact: float
    difference: float
    p_value: float | None
    significant: bool
    summary: str
    q_value: float | None = None
    group: str = ""
    label: str = ""
    kind: str = ""

    def as_dict(self) -> dict[str, Any]:
        digits = 2 if self.kind == "ces" else 1
        return {
            "feature": self.feature, "group": self.group, "label": self.label,
            "with_count": self.with_count, "without_count": self.without_count,
            "kpi_with": _round(self.kpi_with, digits),
            "kpi_without": _round(self.kpi_without, digits),
            "impact": round(self.impact, digits), "difference": round(self.difference, digits),
            "p_value": _round(self.p_value, 6), "q_value": _round(self.q_value, 6),
            "significant": self.significant, "summary": self.summary,
        }


@dataclass(frozen=True)
class RegressionDriver:
    """One feature's effect holding the other features fixed.

    ``coefficient``: points an answer's contribution moves when the feature is present
    (None if the feature was dropped — see ``dropped``). ``impact`` = coefficient × share of
    answers with the feature, comparable to :attr:`Driver.impact`. ``vif`` (variance inflation
    factor) says how much overlap with other features blurs the estimate: 1 = none, above 10 =
    the coefficient is unreliable.
    """

    feature: str
    count: int
    coefficient: float | None
    std_error: float | None
    p_value: float | None
    significant: bool
    impact: float | None
    vif: float | None
    dropped: str | None
    summary: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "feature": self.feature, "count": self.count,
            "coefficient": _round(self.coefficient, 3), "std_error": _round(self.std_error, 3),
            "p_value": _round(self.p_value, 6), "significant": self.significant,
            "impact": _round(self.impact, 3), "vif": _round(self.vif, 2),
            "dropped": self.dropped, "summary": self.summary,
        }


@dataclass(frozen=True)
class RegressionResult:
    """``intercept`` is the expected contribution of an answer with none of the kept features;
    ``warnings`` lists in plain words why the numbers may be unreliable (empty = none found)."""

    kind: str
    responses: int
    intercept: float | None
    r_squared: float | None
    residual_df: int
    drivers: tuple[RegressionDriver, ...]
    warnings: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "responses": self.responses,
            "intercept": _round(self.intercept, 3), "r_squared": _round(self.r_squared, 4),
            "residual_df": self.residual_df,
            "drivers": [d.as_dict() for d in self.drivers], "warnings": list(self.warnings),
        }


# --- one feature at a time ----------------------------------------------------------------


def analyze_drivers(kind: str, rows: Sequence[DriverInput], *, min_count: int = 10,
                    alpha: float = ALPHA, **options: Any) -> list[Driver]:
    """Every feature seen in ``rows``, largest ``|impact|`` first (ties by feature name).

    ``options`` go to the KPI (``scale_max``, ``satisfied_min``, ``easy_min``). Features with
    fewer than ``min_count`` answers on either side are listed but never ``significant``.
    """
    _check_kind(kind)
    if min_count < 1:
        raise ValueError(f"min_count must be at least 1; got {min_count}")
    y = kpi.contributions(kind, [r.score for r in rows], **options)
    n = int(y.size)
    if n == 0:
        return []
    overall = float(y.mean())
    index = _feature_index(rows)
    found: list[tuple[str, int, int, float | None, float | None, float, float, float | None]] = []
    for feature, members in index.items():
        mask = np.zeros(n, dtype=bool)
        mask[members] = True
        a, b = y[mask], y[~mask]
        with_mean = float(a.mean())
        without_mean = float(b.mean()) if b.size else None
        if without_mean is None:
            difference = impact = 0.0
        else:
            difference = with_mean - without_mean
            impact = overall - without_mean
        found.append((feature, int(a.size), int(b.size), with_mean, without_mean, impact,
                      difference, _welch(a, b)))
    q_values = _benjamini_hochberg([f[7] for f in found])
    drivers: list[Driver] = []
    for (feature, n_with, n_without, k_with, k_without, impact, diff, p), q in zip(
            found, q_values, strict=True):
        big_enough = n_with >= min_count and n_without >= min_count
        significant = big_enough and p is not None and p < alpha
        group, label = describe_feature(feature)
        summary = _summary(kind, feature, n_with, n_without, k_with, k_without, impact, diff, p,
                           min_count, alpha)
        drivers.append(Driver(feature, n_with, n_without, k_with, k_without, impact, diff, p,
                              significant, summary, q, group, label, kind))
    drivers.sort(key=lambda d: (-abs(d.impact), d.feature))
    return drivers


def _welch(a: FloatArray, b: FloatArray) -> float | None:
    """Two-sided Welch t-test p-value (same as ``scipy.stats.ttest_ind(equal_var=False)``).

    Written out rather than calling scipy so that constant groups — common with 3-valued NPS
    contributions in small slices — give a defined answer instead of a RuntimeWarning.
    """
    n1, n2 = a.size, b.size
    if n1 < 2 or n2 < 2:
        return None
    v1 = float(a.var(ddof=1)) / n1
    v2 = float(b.var(ddof=1)) / n2
    diff = float(a.mean() - b.mean())
    se2 = v1 + v2
    if se2 <= 0.0:
        return None if diff == 0.0 else 0.0
    df = se2 * se2 / (v1 * v1 / (n1 - 1) + v2 * v2 / (n2 - 1))
    t = abs(diff) / math.sqrt(se2)
    return float(min(1.0, 2.0 * stats.t.sf(t, df)))


def _benjamini_hochberg(p_values: Sequence[float | None]) -> list[float | None]:
    present = [(p, i) for i, p in enumerate(p_values) if p is not None]
    out: list[float | None] = [None] * len(p_values)
    m = len(present)
    running = 1.0
    for rank, (p, i) in reversed(list(enumerate(sorted(present), start=1))):
        running = min(running, p * m / rank)
        out[i] = min(1.0, running)
    return out


# --- all features at once -----------------------------------------------------------------


def key_driver_regression(kind: str, rows: Sequence[DriverInput], *, min_count: int = 10,
                          alpha: float = ALPHA, **options: Any) -> RegressionResult:
    """OLS of each answer's contribution on 0/1 feature indicators plus an intercept.

    Features enter most frequent first; one with fewer than ``min_count`` answers, present in
    every answer, or (almost) a linear combination of features already in (e.g. two themes that
    always co-occur) is dropped with the reason in ``dropped`` — its effect cannot be told apart.
    Coefficients solve the normal equations through a Cholesky factor of ``XᵀX`` (built
    sparse, so memory stays proportional to the number of feature mentions, not answers ×
    features); standard errors are ``σ̂²·(XᵀX)⁻¹`` and p-values two-sided from the t
    distribution with ``n − k`` degrees of freedom.

    Unreliable when: there are few answers (fewer than ~10 per feature), features overlap
    heavily (``vif`` > 10), or the KPI is NPS/CSAT on very small samples (contributions take
    only 2–3 values, so the t approximation is rough). Each case adds a line to ``warnings``.
    """
    _check_kind(kind)
    if min_count < 1:
        raise ValueError(f"min_count must be at least 1; got {min_count}")
    label = _LABELS[kind]
    y = kpi.contributions(kind, [r.score for r in rows], **options)
    n = int(y.size)
    index = _feature_index(rows)
    order = sorted(index, key=lambda f: (-len(index[f]), f))
    dropped: dict[str, str] = {}
    candidates: list[str] = []
    for feature in order:
        count = len(index[feature])
        if count < min_count:
            dropped[feature] = f"too few answers ({count}; at least {min_count} needed)"
        elif count == n:
            dropped[feature] = "present in every answer, so there is nothing to compare with"
        else:
            candidates.append(feature)
    warnings: list[str] = []
    if n == 0:
        return RegressionResult(kind, 0, None, None, 0, (), ("No answers.",))

    # Sparse design [intercept | indicators]; only the Gram matrix is ever dense.
    cols = len(candidates) + 1
    row_idx = [np.arange(n)] + [np.asarray(index[f], dtype=np.int64) for f in candidates]
    col_idx = [np.full(r.size, j, dtype=np.int64) for j, r in enumerate(row_idx)]
    design = sparse.csr_matrix(
        (np.ones(sum(r.size for r in row_idx)), (np.concatenate(row_idx),
                                                 np.concatenate(col_idx))), shape=(n, cols))
    gram = (design.T @ design).toarray()
    xty = np.asarray(design.T @ y).reshape(-1)

    kept = [0]
    chol = np.array([[math.sqrt(gram[0, 0])]])
    for j in range(1, cols):
        g = gram[kept, j]
        coef = linalg.solve_triangular(chol, g, lower=True)
        residual = gram[j, j] - float(coef @ coef)
        if residual <= _COLLINEAR_TOL * gram[j, j]:
            weights = linalg.solve_triangular(chol.T, coef, lower=False)
            partners = [candidates[kept[i] - 1] for i in range(1, len(kept))
                        if abs(weights[i]) > 1e-6]
            dropped[candidates[j - 1]] = (
                "always appears together with (or instead of) "
                + (", ".join(partners) if partners else "the other answers")
                + ", so its own effect cannot be separated")
            continue
        size = len(kept)
        grown = np.zeros((size + 1, size + 1))
        grown[:size, :size] = chol
        grown[size, :size] = coef
        grown[size, size] = math.sqrt(residual)
        chol = grown
        kept.append(j)

    k = len(kept)
    beta = linalg.cho_solve((chol, True), xty[kept])
    fitted = np.asarray(design[:, kept] @ beta).reshape(-1)
    resid = y - fitted
    rss = float(resid @ resid)
    tss = float(((y - y.mean()) ** 2).sum())
    residual_df = n - k
    r_squared = 1.0 - rss / tss if tss > 0 else None
    inverse = linalg.cho_solve((chol, True), np.eye(k))
    if rss <= 1e-12 * max(tss, 1.0):
        rss = 0.0
    sigma2 = rss / residual_df if residual_df > 0 else None

    if n < 30:
        warnings.append(f"Only {n} answers: treat these numbers as a rough guide at best.")
    if k > 1 and n < 10 * (k - 1):
        warnings.append(f"{n} answers for {k - 1} features (fewer than 10 per feature): "
                        "estimates are unstable.")
    if residual_df <= 0:
        warnings.append("More features than answers can support: no significance can be given.")
    elif sigma2 == 0.0:
        warnings.append("The features explain every score exactly; significance is undefined.")

    result: list[RegressionDriver] = []
    overlapping: list[str] = []
    for pos, j in enumerate(kept[1:], start=1):
        feature = candidates[j - 1]
        count = len(index[feature])
        b = float(beta[pos])
        sst = count * (1.0 - count / n)
        vif = float(inverse[pos, pos] * sst) if sst > 0 else None
        if vif is not None and vif > _VIF_WARN:
            overlapping.append(feature)
        se = p = None
        if sigma2 is not None and sigma2 > 0:
            se = math.sqrt(sigma2 * float(inverse[pos, pos]))
            p = float(min(1.0, 2.0 * stats.t.sf(abs(b) / se, residual_df)))
        significant = p is not None and p < alpha
        impact = b * count / n
        result.append(RegressionDriver(
            feature, count, b, se, p, significant, impact, vif, None,
            _regression_summary(kind, feature, b, p, count, alpha)))
    if overlapping:
        warnings.append("These features overlap heavily with others, so their separate effects "
                        "are uncertain: " + ", ".join(overlapping) + ".")
    for feature, reason in dropped.items():
        result.append(RegressionDriver(
            feature, len(index[feature]), None, None, None, False, None, None, reason,
            f"{describe_feature(feature)[1]!s} was left out of the {label} model: {reason}."))
    result.sort(key=lambda d: (d.dropped is not None, -abs(d.impact or 0.0), d.feature))
    return RegressionResult(kind, n, float(beta[0]), r_squared, residual_df, tuple(result),
                            tuple(warnings))


# --- wording ------------------------------------------------------------------------------


def describe_feature(feature: str) -> tuple[str, str]:
    """``"theme:Delivery delay"`` → ``("theme", "Delivery delay")``; no prefix → ``("", f)``."""
    group, sep, rest = feature.partition(":")
    if sep and group and rest:
        return group, rest
    return "", feature


def _phrase(feature: str) -> str:
    group, label = describe_feature(feature)
    if group == "theme":
        return f"mentioning “{label}”"
    if group == "touchpoint":
        return f"that went through “{label}”"
    if group:
        return f"with {group} “{label}”"
    return f"with “{label}”"


def _fmt_value(kind: str, value: float) -> str:
    if kind == "ces":
        return _minus(f"{value:.1f}")
    if kind == "csat":
        return f"{value:.0f}%"
    return _minus(f"{value:.0f}")


def _points(kind: str, amount: float) -> tuple[str, bool]:
    """Rounded magnitude with its unit, and whether it rounded to zero."""
    amount = abs(amount)
    if kind == "ces":
        text = f"{amount:.2f}"
        zero = text == "0.00"
        return ("less than 0.01 points" if zero else f"{text} points"), zero
    unit = "percentage points" if kind == "csat" else "points"
    text = f"{amount:.0f}"
    if text == "0":
        return f"less than 1 {unit[:-1]}", True
    return f"{text} {unit[:-1] if text == '1' else unit}", False


def _evidence(p: float | None, with_count: int, without_count: int, min_count: int,
              alpha: float) -> str:
    if with_count < min_count or without_count < min_count:
        return (f"Too few answers to tell ({with_count} with, {without_count} without; "
                f"at least {min_count} needed on each side).")
    if p is None:
        return "Cannot be tested: the scores do not vary."
    where = f"{_fmt_p(p)}, {with_count} answers"
    if p < 0.001:
        return f"Very likely a real effect ({where})."
    if p < 0.01:
        return f"Likely a real effect ({where})."
    if p < alpha:
        return f"Probably a real effect, worth confirming ({where})."
    return f"Could well be chance ({where})."


def _summary(kind: str, feature: str, with_count: int, without_count: int,
             kpi_with: float | None, kpi_without: float | None, impact: float,
             difference: float, p: float | None, min_count: int, alpha: float) -> str:
    label = _LABELS[kind]
    who = f"Answers {_phrase(feature)}"
    if kpi_without is None or kpi_with is None:
        name = describe_feature(feature)[1]
        return (f"“{name}” is part of every answer, so there is nothing to compare it with "
                f"({label} {_fmt_value(kind, kpi_with or 0.0)}, {with_count} answers).")
    gap, same = _points(kind, difference)
    direction = "lower" if difference < 0 else "higher"
    scores = f"({label} {_fmt_value(kind, kpi_with)} vs {_fmt_value(kind, kpi_without)})"
    first = (f"{who} score about the same as the others {scores}" if same
             else f"{who} score {gap} {direction} {scores}")
    size, tiny = _points(kind, impact)
    if tiny:
        second = f"this moves the overall {label} by {size}"
    elif impact < 0:
        second = f"this costs the overall {label} about {size}"
    else:
        second = f"this adds about {size} to the overall {label}"
    return f"{first}; {second}. {_evidence(p, with_count, without_count, min_count, alpha)}"


def _regression_summary(kind: str, feature: str, coefficient: float, p: float | None,
                        count: int, alpha: float) -> str:
    gap, same = _points(kind, coefficient)
    who = f"answers {_phrase(feature)}"
    if same:
        first = f"Holding the other features fixed, {who} score about the same"
    else:
        direction = "lower" if coefficient < 0 else "higher"
        first = f"Holding the other features fixed, {who} score {gap} {direction}"
    if p is None:
        return f"{first}. No significance can be given (see the warnings)."
    return f"{first}. {_evidence(p, count, count, 0, alpha)}"


def _fmt_p(p: float) -> str:
    if p < 0.001:
        return "p < 0.001"
    return f"p = {p:.2g}" if p < 0.1 else f"p = {p:.2f}"


def _minus(text: str) -> str:
    # A real minus sign reads better than a hyphen in sentences meant for people.
    return text.replace("-", "−")


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _check_kind(kind: str) -> None:
    if kind not in kpi.KINDS:
        raise ValueError(f"unknown KPI kind {kind!r}; expected one of {', '.join(kpi.KINDS)}")


def _feature_index(rows: Iterable[DriverInput]) -> dict[str, list[int]]:
    index: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        for feature in row.features:
            if feature:
                index.setdefault(feature, []).append(i)
    return index
