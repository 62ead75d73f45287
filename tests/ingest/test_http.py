"""The Segment-compatible HTTP endpoints: routing, auth, encodings, limits, errors, idempotency."""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cxm.accounts import actions as key_actions
from cxm.accounts import keys
from cxm.core.audit import Actor
from cxm.core.clock import now
from cxm.identity.models import Identity, Profile
from cxm.ingest.models import Event, Outcome
from tests.helpers import revealed
from tests.ingest.helpers import basic, bearer, post

pytestmark = pytest.mark.django_db

ON_POSTGRES = os.environ.get("CXM_DATABASE_URL", "").startswith("postgres")


def outcomes() -> dict[tuple[str, str], int]:
    found: dict[tuple[str, str], int] = {}
    for row in Outcome.objects.all():
        found[(row.outcome, row.reason)] = found.get((row.outcome, row.reason), 0) + row.count
    return found


def assert_error(response: Any, status: int, code: str, *words: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["success"] is False
    assert body["code"] == code
    for word in words:
        assert word.lower() in body["message"].lower(), body["message"]
    return body


# --- every endpoint lands a row -------------------------------------------------------------

ENDPOINT_CASES = [
    ("track", {"userId": "u1", "event": "Email Opened"}, "track", "email", "Email Opened"),
    ("identify", {"userId": "u1", "traits": {"plan": "pro"}}, "identify", "other", ""),
    ("page", {"anonymousId": "a1", "name": "Pricing"}, "page", "web", "Pricing"),
    ("screen", {"userId": "u1", "name": "Home"}, "screen", "app", "Home"),
    ("group", {"userId": "u1", "groupId": "acme"}, "group", "other", ""),
    ("alias", {"userId": "u1", "previousId": "a1"}, "alias", "other", ""),
]
SHORT = {"track": "t", "identify": "i", "page": "p", "screen": "s", "group": "g", "alias": "a"}


@pytest.mark.parametrize("short", [False, True], ids=["long", "short"])
@pytest.mark.parametrize(("endpoint", "body", "type_", "channel", "name"), ENDPOINT_CASES,
                         ids=[c[0] for c in ENDPOINT_CASES])
def test_each_endpoint_stores_a_row(
    client: Client, ingest_key: str, endpoint: str, body: dict[str, Any], type_: str,
    channel: str, name: str, short: bool,
) -> None:
    path = f"/v1/{SHORT[endpoint] if short else endpoint}"
    response = post(client, path, {**body, "messageId": f"m-{endpoint}"}, ingest_key)
    assert response.status_code == 200, response.content
    assert response.json() == {"success": True, "accepted": 1, "duplicates": 0}
    event = Event.objects.get()
    assert (event.message_id, event.type, event.channel, event.name) == (
        f"m-{endpoint}", type_, channel, name)
    assert revealed(event).get("userId", "") == body.get("userId", "")
    assert event.source == f"key:{keys.parse_prefix(ingest_key)}"
    assert event.profile_id is not None
    assert Profile.objects.filter(id=event.profile_id, event_count=1).exists()
    assert "writeKey" not in event.payload


@pytest.mark.parametrize("path", ["/v1/batch", "/v1/b", "/v1/import", "/v1/m"])
def test_batch_endpoints_store_every_type(client: Client, ingest_key: str, path: str) -> None:
    batch = [{**body, "type": type_, "messageId": f"b-{type_}"}
             for _, body, type_, _, _ in ENDPOINT_CASES]
    response = post(client, path, {"batch": batch}, ingest_key)
    assert response.status_code == 200, response.content
    assert response.json() == {"success": True, "accepted": 6, "duplicates": 0, "rejected": []}
    stored = dict(Event.objects.values_list("message_id", "type"))
    assert stored == {f"b-{t}": t for _, _, t, _, _ in ENDPOINT_CASES}
    channels = dict(Event.objects.values_list("type", "channel"))
    assert channels == {t: c for _, _, t, c, _ in ENDPOINT_CASES}


def test_the_url_decides_the_type_of_a_single_message(client: Client, ingest_key: str) -> None:
    response = post(client, "/v1/page", {"type": "track", "anonymousId": "a", "name": "Home"},
                    ingest_key)
    assert response.status_code == 200
    assert Event.objects.get().type == "page"


def test_text_plain_body_from_analytics_js(client: Client, ingest_key: str) -> None:
    body = orjson.dumps({"anonymousId": "a", "event": "Clicked", "writeKey": ingest_key,
                         "context": {"library": {"name": "analytics.js"}}})
    response = client.post("/v1/t", data=body, content_type="text/plain")
    assert response.status_code == 200, response.content
    assert Event.objects.get().channel == "web"


# --- authentication --------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["basic", "basic-with-password", "bearer", "body"])
def test_write_key_accepted_as_basic_bearer_or_body(client: Client, ingest_key: str,
                                                     how: str) -> None:
    message: dict[str, Any] = {"userId": "u1", "event": "X"}
    headers: dict[str, str] = {}
    if how == "basic":
        headers = basic(ingest_key)
    elif how == "basic-with-password":
        import base64

        headers = {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(
            f"{ingest_key}:ignored".encode()).decode()}
    elif how == "bearer":
        headers = bearer(ingest_key)
    else:
        message["writeKey"] = ingest_key
    response = post(client, "/v1/track", message, **headers)
    assert response.status_code == 200, response.content
    assert Event.objects.count() == 1


def test_missing_wrong_revoked_and_expired_keys_get_401(
    client: Client, make_key: Callable[..., str]
) -> None:
    message = {"userId": "u1", "event": "X"}
    assert_error(post(client, "/v1/track", message), 401, "unauthorized", "write key")
    assert_error(post(client, "/v1/track", message, "cxm_0123456789_" + "x" * 32), 401,
                 "unauthorized")
    assert_error(post(client, "/v1/track", message, "not-a-key"), 401, "unauthorized")
    assert_error(post(client, "/v1/track", message, HTTP_AUTHORIZATION="Basic !!!notbase64"),
                 401, "unauthorized", "basic")
    assert_error(post(client, "/v1/track", {**message, "writeKey": 12}), 401, "unauthorized")

    revoked = make_key("ingest", name="revoked")
    key_actions.revoke_api_key(prefix=keys.parse_prefix(revoked) or "", actor=Actor("t"))
    assert_error(post(client, "/v1/track", message, revoked), 401, "unauthorized", "revoked")

    _, expired = key_actions.create_api_key(name="old", scope="ingest", actor=Actor("t"),
                                            expires_at=now() - timedelta(minutes=1))
    assert_error(post(client, "/v1/batch", {"batch": [message]}, expired), 401, "unauthorized")
    assert Event.objects.count() == 0
    assert outcomes()[("rejected", "unauthorized")] == 7


def test_read_key_cannot_ingest_but_admin_can(client: Client, read_key: str,
                                               admin_key: str) -> None:
    message = {"userId": "u1", "event": "X"}
    assert_error(post(client, "/v1/track", message, read_key), 403, "forbidden", "ingest")
    assert_error(post(client, "/v1/batch", {"batch": [message]}, read_key), 403, "forbidden")
    assert Event.objects.count() == 0
    assert post(client, "/v1/track", message, admin_key).status_code == 200


def test_key_default_channel_applies(client: Client, make_key: Callable[..., str]) -> None:
    pos = make_key("ingest", name="pos", channel="store")
    post(client, "/v1/track", {"userId": "u", "event": "Order Completed", "messageId": "1"}, pos)
    post(client, "/v1/track", {"userId": "u", "event": "Email Opened", "messageId": "2"}, pos)
    assert dict(Event.objects.values_list("message_id", "channel")) == {"1": "store",
                                                                         "2": "email"}


# --- encodings and size limits ---------------------------------------------------------------


def test_gzip_and_deflate_bodies(client: Client, ingest_key: str) -> None:
    response = post(client, "/v1/batch", {"batch": [{"type": "track", "userId": "u",
                                                     "event": "Z", "messageId": "gz"}]},
                    ingest_key, compress=True)
    assert response.status_code == 200, response.content
    deflated = zlib.compress(orjson.dumps({"userId": "u", "event": "D", "messageId": "df"}))
    response = post(client, "/v1/track", None, ingest_key, raw=deflated,
                    HTTP_CONTENT_ENCODING="deflate")
    assert response.status_code == 200, response.content
    assert set(Event.objects.values_list("message_id", flat=True)) == {"gz", "df"}


def test_malformed_compressed_bodies_get_400(client: Client, ingest_key: str) -> None:
    body = orjson.dumps({"userId": "u", "event": "X"})
    assert_error(post(client, "/v1/track", None, ingest_key, raw=b"not gzip at all",
                      HTTP_CONTENT_ENCODING="gzip"), 400, "invalid_encoding", "gzip")
    truncated = gzip.compress(body)[:-12]
    assert_error(post(client, "/v1/track", None, ingest_key, raw=truncated,
                      HTTP_CONTENT_ENCODING="gzip"), 400, "invalid_encoding")
    assert_error(post(client, "/v1/track", None, ingest_key, raw=b"\x00\x01garbage",
                      HTTP_CONTENT_ENCODING="deflate"), 400, "invalid_encoding")
    assert_error(post(client, "/v1/track", None, ingest_key, raw=body,
                      HTTP_CONTENT_ENCODING="br"), 415, "unsupported_encoding", "gzip")
    assert Event.objects.count() == 0


def test_oversize_single_message_gets_413(client: Client, ingest_key: str) -> None:
    big = {"userId": "u", "event": "X", "properties": {"blob": "x" * (33 * 1024)}}
    assert_error(post(client, "/v1/track", big, ingest_key), 413, "payload_too_large", "limit")
    # also when it arrives compressed (the limit applies to the inflated body)
    assert_error(post(client, "/v1/track", big, ingest_key, compress=True), 413,
                 "payload_too_large")
    ok = {"userId": "u", "event": "X", "properties": {"blob": "x" * (30 * 1024)}}
    assert post(client, "/v1/track", ok, ingest_key).status_code == 200
    assert Event.objects.count() == 1


def test_oversize_batch_gets_413_and_stores_nothing(client: Client, ingest_key: str) -> None:
    batch = [{"type": "track", "userId": "u", "event": "X", "messageId": f"m{i}",
              "properties": {"blob": "y" * 20_000}} for i in range(26)]  # ~520 KB
    assert_error(post(client, "/v1/batch", {"batch": batch}, ingest_key), 413,
                 "payload_too_large")
    assert_error(post(client, "/v1/batch", {"batch": batch}, ingest_key, compress=True), 413,
                 "payload_too_large")
    assert Event.objects.count() == 0
    assert post(client, "/v1/batch", {"batch": batch[:20]}, ingest_key).status_code == 200
    assert Event.objects.count() == 20


def test_oversize_message_inside_a_batch_is_rejected_alone(client: Client,
                                                           ingest_key: str) -> None:
    batch = [{"type": "track", "userId": "u", "event": "X", "messageId": "small"},
             {"type": "track", "userId": "u", "event": "X", "messageId": "big",
              "properties": {"blob": "z" * (40 * 1024)}}]
    response = post(client, "/v1/batch", {"batch": batch}, ingest_key)
    assert response.status_code == 200
    rejected = response.json()["rejected"]
    assert [(r["index"], r["messageId"], r["code"]) for r in rejected] == [
        (1, "big", "message_too_large")]
    assert list(Event.objects.values_list("message_id", flat=True)) == ["small"]


# --- malformed requests: clear 4xx, never 5xx ------------------------------------------------


@pytest.mark.parametrize(("path", "raw", "status", "code", "word"), [
    ("/v1/track", b"{not json", 400, "invalid_json", "JSON"),
    ("/v1/track", b"", 400, "invalid_json", "empty"),
    ("/v1/track", b"   \n", 400, "invalid_json", "empty"),
    ("/v1/batch", b"", 400, "invalid_json", "empty"),
    ("/v1/track", b"[1, 2]", 400, "invalid_message", "object"),
    ("/v1/track", b"null", 400, "invalid_message", "object"),
    ("/v1/track", b"\"text\"", 400, "invalid_message", "object"),
    ("/v1/batch", b"[]", 400, "invalid_message", "object"),
    ("/v1/batch", b"{}", 400, "invalid_batch", "batch"),
    ("/v1/batch", b"{\"batch\": {}}", 400, "invalid_batch", "list"),
    ("/v1/batch", b"{\"batch\": []}", 400, "invalid_batch", "empty"),
    ("/v1/batch", b"{\"batch\": [{}], \"sentAt\": \"soon\"}", 400, "invalid_timestamp",
     "sentAt"),
    ("/v1/track", b"{\"userId\": \"u\"}", 400, "missing_event", "event"),
    ("/v1/identify", b"{\"traits\": {}}", 400, "missing_identifier", "userId"),
    ("/v1/track", b"\xff\xfe\x00garbage", 400, "invalid_json", "JSON"),
])
def test_malformed_requests_get_a_clear_400(client: Client, ingest_key: str, path: str,
                                             raw: bytes, status: int, code: str,
                                             word: str) -> None:
    response = post(client, path, None, ingest_key, raw=raw)
    assert_error(response, status, code, word)
    assert Event.objects.count() == 0


def test_other_methods_and_cors_preflight(client: Client) -> None:
    response = client.get("/v1/track")
    assert_error(response, 405, "method_not_allowed")
    preflight = client.options("/v1/batch")
    assert preflight.status_code == 204
    assert preflight["Access-Control-Allow-Origin"] == "*"
    assert "Authorization" in preflight["Access-Control-Allow-Headers"]


def test_rejections_by_code_are_counted_in_outcomes(client: Client, ingest_key: str) -> None:
    post(client, "/v1/track", None, ingest_key, raw=b"{oops")
    post(client, "/v1/track", {"userId": "u"}, ingest_key)
    post(client, "/v1/track", {"event": "X"}, ingest_key)
    counts = outcomes()
    assert counts[("rejected", "invalid_json")] == 1
    assert counts[("rejected", "missing_event")] == 1
    assert counts[("rejected", "missing_identifier")] == 1


@pytest.mark.parametrize("body", [
    {"timestamp": "0001-01-01T00:00:00+01:00"},
    {"timestamp": "9999-12-31T23:59:59-01:00"},
    {"timestamp": "0001-01-01T00:00:00Z", "sentAt": "9999-01-01T00:00:00Z"},
    {"timestamp": "2025-01-01T00:00:00Z", "sentAt": "0001-01-01T00:00:00+00:00"},
])
def test_timestamps_out_of_range_are_a_400_not_a_500(client: Client, ingest_key: str,
                                                     body: dict[str, str]) -> None:
    client.raise_request_exception = False
    response = post(client, "/v1/track", {"userId": "u", "event": "X", **body}, ingest_key)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_timestamp"


@pytest.mark.parametrize("body", [
    {"userId": "u", "event": "X", "properties": {"note": "a\u0000b"}},
    {"userId": "u\u0000v", "event": "X"},
    {"userId": "u", "event": "X\u0000"},
])
def test_nul_characters_never_cause_a_5xx(client: Client, ingest_key: str,
                                          body: dict[str, Any]) -> None:
    client.raise_request_exception = False
    response = post(client, "/v1/track", body, ingest_key)
    assert response.status_code in {200, 400}, response.content
    if response.status_code == 400:
        assert response.json()["code"]
    else:
        assert Event.objects.count() == 1


JSON_LEAF = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
                      st.floats(allow_nan=False, allow_infinity=False),
                      st.text(alphabet=st.characters(blacklist_categories=["Cs", "Cc"]),
                              max_size=12),
                      st.sampled_from(["track", "identify", "page", "alias", "group", "screen",
                                       "2024-05-01T10:00:00Z", "a@b.co", "+14155552671"]))
