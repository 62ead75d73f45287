"""The audit log: append-only, hash-chained, searchable.

Writing
    ``record`` (one row), ``record_many`` (many rows in one statement — the ingest path) and
    ``record_read`` (a read of personal data) are called from ``actions`` modules inside their
    transaction. Each row gets the next ``seq`` and is chained to the row before it::

        row_hash = sha256(orjson.dumps({"seq", "at", "actor", "action", "target_type",
                                        "target_id", "changes", "ip", "prev_hash"},
                                       OPT_SORT_KEYS)).hexdigest()

    (details in :func:`row_hash`). To keep the chain linear, a writer holds the audit lock from
    reading the last row until its transaction ends: on PostgreSQL a transaction-scoped
    advisory lock, on SQLite the write lock every transaction takes at BEGIN
    (``transaction_mode=IMMEDIATE``). So **write audit rows as late as possible in the
    transaction** — every other writer of audit rows waits from that point until the commit —
    and take no other lock after it (another transaction may hold that lock while waiting for
    the audit lock: a deadlock). The ingest path writes its rows at the end of
    ``identity.actions._apply``. ``with audit.collect():`` around the rest of a transaction
    holds rows back and writes them all as the block ends, taking the lock only then.
    PostgreSQL must run at READ COMMITTED (Django's default): under REPEATABLE READ a writer
    would not see the row committed while it waited, and the unique ``seq`` would refuse its
    insert.

    Tamper-evident, not tamper-proof: the database refuses UPDATE and DELETE on the table
    (triggers, see ``AuditLog``), and a row changed anyway — by someone who dropped them —
    no longer matches its hash.

What goes in a row
    ``actor`` is who (``Actor.label``: ``user:<id>``, ``key:<prefix>``, ``cli``, ``system``),
    ``ip`` from where, ``at`` when, ``action``/``target_type``/``target_id`` what. ``changes``
    holds ``{"before": {...}, "after": {...}}`` (changed fields only) for an update, otherwise a
    small object of ids, counts and field *keys*. Never personal values — no emails, names,
    phones, addresses or customer-written text: rows can never be edited, so they could not be
    erased later. Write the id of the thing and the names of the fields instead.

Reading
    ``search`` (filters, keyset pages newest first) and ``verify_chain`` (walks the whole chain
    in ``seq`` order, a chunk at a time, and reports the first broken row). A chain that
    verifies proves no row was edited or removed *from the middle*; to also detect rows cut off
    the end or a chain recomputed wholesale, keep the ``head`` (seq and hash) that
    ``verify_chain`` reports somewhere else and pass it back as ``anchor``.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from django.db import connection, transaction

from cxm.core import sql
from cxm.core.clock import now
from cxm.core.models import AuditLog

GENESIS = "0" * 64
"""``prev_hash`` of the first row."""

READ_PERSONAL = "profile.read_personal"

# pg_advisory_xact_lock(int4, int4): a key space apart from the bigint keys identity locks.
_LOCK_KEY = (0x6378_6D61, 0x7564_6974)  # "cxma", "udit"
_COLUMNS = ("seq", "at", "actor", "action", "target_type", "target_id", "changes", "ip",
            "prev_hash", "row_hash")
_INT_RANGE = (-(2**63), 2**63)
_VERIFY_CHUNK = 2000
_MOVED_WINDOW = 1000


@dataclass(frozen=True)
class Actor:
    """Who is acting (``user:<id>``, ``key:<prefix>``, ``cli:<os user>``, ``system``) and from
    which address (the client's IP, when there is one)."""

    label: str
    ip: str | None = None

    @classmethod
    def system(cls) -> Actor:
        return cls("system")


@dataclass(frozen=True)
class Entry:
    action: str
    target_type: str
    target_id: str
    changes: dict[str, Any]


# --- the hash ----------------------------------------------------------------------------------


def canonical_time(value: datetime) -> str:
    """``at`` as hashed: UTC, microseconds, ``Z`` (naive values are taken as UTC)."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_ip(value: str | None) -> str | None:
    """``ip`` as hashed: IPv4 dotted, IPv6 as eight 4-digit hex groups, whatever form the
    database hands back (PostgreSQL's ``inet`` has its own spelling)."""
    if value is None:
        return None
    try:
        address = ipaddress.ip_address(value.split("%", 1)[0])
    except ValueError:
        return value
    if address.version == 4:
        return str(address)
    digits = f"{int(address):032x}"
    return ":".join(digits[i:i + 4] for i in range(0, 32, 4))


def canonical_changes(value: Any) -> Any:
    """``changes`` as stored and hashed: plain JSON types (string keys, lists, strings for
    UUIDs and datetimes) with integral numbers in the 64-bit range written as integers and
    others as floats — PostgreSQL's ``jsonb`` keeps numbers as decimals, so ``2.0`` may come
    back as ``2`` and ``1e20`` as an integer; this spelling survives that round trip."""
    try:
        text = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:  # an integer past 64 bits: orjson cannot write it
        text = orjson.dumps(_floats_for_huge_ints(value), option=orjson.OPT_NON_STR_KEYS)
    return _numbers(orjson.loads(text))


def _floats_for_huge_ints(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _floats_for_huge_ints(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_floats_for_huge_ints(v) for v in value]
    if type(value) is int and not _INT_RANGE[0] <= value < _INT_RANGE[1]:
        return float(value)
    return value


def _numbers(value: Any) -> Any:
    return _respell(value) if _needs_respelling(value) else value


def _needs_respelling(value: Any) -> bool:
    # the common case, ids and key names, is answered without building anything
    kind = type(value)
    if kind is str:
        return False
    if kind is dict:
        return any(_needs_respelling(item) for item in value.values())
    if kind is list:
        return any(_needs_respelling(item) for item in value)
    return kind is float or (kind is int and not _INT_RANGE[0] <= value < _INT_RANGE[1])


def _respell(value: Any) -> Any:
    kind = type(value)
    if kind is dict:
        return {k: _respell(v) for k, v in value.items()}
    if kind is list:
        return [_respell(v) for v in value]
    if kind is float:
        if value.is_integer() and _INT_RANGE[0] <= value < _INT_RANGE[1]:
            return int(value)
        return value
    if kind is int and not _INT_RANGE[0] <= value < _INT_RANGE[1]:
        return float(value)
    return value


def row_hash(
    *, seq: int, at: str, actor: str, action: str, target_type: str, target_id: str,
    changes: Any, ip: str | None, prev_hash: str,
) -> str:
    """Hex SHA-256 of the row's canonical serialisation: orjson, keys sorted at every level, of
    ``{"seq", "at" (canonical_time), "actor", "action", "target_type", "target_id", "changes"
    (canonical_changes), "ip" (canonical_ip), "prev_hash"}``. Arguments are canonical already."""
    text = orjson.dumps({
        "seq": seq, "at": at, "actor": actor, "action": action, "target_type": target_type,
        "target_id": target_id, "changes": changes, "ip": ip, "prev_hash": prev_hash,
    }, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(text).hexdigest()


def stored_row_hash(row: Any) -> str:
    """The hash a stored row should carry (``row`` has the model's attributes)."""
    return row_hash(
        seq=row.seq, at=canonical_time(row.at), actor=row.actor, action=row.action,
        target_type=row.target_type, target_id=row.target_id,
        changes=_numbers(row.changes), ip=canonical_ip(row.ip), prev_hash=row.prev_hash)


# --- writing -----------------------------------------------------------------------------------


def record(
    actor: Actor, action: str, target_type: str, target_id: str,
    changes: dict[str, Any] | None = None,
) -> None:
    """One row. ``changes`` for an update: ``{"before": {...}, "after": {...}}``; no personal
    values (see the module docstring)."""
    record_many(actor, [Entry(action, target_type, target_id, changes or {})])


def record_read(actor: Actor, target_type: str, target_id: str, fields: Iterable[str]) -> None:
    """Someone was shown personal values: which fields (names only) of which record."""
    _record_reads(actor, [Entry(READ_PERSONAL, target_type, target_id,
                                {"fields": sorted(set(fields))})])


def record_reads(
    actor: Actor, target_type: str, target_ids: Iterable[str], fields: Iterable[str],
) -> int:
    """``record_read`` for a page of records (a search result, a list) in one statement."""
    shown = {"fields": sorted(set(fields))}
    return _record_reads(actor, [Entry(READ_PERSONAL, target_type, str(target_id), shown)
                                 for target_id in target_ids])


def _record_reads(actor: Actor, entries: list[Entry]) -> int:
    """Read-audit rows are committed before the read is answered, like every audit row — but
    outside a caller's transaction (a plain GET) their commit does not wait for the disk:
    PostgreSQL ``synchronous_commit = off`` for that transaction, SQLite ``synchronous =
    NORMAL`` (WAL) for it. The row survives the application process dying at any point after
    the commit; only a crash of the database server or of the machine within about a second
    (PostgreSQL: up to 3 × ``wal_writer_delay``; SQLite: until the next checkpoint or
    synchronous commit) can lose the newest read rows — the chain stays valid, it just ends
    earlier. Writes of data are never relaxed like this."""
    if not entries:
        return 0
    if connection.in_atomic_block:
        return record_many(actor, entries)
    token = _relaxed.set(True)
    try:
        with _relaxed_durability(), transaction.atomic():
            # PostgreSQL: SET LOCAL goes in the same round trip as the audit lock (below).
            return record_many(actor, entries)
    finally:
        _relaxed.reset(token)


_relaxed: ContextVar[bool] = ContextVar("cxm_audit_relaxed_commit", default=False)


@contextmanager
def _relaxed_durability() -> Iterator[None]:
    if sql.is_postgres():
        yield
        return
    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA synchronous")
        row = cursor.fetchone()
        before = int(row[0]) if row else 2
        cursor.execute("PRAGMA journal_mode")
        row = cursor.fetchone()
        wal = bool(row) and str(row[0]).lower() == "wal"
        if not wal or before <= 1:  # without WAL, NORMAL is not crash-safe; keep the setting
            wal = False
        else:
            cursor.execute("PRAGMA synchronous = NORMAL")
    try:
        yield
    finally:
        if wal:
            with connection.cursor() as cursor:
                cursor.execute(f"PRAGMA synchronous = {before}")


def record_many(actor: Actor, entries: Iterable[Entry], at: datetime | None = None) -> int:
    """Many rows in one statement (the ingest path writes one per touched profile). Takes the
    audit lock, which is held until the transaction ends (see the module docstring) — unless
    called inside :func:`collect`, which writes the rows when its block ends."""
    entries = list(entries)
    if not entries:
        return 0
    collecting = _collected.get()
    if collecting is not None and _savepoints() == collecting.savepoints:
        collecting.pending.append((actor, entries, at or now()))
    else:
        _write([(actor, entries, at or now())])
    return len(entries)


_Batch = tuple[Actor, list[Entry], datetime]


@dataclass
class _Collecting:
    savepoints: int
    pending: list[_Batch]


_collected: ContextVar[_Collecting | None] = ContextVar("cxm_audit_collected", default=None)


def _savepoints() -> int:
    return sum(1 for sid in connection.savepoint_ids if sid)


@contextmanager
def collect() -> Iterator[None]:
    """Hold back the audit rows recorded inside the block and write them, in one statement, as
    it ends; nothing is written if it raises. Wrap the rest of a transaction in it so that the
    audit lock is taken at the very end (``with transaction.atomic(), audit.collect(): …``):
    the lock is then held only for that insert and the commit, not for the work done after
    the ``record`` calls. Rows recorded inside a savepoint opened within the block (an inner
    ``atomic()``) are written at once instead, so that rolling the savepoint back takes them
    with it. A nested block leaves the writing to the outer one."""
    if _collected.get() is not None:
        yield
        return
    collecting = _Collecting(_savepoints(), [])
    token = _collected.set(collecting)
    try:
        yield
    finally:
        _collected.reset(token)
    if collecting.pending:
        _write(collecting.pending)


def _write(batches: list[_Batch]) -> None:
    # Everything but the chain is worked out before taking the lock.
    prepared = []
    for actor, entries, when in batches:
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        stamp, stored_at = canonical_time(when), sql.adapt_datetime(when)
        label = actor.label[:120]
        ip = _clean_ip(actor.ip)
        hashed_ip = canonical_ip(ip)
        for entry in entries:
            changes = canonical_changes(entry.changes)
            prepared.append((stamp, stored_at, label, entry.action[:60], entry.target_type[:40],
                             entry.target_id[:64], changes, sql.adapt_json(changes), ip,
                             hashed_ip))
    with transaction.atomic(savepoint=False):
        seq, prev = _lock_and_read_head()
        rows = []
        for (stamp, stored_at, label, action, target_type, target_id, changes, stored_changes,
             ip, hashed_ip) in prepared:
            seq += 1
            digest = row_hash(seq=seq, at=stamp, actor=label, action=action,
                              target_type=target_type, target_id=target_id, changes=changes,
                              ip=hashed_ip, prev_hash=prev)
            rows.append((seq, stored_at, label, action, target_type, target_id, stored_changes,
                         ip, prev, digest))
            prev = digest
        sql.insert_rows(AuditLog, _COLUMNS, rows, returning=None, text_arrays=True)


def _clean_ip(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return str(ipaddress.ip_address(value.split("%", 1)[0]))
    except ValueError:
        return None  # not an address (a unix socket, a broken proxy header): store none


def _lock_and_read_head() -> tuple[int, str]:
    table = connection.ops.quote_name(AuditLog._meta.db_table)
    head_sql = f"SELECT seq, row_hash FROM {table} ORDER BY seq DESC LIMIT 1"
    with connection.cursor() as cursor:
        if sql.is_postgres():
            # Two statements in one round trip (no parameters: the simple query protocol). The
            # read must be a statement of its own: under READ COMMITTED each statement sees
            # what committed before it started, so it sees the row written while we waited.
            relax = "SET LOCAL synchronous_commit TO off; " if _relaxed.get() else ""
            cursor.execute(relax + f"SELECT pg_advisory_xact_lock({_LOCK_KEY[0]}, {_LOCK_KEY[1]}); "
                           + head_sql)
            cursor.nextset()
            if relax:
                cursor.nextset()
        else:
            cursor.execute(head_sql)
        head = cursor.fetchone()
    return (int(head[0]), str(head[1])) if head else (0, GENESIS)


# --- verifying ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifyResult:
    """``problem`` is ``edited`` (a row's contents no longer match its hash), ``deleted`` (a gap
    in ``seq``, or rows missing before the anchor), ``reordered`` (a row sits at another
    ``seq`` than the one it was written with) or ``relinked`` (a row's ``prev_hash`` is not
    the hash of the row before it: that row was replaced by one with a recomputed hash, or
    rows were inserted); ``broken_seq`` is the first ``seq`` where it shows."""

    ok: bool
    rows: int
    head_seq: int | None = None
    head_hash: str | None = None
    broken_seq: int | None = None
    problem: str | None = None
    detail: str = ""
    anchor_checked: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "rows": self.rows, "head_seq": self.head_seq,
                "head_hash": self.head_hash, "broken_seq": self.broken_seq,
                "problem": self.problem, "detail": self.detail,
                "anchor_checked": self.anchor_checked}


def _walk(chunk: int) -> Iterator[Any]:
    last = 0
    while True:
        batch = list(AuditLog.objects.filter(seq__gt=last).order_by("seq")
                     .values_list(*_COLUMNS, named=True)[:chunk])
        yield from batch
        if len(batch) < chunk:
            return
        last = batch[-1].seq


def _written_at_seq(row: Any) -> int | None:
    """The ``seq`` a moved row was written with, if it is near where it sits now."""
    for candidate in range(max(1, row.seq - _MOVED_WINDOW), row.seq + _MOVED_WINDOW + 1):
        if candidate != row.seq and stored_row_hash(row._replace(seq=candidate)) == row.row_hash:
            return candidate
    return None


def verify_chain(
    *, anchor: tuple[int, str] | None = None, chunk: int = _VERIFY_CHUNK,
) -> VerifyResult:
    """Recompute every row's hash and link, in ``seq`` order, ``chunk`` rows in memory at a
    time; stop at the first broken row. ``anchor`` is a ``(seq, row_hash)`` reported by an
    earlier run: that row must still be there with that hash."""
    expected_seq, expected_prev, count = 1, GENESIS, 0
    head_hash: str | None = None
    anchor_seen = False

    def broken(seq: int, problem: str, detail: str) -> VerifyResult:
        return VerifyResult(False, count, expected_seq - 1 or None, head_hash, seq, problem,
                            detail)

    for row in _walk(chunk):
        if row.seq != expected_seq:
            last = row.seq - 1
            missing = (f"row {expected_seq} is missing" if last == expected_seq
                       else f"rows {expected_seq}–{last} are missing")
            return broken(expected_seq, "deleted", f"{missing} (deleted); the next row is "
                                                   f"{row.seq}")
        if stored_row_hash(row) != row.row_hash:
            written = _written_at_seq(row)
            if written is not None:
                return broken(row.seq, "reordered", f"row {row.seq} was written as row "
                                                    f"{written} and moved")
            return broken(row.seq, "edited", f"row {row.seq} was changed after it was "
                                              "written: its contents do not match its hash")
        if row.prev_hash != expected_prev:
            return broken(row.seq, "relinked", f"row {row.seq} does not follow row "
                                                f"{row.seq - 1}: that row was replaced (its hash "
                                                "recomputed) or rows were inserted or moved")
        if anchor is not None and row.seq == anchor[0]:
            anchor_seen = True
            if row.row_hash != anchor[1]:
                return broken(row.seq, "edited", f"row {row.seq} has another hash than the "
                                                  "anchor: the chain up to it was rewritten")
        count += 1
        expected_seq += 1
        expected_prev = head_hash = row.row_hash
    if anchor is not None and not anchor_seen:
        return broken(expected_seq, "deleted",
                      f"the chain ends at row {expected_seq - 1} but the anchor is row "
                      f"{anchor[0]}: rows were cut off the end")
    return VerifyResult(True, count, expected_seq - 1 or None, head_hash,
                        anchor_checked=anchor is not None)


# --- searching ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditPage:
    rows: list[AuditLog]
    next_before_seq: int | None
    """Pass as ``before_seq`` for the next (older) page; ``None`` on the last page."""


MAX_PAGE = 500


def search(
    actor: str | None = None, action: str | None = None, target_id: str | None = None,
    since: datetime | None = None, until: datetime | None = None, limit: int = 100,
    before_seq: int | None = None,
) -> AuditPage:
    """Rows newest first. ``action`` ending in ``*`` matches a prefix (``profile.*``);
    ``since`` is inclusive, ``until`` exclusive; ``before_seq`` continues an earlier page."""
    limit = max(1, min(limit, MAX_PAGE))
    query = AuditLog.objects.all()
    if actor:
        query = query.filter(actor=actor)
    if action:
        query = (query.filter(action__startswith=action[:-1]) if action.endswith("*")
                 else query.filter(action=action))
    if target_id:
        query = query.filter(target_id=target_id)
    if since is not None:
        query = query.filter(at__gte=since)
    if until is not None:
        query = query.filter(at__lt=until)
    if before_seq is not None:
        query = query.filter(seq__lt=before_seq)
    rows = list(query.order_by("-seq")[:limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return AuditPage(rows, rows[-1].seq if more else None)


def as_dict(row: AuditLog) -> dict[str, Any]:
    """A row for JSON output."""
    return {"seq": row.seq, "at": row.at.isoformat(), "actor": row.actor, "action": row.action,
            "target_type": row.target_type, "target_id": row.target_id, "changes": row.changes,
            "ip": row.ip, "prev_hash": row.prev_hash, "row_hash": row.row_hash}
