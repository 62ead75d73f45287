"""Reads of the feedback app (no writes: those are in ``actions``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from django.db import connections
from django.db.models import CharField, Count, F, Func, Q, QuerySet, Sum
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import TruncDay, TruncMonth, TruncWeek

from cxm.core import pii
from cxm.core.errors import NotFound
from cxm.feedback import definition as survey_definition
from cxm.feedback import policy
from cxm.feedback.models import (
    Contact,
    ContactPolicy,
    Invitation,
    Response,
    Survey,
    Theme,
    ThemeJob,
)
from cxm.feedback.tokens import nonce_of
from cxm.identity import queries as identity_queries
from cxm.identity.models import Profile

SEGMENT_TRAITS = ("segment", "plan", "tier")


def global_rules() -> policy.Rules:
    row = ContactPolicy.objects.filter(name="global").first()
    return policy.rules_from(row.rules if row else None)


def rules_for(survey: Survey) -> policy.Rules:
    return global_rules().stricter(policy.rules_from(survey.rules, policy.Rules(
        min_days_between=0, touchpoint_days=0, survey_days=0, max_contacts_7d=0,
        require_consent=False)))


def survey_by_name(name: str) -> Survey:
    survey = Survey.objects.filter(Q(name=name) | Q(slug=name)).first()
    if survey is None:
        raise NotFound(f"no survey named {name!r}", code="survey_not_found")
    return survey


def survey_by_id(survey_id: uuid.UUID | str) -> Survey:
    try:
        key = uuid.UUID(str(survey_id))
    except ValueError:
        raise NotFound(f"no survey {survey_id}", code="survey_not_found") from None
    survey = Survey.objects.filter(id=key).first()
    if survey is None:
        raise NotFound(f"no survey {survey_id}", code="survey_not_found")
    return survey


def surveys() -> QuerySet[Survey]:
    return Survey.objects.order_by("-created_at")


def invitation_by_token(token: str) -> Invitation:
    nonce = nonce_of(token)
    invitation = (Invitation.objects.select_related("survey").filter(nonce=nonce).first()
                  if nonce else None)
    if invitation is None:
        raise NotFound("this survey link is not valid: check that it was copied whole",
                       code="invalid_link")
    return invitation


def person_ids(profile_id: uuid.UUID) -> tuple[uuid.UUID, ...]:
    """The canonical profile and every profile merged into it."""
    try:
        profile = identity_queries.canonical(profile_id)
    except NotFound:
        return (profile_id,)
    return identity_queries.subject_of(profile).profile_ids


def contact_history(profile_ids: Sequence[uuid.UUID], since: datetime | None = None
                    ) -> list[policy.Contact]:
    rows = Contact.objects.filter(profile_id__in=list(profile_ids))
    if since is not None:
        rows = rows.filter(at__gte=since)
    return [policy.Contact(at=c.at, kind=c.kind, channel=c.channel, touchpoint=c.touchpoint,
                           survey_id=str(c.survey_id or ""))
            for c in rows.order_by("-at")[:500]]


def segment_of(profile: Profile) -> str:
    for key in SEGMENT_TRAITS:
        entry = profile.traits.get(key)
        if isinstance(entry, dict) and isinstance(entry.get("value"), str | int):
            return str(entry["value"])[:60]
    return ""


@dataclass(frozen=True)
class ProfileFeedback:
    """What the 360 page shows: the person's answers, invitations and policy standing."""

    responses: list[Response]
    invitations: list[Invitation]
    contacts: list[policy.Contact]
    next_survey: policy.Decision


def for_profile(profile: Profile, at: datetime) -> ProfileFeedback:
    ids = identity_queries.subject_of(profile).profile_ids
    history = contact_history(ids)
    decision = policy.decide(global_rules(), history, at=at, channel="email",
                             consent=profile.consent)
    return ProfileFeedback(
        responses=list(Response.objects.filter(profile_id__in=ids).select_related("survey")
                       .order_by("-submitted_at")[:20]),
        invitations=list(Invitation.objects.filter(profile_id__in=ids)
                         .select_related("survey").order_by("-created_at")[:20]),
        contacts=history[:20],
        next_survey=decision,
    )


def comment_of(response: Response) -> str:
    return pii.reveal(response.comment) if response.comment else ""


def revealed_answers(response: Response) -> dict[str, Any]:
    return {k: (pii.reveal_any(v) if isinstance(v, str) else v)
            for k, v in response.answers.items()}


