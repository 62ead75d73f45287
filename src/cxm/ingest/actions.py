"""The write path for events: validate, de-duplicate, resolve identity, store — one transaction.

A message counts as accepted only once the transaction that stores it has committed, so an
acknowledged message survives the process being killed right after.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
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


_MAX_ATTEMPTS = 6


def _is_deadlock(error: BaseException) -> bool:
    """PostgreSQL's deadlock_detected (40P01): two transactions waited for each other and one
    was aborted; running it again is always right. (Raised by psycopg directly from the
    hot path's own cursors, wrapped by Django from the ORM's.)"""
    return any(getattr(e, "sqlstate", None) == "40P01" for e in (error, error.__cause__))


def _run_batch(work: Callable[[], BatchResult]) -> BatchResult:
    """Run ``work`` in its own transaction (with audit rows collected to the end) and run it
    again if the identity stage asks for it (``pipeline.RetryBatch``: a concurrent batch on
    PostgreSQL changed what this one read) or PostgreSQL aborted it as a deadlock victim.
    Inside a caller's transaction nothing can be retried, so the identity stage locks
    everything up front instead."""
    if connection.in_atomic_block:
        token = pipeline.lock_hint.set(pipeline.LOCK_ALL)
        try:
            with transaction.atomic(), audit.collect():
                return work()
        finally:
            pipeline.lock_hint.reset(token)
    if not sql.is_postgres():
        return _group_commit.run(work)
    hint: Any = None
    for attempt in range(_MAX_ATTEMPTS):
        if attempt == _MAX_ATTEMPTS - 1:
            hint = pipeline.LOCK_ALL
        token = pipeline.lock_hint.set(hint)
        try:
            with transaction.atomic(), audit.collect():
                return work()
        except pipeline.RetryBatch as retry:
            hint = retry.hint
        except Exception as error:
            if not _is_deadlock(error) or attempt == _MAX_ATTEMPTS - 1:
                raise
            logger.info("ingest batch chosen as a deadlock victim; running it again")
            hint = pipeline.LOCK_ALL
        finally:
            pipeline.lock_hint.reset(token)
    raise AssertionError("unreachable")  # pragma: no cover


class _Pending:
    __slots__ = ("done", "error", "result", "work")

    def __init__(self, work: Callable[[], BatchResult]):
        self.work = work
        self.done = False
        self.result: BatchResult | None = None
        self.error: BaseException | None = None


class _GroupCommit:
    """SQLite has one writer at a time. Rather than let each request take the write lock on
    its own (and queue on SQLite's busy handler, which sleeps in growing steps and leaves the
    freed lock idle), the batches waiting in a process are written by one of their threads in
    **one** transaction — one ``BEGIN IMMEDIATE``, one commit, one fsync — each in its own
    savepoint, so a batch that fails is rolled back alone. Each request returns only after
    that commit (an acknowledged event is on disk). Between processes a ``flock`` on a file
    beside the database hands the write turn over at once (the kernel wakes the waiter)."""

    max_batches = 16

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._queue: list[_Pending] = []
        self._writing = False
        self._lock_file: tuple[int, Any] | None = None  # (pid, file)

    def run(self, work: Callable[[], BatchResult]) -> BatchResult:
        mine = _Pending(work)
        with self._cond:
            self._queue.append(mine)
            while not mine.done and self._writing:
                self._cond.wait()
            if mine.done:
                return self._answer(mine)
            self._writing = True
            group = self._queue[:self.max_batches]
            del self._queue[:self.max_batches]
        try:
            self._write(group)
        finally:
            with self._cond:
                self._writing = False
                for pending in group:
                    pending.done = True
                self._cond.notify_all()
        return self._answer(mine)

    @staticmethod
    def _answer(pending: _Pending) -> BatchResult:
        if pending.error is not None:
            raise pending.error
        assert pending.result is not None
        return pending.result

    def _write(self, group: list[_Pending]) -> None:
        try:
            with self._process_lock(), transaction.atomic():
                for pending in group:
                    try:
                        with transaction.atomic(), audit.collect():
                            pending.result = pending.work()
                    except Exception as error:  # this batch only: its savepoint is undone
                        pending.error = error
        except BaseException as error:  # the commit failed: nothing of the group is stored
            for pending in group:
                pending.result, pending.error = None, error
            if not isinstance(error, Exception):
                raise

    @contextmanager
    def _process_lock(self) -> Iterator[None]:
        handle = self._file()
        if handle is None:
            yield
            return
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def _file(self) -> Any:
        pid = os.getpid()
        if self._lock_file is not None and self._lock_file[0] == pid:
            return self._lock_file[1]
        name = str(connection.settings_dict.get("NAME") or "")
        if not name or name == ":memory:" or "mode=memory" in name:
            return None
        try:
            handle = open(f"{name}.write-lock", "a+b")  # noqa: SIM115 - kept for the process
        except OSError:
            return None
        self._lock_file = (pid, handle)
        return handle


_group_commit = _GroupCommit()


@dataclass(slots=True)
class Prepared:
    """Messages with their event rows built (payload encrypted and serialised) before the
    transaction starts, so the write lock (SQLite) is held only for the writes."""

    messages: list[spec.Message]
    rows: list[list[Any]]
    repeats: int
    precomputed: Any = None

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled (by the file importer, between its two processes) without the messages'
        # payloads — the storing side reads them only from ``rows``, encrypted — and with each
        # message as a plain tuple, which unpickles several times faster than the object.
        packed = [(m.message_id, m.type, m.name, m.user_id, m.anonymous_id, m.timestamp,
                   m.received_at, m.sent_at, m.original_timestamp, m.channel, m.identifiers,
                   m.traits, m.previous_id, m.group_id, m.consent) for m in self.messages]
        return (_unpack_prepared, (packed, self.rows, self.repeats, self.precomputed))


def _unpack_prepared(packed: list[tuple[Any, ...]], rows: list[list[Any]], repeats: int,
                     precomputed: Any) -> Prepared:
    message = spec.Message
    messages = [message(i, t, n, u, a, ts, r, s, o, c, ids, tr, {}, p, g, co)
                for i, t, n, u, a, ts, r, s, o, c, ids, tr, p, g, co in packed]
    return Prepared(messages, rows, repeats, precomputed)


def _verbatim(text: str) -> str:
    return text


def _payload_value(payload: dict[str, Any]) -> Any:
    """The payload column's value, serialised now (before the transaction, or in the file
    importer's preparing process) on both databases: on PostgreSQL a ``Jsonb`` holding the
    finished text, which psycopg sends as it is."""
    if not sql.is_postgres():
        return sql.adapt_json(payload)
    from psycopg.types.json import Jsonb

    return Jsonb(orjson.dumps(payload, option=orjson.OPT_NON_STR_KEYS).decode(),
                 dumps=_verbatim)


def _prepare(messages: Sequence[spec.Message], source: str) -> Prepared:
    unique: dict[str, spec.Message] = {}
    repeats = 0
    for message in messages:
        if message.message_id in unique:
            repeats += 1
        else:
            unique[message.message_id] = message
    source_label = source[:40]
    rows = []
    # received_at is one value per batch and sentAt usually too: adapt each distinct one once.
    adapted: dict[datetime | None, Any] = {None: None}

    def adapt_dt(value: datetime | None) -> Any:
        out = adapted.get(value, adapted)
        if out is adapted:
            out = adapted[value] = sql.adapt_datetime(value)
        return out

    for message in unique.values():
        rows.append([
            message.message_id, message.type, message.name, message.channel, None, None,
            sql.adapt_datetime(message.timestamp), adapt_dt(message.received_at),
            adapt_dt(message.sent_at), sql.adapt_datetime(message.original_timestamp),
            source_label, _payload_value(pii.protect_payload(message.payload)),
        ])
    kept = list(unique.values())
    hook = pipeline.precompute()
    return Prepared(kept, rows, repeats, hook(kept) if hook is not None and kept else None)


def _stored_message_ids(message_ids: list[str]) -> set[str]:
    found: set[str] = set()
    if sql.is_postgres():
        with connection.cursor() as cursor:
            for start in range(0, len(message_ids), 900):
                cursor.execute("SELECT message_id FROM ingest_event WHERE message_id = ANY(%s)",
                               [message_ids[start:start + 900]])
                found.update(row[0] for row in cursor.fetchall())
        return found
    with sql.sqlite_cursor() as cursor:  # "?" placeholders, no rewriting by Django
        for start in range(0, len(message_ids), 900):
            chunk = message_ids[start:start + 900]
            cursor.execute("SELECT message_id FROM ingest_event WHERE message_id IN ("
                           + ", ".join(["?"] * len(chunk)) + ")", chunk)
            found.update(row[0] for row in cursor.fetchall())
    return found


def _store_prepared(prepared: Prepared, actor: Actor) -> BatchResult:
    """The transaction's part of :func:`store_messages` (called inside it)."""
    result = BatchResult(duplicates=prepared.repeats)
    if not prepared.messages:
        return result
    prepare = pipeline.preparer()
    if prepare is not None:
        prepare(prepared.messages)
    existing = _stored_message_ids([m.message_id for m in prepared.messages])
    positions = [i for i, m in enumerate(prepared.messages) if m.message_id not in existing]
    fresh = [prepared.messages[i] for i in positions]
    result.duplicates += len(prepared.messages) - len(fresh)
    resolve = pipeline.resolver()
    resolutions: list[Any] = []
    if resolve is not None and fresh:
        token = pipeline.precomputed.set(prepared.precomputed)
        try:
            resolutions = resolve(fresh, actor)
        finally:
            pipeline.precomputed.reset(token)
    rows = []
    adapt_uuid = sql.adapt_uuid
    for position, index in enumerate(positions):
        row = prepared.rows[index]
        if resolutions:
            resolution = resolutions[position]
            row[4] = adapt_uuid(resolution.profile_id)
            row[5] = resolution.identity_id
        rows.append(row)
    inserted = sql.insert_rows(Event, _EVENT_COLUMNS, rows,
                               on_conflict_do_nothing="message_id",
                               returning=("id", "message_id"))
    if len(inserted) != len(fresh) and pipeline.lock_hint.get() != pipeline.LOCK_ALL:
        # A concurrent batch stored one of these messageIds between our check and our insert
        # (PostgreSQL; the insert waited for it to commit). Counters must count only what is
        # stored: run the batch again, and the check will see the repeat.
        raise pipeline.RetryBatch(pipeline.lock_hint.get())
    finish = getattr(resolutions, "finish", None)
    if finish is not None:
        stored = ({message_id for _, message_id in inserted} if len(inserted) != len(fresh)
                  else None)
        finish([i for i, m in enumerate(fresh) if stored is None or m.message_id in stored])
    ids = sorted(event_id for event_id, _ in inserted)
    result.accepted = len(ids)
    result.duplicates += len(fresh) - len(ids)
    result.event_ids = ids
    if ids:
        for subscriber in pipeline.subscribers():
            transaction.on_commit(lambda s=subscriber, i=ids: s(i))  # type: ignore[misc]
    return result


