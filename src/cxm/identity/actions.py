"""Every write to profiles and identities goes through here.

``resolve_messages`` is registered as ingest's resolver and runs inside ingest's transaction.

Concurrency (PostgreSQL, where batches run in parallel; SQLite serialises its writers):

* Identifiers are read without locks. Only identifiers this batch would *create* (or every
  identifier of the batch, when it merges stored profiles) are locked — transaction-scoped
  advisory locks, sorted, taken in one statement before anything else is locked — and then
  read again. That is what stops two concurrent first events of one person from creating two
  profiles; identifiers that already resolve need no lock, so batches about the same known,
  active person run in parallel.
* Every profile a batch writes to is locked once, in id order, in one statement
  (``SELECT … ORDER BY id FOR NO KEY UPDATE``: writers of a profile queue on each other, but
  not the foreign-key checks PostgreSQL runs at commit for rows pointing at it) at the very end
  (``_finish``), after the events are inserted; traits, preferences and consent are folded
  there and the counters (events per profile and channel, first/last seen) added in one
  statement each, so the hot rows of active profiles are held only for the end of the
  transaction. A batch that merges locks its stored profiles, in id order, before it moves
  anything.
* If that sweep finds a profile merged by a concurrent batch since it was read, or a
  concurrent request stored one of the batch's messageIds first, the batch is rolled back and
  run again (``pipeline.RetryBatch``); a merge locks both profiles before it moves their
  identities and events, so either it sees this batch's rows or this batch sees the merge.
* When the batch cannot be retried (it runs inside a caller's transaction), everything is
  locked up front as before: every identifier, then every profile involved.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import operator
import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from django.db import connection, transaction

from cxm.core import audit, pii, sql
from cxm.core.clock import now
from cxm.core.errors import Conflict, InvalidInput, NotFound
from cxm.core.ids import uuid7
from cxm.identity import rules
from cxm.identity.models import Identity, Merge, MergeBlock, Profile
from cxm.ingest import pipeline
from cxm.ingest.models import Event, ProfileChannel
from cxm.ingest.pipeline import Resolution, Resolutions
from cxm.ingest.spec import KIND_PHONE as _KIND_PHONE
from cxm.ingest.spec import Message

logger = logging.getLogger(__name__)

_MAX_RESOLVE_ATTEMPTS = 5


def _lock_keys(keys: set[rules.IdentKey]) -> None:
    if connection.vendor != "postgresql" or not keys:
        return
    ids = sorted({
        int.from_bytes(hashlib.blake2b(f"{k}\x00{v}".encode(), digest_size=8).digest(), "big",
                       signed=True)
        for k, v in keys
    })
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_advisory_xact_lock(k)) FROM "
            "(SELECT k FROM unnest(%s::bigint[]) AS k ORDER BY k) AS ordered",
            [_pg_array(ids)],
        )


def _to_uuid(value: Any) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        # PostgreSQL hands back a new object per row: keep one per id (see _uuid_of).
        found = _interned.get(value.int)
        if found is None:
            if len(_interned) >= 1 << 16:
                _interned.clear()
            found = _interned[value.int] = value
        return found
    return _uuid_of(value)


_interned: dict[int, uuid.UUID] = {}
# Sorting profile ids: by their integer, the same order as their text (fixed-width hex) and as
# PostgreSQL's ``ORDER BY id``, without a Python-level ``str()`` per id.
_id_order = operator.attrgetter("int")


@functools.lru_cache(maxsize=1 << 16)
def _uuid_of(text: str) -> uuid.UUID:
    """SQLite hands profile ids back as text, the same few again and again within a batch.
    One shared object per id is also what makes the planner's dicts fast: a lookup with the
    very object that is the key skips ``UUID.__eq__`` (a Python-level method)."""
    return uuid.UUID(text)


def _to_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


# A PostgreSQL array literal sent as one text parameter (see :func:`sql.pg_array`).
_pg_array = sql.pg_array


def _in_clause(values: Sequence[Any], pg_type: str = "uuid") -> tuple[str, list[Any]]:
    """``= ANY(%s::pg_type[])`` on PostgreSQL (one array parameter), ``IN (%s, …)`` on
    SQLite."""
    if sql.is_postgres():
        return f"= ANY(%s::{pg_type}[])", [_pg_array(values)]
    return "IN (" + ", ".join(["%s"] * len(values)) + ")", list(values)


def _fetch(query: str, params: Sequence[Any]) -> list[Any]:
    """Rows of one read. SQLite: straight through the sqlite3 cursor with ``?`` placeholders
    (Django's wrapper rewrites ``%s`` with a regular expression on every call)."""
    if sql.is_postgres():
        with connection.cursor() as cursor:
            cursor.execute(query, params)
            return list(cursor.fetchall())
    with sql.sqlite_cursor() as raw:
        raw.execute(query.replace("%s", "?"), params)
        return list(raw.fetchall())


def _load_owners(
    index_of: dict[rules.IdentKey, str],
) -> dict[rules.IdentKey, tuple[int, uuid.UUID]]:
    """Who owns each identifier. The planner works with plaintext values; the table holds their
    blind index, so look up by index and map back."""
    by_index = {(kind, index): key for key, index in index_of.items() for kind in (key[0],)}
    found: dict[rules.IdentKey, tuple[int, uuid.UUID]] = {}
    indexes = list({index for index in index_of.values()})
    for start in range(0, len(indexes), 500):
        clause, params = _in_clause(indexes[start:start + 500], "varchar")
        for ident_id, kind, index, profile_id in _fetch(
                f"SELECT id, kind, value, profile_id FROM identity_identity WHERE value {clause}",
                params):
            key = by_index.get((kind, index))
            if key is not None:
                found[key] = (ident_id, _to_uuid(profile_id))
    return found


def _profile_facts(
    ids: set[uuid.UUID], *, lock: bool = False,
) -> dict[uuid.UUID, tuple[datetime, uuid.UUID | None]]:
    """(created_at, merged_into) of profiles — plain values, no model instances."""
    if not ids:
        return {}
    ordered = sorted(ids, key=_id_order)
    clause, params = _in_clause([sql.adapt_uuid(pid) for pid in ordered])
    tail = " ORDER BY id FOR NO KEY UPDATE" if lock and sql.is_postgres() else ""
    rows = _fetch("SELECT id, created_at, merged_into_id FROM identity_profile "
                  f"WHERE id {clause}{tail}", params)
    return {_to_uuid(pid): (_to_datetime(created), _to_uuid(merged) if merged else None)
            for pid, created, merged in rows}


def _lock_profiles(ids: set[uuid.UUID]) -> dict[uuid.UUID, Profile]:
    """Lock (PostgreSQL, in id order) and load whole profiles."""
    if not ids:
        return {}
    query = Profile.objects.filter(id__in=sorted(ids, key=_id_order)).order_by("id")
    if connection.vendor == "postgresql":
        query = query.select_for_update(no_key=True)
    return {p.id: p for p in query}


def index_identifiers(messages: Sequence[Message]) -> dict[rules.IdentKey, str]:
    """Ingest's precompute hook (runs before the transaction): the blind index of every
    identifier the batch will look up, so the keyed hashing is not done under the lock."""
    keys = rules.lookup_candidates(k for m in messages for k in m.identifiers)
    return {key: pii.lookup_key(key[0], key[1]) for key in keys}


def lock_identifiers(messages: Sequence[Message]) -> None:
    """Ingest's preparer (runs before the messageId check). Only when the batch cannot be
    retried does it lock every identifier up front, as a whole-batch critical section; the
    retryable path locks what it must inside :func:`resolve_messages`."""
    if pipeline.lock_hint.get() == pipeline.LOCK_ALL and sql.is_postgres():
        _lock_keys(rules.lookup_candidates(k for m in messages for k in m.identifiers))


def resolve_messages(messages: Sequence[Message], actor: audit.Actor) -> Resolutions:
    """Assign each message to a profile, creating, linking and merging as the rules say.
    Profile counters are written by the returned ``finish`` once the events are stored."""
    batch_time = now()
    keys = rules.lookup_candidates(k for m in messages for k in m.identifiers)
    known = pipeline.precomputed.get() or {}
    index_of = {key: known.get(key) or pii.lookup_key(key[0], key[1]) for key in keys}
    pg = sql.is_postgres()
    hint = pipeline.lock_hint.get()
    conservative = hint == pipeline.LOCK_ALL
    locked: set[rules.IdentKey] = set(keys) if conservative else set()
    if pg and not conservative and hint:
        locked = set(hint) & keys
        _lock_keys(locked)
    batch = [rules.MessageIds(m.message_id, m.identifiers, m.type == "alias") for m in messages]
    owners: dict[rules.IdentKey, tuple[int, uuid.UUID]] = {}
    found: dict[uuid.UUID, tuple[datetime, uuid.UUID | None]] = {}
    user_ids: dict[uuid.UUID, set[str]] = {}
    blocked: set[frozenset[uuid.UUID]] = set()
    to_read = index_of
    plan: rules.Plan | None = None
    for _attempt in range(_MAX_RESOLVE_ATTEMPTS):
        fresh = _load_owners(to_read) if to_read else {}
        if plan is not None and not fresh:
            # The identifiers just locked and read again are still unowned: nothing the plan
            # was made from has changed, so it stands (planning a large batch again costs more
            # than all of its reads).
            break
        owners.update(fresh)
        owner_ids = {pid for _, pid in owners.values()}
        found.update(_profile_facts(owner_ids - set(found), lock=pg and conservative))
        # A profile merged away by a concurrent batch after we read its identities: read again.
        if len(found) != len(owner_ids) or any(m is not None for _, m in found.values()):
            owners, found, user_ids, blocked, to_read, plan = {}, {}, {}, set(), index_of, None
            continue
        facts: dict[uuid.UUID, rules.ProfileFacts] = {
            pid: rules.ProfileFacts(created_at=created, persisted=True,
                                    user_ids=set(user_ids.get(pid, ())))
            for pid, (created, _) in found.items()
        }
        owner_map = {key: pid for key, (_, pid) in owners.items()}
        # Load up front the merge facts of the stored profiles a merge can touch, so that one
        # plan usually suffices; the loop below makes it exact whatever this guesses.
        likely = _merge_candidates(messages, owner_map) - user_ids.keys()
        if likely:
            loaded = {pid: facts[pid] for pid in likely}
            blocked |= _load_merge_facts(loaded)
            user_ids.update((pid, set(f.user_ids)) for pid, f in loaded.items())
        plan = rules.plan_batch(batch, owner_map, facts, blocked, batch_time, uuid7)
        while unread := plan.merge_parties - user_ids.keys():
            # User ids and unmerge blocks only matter for stored profiles the plan would merge:
            # load them for those and plan again if they say anything (a profile with none
            # plans the same). A new plan may consider other merges: repeat until it consults
            # only facts it knows.
            loaded = {pid: facts[pid] for pid in unread}
            new_blocks = _load_merge_facts(loaded)
            blocked |= new_blocks
            user_ids.update((pid, set(f.user_ids)) for pid, f in loaded.items())
            if new_blocks or any(f.user_ids for f in loaded.values()):
                plan = rules.plan_batch(batch, owner_map, facts, blocked, batch_time, uuid7)
        if pg:
            need = ({key for key, _ in plan.new_identities}
                    | (keys if plan.merges else set()))
            missing = need - locked
            if missing:
                if locked:
                    # Locking more while holding some could deadlock with another batch:
                    # start again, taking them all in one sorted statement.
                    raise pipeline.RetryBatch(locked | need)
                _lock_keys(missing)
                locked |= missing
                # Read those again: a batch we waited for may have created them. Identifiers
                # read before keep their owner; if a concurrent merge moved one since, the
                # final sweep (_finish) sees the merged profile and the batch runs again.
                to_read = {key: index_of[key] for key in missing if key not in owners}
                continue
        break
    else:
        raise Conflict("profiles kept changing during identity resolution; retry the request",
                       code="identity_contention", status=503)
    assert plan is not None
    return _apply(plan, messages, owners, facts, index_of, actor, batch_time)


def _merge_candidates(
    messages: Sequence[Message], owner_map: dict[rules.IdentKey, uuid.UUID],
) -> set[uuid.UUID]:
    """Stored profiles that own an identifier of a message whose other identifiers are
    unknown or belong to another profile: the ones a merge may involve."""
    found: set[uuid.UUID] = set()
    get = owner_map.get
    for message in messages:
        identifiers = message.identifiers
        if len(identifiers) < 2:
            continue
        owners = {get(key) for key in rules.lookup_candidates(identifiers)}
        if len(owners) > 1:
            found.update(pid for pid in owners if pid is not None)
    return found


# Ingest runs this before its transaction (``pipeline.precompute``).
resolve_messages.precompute = index_identifiers  # type: ignore[attr-defined]


def _load_merge_facts(facts: dict[uuid.UUID, rules.ProfileFacts]) -> set[frozenset[uuid.UUID]]:
    """Stored user ids (into ``facts``) and unmerge blocks of the batch's stored profiles."""
    pids = [sql.adapt_uuid(pid) for pid in facts if facts[pid].persisted]
    blocked: set[frozenset[uuid.UUID]] = set()
    if not pids:
        return blocked
    for start in range(0, len(pids), 400):
        clause, params = _in_clause(pids[start:start + 400])
        for pid, protected in _fetch("SELECT profile_id, protected_value FROM identity_identity "
                                     f"WHERE kind = %s AND profile_id {clause}",
                                     [rules.KIND_USER_ID, *params]):
            facts[_to_uuid(pid)].user_ids.add(pii.reveal(protected))
        for low, high in _fetch("SELECT profile_low_id, profile_high_id FROM identity_mergeblock "
                                f"WHERE profile_low_id {clause} OR profile_high_id {clause}",
                                params + params):
            blocked.add(frozenset((_to_uuid(low), _to_uuid(high))))
    return blocked


def _apply(
    plan: rules.Plan, messages: Sequence[Message],
    owners: dict[rules.IdentKey, tuple[int, uuid.UUID]],
    facts: dict[uuid.UUID, rules.ProfileFacts], index_of: dict[rules.IdentKey, str],
    actor: audit.Actor, batch_time: datetime,
) -> Resolutions:
    entries: list[audit.Entry] = []
    stamp = sql.adapt_datetime(batch_time)
    empty = sql.adapt_json({})
    new_ids = set(plan.new_profiles)
    sql.insert_rows(
        Profile,
        ("id", "created_at", "updated_at", "event_count", "traits", "preferences", "consent",
         "display_name", "email", "phone", "search_index"),
        [(sql.adapt_uuid(pid), stamp, stamp, 0, empty, empty, empty, "", "", "", "")
         for pid in plan.new_profiles],
        returning=None, text_arrays=True,
    )

    if plan.merges:
        # A merge locks every stored profile of the batch now, in id order (so the final
        # sweep in _finish takes no lock out of order), and loads the two it merges.
        _profile_facts(set(facts) - new_ids, lock=True)
        _merge_planned(plan.merges, actor, batch_time)
        entries.extend(audit.Entry("profile.merged", "profile", str(merge.survivor),
                                   {"merged": str(merge.merged), **merge.reason})
                       for merge in plan.merges)

    source = actor.label[:40]
    inserted = sql.insert_rows(
        Identity, ("kind", "value", "protected_value", "profile_id", "source", "created_at"),
        [(kind, index_of[(kind, value)], pii.protect(value), sql.adapt_uuid(pid), source, stamp)
         for (kind, value), pid in plan.new_identities],
        returning=("id", "kind", "value"), text_arrays=True,
    ) if plan.new_identities else []
    key_of = {(key[0], index): key for key, index in index_of.items()}
    ident_ids: dict[rules.IdentKey, int] = {k: i for k, (i, _) in owners.items()}
    for ident_id, kind, index in inserted:
        ident_ids[key_of[(kind, index)]] = ident_id
    linked_kinds: dict[uuid.UUID, list[str]] = defaultdict(list)
    for (kind, _value), pid in plan.new_identities:
        linked_kinds[pid].append(kind)
    # A new profile gets one row, ``profile.created``, naming the kinds of the identities it
    # was created with (``linked``) and, written by ``_finish``, the traits its first events
    # set (``traits``); a stored profile that gains identities gets ``identity.linked`` with
    # their kinds.
    created = {pid: linked_kinds.pop(pid, []) for pid in plan.new_profiles}
    for pid, kinds in linked_kinds.items():
        entries.append(audit.Entry("identity.linked", "profile", str(pid), {"kinds": kinds}))
    audit.record_many(actor, entries, batch_time)

    result = Resolutions(Resolution(pid, ident_ids.get(key)) for pid, key in plan.assignments)

    def finish(stored: list[int]) -> None:
        _finish([(result[i].profile_id, messages[i]) for i in stored], actor, batch_time,
                created)

    result.finish = finish
    return result


class _Merging:
    """A profile a batch's merge touches, as plain values (see :func:`_merge_planned`)."""

    __slots__ = ("consent", "display_name", "email", "event_count", "first_seen", "id",
                 "last_seen", "phone", "preferences", "search_index", "traits")

    def __init__(self, row: Sequence[Any]):
        pid, traits, preferences, consent, count, first, last = row
        self.id = _to_uuid(pid)
        self.traits, self.preferences, self.consent = (
            _json(traits), _json(preferences), _json(consent))
        self.event_count = int(count)
        self.first_seen = _to_datetime(first) if first is not None else None
        self.last_seen = _to_datetime(last) if last is not None else None
        self.display_name = self.email = self.phone = self.search_index = ""


def _merge_planned(
    merges: Sequence[rules.PlannedMerge], actor: audit.Actor, at: datetime,
) -> None:
    """The batch's merges of stored profiles, in plan order, as a few plain statements each
    (a person's merge, :func:`merge_profiles`, is one such merge): the merged profile's identities,
    events and channel counts move to the survivor, its traits, preferences, consent and
    counters fold into the survivor's (the later stamp wins), it points at the survivor, and
    a ``Merge`` row records the identities moved so the merge can be undone. Every survivor
    is a root of the plan (never merged itself in this batch), so each survivor's row is
    written once, after all its merges. The caller has locked the profiles (PostgreSQL)."""
    pids = sorted({p for m in merges for p in (m.survivor, m.merged)}, key=_id_order)
    clause, params = _in_clause([sql.adapt_uuid(pid) for pid in pids])
    tail = " ORDER BY id FOR NO KEY UPDATE" if sql.is_postgres() else ""
    rows = _fetch("SELECT id, traits, preferences, consent, event_count, first_seen, "
                  "last_seen, merged_into_id FROM identity_profile "
                  f"WHERE id {clause}{tail}", params)
    if len(rows) != len(pids) or any(row[7] is not None for row in rows):
        _changed_under_us()
    profiles = {p.id: p for p in (_Merging(row[:7]) for row in rows)}
    table = connection.ops.quote_name(Profile._meta.db_table)
    when = sql.adapt_datetime(at)
    records = []
    survivors: dict[uuid.UUID, _Merging] = {}
    with connection.cursor() if sql.is_postgres() else sql.sqlite_cursor() as cursor:
        mark = "%s" if sql.is_postgres() else "?"

        def run(statement: str, values: list[Any]) -> Any:
            cursor.execute(statement.replace("%s", mark), values)
            return cursor

        for merge in merges:
            survivor, merged = profiles[merge.survivor], profiles[merge.merged]
            to_id, from_id = sql.adapt_uuid(survivor.id), sql.adapt_uuid(merged.id)
            moved = sorted(row[0] for row in run(
                "UPDATE identity_identity SET profile_id = %s WHERE profile_id = %s "
                "RETURNING id", [to_id, from_id]).fetchall())
            run("UPDATE ingest_event SET profile_id = %s WHERE profile_id = %s",
                [to_id, from_id])
            run("INSERT INTO ingest_profilechannel (profile_id, channel, count) "
                "SELECT %s, channel, count FROM ingest_profilechannel WHERE profile_id = %s "
                "ON CONFLICT (profile_id, channel) DO UPDATE "
                "SET count = ingest_profilechannel.count + excluded.count", [to_id, from_id])
            run("DELETE FROM ingest_profilechannel WHERE profile_id = %s", [from_id])
            run(f"UPDATE {table} SET merged_into_id = %s, updated_at = %s WHERE id = %s",
                [to_id, when, from_id])
            rules.merge_stamped(survivor.traits, merged.traits)
            rules.merge_stamped(survivor.preferences, merged.preferences)
            rules.merge_stamped(survivor.consent, merged.consent)
            survivor.event_count += merged.event_count
            seen = [d for d in (survivor.first_seen, merged.first_seen) if d is not None]
            survivor.first_seen = min(seen) if seen else None
            seen = [d for d in (survivor.last_seen, merged.last_seen) if d is not None]
            survivor.last_seen = max(seen) if seen else None
            survivors[survivor.id] = survivor
            records.append((sql.adapt_uuid(survivor.id), sql.adapt_uuid(merged.id), when,
                            actor.label, sql.adapt_json(merge.reason), sql.adapt_json(moved),
                            None, ""))
        for survivor in survivors.values():
            _set_display(survivor)
            run(f"UPDATE {table} SET traits = %s, preferences = %s, consent = %s, "
                "display_name = %s, email = %s, phone = %s, search_index = %s, "
                "event_count = %s, first_seen = %s, last_seen = %s, updated_at = %s "
                "WHERE id = %s",
                [sql.adapt_json(survivor.traits), sql.adapt_json(survivor.preferences),
                 sql.adapt_json(survivor.consent), survivor.display_name, survivor.email,
                 survivor.phone, survivor.search_index, survivor.event_count,
                 sql.adapt_datetime(survivor.first_seen), sql.adapt_datetime(survivor.last_seen),
                 when, sql.adapt_uuid(survivor.id)])
    sql.insert_rows(Merge, ("survivor_id", "merged_id", "at", "actor", "reason",
                            "moved_identity_ids", "undone_at", "undone_by"), records,
                    returning=None)


def _changed_under_us() -> None:
    """A profile this batch read was merged by a concurrent batch since."""
    if sql.is_postgres() and pipeline.lock_hint.get() != pipeline.LOCK_ALL:
        raise pipeline.RetryBatch(pipeline.LOCK_ALL)
    raise Conflict("profiles kept changing during identity resolution; retry the request",
                   code="identity_contention", status=503)


# The traits rules.display_fields reads: a change to any other leaves the display fields as
# they are.
_DISPLAY_TRAITS = frozenset({"name", "firstName", "first_name", "lastName", "last_name", "email",
                             "phone"})


class _Loaded:
    """What the end-of-batch sweep reads of a profile whose traits change: a plain object
    (a model instance costs more to build than the rest of its handling)."""

    __slots__ = ("consent", "display_name", "email", "id", "phone", "preferences",
                 "search_index", "traits")

    def __init__(self, pid: uuid.UUID, traits: dict[str, Any], preferences: dict[str, Any],
                 consent: dict[str, Any]):
        self.id, self.traits, self.preferences, self.consent = pid, traits, preferences, consent
        self.display_name = self.email = self.phone = self.search_index = ""


def _set_display(
    profile: Profile | _Loaded | _Merging, plain: dict[str, Any] | None = None,
    phones: dict[str, str | None] | None = None,
) -> None:
    """Protected display fields and search tokens, from the profile's traits (``plain`` and
    ``phones``: see :func:`rules.display_fields`)."""
    name, email, phone = rules.display_fields(profile.traits, plain=plain, phones=phones)
    profile.display_name = pii.protect(name)
    profile.email = pii.protect(email)
    profile.phone = pii.protect(phone)
    profile.search_index = pii.search_tokens(rules.search_words(name, email, phone))


def _lock_for_finish(
    ids: list[uuid.UUID], data_ids: set[uuid.UUID],
) -> dict[uuid.UUID, _Loaded | None]:
    """Every profile the batch writes to, locked in one statement in id order (PostgreSQL; the
    only row locks a batch without merges takes, so batches cannot deadlock on them), with
    traits, preferences and consent loaded only for ``data_ids`` (on SQLite only those are
    read)."""
    pg = sql.is_postgres()
    data = [sql.adapt_uuid(pid) for pid in sorted(data_ids, key=_id_order)]
    if pg:
        query = ("SELECT id, merged_into_id, "
                 "CASE WHEN id = ANY(%s::uuid[]) THEN traits END, "
                 "CASE WHEN id = ANY(%s::uuid[]) THEN preferences END, "
                 "CASE WHEN id = ANY(%s::uuid[]) THEN consent END "
                 "FROM identity_profile WHERE id = ANY(%s::uuid[]) "
                 "ORDER BY id FOR NO KEY UPDATE")
        wanted = _pg_array(data)
        params: list[Any] = [wanted, wanted, wanted, _pg_array(ids)]
        with sql.server_cursor() as cursor:
            cursor.execute(query, params)
            rows = cursor.fetchall()
    else:
        rows = []
        if data:
            clause, params = _in_clause(data)
            rows.extend(_fetch("SELECT id, merged_into_id, traits, preferences, consent "
                               f"FROM identity_profile WHERE id {clause}", params))
        # The profiles whose counters only change are not read again: a SQLite transaction
        # holds the write lock from its BEGIN IMMEDIATE (and a write on a stale snapshot
        # fails), so nothing can have merged them since this batch resolved its messages.
        rows.extend((pid, None, None, None, None) for pid in ids if pid not in data_ids)
    profiles: dict[uuid.UUID, _Loaded | None] = {}
    for pid, merged, traits, preferences, consent in rows:
        if merged is not None:
            _changed_under_us()
        if traits is None:
            profiles[_to_uuid(pid)] = None  # locked, counters only: no model instance
            continue
        profile = _Loaded(_to_uuid(pid), _json(traits), _json(preferences), _json(consent))
        profiles[profile.id] = profile
    return profiles


def _json(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, str | bytes) else value


def _finish(stored: list[tuple[uuid.UUID, Message]], actor: audit.Actor, at: datetime,
            created: dict[uuid.UUID, list[str]] | None = None) -> None:
    """The batch's writes to its profiles, after its events are inserted: traits, preferences
    and consent folded in (oldest message first), then the counters (events, first and last
    seen, events per channel) added — one sweep of row locks, then one statement each.
    ``created``: the batch's new profiles with the kinds of the identities they were created
    with; each gets one ``profile.created`` row, which also names the traits it was given
    (what a stored profile's ``profile.traits_changed`` row says)."""
    created = created or {}
    if not stored:
        audit.record_many(actor, [audit.Entry("profile.created", "profile", str(pid),
                                              {"linked": kinds})
                                  for pid, kinds in created.items()], at)
        return
    per_profile: dict[uuid.UUID, list[Any]] = {}
    per_channel: dict[tuple[uuid.UUID, str], int] = defaultdict(int)
    with_data: list[tuple[uuid.UUID, Message]] = []
    for pid, message in stored:
        when = message.timestamp
        state = per_profile.get(pid)
        if state is None:
            per_profile[pid] = [1, when, when]
        else:
            state[0] += 1
            if when < state[1]:
                state[1] = when
            if when > state[2]:
                state[2] = when
        per_channel[(pid, message.channel)] += 1
        if message.traits or message.consent:
            with_data.append((pid, message))
    order = sorted(per_profile, key=_id_order)
    profiles = _lock_for_finish(order, {pid for pid, _ in with_data})
    if len(profiles) != len(order):
        _changed_under_us()

    entries: list[audit.Entry] = []
    changed: dict[uuid.UUID, set[str]] = defaultdict(set)
    consent_changed: dict[uuid.UUID, set[str]] = defaultdict(set)
    # This batch's plaintexts (values it encrypts or decrypts), so none is decrypted twice,
    # and the E.164 form of each phone trait, which ingest already worked out (identifiers).
    plain: dict[str, Any] = {}
    phones: dict[str, str | None] = {}
    label = actor.label
    for pid, message in sorted(with_data, key=lambda item: item[1].timestamp):
        profile = profiles[pid]
        assert profile is not None
        traits = message.traits
        raw_phone = traits.get("phone")
        if isinstance(raw_phone, str) and raw_phone == raw_phone.strip():
            phones[raw_phone] = next((v for k, v in message.identifiers if k == _KIND_PHONE),
                                     None)
        stamp = rules.stamp(message.timestamp)
        changed_keys = changed[pid]
        changed_keys.update(rules.fold_traits(profile.traits, traits, source=label, at=stamp,
                                              plain=plain))
        if "preferences" in traits:
            changed_keys.update(f"preferences.{k}" for k in rules.fold_preferences(
                profile.preferences, traits, source=label, at=stamp, plain=plain))
        if message.consent or "consent" in traits:
            consent_changed[pid].update(rules.fold_consent(
                profile.consent, rules.consent_updates(traits, message.consent),
                source=label, at=stamp))
    data_updates: list[_Loaded] = []
    display_updates: list[_Loaded] = []
    for pid, kinds in created.items():
        keys = changed.get(pid)
        entries.append(audit.Entry("profile.created", "profile", str(pid),
                                   {"linked": kinds, "traits": sorted(keys)} if keys
                                   else {"linked": kinds}))
    for pid in order:
        keys, consent_keys = changed.get(pid), consent_changed.get(pid)
        if not keys and not consent_keys:
            continue
        profile = profiles[pid]
        assert profile is not None
        if keys and not keys.isdisjoint(_DISPLAY_TRAITS):
            # Name, email and phone (encrypted) and the search tokens change only with these.
            _set_display(profile, plain, phones)
            display_updates.append(profile)
        else:
            data_updates.append(profile)
        if keys and pid not in created:
            entries.append(audit.Entry("profile.traits_changed", "profile", str(pid),
                                       {"keys": sorted(keys)}))
        if consent_keys:
            entries.append(audit.Entry("profile.consent_changed", "profile", str(pid),
                                       {"keys": sorted(consent_keys)}))

    table = connection.ops.quote_name(Profile._meta.db_table)
    when_at = sql.adapt_datetime(at)
    if display_updates:
        sql.execute_many(
            f"UPDATE {table} SET traits = %s, preferences = %s, consent = %s, "
            f"display_name = %s, email = %s, phone = %s, search_index = %s WHERE id = %s",
            [(sql.adapt_json(p.traits), sql.adapt_json(p.preferences), sql.adapt_json(p.consent),
              p.display_name, p.email, p.phone, p.search_index, sql.adapt_uuid(p.id))
             for p in display_updates],
        )
    if data_updates:
        sql.execute_many(
            f"UPDATE {table} SET traits = %s, preferences = %s, consent = %s WHERE id = %s",
            [(sql.adapt_json(p.traits), sql.adapt_json(p.preferences), sql.adapt_json(p.consent),
              sql.adapt_uuid(p.id)) for p in data_updates],
        )
    channels = sorted(per_channel, key=lambda k: (k[0].int, k[1]))
    if sql.is_postgres():
        with sql.server_cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} AS p SET event_count = p.event_count + u.n, "
                "first_seen = LEAST(p.first_seen, u.f), last_seen = GREATEST(p.last_seen, u.l), "
                "updated_at = %s "
                "FROM unnest(%s::uuid[], %s::bigint[], %s::timestamptz[], %s::timestamptz[]) "
                "AS u(id, n, f, l) WHERE p.id = u.id",
                [at, _pg_array(order), _pg_array(per_profile[p][0] for p in order),
                 _pg_array(per_profile[p][1].isoformat() for p in order),
                 _pg_array(per_profile[p][2].isoformat() for p in order)],
            )
            cursor.execute(
                "INSERT INTO ingest_profilechannel (profile_id, channel, count) "
                "SELECT * FROM unnest(%s::uuid[], %s::varchar[], %s::bigint[]) "
                "ON CONFLICT (profile_id, channel) DO UPDATE "
                "SET count = ingest_profilechannel.count + excluded.count",
                [_pg_array(k[0] for k in channels), _pg_array(k[1] for k in channels),
                 _pg_array(per_channel[k] for k in channels)],
            )
    else:
        # Per-row statements (executemany). One ``UPDATE … FROM (VALUES …)`` was tried: on
        # SQLite 3.40 it materialises the values and costs ~40% more per row (measured
        # 12.6–13.1 vs 7.6–9.0 µs); a multi-row channel upsert costs the same as this.
        sql.execute_many(
            f"UPDATE {table} SET event_count = event_count + %s, "
            "first_seen = min(coalesce(first_seen, %s), %s), "
            "last_seen = max(coalesce(last_seen, %s), %s), updated_at = %s WHERE id = %s",
            [(state[0], first, first, last, last, when_at, pid.hex)
             for pid in order for state in (per_profile[pid],)
             for first, last in ((sql.adapt_datetime(state[1]),
                                  sql.adapt_datetime(state[2])),)],
        )
        sql.execute_many(
            "INSERT INTO ingest_profilechannel (profile_id, channel, count) "
            "VALUES (%s, %s, %s) ON CONFLICT (profile_id, channel) DO UPDATE "
            "SET count = ingest_profilechannel.count + excluded.count",
            [(k[0].hex, k[1], per_channel[k]) for k in channels],
        )
    audit.record_many(actor, entries, at)