@dataclass(frozen=True)
class ScoredAnswer:
    """A response reduced to what KPI maths needs."""

    response_id: str
    score: float
    at: datetime
    dims: dict[str, str]
    themes: frozenset[str]


def _scored(survey: Survey | None, kind: str | None, since: datetime | None,
            until: datetime | None) -> QuerySet[Response]:
    """Responses with a headline score, narrowed like every results read narrows them."""
    rows = Response.objects.filter(score__isnull=False)
    if survey is not None:
        rows = rows.filter(survey=survey)
    if kind is not None:
        rows = rows.filter(kind=kind)
    if since is not None:
        rows = rows.filter(submitted_at__gte=since)
    if until is not None:
        rows = rows.filter(submitted_at__lt=until)
    return rows


def scored_answers(
    *, survey: Survey | None = None, kind: str | None = None,
    since: datetime | None = None, until: datetime | None = None,
) -> list[ScoredAnswer]:
    """Every scored answer as a row. Results pages read :func:`score_counts` instead (this
    costs ~60 µs per answer); kept as the reference the counts path is tested and benchmarked
    against."""
    rows = _scored(survey, kind, since, until)
    theme_names = canonical_theme_names()
    themes_of: dict[uuid.UUID, set[str]] = {}
    through = Response.themes.through.objects.filter(response__in=rows).values_list(
        "response_id", "theme_id")
    for response_id, theme_id in through:
        name = theme_names.get(theme_id)
        if name:
            themes_of.setdefault(response_id, set()).add(name)
    names = dict(Survey.objects.values_list("id", "name"))
    result = []
    # Tuples, not model instances: building objects was most of the time at 100k answers.
    for response_id, score, at, stored_dims, channel, survey_id in rows.values_list(
            "id", "score", "submitted_at", "dims", "channel", "survey_id"):
        dims = {k: str(v) for k, v in (stored_dims or {}).items() if v}
        dims["channel"] = channel
        dims["survey"] = names.get(survey_id, "")
        result.append(ScoredAnswer(str(response_id), float(score or 0), at, dims,
                                   frozenset(themes_of.get(response_id, ()))))
    return result


# What answers can be counted by in SQL. touchpoint, stage and segment were frozen into the
# ``dims`` JSON at answer time (the segment as plain text, copied from the profile's trait), so
# no profile is read: the answers are grouped by the whole ``dims`` value — a few distinct
# values per survey — and the labels are read from those in Python. That is portable (text on
# SQLite, jsonb equality on PostgreSQL), cheaper on SQLite than extracting three keys per row
# (Django's key lookup parses the JSON three times per key there), and labels come out exactly
# as the row path made them.
COUNT_GROUPS = ("channel", "touchpoint", "stage", "segment", "survey")
_COLUMNS = {"channel": "channel", "survey": "survey_id"}
_DIMS_KEYS = ("touchpoint", "stage", "segment")
_TRUNC = {"day": TruncDay, "week": TruncWeek, "month": TruncMonth}
# SQLite: Django's Trunc* call a Python function per row there (~6 µs: 0.6 s at 100k answers),
# so the same UTC bucket is computed with SQLite's own date functions on the stored text —
# Django stores SQLite datetimes as UTC "YYYY-MM-DD HH:MM:SS[.ffffff]". "weekday 0" moves to
# the next Sunday (or stays on one), "-6 days" back to its Monday: ISO weeks, as PostgreSQL's
# date_trunc('week') and slicing.bucket_start (tests check the three agree).
_SQLITE_BUCKET = {
    "day": "substr(%(expressions)s, 1, 10)",
    "week": "date(substr(%(expressions)s, 1, 10), 'weekday 0', '-6 days')",
    "month": "substr(%(expressions)s, 1, 7) || '-01'",
}


