"""Signing in through the real login page: throttled after repeated failures."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from cxm.accounts.models import LoginFailure
from tests.web.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def attempt(client: Client, username: str, password: str, ip: str = "198.51.100.7") -> Any:
    return client.post("/login/", {"username": username, "password": password},
                       REMOTE_ADDR=ip)


def test_five_wrong_passwords_pause_sign_in_for_that_user(client: Client,
                                                          plain_user: Any) -> None:
    for _ in range(4):
        response = attempt(client, "agent", "wrong-password")
        assert response.status_code == 200
        assert "did not match" in response.content.decode()
    fifth = attempt(client, "agent", "wrong-password")
    assert fifth.status_code == 429
    text = fifth.content.decode()
    assert "Too many failed sign-ins for this user name" in text and "15 minutes" in text
    assert "did not match" not in text
    # Now even the right password is refused, from anywhere, without checking it.
    right = attempt(client, "agent", PASSWORD, ip="192.0.2.44")
    assert right.status_code == 429
    assert "_auth_user_id" not in client.session
    assert LoginFailure.objects.filter(username="agent").count() == 5  # refusals not counted
    # Another user signs in as usual.
    other = Client()
    from tests.web.conftest import make_user

    make_user("other", role="viewer")
    assert attempt(other, "other", PASSWORD).status_code == 302


def test_twenty_failures_from_one_address_pause_it(client: Client, plain_user: Any) -> None:
    for index in range(20):
        attempt(client, f"guess{index}", "wrong-password", ip="203.0.113.9")
    refused = attempt(client, "agent", PASSWORD, ip="203.0.113.9")
    assert refused.status_code == 429
    assert "your network address" in refused.content.decode()
    assert attempt(client, "agent", PASSWORD, ip="203.0.113.10").status_code == 302


def test_a_successful_sign_in_forgets_earlier_failures(client: Client, plain_user: Any) -> None:
    for _ in range(4):
        attempt(client, "agent", "wrong-password")
    assert attempt(client, "agent", PASSWORD).status_code == 302
    assert not LoginFailure.objects.filter(username="agent").exists()
    client.logout()
    for _ in range(4):
        assert attempt(client, "agent", "wrong-password").status_code == 200
    assert attempt(client, "agent", PASSWORD).status_code == 302


def test_a_deactivated_user_cannot_sign_in(client: Client, plain_user: Any) -> None:
    plain_user.is_active = False
    plain_user.save()
    response = attempt(client, "agent", PASSWORD)
    assert response.status_code == 200 and "did not match" in response.content.decode()