def recount_channels(profile_ids: Sequence[uuid.UUID]) -> None:
    """Recount events per channel of these profiles from their events (unmerge, retention)."""
    ids = list(profile_ids)
    if not ids:
        return
    ProfileChannel.objects.filter(profile_id__in=ids).delete()
    clause, params = _in_clause([sql.adapt_uuid(pid) for pid in ids])
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO ingest_profilechannel (profile_id, channel, count) "
            "SELECT profile_id, channel, count(*) FROM ingest_event "
            f"WHERE profile_id {clause} GROUP BY profile_id, channel", params)


def merge_profiles(
    *, survivor_id: uuid.UUID, merged_id: uuid.UUID, actor: audit.Actor, note: str = "",
) -> Merge:
    """A person's decision that two profiles are one customer."""
    if survivor_id == merged_id:
        raise Conflict("a profile cannot be merged into itself", code="merge_same_profile")
    with transaction.atomic():
        profiles = _lock_profiles({survivor_id, merged_id})
        if len(profiles) != 2:
            raise NotFound("profile not found", code="profile_not_found")
        survivor, merged = profiles[survivor_id], profiles[merged_id]
        if survivor.merged_into_id or merged.merged_into_id:
            raise Conflict("one of the profiles was already merged into another",
                           code="profile_already_merged")
        low, high = sorted((survivor_id, merged_id), key=str)
        MergeBlock.objects.filter(profile_low_id=low, profile_high_id=high).delete()
        _merge_planned([rules.PlannedMerge(survivor_id, merged_id,
                                           {"kind": "manual", "note": note[:200]})],
                       actor, now())
        record = Merge.objects.filter(survivor_id=survivor_id, merged_id=merged_id).latest("id")
        audit.record(actor, "profile.merged", "profile", str(survivor_id),
                     {"merged": str(merged_id), "kind": "manual"})
    return record