JSON = st.recursive(JSON_LEAF, lambda inner: st.one_of(
    st.lists(inner, max_size=3),
    st.dictionaries(st.sampled_from(["type", "id", "email", "phone", "channel", "traits",
                                     "externalIds", "consent", "categoryPreferences",
                                     "name", "x"]), inner, max_size=4)), max_leaves=8)
FIELDS = ["type", "event", "userId", "anonymousId", "messageId", "timestamp", "sentAt",
          "originalTimestamp", "context", "properties", "traits", "previousId", "groupId",
          "name", "integrations"]
MESSAGE = st.dictionaries(st.sampled_from(FIELDS), JSON, max_size=7)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(batch=st.lists(st.one_of(MESSAGE, JSON), min_size=1, max_size=4),
       shared=st.one_of(st.none(), JSON))
def test_random_batches_never_cause_a_5xx(client: Client, ingest_key: str, batch: list[Any],
                                          shared: Any) -> None:
    body: dict[str, Any] = {"batch": batch}
    if shared is not None:
        body["context"] = shared
    response = post(client, "/v1/batch", body, ingest_key)
    assert response.status_code in {200, 400}, response.content
    result = response.json()
    if response.status_code == 200:
        assert result["accepted"] + result["duplicates"] + len(result["rejected"]) == len(batch)
    for rejection in result.get("rejected", []):
        assert 0 <= rejection["index"] < len(batch) and rejection["code"]


