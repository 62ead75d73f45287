"""Survey results read from the feedback app and computed with the pure KPI library: one
overall figure, slices, a trend, the response rate, drivers and theme statistics. Reads only.

Results are computed from counts, not rows: the database counts answers per score value and
slice and per time bucket (``feedback.queries.score_counts*``, two ``GROUP BY`` queries), and
:func:`cxm.metrics.kpi.compute_from_counts` turns each tally into the KPI — the same numbers
the row path (:func:`survey_results_from_rows`, kept as the tested reference) gives, in time
that grows with the number of slices and buckets instead of the number of answers.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from cxm.feedback import queries as feedback_queries
from cxm.feedback.models import Survey
from cxm.metrics import drivers as driver_analysis
from cxm.metrics import kpi, slicing
from cxm.metrics.kpi import KpiResult, RateResult

SLICE_DIMENSIONS = ("channel", "touchpoint", "stage", "segment", "survey")
SCORED_KINDS = ("nps", "csat", "ces")


@dataclass(frozen=True)
class SurveyResults:
    kind: str
    overall: KpiResult
    slices: dict[str, list[tuple[str, KpiResult]]]
    trend: list[tuple[date, KpiResult]]
    period: str
    response_rate: RateResult | None
    survey: Survey | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "survey": self.survey.name if self.survey else None,
            "kind": self.kind,
            **self.overall.as_dict(),
            "response_rate": self.response_rate.as_dict() if self.response_rate else None,
            "slices": {dim: [{"label": label, **result.as_dict()} for label, result in rows]
                       for dim, rows in self.slices.items()},
            "period": self.period,
            "trend": [{"start": start.isoformat(), **result.as_dict()}
                      for start, result in self.trend],
        }


def kind_of(survey: Survey) -> str:
    """The metric a survey's answers are read as (nps, csat or ces)."""
    return _kind_of(survey, None)


def _kind_of(survey: Survey | None, kind: str | None) -> str:
    if kind:
        if kind not in SCORED_KINDS:
            raise ValueError(f"kind must be one of {', '.join(SCORED_KINDS)}")
        return kind
    if survey is not None and survey.kind in SCORED_KINDS:
        return survey.kind
    if survey is not None:  # a custom survey: the kind of its first score question
        found = feedback_queries.scored_kind(survey)
        if found in SCORED_KINDS:
            return str(found)
    raise ValueError("say which metric: nps, csat or ces")


def _check_period(period: str) -> None:
    if period not in slicing.PERIODS:
        raise ValueError(f"period must be one of {', '.join(slicing.PERIODS)}")


def _tallies(rows: Iterable[tuple[Any, float, int]]) -> list[tuple[Any, kpi.ScoreCounts]]:
    """``(group, score, answers)`` rows → one :class:`ScoreCounts` per group."""
    grouped: dict[Any, dict[float, int]] = defaultdict(dict)
    for group, score, answers in rows:
        grouped[group][score] = grouped[group].get(score, 0) + answers
    return [(group, kpi.ScoreCounts(counts)) for group, counts in grouped.items()]


def _rate(survey: Survey | None) -> RateResult | None:
    if survey is None:
        return None
    invited, answered = feedback_queries.response_rate_inputs(survey)
    return kpi.response_rate(invited, answered)


def survey_results(
    survey: Survey | None = None, *, kind: str | None = None, period: str = "week",
    since: datetime | None = None, until: datetime | None = None,
) -> SurveyResults:
    """The KPI of one survey, or of every survey of one kind when ``survey`` is None.

    Two counting queries whatever the number of answers: one grouped by every slice
    dimension at once (each slice, and the overall figure, is that table added up — the
    answers are read once, not once per dimension) and one by time bucket.
    """
    _check_period(period)
    metric = _kind_of(survey, kind)
    dimensions = [d for d in SLICE_DIMENSIONS if not (survey is not None and d == "survey")]
    combos = feedback_queries.score_counts(survey=survey, kind=metric, since=since,
                                           until=until, by=dimensions)
    overall = kpi.compute_from_counts(metric, kpi.ScoreCounts(_by_score(combos)))
    slices = {}
    for i, dim in enumerate(dimensions):
        per_label = _tallies((labels[i], score, n) for labels, score, n in combos)
        slices[dim] = slicing.by_dimension_from_counts(metric, per_label)
    buckets = _tallies(feedback_queries.score_counts_by_period(
        survey=survey, kind=metric, period=period, since=since, until=until))
    return SurveyResults(
        kind=metric, overall=overall, slices=slices,
        trend=slicing.trend_from_counts(metric, buckets, period),  # type: ignore[arg-type]
        period=period, response_rate=_rate(survey), survey=survey)


def _by_score(rows: Iterable[tuple[Any, float, int]]) -> dict[float, int]:
    totals: dict[float, int] = {}
    for _, score, answers in rows:
        totals[score] = totals.get(score, 0) + answers
    return totals


def survey_trend(survey: Survey, period: str = "week") -> tuple[str, list[tuple[date, KpiResult]]]:
    """The kind and trend alone (the results page's period switch): one counting query."""
    _check_period(period)
    metric = _kind_of(survey, None)
    buckets = _tallies(feedback_queries.score_counts_by_period(survey=survey, kind=metric,
                                                               period=period))
    return metric, slicing.trend_from_counts(metric, buckets, period)  # type: ignore[arg-type]