def unmerge(*, merge_id: int, actor: audit.Actor) -> tuple[Profile, Profile]:
    """Undo a merge: the merged profile comes back with its identities and their events, and
    the pair is blocked from being merged again automatically."""
    with transaction.atomic():
        try:
            record = Merge.objects.select_for_update().get(id=merge_id)
        except Merge.DoesNotExist:
            raise NotFound(f"no merge {merge_id}", code="merge_not_found") from None
        if record.undone_at is not None:
            raise Conflict("this merge was already undone", code="merge_already_undone")
        profiles = _lock_profiles({record.survivor_id, record.merged_id})
        survivor, merged = profiles[record.survivor_id], profiles[record.merged_id]
        if survivor.merged_into_id is not None:
            raise Conflict("the surviving profile was merged again since; undo that merge "
                           "first", code="merge_not_latest")
        ident_ids = list(
            Identity.objects.filter(id__in=record.moved_identity_ids, profile_id=survivor.id)
            .values_list("id", flat=True)
        )
        Identity.objects.filter(id__in=ident_ids).update(profile_id=merged.id)
        Event.objects.filter(profile_id=survivor.id, identity_id__in=ident_ids).update(
            profile_id=merged.id)
        Profile.objects.filter(id=merged.id).update(merged_into=None)
        # Profiles that had been merged into the restored one keep pointing at it.
        when = now()
        for profile in (survivor, merged):
            profile.refresh_from_db()
            recompute_profile(profile, when)
        low, high = sorted((survivor.id, merged.id), key=str)
        MergeBlock.objects.get_or_create(profile_low_id=low, profile_high_id=high,
                                         defaults={"reason": f"unmerge of merge {merge_id}"})
        record.undone_at = when
        record.undone_by = actor.label
        record.save(update_fields=["undone_at", "undone_by"])
        audit.record(actor, "profile.unmerged", "profile", str(survivor.id),
                     {"merge": merge_id, "restored": str(merged.id),
                      "identities": len(ident_ids)})
    return survivor, merged


