"""The write path for events: validate, de-duplicate, resolve identity, store — one transaction.

A message counts as accepted only once the transaction that stores it has committed, so an
acknowledged message survives the process being killed right after.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import orjson
from django.conf import settings
from django.db import IntegrityError, connection, transaction

from cxm.core.audit import Actor
from cxm.core.clock import now
from cxm.ingest import pipeline, spec
from cxm.ingest.models import Event

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Rejection:
    index: int
    message_id: str | None
    code: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "messageId": self.message_id, "code": self.code,
                "message": self.message}


@dataclass(slots=True)
class BatchResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    event_ids: list[int] = field(default_factory=list)

    def add(self, other: BatchResult) -> None:
        self.accepted += other.accepted
        self.duplicates += other.duplicates
        self.rejected.extend(other.rejected)


def _message_id_of(raw: Any) -> str | None:
    if isinstance(raw, dict):
        value = raw.get("messageId")
        if isinstance(value, str):
            return value[:255]
    return None


def validate_messages(
    raws: Sequence[Any], *, received_at: datetime, forced_type: str | None = None,
    batch_sent_at: datetime | None = None, default_channel: str = "",
    max_message_bytes: int | None = None, index_offset: int = 0,
) -> tuple[list[spec.Message], list[Rejection]]:
    limit = max_message_bytes or settings.CXM.max_message_bytes
    messages: list[spec.Message] = []
    rejected: list[Rejection] = []
    for index, raw in enumerate(raws, start=index_offset):
        try:
            size = len(orjson.dumps(raw))
            if size > limit:
                raise spec.SpecError(
                    "message_too_large",
                    f"message is {size} bytes; the limit is {limit} bytes (32 KB)",
                )
            messages.append(spec.normalize(
                raw, received_at=received_at, forced_type=forced_type,
                batch_sent_at=batch_sent_at, default_channel=default_channel,
            ))
        except spec.SpecError as error:
            rejected.append(Rejection(index, _message_id_of(raw), error.code, error.message))
        except orjson.JSONEncodeError as error:
            rejected.append(Rejection(index, None, "invalid_message", str(error)))
    return messages, rejected


def store_messages(
    messages: Sequence[spec.Message], *, actor: Actor, source: str,
) -> BatchResult:
    """Store validated messages once each; returns how many were new and how many repeats."""
    result = BatchResult()
    if not messages:
        return result
    unique: dict[str, spec.Message] = {}
    for message in messages:
        if message.message_id in unique:
            result.duplicates += 1
        else:
            unique[message.message_id] = message
    with transaction.atomic():
        existing = set(
            Event.objects.filter(message_id__in=list(unique)).values_list("message_id", flat=True)
        )
        fresh = [m for m in unique.values() if m.message_id not in existing]
        result.duplicates += len(unique) - len(fresh)
        resolve = pipeline.resolver()
        resolutions = resolve(fresh, actor) if resolve is not None and fresh else []
        rows = []
        for position, message in enumerate(fresh):
            resolution = resolutions[position] if resolutions else None
            rows.append(Event(
                message_id=message.message_id, type=message.type, name=message.name,
                channel=message.channel,
                profile_id=resolution.profile_id if resolution else None,
                identity_id=resolution.identity_id if resolution else None,
                user_id=message.user_id, anonymous_id=message.anonymous_id,
                timestamp=message.timestamp, received_at=message.received_at,
                sent_at=message.sent_at, original_timestamp=message.original_timestamp,
                source=source[:40], payload=message.payload,
            ))
        try:
            with transaction.atomic():
                created = Event.objects.bulk_create(rows, batch_size=500)
            ids = [e.pk for e in created if e.pk is not None]
        except IntegrityError:
            # A concurrent request stored some of the same messageIds after our check: keep
            # theirs, store the rest. Their profile updates were the same as ours (idempotent).
            Event.objects.bulk_create(rows, batch_size=500, ignore_conflicts=True)
            ids = list(Event.objects.filter(message_id__in=[r.message_id for r in rows])
                       .values_list("id", flat=True))
        result.accepted = len(fresh)
        result.event_ids = ids
        if ids:
            subscribers = pipeline.subscribers()
            for subscriber in subscribers:
                transaction.on_commit(lambda s=subscriber, i=ids: s(i))  # type: ignore[misc]
    return result


def ingest(
    raws: Sequence[Any], *, actor: Actor, source: str, received_at: datetime | None = None,
    forced_type: str | None = None, batch_sent_at: datetime | None = None,
    default_channel: str = "",
) -> BatchResult:
    """Validate and store a batch; bad messages are reported, the rest are kept."""
    when = received_at or now()
    messages, rejected = validate_messages(
        raws, received_at=when, forced_type=forced_type, batch_sent_at=batch_sent_at,
        default_channel=default_channel,
    )
    result = store_messages(messages, actor=actor, source=source)
    result.rejected.extend(rejected)
    record_outcomes(source, when.date(), result)
    return result


def record_outcomes(source: str, day: date, result: BatchResult) -> None:
    counts: Counter[tuple[str, str]] = Counter()
    if result.accepted:
        counts[("accepted", "")] += result.accepted
    if result.duplicates:
        counts[("duplicate", "")] += result.duplicates
    for rejection in result.rejected:
        counts[("rejected", rejection.code)] += 1
    add_outcomes(source, day, counts.items())


def add_outcomes(source: str, day: date, counts: Iterable[tuple[tuple[str, str], int]]) -> None:
    rows = [(day, source[:40], outcome, reason[:40], n) for (outcome, reason), n in counts if n]
    if not rows:
        return
    table = connection.ops.quote_name("ingest_outcome")
    # An upsert that adds, on both SQLite (3.24+) and PostgreSQL; the ORM's
    # update_conflicts can only overwrite, and concurrent batches must not lose counts.
    sql = (
        f"INSERT INTO {table} (day, source, outcome, reason, count) VALUES (%s, %s, %s, %s, %s) "
        f"ON CONFLICT (day, source, outcome, reason) "
        f"DO UPDATE SET count = {table}.count + excluded.count"
    )
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(sql, rows)
    except Exception:  # counting must never fail an accepted batch
        logger.exception("could not record ingest outcomes")
