"""Deterministic identity resolution and trait folding — pure, no I/O.

The planner takes what the database knows about a batch's identifiers and returns a plan:
which profiles to create, which identities to link, which profiles to merge, and which profile
each message belongs to. :mod:`cxm.identity.actions` loads the inputs and applies the plan.

Rules, in order:
1. A message with a ``userId`` belongs to that user id's profile (a new one if unseen).
   Otherwise it belongs to the profile of its first known identifier in priority order
   (external ids, email, phone, anonymous id), or to a new profile.
2. Every other identifier in the message joins that profile: unseen ones are linked; ones owned
   by another profile merge the two — unless both profiles carry different user ids (a shared
   device or a shared family email must not fuse two customers) or a person has unmerged them.
3. The survivor of a merge is the older profile; a profile created within the batch never
   survives a stored one, so merged-away new profiles are simply never written.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cxm.core import pii
from cxm.ingest.spec import (
    KIND_ANONYMOUS_ID,
    KIND_PREVIOUS_ID,
    KIND_USER_ID,
    normalize_email,
    normalize_phone,
)

IdentKey = tuple[str, str]


@dataclass(slots=True)
class ProfileFacts:
    created_at: datetime
    persisted: bool
    user_ids: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class MessageIds:
    """What the planner needs of a message."""

    message_id: str
    identifiers: Sequence[IdentKey]
    # An alias: the sender states that previousId and userId are one person, so the link is
    # made even when that gives a profile a second user id (a renamed account).
    explicit: bool = False


@dataclass(slots=True)
class PlannedMerge:
    survivor: uuid.UUID
    merged: uuid.UUID
    reason: dict[str, str]


@dataclass(slots=True)
class Plan:
    new_profiles: list[uuid.UUID] = field(default_factory=list)
    new_identities: list[tuple[IdentKey, uuid.UUID]] = field(default_factory=list)
    merges: list[PlannedMerge] = field(default_factory=list)
    # per message: (profile, the identifier that resolved it)
    assignments: list[tuple[uuid.UUID, IdentKey]] = field(default_factory=list)
    refused_links: list[dict[str, str]] = field(default_factory=list)
    # Whether any merge involved a stored profile (then user ids and blocks must be known).
    touched_stored: bool = False
    # The stored profiles whose user ids and unmerge blocks the plan consulted (each side of
    # every merge it considered). Only these facts can change the plan: a caller that did not
    # know them plans again once it does.
    merge_parties: set[uuid.UUID] = field(default_factory=set)


def lookup_candidates(identifiers: Iterable[IdentKey]) -> set[IdentKey]:
    """Every key to look up for a batch; an alias's previousId may be a user or anonymous id."""
    keys: set[IdentKey] = set()
    for kind, value in identifiers:
        if kind == KIND_PREVIOUS_ID:
            keys.add((KIND_USER_ID, value))
            keys.add((KIND_ANONYMOUS_ID, value))
        else:
            keys.add((kind, value))
    return keys


