"""The deterministic identity planner and trait/consent folding (pure, no DB)."""

from __future__ import annotations

import itertools
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cxm.identity import rules
from cxm.identity.rules import MessageIds, Plan, ProfileFacts

T0 = datetime(2025, 1, 1, tzinfo=UTC)
NOW = datetime(2025, 6, 1, tzinfo=UTC)


class World:
    """A tiny in-memory store of what the database would hold, for applying plans."""

    def __init__(self) -> None:
        self.owners: dict[tuple[str, str], uuid.UUID] = {}
        self.facts: dict[uuid.UUID, ProfileFacts] = {}
        self.blocked: set[frozenset[uuid.UUID]] = set()
        self.merged_into: dict[uuid.UUID, uuid.UUID] = {}
        self.counter = itertools.count(1)
        self.batches = 0
        self.clock = T0

    def new_id(self) -> uuid.UUID:
        return uuid.UUID(int=next(self.counter))

    def stored(self, *identifiers: tuple[str, str], age_days: int = 0,
               user_id: str | None = None) -> uuid.UUID:
        pid = self.new_id()
        self.facts[pid] = ProfileFacts(created_at=T0 + timedelta(days=age_days), persisted=True,
                                       user_ids={user_id} if user_id else set())
        for key in identifiers:
            self.owners[key] = pid
        if user_id:
            self.owners[("user_id", user_id)] = pid
        return pid

    def plan(self, *messages: list[tuple[str, str]], light: bool = False) -> Plan:
        """Plan a batch. ``light`` plans like the first pass of actions.resolve_messages:
        stored profiles' user ids and merge blocks not loaded."""
        batch_time = self.clock + timedelta(minutes=1)
        fresh = itertools.count(self.batches * 1000 + 1_000_000)
        if not light:
            self.clock = batch_time
            self.batches += 1
        facts = {pid: ProfileFacts(f.created_at, f.persisted, set() if light else set(f.user_ids))
                 for pid, f in self.facts.items()}
        return rules.plan_batch(
            [MessageIds(f"m{i}", m, any(k == "previous_id" for k, _ in m))
             for i, m in enumerate(messages)],
            {k: v for k, v in self.owners.items()
             if k in rules.lookup_candidates(x for m in messages for x in m)},
            facts, set() if light else set(self.blocked), batch_time,
            lambda: uuid.UUID(int=next(fresh)),
        )

    def apply(self, plan: Plan) -> None:
        for pid in plan.new_profiles:
            assert pid not in self.facts
            self.facts[pid] = ProfileFacts(created_at=self.clock, persisted=True)
        for merge in plan.merges:
            assert merge.merged in self.facts and merge.survivor in self.facts
            assert merge.merged not in self.merged_into
            assert merge.survivor not in self.merged_into
            for key, pid in list(self.owners.items()):
                if pid == merge.merged:
                    self.owners[key] = merge.survivor
            self.merged_into[merge.merged] = merge.survivor
        for key, pid in plan.new_identities:
            assert key not in self.owners, f"{key} linked twice"
            self.owners[key] = pid
        for pid in self.facts:
            self.facts[pid].user_ids = {v for (k, v), p in self.owners.items()
                                        if p == pid and k == "user_id"}

    def live(self) -> set[uuid.UUID]:
        return {pid for pid in self.facts if pid not in self.merged_into}


# --- the planner ----------------------------------------------------------------------------


def test_first_message_creates_a_profile_and_links_every_identifier() -> None:
    world = World()
    plan = world.plan([("user_id", "u1"), ("email", "a@x.com"), ("anonymous_id", "a1")])
    assert len(plan.new_profiles) == 1
    pid = plan.new_profiles[0]
    assert plan.assignments == [(pid, ("user_id", "u1"))]
    assert sorted(plan.new_identities) == sorted([
        (("user_id", "u1"), pid), (("email", "a@x.com"), pid), (("anonymous_id", "a1"), pid)])
    assert plan.merges == [] and plan.refused_links == []


