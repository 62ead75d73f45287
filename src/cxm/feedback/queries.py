"""Reads of the feedback app (no writes: those are in ``actions``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Count, Q, QuerySet

from cxm.core import pii
from cxm.core.errors import NotFound
from cxm.feedback import definition as survey_definition
from cxm.feedback import policy
from cxm.feedback.models import Contact, ContactPolicy, Invitation, Response, Survey, Theme
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


def scored_answers(
    *, survey: Survey | None = None, kind: str | None = None,
    since: datetime | None = None, until: datetime | None = None,
) -> list[ScoredAnswer]:
    rows = Response.objects.filter(score__isnull=False)
    if survey is not None:
        rows = rows.filter(survey=survey)
    if kind is not None:
        rows = rows.filter(kind=kind)
    if since is not None:
        rows = rows.filter(submitted_at__gte=since)
    if until is not None:
        rows = rows.filter(submitted_at__lt=until)
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


def scores_of(survey: Survey, kind: str) -> list[float]:
    """Just the headline scores of a survey's answers of one kind (the list page's figure)."""
    return [float(s) for s in Response.objects.filter(
        survey=survey, kind=kind, score__isnull=False).values_list("score", flat=True)
        if s is not None]


def scored_kind(survey: Survey) -> str | None:
    """The kind of a survey's scored answers (for a custom survey: its first score question's)."""
    found = Response.objects.filter(survey=survey, score__isnull=False).values_list(
        "kind", flat=True).first()
    return str(found) if found else None


def theme_links() -> list[tuple[int, uuid.UUID, datetime, str, float | None]]:
    """Every (theme, response, submitted_at, sentiment, sentiment_score) link."""
    return list(Response.themes.through.objects.values_list(
        "theme_id", "response_id", "response__submitted_at", "response__sentiment",
        "response__sentiment_score"))
