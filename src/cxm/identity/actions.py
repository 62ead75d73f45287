"""Every write to profiles and identities goes through here.

``resolve_messages`` is registered as ingest's resolver and runs inside ingest's transaction.
On PostgreSQL it first takes transaction-scoped advisory locks on the batch's identifiers
(sorted, so two batches never deadlock), which is what stops two concurrent first events of
one person from creating two profiles. SQLite needs no lock: its writers are serialised.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import Q

from cxm.core import audit, pii, sql
from cxm.core.clock import now
from cxm.core.errors import Conflict, InvalidInput, NotFound
from cxm.core.ids import uuid7
from cxm.identity import rules
from cxm.identity.models import Identity, Merge, MergeBlock, Profile
from cxm.ingest.models import Event
from cxm.ingest.pipeline import Resolution
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
            [ids],
        )


def _load_owners(keys: set[rules.IdentKey]) -> dict[rules.IdentKey, tuple[int, uuid.UUID]]:
    """Who owns each identifier. The planner works with plaintext values; the table holds their
    blind index, so look up by index and map back."""
    by_index: dict[tuple[str, str], rules.IdentKey] = {
        (kind, pii.lookup_key(kind, value)): (kind, value) for kind, value in keys
    }
    found: dict[rules.IdentKey, tuple[int, uuid.UUID]] = {}
    indexes = list({index for _, index in by_index})
    for start in range(0, len(indexes), 500):
        rows = Identity.objects.filter(value__in=indexes[start:start + 500]).values_list(
            "id", "kind", "value", "profile_id")
        for ident_id, kind, index, profile_id in rows:
            key = by_index.get((kind, index))
            if key is not None:
                found[key] = (ident_id, profile_id)
    return found


_DATA_FIELDS = ("traits", "preferences", "consent", "display_name", "email", "phone",
                "search_index")


def _lock_profiles(ids: set[uuid.UUID], *, with_data: bool = True) -> dict[uuid.UUID, Profile]:
    """Lock (PostgreSQL) and load profiles. ``with_data=False`` leaves traits, consent and the
    display fields unloaded — most batches only count events — and :func:`_load_data` fetches
    them for the profiles that need them, in one query."""
    if not ids:
        return {}
    query = Profile.objects.filter(id__in=sorted(ids, key=str)).order_by("id")
    if not with_data:
        query = query.defer(*_DATA_FIELDS)
    if connection.vendor == "postgresql":
        query = query.select_for_update()
    return {p.id: p for p in query}


def _load_data(profiles: dict[uuid.UUID, Profile], ids: set[uuid.UUID]) -> None:
    missing = [pid for pid in ids if pid in profiles
               and "traits" in profiles[pid].get_deferred_fields()]
    if not missing:
        return
    for row in Profile.objects.filter(id__in=missing).values("id", *_DATA_FIELDS):
        profile = profiles[row.pop("id")]
        for name, value in row.items():
            setattr(profile, name, value)


def lock_identifiers(messages: Sequence[Message]) -> None:
    """Ingest's preparer: serialise concurrent batches that share an identifier."""
    _lock_keys(rules.lookup_candidates(k for m in messages for k in m.identifiers))


def resolve_messages(messages: Sequence[Message], actor: audit.Actor) -> list[Resolution]:
    """Assign each message to a profile, creating, linking and merging as the rules say.
    Runs after :func:`lock_identifiers` (ingest's preparer) in the same transaction, which has
    already taken the identifier locks."""
    batch_time = now()
    keys = rules.lookup_candidates(k for m in messages for k in m.identifiers)
    for _attempt in range(_MAX_RESOLVE_ATTEMPTS):
        owners = _load_owners(keys)
        profiles = _lock_profiles({pid for _, pid in owners.values()}, with_data=False)
        # A profile merged away by a concurrent batch after we read its identities: read again.
        if all(p.merged_into_id is None for p in profiles.values()) and len(profiles) == len(
            {pid for _, pid in owners.values()}
        ):
            break
    else:
        raise Conflict("profiles kept changing during identity resolution; retry the request",
                       code="identity_contention", status=503)

    facts: dict[uuid.UUID, rules.ProfileFacts] = {
        pid: rules.ProfileFacts(created_at=p.created_at, persisted=True)
        for pid, p in profiles.items()
    }
    owner_map = {key: pid for key, (_, pid) in owners.items()}
    batch = [rules.MessageIds(m.message_id, m.identifiers, m.type == "alias") for m in messages]
    plan = rules.plan_batch(batch, owner_map, facts, set(), batch_time, uuid7)
    if plan.touched_stored:
        # User ids and unmerge blocks only matter when stored profiles would merge, which is
        # rare; plan again with them rather than load them for every batch.
        pids = list(profiles)
        for pid, protected in Identity.objects.filter(
            profile_id__in=pids, kind=rules.KIND_USER_ID
        ).values_list("profile_id", "protected_value"):
            facts[pid].user_ids.add(pii.reveal(protected))
        blocked: set[frozenset[uuid.UUID]] = set()
        for low, high in MergeBlock.objects.filter(
            Q(profile_low_id__in=pids) | Q(profile_high_id__in=pids)
        ).values_list("profile_low_id", "profile_high_id"):
            blocked.add(frozenset((low, high)))
        plan = rules.plan_batch(batch, owner_map, facts, blocked, batch_time, uuid7)
    return _apply(plan, messages, owners, profiles, actor, batch_time)


