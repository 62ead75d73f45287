"""Survey results read from the feedback app and computed with the pure KPI library: one
overall figure, slices, a trend, the response rate, drivers and theme statistics. Reads only.
"""

from __future__ import annotations

from collections import Counter, defaultdict
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


def _answers(rows: list[feedback_queries.ScoredAnswer]) -> list[slicing.Answer]:
    return [slicing.Answer(score=r.score, at=r.at, dims=r.dims) for r in rows]


def survey_results(
    survey: Survey | None = None, *, kind: str | None = None, period: str = "week",
    since: datetime | None = None, until: datetime | None = None,
) -> SurveyResults:
    """The KPI of one survey, or of every survey of one kind when ``survey`` is None."""
    if period not in slicing.PERIODS:
        raise ValueError(f"period must be one of {', '.join(slicing.PERIODS)}")
    metric = _kind_of(survey, kind)
    rows = feedback_queries.scored_answers(survey=survey, kind=metric, since=since, until=until)
    answers = _answers(rows)
    dimensions = [d for d in SLICE_DIMENSIONS if not (survey is not None and d == "survey")]
    slices = {dim: slicing.by_dimension(metric, answers, dim) for dim in dimensions}
    rate = None
    if survey is not None:
        invited, answered = feedback_queries.response_rate_inputs(survey)
        rate = kpi.response_rate(invited, answered)
    return SurveyResults(
        kind=metric, overall=slicing.overall(metric, answers), slices=slices,
        trend=slicing.trend(metric, answers, period),  # type: ignore[arg-type]
        period=period, response_rate=rate, survey=survey)


@dataclass(frozen=True)
class Headline:
    kind: str
    overall: KpiResult
    response_rate: RateResult


def survey_headline(survey: Survey) -> Headline:
    """The KPI and response rate alone — no slices, no trend — for lists of surveys."""
    metric = _kind_of(survey, None)
    invited, answered = feedback_queries.response_rate_inputs(survey)
    return Headline(metric, kpi.compute(metric, feedback_queries.scores_of(survey, metric)),
                    kpi.response_rate(invited, answered))


def survey_drivers(
    survey: Survey | None = None, *, kind: str | None = None, min_count: int = 10,
) -> list[driver_analysis.Driver]:
    """Which themes, touchpoints and channels move the score."""
    metric = _kind_of(survey, kind)
    rows = feedback_queries.scored_answers(survey=survey, kind=metric)
    inputs = []
    for row in rows:
        features = {f"theme:{name}" for name in row.themes}
        if row.dims.get("touchpoint"):
            features.add(f"touchpoint:{row.dims['touchpoint']}")
        if row.dims.get("channel"):
            features.add(f"channel:{row.dims['channel']}")
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
    the caller shows their text to those allowed to read verbatims)."""
    if period not in slicing.PERIODS:
        raise ValueError(f"period must be one of {', '.join(slicing.PERIODS)}")
    themes = list(feedback_queries.active_themes())
    names = feedback_queries.canonical_theme_names()
    by_name: dict[str, list[tuple[str, datetime, str, float | None]]] = defaultdict(list)
    for theme_id, response_id, at, sentiment, score in feedback_queries.theme_links():
        by_name[names.get(theme_id, "")].append((str(response_id), at, sentiment, score))
    stats = []
    for theme in themes:
        rows = sorted(by_name.get(theme.name, []), key=lambda r: r[1], reverse=True)
        mix = Counter(r[2] or "unknown" for r in rows)
        scores = [r[3] for r in rows if r[3] is not None]
        buckets: Counter[date] = Counter(slicing.bucket_start(r[1], period)  # type: ignore[arg-type]
                                         for r in rows)
        stats.append(ThemeStat(
            id=theme.id, name=theme.name, keywords=dict(theme.keywords), edited=theme.edited,
            volume=len(rows),
            sentiment={k: mix.get(k, 0) for k in ("positive", "neutral", "negative")},
            mean_sentiment=round(sum(scores) / len(scores), 3) if scores else None,
            trend=sorted(buckets.items()), response_ids=[r[0] for r in rows[:examples]]))
    stats.sort(key=lambda s: (-s.volume, s.name))
    return stats