# --- batches, idempotency, outcomes ----------------------------------------------------------


def test_batch_with_one_bad_message_keeps_the_rest(client: Client, ingest_key: str) -> None:
    batch = [
        {"type": "track", "userId": "u1", "event": "A", "messageId": "ok-1"},
        {"type": "track", "userId": "u1", "messageId": "no-event"},
        "not an object",
        {"type": "identify", "userId": "u1", "traits": {"plan": "pro"}, "messageId": "ok-2"},
        {"type": "launch", "userId": "u1", "messageId": "bad-type"},
    ]
    response = post(client, "/v1/batch", {"batch": batch}, ingest_key)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["success"] is True and body["accepted"] == 2 and body["duplicates"] == 0
    assert [(r["index"], r["messageId"], r["code"]) for r in body["rejected"]] == [
        (1, "no-event", "missing_event"), (2, None, "invalid_message"),
        (4, "bad-type", "invalid_type")]
    assert all(r["message"] for r in body["rejected"])
    assert set(Event.objects.values_list("message_id", flat=True)) == {"ok-1", "ok-2"}
    counts = outcomes()
    assert counts[("accepted", "")] == 2
    assert counts[("rejected", "missing_event")] == 1
    assert counts[("rejected", "invalid_type")] == 1


def test_batch_where_every_message_is_bad_gets_400_listing_them(client: Client,
                                                                ingest_key: str) -> None:
    response = post(client, "/v1/batch", {"batch": [{"type": "track"}, {"userId": "u"}]},
                    ingest_key)
    body = assert_error(response, 400, "missing_event", "no message was accepted")
    assert [r["code"] for r in body["rejected"]] == ["missing_event", "missing_type"]