def survey_results_from_rows(
    survey: Survey | None = None, *, kind: str | None = None, period: str = "week",
    since: datetime | None = None, until: datetime | None = None,
) -> SurveyResults:
    """:func:`survey_results` computed from every answer row read into Python — how results
    were read before the counts path (~6 s at 100k answers). Kept as the reference that tests
    and ``bench/survey_results.py`` compare the counts path with; not for pages."""
    _check_period(period)
    metric = _kind_of(survey, kind)
    rows = feedback_queries.scored_answers(survey=survey, kind=metric, since=since, until=until)
    answers = [slicing.Answer(score=r.score, at=r.at, dims=r.dims) for r in rows]
    dimensions = [d for d in SLICE_DIMENSIONS if not (survey is not None and d == "survey")]
    slices = {dim: slicing.by_dimension(metric, answers, dim) for dim in dimensions}
    return SurveyResults(
        kind=metric, overall=slicing.overall(metric, answers), slices=slices,
        trend=slicing.trend(metric, answers, period),  # type: ignore[arg-type]
        period=period, response_rate=_rate(survey), survey=survey)


@dataclass(frozen=True)
class Headline:
    kind: str
    overall: KpiResult
    response_rate: RateResult


def survey_headline(survey: Survey) -> Headline:
    """The KPI and response rate alone — no slices, no trend — for lists of surveys: one
    counting query and one of invitations."""
    metric = _kind_of(survey, None)
    invited, answered = feedback_queries.response_rate_inputs(survey)
    counts = _by_score(feedback_queries.score_counts(survey=survey, kind=metric))
    return Headline(metric, kpi.compute_from_counts(metric, kpi.ScoreCounts(counts)),
                    kpi.response_rate(invited, answered))


def survey_drivers(
    survey: Survey | None = None, *, kind: str | None = None, min_count: int = 10,
) -> list[driver_analysis.Driver]:
    """Which themes, touchpoints and channels move the score. Needs each answer's score and
    features, so it reads one narrow row per answer (``feedback_queries.driver_rows``)."""
    metric = _kind_of(survey, kind)
    inputs = []
    for row in feedback_queries.driver_rows(survey=survey, kind=metric):
        features = {f"theme:{name}" for name in row.themes}
        if row.touchpoint:
            features.add(f"touchpoint:{row.touchpoint}")
        if row.channel:
            features.add(f"channel:{row.channel}")
        inputs.append(driver_analysis.DriverInput(score=row.score,
                                                  features=frozenset(features)))
    return driver_analysis.analyze_drivers(metric, inputs, min_count=min_count)


@dataclass(frozen=True)
class ThemeStat:
    id: int
    name: str
    keywords: dict[str, float]
    edited: bool
    volume: int
    sentiment: dict[str, int]
    mean_sentiment: float | None
    trend: list[tuple[date, int]]
    response_ids: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "keywords": self.keywords,
                "edited": self.edited, "volume": self.volume, "sentiment": self.sentiment,
                "mean_sentiment": self.mean_sentiment,
                "trend": [{"start": d.isoformat(), "count": n} for d, n in self.trend]}


def theme_stats(period: str = "month", examples: int = 3) -> list[ThemeStat]:
    """Volume, sentiment mix, trend and the latest example answers of each theme (ids only:
    the caller shows their text to those allowed to read verbatims). Counted in the database:
    links to a theme merged into another count for the theme it ended up in."""
    _check_period(period)
    themes = list(feedback_queries.active_themes())
    names = feedback_queries.canonical_theme_names()
    ids_of: dict[str, list[int]] = defaultdict(list)
    for theme_id, name in names.items():
        ids_of[name].append(theme_id)
    volume: Counter[str] = Counter()
    mix: dict[str, Counter[str]] = defaultdict(Counter)
    score_sum: dict[str, float] = defaultdict(float)
    scored: Counter[str] = Counter()
    for row in feedback_queries.theme_link_counts():
        name = names.get(row.theme_id, "")
        volume[name] += row.links
        mix[name][row.sentiment or "unknown"] += row.links
        score_sum[name] += row.score_sum
        scored[name] += row.scored
    buckets: dict[str, Counter[date]] = defaultdict(Counter)
    for theme_id, bucket, links in feedback_queries.theme_link_counts_by_period(period):
        buckets[names.get(theme_id, "")][bucket] += links
    stats = []
    for theme in themes:
        name = theme.name
        stats.append(ThemeStat(
            id=theme.id, name=name, keywords=dict(theme.keywords), edited=theme.edited,
            volume=volume[name],
            sentiment={k: mix[name].get(k, 0) for k in ("positive", "neutral", "negative")},
            mean_sentiment=round(score_sum[name] / scored[name], 3) if scored[name] else None,
            trend=sorted(buckets[name].items()),
            response_ids=[str(rid) for rid in feedback_queries.latest_linked_responses(
                ids_of.get(name, [theme.id]), examples)]))
    stats.sort(key=lambda s: (-s.volume, s.name))
    return stats