def score_counts(
    *, survey: Survey | None = None, kind: str | None = None,
    since: datetime | None = None, until: datetime | None = None, by: Sequence[str] = (),
) -> list[tuple[tuple[str | None, ...], float, int]]:
    """Scored answers counted in the database: ``(labels, score, answers)`` per score value
    and combination of the ``by`` slices (:data:`COUNT_GROUPS`) — one ``GROUP BY`` however
    many answers there are.

    ``labels`` holds one label per slice in ``by``'s order (``None`` when missing or empty;
    the survey's name for ``"survey"``). Grouping by several slices at once reads the answers
    once; the caller adds up the combinations per slice (several rows may share labels).
    Responses carry no weights, so a count per score value is all the KPI maths needs.
    """
    unknown = [name for name in by if name not in COUNT_GROUPS]
    if unknown:
        raise ValueError(f"cannot count by {unknown[0]!r}; expected one of "
                         f"{', '.join(COUNT_GROUPS)}")
    columns = sorted({_COLUMNS[name] for name in by if name in _COLUMNS})
    if any(name in _DIMS_KEYS for name in by):
        columns.append("dims")
    # COUNT(*), not COUNT(id): SQLite need not read the 32-character id of each row.
    counted = (_scored(survey, kind, since, until).values(*columns, "score")
               .annotate(answers=Count("*")).order_by())
    names = dict(Survey.objects.values_list("id", "name")) if "survey" in by else {}
    out: list[tuple[tuple[str | None, ...], float, int]] = []
    for row in counted:
        dims = row.get("dims") if isinstance(row.get("dims"), dict) else {}
        labels: list[str | None] = []
        for name in by:
            if name == "survey":
                value: Any = names.get(row["survey_id"], "")
            elif name == "channel":
                value = row["channel"]
            else:  # as scored_answers reads dims: falsy is missing, the rest as text
                value = dims.get(name)
            labels.append(str(value) if value else None)
        out.append((tuple(labels), float(row["score"] or 0), int(row["answers"])))
    return out


def score_counts_by_period(
    *, survey: Survey | None = None, kind: str | None = None, period: str,
    since: datetime | None = None, until: datetime | None = None,
) -> list[tuple[date, float, int]]:
    """Scored answers per UTC day, Monday-start week or month (its first day) and score value,
    counted in the database."""
    rows = _scored(survey, kind, since, until)
    bucket = _utc_bucket(rows, "submitted_at", period)
    counted = (rows.annotate(bucket=bucket).values("bucket", "score")
               .annotate(answers=Count("*")).order_by())
    return [(_day_of(row["bucket"]), float(row["score"] or 0), int(row["answers"]))
            for row in counted]


def _utc_bucket(rows: QuerySet[Any], field: str, period: str) -> Func:
    """The UTC day, Monday-start week or month (its first day) of ``field``, as an expression
    for ``rows``' database (see ``_SQLITE_BUCKET``); read it back with :func:`_day_of`."""
    if period not in _TRUNC:
        raise ValueError(f"period must be one of {', '.join(_TRUNC)}")
    if connections[rows.db].vendor == "sqlite":
        return Func(F(field), template=_SQLITE_BUCKET[period], output_field=CharField())
    bucket: Func = _TRUNC[period](field, tzinfo=UTC)
    return bucket


def _day_of(value: datetime | date | str) -> date:
    if isinstance(value, str):
        return date.fromisoformat(value)
    if isinstance(value, datetime):
        return (value.astimezone(UTC) if value.tzinfo else value).date()
    return value


@dataclass(frozen=True)
class DriverRow:
    """What driver analysis reads of one scored answer, and nothing more."""

    score: float
    channel: str
    touchpoint: str
    themes: frozenset[str]


def driver_rows(*, survey: Survey | None = None, kind: str | None = None) -> list[DriverRow]:
    """Per scored answer: score, channel, touchpoint and theme names — the columns driver
    analysis needs (``values_list``; no comment, answers or whole ``dims`` JSON)."""
    rows = _scored(survey, kind, None, None)
    theme_names = canonical_theme_names()
    themes_of: dict[uuid.UUID, set[str]] = {}
    for response_id, theme_id in Response.themes.through.objects.filter(
            response__in=rows).values_list("response_id", "theme_id"):
        name = theme_names.get(theme_id)
        if name:
            themes_of.setdefault(response_id, set()).add(name)
    empty: frozenset[str] = frozenset()
    return [DriverRow(float(score), channel or "", touchpoint or "",
                      frozenset(themes_of[rid]) if rid in themes_of else empty)
            for rid, score, channel, touchpoint in rows.values_list(
                "id", "score", "channel", KeyTextTransform("touchpoint", "dims"))]


def canonical_theme_names() -> dict[int, str]:
    """Theme id → the name of the theme it ends up in after merges."""
    themes = {t.id: t for t in Theme.objects.all()}
    names: dict[int, str] = {}
    for theme in themes.values():
        current, hops = theme, 0
        while current.merged_into_id is not None and hops < 20:
            current = themes.get(current.merged_into_id, current)
            hops += 1
        names[theme.id] = current.name
    return names


def active_themes() -> QuerySet[Theme]:
    return Theme.objects.filter(merged_into__isnull=True).annotate(
        volume=Count("responses")).order_by("-volume", "name")