def test_retried_message_is_stored_once_and_counted_once(client: Client,
                                                         ingest_key: str) -> None:
    message = {"userId": "u1", "event": "Order Completed", "messageId": "order-1",
               "properties": {"total": 10}}
    first = post(client, "/v1/track", message, ingest_key)
    assert first.json() == {"success": True, "accepted": 1, "duplicates": 0}
    for _ in range(3):
        again = post(client, "/v1/track", message, ingest_key)
        assert again.status_code == 200
        assert again.json()["success"] is True and again.json()["accepted"] == 0
    # a retry through the batch endpoint, twice in one batch, alongside a new message
    batch = [{**message, "type": "track"}, {**message, "type": "track"},
             {"type": "track", "userId": "u1", "event": "Other", "messageId": "order-2"},
             {"type": "track", "userId": "u1", "event": "Other", "messageId": "order-2"}]
    response = post(client, "/v1/batch", {"batch": batch}, ingest_key)
    assert response.status_code == 200
    assert response.json()["accepted"] == 1 and response.json()["rejected"] == []
    assert Event.objects.filter(message_id="order-1").count() == 1
    assert Event.objects.count() == 2
    profile = Profile.objects.get(merged_into__isnull=True)
    assert profile.event_count == 2
    assert outcomes()[("accepted", "")] == 2


