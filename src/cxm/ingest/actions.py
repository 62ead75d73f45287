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
from django.db import connection, transaction

from cxm.core import audit, pii, sql
from cxm.core.audit import Actor
from cxm.core.clock import now
from cxm.ingest import pipeline, spec
from cxm.ingest.models import Event

logger = logging.getLogger(__name__)

_EVENT_COLUMNS = (
    "message_id", "type", "name", "channel", "profile_id", "identity_id", "timestamp",
    "received_at", "sent_at", "original_timestamp", "source", "payload",
)


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
            encoded = orjson.dumps(raw)
            size = len(encoded)
            if b"\\u0000" in encoded:
                # PostgreSQL text and jsonb cannot hold NUL; refuse it on every database alike.
                raise spec.SpecError("invalid_character",
                                     "message contains a NUL character (\\u0000)")
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
    with transaction.atomic(savepoint=False), audit.collect():
        prepare = pipeline.preparer()
        if prepare is not None:
            prepare(list(unique.values()))
        existing = set(
            Event.objects.filter(message_id__in=list(unique)).values_list("message_id", flat=True)
        )
        fresh = [m for m in unique.values() if m.message_id not in existing]
        result.duplicates += len(unique) - len(fresh)
        resolve = pipeline.resolver()
        resolutions = resolve(fresh, actor) if resolve is not None and fresh else []
        source_label = source[:40]
        rows = []
        for position, message in enumerate(fresh):
            resolution = resolutions[position] if resolutions else None
            rows.append((
                message.message_id, message.type, message.name, message.channel,
                sql.adapt_uuid(resolution.profile_id) if resolution else None,
                resolution.identity_id if resolution else None,
                sql.adapt_datetime(message.timestamp), sql.adapt_datetime(message.received_at),
                sql.adapt_datetime(message.sent_at),
                sql.adapt_datetime(message.original_timestamp),
                source_label, sql.adapt_json(pii.protect_payload(message.payload)),
            ))
        ids = sql.insert_rows(Event, _EVENT_COLUMNS, rows,
                              on_conflict_do_nothing="message_id")
        result.accepted = len(ids)
        # Only reachable without a preparer's locks: a concurrent request stored the same
        # messageId between our check and our insert. The row is stored once either way.
        result.duplicates += len(fresh) - len(ids)
        result.event_ids = ids
        if ids:
            for subscriber in pipeline.subscribers():
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
    # Outcomes are counted in the same transaction: one commit (one fsync) per batch. Audit rows
    # are collected and written last, so the audit chain's lock is held only until the commit.
    with transaction.atomic(), audit.collect():
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
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)