class _Planner:
    def __init__(
        self, owners: Mapping[IdentKey, uuid.UUID], facts: Mapping[uuid.UUID, ProfileFacts],
        blocked: set[frozenset[uuid.UUID]], batch_time: datetime,
        new_id: Callable[[], uuid.UUID],
    ):
        self.owner: dict[IdentKey, uuid.UUID] = dict(owners)
        # Copies: planning may run twice over the same inputs and must not leak between runs.
        self.facts: dict[uuid.UUID, ProfileFacts] = {
            pid: ProfileFacts(f.created_at, f.persisted, set(f.user_ids))
            for pid, f in facts.items()
        }
        self.blocked = blocked
        self.parent: dict[uuid.UUID, uuid.UUID] = {}
        self.batch_time = batch_time
        self.new_id = new_id
        self.plan = Plan()
        self.created: list[uuid.UUID] = []
        self.linked: dict[IdentKey, uuid.UUID] = {}

    def find(self, pid: uuid.UUID) -> uuid.UUID:
        parent = self.parent
        if pid not in parent:  # most profiles were never merged: one lookup
            return pid
        root = parent[pid]
        while root in parent:
            root = parent[root]
        # Path compression, walking by membership rather than ``!=``, which for UUIDs is a
        # Python-level call per step.
        while pid in parent:
            parent[pid], pid = root, parent[pid]
        return root

    def new_profile(self, user_id: str | None) -> uuid.UUID:
        pid = self.new_id()
        self.facts[pid] = ProfileFacts(
            created_at=self.batch_time, persisted=False,
            user_ids={user_id} if user_id else set(),
        )
        self.created.append(pid)
        return pid

    def _order(self, a: uuid.UUID, b: uuid.UUID) -> tuple[uuid.UUID, uuid.UUID]:
        fa, fb = self.facts[a], self.facts[b]
        rank_a = (not fa.persisted, fa.created_at, str(a) if fa.persisted else "")
        rank_b = (not fb.persisted, fb.created_at, str(b) if fb.persisted else "")
        if not fa.persisted and not fb.persisted:
            rank_a = (True, fa.created_at, f"{self.created.index(a):09d}")
            rank_b = (True, fb.created_at, f"{self.created.index(b):09d}")
        return (a, b) if rank_a <= rank_b else (b, a)

    def owner_of(self, key: IdentKey) -> uuid.UUID | None:
        pid = self.owner.get(key)
        return self.find(pid) if pid is not None else None

    def try_merge(self, a: uuid.UUID, b: uuid.UUID, key: IdentKey, message_id: str,
                  explicit: bool = False) -> uuid.UUID:
        """Merge b's profile into a's (or the other way round); returns the profile the message
        now belongs to."""
        for pid in (a, b):
            if self.facts[pid].persisted:
                self.plan.merge_parties.add(pid)
        if frozenset((a, b)) in self.blocked:
            self.plan.refused_links.append({"kind": key[0], "message_id": message_id,
                                            "reason": "unmerged_by_person"})
            return a
        ua, ub = self.facts[a].user_ids, self.facts[b].user_ids
        if ua and ub and ua != ub and not explicit:
            self.plan.refused_links.append({"kind": key[0], "message_id": message_id,
                                            "reason": "different_user_ids"})
            return a
        survivor, merged = self._order(a, b)
        if self.facts[a].persisted or self.facts[b].persisted:
            self.plan.touched_stored = True
        self.parent[merged] = survivor
        self.facts[survivor].user_ids |= self.facts[merged].user_ids
        reason = {"kind": key[0], "message_id": message_id}
        if explicit:
            reason["by"] = "alias"
        # Blocks follow the survivor: whatever was kept apart from either stays apart.
        for pair in list(self.blocked):
            if merged in pair:
                other = next(iter(pair - {merged}), merged)
                self.blocked.add(frozenset((survivor, other)))
        if self.facts[merged].persisted:
            self.plan.merges.append(PlannedMerge(survivor=survivor, merged=merged, reason=reason))
        return survivor

    def place(self, message: MessageIds) -> None:
        keys = list(message.identifiers)
        # An alias's previousId is whichever kind of id the platform already knows it as.
        resolved_keys: list[IdentKey] = []
        for kind, value in keys:
            if kind == KIND_PREVIOUS_ID:
                if (KIND_USER_ID, value) in self.owner:
                    resolved_keys.append((KIND_USER_ID, value))
                else:
                    resolved_keys.append((KIND_ANONYMOUS_ID, value))
            else:
                resolved_keys.append((kind, value))
        user_id = next((v for k, v in resolved_keys if k == KIND_USER_ID), None)

        primary_key = resolved_keys[0]
        pid: uuid.UUID | None = None
        if message.explicit and user_id is not None:
            primary_key = (KIND_USER_ID, user_id)
            pid = self.owner_of(primary_key)
            previous = next((self.owner_of(k) for k in resolved_keys[1:]
                             if self.owner_of(k) is not None), None)
            if pid is None:
                pid = previous if previous is not None else self.new_profile(user_id)
        elif user_id is not None:
            primary_key = (KIND_USER_ID, user_id)
            pid = self.owner_of(primary_key)
            if pid is None:
                pid = self.new_profile(user_id)
        else:
            for key in resolved_keys:
                owner = self.owner_of(key)
                if owner is not None:
                    pid, primary_key = owner, key
                    break
            if pid is None:
                pid = self.new_profile(None)

        for key in resolved_keys:
            owner = self.owner_of(key)
            if owner is None:
                if (key[0] == KIND_USER_ID and self.facts[pid].user_ids - {key[1]}
                        and not message.explicit):
                    # A second user id on one profile: only via a merge rule, never silently.
                    self.plan.refused_links.append({"kind": key[0],
                                                    "message_id": message.message_id,
                                                    "reason": "profile_has_user_id"})
                    continue
                self.owner[key] = pid
                self.linked[key] = pid
                if key[0] == KIND_USER_ID:
                    self.facts[pid].user_ids.add(key[1])
            elif owner != pid:
                pid = self.try_merge(pid, owner, key, message.message_id, message.explicit)
        self.plan.assignments.append((pid, primary_key))

    def finish(self) -> Plan:
        plan = self.plan
        plan.assignments = [(self.find(pid), key) for pid, key in plan.assignments]
        plan.new_profiles = [pid for pid in self.created if self.find(pid) == pid]
        plan.new_identities = [(key, self.find(pid)) for key, pid in self.linked.items()]
        plan.merges = [
            PlannedMerge(self.find(m.survivor), m.merged, m.reason) for m in plan.merges
        ]
        return plan


