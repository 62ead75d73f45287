"""The users page: list, create with a role, change a role, deactivate; admins only."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from cxm.accounts import principals
from cxm.core.models import AuditLog
from tests.web.conftest import make_user

pytestmark = pytest.mark.django_db


def html(response: Any) -> str:
    return response.content.decode()


def test_the_users_page_lists_users_with_their_roles(
    login: Callable[[Any], Client], staff_user: Any, plain_user: Any,
) -> None:
    client = login(staff_user)
    response = client.get("/settings/users/")
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    text = html(response)
    assert 'data-testid="user-admin"' in text and 'data-testid="user-agent"' in text
    agent_row = text.split('data-testid="user-agent"')[1].split("</tr>")[0]
    assert re.search(r'<option value="agent" selected>', agent_row)
    assert "Deactivate" in agent_row
    admin_row = text.split('data-testid="user-admin"')[1].split("</tr>")[0]
    assert "(you)" in admin_row and "Deactivate" not in admin_row  # not oneself
    for role in ("admin", "analyst", "agent", "marketer", "viewer"):
        assert f"<dt>{role}</dt>" in text
    # the sidebar links to it
    assert 'href="/settings/users/"' in html(client.get("/"))


def test_only_admins_manage_users(login: Callable[[Any], Client], plain_user: Any) -> None:
    client = login(plain_user)
    assert client.get("/settings/users/").status_code == 403
    assert client.post("/settings/users/", {"username": "x", "password": "a-long-password-2",
                                            "role": "admin"}).status_code == 403
    assert client.post(f"/settings/users/{plain_user.pk}/role/",
                       {"role": "admin"}).status_code == 403
    assert principals.role_of(plain_user) == "agent"
    assert not get_user_model().objects.filter(username="x").exists()
    assert 'href="/settings/users/"' not in html(client.get("/"))


def test_an_admin_creates_a_user_who_can_sign_in(
    login: Callable[[Any], Client], staff_user: Any,
) -> None:
    client = login(staff_user)
    response = client.post("/settings/users/", {"username": "nina", "password":
                                                "correct-horse-9", "role": "marketer"},
                           follow=True)
    assert response.status_code == 200
    assert "User nina created as marketer" in html(response)
    nina = get_user_model().objects.get(username="nina")
    assert principals.role_of(nina) == "marketer"
    row = AuditLog.objects.get(action="user.created", target_id=str(nina.pk))
    assert row.actor == f"user:{staff_user.pk}"
    assert "correct-horse-9" not in html(response)
    fresh = Client()
    assert fresh.post("/login/", {"username": "nina", "password": "correct-horse-9"}
                      ).status_code == 302


@pytest.mark.parametrize(("data", "message"), [
    ({"username": "nina", "password": "shrt7", "role": "viewer"}, "too short"),
    ({"username": "nina", "password": "password123", "role": "viewer"}, "too common"),
    ({"username": "ninabrown", "password": "ninabrown1", "role": "viewer"}, "too similar"),
    ({"username": "nina", "password": "48151623427", "role": "viewer"}, "entirely numeric"),
    ({"username": "admin", "password": "correct-horse-9", "role": "viewer"}, "exists already"),
    ({"username": "", "password": "correct-horse-9", "role": "viewer"}, "required"),
    ({"username": "nina", "password": "correct-horse-9", "role": "root"}, "valid choice"),
])
def test_bad_new_users_are_refused_with_the_reason(
    login: Callable[[Any], Client], staff_user: Any, data: dict, message: str,
) -> None:
    response = login(staff_user).post("/settings/users/", data)
    assert response.status_code == 400
    assert message in html(response)
    assert data["password"] not in html(response)  # never echoed back
    assert get_user_model().objects.count() == 1


def test_an_admin_changes_a_role_and_deactivates_a_user(
    login: Callable[[Any], Client], staff_user: Any, plain_user: Any,
) -> None:
    client = login(staff_user)
    done = client.post(f"/settings/users/{plain_user.pk}/role/", {"role": "viewer"},
                       follow=True)
    assert "agent is now viewer" in html(done)
    plain_user.refresh_from_db()
    assert principals.role_of(plain_user) == "viewer"
    assert client.post(f"/settings/users/{plain_user.pk}/role/", {"role": "x"}
                       ).status_code == 400
    assert client.post("/settings/users/99999/role/", {"role": "viewer"}).status_code == 404

    # the last admin cannot demote nor deactivate themselves
    refused = client.post(f"/settings/users/{staff_user.pk}/role/", {"role": "viewer"},
                          follow=True)
    assert "only active admin" in html(refused)
    refused = client.post(f"/settings/users/{staff_user.pk}/deactivate/", follow=True)
    assert "cannot deactivate yourself" in html(refused)

    agent_client = Client()
    agent_client.force_login(plain_user)
    assert agent_client.get("/").status_code == 200
    gone = client.post(f"/settings/users/{plain_user.pk}/deactivate/", follow=True)
    assert "agent is deactivated" in html(gone)
    assert agent_client.get("/").status_code == 302  # their session ended
    back = client.post(f"/settings/users/{plain_user.pk}/reactivate/", follow=True)
    assert "agent can sign in again" in html(back)
    assert [a for a in AuditLog.objects.filter(target_type="user").order_by("seq")
            .values_list("action", flat=True) if a != "user.created"] == [
        "user.role_changed", "user.deactivated", "user.reactivated"]


def test_user_changes_need_post_and_csrf(staff_user: Any, plain_user: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)
    assert client.post(f"/settings/users/{plain_user.pk}/deactivate/").status_code == 403
    assert client.get(f"/settings/users/{plain_user.pk}/deactivate/").status_code == 405
    plain_user.refresh_from_db()
    assert plain_user.is_active


def test_a_viewer_sees_no_settings(login: Callable[[Any], Client]) -> None:
    viewer = make_user("vera", role="viewer")
    text = html(login(viewer).get("/"))
    assert "/settings/keys/" not in text and "/settings/users/" not in text
    assert "<small>viewer</small>" in text
