"""Reads of profiles, identities and timelines. Personal values are revealed here, once."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Q

from cxm.core import pii
from cxm.core.errors import InvalidInput, NotFound
from cxm.core.registry import Subject
from cxm.identity.models import Identity, Merge, Profile
from cxm.ingest import spec
from cxm.ingest.models import Event, ProfileChannel

_MAX_MERGE_HOPS = 20
LOOKUP_KINDS = ("user_id", "anonymous_id", "email", "phone")


def parse_profile_id(value: str) -> uuid.UUID:
    """A profile id from a URL or a request, or a 400 that says what was wrong."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidInput(f"{value[:60]!r} is not a profile id (a UUID)",
                           code="invalid_profile_id") from None


def canonical(profile_id: uuid.UUID) -> Profile:
    """The profile with this id, or the one it was merged into."""
    profile = Profile.objects.filter(id=profile_id).first()
    hops = 0
    while profile is not None and profile.merged_into_id is not None and hops < _MAX_MERGE_HOPS:
        profile = Profile.objects.filter(id=profile.merged_into_id).first()
        hops += 1
    if profile is None:
        raise NotFound(f"no profile {profile_id}", code="profile_not_found")
    return profile


def subject_of(profile: Profile) -> Subject:
    """Every profile id that is (or was merged into) this person's profile."""
    ids = [profile.id]
    frontier = [profile.id]
    while frontier:
        absorbed = list(Profile.objects.filter(merged_into_id__in=frontier)
                        .values_list("id", flat=True))
        new = [pid for pid in absorbed if pid not in ids]
        ids.extend(new)
        frontier = new
    return Subject(tuple(ids))


def normalize_identifier(kind: str, value: str) -> str:
    value = value.strip()
    if kind == "email":
        email = spec.normalize_email(value)
        if email is None:
            raise InvalidInput(f"{value[:60]!r} is not an email address", code="invalid_email")
        return email
    if kind == "phone":
        phone = spec.normalize_phone(value)
        if phone is None:
            raise InvalidInput("not a valid phone number (use +<country code> form)",
                               code="invalid_phone")
        return phone
    if not value:
        raise InvalidInput("identifier value is empty", code="invalid_identifier")
    return value


def by_identifier(kind: str, value: str) -> Profile:
    kind = kind.strip().lower()
    if kind not in LOOKUP_KINDS and not kind.startswith(spec.EXTERNAL_PREFIX):
        raise InvalidInput(f"kind must be one of {', '.join(LOOKUP_KINDS)} or ext:<type>",
                           code="invalid_kind")
    key = pii.lookup_key(kind, normalize_identifier(kind, value))
    identity = Identity.objects.filter(kind=kind, value=key).only("profile_id").first()
    if identity is None:
        raise NotFound(f"no profile with that {kind}", code="profile_not_found")
    return canonical(identity.profile_id)


def find_by_any(value: str) -> Profile | None:
    """Try a value as every kind of identifier (the search box's first guess)."""
    stripped = value.strip()
    if not stripped:
        return None
    candidates = {stripped}
    email = spec.normalize_email(stripped)
    if email:
        candidates.add(email)
    phone = spec.normalize_phone(stripped)
    if phone:
        candidates.add(phone)
    # The blind index does not depend on the kind, so one query covers every kind.
    indexes = [pii.lookup_key("any", c) for c in candidates]
    identity = Identity.objects.filter(value__in=indexes).only("profile_id").first()
    return canonical(identity.profile_id) if identity else None


def search(text: str, limit: int = 25) -> list[Profile]:
    """Profiles matching an identifier exactly, else every word of a name (or an email or
    phone) exactly — personal fields are encrypted, so matching is by blind tokens."""
    text = text.strip()
    if not text:
        return list(Profile.objects.filter(merged_into__isnull=True)
                    .order_by("-last_seen")[:limit])
    try:
        exact = canonical(uuid.UUID(text))
        return [exact]
    except (ValueError, NotFound):
        pass
    hit = find_by_any(text)
    if hit is not None:
        return [hit]
    tokens = pii.search_tokens(text.lower().replace(",", " ").split()).split()
    if not tokens:
        return []
    query = Profile.objects.filter(merged_into__isnull=True)
    for token in tokens[:6]:
        query = query.filter(search_index__contains=f" {token} ")
    return list(query.order_by("-last_seen")[:limit])


def revealed_traits(profile: Profile) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for key, entry in profile.traits.items():
        value = entry.get("value")
        if pii.is_personal_trait(key):
            value = pii.reveal_any(value)
        out[key] = {"value": value, "source": entry.get("source", ""), "at": entry.get("at", "")}
    return out


