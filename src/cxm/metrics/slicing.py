"""KPIs per slice (channel, journey stage, segment, survey, …) and per time bucket.

Two inputs, one result. The row functions (:func:`overall`, :func:`by_dimension`,
:func:`trend`) take a plain list of :class:`Answer` rows; the ``*_from_counts`` functions take
:class:`~cxm.metrics.kpi.ScoreCounts` per label or per time bucket — what a database returns from
``GROUP BY label, score`` — so a survey with millions of answers is sliced from a few hundred
numbers. Both compute every slice with the same KPI code (:func:`cxm.metrics.kpi.compute` tallies
its rows and calls :func:`~cxm.metrics.kpi.compute_from_counts`), so a slice's number always
equals the overall KPI computed on that slice's answers alone, whichever way it was read.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from cxm.metrics import kpi
from cxm.metrics.kpi import KpiResult, ScoreCounts

__all__ = [
    "DIMENSIONS",
    "PERIODS",
    "UNKNOWN",
    "Answer",
    "Period",
    "bucket_start",
    "by_dimension",
    "by_dimension_from_counts",
    "overall",
    "trend",
    "trend_by_dimension",
    "trend_from_counts",
]

# The slices the product promises; any other key in ``Answer.dims`` works the same way.
DIMENSIONS: tuple[str, ...] = ("channel", "stage", "segment", "survey")
PERIODS: tuple[str, ...] = ("day", "week", "month")
UNKNOWN = "(unknown)"

Period = Literal["day", "week", "month"]
DimValue = str | frozenset[str] | tuple[str, ...]


@dataclass(frozen=True)
class Answer:
    """One scored answer.

    ``at`` should be timezone-aware; a naive datetime is taken to be UTC (Django stores UTC).
    A ``dims`` value may be one label or a set/tuple of labels — a customer can sit in several
    segments at once, and such an answer then counts in each of them (so slices can overlap
    and their responses need not add up to the total).
    """

    score: float
    at: datetime
    weight: float = 1.0
    dims: Mapping[str, DimValue] = field(default_factory=dict)


def overall(kind: str, answers: Iterable[Answer], **options: Any) -> KpiResult:
    """The KPI over all answers (weights honoured)."""
    rows = list(answers)
    return kpi.compute(kind, [a.score for a in rows], _weights(rows), **options)


def by_dimension(kind: str, answers: Iterable[Answer], dimension: str, *,
                 missing: str | None = UNKNOWN, **options: Any) -> list[tuple[str, KpiResult]]:
    """The KPI per value of ``dimension``, largest slice first (ties by label).

    Answers without the dimension are grouped under ``missing`` (default ``"(unknown)"``) —
    hiding them would make the slices silently disagree with the total; pass ``missing=None``
    to leave them out.
    """
    groups: dict[str, list[Answer]] = defaultdict(list)
    for answer in answers:
        labels = _labels(answer.dims.get(dimension))
        if not labels:
            if missing is not None:
                groups[missing].append(answer)
            continue
        for label in labels:
            groups[label].append(answer)
    results = [(label, overall(kind, rows, **options)) for label, rows in groups.items()]
    return _largest_first(results)


def by_dimension_from_counts(kind: str, groups: Iterable[tuple[DimValue | None, ScoreCounts]],
                             *, missing: str | None = UNKNOWN, **options: Any
                             ) -> list[tuple[str, KpiResult]]:
    """:func:`by_dimension` from a tally per label (e.g. ``GROUP BY channel, score``).

    A label may come in several groups (``None`` and ``""`` are both missing; a database may
    split one label across rows): their counts are added. A set/tuple label counts the group in
    each of its labels, as a multi-valued ``Answer.dims`` value does.
    """
    merged: dict[str, ScoreCounts] = {}
    for value, counts in groups:
        labels = _labels(value) or (() if missing is None else (missing,))
        for label in labels:
            merged[label] = merged[label] + counts if label in merged else counts
    return _largest_first([(label, kpi.compute_from_counts(kind, counts, **options))
                           for label, counts in merged.items()])


def _largest_first(results: list[tuple[str, KpiResult]]) -> list[tuple[str, KpiResult]]:
    results.sort(key=lambda item: (-item[1].responses, item[0]))
    return results


def bucket_start(moment: datetime, period: Period) -> date:
    """First day (UTC) of the bucket holding ``moment``; weeks start on Monday (ISO 8601)."""
    if period not in PERIODS:
        raise ValueError(f"unknown period {period!r}; expected one of {', '.join(PERIODS)}")
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    day = moment.date()
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    return day


def _next_bucket(start: date, period: Period) -> date:
    if period == "day":
        return start + timedelta(days=1)
    if period == "week":
        return start + timedelta(days=7)
    return (start.replace(day=28) + timedelta(days=4)).replace(day=1)


MAX_BUCKETS = 400
"""At most this many buckets (the latest): one answer dated years away must not make a chart
of hundreds of thousands of empty days."""


def _back(last: date, period: Period, count: int) -> date:
    if period == "day":
        return last - timedelta(days=count)
    if period == "week":
        return last - timedelta(days=7 * count)
    months = last.year * 12 + last.month - 1 - count
    return date(months // 12, months % 12 + 1, 1)


def trend(kind: str, answers: Iterable[Answer], period: Period, *,
          start: date | None = None, end: date | None = None,
          max_buckets: int = MAX_BUCKETS, **options: Any) -> list[tuple[date, KpiResult]]:
    """The KPI per day, week (Monday) or month, in UTC, oldest first.

    Every bucket from the first to the last is present; buckets without answers carry a
    result with ``value`` None and ``responses`` 0, so a chart shows the gap instead of drawing
    a line across it. ``start``/``end`` (inclusive, any day inside the bucket) widen or narrow
    the range — e.g. to the dashboard's date picker; answers outside it are ignored. Only the
    latest ``max_buckets`` buckets are returned.
    """
    buckets: dict[date, list[Answer]] = defaultdict(list)
    for answer in answers:
        buckets[bucket_start(answer.at, period)].append(answer)
    return [(current, overall(kind, buckets[current], **options) if current in buckets
             else kpi.empty(kind, **options))
            for current in _bucket_range(buckets, period, start, end, max_buckets)]


def trend_from_counts(kind: str, buckets: Iterable[tuple[date, ScoreCounts]], period: Period,
                      *, start: date | None = None, end: date | None = None,
                      max_buckets: int = MAX_BUCKETS, **options: Any
                      ) -> list[tuple[date, KpiResult]]:
    """:func:`trend` from a tally per time bucket (e.g. ``GROUP BY TruncWeek(at), score``).

    Bucket keys may be any moment (or day) inside their bucket — a datetime is read as UTC,
    like :func:`bucket_start` — so finer buckets roll up: days given to a ``"month"`` trend are
    added into their months. Empty buckets, ``start``/``end`` and ``max_buckets`` behave exactly
    as in :func:`trend`.
    """
    merged: dict[date, ScoreCounts] = {}
    for moment, counts in buckets:
        key = bucket_start(_as_datetime(moment), period)
        merged[key] = merged[key] + counts if key in merged else counts
    return [(current, kpi.compute_from_counts(kind, merged[current], **options)
             if current in merged else kpi.empty(kind, **options))
            for current in _bucket_range(merged, period, start, end, max_buckets)]


def _bucket_range(present: Iterable[date], period: Period, start: date | None,
                  end: date | None, max_buckets: int) -> list[date]:
    """Every bucket from the first to the last (or ``start``..``end``), the latest
    ``max_buckets`` of them."""
    keys = list(present)
    first = bucket_start(_as_datetime(start), period) if start else min(keys, default=None)
    last = bucket_start(_as_datetime(end), period) if end else max(keys, default=None)
    if first is None or last is None:
        return []
    first = max(first, _back(last, period, max_buckets - 1))
    out: list[date] = []
    current = first
    while current <= last:
        out.append(current)
        current = _next_bucket(current, period)
    return out


def trend_by_dimension(kind: str, answers: Iterable[Answer], dimension: str, period: Period, *,
                       missing: str | None = UNKNOWN, start: date | None = None,
                       end: date | None = None,
                       **options: Any) -> list[tuple[str, list[tuple[date, KpiResult]]]]:
    """One :func:`trend` per slice, all over the same buckets so the lines line up."""
    rows = list(answers)
    if not rows and (start is None or end is None):
        return []
    first = start or min(bucket_start(a.at, "day") for a in rows)
    last = end or max(bucket_start(a.at, "day") for a in rows)
    groups = by_dimension(kind, rows, dimension, missing=missing, **options)
    out: list[tuple[str, list[tuple[date, KpiResult]]]] = []
    for label, _ in groups:
        members = [a for a in rows if _matches(a, dimension, label, missing)]
        out.append((label, trend(kind, members, period, start=first, end=last, **options)))
    return out


def _matches(answer: Answer, dimension: str, label: str, missing: str | None) -> bool:
    labels = _labels(answer.dims.get(dimension))
    return label in labels if labels else label == missing


def _labels(value: DimValue | None) -> Sequence[str]:
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(sorted({v for v in value if v}))


def _weights(rows: Sequence[Answer]) -> list[float] | None:
    if all(a.weight == 1.0 for a in rows):
        return None
    return [a.weight for a in rows]


def _as_datetime(day: date) -> datetime:
    if isinstance(day, datetime):
        return day
    return datetime(day.year, day.month, day.day, tzinfo=UTC)