def theme_job(job_id: int) -> ThemeJob:
    job = ThemeJob.objects.filter(id=job_id).first()
    if job is None:
        raise NotFound(f"no theme job {job_id}", code="theme_job_not_found")
    return job


def theme_job_to_show() -> ThemeJob | None:
    """What the themes page reports: the oldest job still queued or running (the next to
    finish), else the latest job if it failed (until a later one succeeds)."""
    active = ThemeJob.objects.filter(status__in=ThemeJob.ACTIVE).order_by("id").first()
    if active is not None:
        return active
    latest = ThemeJob.objects.order_by("-id").first()
    return latest if latest is not None and latest.status == "failed" else None


def invitation_counts(survey: Survey) -> dict[str, int]:
    counts = dict(survey.invitations.values_list("status").annotate(n=Count("id")))
    return {status: int(counts.get(status, 0)) for status, _ in Invitation.STATUS_CHOICES}


def response_rate_inputs(survey: Survey) -> tuple[int, int]:
    """(invited, answered): invitations that reached the person (sent or answered)."""
    counts = invitation_counts(survey)
    invited = counts["sent"] + counts["answered"]
    return invited, counts["answered"]


def definition_of(survey: Survey) -> survey_definition.Definition:
    return survey_definition.parse(survey.definition)


def responses_of(survey: Survey, ids: Iterable[str] | None = None) -> QuerySet[Response]:
    rows = survey.responses.order_by("-submitted_at")
    return rows.filter(id__in=list(ids)) if ids is not None else rows


def open_invitation(survey: Survey, profile_ids: Sequence[uuid.UUID], channel: str,
                    at: datetime) -> Invitation | None:
    """The person's latest delivered, unanswered, unexpired invitation on this channel."""
    return (Invitation.objects.filter(survey=survey, profile_id__in=list(profile_ids),
                                      channel=channel, status="sent", expires_at__gt=at)
            .order_by("-created_at").first())


def suppressed_since(survey: Survey, profile_ids: Sequence[uuid.UUID], channel: str,
                     since: datetime) -> bool:
    """Whether an invitation on this channel was refused by the policy since then."""
    return Invitation.objects.filter(survey=survey, profile_id__in=list(profile_ids),
                                     channel=channel, status="suppressed",
                                     created_at__gte=since).exists()


def scored_kind(survey: Survey) -> str | None:
    """The kind of a survey's scored answers (for a custom survey: its first score question's)."""
    found = Response.objects.filter(survey=survey, score__isnull=False).values_list(
        "kind", flat=True).first()
    return str(found) if found else None


@dataclass(frozen=True)
class ThemeLinkCounts:
    """One theme id's answer links, counted in the database for one sentiment label."""

    theme_id: int
    sentiment: str
    links: int
    score_sum: float
    scored: int  # links whose answer has a sentiment score


def theme_link_counts() -> list[ThemeLinkCounts]:
    """Per theme id and sentiment label: the links, and the sum and count of their answers'
    sentiment scores — one ``GROUP BY`` however many answers there are."""
    through = Response.themes.through
    counted = (through.objects.values("theme_id", "response__sentiment")
               .annotate(links=Count("*"), score_sum=Sum("response__sentiment_score"),
                         scored=Count("response__sentiment_score"))
               .order_by())
    return [ThemeLinkCounts(int(row["theme_id"]), row["response__sentiment"] or "",
                            int(row["links"]), float(row["score_sum"] or 0.0),
                            int(row["scored"])) for row in counted]


def theme_link_counts_by_period(period: str) -> list[tuple[int, date, int]]:
    """Per theme id and UTC day, Monday-start week or month (its first day): the links of its
    answers submitted then, counted in the database."""
    links: QuerySet[Any] = Response.themes.through.objects.all()
    bucket = _utc_bucket(links, "response__submitted_at", period)
    counted = (links.annotate(bucket=bucket).values("theme_id", "bucket")
               .annotate(links=Count("*")).order_by())
    return [(int(row["theme_id"]), _day_of(row["bucket"]), int(row["links"]))
            for row in counted]


def latest_linked_responses(theme_ids: Sequence[int], limit: int) -> list[uuid.UUID]:
    """The ids of the latest ``limit`` answers linked to any of ``theme_ids`` (a theme and
    the themes merged into it), newest first."""
    if limit <= 0 or not theme_ids:
        return []
    rows = (Response.themes.through.objects.filter(theme_id__in=list(theme_ids))
            .order_by("-response__submitted_at", "-response_id")
            .values_list("response_id", flat=True)[:limit])
    return list(rows)