def consent_list(profile: Profile) -> list[dict[str, Any]]:
    rows = []
    for key, entry in sorted(profile.consent.items()):
        channel, _, purpose = key.partition(":")
        rows.append({"channel": channel, "purpose": purpose, "granted": entry.get("granted"),
                     "source": entry.get("source", ""), "at": entry.get("at", "")})
    return rows


def identities(profile: Profile) -> list[Identity]:
    """The profile's identifiers, with ``value`` revealed (the table holds a blind index)."""
    rows = list(Identity.objects.filter(profile_id=profile.id).order_by("created_at", "id"))
    for row in rows:
        row.value = pii.reveal(row.protected_value) if row.protected_value else row.value
    return rows


def merges(profile: Profile) -> list[Merge]:
    return list(
        Merge.objects.filter(Q(survivor_id=profile.id) | Q(merged_id=profile.id)).order_by("-at")
    )


@dataclass(frozen=True)
class TimelinePage:
    events: list[Event]
    next_cursor: str | None


def _encode_cursor(event: Event) -> str:
    raw = f"{event.timestamp.isoformat()}|{event.pk}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        stamp, _, pk = base64.urlsafe_b64decode(padded.encode()).decode().partition("|")
        return datetime.fromisoformat(stamp), int(pk)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("cursor is not valid; use next_cursor from the previous page",
                           code="invalid_cursor") from None


def timeline(
    profile: Profile, *, limit: int = 50, cursor: str | None = None,
    channel: str | None = None,
) -> TimelinePage:
    """Newest first, keyset-paged (stable while new events arrive)."""
    if not 1 <= limit <= 500:
        raise InvalidInput("limit must be between 1 and 500", code="invalid_limit")
    query = Event.objects.filter(profile_id=profile.id)
    if channel:
        if channel not in spec.CHANNELS:
            raise InvalidInput(f"channel must be one of {', '.join(spec.CHANNELS)}",
                               code="invalid_channel")
        query = query.filter(channel=channel)
    if cursor:
        stamp, pk = _decode_cursor(cursor)
        query = query.filter(Q(timestamp__lt=stamp) | Q(timestamp=stamp, id__lt=pk))
    events = list(query.order_by("-timestamp", "-id")[: limit + 1])
    next_cursor = _encode_cursor(events[limit - 1]) if len(events) > limit else None
    page = events[:limit]
    for event in page:
        if isinstance(event.payload, dict):
            event.payload = pii.reveal_payload(event.payload)
    return TimelinePage(page, next_cursor)


def channel_counts(profile: Profile) -> dict[str, int]:
    """Events per channel, most first — kept by ingest (``ProfileChannel``), so a read costs
    the same for a profile with five events and one with fifty thousand."""
    rows = (ProfileChannel.objects.filter(profile_id=profile.id, count__gt=0)
            .order_by("-count", "channel").values_list("channel", "count"))
    return dict(rows)


def reveal(stored: str) -> str:
    return pii.reveal(stored) if stored else ""


# Strongest first: the identifier a message about this person should carry.
_MESSAGE_ID_ORDER = {spec.KIND_USER_ID: 0, spec.KIND_EMAIL: 1, spec.KIND_PHONE: 2,
                     spec.KIND_ANONYMOUS_ID: 4, spec.KIND_PREVIOUS_ID: 5}


def message_fields_of(profile: Profile) -> dict[str, Any]:
    """Segment message fields that name this person (one identifier, strongest first), for a
    message another app sends through ingest about them — e.g. a survey answer."""
    rows = list(Identity.objects.filter(profile=profile).only("kind", "protected_value"))
    rows.sort(key=lambda i: (_MESSAGE_ID_ORDER.get(i.kind, 3), i.kind))
    for identity in rows:
        value = pii.reveal(identity.protected_value) if identity.protected_value else ""
        if not value:
            continue
        if identity.kind == spec.KIND_USER_ID:
            return {"userId": value}
        if identity.kind in {spec.KIND_ANONYMOUS_ID, spec.KIND_PREVIOUS_ID}:
            return {"anonymousId": value}
        if identity.kind in {spec.KIND_EMAIL, spec.KIND_PHONE}:
            return {"context": {"traits": {identity.kind: value}}}
        if identity.kind.startswith(spec.EXTERNAL_PREFIX):
            return {"context": {"externalIds": [
                {"type": identity.kind.removeprefix(spec.EXTERNAL_PREFIX), "id": value}]}}
    raise NotFound("this customer has no identifier left to record a message under",
                   code="no_identifier")
