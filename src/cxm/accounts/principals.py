"""Turning a web user, an API key or the command line into a ``permissions.Principal``."""

from __future__ import annotations

import getpass
from typing import Any

from cxm.accounts import permissions
from cxm.accounts.models import ApiKey, Membership
from cxm.accounts.permissions import Principal


def role_of(user: Any) -> str | None:
    """A user's role: ``admin`` for superusers, the membership's role, else ``None``."""
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return None
    if user.is_superuser:
        return "admin"
    try:
        membership = user.membership
    except Membership.DoesNotExist:
        return None
    return str(membership.role)


def of_user(user: Any) -> Principal:
    if user is None or not getattr(user, "is_authenticated", False):
        return permissions.ANONYMOUS
    return permissions.role_principal(role_of(user), f"user:{user.pk}")


def of_key(key: ApiKey) -> Principal:
    return permissions.key_principal(key.scope, key.actor_label)


def local_operator() -> Principal:
    """The person running ``cxm`` on the server: an admin, recorded as ``cli:<os user>``."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):  # no user name for this uid (some containers)
        name = "unknown"
    return permissions.local_operator(name)