def test_anonymous_then_identified_stays_one_profile() -> None:
    world = World()
    first = world.plan([("anonymous_id", "a1")])
    world.apply(first)
    (pid,) = first.new_profiles
    second = world.plan([("user_id", "u1"), ("email", "a@x.com"), ("anonymous_id", "a1")])
    # The new user id's profile would be new; it is folded into the stored anonymous one.
    assert second.new_profiles == []
    assert second.merges == []
    assert second.assignments == [(pid, ("user_id", "u1"))]
    assert {key for key, owner in second.new_identities if owner == pid} == {
        ("user_id", "u1"), ("email", "a@x.com")}


def test_two_anonymous_profiles_merge_on_a_later_identify_older_survives() -> None:
    world = World()
    older = world.stored(("anonymous_id", "a1"), age_days=0)
    newer = world.stored(("anonymous_id", "a2"), age_days=5)
    plan = world.plan([("user_id", "u1"), ("anonymous_id", "a2"), ("anonymous_id", "a1")])
    assert len(plan.merges) == 1
    merge = plan.merges[0]
    assert (merge.survivor, merge.merged) == (older, newer)
    assert merge.reason == {"kind": "anonymous_id", "message_id": "m0"}
    assert plan.new_profiles == []
    assert plan.assignments == [(older, ("user_id", "u1"))]
    assert (("user_id", "u1"), older) in plan.new_identities


def test_survivor_is_the_older_stored_profile_whatever_the_order() -> None:
    world = World()
    newer = world.stored(("email", "a@x.com"), age_days=9)
    older = world.stored(("phone", "+14155552671"), age_days=1)
    plan = world.plan([("email", "a@x.com"), ("phone", "+14155552671")])
    assert [(m.survivor, m.merged) for m in plan.merges] == [(older, newer)]
    assert plan.assignments[0][0] == older
    # the message was first resolved by the email (the first known identifier)
    assert plan.assignments[0][1] == ("email", "a@x.com")


def test_two_profiles_with_different_user_ids_are_never_merged() -> None:
    world = World()
    first = world.plan([("user_id", "u1"), ("anonymous_id", "shared-device")])
    world.apply(first)
    (p1,) = first.new_profiles
    second = world.plan([("user_id", "u2"), ("anonymous_id", "shared-device")])
    assert second.merges == []
    (p2,) = second.new_profiles
    assert p2 != p1
    assert second.assignments == [(p2, ("user_id", "u2"))]
    # the device stays with the first user; the refusal is recorded
    assert (("anonymous_id", "shared-device"), p2) not in second.new_identities
    assert second.refused_links == [{"kind": "anonymous_id", "message_id": "m0",
                                     "reason": "different_user_ids"}]
    world.apply(second)
    assert world.owners[("anonymous_id", "shared-device")] == p1
    # later anonymous activity on the device still goes to the first user
    third = world.plan([("anonymous_id", "shared-device")])
    assert third.assignments[0][0] == p1


def test_shared_family_email_does_not_fuse_two_customers() -> None:
    world = World()
    p1 = world.stored(("email", "family@x.com"), user_id="mum")
    plan = world.plan([("user_id", "kid"), ("email", "family@x.com")])
    assert plan.merges == []
    assert plan.assignments[0][0] != p1
    assert plan.refused_links[0]["reason"] == "different_user_ids"


def test_a_message_with_two_user_ids_does_not_give_a_profile_a_second_user_id() -> None:
    world = World()
    plan = world.plan([("user_id", "u1"), ("user_id", "u2")])
    (pid,) = plan.new_profiles
    assert (("user_id", "u2"), pid) not in plan.new_identities
    assert plan.refused_links == [{"kind": "user_id", "message_id": "m0",
                                   "reason": "profile_has_user_id"}]


def test_blocked_pair_is_not_merged() -> None:
    world = World()
    p1 = world.stored(("anonymous_id", "a1"), user_id="u1", age_days=0)
    p2 = world.stored(("anonymous_id", "a2"), age_days=1)
    world.blocked.add(frozenset((p1, p2)))
    plan = world.plan([("user_id", "u1"), ("anonymous_id", "a2")])
    assert plan.merges == []
    assert plan.assignments == [(p1, ("user_id", "u1"))]
    assert plan.refused_links == [{"kind": "anonymous_id", "message_id": "m0",
                                   "reason": "unmerged_by_person"}]


