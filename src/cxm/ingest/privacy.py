"""The ingest app's part in export, erasure and key rotation (registered in apps.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cxm.core import pii, privacy
from cxm.core.registry import PersonalDataStore, Subject
from cxm.ingest.models import Event, ProfileChannel


def export(subject: Subject) -> dict[str, Any]:
    events = []
    query = Event.objects.filter(profile_id__in=list(subject.profile_ids)).order_by(
        "timestamp", "id")
    for event in query.iterator(chunk_size=2000):
        events.append({
            "message_id": event.message_id, "type": event.type, "name": event.name,
            "channel": event.channel, "timestamp": event.timestamp.isoformat(),
            "received_at": event.received_at.isoformat(), "source": event.source,
            "message": pii.reveal_payload(event.payload) if isinstance(event.payload, dict)
            else event.payload,
        })
    return {"events": events}


def erase(subject: Subject) -> dict[str, int]:
    ids = list(subject.profile_ids)
    ProfileChannel.objects.filter(profile_id__in=ids).delete()
    return {"events": Event.objects.filter(profile_id__in=ids).delete()[0]}


def reencrypt(rewrite: Callable[[Any], Any], batch_size: int) -> int:
    # Unlocked, and only the payload column: a concurrent merge may be moving profile_id.
    return privacy.reencrypt_rows(Event.objects.all(), ("payload",), rewrite, batch_size,
                                  lock=False)


STORE = PersonalDataStore(name="ingest", export=export, erase=erase, reencrypt=reencrypt,
                          order=200)
