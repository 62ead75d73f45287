"""Per-profile counters (events, first/last seen, events per channel) stay exact: under
concurrent batches about the same people, across merges and unmerges, and for retried ids."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connections

from cxm.core.audit import Actor
from cxm.identity import actions as identity_actions
from cxm.identity import queries
from cxm.identity.models import Merge, Profile
from cxm.ingest import actions
from cxm.ingest.models import Event, ProfileChannel

pytestmark = pytest.mark.django_db(transaction=True)

ACTOR = Actor("key:counters")
T0 = datetime(2026, 3, 1, tzinfo=UTC)
CHANNELS = ("web", "app", "email", "store")


def message(i: int, person: int, **extra: Any) -> dict[str, Any]:
    return {"type": "track", "event": "Seen", "messageId": f"m-{i}",
            "userId": f"user-{person}", "anonymousId": f"anon-{person}-{i % 3}",
            "timestamp": (T0 + timedelta(minutes=i)).isoformat(),
            "context": {"channel": CHANNELS[i % len(CHANNELS)]}, **extra}


def assert_counters_match_events() -> None:
    for profile in Profile.objects.filter(merged_into__isnull=True):
        events = Event.objects.filter(profile_id=profile.id)
        assert profile.event_count == events.count(), profile.id
        if profile.event_count:
            stamps = sorted(events.values_list("timestamp", flat=True))
            assert (profile.first_seen, profile.last_seen) == (stamps[0], stamps[-1])
        expected = Counter(events.values_list("channel", flat=True))
        assert queries.channel_counts(profile) == dict(
            sorted(expected.items(), key=lambda kv: (-kv[1], kv[0]))), profile.id
    kept = {(str(r.profile_id), r.channel): r.count for r in ProfileChannel.objects.all()}
    counted = Counter((str(pid), ch) for pid, ch in Event.objects.values_list("profile_id",
                                                                              "channel"))
    assert kept == dict(counted)


def test_concurrent_batches_about_the_same_people_count_every_event_once() -> None:
    # 8 threads, 6 batches each, every batch about the same 5 people (new at first, then
    # known), with retried messageIds mixed in across threads.
    errors: list[BaseException] = []

    def work(thread: int) -> None:
        try:
            for round_ in range(6):
                batch = [message(thread * 1000 + round_ * 10 + j, j % 5) for j in range(10)]
                batch.append(message(round_ * 10, 0))  # the same id from every thread
                actions.ingest(batch, actor=ACTOR, source="key:counters")
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    # thread 0's own first message of each round is the shared one: 480 distinct ids
    assert Event.objects.count() == 8 * 6 * 10
    assert Profile.objects.filter(merged_into__isnull=True).count() == 5
    assert_counters_match_events()


def test_merge_and_unmerge_keep_channel_counts() -> None:
    actions.ingest([
        {"type": "page", "anonymousId": "dev-a", "messageId": "a1", "context": {"channel": "web"}},
        {"type": "page", "anonymousId": "dev-a", "messageId": "a2", "context": {"channel": "web"}},
        {"type": "screen", "anonymousId": "dev-b", "messageId": "b1"},
    ], actor=ACTOR, source="key:counters")
    assert Profile.objects.count() == 2
    actions.ingest([{"type": "track", "event": "Login", "messageId": "link",
                     "userId": "u-1", "anonymousId": "dev-a", "context": {"channel": "web"}},
                    {"type": "track", "event": "Login", "messageId": "link-2",
                     "userId": "u-1", "anonymousId": "dev-b", "context": {"channel": "app"}}],
                   actor=ACTOR, source="key:counters")
    (survivor,) = Profile.objects.filter(merged_into__isnull=True)
    assert queries.channel_counts(survivor) == {"web": 3, "app": 2}
    assert_counters_match_events()

    merge = Merge.objects.get()
    identity_actions.unmerge(merge_id=merge.pk, actor=Actor("test"))
    assert Profile.objects.filter(merged_into__isnull=True).count() == 2
    assert_counters_match_events()


def test_a_failing_batch_in_a_group_commit_leaves_the_others_stored(monkeypatch: Any) -> None:
    from cxm.ingest import actions as ingest_actions

    real = ingest_actions._store_prepared
    barrier = threading.Barrier(4)

    def flaky(prepared: Any, actor: Actor) -> Any:
        if prepared.messages[0].message_id == "bad-0":
            raise RuntimeError("boom")
        return real(prepared, actor)

    monkeypatch.setattr(ingest_actions, "_store_prepared", flaky)
    outcome: dict[int, Any] = {}

    def work(i: int) -> None:
        try:
            barrier.wait()
            prefix = "bad" if i == 0 else f"ok{i}"
            outcome[i] = actions.ingest(
                [{"type": "track", "event": "E", "userId": f"g-{i}", "messageId": f"{prefix}-0"}],
                actor=ACTOR, source="key:counters").accepted
        except RuntimeError as error:
            outcome[i] = str(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcome == {0: "boom", 1: 1, 2: 1, 3: 1}
    assert sorted(Event.objects.values_list("message_id", flat=True)) == ["ok1-0", "ok2-0",
                                                                          "ok3-0"]
    assert_counters_match_events()
