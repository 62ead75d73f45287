"""Reads of stored events for later stages (they subscribe to ingest and read through here)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence

from cxm.ingest.models import Event


def profile_of_message(message_id: str) -> uuid.UUID | None:
    """The profile a stored message was resolved to, if it is stored."""
    return Event.objects.filter(message_id=message_id).values_list(
        "profile_id", flat=True).first()


def tracks(event_ids: Sequence[int], names: Iterable[str]) -> list[Event]:
    """The track events among ``event_ids`` with one of these names that belong to a profile
    (payloads as stored: personal values still protected)."""
    return list(Event.objects.filter(id__in=list(event_ids), type="track",
                                     name__in=list(names), profile_id__isnull=False))


def track_ids(name: str) -> list[int]:
    """Ids of every stored track event of this name, oldest first."""
    return list(Event.objects.filter(type="track", name=name).order_by("id")
                .values_list("id", flat=True))