def test_block_survives_a_merge_of_one_side() -> None:
    world = World()
    p1 = world.stored(("anonymous_id", "a1"), age_days=0)
    p2 = world.stored(("anonymous_id", "a2"), age_days=1)
    p3 = world.stored(("anonymous_id", "a3"), age_days=2)
    world.blocked.add(frozenset((p2, p3)))
    # a1+a2 merge (p2 into p1); then a3 must not join p1 either, in the same batch
    plan = world.plan([("anonymous_id", "a1"), ("anonymous_id", "a2")],
                      [("anonymous_id", "a2"), ("anonymous_id", "a3")])
    assert [(m.survivor, m.merged) for m in plan.merges] == [(p1, p2)]
    assert plan.assignments[1][0] == p1
    assert plan.refused_links[0]["reason"] == "unmerged_by_person"
    assert all(m.merged != p3 for m in plan.merges)


def test_alias_previous_id_as_anonymous_id() -> None:
    world = World()
    anon = world.stored(("anonymous_id", "anon-1"))
    plan = world.plan([("user_id", "u1"), ("previous_id", "anon-1")])
    assert plan.new_profiles == []
    assert plan.assignments[0][0] == anon
    assert (("user_id", "u1"), anon) in plan.new_identities
    assert rules.lookup_candidates([("previous_id", "x")]) == {("user_id", "x"),
                                                               ("anonymous_id", "x")}


def test_alias_previous_id_unknown_becomes_an_anonymous_id_of_the_user() -> None:
    world = World()
    plan = world.plan([("user_id", "u1"), ("previous_id", "anon-new")])
    (pid,) = plan.new_profiles
    assert sorted(plan.new_identities) == sorted([(("user_id", "u1"), pid),
                                                  (("anonymous_id", "anon-new"), pid)])


def test_alias_previous_id_as_user_id_of_a_profile_with_that_id_only() -> None:
    world = World()
    old = world.stored(user_id="old-id")
    plan = world.plan([("user_id", "old-id"), ("previous_id", "old-id")])
    assert plan.assignments[0][0] == old
    assert plan.new_profiles == []


def test_alias_from_an_old_user_id_to_a_new_user_id_joins_them() -> None:
    world = World()
    old = world.stored(("email", "a@x.com"), user_id="old-id")
    plan = world.plan([("user_id", "new-id"), ("previous_id", "old-id")])
    assert plan.assignments[0][0] == old
    assert (("user_id", "new-id"), old) in plan.new_identities


def test_new_in_batch_profiles_merged_away_are_never_created() -> None:
    world = World()
    plan = world.plan(
        [("anonymous_id", "a1")],
        [("anonymous_id", "a2")],
        [("anonymous_id", "a3")],
        [("user_id", "u1"), ("anonymous_id", "a1"), ("anonymous_id", "a2"),
         ("anonymous_id", "a3")],
    )
    assert len(plan.new_profiles) == 1
    (pid,) = plan.new_profiles
    assert plan.merges == []  # nothing stored was merged
    assert {a[0] for a in plan.assignments} == {pid}
    assert {owner for _, owner in plan.new_identities} == {pid}
    assert len(plan.new_identities) == 4


def test_new_profile_never_survives_a_stored_one() -> None:
    world = World()
    stored = world.stored(("anonymous_id", "a-old"), age_days=400)
    plan = world.plan([("anonymous_id", "fresh")],
                      [("anonymous_id", "fresh"), ("anonymous_id", "a-old")])
    assert plan.new_profiles == []
    assert [a[0] for a in plan.assignments] == [stored, stored]
    assert (("anonymous_id", "fresh"), stored) in plan.new_identities


def test_external_id_email_and_phone_priority_decides_the_profile() -> None:
    world = World()
    by_phone = world.stored(("phone", "+14155552671"), age_days=0)
    by_email = world.stored(("email", "a@x.com"), age_days=3, user_id="u1")
    world.blocked.add(frozenset((by_phone, by_email)))
    plan = world.plan([("email", "a@x.com"), ("phone", "+14155552671")])
    assert plan.assignments[0] == (by_email, ("email", "a@x.com"))


# --- property: random traffic never breaks the invariants ------------------------------------