def store_messages(
    messages: Sequence[spec.Message], *, actor: Actor, source: str,
) -> BatchResult:
    """Store validated messages once each; returns how many were new and how many repeats.
    Outside a transaction it runs in its own one (retried as :func:`_run_batch` says)."""
    prepared = _prepare(messages, source)
    if not prepared.messages:
        return BatchResult(duplicates=prepared.repeats)
    return _run_batch(lambda: _store_prepared(prepared, actor))


def prepare_messages(messages: Sequence[spec.Message], source: str) -> Prepared:
    """The part of storing that needs no database: repeated ids dropped, event rows built
    (payload encrypted and serialised), identifiers' blind indexes computed. Pure enough to
    run in another process (the file importer does): the result pickles."""
    return _prepare(messages, source)


def store_counted(
    messages: Sequence[spec.Message], rejected: list[Rejection], *, actor: Actor, source: str,
    day: date,
) -> BatchResult:
    """:func:`store_messages` plus the outcome counts (accepted, duplicates, ``rejected``) in
    the same transaction — the file importer's chunk."""
    return store_prepared_counted(_prepare(messages, source), rejected, actor=actor,
                                  source=source, day=day)


def store_prepared_counted(
    prepared: Prepared, rejected: list[Rejection], *, actor: Actor, source: str, day: date,
) -> BatchResult:
    """:func:`store_counted` of messages already through :func:`prepare_messages`."""

    def work() -> BatchResult:
        result = _store_prepared(prepared, actor)
        record_outcomes(source, day, BatchResult(
            accepted=result.accepted, duplicates=result.duplicates, rejected=rejected))
        return result

    return _run_batch(work)


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
    # Encryption and serialisation happen before the transaction; outcomes are counted in it:
    # one commit (one fsync) per batch. Audit rows are collected and written last, so the
    # audit chain's lock is held only until the commit.
    prepared = _prepare(messages, source)

    def work() -> BatchResult:
        result = _store_prepared(prepared, actor)
        result.rejected.extend(rejected)
        record_outcomes(source, when.date(), result)
        return result

    return _run_batch(work)


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
