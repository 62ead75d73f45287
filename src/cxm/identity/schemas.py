from __future__ import annotations

from datetime import datetime
from typing import Any

from ninja import Schema

from cxm.core.schemas import ErrorOut

__all__ = ["ErrorOut"]


class TraitOut(Schema):
    value: Any
    source: str
    at: str


class ConsentOut(Schema):
    channel: str
    purpose: str
    granted: bool | None
    source: str
    at: str


class IdentityOut(Schema):
    kind: str
    value: str
    source: str
    created_at: datetime


class ProfileSummaryOut(Schema):
    id: str
    name: str
    email: str
    phone: str
    first_seen: datetime | None
    last_seen: datetime | None
    event_count: int


class ProfileOut(ProfileSummaryOut):
    requested_id: str | None = None
    created_at: datetime
    traits: dict[str, TraitOut]
    preferences: dict[str, TraitOut]
    consent: list[ConsentOut]
    identities: list[IdentityOut]
    channels: dict[str, int]


class EventOut(Schema):
    id: int
    message_id: str
    type: str
    name: str
    channel: str
    timestamp: datetime
    received_at: datetime
    source: str
    properties: dict[str, Any]
    context: dict[str, Any]
    traits: dict[str, Any]


class TimelineOut(Schema):
    profile_id: str
    events: list[EventOut]
    next_cursor: str | None


class MergeOut(Schema):
    id: int
    survivor_id: str
    merged_id: str
    at: datetime
    actor: str
    reason: dict[str, Any]
    undone_at: datetime | None


class MergeIn(Schema):
    merged_id: str
    note: str = ""
