"""REST endpoints for consent, subject-access export and erasure (thin)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Router, Schema

from cxm.accounts.api_auth import actor_of, needs
from cxm.core import privacy
from cxm.core.schemas import ErrorOut
from cxm.identity import actions, queries
from cxm.identity.consent import may_contact

router = Router(tags=["privacy"])
ERRORS: dict[int, type[ErrorOut]] = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut}


class ConsentIn(Schema):
    channel: str
    purpose: str
    granted: bool


class DecisionOut(Schema):
    allowed: bool
    reason: str
    source: str
    at: str


class ErasedOut(Schema):
    erased_profiles: list[str]
    removed: dict[str, int]


@router.get("/profiles/{profile_id}/consent/check", response={200: DecisionOut, **ERRORS},
            auth=needs("profile.read"), summary="May we contact this person on a channel for "
                                                "a purpose?")
def check_consent(request: HttpRequest, profile_id: str, channel: str, purpose: str) -> Any:
    profile = queries.canonical(queries.parse_profile_id(profile_id))
    decision = may_contact(profile.consent, channel, purpose)
    return {"allowed": decision.allowed, "reason": decision.reason, "source": decision.source,
            "at": decision.at}


@router.put("/profiles/{profile_id}/consent", response={200: list[dict[str, Any]], **ERRORS,
                                                         409: ErrorOut},
            auth=needs("consent.edit"), summary="Record a consent statement")
def put_consent(request: HttpRequest, profile_id: str, body: ConsentIn) -> Any:
    profile = actions.set_consent(profile_id=queries.parse_profile_id(profile_id),
                                  channel=body.channel, purpose=body.purpose,
                                  granted=body.granted, actor=actor_of(request))
    return queries.consent_list(profile)


@router.get("/profiles/{profile_id}/export", response={200: dict[str, Any], **ERRORS},
            auth=needs("privacy.export"),
            summary="Everything held on this person (subject-access request)")
def export_profile(request: HttpRequest, profile_id: str) -> Any:
    subject = queries.subject_of(queries.canonical(queries.parse_profile_id(profile_id)))
    return privacy.export(subject, actor_of(request))


@router.post("/profiles/{profile_id}/erase", response={200: ErasedOut, **ERRORS},
             auth=needs("privacy.erase"), summary="Erase this person everywhere")
def erase_profile(request: HttpRequest, profile_id: str) -> Any:
    subject = queries.subject_of(queries.canonical(queries.parse_profile_id(profile_id)))
    removed = privacy.erase(subject, actor_of(request))
    return {"erased_profiles": [str(p) for p in subject.profile_ids], "removed": removed}