def test_repeats_within_one_batch_are_reported_as_duplicates(client: Client,
                                                             ingest_key: str) -> None:
    batch = [{"type": "track", "userId": "u1", "event": "A", "messageId": "same"}] * 3
    response = post(client, "/v1/batch", {"batch": batch}, ingest_key)
    assert response.json() == {"success": True, "accepted": 1, "duplicates": 2, "rejected": []}
    assert Profile.objects.get().event_count == 1
    assert outcomes() == {("accepted", ""): 1, ("duplicate", ""): 2}


def test_a_retry_of_a_stored_message_is_reported_as_a_duplicate(client: Client,
                                                                ingest_key: str) -> None:
    message = {"userId": "u1", "event": "Order Completed", "messageId": "order-1"}
    post(client, "/v1/track", message, ingest_key)
    again = post(client, "/v1/track", message, ingest_key)
    assert again.json() == {"success": True, "accepted": 0, "duplicates": 1}
    batch = [{**message, "type": "track"}, {**message, "type": "track"},
             {"type": "track", "userId": "u1", "event": "Other", "messageId": "order-2"}]
    response = post(client, "/v1/batch", {"batch": batch}, ingest_key)
    assert response.json() == {"success": True, "accepted": 1, "duplicates": 2, "rejected": []}
    assert outcomes() == {("accepted", ""): 2, ("duplicate", ""): 3}