def plan_batch(
    messages: Sequence[MessageIds],
    owners: Mapping[IdentKey, uuid.UUID],
    facts: Mapping[uuid.UUID, ProfileFacts],
    blocked: set[frozenset[uuid.UUID]],
    batch_time: datetime,
    new_id: Callable[[], uuid.UUID] = uuid.uuid4,
) -> Plan:
    planner = _Planner(owners, facts, set(blocked), batch_time, new_id)
    for message in messages:
        planner.place(message)
    return planner.finish()


# --- traits, preferences, consent -------------------------------------------------------------

TRAIT_MAX_KEYS = 200


def stamp(at: datetime) -> str:
    """Fixed-width UTC text, so stamps compare correctly as strings."""
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _revealed(stored: Any, plain: dict[str, Any] | None) -> Any:
    """``pii.reveal_any``, remembering plaintexts in ``plain`` (one batch's memory: the values
    it encrypted itself and the ones it already decrypted)."""
    if plain is None or not isinstance(stored, str):
        return pii.reveal_any(stored)
    found = plain.get(stored, plain)
    if found is plain:
        found = plain[stored] = pii.reveal_any(stored)
    return found


def _protected(key: str, value: Any, plain: dict[str, Any] | None = None) -> Any:
    if pii.is_personal_trait(key):
        stored = pii.protect_any(value)
        if plain is not None and isinstance(stored, str):
            plain[stored] = value
        return stored
    return value


def _same(key: str, stored: Any, value: Any, plain: dict[str, Any] | None = None) -> bool:
    if isinstance(stored, str) and pii.is_personal_trait(key):
        return bool(_revealed(stored, plain) == value)
    return bool(stored == value)


def fold_traits(
    current: dict[str, Any], incoming: Mapping[str, Any], *, source: str, at: str,
    plain: dict[str, Any] | None = None,
) -> list[str]:
    """Apply traits observed at ``at``; a value older than the stored one is ignored (events
    arrive out of order). Mutates ``current``; returns the keys that changed. ``plain``, if
    given, is a cache of ciphertext → plaintext kept for one batch (see :func:`_revealed`),
    so a value is not decrypted again to compare it or to build the display fields."""
    changed: list[str] = []
    for key, value in incoming.items():
        if key in {"consent", "preferences"} or not isinstance(key, str):
            continue
        existing = current.get(key)
        if existing is not None and existing.get("at", "") > at:
            continue
        if existing is not None and _same(key, existing.get("value"), value, plain):
            if existing.get("at", "") < at:
                existing["at"] = at
            continue
        if existing is None and len(current) >= TRAIT_MAX_KEYS:
            continue
        current[key] = {"value": _protected(key, value, plain), "source": source, "at": at}
        changed.append(key)
    return changed


def fold_preferences(
    current: dict[str, Any], traits: Mapping[str, Any], *, source: str, at: str,
    plain: dict[str, Any] | None = None,
) -> list[str]:
    prefs = traits.get("preferences")
    if not isinstance(prefs, dict):
        return []
    return fold_traits(current, {str(k): v for k, v in prefs.items()}, source=source, at=at,
                       plain=plain)


