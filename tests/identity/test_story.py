"""The issue's story end to end: one person on web, app and CRM becomes one profile; the merge
is recorded and can be undone; lookups, traits, consent and preferences through the REST API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.test import Client

from cxm.accounts import keys
from cxm.core.models import AuditLog
from cxm.identity.models import Merge, Profile
from cxm.ingest.models import Event
from tests.helpers import identity_owner, identity_pairs, profile_of, trait
from tests.ingest.helpers import bearer, post

pytestmark = pytest.mark.django_db

T = datetime(2025, 5, 1, 10, 0, tzinfo=UTC)


def at(minutes: int) -> str:
    return (T + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def api(client: Client, key: str, path: str, **params: Any) -> Any:
    response = client.get(f"/api/v1{path}", params, **bearer(key))
    assert response.status_code == 200, (path, response.status_code, response.content)
    return response.json()


def live_profiles() -> list[Profile]:
    return list(Profile.objects.filter(merged_into__isnull=True))


def send(client: Client, key: str, *messages: dict[str, Any]) -> None:
    response = post(client, "/v1/batch", {"batch": list(messages)}, key)
    assert response.status_code == 200, response.content
    assert response.json()["rejected"] == []


WEB_PAGES = [{"type": "page", "anonymousId": "A1", "name": f"Page {i}", "messageId": f"web-{i}",
              "timestamp": at(i), "context": {"page": {"url": f"https://shop.test/{i}"}}}
             for i in range(3)]
APP_IDENTIFY = {
    "type": "identify", "userId": "U1", "anonymousId": "A2", "messageId": "app-identify",
    "timestamp": at(10),
    "traits": {"email": "alice@example.com", "name": "Alice Smith", "phone": "(415) 555-2671",
               "plan": "gold", "preferences": {"pillow": "firm", "room": "quiet"},
               "consent": {"email": {"marketing": True}, "sms": False}},
    "context": {"app": {"name": "Shop", "version": "3.1"}, "os": {"name": "iOS"},
                "consent": {"categoryPreferences": {"Advertising": False, "Analytics": True}}},
}
APP_TRACK = {"type": "track", "userId": "U1", "anonymousId": "A2", "event": "Product Viewed",
             "messageId": "app-track", "timestamp": at(11), "context": {"app": {"name": "Shop"}}}
CRM_EVENT = {"type": "track", "event": "Case Opened", "messageId": "crm-1", "timestamp": at(20),
             "context": {"externalIds": [{"type": "crm_id", "id": "C-9", "collection": "users",
                                          "encoding": "none"}],
                         "traits": {"email": "  ALICE@Example.COM ", "plan": "platinum"}}}
WEB_LOGIN = {"type": "identify", "userId": "U1", "anonymousId": "A1", "messageId": "web-login",
             "timestamp": at(30), "context": {"page": {"url": "https://shop.test/login"}}}


def tell_the_story(client: Client, ingest_key: str) -> tuple[Profile, Profile]:
    send(client, ingest_key, *WEB_PAGES)
    send(client, ingest_key, APP_IDENTIFY, APP_TRACK)
    send(client, ingest_key, CRM_EVENT)
    web = profile_of("anonymous_id", "A1")
    app = profile_of("user_id", "U1")
    assert web.id != app.id  # nothing linked them yet
    assert ("ext:crm_id", "C-9") in identity_pairs(app)
    assert identity_owner("ext:crm_id", "C-9") == app.id
    send(client, ingest_key, WEB_LOGIN)
    return web, app


def test_one_person_across_web_app_and_crm_is_one_profile(
    client: Client, ingest_key: str, read_key: str
) -> None:
    web, app = tell_the_story(client, ingest_key)
    (person,) = live_profiles()
    assert person.id == web.id  # the older profile survives
    assert person.event_count == 7
    assert Event.objects.filter(profile_id=person.id).count() == 7
    assert Event.objects.exclude(profile_id=person.id).count() == 0

    found = identity_pairs(person)
    assert found == {("anonymous_id", "A1"), ("anonymous_id", "A2"), ("user_id", "U1"),
                     ("email", "alice@example.com"), ("phone", "+14155552671"),
                     ("ext:crm_id", "C-9")}

    # the merge is recorded with its reason and audited
    merge = Merge.objects.get()
    assert (merge.survivor_id, merge.merged_id) == (web.id, app.id)
    assert merge.reason == {"kind": "anonymous_id", "message_id": "web-login"}
    assert merge.actor == f"key:{keys.parse_prefix(ingest_key)}"
    audit = AuditLog.objects.get(action="profile.merged")
    assert audit.target_id == str(web.id) and audit.changes["merged"] == str(app.id)
    merges = api(client, read_key, f"/profiles/{person.id}/merges")
    assert [(m["survivor_id"], m["merged_id"], m["reason"]["kind"], m["undone_at"])
            for m in merges] == [(str(web.id), str(app.id), "anonymous_id", None)]

    # every identifier finds the one profile, in any format
    lookups = [{"email": "Alice@Example.com "}, {"phone": "+1 415 555 2671"},
               {"phone": "(415) 555-2671"}, {"phone": "4155552671"}, {"user_id": "U1"},
               {"anonymous_id": "A1"}, {"anonymous_id": "A2"},
               {"kind": "ext:crm_id", "value": "C-9"}, {"kind": "email",
                                                        "value": "alice@example.com"}]
    for params in lookups:
        body = api(client, read_key, "/profiles/lookup", **params)
        assert body["id"] == str(person.id), params
        assert body["requested_id"] is None

    # the merged-away id still answers, with the survivor and the id that was asked for
    body = api(client, read_key, f"/profiles/{app.id}")
    assert body["id"] == str(person.id) and body["requested_id"] == str(app.id)
    assert body["event_count"] == 7
    assert body["channels"] == {"web": 4, "app": 2, "support": 1}
    assert len(api(client, read_key, f"/profiles/{app.id}/timeline")["events"]) == 7


def test_traits_consent_and_preferences_carry_source_and_time(
    client: Client, ingest_key: str, read_key: str
) -> None:
    tell_the_story(client, ingest_key)
    (person,) = live_profiles()
    body = api(client, read_key, f"/profiles/{person.id}")
    source = f"key:{keys.parse_prefix(ingest_key)}"
    assert body["name"] == "Alice Smith"
    assert body["email"] == "alice@example.com"
    assert body["phone"] == "+14155552671"
    traits = body["traits"]
    assert traits["name"] == {"value": "Alice Smith", "source": source,
                              "at": "2025-05-01T10:10:00.000000Z"}
    # the CRM's later observation wins
    assert traits["plan"] == {"value": "platinum", "source": source,
                              "at": "2025-05-01T10:20:00.000000Z"}
    assert "preferences" not in traits and "consent" not in traits
    assert body["preferences"]["pillow"] == {"value": "firm", "source": source,
                                             "at": "2025-05-01T10:10:00.000000Z"}
    assert body["preferences"]["room"]["value"] == "quiet"
    consent = {(c["channel"], c["purpose"]): c for c in body["consent"]}
    assert {k: c["granted"] for k, c in consent.items()} == {
        ("email", "marketing"): True, ("sms", "*"): False, ("*", "advertising"): False,
        ("*", "analytics"): True}
    assert consent[("email", "marketing")]["source"] == source
    assert consent[("email", "marketing")]["at"] == "2025-05-01T10:10:00.000000Z"


def test_undo_restores_both_profiles_and_their_events(
    client: Client, ingest_key: str, read_key: str, admin_key: str
) -> None:
    web, app = tell_the_story(client, ingest_key)
    merge = Merge.objects.get()

    forbidden = client.post(f"/api/v1/merges/{merge.id}/undo", **bearer(read_key))
    assert forbidden.status_code == 403
    forbidden = client.post(f"/api/v1/merges/{merge.id}/undo", **bearer(ingest_key))
    assert forbidden.status_code == 403

    response = client.post(f"/api/v1/merges/{merge.id}/undo", **bearer(admin_key))
    assert response.status_code == 200, response.content
    summaries = {p["id"]: p for p in response.json()}
    assert set(summaries) == {str(web.id), str(app.id)}
    assert summaries[str(web.id)]["event_count"] == 3
    assert summaries[str(app.id)]["event_count"] == 4
    assert sorted(p.id for p in live_profiles()) == sorted([web.id, app.id])

    web.refresh_from_db()
    app.refresh_from_db()
    assert (web.event_count, app.event_count) == (3, 4)
    assert identity_pairs(web) == {("anonymous_id", "A1")}
    assert identity_pairs(app) == {
        ("user_id", "U1"), ("anonymous_id", "A2"), ("email", "alice@example.com"),
        ("phone", "+14155552671"), ("ext:crm_id", "C-9")}
    web_timeline = api(client, read_key, f"/profiles/{web.id}/timeline")
    assert [e["message_id"] for e in web_timeline["events"]] == ["web-2", "web-1", "web-0"]
    app_timeline = api(client, read_key, f"/profiles/{app.id}/timeline")
    assert [e["message_id"] for e in app_timeline["events"]] == [
        "web-login", "crm-1", "app-track", "app-identify"]
    assert web.first_seen == T and web.last_seen == T + timedelta(minutes=2)
    assert app.first_seen == T + timedelta(minutes=10)
    assert app.last_seen == T + timedelta(minutes=30)
    # traits were rebuilt from each profile's own events
    assert web.traits == {}
    app_body = api(client, read_key, f"/profiles/{app.id}")
    assert app_body["requested_id"] is None
    assert app_body["traits"]["plan"]["value"] == "platinum"
    assert app_body["name"] == "Alice Smith"
    assert app_body["preferences"]["pillow"]["value"] == "firm"
    assert api(client, read_key, "/profiles/lookup", anonymous_id="A1")["id"] == str(web.id)
    assert api(client, read_key, "/profiles/lookup", email="alice@example.com")["id"] == str(
        app.id)

    merge.refresh_from_db()
    assert merge.undone_at is not None and merge.undone_by.startswith("key:")
    assert AuditLog.objects.filter(action="profile.unmerged", target_id=str(web.id)).count() == 1
    again = client.post(f"/api/v1/merges/{merge.id}/undo", **bearer(admin_key))
    assert again.status_code == 409 and again.json()["code"] == "merge_already_undone"
    missing = client.post("/api/v1/merges/999999/undo", **bearer(admin_key))
    assert missing.status_code == 404

    # further events for the identifiers do not fuse the two again
    send(client, ingest_key,
         {"type": "page", "anonymousId": "A1", "messageId": "later-1", "timestamp": at(40)},
         {"type": "identify", "userId": "U1", "anonymousId": "A1", "messageId": "later-2",
          "timestamp": at(41)},
         {"type": "track", "event": "Case Closed", "messageId": "later-3", "timestamp": at(42),
          "context": {"externalIds": [{"type": "crm_id", "id": "C-9"}]}})
    assert sorted(p.id for p in live_profiles()) == sorted([web.id, app.id])
    assert Merge.objects.count() == 1
    web.refresh_from_db()
    app.refresh_from_db()
    assert (web.event_count, app.event_count) == (4, 6)
    assert dict(Event.objects.filter(message_id__startswith="later").values_list(
        "message_id", "profile_id")) == {"later-1": web.id, "later-2": app.id,
                                         "later-3": app.id}
    assert identity_owner("anonymous_id", "A1") == web.id


def test_manual_merge_and_its_undo_over_the_api(
    client: Client, ingest_key: str, read_key: str, admin_key: str
) -> None:
    send(client, ingest_key,
         {"type": "identify", "anonymousId": "x1", "traits": {"name": "Bo"}, "timestamp": at(0)},
         {"type": "identify", "anonymousId": "x2", "traits": {"name": "Bo B."},
          "timestamp": at(5)})
    first = profile_of("anonymous_id", "x1")
    second = profile_of("anonymous_id", "x2")
    path = f"/api/v1/profiles/{first.id}/merge"
    assert client.post(path, {"merged_id": str(second.id)}, content_type="application/json",
                       **bearer(read_key)).status_code == 403
    response = client.post(path, {"merged_id": str(second.id), "note": "same person"},
                           content_type="application/json", **bearer(admin_key))
    assert response.status_code == 200, response.content
    merge = response.json()
    assert merge["reason"] == {"kind": "manual", "note": "same person"}
    first.refresh_from_db()
    assert first.event_count == 2
    assert trait(first, "name") == "Bo B."
    assert api(client, read_key, "/profiles/lookup", anonymous_id="x2")["id"] == str(first.id)

    for target, code in ((first.id, "merge_same_profile"), (second.id,
                                                           "profile_already_merged")):
        bad = client.post(path, {"merged_id": str(target)}, content_type="application/json",
                          **bearer(admin_key))
        assert bad.status_code == 409 and bad.json()["code"] == code
    bad = client.post(path, {"merged_id": "not-a-uuid"}, content_type="application/json",
                      **bearer(admin_key))
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_profile_id"

    undo = client.post(f"/api/v1/merges/{merge['id']}/undo", **bearer(admin_key))
    assert undo.status_code == 200
    first.refresh_from_db()
    second.refresh_from_db()
    assert second.merged_into_id is None
    assert (first.event_count, second.event_count) == (1, 1)
    assert (trait(first, "name"), trait(second, "name")) == ("Bo", "Bo B.")


def test_undo_order_and_re_merge_after_undo(
    client: Client, ingest_key: str, admin_key: str
) -> None:
    send(client, ingest_key, *[{"type": "identify", "anonymousId": f"z{i}",
                                "timestamp": at(i)} for i in range(3)])
    a, b, c = (profile_of("anonymous_id", f"z{i}") for i in range(3))

    def merge(survivor: Profile, merged: Profile) -> Any:
        return client.post(f"/api/v1/profiles/{survivor.id}/merge",
                           {"merged_id": str(merged.id)}, content_type="application/json",
                           **bearer(admin_key))

    first = merge(b, a).json()
    second = merge(c, b).json()
    # the older merge cannot be undone while its survivor is merged into another profile
    blocked = client.post(f"/api/v1/merges/{first['id']}/undo", **bearer(admin_key))
    assert blocked.status_code == 409 and blocked.json()["code"] == "merge_not_latest"
    assert client.post(f"/api/v1/merges/{second['id']}/undo",
                       **bearer(admin_key)).status_code == 200
    assert client.post(f"/api/v1/merges/{first['id']}/undo",
                       **bearer(admin_key)).status_code == 200
    assert len(live_profiles()) == 3
    assert all(p.event_count == 1 for p in live_profiles())
    # automatic matching keeps them apart now, but a person may merge them again
    send(client, ingest_key, {"type": "identify", "anonymousId": "z0", "timestamp": at(9),
                              "context": {"externalIds": [{"type": "k", "id": "shared"}]}},
         {"type": "identify", "anonymousId": "z1", "timestamp": at(10),
          "context": {"externalIds": [{"type": "k", "id": "shared"}]}})
    assert len(live_profiles()) == 3
    assert merge(b, a).status_code == 200
    assert len(live_profiles()) == 2
    b.refresh_from_db()
    assert b.event_count == 4
