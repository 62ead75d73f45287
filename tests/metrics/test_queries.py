"""Survey results read by counting in the database equal the results read row by row.

Answers are made through ``feedback.actions.submit`` (the real write path) at the edges that
matter — Sunday night and Monday midnight UTC, New Year, microseconds —, on several channels,
touchpoints and segments, anonymous and not; then ``metrics.queries.survey_results`` (counts in
SQL) is compared with ``survey_results_from_rows`` (every row into Python, the old path).
Runs on SQLite and, with ``CXM_DATABASE_URL``, PostgreSQL: both must give the same figures.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from cxm.core.audit import Actor
from cxm.feedback import actions
from cxm.feedback import queries as feedback_queries
from cxm.feedback.models import Survey
from cxm.metrics import drivers, kpi, slicing
from cxm.metrics import queries as metrics_queries
from tests.feedback.conftest import NPS_DEFINITION, add_person

pytestmark = pytest.mark.django_db

ACTOR = Actor("test")
CES_DEFINITION: dict[str, Any] = {"language": "en", "title": "Was it easy?", "questions": [
    {"id": "effort", "type": "ces", "text": "It was easy to …", "required": True},
    {"id": "why", "type": "text", "text": "Why?"}]}
COMMENTS = ("The courier was late again and nobody called",
            "Fast delivery and friendly staff, thank you",
            "Package arrived damaged, very disappointed",
            "Checkout was confusing and the price went up",
            "Delivery took a week longer than promised",
            "The price is fair for the quality",
            "Support answered quickly and solved my problem",
            "The app crashed twice during checkout",
            "Great quality, the parcel came early",
            "Too expensive compared with other shops",
            "", "", "")
# Bucket edges: Sunday 23:59:59.999999 and Monday 00:00 UTC, New Year, a month's last second.
EDGES = (datetime(2025, 3, 2, 23, 59, 59, 999999, tzinfo=UTC),
         datetime(2025, 3, 3, 0, 0, tzinfo=UTC),
         datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC),
         datetime(2025, 1, 1, 0, 0, tzinfo=UTC),
         datetime(2025, 2, 28, 23, 59, 59, 500000, tzinfo=UTC))


def _submit(survey: Survey, answers: dict[str, Any], *, channel: str,
            person: uuid.UUID | None, at: datetime, touchpoint: str | None) -> None:
    actions.submit(actions.Submission(survey=survey, answers=answers, channel=channel,
                                      profile_id=person, submitted_at=at,
                                      touchpoint=touchpoint), actor=ACTOR)


@pytest.fixture
def surveys() -> Iterator[tuple[Survey, Survey, Survey]]:
    rng = random.Random(11)
    people = [add_person(f"p{i}@example.com", f"u-{i}",
                         segment=(None, "smb", "enterprise", "consumer")[i % 4])
              for i in range(8)]
    store = actions.create_survey(name="Store NPS", kind="nps", definition=NPS_DEFINITION,
                                  touchpoint="delivery", stage="purchase", actor=ACTOR)
    web = actions.create_survey(name="Web NPS", kind="nps", definition=NPS_DEFINITION,
                                touchpoint="", stage="", actor=ACTOR)
    effort = actions.create_survey(name="Checkout CES", kind="ces", definition=CES_DEFINITION,
                                   touchpoint="checkout", stage="purchase", actor=ACTOR)
    start = datetime(2024, 12, 20, 7, tzinfo=UTC)
    for index in range(70):
        at = EDGES[index] if index < len(EDGES) else start + timedelta(
            minutes=rng.randrange(80 * 24 * 60), microseconds=rng.randrange(10**6))
        channel = rng.choice(("email", "widget", "api", "import"))
        person = None if channel == "import" and rng.random() < 0.5 else rng.choice(people)
        comment = rng.choice(COMMENTS)
        answers: dict[str, Any] = {"score": rng.randint(0, 10)}
        if comment:
            answers["why"] = comment
        _submit(rng.choice((store, store, web)), answers, channel=channel, person=person,
                at=at, touchpoint=rng.choice((None, "returns", "delivery")))
        _submit(effort, {"effort": rng.randint(1, 7)}, channel="widget", person=rng.choice(people),
                at=at + timedelta(hours=1), touchpoint=None)
    actions.discover_themes(actor=ACTOR, max_themes=5)
    yield store, web, effort


def _same(counted: metrics_queries.SurveyResults,
          rows: metrics_queries.SurveyResults) -> None:
    # Every float equal, not just the rounded JSON: the dataclasses compare exactly.
    assert counted.overall == rows.overall
    assert counted.slices == rows.slices
    assert counted.trend == rows.trend
    assert counted.response_rate == rows.response_rate
    assert counted.as_dict() == rows.as_dict()


@pytest.mark.parametrize("period", slicing.PERIODS)
def test_one_survey_counted_in_sql_equals_the_row_path(
        surveys: tuple[Survey, Survey, Survey], period: str) -> None:
    store, _, effort = surveys
    for survey in (store, effort):
        counted = metrics_queries.survey_results(survey, period=period)
        assert counted.overall.responses == survey.responses.count()
        _same(counted, metrics_queries.survey_results_from_rows(survey, period=period))
    segments = dict(metrics_queries.survey_results(store).slices["segment"])
    assert "(unknown)" in segments and "smb" in segments


@pytest.mark.parametrize("period", slicing.PERIODS)
def test_every_survey_of_a_kind_and_a_time_window(
        surveys: tuple[Survey, Survey, Survey], period: str) -> None:
    counted = metrics_queries.survey_results(None, kind="nps", period=period)
    assert {label for label, _ in counted.slices["survey"]} == {"Store NPS", "Web NPS"}
    _same(counted, metrics_queries.survey_results_from_rows(None, kind="nps", period=period))
    window = {"since": datetime(2025, 1, 1, tzinfo=UTC),
              "until": datetime(2025, 3, 3, tzinfo=UTC)}
    _same(metrics_queries.survey_results(None, kind="nps", period=period, **window),
          metrics_queries.survey_results_from_rows(None, kind="nps", period=period, **window))


def test_buckets_are_utc_days_monday_weeks_and_months_on_this_database(
        surveys: tuple[Survey, Survey, Survey]) -> None:
    store, web, _ = surveys
    expected: dict[str, dict[date, int]] = {p: {} for p in slicing.PERIODS}
    for survey in (store, web):
        for at in survey.responses.values_list("submitted_at", flat=True):
            for period in slicing.PERIODS:
                start = slicing.bucket_start(at, period)  # type: ignore[arg-type]
                expected[period][start] = expected[period].get(start, 0) + 1
    for period in slicing.PERIODS:
        counted: dict[date, int] = {}
        for day, _, n in feedback_queries.score_counts_by_period(kind="nps", period=period):
            counted[day] = counted.get(day, 0) + n
        assert counted == expected[period], period
    weeks = {d for d, _, _ in feedback_queries.score_counts_by_period(kind="nps",
                                                                      period="week")}
    assert all(d.weekday() == 0 for d in weeks)
    # Sunday 23:59:59.999999 is the week of 24 February, Monday 00:00 starts a new one.
    assert {date(2025, 2, 24), date(2025, 3, 3), date(2024, 12, 30)} <= weeks
    months = {d for d, _, _ in feedback_queries.score_counts_by_period(kind="nps",
                                                                       period="month")}
    assert {date(2024, 12, 1), date(2025, 1, 1), date(2025, 2, 1)} <= months


def test_results_read_counts_not_rows(surveys: tuple[Survey, Survey, Survey]) -> None:
    store, _, _ = surveys
    with CaptureQueriesContext(connection) as captured:
        metrics_queries.survey_results(store, period="week")
    answer_reads = [q["sql"] for q in captured.captured_queries
                    if "feedback_response" in q["sql"]]
    assert len(captured.captured_queries) <= 5
    assert len(answer_reads) == 2
    assert all("GROUP BY" in sql and "COUNT(" in sql for sql in answer_reads)


def test_headline_and_trend_alone(surveys: tuple[Survey, Survey, Survey]) -> None:
    store, _, effort = surveys
    for survey, kind in ((store, "nps"), (effort, "ces")):
        scores = [float(s or 0) for s in survey.responses.values_list("score", flat=True)]
        headline = metrics_queries.survey_headline(survey)
        assert headline.overall == kpi.compute(kind, scores)
        assert headline.response_rate == kpi.response_rate(0, 0)
        found_kind, trend = metrics_queries.survey_trend(survey, "month")
        assert found_kind == kind
        assert trend == metrics_queries.survey_results_from_rows(survey, period="month").trend


def test_drivers_read_narrow_rows_and_find_the_same(
        surveys: tuple[Survey, Survey, Survey]) -> None:
    store, _, _ = surveys
    inputs = []
    for row in feedback_queries.scored_answers(survey=store, kind="nps"):  # the old read
        features = {f"theme:{name}" for name in row.themes}
        if row.dims.get("touchpoint"):
            features.add(f"touchpoint:{row.dims['touchpoint']}")
        if row.dims.get("channel"):
            features.add(f"channel:{row.dims['channel']}")
        inputs.append(drivers.DriverInput(score=row.score, features=frozenset(features)))
    assert any(i.features & {f for f in i.features if f.startswith("theme:")} for i in inputs)
    with CaptureQueriesContext(connection) as captured:
        found = metrics_queries.survey_drivers(store, min_count=2)
    assert found == drivers.analyze_drivers("nps", inputs, min_count=2)
    reads = [q["sql"] for q in captured.captured_queries if 'FROM "feedback_response"' in q["sql"]]
    assert reads and all('"comment"' not in sql and '"answers"' not in sql for sql in reads)


def test_counting_by_an_unknown_slice_is_refused(db: Any) -> None:
    with pytest.raises(ValueError, match="cannot count by 'colour'"):
        feedback_queries.score_counts(by=["colour"])
    with pytest.raises(ValueError, match="period"):
        feedback_queries.score_counts_by_period(period="year")


def _theme_stats_from_rows(period: str, examples: int) -> dict[str, dict[str, Any]]:
    """The old way, every link into Python: what ``theme_stats`` must equal."""
    from collections import Counter, defaultdict

    from cxm.feedback.models import Response

    names = feedback_queries.canonical_theme_names()
    rows: dict[str, list[tuple[datetime, str, float | None, uuid.UUID]]] = defaultdict(list)
    for theme_id, rid, at, sentiment, score in Response.themes.through.objects.values_list(
            "theme_id", "response_id", "response__submitted_at", "response__sentiment",
            "response__sentiment_score"):
        rows[names[theme_id]].append((at, sentiment, score, rid))
    out = {}
    for theme in feedback_queries.active_themes():
        mine = sorted(rows.get(theme.name, []), key=lambda r: (r[0], r[3]), reverse=True)
        scores = [r[2] for r in mine if r[2] is not None]
        mix = Counter(r[1] or "unknown" for r in mine)
        out[theme.name] = {
            "volume": len(mine),
            "sentiment": {k: mix.get(k, 0) for k in ("positive", "neutral", "negative")},
            "mean_sentiment": round(sum(scores) / len(scores), 3) if scores else None,
            "trend": sorted(Counter(slicing.bucket_start(r[0], period) for r in mine).items()),
            "response_ids": [str(r[3]) for r in mine[:examples]],
        }
    return out


@pytest.mark.parametrize("period", ["day", "week", "month"])
def test_theme_stats_counted_in_sql_equal_the_row_path(
    surveys: tuple[Survey, Survey, Survey], period: str,
) -> None:
    themes = list(feedback_queries.active_themes())
    assert len(themes) >= 2, "the fixture's comments should give several themes"
    # Links to a theme merged into another count for the theme it ended up in.
    actions.merge_themes(themes[-1].id, themes[0].id, actor=ACTOR)
    expected = _theme_stats_from_rows(period, examples=3)
    with CaptureQueriesContext(connection) as queries_run:
        stats = metrics_queries.theme_stats(period=period, examples=3)
    got = {s.name: {"volume": s.volume, "sentiment": s.sentiment,
                    "mean_sentiment": s.mean_sentiment, "trend": s.trend,
                    "response_ids": s.response_ids} for s in stats}
    assert got == expected
    assert sum(s.volume for s in stats) > 0
    # Two GROUP BYs, the theme list, the merge map and one short read of examples per theme.
    assert len(queries_run) <= 4 + len(stats)
