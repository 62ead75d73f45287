"""The Segment spec module: validation codes, timestamps, channels and identifiers (no DB)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cxm.ingest import spec
from cxm.ingest.spec import SpecError, normalize

RECEIVED = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


def norm(raw: Any, **kwargs: Any) -> spec.Message:
    return normalize(raw, received_at=RECEIVED, **kwargs)


def error_code(raw: Any, **kwargs: Any) -> str:
    with pytest.raises(SpecError) as caught:
        norm(raw, **kwargs)
    assert caught.value.message  # a human message always comes with the code
    return caught.value.code


# --- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "code", "names"),
    [
        ([1, 2], "invalid_message", "object"),
        ("track", "invalid_message", "object"),
        ({"userId": "u1", "event": "X"}, "missing_type", "type"),
        ({"type": "", "userId": "u1"}, "missing_type", "type"),
        ({"type": 5, "userId": "u1"}, "missing_type", "type"),
        ({"type": "purchase", "userId": "u1"}, "invalid_type", "purchase"),
        ({"type": "track", "userId": "u1"}, "missing_event", "event"),
        ({"type": "track", "userId": "u1", "event": "   "}, "missing_event", "event"),
        ({"type": "track", "userId": "u1", "event": 7}, "missing_event", "event"),
        ({"type": "track", "userId": "u1", "event": "E" * 201}, "invalid_event", "200"),
        ({"type": "alias", "userId": "u1"}, "missing_id", "previousId"),
        ({"type": "alias", "previousId": "a1"}, "missing_id", "userId"),
        ({"type": "alias", "previousId": "a1", "anonymousId": "a2"}, "missing_id", "userId"),
        ({"type": "group", "userId": "u1"}, "missing_id", "groupId"),
        ({"type": "group", "userId": "u1", "groupId": "  "}, "missing_id", "groupId"),
        ({"type": "track", "event": "X"}, "missing_identifier", "userId"),
        ({"type": "identify", "userId": "  ", "anonymousId": ""}, "missing_identifier",
         "anonymousId"),
        ({"type": "identify", "traits": {"email": "not-an-email"}}, "missing_identifier",
         "userId"),
        ({"type": "track", "event": "X", "userId": "u", "timestamp": "yesterday"},
         "invalid_timestamp", "timestamp"),
        ({"type": "track", "event": "X", "userId": "u", "timestamp": 1700000000},
         "invalid_timestamp", "timestamp"),
        ({"type": "track", "event": "X", "userId": "u", "sentAt": "2025-13-01T00:00:00Z"},
         "invalid_timestamp", "sentAt"),
        ({"type": "track", "event": "X", "userId": "u", "originalTimestamp": "nope"},
         "invalid_timestamp", "originalTimestamp"),
        ({"type": "track", "event": "X", "userId": "u", "timestamp": "0001-01-01T00:00:00+01:00"},
         "invalid_timestamp", "timestamp"),
        ({"type": "track", "event": "X", "userId": "u", "timestamp": "1969-12-31T23:59:59Z"},
         "invalid_timestamp", "timestamp"),
        ({"type": "track", "event": "X", "userId": "u", "timestamp": "9999-12-31T23:59:59-01:00"},
         "invalid_timestamp", "timestamp"),
        ({"type": "track", "event": "X", "userId": "u", "timestamp": "1971-01-01T00:00:00Z",
          "sentAt": "8999-01-01T00:00:00Z"}, "invalid_timestamp", "timestamp"),
        ({"type": "track", "event": "X", "userId": "u", "properties": [1]}, "invalid_field",
         "properties"),
        ({"type": "track", "event": "X", "userId": "u", "properties": "a=1"}, "invalid_field",
         "properties"),
        ({"type": "track", "event": "X", "userId": "u", "context": "web"}, "invalid_field",
         "context"),
        ({"type": "identify", "userId": "u", "traits": ["email"]}, "invalid_field", "traits"),
        ({"type": "track", "event": "X", "userId": "u", "integrations": 1}, "invalid_field",
         "integrations"),
        ({"type": "track", "event": "X", "userId": "u", "context": {"traits": "x"}},
         "invalid_field", "context.traits"),
        ({"type": "page", "userId": "u", "name": 12}, "invalid_field", "name"),
        ({"type": "track", "event": "X", "userId": "u", "context": {"externalIds": {}}},
         "invalid_field", "externalIds"),
        ({"type": "track", "event": "X", "userId": "u", "context": {"externalIds": ["x"]}},
         "invalid_field", "externalIds"),
        ({"type": "track", "event": "X", "userId": "u",
          "context": {"externalIds": [{"type": "CRM ID!", "id": "1"}]}},
         "invalid_field", "type"),
        ({"type": "track", "event": "X", "userId": "u" * 256}, "invalid_id", "userId"),
        ({"type": "track", "event": "X", "anonymousId": "a" * 256}, "invalid_id", "anonymousId"),
        ({"type": "track", "event": "X", "userId": "u", "messageId": "m" * 256}, "invalid_id",
         "messageId"),
        ({"type": "group", "userId": "u", "groupId": "g" * 256}, "invalid_id", "groupId"),
        ({"type": "track", "event": "X", "userId": {"id": 1}}, "invalid_id", "userId"),
        ({"type": "track", "event": "X", "userId": True}, "invalid_id", "userId"),
    ],
)
def test_validation_errors_have_stable_codes_and_name_the_field(
    raw: Any, code: str, names: str
) -> None:
    with pytest.raises(SpecError) as caught:
        norm(raw)
    assert caught.value.code == code
    assert names.lower() in caught.value.message.lower()


def test_ids_of_exactly_the_maximum_length_are_accepted() -> None:
    message = norm({"type": "track", "event": "X", "userId": "u" * 255,
                    "messageId": "m" * 255})
    assert message.user_id == "u" * 255
    assert message.message_id == "m" * 255


def test_type_is_case_insensitive_and_forced_type_wins() -> None:
    assert norm({"type": " Identify ", "userId": "u"}).type == "identify"
    forced = norm({"type": "identify", "userId": "u", "event": "Clicked"}, forced_type="track")
    assert forced.type == "track"
    assert forced.name == "Clicked"
    assert forced.payload["type"] == "track"


def test_numeric_user_ids_become_strings_and_blank_ids_are_absent() -> None:
    message = norm({"type": "identify", "userId": 42, "anonymousId": "  "})
    assert message.user_id == "42"
    assert message.anonymous_id is None
    assert message.identifiers == [("user_id", "42")]


def test_page_and_screen_names_and_write_key_is_not_stored() -> None:
    page = norm({"type": "page", "anonymousId": "a", "name": " Pricing ", "writeKey": "secret"})
    assert page.name == "Pricing"
    assert "writeKey" not in page.payload
    screen = norm({"type": "screen", "anonymousId": "a"})
    assert screen.name == ""


def test_message_id_is_kept_or_generated() -> None:
    assert norm({"type": "identify", "userId": "u", "messageId": " m-1 "}).message_id == "m-1"
    untimed = {"type": "identify", "userId": "u"}
    first, second = norm(untimed).message_id, norm(untimed).message_id
    assert first.startswith("auto-") and second.startswith("auto-")
    assert first != second  # two untimed identical calls are two events
    timed = {"type": "identify", "userId": "u", "timestamp": "2025-01-01T00:00:00Z"}
    retry = {**timed, "sentAt": "2025-01-01T00:00:05Z", "writeKey": "k"}
    assert norm(timed).message_id == norm(retry).message_id  # a retry is recognised
    other = {**timed, "traits": {"plan": "pro"}}
    assert norm(other).message_id != norm(timed).message_id


# --- timestamps -----------------------------------------------------------------------------


def test_parse_time_forms() -> None:
    assert spec.parse_time(None, "t") is None
    assert spec.parse_time("", "t") is None
    assert spec.parse_time("2025-01-01T10:00:00Z", "t") == datetime(2025, 1, 1, 10, tzinfo=UTC)
    assert spec.parse_time("2025-01-01T12:00:00+02:00", "t") == datetime(2025, 1, 1, 10,
                                                                          tzinfo=UTC)
    naive = spec.parse_time("2025-01-01T10:00:00", "t")
    assert naive == datetime(2025, 1, 1, 10, tzinfo=UTC)
    assert naive is not None and naive.tzinfo is not None


def test_no_timestamp_means_received_at() -> None:
    message = norm({"type": "track", "event": "X", "userId": "u"})
    assert message.timestamp == RECEIVED
    assert message.original_timestamp is None
    assert message.sent_at is None
    assert message.received_at == RECEIVED


def test_timestamp_without_sent_at_is_taken_as_is() -> None:
    message = norm({"type": "track", "event": "X", "userId": "u",
                    "timestamp": "2024-06-01T08:00:00Z"})
    assert message.timestamp == datetime(2024, 6, 1, 8, tzinfo=UTC)


def test_clock_skew_is_corrected_with_sent_at() -> None:
    # The device clock is 1 hour fast: it says it sent at 13:00:10 what happened at 13:00:00.
    message = norm({"type": "track", "event": "X", "userId": "u",
                    "timestamp": "2025-03-01T13:00:00Z", "sentAt": "2025-03-01T13:00:10Z"})
    assert message.timestamp == RECEIVED - timedelta(seconds=10)
    assert message.original_timestamp == datetime(2025, 3, 1, 13, tzinfo=UTC)
    assert message.sent_at == datetime(2025, 3, 1, 13, 0, 10, tzinfo=UTC)


def test_original_timestamp_is_used_when_timestamp_is_absent() -> None:
    message = norm({"type": "track", "event": "X", "userId": "u",
                    "originalTimestamp": "2025-03-01T11:59:00Z",
                    "sentAt": "2025-03-01T11:59:30Z"})
    assert message.timestamp == RECEIVED - timedelta(seconds=30)
    assert message.original_timestamp == datetime(2025, 3, 1, 11, 59, tzinfo=UTC)


def test_batch_sent_at_applies_when_the_message_has_none() -> None:
    batch_sent = datetime(2025, 3, 1, 9, 0, 5, tzinfo=UTC)
    message = norm({"type": "track", "event": "X", "userId": "u",
                    "timestamp": "2025-03-01T09:00:00Z"}, batch_sent_at=batch_sent)
    assert message.timestamp == RECEIVED - timedelta(seconds=5)
    own = norm({"type": "track", "event": "X", "userId": "u", "timestamp": "2025-03-01T09:00:00Z",
                "sentAt": "2025-03-01T09:00:02Z"}, batch_sent_at=batch_sent)
    assert own.timestamp == RECEIVED - timedelta(seconds=2)


def test_corrected_timestamp_function() -> None:
    original = datetime(2020, 1, 1, tzinfo=UTC)
    assert spec.corrected_timestamp(None, None, RECEIVED) == RECEIVED
    assert spec.corrected_timestamp(None, original, RECEIVED) == RECEIVED
    assert spec.corrected_timestamp(original, None, RECEIVED) == original
    sent = original + timedelta(minutes=3)
    assert spec.corrected_timestamp(original, sent, RECEIVED) == RECEIVED - timedelta(minutes=3)


def test_timestamps_in_other_zones_are_stored_in_utc() -> None:
    message = norm({"type": "track", "event": "X", "userId": "u",
                    "timestamp": "2024-06-01T10:00:00-05:00"})
    assert message.timestamp == datetime(2024, 6, 1, 15, tzinfo=UTC)
    assert message.timestamp.utcoffset() == timedelta(0)


# --- channels -------------------------------------------------------------------------------


def channel(raw: dict[str, Any], **kwargs: Any) -> str:
    base = {"anonymousId": "a"}
    return norm({**base, **raw}, **kwargs).channel


@pytest.mark.parametrize(
    ("value", "expected"),
    [("email", "email"), ("EMAIL", "email"), (" chat ", "chat"), ("mobile", "app"),
     ("ios", "app"), ("pos", "store"), ("in-store", "store"), ("sms", "phone"),
     ("voice", "phone"), ("zendesk", "support"), ("whatsapp", "chat"), ("facebook", "social"),
     ("browser", "web"), ("device", "iot"), ("survey", "survey")],
)
def test_explicit_context_channel_and_aliases(value: str, expected: str) -> None:
    assert channel({"type": "track", "event": "Anything", "context": {"channel": value}}) == (
        expected)


def test_properties_channel_is_read_when_context_has_none() -> None:
    assert channel({"type": "track", "event": "Bought", "properties": {"channel": "pos"}}) == (
        "store")


def test_unknown_explicit_channel_falls_through_to_hints() -> None:
    assert channel({"type": "track", "event": "Bought", "context": {"channel": "server"}}) == (
        "other")
    assert channel({"type": "page", "context": {"channel": "server"}}) == "web"


@pytest.mark.parametrize(
    ("event", "expected"),
    [("Email Opened", "email"), ("email clicked", "email"), ("Survey Completed", "survey"),
     ("Ticket Created", "support"), ("Case Closed", "support"), ("Chat Started", "chat"),
     ("Call Ended", "phone"), ("SMS Delivered", "phone"), ("Social Mention", "social"),
     ("Device Heartbeat", "iot"), ("Emailed Support", "other"), ("Order Completed", "other")],
)
def test_event_name_prefixes(event: str, expected: str) -> None:
    assert channel({"type": "track", "event": event}) == expected


def test_explicit_channel_beats_event_prefix_and_prefix_beats_key_default() -> None:
    assert channel({"type": "track", "event": "Email Opened",
                    "context": {"channel": "app"}}) == "app"
    assert channel({"type": "track", "event": "Email Opened"}, default_channel="store") == (
        "email")


def test_key_default_channel() -> None:
    assert channel({"type": "track", "event": "Order Completed"}, default_channel="store") == (
        "store")
    assert channel({"type": "track", "event": "Order Completed",
                    "context": {"channel": "web"}}, default_channel="store") == "web"


def test_app_hints() -> None:
    assert channel({"type": "screen", "name": "Home"}) == "app"
    assert channel({"type": "track", "event": "Opened",
                    "context": {"app": {"name": "Shop", "version": "1.2"}}}) == "app"
    assert channel({"type": "track", "event": "Opened",
                    "context": {"os": {"name": "iOS"}}}) == "app"
    assert channel({"type": "track", "event": "Opened",
                    "context": {"os": {"name": "Android"}}}) == "app"
    assert channel({"type": "track", "event": "Opened",
                    "context": {"os": {"name": "Windows"}}}) == "other"


def test_web_hints() -> None:
    assert channel({"type": "page", "name": "Pricing"}) == "web"
    assert channel({"type": "track", "event": "Clicked",
                    "context": {"page": {"url": "https://x.test/"}}}) == "web"
    assert channel({"type": "track", "event": "Clicked",
                    "context": {"library": {"name": "analytics.js", "version": "4"}}}) == "web"
    assert channel({"type": "track", "event": "Clicked",
                    "context": {"library": {"name": "analytics-next"}}}) == "web"
    assert channel({"type": "identify"}) == "other"


def test_page_and_screen_names_are_not_read_as_event_prefixes() -> None:
    assert channel({"type": "page", "name": "Email Preferences"}) == "web"
    assert channel({"type": "screen", "name": "Chat Support"}) == "app"


def test_every_derived_channel_is_a_known_channel() -> None:
    for raw in ({"type": "track", "event": "X", "context": {"channel": "fax"}},
                {"type": "page"}, {"type": "screen"}, {"type": "group", "groupId": "g"}):
        assert channel(raw) in spec.CHANNELS


# --- email, phone, identifiers ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(" Alice@Example.COM ", "alice@example.com"), ("bob@shop.co.uk", "bob@shop.co.uk"),
     ("not-an-email", None), ("a@b", None), ("a b@c.com", None), ("", None), (None, None),
     (42, None), ("x" * 250 + "@a.com", None)],
)
def test_normalize_email(raw: Any, expected: str | None) -> None:
    assert spec.normalize_email(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("(415) 555-2671", "+14155552671"), ("415.555.2671", "+14155552671"),
     ("415 555 2671", "+14155552671"), ("+1 415-555-2671", "+14155552671"),
     (4155552671, "+14155552671"), ("+44 20 7946 0958", "+442079460958"),
     ("+442079460958", "+442079460958"), ("123", None), ("call me", None), ("", None),
     (None, None), ("+999 1234", None), ("1" * 41, None)],
)
def test_normalize_phone(raw: Any, expected: str | None) -> None:
    assert spec.normalize_phone(raw) == expected


def test_normalize_phone_uses_the_default_region() -> None:
    assert spec.normalize_phone("020 7946 0958") is None  # not a US number
    assert spec.normalize_phone("020 7946 0958", "GB") == "+442079460958"


def test_identifiers_in_priority_order_with_normalised_email_and_phone() -> None:
    message = norm({
        "type": "identify", "userId": "u1", "anonymousId": "a1",
        "traits": {"email": " Alice@Example.com", "phone": "(415) 555-2671"},
        "context": {"externalIds": [{"type": "CRM_ID", "id": "C-9", "collection": "users"},
                                    {"type": "zendesk", "id": 1234}]},
    })
    assert message.identifiers == [
        ("user_id", "u1"), ("ext:crm_id", "C-9"), ("ext:zendesk", "1234"),
        ("email", "alice@example.com"), ("phone", "+14155552671"), ("anonymous_id", "a1"),
    ]


def test_context_traits_count_for_every_type_but_traits_only_for_identify() -> None:
    track = norm({"type": "track", "event": "X", "anonymousId": "a",
                  "traits": {"email": "ignored@example.com"},
                  "context": {"traits": {"phone": "+14155552671"}}})
    assert ("email", "ignored@example.com") not in track.identifiers
    assert ("phone", "+14155552671") in track.identifiers
    assert track.traits == {"phone": "+14155552671"}
    identify = norm({"type": "identify", "anonymousId": "a",
                     "traits": {"email": "a@example.com", "plan": "pro"},
                     "context": {"traits": {"plan": "free", "age": 3}}})
    assert identify.traits == {"plan": "pro", "age": 3, "email": "a@example.com"}
    assert ("email", "a@example.com") in identify.identifiers


def test_invalid_email_and_phone_are_not_identifiers_but_stay_traits() -> None:
    message = norm({"type": "identify", "userId": "u",
                    "traits": {"email": "nope", "phone": "12"}})
    assert message.identifiers == [("user_id", "u")]
    assert message.traits == {"email": "nope", "phone": "12"}


def test_external_ids_alone_identify_a_message() -> None:
    message = norm({"type": "track", "event": "Case Opened",
                    "context": {"externalIds": [{"type": "crm_id", "id": "C-1"}],
                                "traits": {"email": "X@Y.COM"}}})
    assert message.identifiers == [("ext:crm_id", "C-1"), ("email", "x@y.com")]
    assert message.user_id is None and message.anonymous_id is None


def test_external_ids_with_blank_ids_are_skipped_and_list_is_capped() -> None:
    entries = [{"type": "k", "id": f"v{i}"} for i in range(30)]
    message = norm({"type": "track", "event": "X", "userId": "u",
                    "context": {"externalIds": [{"type": "crm", "id": " "}, *entries]}})
    ext = [i for i in message.identifiers if i[0].startswith("ext:")]
    assert len(ext) == 19  # the first 20 entries, one of them blank
    assert ("ext:crm", " ") not in message.identifiers


def test_alias_identifiers_and_group_id() -> None:
    alias = norm({"type": "alias", "previousId": "anon-9", "userId": "u1"})
    assert alias.identifiers == [("user_id", "u1"), ("previous_id", "anon-9")]
    assert alias.previous_id == "anon-9"
    group = norm({"type": "group", "userId": "u1", "groupId": "acme", "previousId": "p"})
    assert group.group_id == "acme"
    assert ("previous_id", "p") not in group.identifiers


def test_consent_categories_from_context() -> None:
    message = norm({"type": "track", "event": "X", "userId": "u",
                    "context": {"consent": {"categoryPreferences": {
                        "Advertising": False, "Analytics": True, "weird": "yes"}}}})
    assert message.consent == {"Advertising": False, "Analytics": True}
    assert norm({"type": "track", "event": "X", "userId": "u",
                 "context": {"consent": "all"}}).consent == {}
