"""The unmodified Segment and RudderStack Python SDKs send every call type to a live server."""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from cxm.ingest.models import Event
from tests.helpers import events_of_user, identity_pairs

pytestmark = pytest.mark.django_db(transaction=True)

EXPECTED_TYPES = {"track", "identify", "page", "screen", "group", "alias"}


def exercise(client: Any, tag: str) -> None:
    """One call of each type, the way an application would make them."""
    client.identify(f"{tag}-user", {"email": f"{tag}@example.com", "plan": "pro"},
                    anonymous_id=f"{tag}-anon")
    client.track(f"{tag}-user", "Order Completed", {"total": 42.5, "currency": "EUR"})
    client.page(f"{tag}-user", "Docs", "Getting Started", {"url": "https://x.test/docs"})
    client.screen(f"{tag}-user", "Onboarding", "Welcome")
    client.group(f"{tag}-user", f"{tag}-company", {"name": "Acme"})
    client.alias(f"{tag}-anon-old", f"{tag}-user")


def assert_landed(tag: str) -> None:
    events = events_of_user(f"{tag}-user")  # payloads revealed
    assert {e.type for e in events} == EXPECTED_TYPES
    assert len(events) == 6
    by_type = {e.type: e for e in events}
    assert by_type["track"].name == "Order Completed"
    assert by_type["track"].payload["properties"] == {"total": 42.5, "currency": "EUR"}
    assert by_type["page"].name == "Getting Started"
    assert by_type["page"].channel == "web"
    assert by_type["screen"].name == "Welcome"
    assert by_type["screen"].channel == "app"
    assert by_type["group"].payload["groupId"] == f"{tag}-company"
    assert by_type["alias"].payload["previousId"] == f"{tag}-anon-old"
    assert all(e.profile_id == events[0].profile_id for e in events)
    kinds = identity_pairs(events[0].profile_id)
    assert {("user_id", f"{tag}-user"), ("email", f"{tag}@example.com"),
            ("anonymous_id", f"{tag}-anon"), ("anonymous_id", f"{tag}-anon-old")} <= kinds


@pytest.fixture
def errors() -> Iterator[list[Any]]:
    """What the SDK reported through on_error. On teardown, the SDKs' kept-alive HTTP sockets
    are closed so the live server's request threads end and close their DB connections."""
    found: list[Any] = []
    yield found
    from rudderstack.analytics import request as rudder_request
    from segment.analytics import request as segment_request

    found.clear()  # an APIError holds its response, which holds the socket
    segment_request._session.close()
    rudder_request._session.close()
    gc.collect()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(
        "process_request" in t.name for t in threading.enumerate()
    ):
        time.sleep(0.02)


@pytest.fixture
def segment_module(live_server: Any, ingest_key: str) -> Iterator[Any]:
    from segment import analytics

    saved = (analytics.write_key, analytics.host, analytics.sync_mode, analytics.on_error,
             analytics.gzip)
    analytics.write_key = ingest_key
    analytics.host = live_server.url
    analytics.default_client = None
    yield analytics
    if analytics.default_client is not None and analytics.default_client.consumers:
        analytics.shutdown()
    analytics.default_client = None
    (analytics.write_key, analytics.host, analytics.sync_mode, analytics.on_error,
     analytics.gzip) = saved


def test_segment_sdk_sync_mode(segment_module: Any, errors: list[Any]) -> None:
    segment_module.sync_mode = True
    exercise(segment_module, "seg-sync")  # a failed upload raises in sync mode
    assert_landed("seg-sync")


@pytest.mark.parametrize("gzip", [False, True], ids=["plain", "gzip"])
def test_segment_sdk_batched_with_flush(segment_module: Any, errors: list[Any],
                                        gzip: bool) -> None:
    segment_module.sync_mode = False
    segment_module.gzip = gzip
    segment_module.on_error = lambda error, batch: errors.append((error, batch))
    tag = f"seg-{'gz' if gzip else 'plain'}"
    exercise(segment_module, tag)
    segment_module.flush()
    assert errors == []
    assert_landed(tag)


def test_segment_sdk_client_with_gzip(live_server: Any, ingest_key: str,
                                      errors: list[Any]) -> None:
    from segment.analytics import Client

    client = Client(write_key=ingest_key, host=live_server.url, gzip=True,
                    on_error=lambda error, batch: errors.append((error, batch)),
                    upload_interval=0.1)
    try:
        exercise(client, "seg-client")
        client.flush()
    finally:
        client.shutdown()
    assert errors == []
    assert_landed("seg-client")


def test_segment_sdk_reports_a_wrong_key(live_server: Any, errors: list[Any]) -> None:
    from segment.analytics import Client

    client = Client(write_key="cxm_0123456789_" + "w" * 32, host=live_server.url,
                    on_error=lambda error, batch: errors.append((error, batch)),
                    max_retries=0, upload_interval=0.1)
    try:
        client.track("someone", "Nope")
        client.flush()
    finally:
        client.shutdown()
    assert len(errors) == 1
    assert getattr(errors[0][0], "status", None) == 401
    assert Event.objects.count() == 0


@pytest.fixture
def rudder_module(live_server: Any, ingest_key: str) -> Iterator[Any]:
    from rudderstack import analytics

    saved = {name: getattr(analytics, name) for name in
             ("write_key", "dataPlaneUrl", "sync_mode", "on_error", "gzip")}
    analytics.write_key = ingest_key
    analytics.dataPlaneUrl = live_server.url
    analytics.default_client = None
    yield analytics
    if analytics.default_client is not None and analytics.default_client.consumers:
        analytics.flush()
        analytics.default_client.join()
    analytics.default_client = None
    for name, value in saved.items():
        setattr(analytics, name, value)


@pytest.mark.parametrize("gzip", [True, False], ids=["gzip", "plain"])
def test_rudderstack_sdk_batched_with_flush(rudder_module: Any, errors: list[Any],
                                            gzip: bool) -> None:
    rudder_module.sync_mode = False
    rudder_module.gzip = gzip
    rudder_module.on_error = lambda error, batch: errors.append((error, batch))
    tag = f"rs-{'gz' if gzip else 'plain'}"
    exercise(rudder_module, tag)
    rudder_module.flush()
    assert errors == []
    assert_landed(tag)


def test_rudderstack_sdk_client_sync_mode(live_server: Any, ingest_key: str,
                                          errors: list[Any]) -> None:
    from rudderstack.analytics import Client

    client = Client(write_key=ingest_key, host=live_server.url, sync_mode=True, gzip=True)
    exercise(client, "rs-sync")
    assert_landed("rs-sync")