def set_consent(
    *, profile_id: uuid.UUID, channel: str, purpose: str, granted: bool, actor: audit.Actor,
) -> Profile:
    """A consent statement made by hand (UI or API): stamped now, with the actor as source."""
    from cxm.identity.consent import CHANNELS, PURPOSES

    channel, purpose = channel.strip().lower(), purpose.strip().lower()
    if channel not in (*CHANNELS, "*"):
        raise InvalidInput(f"channel must be one of {', '.join(CHANNELS)} or *",
                           code="invalid_channel")
    if purpose not in (*PURPOSES, "*"):
        raise InvalidInput(f"purpose must be one of {', '.join(PURPOSES)} or *",
                           code="invalid_purpose")
    with transaction.atomic():
        profiles = _lock_profiles({profile_id})
        profile = profiles.get(profile_id)
        if profile is None:
            raise NotFound("profile not found", code="profile_not_found")
        if profile.merged_into_id is not None:
            raise Conflict("this profile was merged; change the surviving one",
                           code="profile_already_merged")
        key = f"{channel}:{purpose}"
        before = profile.consent.get(key, {}).get("granted")
        changed = rules.fold_consent(profile.consent, {key: granted}, source=actor.label,
                                     at=rules.stamp(now()))
        if changed:
            Profile.objects.filter(id=profile.id).update(consent=profile.consent,
                                                         updated_at=now())
            audit.record(actor, "profile.consent_changed", "profile", str(profile.id),
                         {"before": {key: before}, "after": {key: granted}})
    return profile


