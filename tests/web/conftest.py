"""Data for the web UI's tests, built through the real ingest path (no model shortcuts)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cxm.core.audit import Actor

PASSWORD = "a-long-password-1"
START = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True, scope="session")
def _static_root() -> None:
    """WhiteNoise warns (an error under our warning filter) when STATIC_ROOT does not exist
    yet, i.e. before ``collectstatic``; a fresh data directory has none."""
    from django.conf import settings

    Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)


@pytest.fixture(scope="session")
def base_url() -> str | None:
    """Shadows pytest-playwright 0.10's fallback ``base_url``, a session fixture defined as an
    instance method, which pytest 9 deprecates with a warning (an error here). The tests use
    ``live_server.url`` instead."""
    return None


def stamp(minutes: int) -> str:
    return (START + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def ingest(messages: list[dict[str, Any]]) -> None:
    from cxm.ingest.actions import ingest as run

    result = run(messages, actor=Actor("test"), source="test")
    assert not result.rejected, result.rejected
    assert result.accepted == len(messages)


@dataclass(frozen=True)
class Customer:
    id: uuid.UUID
    name: str
    email: str
    phone: str
    user_id: str
    anonymous_id: str
    events: int


def make_customer(
    *, name: str = "Ada Lovelace", email: str = "ada@example.com",
    phone: str = "+14155550123", user_id: str = "u-ada", anonymous_id: str = "anon-ada",
    tracks: int = 70, prefix: str = "ada",
) -> Customer:
    """One identified customer with ``tracks`` events spread over web, email and app."""
    from cxm.identity import queries

    channels = ("web", "email", "app")
    messages: list[dict[str, Any]] = [{
        "type": "identify", "messageId": f"{prefix}-identify", "userId": user_id,
        "anonymousId": anonymous_id, "timestamp": stamp(0),
        "traits": {"name": name, "email": email, "phone": phone, "plan": "gold",
                   "preferences": {"pillow": "soft"},
                   "consent": {"email": {"marketing": True}}},
        "context": {"channel": "web", "externalIds": [{"type": "shopify", "id": f"{prefix}-77"}]},
    }]
    for index in range(tracks):
        messages.append({
            "type": "track", "messageId": f"{prefix}-track-{index}", "userId": user_id,
            "event": f"Step {index:03d}", "timestamp": stamp(index + 1),
            "properties": {"order_id": f"ORD-{index:03d}", "total": index * 2.5},
            "context": {"channel": channels[index % len(channels)]},
        })
    ingest(messages)
    profile = queries.by_identifier("email", email)
    return Customer(profile.id, name, email, phone, user_id, anonymous_id, len(messages))


@pytest.fixture
def customer(db: Any) -> Customer:
    return make_customer()


def make_user(username: str, *, role: str) -> Any:
    from django.contrib.auth import get_user_model

    from cxm.accounts import actions

    pk = actions.create_user(username=username, password=PASSWORD, role=role,
                             actor=Actor("test"))
    return get_user_model().objects.get(pk=pk)


@pytest.fixture
def staff_user(db: Any) -> Any:
    """An admin."""
    return make_user("admin", role="admin")


@pytest.fixture
def plain_user(db: Any) -> Any:
    """A support agent: reads customers with their personal data, nothing of settings."""
    return make_user("agent", role="agent")


@pytest.fixture
def viewer_user(db: Any) -> Any:
    return make_user("viewer", role="viewer")


@pytest.fixture
def login(client: Any) -> Callable[[Any], Any]:
    def log_in(user: Any) -> Any:
        client.force_login(user)
        return client

    return log_in


def watch(page: Any, servers: tuple[str, ...], *, console_ignored: str | None = None,
          aborted_ok: bool = True) -> list[str]:
    """Collects what should fail a browser test: a script error, a console error (except
    those containing ``console_ignored``), a failed request, or any request that leaves
    ``servers`` (no CDN: the product runs offline). With ``aborted_ok``, a request the browser
    itself cancels because the page moved on (a click that navigates while a script still
    loads) is not a failure of ours. Assert the returned list is empty after the test."""
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("console", lambda m: problems.append(f"console: {m.text} {m.location}")
            if m.type == "error" and not (console_ignored and console_ignored in m.text)
            else None)
    page.on("requestfailed", lambda r: None if aborted_ok and r.failure == "net::ERR_ABORTED"
            else problems.append(f"failed: {r.url} {r.failure}"))
    page.on("request", lambda r: None if r.url.startswith(servers)
            else problems.append(f"external request: {r.url}"))
    return problems
