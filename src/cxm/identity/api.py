"""REST endpoints for profiles (thin: parsing and shaping only; reads via queries, writes via
actions)."""

from __future__ import annotations

from typing import Any

import orjson
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse
from ninja import Router

from cxm.accounts.api_auth import actor_of, needs
from cxm.core import audit
from cxm.core.errors import InvalidInput
from cxm.identity import actions, queries
from cxm.identity.models import Merge, Profile
from cxm.identity.schemas import (
    ErrorOut,
    IdentityOut,
    MergeIn,
    MergeOut,
    ProfileOut,
    ProfileSummaryOut,
    TimelineOut,
)
from cxm.ingest.models import Event

router = Router(tags=["profiles"])
# Every read here answers with personal data (names, emails, phones, traits), so each needs
# both permissions; merges need ``profile.merge``. The matrix: ``accounts.permissions``.
READ = needs("profile.read", "profile.read_personal")
MERGE = needs("profile.merge")
ERRORS: dict[int, type[ErrorOut]] = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut}


def summary(profile: Profile) -> dict[str, Any]:
    return {
        "id": str(profile.id), "name": queries.reveal(profile.display_name),
        "email": queries.reveal(profile.email), "phone": queries.reveal(profile.phone),
        "first_seen": profile.first_seen, "last_seen": profile.last_seen,
        "event_count": profile.event_count,
    }


def full(profile: Profile, requested: str | None = None) -> dict[str, Any]:
    return {
        **summary(profile),
        "requested_id": requested if requested and requested != str(profile.id) else None,
        "created_at": profile.created_at,
        "traits": queries.revealed_traits(profile),
        "preferences": {k: {"value": v.get("value"), "source": v.get("source", ""),
                            "at": v.get("at", "")} for k, v in profile.preferences.items()},
        "consent": queries.consent_list(profile),
        "identities": [
            {"kind": i.kind, "value": i.value, "source": i.source, "created_at": i.created_at}
            for i in queries.identities(profile)
        ],
        "channels": queries.channel_counts(profile),
    }


_PERSONAL_FIELDS = ["name", "email", "phone", "traits", "identities"]


def _read(request: HttpRequest, body: dict[str, Any]) -> dict[str, Any]:
    """Every read of a profile's personal data leaves an audit row."""
    audit.record_read(actor_of(request), "profile", body["id"], _PERSONAL_FIELDS)
    return body


def event_out(event: Event) -> dict[str, Any]:
    payload = event.payload if isinstance(event.payload, dict) else {}
    traits = payload.get("traits") if isinstance(payload.get("traits"), dict) else {}
    return {
        "id": event.pk, "message_id": event.message_id, "type": event.type, "name": event.name,
        "channel": event.channel, "timestamp": _ENCODER.default(event.timestamp),
        "received_at": _ENCODER.default(event.received_at), "source": event.source,
        "properties": payload.get("properties") or {},
        "context": payload.get("context") or {},
        "traits": traits,
    }


@router.get("/profiles", response={200: list[ProfileSummaryOut], **ERRORS}, auth=READ,
            summary="Search profiles by id, identifier, name or email")
def search_profiles(request: HttpRequest, q: str = "", limit: int = 25) -> Any:
    if not 1 <= limit <= 200:
        raise InvalidInput("limit must be between 1 and 200", code="invalid_limit")
    found = [summary(p) for p in queries.search(q, limit)]
    if found:
        audit.record_reads(actor_of(request), "profile", [p["id"] for p in found],
                           ["name", "email", "phone"])
    return found


@router.get("/profiles/lookup", response={200: ProfileOut, **ERRORS}, auth=READ,
            summary="Find a profile by an identifier")