def test_timestamped_messages_without_message_id_are_deduplicated(client: Client,
                                                                  ingest_key: str) -> None:
    message = {"userId": "u1", "event": "Viewed", "timestamp": "2025-01-01T10:00:00Z"}
    post(client, "/v1/track", {**message, "sentAt": "2025-01-01T10:00:01Z"}, ingest_key)
    response = post(client, "/v1/track", {**message, "sentAt": "2025-01-01T10:05:00Z"},
                    ingest_key)
    assert response.status_code == 200 and response.json()["accepted"] == 0
    assert Event.objects.count() == 1
    assert Profile.objects.get().event_count == 1


def test_batch_context_and_sent_at_apply_to_each_message(client: Client,
                                                         ingest_key: str) -> None:
    sent = datetime.now(UTC).replace(microsecond=0)
    original = sent - timedelta(seconds=30)
    body = {
        "sentAt": sent.isoformat(), "context": {"channel": "pos", "locale": "en-GB"},
        "batch": [
            {"type": "track", "userId": "u1", "event": "Bought", "messageId": "s1",
             "timestamp": original.isoformat()},
            {"type": "track", "userId": "u1", "event": "Bought", "messageId": "s2",
             "context": {"channel": "email"}},
        ],
    }
    before = now()
    assert post(client, "/v1/batch", body, ingest_key).status_code == 200
    after = now()
    first = Event.objects.get(message_id="s1")
    second = Event.objects.get(message_id="s2")
    assert first.channel == "store" and second.channel == "email"
    assert first.payload["context"]["locale"] == "en-GB"
    assert second.payload["context"]["locale"] == "en-GB"
    # corrected: receivedAt - (sentAt - originalTimestamp) = receivedAt - 30 s
    assert first.sent_at == sent
    assert before - timedelta(seconds=31) <= first.timestamp <= after - timedelta(seconds=29)
    assert first.received_at - first.timestamp == timedelta(seconds=30)


def test_ingest_writes_profile_audit_rows(client: Client, ingest_key: str) -> None:
    from cxm.core.models import AuditLog

    post(client, "/v1/identify", {"userId": "u1", "traits": {"email": "a@x.com",
                                                               "plan": "pro"}}, ingest_key)
    profile = Profile.objects.get()
    actor = f"key:{keys.parse_prefix(ingest_key)}"
    # A new profile's one row names the identities it was created with and the traits its
    # first batch gave it (no separate identity.linked or profile.traits_changed row).
    created = AuditLog.objects.get(action="profile.created", target_id=str(profile.id))
    assert created.actor == actor
    assert sorted(created.changes["linked"]) == ["email", "user_id"]
    assert created.changes["traits"] == ["email", "plan"]
    assert not AuditLog.objects.filter(action="identity.linked").exists()
    assert not AuditLog.objects.filter(action="profile.traits_changed").exists()
    # A stored profile whose traits change gets profile.traits_changed.
    post(client, "/v1/identify", {"userId": "u1", "traits": {"plan": "team"}}, ingest_key)
    traits = AuditLog.objects.get(action="profile.traits_changed", target_id=str(profile.id))
    assert traits.changes == {"keys": ["plan"]}
    # A stored profile that gains an identity gets an identity.linked row.
    post(client, "/v1/identify", {"userId": "u1", "anonymousId": "anon-9"}, ingest_key)
    linked = AuditLog.objects.get(action="identity.linked", target_id=str(profile.id))
    assert linked.changes == {"kinds": ["anonymous_id"]}
    assert AuditLog.objects.filter(action="profile.created").count() == 1
    assert "a@x.com" not in str(AuditLog.objects.values_list("changes", flat=True))
    assert Identity.objects.filter(profile=profile).count() == 3