def consent_updates(traits: Mapping[str, Any], categories: Mapping[str, bool]) -> dict[str, bool]:
    """Consent statements in a message, keyed ``channel:purpose``.

    ``traits.consent`` is ``{channel: {purpose: bool}}``; Segment's
    ``context.consent.categoryPreferences`` names purposes for every channel (``*``).
    """
    found: dict[str, bool] = {}
    raw = traits.get("consent")
    if isinstance(raw, dict):
        for channel, purposes in raw.items():
            if isinstance(purposes, dict):
                for purpose, granted in purposes.items():
                    if isinstance(granted, bool):
                        found[f"{str(channel).lower()[:30]}:{str(purpose).lower()[:30]}"] = granted
            elif isinstance(purposes, bool):
                found[f"{str(channel).lower()[:30]}:*"] = purposes
    for category, granted in categories.items():
        found[f"*:{category.lower()[:30]}"] = granted
    return found


def fold_consent(
    current: dict[str, Any], updates: Mapping[str, bool], *, source: str, at: str,
) -> list[str]:
    changed: list[str] = []
    for key, granted in updates.items():
        existing = current.get(key)
        if existing is not None and existing.get("at", "") > at:
            continue
        if existing is not None and existing.get("granted") == granted:
            continue
        current[key] = {"granted": granted, "source": source, "at": at}
        changed.append(key)
    return changed


def merge_stamped(survivor: dict[str, Any], other: Mapping[str, Any]) -> None:
    """Combine two stamped maps; the later observation of each key wins."""
    for key, entry in other.items():
        mine = survivor.get(key)
        if mine is None or mine.get("at", "") < entry.get("at", ""):
            survivor[key] = entry


def display_fields(
    traits: Mapping[str, Any], *, plain: dict[str, Any] | None = None,
    phones: Mapping[str, str | None] | None = None,
) -> tuple[str, str, str]:
    """(name, email, phone) in plaintext, from stamped traits whose values may be protected.
    ``plain``: a batch's ciphertext → plaintext cache (:func:`fold_traits`); ``phones``: raw
    phone → :func:`normalize_phone` of it, already worked out (ingest normalises a message's
    phone trait into its identifiers)."""

    def value(key: str) -> str:
        entry = traits.get(key)
        raw = _revealed(entry.get("value"), plain) if isinstance(entry, dict) else None
        return raw.strip() if isinstance(raw, str) else ""

    name = value("name")
    if not name:
        name = " ".join(p for p in (value("firstName") or value("first_name"),
                                    value("lastName") or value("last_name")) if p)
    email = normalize_email(value("email")) or ""
    raw_phone = value("phone")
    if phones is not None and raw_phone in phones:
        normalized = phones[raw_phone]
    else:
        normalized = normalize_phone(raw_phone)
    phone = normalized or raw_phone
    return name[:200], email, phone[:60]


def search_words(name: str, email: str, phone: str) -> list[str]:
    """The words a profile is found by: each name word, the email and its local part, the
    phone in E.164 and without its plus sign."""
    words = [w for w in name.lower().replace(",", " ").split() if w]
    if email:
        words += [email, email.partition("@")[0]]
    if phone:
        words += [phone, phone.lstrip("+")]
    return words


def payload_traits(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The traits a stored message carried (same rule as ingest: context.traits, then an
    identify's own traits)."""
    traits: dict[str, Any] = {}
    context = payload.get("context")
    if isinstance(context, dict) and isinstance(context.get("traits"), dict):
        traits.update(context["traits"])
    if payload.get("type") == "identify" and isinstance(payload.get("traits"), dict):
        traits.update(payload["traits"])
    return traits


def payload_consent_categories(payload: Mapping[str, Any]) -> dict[str, bool]:
    context = payload.get("context")
    if not isinstance(context, dict):
        return {}
    consent = context.get("consent")
    if not isinstance(consent, dict) or not isinstance(consent.get("categoryPreferences"), dict):
        return {}
    return {str(k): v for k, v in consent["categoryPreferences"].items() if isinstance(v, bool)}
