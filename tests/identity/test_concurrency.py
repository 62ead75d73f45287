"""Concurrent first events of one person, from real threads with their own DB connections."""

from __future__ import annotations

from typing import Any

import pytest

from cxm.core.audit import Actor
from cxm.identity import queries
from cxm.identity.models import Identity, Profile
from cxm.ingest import actions
from cxm.ingest.models import Event, Outcome
from tests.helpers import THREADS, run_together

pytestmark = pytest.mark.django_db(transaction=True)



def ingest_one(message: dict[str, Any]) -> actions.BatchResult:
    return actions.ingest([message], actor=Actor("key:threads"), source="key:threads")


def live() -> list[Profile]:
    return list(Profile.objects.filter(merged_into__isnull=True))


def test_same_user_id_with_different_anonymous_ids_is_one_profile() -> None:
    results = run_together(lambda i: ingest_one({
        "type": "track", "event": "App Opened", "userId": "race-user",
        "anonymousId": f"device-{i}", "messageId": f"race-{i}"}))
    assert all(r.accepted == 1 for r in results)
    (profile,) = live()
    assert profile.event_count == THREADS
    assert Event.objects.filter(profile_id=profile.id).count() == THREADS
    assert Identity.objects.filter(profile=profile).count() == THREADS + 1
    assert Identity.objects.filter(kind="user_id").count() == 1


def test_same_email_without_user_id_is_one_profile() -> None:
    run_together(lambda i: ingest_one({
        "type": "identify", "anonymousId": f"browser-{i}", "messageId": f"mail-{i}",
        "traits": {"email": "Race@Example.com" if i % 2 else "race@example.com "}}))
    (profile,) = live()
    assert profile.event_count == THREADS
    assert Identity.objects.filter(kind="email").count() == 1
    assert Event.objects.exclude(profile_id=profile.id).count() == 0


def test_a_chain_of_links_arriving_concurrently_ends_as_one_profile() -> None:
    # message i carries links L{i} and L{i+1}: no two messages share all their identifiers,
    # but together they describe one person
    run_together(lambda i: ingest_one({
        "type": "track", "event": "Seen", "messageId": f"chain-{i}",
        "context": {"externalIds": [{"type": "link", "id": f"L{i}"},
                                    {"type": "link", "id": f"L{i + 1}"}]}}))
    (profile,) = live()
    assert profile.event_count == THREADS
    assert Identity.objects.filter(profile=profile).count() == THREADS + 1
    assert Event.objects.filter(profile_id=profile.id).count() == THREADS
    # every merged-away profile points at the survivor
    merged = Profile.objects.exclude(id=profile.id)
    assert merged.exists()
    assert all(queries.canonical(p.id).id == profile.id for p in merged)


def test_concurrent_retries_of_one_message_are_stored_and_counted_once() -> None:
    results = run_together(lambda i: ingest_one({
        "type": "track", "event": "Order Completed", "userId": "retry-user",
        "messageId": "the-one-order"}))
    assert sum(r.accepted for r in results) == 1
    assert all(not r.rejected for r in results)
    assert Event.objects.count() == 1
    (profile,) = live()
    assert profile.event_count == 1
    counts = {(o.outcome, o.reason): o.count for o in Outcome.objects.all()}
    assert counts[("accepted", "")] == 1


def test_concurrent_retries_are_counted_as_duplicates() -> None:
    results = run_together(lambda i: ingest_one({
        "type": "track", "event": "Order Completed", "userId": "retry-user",
        "messageId": "the-one-order"}))
    assert sum(r.duplicates for r in results) == THREADS - 1
    counts = {(o.outcome, o.reason): o.count for o in Outcome.objects.all()}
    assert counts == {("accepted", ""): 1, ("duplicate", ""): THREADS - 1}


def _person_stream(people: int) -> list[dict[str, Any]]:
    """Each person browses on two devices, then signs in on each (which merges the device's
    profile into theirs); one busy person sends a page view in every stretch of the stream,
    so most batches carry both a merge and the busy person's identifiers."""
    stream: list[dict[str, Any]] = []
    for step in range(3):
        for p in range(people):
            for device in ("a", "b"):
                anonymous = f"dev-{p}-{device}"
                if step < 2:
                    stream.append({"type": "track", "event": "Viewed", "anonymousId": anonymous,
                                   "messageId": f"m-{p}-{device}-{step}"})
                else:
                    stream.append({"type": "identify", "userId": f"user-{p}",
                                   "anonymousId": anonymous, "messageId": f"m-{p}-{device}-id"})
            stream.append({"type": "page", "name": "Home", "userId": "busy",
                           "anonymousId": "busy-device", "messageId": f"busy-{step}-{p}"})
    return stream


def test_concurrent_batches_that_merge_people_end_consistent() -> None:
    people = 24
    stream = _person_stream(people)
    size = 10
    batches = [stream[i:i + size] for i in range(0, len(stream), size)]

    def send(thread: int) -> int:
        accepted = 0
        for batch in batches[thread::THREADS]:
            accepted += actions.ingest(batch, actor=Actor("key:threads"),
                                       source="key:threads").accepted
        return accepted

    assert sum(run_together(send)) == len(stream)
    profiles = live()
    assert len(profiles) == people + 1  # every person and the busy one, once each
    for profile in profiles:
        stored = Event.objects.filter(profile_id=profile.id).count()
        kinds = sorted(Identity.objects.filter(profile=profile).values_list("kind", flat=True))
        if Event.objects.filter(profile_id=profile.id, type="page").exists():  # the busy one
            assert (stored, kinds) == (people * 3, ["anonymous_id", "user_id"])
        else:
            assert (stored, kinds) == (6, ["anonymous_id", "anonymous_id", "user_id"])
        assert profile.event_count == stored
        assert sum(queries.channel_counts(profile).values()) == stored
    merged = set(Profile.objects.filter(merged_into__isnull=False).values_list("id", flat=True))
    assert not Event.objects.filter(profile_id__in=merged).exists()
    assert not Identity.objects.filter(profile_id__in=merged).exists()
    assert Event.objects.count() == len(stream)
