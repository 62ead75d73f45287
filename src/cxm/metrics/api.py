"""REST endpoints for survey results and driver analysis (reads only)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Router, Schema

from cxm.accounts.api_auth import needs
from cxm.core.errors import InvalidInput
from cxm.core.schemas import ErrorOut
from cxm.feedback import queries as feedback_queries
from cxm.metrics import queries

router = Router(tags=["metrics"])
READ = needs("surveys.read")
ERRORS: dict[int, type[ErrorOut]] = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut}


class ResultsOut(Schema):
    survey: str | None
    kind: str
    value: float | None
    responses: int
    weighted_responses: float
    counts: dict[str, int]
    distribution: dict[str, int]
    shares: dict[str, float]
    scale: list[int]
    ci: dict[str, float] | None
    response_rate: dict[str, Any] | None
    slices: dict[str, list[dict[str, Any]]]
    period: str
    trend: list[dict[str, Any]]


class DriverOut(Schema):
    feature: str
    group: str
    label: str
    with_count: int
    without_count: int
    kpi_with: float | None
    kpi_without: float | None
    difference: float
    impact: float
    p_value: float | None
    q_value: float | None
    significant: bool
    summary: str


class ThemeStatOut(Schema):
    id: int
    name: str
    keywords: dict[str, float]
    edited: bool
    volume: int
    sentiment: dict[str, int]
    mean_sentiment: float | None
    trend: list[dict[str, Any]]


def _checked(call: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return call(*args, **kwargs)
    except ValueError as error:
        raise InvalidInput(str(error), code="invalid_query") from None


@router.get("/surveys/{survey_id}/results", response={200: ResultsOut, **ERRORS}, auth=READ,
            summary="KPI with 95% CI, slices, trend and response rate of a survey")
def survey_results(request: HttpRequest, survey_id: str, period: str = "week"
                   ) -> dict[str, Any]:
    survey = feedback_queries.survey_by_id(survey_id)
    return dict(_checked(queries.survey_results, survey, period=period).as_dict())


@router.get("/metrics/{kind}", response={200: ResultsOut, **ERRORS}, auth=READ,
            summary="NPS, CSAT or CES over every survey of that kind")
def kind_results(request: HttpRequest, kind: str, period: str = "month") -> dict[str, Any]:
    return dict(_checked(queries.survey_results, None, kind=kind, period=period).as_dict())


@router.get("/surveys/{survey_id}/drivers", response={200: list[DriverOut], **ERRORS},
            auth=READ, summary="Which themes, touchpoints and channels move the score")
def survey_drivers(request: HttpRequest, survey_id: str, min_count: int = 10
                   ) -> list[dict[str, Any]]:
    if not 2 <= min_count <= 10_000:
        raise InvalidInput("min_count must be from 2 to 10000", code="invalid_min_count")
    survey = feedback_queries.survey_by_id(survey_id)
    found = _checked(queries.survey_drivers, survey, min_count=min_count)
    return [{"feature": d.feature, "group": d.group, "label": d.label,
             "with_count": d.with_count, "without_count": d.without_count,
             "kpi_with": d.kpi_with, "kpi_without": d.kpi_without,
             "difference": d.difference, "impact": d.impact, "p_value": d.p_value,
             "q_value": d.q_value, "significant": d.significant, "summary": d.summary}
            for d in found]


@router.get("/themes/stats", response={200: list[ThemeStatOut], **ERRORS}, auth=READ,
            summary="Volume, sentiment and trend of each theme")
def theme_stats(request: HttpRequest, period: str = "month") -> list[dict[str, Any]]:
    return [s.as_dict() for s in _checked(queries.theme_stats, period)]
