"""The profiles REST API: scopes on every endpoint, lookups, timeline paging, search, OpenAPI."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.test import Client

from cxm.identity.models import Profile
from cxm.ingest.models import Event
from tests.helpers import profile_of
from tests.ingest.helpers import bearer, post

pytestmark = pytest.mark.django_db

T = datetime(2025, 2, 1, 8, 0, tzinfo=UTC)


def send(client: Client, key: str, messages: list[dict[str, Any]]) -> None:
    for start in range(0, len(messages), 100):
        response = post(client, "/v1/batch", {"batch": messages[start:start + 100]}, key)
        assert response.status_code == 200, response.content
        assert response.json()["rejected"] == []


def operations(client: Client) -> list[tuple[str, str]]:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.json()
    found = []
    for path, methods in document["paths"].items():
        for method in methods:
            if method in {"get", "post", "put", "patch", "delete"}:
                found.append((method, path))
    return found


def call(client: Client, method: str, path: str, **headers: str) -> Any:
    concrete = re.sub(r"\{[^}]+\}", lambda m: "1" if "merge_id" in m.group(0) else str(
        uuid.uuid4()), path)
    if method in {"post", "put", "patch"}:
        return getattr(client, method)(concrete, {"merged_id": str(uuid.uuid4()),
                                                  "name": "x", "scope": "read"},
                                       content_type="application/json", **headers)
    return getattr(client, method)(concrete, **headers)


def test_openapi_document_lists_the_api(client: Client) -> None:
    ops = operations(client)
    assert ("get", "/api/v1/profiles/lookup") in ops
    assert ("get", "/api/v1/profiles/{profile_id}/timeline") in ops
    assert ("post", "/api/v1/merges/{merge_id}/undo") in ops
    assert len(ops) >= 10


def test_an_ingest_key_can_read_nothing(client: Client, ingest_key: str) -> None:
    post(client, "/v1/identify", {"userId": "u1", "traits": {"email": "a@x.com"}}, ingest_key)
    ops = operations(client)
    for method, path in ops:
        response = call(client, method, path, **bearer(ingest_key))
        assert response.status_code in {401, 403}, (method, path, response.status_code)
        body = response.json()
        assert body["code"] in {"unauthorized", "forbidden"}
        assert "a@x.com" not in response.content.decode()


def test_every_endpoint_needs_a_valid_key(client: Client, make_key: Any) -> None:
    from cxm.accounts import actions, keys
    from cxm.core.audit import Actor

    revoked = make_key("admin", name="gone")
    actions.revoke_api_key(prefix=keys.parse_prefix(revoked) or "", actor=Actor("t"))
    for method, path in operations(client):
        for headers in ({}, bearer("cxm_0123456789_" + "y" * 32), bearer(revoked),
                        {"HTTP_AUTHORIZATION": "Basic Zm9vOg=="}):
            response = call(client, method, path, **headers)
            assert response.status_code == 401, (method, path, headers, response.status_code)
            assert response.json()["code"] == "unauthorized"


def test_read_key_cannot_write(client: Client, read_key: str, ingest_key: str) -> None:
    post(client, "/v1/identify", {"userId": "u1"}, ingest_key)
    for method, path in operations(client):
        if method == "get":
            continue
        response = call(client, method, path, **bearer(read_key))
        assert response.status_code == 403, (method, path, response.status_code)


def test_lookup_errors(client: Client, read_key: str, ingest_key: str) -> None:
    post(client, "/v1/identify", {"userId": "u1", "traits": {"email": "a@x.com"}}, ingest_key)
    cases = [
        ({}, 400, "invalid_lookup"),
        ({"email": "a@x.com", "user_id": "u1"}, 400, "invalid_lookup"),
        ({"kind": "email"}, 400, "invalid_lookup"),
        ({"email": "not an email"}, 400, "invalid_email"),
        ({"phone": "12"}, 400, "invalid_phone"),
        ({"kind": "shoe_size", "value": "9"}, 400, "invalid_kind"),
        ({"email": "b@x.com"}, 404, "profile_not_found"),
        ({"user_id": "nobody"}, 404, "profile_not_found"),
        ({"kind": "ext:crm_id", "value": "none"}, 404, "profile_not_found"),
    ]
    for params, status, code in cases:
        response = client.get("/api/v1/profiles/lookup", params, **bearer(read_key))
        assert response.status_code == status, (params, response.content)
        assert response.json()["code"] == code, params
        assert response.json()["message"]


def test_profile_endpoints_errors(client: Client, read_key: str) -> None:
    bad = client.get("/api/v1/profiles/not-a-uuid", **bearer(read_key))
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_profile_id"
    missing = client.get(f"/api/v1/profiles/{uuid.uuid4()}", **bearer(read_key))
    assert missing.status_code == 404 and missing.json()["code"] == "profile_not_found"
    missing = client.get(f"/api/v1/profiles/{uuid.uuid4()}/timeline", **bearer(read_key))
    assert missing.status_code == 404


def make_history(client: Client, key: str) -> Profile:
    """41 events for one user; several share a timestamp; channels vary."""
    channels = ["web", "email", "app", "store"]
    messages = []
    for i in range(41):
        messages.append({
            "type": "track", "userId": "pager", "event": f"Step {i}", "messageId": f"p-{i:02d}",
            # groups of three share a timestamp, and they arrive out of order
            "timestamp": (T + timedelta(minutes=(i * 7 % 41) // 3)).isoformat(),
            "context": {"channel": channels[i % 4]},
        })
    send(client, key, messages)
    return Profile.objects.get()


def page_through(client: Client, key: str, profile: Profile, limit: int,
                 **params: Any) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    cursor = None
    for _ in range(100):
        query = {"limit": limit, **params}
        if cursor:
            query["cursor"] = cursor
        response = client.get(f"/api/v1/profiles/{profile.id}/timeline", query, **bearer(key))
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["profile_id"] == str(profile.id)
        assert len(body["events"]) <= limit
        seen.extend(body["events"])
        cursor = body["next_cursor"]
        if cursor is None:
            return seen
        assert len(body["events"]) == limit
    raise AssertionError("the cursor never ended")


@pytest.mark.parametrize("limit", [1, 4, 7, 41, 500])
def test_timeline_paging_returns_every_event_once_newest_first(
    client: Client, ingest_key: str, read_key: str, limit: int
) -> None:
    profile = make_history(client, ingest_key)
    events = page_through(client, read_key, profile, limit)
    ids = [e["message_id"] for e in events]
    assert len(ids) == len(set(ids)) == 41
    stored = list(Event.objects.filter(profile_id=profile.id).order_by("-timestamp", "-id")
                  .values_list("message_id", flat=True))
    assert ids == stored
    stamps = [e["timestamp"] for e in events]
    assert stamps == sorted(stamps, reverse=True)


def test_timeline_paging_is_stable_while_new_events_arrive(
    client: Client, ingest_key: str, read_key: str
) -> None:
    profile = make_history(client, ingest_key)
    first = client.get(f"/api/v1/profiles/{profile.id}/timeline", {"limit": 10},
                       **bearer(read_key)).json()
    send(client, ingest_key, [{"type": "track", "userId": "pager", "event": "New",
                               "messageId": "new-1", "timestamp": (T + timedelta(days=1))
                               .isoformat()}])
    rest = page_through(client, read_key, profile, 10, cursor=first["next_cursor"])
    ids = [e["message_id"] for e in first["events"]] + [e["message_id"] for e in rest]
    assert "new-1" not in ids
    assert len(ids) == len(set(ids)) == 41


def test_timeline_channel_filter_with_paging(client: Client, ingest_key: str,
                                             read_key: str) -> None:
    profile = make_history(client, ingest_key)
    events = page_through(client, read_key, profile, 3, channel="email")
    assert {e["channel"] for e in events} == {"email"}
    assert sorted(e["message_id"] for e in events) == sorted(
        f"p-{i:02d}" for i in range(41) if i % 4 == 1)
    assert [e["message_id"] for e in events] == list(
        Event.objects.filter(profile_id=profile.id, channel="email")
        .order_by("-timestamp", "-id").values_list("message_id", flat=True))
    first = events[0]
    assert first["type"] == "track" and first["context"]["channel"] == "email"
    assert first["source"].startswith("key:")


def test_timeline_bad_parameters(client: Client, ingest_key: str, read_key: str) -> None:
    profile = make_history(client, ingest_key)
    path = f"/api/v1/profiles/{profile.id}/timeline"
    for params, code in (({"limit": 0}, "invalid_limit"), ({"limit": 501}, "invalid_limit"),
                         ({"channel": "fax"}, "invalid_channel"),
                         ({"cursor": "%%%not-a-cursor"}, "invalid_cursor"),
                         ({"cursor": "bm90LWEtY3Vyc29y"}, "invalid_cursor"),
                         ({"limit": "many"}, "invalid")):
        response = client.get(path, params, **bearer(read_key))
        assert response.status_code == 400, (params, response.content)
        assert response.json()["code"] == code, params


def test_search_and_identities(client: Client, ingest_key: str, read_key: str) -> None:
    send(client, ingest_key, [
        {"type": "identify", "userId": "u1", "traits": {"name": "Grace Hopper",
                                                        "email": "grace@navy.test"}},
        {"type": "identify", "userId": "u2", "traits": {"name": "Alan Turing",
                                                        "phone": "+442079460958"}},
    ])
    grace = profile_of("user_id", "u1")
    search = client.get("/api/v1/profiles", {"q": "hopper"}, **bearer(read_key)).json()
    assert [p["id"] for p in search] == [str(grace.id)]
    by_email = client.get("/api/v1/profiles", {"q": "GRACE@navy.test"}, **bearer(read_key))
    assert [p["id"] for p in by_email.json()] == [str(grace.id)]
    by_phone = client.get("/api/v1/profiles", {"q": "+44 20 7946 0958"}, **bearer(read_key))
    assert [p["name"] for p in by_phone.json()] == ["Alan Turing"]
    everyone = client.get("/api/v1/profiles", **bearer(read_key)).json()
    assert len(everyone) == 2
    bad = client.get("/api/v1/profiles", {"limit": 0}, **bearer(read_key))
    assert bad.status_code == 400
    identities = client.get(f"/api/v1/profiles/{grace.id}/identities",
                            **bearer(read_key)).json()
    assert {(i["kind"], i["value"]) for i in identities} == {("user_id", "u1"),
                                                            ("email", "grace@navy.test")}
    assert all(i["source"].startswith("key:") for i in identities)


def test_search_matches_whole_words_only(client: Client, ingest_key: str,
                                        read_key: str) -> None:
    """Names are encrypted at rest and searched by blind tokens of whole words: any order or
    case of whole words matches, a partial word or a prefix does not (the trade-off)."""
    send(client, ingest_key, [
        {"type": "identify", "userId": "u1", "traits": {"name": "Grace Hopper",
                                                        "email": "grace@navy.test"}}])
    grace = profile_of("user_id", "u1")

    def found(q: str) -> list[str]:
        response = client.get("/api/v1/profiles", {"q": q}, **bearer(read_key))
        assert response.status_code == 200, response.content
        return [p["id"] for p in response.json()]

    for q in ("Grace Hopper", "hopper GRACE", "grace", "grace@navy.test", "Grace@Navy.test"):
        assert found(q) == [str(grace.id)], q
    for q in ("hopp", "Grace Hop", "race", "grace@navy", "navy.test", "Grace Smith"):
        assert found(q) == [], q


def test_lookup_external_id_kind_is_case_insensitive(client: Client, ingest_key: str,
                                                     read_key: str) -> None:
    post(client, "/v1/track", {"event": "X", "context": {"externalIds": [
        {"type": "CRM_ID", "id": "C-1"}]}}, ingest_key)
    response = client.get("/api/v1/profiles/lookup", {"kind": "ext:CRM_ID", "value": "C-1"},
                          **bearer(read_key))
    assert response.status_code == 200