def _apply(
    plan: rules.Plan, messages: Sequence[Message],
    owners: dict[rules.IdentKey, tuple[int, uuid.UUID]], profiles: dict[uuid.UUID, Profile],
    actor: audit.Actor, batch_time: datetime,
) -> list[Resolution]:
    entries: list[audit.Entry] = []
    new_rows = [Profile(id=pid, created_at=batch_time, updated_at=batch_time)
                for pid in plan.new_profiles]
    stamp = sql.adapt_datetime(batch_time)
    empty = sql.adapt_json({})
    sql.insert_rows(
        Profile,
        ("id", "created_at", "updated_at", "event_count", "traits", "preferences", "consent",
         "display_name", "email", "phone", "search_index"),
        [(sql.adapt_uuid(p.id), stamp, stamp, 0, empty, empty, empty, "", "", "", "")
         for p in new_rows],
        returning=None,
    )
    for new_profile in new_rows:
        profiles[new_profile.id] = new_profile
        entries.append(audit.Entry("profile.created", "profile", str(new_profile.id), {}))
    _load_data(profiles, {p for m in plan.merges for p in (m.survivor, m.merged)} | {
        plan.assignments[i][0] for i, m in enumerate(messages) if m.traits or m.consent})

    for merge in plan.merges:
        _merge_stored(profiles[merge.survivor], profiles[merge.merged], merge.reason, actor,
                      batch_time)
        entries.append(audit.Entry("profile.merged", "profile", str(merge.survivor),
                                   {"merged": str(merge.merged), **merge.reason}))

    source = actor.label[:40]
    index_of = {key: pii.lookup_key(key[0], key[1]) for key, _ in plan.new_identities}
    inserted = sql.insert_rows(
        Identity, ("kind", "value", "protected_value", "profile_id", "source", "created_at"),
        [(kind, index_of[(kind, value)], pii.protect(value), sql.adapt_uuid(pid), source, stamp)
         for (kind, value), pid in plan.new_identities],
        returning=("id", "kind", "value"),
    )
    key_of = {(key[0], index): key for key, index in index_of.items()}
    ident_ids: dict[rules.IdentKey, int] = {k: i for k, (i, _) in owners.items()}
    for ident_id, kind, index in inserted:
        ident_ids[key_of[(kind, index)]] = ident_id
    linked_kinds: dict[uuid.UUID, list[str]] = defaultdict(list)
    for (kind, _value), pid in plan.new_identities:
        linked_kinds[pid].append(kind)
    for pid, kinds in linked_kinds.items():
        entries.append(audit.Entry("identity.linked", "profile", str(pid), {"kinds": kinds}))

    # Fold traits, preferences, consent and activity into each touched profile, oldest first.
    order = sorted(range(len(messages)), key=lambda i: messages[i].timestamp)
    touched: dict[uuid.UUID, dict[str, Any]] = {}
    for index in order:
        message = messages[index]
        pid = plan.assignments[index][0]
        profile = profiles[pid]
        state = touched.setdefault(pid, {"changed": set(), "consent": set(), "count": 0,
                                         "first": None, "last": None})
        state["count"] += 1
        if state["first"] is None or message.timestamp < state["first"]:
            state["first"] = message.timestamp
        if state["last"] is None or message.timestamp > state["last"]:
            state["last"] = message.timestamp
        if message.traits or message.consent:
            at = rules.stamp(message.timestamp)
            state["changed"].update(
                rules.fold_traits(profile.traits, message.traits, source=actor.label, at=at))
            state["changed"].update(
                f"preferences.{k}" for k in
                rules.fold_preferences(profile.preferences, message.traits, source=actor.label,
                                       at=at))
            state["consent"].update(rules.fold_consent(
                profile.consent, rules.consent_updates(message.traits, message.consent),
                source=actor.label, at=at))

    updates = []
    for pid, state in touched.items():
        profile = profiles[pid]
        if state["changed"]:
            _set_display(profile)
            entries.append(audit.Entry("profile.traits_changed", "profile", str(pid),
                                       {"keys": sorted(state["changed"])}))
        if state["consent"]:
            entries.append(audit.Entry("profile.consent_changed", "profile", str(pid),
                                       {"keys": sorted(state["consent"])}))
        first = state["first"] if profile.first_seen is None else min(profile.first_seen,
                                                                       state["first"])
        last = state["last"] if profile.last_seen is None else max(profile.last_seen,
                                                                    state["last"])
        updates.append(_ProfileUpdate(profile, state["count"], first, last,
                                      bool(state["changed"] or state["consent"])))
    _write_profile_updates(updates, batch_time)
    audit.record_many(actor, entries, batch_time)
    return [Resolution(pid, ident_ids.get(key)) for pid, key in plan.assignments]


