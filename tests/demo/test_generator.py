"""The demo-data generator: deterministic, spec-shaped, and rich enough to exercise the platform.

Pure tests: no database, no Django; they also pass with pytest-django loaded.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest

from cxm.demo.generator import (
    CHANNELS,
    DEFAULT_START,
    STAGE_EVENTS,
    DemoConfig,
    Message,
    channel_of,
    generate,
    stage_of,
    summary,
    write_jsonl,
)

SMALL = DemoConfig(customers=50)
# Big enough that every channel, stage and identity pattern shows up, still well under a second.
MEDIUM = DemoConfig(customers=150)
# For statistics (abandonment, seasonality, score correlations): about a second, cached.
LARGE = DemoConfig(customers=400)

REQUIRED: dict[str, tuple[str, ...]] = {
    "track": ("event", "properties"),
    "identify": ("traits",),
    "page": ("name", "properties"),
    "screen": ("name", "properties"),
    "group": ("groupId", "traits"),
    "alias": ("previousId", "userId"),
}
SCALES = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}


@lru_cache(maxsize=4)
def _run(config: DemoConfig) -> tuple[Message, ...]:
    return tuple(generate(config))


@pytest.fixture(scope="module")
def messages() -> tuple[Message, ...]:
    return _run(MEDIUM)


def _dumps(messages: Any) -> str:
    return json.dumps(list(messages), sort_keys=False, separators=(",", ":"))


def _parse(timestamp: str) -> datetime:
    assert timestamp.endswith("Z"), timestamp
    return datetime.fromisoformat(timestamp[:-1] + "+00:00")


# -- determinism ------------------------------------------------------------------------------


def test_same_config_gives_byte_identical_output() -> None:
    first = _dumps(generate(SMALL))
    second = _dumps(generate(DemoConfig(customers=50)))
    assert first == second


def test_different_seed_gives_different_output() -> None:
    assert _dumps(generate(SMALL)) != _dumps(generate(DemoConfig(customers=50, seed=7)))


def test_customers_behave_the_same_whatever_the_population_size() -> None:
    """Each customer has their own random stream, so a smaller demo is a subset of a bigger
    one (handy: re-loading a bigger demo only adds new messages)."""
    small_ids = {m["messageId"] for m in generate(DemoConfig(customers=20))}
    by_id = {m["messageId"]: m for m in _run(SMALL)}
    assert small_ids <= by_id.keys()
    for message in generate(DemoConfig(customers=20)):
        assert by_id[message["messageId"]] == message


def test_message_ids_are_unique_uuid5() -> None:
    ids = [m["messageId"] for m in _run(MEDIUM)]
    assert len(ids) == len(set(ids))
    assert {uuid.UUID(i).version for i in ids[:500]} == {5}


def test_generate_is_lazy_and_yields_fresh_dicts() -> None:
    iterator = generate(SMALL)
    first = next(iterator)
    first["context"]["library"]["name"] = "mutated"
    assert all(m["context"]["library"]["name"] != "mutated" for m in iterator)


# -- shape of every message -------------------------------------------------------------------


def test_every_message_has_the_keys_its_type_needs(messages: tuple[Message, ...]) -> None:
    for message in messages:
        kind = message["type"]
        assert kind in REQUIRED, message
        assert isinstance(message["messageId"], str)
        assert isinstance(message["timestamp"], str)
        assert isinstance(message["context"], dict)
        assert isinstance(message["context"]["library"]["name"], str)
        assert "ip" not in message["context"]
        for key in REQUIRED[kind]:
            assert key in message, (key, message)
        identified = (
            "userId" in message
            or "anonymousId" in message
            or "externalIds" in message["context"]
            or "email" in message["context"].get("traits", {})
        )
        assert identified, message
        if kind == "track":
            assert message["event"].strip()
        if kind == "page":
            page = message["context"]["page"]
            assert set(page) >= {"path", "referrer", "search", "title", "url"}
            assert page["url"].startswith("https://")
        if kind == "screen":
            assert {"app", "device", "os"} <= message["context"].keys()


def test_every_message_is_plain_json_under_32_kb(messages: tuple[Message, ...]) -> None:
    for message in messages:
        encoded = json.dumps(message)  # would raise on datetime or other non-JSON values
        assert len(encoded.encode()) < 32 * 1024
        assert json.loads(encoded) == message


def test_timestamps_are_sorted_and_within_the_window(messages: tuple[Message, ...]) -> None:
    start, end = MEDIUM.start, MEDIUM.start + timedelta(days=MEDIUM.days)
    stamps = [_parse(m["timestamp"]) for m in messages]
    assert stamps == sorted(stamps)
    assert start <= stamps[0]
    assert stamps[-1] <= end


def test_window_follows_the_config() -> None:
    start = datetime(2026, 3, 15, 9, 30, tzinfo=UTC)
    config = DemoConfig(customers=20, start=start, days=30)
    stamps = [_parse(m["timestamp"]) for m in generate(config)]
    assert stamps
    assert start <= min(stamps)
    assert max(stamps) <= start + timedelta(days=30)


def test_config_defaults_and_validation() -> None:
    config = DemoConfig()
    assert (config.customers, config.seed, config.days) == (5000, 42, 365)
    assert config.start == DEFAULT_START == datetime(2025, 11, 1, tzinfo=UTC)
    with pytest.raises(ValueError):
        DemoConfig(start=datetime(2025, 11, 1))  # naive
    with pytest.raises(ValueError):
        DemoConfig(days=0)
    assert list(generate(DemoConfig(customers=0))) == []


# -- coverage: stages, channels, types --------------------------------------------------------


def test_all_eight_journey_stages_appear(messages: tuple[Message, ...]) -> None:
    events = {m["event"] for m in messages if m["type"] == "track"}
    assert len(STAGE_EVENTS) == 8
    for stage, family in STAGE_EVENTS.items():
        assert events & family, f"no {stage} events"
    assert stage_of("Order Completed") == "purchase"
    assert stage_of("Email Opened") is None


def test_all_ten_channels_appear(messages: tuple[Message, ...]) -> None:
    channels = {channel_of(m) for m in messages}
    assert channels == set(CHANNELS)
    assert len(CHANNELS) == 10


def test_server_side_channels_are_explicit(messages: tuple[Message, ...]) -> None:
    for message in messages:
        context = message["context"]
        if "page" not in context and "app" not in context:
            assert context["channel"] in CHANNELS, message


def test_all_message_types_appear(messages: tuple[Message, ...]) -> None:
    assert {m["type"] for m in messages} == set(REQUIRED)


def test_ecommerce_events_follow_the_segment_spec(messages: tuple[Message, ...]) -> None:
    orders = [m for m in messages if m.get("event") == "Order Completed"]
    assert orders
    for order in orders:
        props = order["properties"]
        assert {"order_id", "revenue", "currency", "products"} <= props.keys()
        assert props["products"]
        for line in props["products"]:
            assert {"product_id", "sku", "name", "category", "price", "quantity"} <= line.keys()
    assert any(channel_of(o) == "store" for o in orders)
    assert any(channel_of(o) == "web" for o in orders)


def test_most_carts_are_abandoned() -> None:
    messages = _run(LARGE)
    carts = {m["properties"]["cart_id"] for m in messages if m.get("event") == "Product Added"}
    online = [m for m in messages
              if m.get("event") == "Order Completed" and channel_of(m) in ("web", "app")]
    abandonment = 1 - len(online) / len(carts)
    assert 0.55 < abandonment < 0.75


def test_holiday_season_is_the_peak() -> None:
    months: Counter[str] = Counter(
        m["timestamp"][:7] for m in _run(LARGE)
        if m.get("event") == "Order Completed"
    )
    assert months["2025-12"] > 1.5 * months["2026-02"]
    assert months["2025-12"] == max(months.values())


# -- identity journeys ------------------------------------------------------------------------


def test_anonymous_visitors_identify_with_the_same_anonymous_id(
    messages: tuple[Message, ...],
) -> None:
    anonymous_pages = {
        m["anonymousId"] for m in messages if m["type"] == "page" and "userId" not in m
    }
    linked = {
        m["anonymousId"] for m in messages
        if m["type"] == "identify" and "userId" in m and m.get("anonymousId") in anonymous_pages
    }
    assert len(linked) >= 20
    # After identifying, the browser keeps sending both ids.
    first_identify: dict[str, str] = {}
    for m in messages:
        if m["type"] == "identify" and m.get("anonymousId") in linked:
            first_identify.setdefault(m["anonymousId"], m["userId"])
    later = [m for m in messages if m.get("anonymousId") in first_identify and "userId" in m]
    assert all(m["userId"] == first_identify[m["anonymousId"]] for m in later)


def test_app_installs_identify_the_same_user_with_a_new_anonymous_id(
    messages: tuple[Message, ...],
) -> None:
    web_anonymous: dict[str, set[str]] = {}
    app_anonymous: dict[str, set[str]] = {}
    for m in messages:
        if m["type"] == "identify" and "anonymousId" in m:
            target = app_anonymous if "app" in m["context"] else web_anonymous
            target.setdefault(m["userId"], set()).add(m["anonymousId"])
    both = web_anonymous.keys() & app_anonymous.keys()
    assert both
    assert all(not web_anonymous[u] & app_anonymous[u] for u in both)
    installs = [m for m in messages if m.get("event") == "Application Installed"]
    assert installs and all("userId" not in m for m in installs)


def test_identify_traits_carry_profile_preferences_and_consent(
    messages: tuple[Message, ...],
) -> None:
    full = [m for m in messages if m["type"] == "identify" and "preferences" in m["traits"]]
    assert full
    for m in full:
        traits = m["traits"]
        assert {"email", "firstName", "lastName", "address", "createdAt"} <= traits.keys()
        assert "@" in traits["email"]
    consented = [m for m in full if "consent" in m["traits"]]
    assert consented
    assert all(isinstance(m["traits"]["consent"]["email"]["marketing"], bool) for m in consented)
    banners = [m for m in messages if "consent" in m["context"]]
    assert banners
    prefs = banners[0]["context"]["consent"]["categoryPreferences"]
    assert all(isinstance(v, bool) for v in prefs.values())


def test_phone_numbers_come_in_local_and_international_formats() -> None:
    phones = {
        m["traits"]["phone"] for m in _run(LARGE)
        if m["type"] == "identify" and "phone" in m["traits"]
    }
    assert any(p.startswith("(") for p in phones)  # "(415) 555-0134"
    assert any(p.startswith("+44 ") for p in phones)  # "+44 20 7946 0958"
    assert any(p.startswith("+") and " " not in p for p in phones)  # E.164


def test_crm_messages_carry_only_an_external_id_and_an_email(
    messages: tuple[Message, ...],
) -> None:
    crm = [m for m in messages if "externalIds" in m["context"]]
    assert crm
    for m in crm:
        assert "userId" not in m
        assert "anonymousId" not in m
        (external,) = m["context"]["externalIds"]
        assert external["type"] == "crm_id"
        assert external["collection"] == "users"
        assert external["encoding"] == "none"
        assert external["id"].startswith("CRM-")
        assert "@" in m["context"]["traits"]["email"]
        assert channel_of(m) in ("support", "chat", "phone")
    # The CRM's copy of the email matches a known customer once normalised, though not always
    # byte for byte.
    known = {
        m["traits"]["email"] for m in messages if m["type"] == "identify" and "email" in m["traits"]
    }
    crm_emails = {m["context"]["traits"]["email"] for m in crm}
    assert {e.strip().lower() for e in crm_emails} & known
    messy = _run(LARGE)
    crm_emails = {m["context"]["traits"]["email"] for m in messy if "externalIds" in m["context"]}
    assert any(e != e.strip().lower() for e in crm_emails)


def test_alias_and_group_calls(messages: tuple[Message, ...]) -> None:
    aliases = [m for m in messages if m["type"] == "alias"]
    assert aliases
    for m in aliases:
        assert m["previousId"] == m["anonymousId"]
        assert m["userId"].startswith("usr_")
    groups = [m for m in messages if m["type"] == "group"]
    assert groups
    assert all(m["groupId"].startswith("acct_") and m["traits"]["name"] for m in groups)


# -- experience signals -----------------------------------------------------------------------


def test_survey_scores_are_within_each_scale() -> None:
    surveys = [m for m in _run(LARGE) if m.get("event") == "Survey Responded"]
    kinds = Counter(m["properties"]["kind"] for m in surveys)
    assert set(kinds) == set(SCALES)
    names = {m["properties"]["survey_name"] for m in surveys}
    assert names == {"Post-purchase NPS", "Support CSAT", "Checkout CES"}
    for m in surveys:
        props = m["properties"]
        low, high = SCALES[props["kind"]]
        assert isinstance(props["score"], int)
        assert low <= props["score"] <= high
        assert channel_of(m) == "survey"
    with_comment = [m for m in surveys if "comment" in m["properties"]]
    assert 0.25 < len(with_comment) / len(surveys) < 0.55
    assert all(isinstance(m["properties"]["comment"], str) for m in with_comment)


def test_late_deliveries_lower_nps() -> None:
    messages = _run(LARGE)
    late = {
        m["properties"]["order_id"] for m in messages
        if m.get("event") == "Order Delivered" and not m["properties"]["on_time"]
    }
    scores: dict[bool, list[int]] = {True: [], False: []}
    for m in messages:
        if m.get("event") == "Survey Responded" and m["properties"]["kind"] == "nps":
            scores[m["properties"]["order_id"] in late].append(m["properties"]["score"])
    assert scores[True] and scores[False]
    mean = {k: sum(v) / len(v) for k, v in scores.items()}
    assert mean[True] < mean[False]


def test_support_conversations_have_subjects_and_transcripts(
    messages: tuple[Message, ...],
) -> None:
    support = [m for m in messages if stage_of(m.get("event", "")) == "support"]
    assert support
    assert all(m["properties"]["subject"] for m in support)
    conversations = [m for m in support if m["event"] in ("Chat Started", "Call Completed")]
    assert conversations
    assert all(m["properties"]["transcript_excerpt"] for m in conversations)


def test_reviews_have_ratings_and_text(messages: tuple[Message, ...]) -> None:
    reviews = [m for m in messages if m.get("event") == "Review Submitted"]
    assert reviews
    assert all(1 <= m["properties"]["rating"] <= 5 and m["properties"]["text"] for m in reviews)


# -- summary and JSONL ------------------------------------------------------------------------


def test_summary_counts_add_up(messages: tuple[Message, ...]) -> None:
    result = summary(messages)
    assert result["messages"] == len(messages)
    assert sum(result["by_type"].values()) == len(messages)
    assert sum(result["by_channel"].values()) == len(messages)
    tracks = result["by_type"]["track"]
    assert sum(result["by_event"].values()) == tracks
    assert set(result["by_stage"]) == set(STAGE_EVENTS)
    assert result["users"] > 0 and result["anonymous_ids"] > result["users"]
    counts = list(result["by_event"].values())
    assert counts == sorted(counts, reverse=True)


def test_summary_accepts_an_iterator() -> None:
    assert summary(generate(SMALL))["messages"] == len(_run(SMALL))


def test_write_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "demo.jsonl"
    written = write_jsonl(generate(SMALL), path)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert written == len(lines) == len(_run(SMALL))
    assert json.loads(lines[0]) == _run(SMALL)[0]


# -- contract with the ingest API -------------------------------------------------------------


def test_every_message_passes_ingest_validation(messages: tuple[Message, ...]) -> None:
    """What the demo sends, the platform's own Segment-spec validation accepts, and it derives
    the same channel the demo meant."""
    spec = pytest.importorskip("cxm.ingest.spec")
    received = MEDIUM.start + timedelta(days=MEDIUM.days + 1)
    for message in messages:
        normalised = spec.normalize(message, received_at=received)
        assert normalised.channel == channel_of(message), message
        assert normalised.timestamp == _parse(message["timestamp"])
        phone = normalised.traits.get("phone")
        if phone:
            assert spec.normalize_phone(phone) is not None, phone