def lookup_profile(
    request: HttpRequest, email: str | None = None, phone: str | None = None,
    user_id: str | None = None, anonymous_id: str | None = None,
    kind: str | None = None, value: str | None = None,
) -> Any:
    given = {k: v for k, v in {"email": email, "phone": phone, "user_id": user_id,
                               "anonymous_id": anonymous_id}.items() if v}
    if kind and value:
        given[kind] = value
    if len(given) != 1:
        raise InvalidInput("give exactly one of email, phone, user_id, anonymous_id, or "
                           "kind and value", code="invalid_lookup")
    ((lookup_kind, lookup_value),) = given.items()
    return _read(request, full(queries.by_identifier(lookup_kind, lookup_value)))


@router.get("/profiles/{profile_id}", response={200: ProfileOut, **ERRORS}, auth=READ,
            summary="A profile with traits, preferences, consent and identities")
def get_profile(request: HttpRequest, profile_id: str) -> Any:
    return _read(request, full(queries.canonical(queries.parse_profile_id(profile_id)), profile_id))


@router.get("/profiles/{profile_id}/timeline", response={200: TimelineOut, **ERRORS},
            auth=READ, summary="Events across channels, newest first, keyset-paged")
def get_timeline(
    request: HttpRequest, profile_id: str, limit: int = 50, cursor: str | None = None,
    channel: str | None = None,
) -> Any:
    profile = queries.canonical(queries.parse_profile_id(profile_id))
    page = queries.timeline(profile, limit=limit, cursor=cursor, channel=channel)
    audit.record_read(actor_of(request), "profile", str(profile.id), ["timeline"])
    # Serialised here with orjson rather than validated against TimelineOut (which still
    # documents it): the rows come from our own table, and re-validating every event cost
    # more than the query. Datetimes are spelled as Ninja spells them (DjangoJSONEncoder).
    body = {"profile_id": str(profile.id), "events": [event_out(e) for e in page.events],
            "next_cursor": page.next_cursor}
    return HttpResponse(orjson.dumps(body, default=_json_default),
                        content_type="application/json")


_ENCODER = DjangoJSONEncoder()


def _json_default(value: Any) -> Any:
    return _ENCODER.default(value)


@router.get("/profiles/{profile_id}/identities", response={200: list[IdentityOut], **ERRORS},
            auth=READ)
def get_identities(request: HttpRequest, profile_id: str) -> Any:
    profile = queries.canonical(queries.parse_profile_id(profile_id))
    return [{"kind": i.kind, "value": i.value, "source": i.source, "created_at": i.created_at}
            for i in queries.identities(profile)]


def merge_out(merge: Merge) -> dict[str, Any]:
    return {"id": merge.pk, "survivor_id": str(merge.survivor_id),
            "merged_id": str(merge.merged_id), "at": merge.at, "actor": merge.actor,
            "reason": merge.reason, "undone_at": merge.undone_at}


@router.get("/profiles/{profile_id}/merges", response={200: list[MergeOut], **ERRORS},
            auth=READ, summary="Merges this profile took part in, newest first")
def get_merges(request: HttpRequest, profile_id: str) -> Any:
    profile = queries.canonical(queries.parse_profile_id(profile_id))
    return [merge_out(m) for m in queries.merges(profile)]


@router.post("/profiles/{profile_id}/merge", response={200: MergeOut, **ERRORS, 409: ErrorOut},
             auth=MERGE, summary="Merge another profile into this one")
def post_merge(request: HttpRequest, profile_id: str, body: MergeIn) -> Any:
    record = actions.merge_profiles(survivor_id=queries.parse_profile_id(profile_id),
                                    merged_id=queries.parse_profile_id(body.merged_id),
                                    actor=actor_of(request), note=body.note)
    return merge_out(record)


@router.post("/merges/{merge_id}/undo", response={200: list[ProfileSummaryOut], **ERRORS,
                                                   409: ErrorOut},
             auth=MERGE, summary="Undo a merge, restoring both profiles")
def undo_merge(request: HttpRequest, merge_id: int) -> Any:
    survivor, merged = actions.unmerge(merge_id=merge_id, actor=actor_of(request))
    return [summary(survivor), summary(merged)]