USER_IDS = ["u1", "u2", "u3"]
IDENTIFIER = st.one_of(
    st.sampled_from(USER_IDS).map(lambda v: ("user_id", v)),
    st.sampled_from(["a1", "a2", "a3", "a4"]).map(lambda v: ("anonymous_id", v)),
    st.sampled_from(["x@a.com", "y@a.com"]).map(lambda v: ("email", v)),
    st.sampled_from(["+14155552671"]).map(lambda v: ("phone", v)),
    st.sampled_from(["c1", "c2"]).map(lambda v: ("ext:crm", v)),
    st.sampled_from(["a1", "u2"]).map(lambda v: ("previous_id", v)),
)


def as_message(keys: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Order like spec.normalize does: user id first, at most one; previous id last."""
    user = [k for k in keys if k[0] == "user_id"][:1]
    others = [k for k in dict.fromkeys(keys) if k[0] not in {"user_id", "previous_id"}]
    prev = [k for k in keys if k[0] == "previous_id"][:1] if user else []
    return user + others + prev


MESSAGE = st.lists(IDENTIFIER, min_size=1, max_size=4).map(as_message).filter(bool)
BATCHES = st.lists(st.lists(MESSAGE, min_size=1, max_size=5), min_size=1, max_size=6)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches=BATCHES, unmerge_at=st.integers(min_value=0, max_value=6))
def test_random_traffic_keeps_one_user_id_per_profile(
    batches: list[list[list[tuple[str, str]]]], unmerge_at: int
) -> None:
    world = World()
    for number, batch in enumerate(batches):
        if number == unmerge_at and world.merged_into:
            # a person undid a merge: that pair is blocked from now on
            merged, survivor = next(iter(world.merged_into.items()))
            world.blocked.add(frozenset((merged, survivor)))
        # actions.resolve_messages first plans without stored user ids and blocks, and only
        # plans again with them when a stored profile took part in a merge: that shortcut
        # must never change the plan.
        light = world.plan(*batch, light=True)
        plan = world.plan(*batch)
        assert len(plan.assignments) == len(batch)
        if not light.touched_stored:
            assert (light.assignments, light.new_profiles, sorted(light.new_identities),
                    light.merges) == (plan.assignments, plan.new_profiles,
                                      sorted(plan.new_identities), plan.merges)
        live_before = world.live()
        world.apply(plan)
        live = world.live()
        for message, (pid, key) in zip(batch, plan.assignments, strict=True):
            # every message has a live profile, resolved by one of its own identifiers
            assert pid in live
            assert pid in live_before or pid in plan.new_profiles
            candidates = set(rules.lookup_candidates(message))
            assert key in candidates
            user = next((v for k, v in message if k == "user_id"), None)
            if user is not None:
                assert world.owners[("user_id", user)] == pid
        for merge in plan.merges:
            assert frozenset((merge.survivor, merge.merged)) not in world.blocked
        user_ids: dict[uuid.UUID, set[str]] = defaultdict(set)
        for (kind, value), pid in world.owners.items():
            assert pid in live, "an identifier points at a merged-away profile"
            if kind == "user_id":
                user_ids[pid].add(value)
        # Only an alias (the sender's explicit word) may give a profile a second user id.
        aliased = any(k == "previous_id" for batch in batches for m in batch for k, _ in m)
        if not aliased:
            assert all(len(values) == 1 for values in user_ids.values()), user_ids


# --- traits, preferences, consent ------------------------------------------------------------


def test_fold_traits_newer_wins_older_ignored_and_source_time_kept() -> None:
    current: dict = {}
    t1, t2, t0 = "2025-01-02T00:00:00.000000Z", "2025-01-03T00:00:00.000000Z", (
        "2025-01-01T00:00:00.000000Z")
    assert rules.fold_traits(current, {"plan": "free", "name": "Al"}, source="s1", at=t1) == [
        "plan", "name"]
    assert current["plan"] == {"value": "free", "source": "s1", "at": t1}
    assert rules.fold_traits(current, {"plan": "pro"}, source="s2", at=t2) == ["plan"]
    assert current["plan"] == {"value": "pro", "source": "s2", "at": t2}
    # an older observation arriving late is ignored
    assert rules.fold_traits(current, {"plan": "trial"}, source="s3", at=t0) == []
    assert current["plan"]["value"] == "pro"
    # the same value seen later only refreshes the time
    t3 = "2025-01-04T00:00:00.000000Z"
    assert rules.fold_traits(current, {"plan": "pro"}, source="s4", at=t3) == []
    assert current["plan"] == {"value": "pro", "source": "s2", "at": t3}


def test_fold_traits_skips_consent_and_preferences_and_caps_keys() -> None:
    current: dict = {}
    changed = rules.fold_traits(current, {"consent": {"email": True}, "preferences": {"a": 1},
                                          "plan": "x"}, source="s", at="t")
    assert changed == ["plan"] and set(current) == {"plan"}
    many = {f"k{i}": i for i in range(rules.TRAIT_MAX_KEYS + 10)}
    rules.fold_traits(current, many, source="s", at="t")
    assert len(current) == rules.TRAIT_MAX_KEYS


def test_fold_preferences() -> None:
    prefs: dict = {}
    assert rules.fold_preferences(prefs, {"preferences": {"pillow": "firm"}}, source="s",
                                  at="2025") == ["pillow"]
    assert prefs["pillow"]["value"] == "firm"
    assert rules.fold_preferences(prefs, {"preferences": "firm"}, source="s", at="2026") == []


def test_consent_updates_shapes() -> None:
    traits = {"consent": {"Email": {"Marketing": True, "service": False, "bad": "yes"},
                          "sms": False, "junk": 3}}
    categories = {"Advertising": False, "Analytics": True}
    assert rules.consent_updates(traits, categories) == {
        "email:marketing": True, "email:service": False, "sms:*": False,
        "*:advertising": False, "*:analytics": True,
    }
    assert rules.consent_updates({"consent": "yes"}, {}) == {}
    assert rules.consent_updates({}, {}) == {}


def test_fold_consent_newer_wins() -> None:
    current: dict = {}
    assert rules.fold_consent(current, {"email:marketing": True}, source="s", at="2") == [
        "email:marketing"]
    assert rules.fold_consent(current, {"email:marketing": False}, source="s", at="1") == []
    assert current["email:marketing"]["granted"] is True
    assert rules.fold_consent(current, {"email:marketing": True}, source="t", at="3") == []
    assert rules.fold_consent(current, {"email:marketing": False}, source="t", at="3") == [
        "email:marketing"]
    assert current["email:marketing"] == {"granted": False, "source": "t", "at": "3"}


def test_merge_stamped_later_observation_wins() -> None:
    survivor = {"plan": {"value": "a", "at": "2"}, "only_s": {"value": 1, "at": "1"}}
    other = {"plan": {"value": "b", "at": "3"}, "only_o": {"value": 2, "at": "0"},
             "only_s": {"value": 9, "at": "0"}}
    rules.merge_stamped(survivor, other)
    assert survivor["plan"]["value"] == "b"
    assert survivor["only_o"]["value"] == 2
    assert survivor["only_s"]["value"] == 1


def test_stamp_is_fixed_width_and_sorts_like_time() -> None:
    a = rules.stamp(datetime(2025, 1, 1, 9, 0, 0, tzinfo=UTC))
    b = rules.stamp(datetime(2025, 1, 1, 10, 0, 0, 5, tzinfo=UTC))
    assert len(a) == len(b) and a < b
    assert a == "2025-01-01T09:00:00.000000Z"


def test_display_fields_and_payload_helpers() -> None:
    traits = {"firstName": {"value": "Ada", "at": "1"}, "lastName": {"value": "Lovelace"},
              "email": {"value": " ADA@X.COM"}, "phone": {"value": "(415) 555-2671"}}
    assert rules.display_fields(traits) == ("Ada Lovelace", "ada@x.com", "+14155552671")
    assert rules.display_fields({"name": {"value": "Bo"}})[0] == "Bo"
    payload = {"type": "identify", "traits": {"plan": "pro"},
               "context": {"traits": {"plan": "free", "email": "a@x.com"},
                           "consent": {"categoryPreferences": {"Ads": True, "x": 1}}}}
    assert rules.payload_traits(payload) == {"plan": "pro", "email": "a@x.com"}
    assert rules.payload_traits({**payload, "type": "track"}) == {"plan": "free",
                                                                  "email": "a@x.com"}
    assert rules.payload_consent_categories(payload) == {"Ads": True}
    assert rules.payload_consent_categories({"context": []}) == {}
