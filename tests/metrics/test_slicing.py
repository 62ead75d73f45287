"""Slices and trends over plain answers; no database."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from cxm.metrics import kpi
from cxm.metrics.slicing import (
    Answer,
    bucket_start,
    by_dimension,
    overall,
    trend,
    trend_by_dimension,
)


def at(day: int, hour: int = 12, month: int = 3) -> datetime:
    return datetime(2025, month, day, hour, tzinfo=UTC)


ANSWERS = [
    Answer(10, at(3), dims={"channel": "email", "segment": frozenset({"vip", "new"})}),
    Answer(9, at(3), dims={"channel": "email", "segment": "vip"}),
    Answer(2, at(4), dims={"channel": "chat"}),
    Answer(8, at(12), dims={"channel": "email"}),
    Answer(0, at(12), dims={}),
]


def test_by_dimension_matches_kpi_on_each_slice_and_sorts_by_size() -> None:
    result = by_dimension("nps", ANSWERS, "channel")
    assert [label for label, _ in result] == ["email", "(unknown)", "chat"]
    email = dict(result)["email"]
    assert email == kpi.nps([10, 9, 8])
    assert dict(result)["chat"].value == -100.0


def test_by_dimension_ties_sorted_by_label_and_missing_can_be_dropped() -> None:
    result = by_dimension("nps", ANSWERS, "channel", missing=None)
    assert [label for label, _ in result] == ["email", "chat"]
    tied = by_dimension("nps", [Answer(9, at(1), dims={"survey": s}) for s in "bca"], "survey")
    assert [label for label, _ in tied] == ["a", "b", "c"]


def test_multi_valued_dimension_counts_answer_in_each_slice() -> None:
    result = dict(by_dimension("nps", ANSWERS, "segment", missing=None))
    assert result["vip"].responses == 2 and result["new"].responses == 1


def test_weights_are_honoured() -> None:
    rows = [Answer(10, at(1), weight=1.0), Answer(0, at(1), weight=3.0)]
    assert overall("nps", rows).value == -50.0


def test_week_buckets_start_monday_in_utc() -> None:
    # 2025-03-02 is a Sunday; 23:30 at UTC-5 is already Monday 04:30 UTC.
    sunday_late = datetime(2025, 3, 2, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
    assert bucket_start(sunday_late, "day") == date(2025, 3, 3)
    assert bucket_start(sunday_late, "week") == date(2025, 3, 3)
    assert bucket_start(datetime(2025, 3, 2, 10, tzinfo=UTC), "week") == date(2025, 2, 24)
    assert bucket_start(datetime(2025, 3, 31, tzinfo=UTC), "month") == date(2025, 3, 1)
    # Naive datetimes are taken as UTC, not local time.
    assert bucket_start(datetime(2025, 3, 2, 23, 30), "day") == date(2025, 3, 2)
    with pytest.raises(ValueError, match="unknown period"):
        bucket_start(at(1), "year")  # type: ignore[arg-type]


def test_trend_includes_empty_buckets_between_first_and_last() -> None:
    days = trend("nps", ANSWERS, "day")
    assert [d for d, _ in days] == [date(2025, 3, d) for d in range(3, 13)]
    by_day = dict(days)
    assert by_day[date(2025, 3, 3)].value == 100.0
    assert by_day[date(2025, 3, 5)].value is None and by_day[date(2025, 3, 5)].responses == 0
    weeks = trend("nps", ANSWERS, "week")
    assert [d for d, _ in weeks] == [date(2025, 3, 3), date(2025, 3, 10)]
    assert [r.responses for _, r in weeks] == [3, 2]


def test_trend_months_across_year_end_and_explicit_range() -> None:
    rows = [Answer(5, datetime(2024, 11, 30, tzinfo=UTC)),
            Answer(4, datetime(2025, 2, 1, tzinfo=UTC))]
    months = trend("csat", rows, "month")
    assert [d for d, _ in months] == [date(2024, 11, 1), date(2024, 12, 1), date(2025, 1, 1),
                                      date(2025, 2, 1)]
    assert [r.value for _, r in months] == [100.0, None, None, 100.0]
    narrowed = trend("csat", rows, "month", start=date(2025, 1, 15), end=date(2025, 3, 2))
    assert [d for d, _ in narrowed] == [date(2025, 1, 1), date(2025, 2, 1), date(2025, 3, 1)]
    assert [r.responses for _, r in narrowed] == [0, 1, 0]


def test_trend_empty() -> None:
    assert trend("ces", [], "week") == []
    assert [r.value for _, r in trend("ces", [], "day", start=date(2025, 1, 1),
                                      end=date(2025, 1, 2))] == [None, None]


def test_trend_by_dimension_aligns_buckets() -> None:
    lines = dict(trend_by_dimension("nps", ANSWERS, "channel", "day", missing=None))
    assert set(lines) == {"email", "chat"}
    assert [d for d, _ in lines["chat"]] == [d for d, _ in lines["email"]]
    assert len(lines["chat"]) == 10


def test_trend_keeps_the_latest_buckets_only() -> None:
    from datetime import UTC, datetime

    from cxm.metrics.slicing import Answer, trend

    answers = [Answer(score=9, at=datetime(2020, 1, 6, tzinfo=UTC)),
               Answer(score=3, at=datetime(2030, 1, 7, tzinfo=UTC))]
    weeks = trend("nps", answers, "week")
    assert len(weeks) == 400
    assert weeks[-1][0].isoformat() == "2030-01-07" and weeks[-1][1].responses == 1
    months = trend("nps", answers, "month", max_buckets=3)
    assert [m[0].isoformat() for m in months] == ["2029-11-01", "2029-12-01", "2030-01-01"]
    days = trend("nps", answers, "day", max_buckets=2)
    assert [d[0].isoformat() for d in days] == ["2030-01-06", "2030-01-07"]