def _set_display(profile: Profile) -> None:
    """Protected display fields and search tokens, from the profile's traits."""
    name, email, phone = rules.display_fields(profile.traits)
    profile.display_name = pii.protect(name)
    profile.email = pii.protect(email)
    profile.phone = pii.protect(phone)
    profile.search_index = pii.search_tokens(rules.search_words(name, email, phone))


class _ProfileUpdate:
    __slots__ = ("count", "first", "last", "profile", "with_data")

    def __init__(self, profile: Profile, count: int, first: datetime, last: datetime,
                 with_data: bool):
        self.profile, self.count, self.first, self.last = profile, count, first, last
        self.with_data = with_data


def _write_profile_updates(updates: list[_ProfileUpdate], at: datetime) -> None:
    """One statement per profile, sent with executemany: the ORM's per-row save() costs ~10x
    more per row on the ingest hot path, and bulk_update cannot add to a counter."""
    if not updates:
        return
    table = connection.ops.quote_name(Profile._meta.db_table)
    when = sql.adapt_datetime(at)

    def first_last_id(u: _ProfileUpdate) -> tuple[Any, Any, Any, Any]:
        return (sql.adapt_datetime(u.first), sql.adapt_datetime(u.last), when,
                sql.adapt_uuid(u.profile.id))

    simple = [u for u in updates if not u.with_data]
    full = [u for u in updates if u.with_data]
    if simple:
        sql.execute_many(
            f"UPDATE {table} SET event_count = event_count + %s, first_seen = %s, "
            f"last_seen = %s, updated_at = %s WHERE id = %s",
            [(u.count, *first_last_id(u)) for u in simple],
        )
    if full:
        sql.execute_many(
            f"UPDATE {table} SET event_count = event_count + %s, first_seen = %s, "
            f"last_seen = %s, updated_at = %s, traits = %s, preferences = %s, consent = %s, "
            f"display_name = %s, email = %s, phone = %s, search_index = %s WHERE id = %s",
            [(u.count, *first_last_id(u)[:3], sql.adapt_json(u.profile.traits),
              sql.adapt_json(u.profile.preferences), sql.adapt_json(u.profile.consent),
              u.profile.display_name, u.profile.email, u.profile.phone,
              u.profile.search_index, sql.adapt_uuid(u.profile.id)) for u in full],
        )


def _merge_stored(
    survivor: Profile, merged: Profile, reason: dict[str, str], actor: audit.Actor,
    at: datetime,
) -> Merge:
    moved = list(Identity.objects.filter(profile_id=merged.id).values_list("id", flat=True))
    Identity.objects.filter(profile_id=merged.id).update(profile_id=survivor.id)
    Event.objects.filter(profile_id=merged.id).update(profile_id=survivor.id)
    rules.merge_stamped(survivor.traits, merged.traits)
    rules.merge_stamped(survivor.preferences, merged.preferences)
    rules.merge_stamped(survivor.consent, merged.consent)
    _set_display(survivor)
    survivor.event_count += merged.event_count
    seen = [d for d in (survivor.first_seen, merged.first_seen) if d is not None]
    survivor.first_seen = min(seen) if seen else None
    seen = [d for d in (survivor.last_seen, merged.last_seen) if d is not None]
    survivor.last_seen = max(seen) if seen else None
    survivor.updated_at = at
    survivor.save()
    Profile.objects.filter(id=merged.id).update(merged_into=survivor.id, updated_at=at)
    merged.merged_into_id = survivor.id
    return Merge.objects.create(
        survivor=survivor, merged=merged, at=at, actor=actor.label, reason=reason,
        moved_identity_ids=moved,
    )


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
        record = _merge_stored(survivor, merged, {"kind": "manual", "note": note[:200]}, actor,
                               now())
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
