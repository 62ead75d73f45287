"""Users and roles through ``accounts.actions``: create, change role, deactivate, audit rows."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from cxm.accounts import actions, principals
from cxm.accounts.models import Membership
from cxm.core.audit import Actor
from cxm.core.errors import Conflict, InvalidInput, NotFound
from cxm.core.models import AuditLog

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-password-1"
ADMIN = Actor("user:999", "10.0.0.1")


def make(username: str, role: str) -> int:
    return actions.create_user(username=username, password=PASSWORD, role=role, actor=ADMIN)


def test_create_user_with_a_role_is_audited_without_the_password() -> None:
    pk = make("ann", "agent")
    user = get_user_model().objects.get(pk=pk)
    assert user.check_password(PASSWORD) and user.password.startswith("argon2")
    assert principals.role_of(user) == "agent"
    assert not user.is_superuser and not user.is_staff
    row = AuditLog.objects.get(action="user.created")
    assert (row.actor, row.target_type, row.target_id, row.ip) == ("user:999", "user", str(pk),
                                                                   "10.0.0.1")
    assert row.changes == {"username": "ann", "role": "agent"}
    assert PASSWORD not in str(row.changes)


def test_create_user_defaults_and_the_older_is_admin_spelling() -> None:
    assert principals.role_of(get_user_model().objects.get(pk=actions.create_user(
        username="v", password=PASSWORD, actor=ADMIN))) == "viewer"
    assert principals.role_of(get_user_model().objects.get(pk=actions.create_user(
        username="a", password=PASSWORD, is_admin=True, actor=ADMIN))) == "admin"


@pytest.mark.parametrize(("kwargs", "code"), [
    ({"username": " ", "role": "viewer"}, "username_required"),
    ({"username": "x" * 151, "role": "viewer"}, "username_too_long"),
    ({"username": "bob", "role": "root"}, "role"),
    ({"username": "bob", "role": "viewer", "password": "short"}, "weak_password"),
    ({"username": "bob", "role": "viewer", "password": "password123"}, "weak_password"),
    ({"username": "taken", "role": "viewer"}, "username_taken"),
    ({"username": "TAKEN", "role": "viewer"}, "username_taken"),
])
def test_create_user_validation(kwargs: dict, code: str) -> None:
    make("taken", "viewer")
    with pytest.raises(InvalidInput) as caught:
        actions.create_user(actor=ADMIN, **{"password": PASSWORD, **kwargs})
    assert caught.value.code == code
    assert get_user_model().objects.count() == 1


def test_set_role_is_audited_and_keeps_the_last_admin() -> None:
    boss = make("boss", "admin")
    ann = make("ann", "viewer")
    assert actions.set_role(user_id=ann, role="analyst", actor=ADMIN) == "viewer"
    assert Membership.objects.get(user_id=ann).role == "analyst"
    row = AuditLog.objects.get(action="user.role_changed")
    assert row.changes == {"username": "ann", "from": "viewer", "to": "analyst"}
    # the same role again changes nothing and writes nothing
    actions.set_role(user_id=ann, role="analyst", actor=ADMIN)
    assert AuditLog.objects.filter(action="user.role_changed").count() == 1

    with pytest.raises(Conflict) as caught:
        actions.set_role(user_id=boss, role="viewer", actor=ADMIN)
    assert caught.value.code == "last_admin"
    actions.set_role(user_id=ann, role="admin", actor=ADMIN)
    actions.set_role(user_id=boss, role="viewer", actor=ADMIN)  # someone else is admin now
    assert principals.role_of(get_user_model().objects.get(pk=boss)) == "viewer"

    with pytest.raises(InvalidInput):
        actions.set_role(user_id=ann, role="root", actor=ADMIN)
    with pytest.raises(NotFound):
        actions.set_role(user_id=123456, role="viewer", actor=ADMIN)


def test_a_superuser_demoted_is_no_longer_admin() -> None:
    make("keeper", "admin")
    root = get_user_model().objects.create_superuser(username="root", password=PASSWORD)
    assert actions.set_role(user_id=root.pk, role="analyst", actor=ADMIN) == "admin"
    root.refresh_from_db()
    assert not root.is_superuser and principals.role_of(root) == "analyst"


def test_a_user_without_a_role_gets_one() -> None:
    bare = get_user_model().objects.create_user(username="bare", password=PASSWORD)
    assert actions.set_role(user_id=bare.pk, role="marketer", actor=ADMIN) == ""
    assert principals.role_of(bare) == "marketer"


def test_deactivate_and_reactivate() -> None:
    boss = make("boss", "admin")
    ann = make("ann", "analyst")
    user = actions.deactivate_user(user_id=ann, actor=Actor(f"user:{boss}"))
    assert not user.is_active and principals.role_of(user) is None
    assert AuditLog.objects.filter(action="user.deactivated", target_id=str(ann)).count() == 1
    actions.deactivate_user(user_id=ann, actor=ADMIN)  # idempotent, not audited twice
    assert AuditLog.objects.filter(action="user.deactivated").count() == 1
    assert actions.reactivate_user(user_id=ann, actor=ADMIN).is_active
    assert AuditLog.objects.filter(action="user.reactivated").count() == 1

    with pytest.raises(Conflict) as caught:
        actions.deactivate_user(user_id=ann, actor=Actor(f"user:{ann}"))
    assert caught.value.code == "cannot_deactivate_self"
    with pytest.raises(Conflict) as caught:
        actions.deactivate_user(user_id=boss, actor=ADMIN)
    assert caught.value.code == "last_admin"
    with pytest.raises(NotFound):
        actions.deactivate_user(user_id=123456, actor=ADMIN)


def test_a_deactivated_users_session_ends(client: Client) -> None:
    make("boss", "admin")
    ann = make("ann", "analyst")
    client.force_login(get_user_model().objects.get(pk=ann))
    assert client.get("/customers/").status_code == 200
    actions.deactivate_user(user_id=ann, actor=ADMIN)
    response = client.get("/customers/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_existing_users_get_a_role_in_the_migration() -> None:
    """The data migration: staff were admins, everyone else could read everything."""
    from importlib import import_module

    from django.apps import apps

    migration = import_module("cxm.accounts.migrations.0002_roles_and_login_failures")
    user_model = get_user_model()
    staff = user_model.objects.create_user(username="s", password=PASSWORD, is_staff=True)
    plain = user_model.objects.create_user(username="p", password=PASSWORD)
    migration.give_existing_users_a_role(apps, None)
    assert Membership.objects.get(user=staff).role == "admin"
    assert Membership.objects.get(user=plain).role == "analyst"