def recompute_profile(profile: Profile, at: datetime) -> None:
    """Rebuild a profile's traits, preferences, consent and activity from its own events."""
    traits: dict[str, Any] = {}
    preferences: dict[str, Any] = {}
    consent: dict[str, Any] = {}
    count = 0
    first: datetime | None = None
    last: datetime | None = None
    events = Event.objects.filter(profile_id=profile.id).order_by("timestamp", "id").values_list(
        "timestamp", "source", "payload")
    for timestamp, source, payload in events.iterator(chunk_size=2000):
        count += 1
        first = timestamp if first is None else min(first, timestamp)
        last = timestamp if last is None else max(last, timestamp)
        payload = pii.reveal_payload(payload)
        message_traits = rules.payload_traits(payload)
        categories = rules.payload_consent_categories(payload)
        if message_traits or categories:
            stamp = rules.stamp(timestamp)
            rules.fold_traits(traits, message_traits, source=source, at=stamp)
            rules.fold_preferences(preferences, message_traits, source=source, at=stamp)
            rules.fold_consent(consent, rules.consent_updates(message_traits, categories),
                               source=source, at=stamp)
    profile.traits, profile.preferences, profile.consent = traits, preferences, consent
    _set_display(profile)
    profile.event_count, profile.first_seen, profile.last_seen = count, first, last
    profile.updated_at = at
    profile.save()
    recount_channels([profile.id])
