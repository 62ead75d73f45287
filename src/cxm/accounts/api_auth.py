"""Django Ninja authentication: ``Authorization: Bearer <key>``, and the key's scope must grant
the operation's permissions in ``accounts.permissions.MATRIX``."""

from __future__ import annotations

from functools import cache
from typing import Any

from django.http import HttpRequest
from ninja.errors import HttpError
from ninja.security import HttpBearer

from cxm.accounts import auth, permissions, principals
from cxm.accounts.models import ApiKey
from cxm.core.audit import Actor


class KeyAuth(HttpBearer):
    """Accepts an active key whose scope grants every permission in ``need``; an unknown,
    revoked or expired key gets 401, a key without the permission 403."""

    def __init__(self, *need: str):
        super().__init__()
        for permission in need:
            permissions.allows(None, permission)  # unknown names fail at import time
        self.need = need

    def authenticate(self, request: HttpRequest, token: str) -> ApiKey | None:
        key = auth.authenticate(token)
        if key is None:
            return None
        principal = principals.of_key(key)
        missing = [p for p in self.need if not permissions.allows(principal, p)]
        if missing:
            raise HttpError(403, f"a {key.scope} key does not grant {', '.join(missing)}; "
                                 "see docs/security.md for what each scope may do")
        return key


@cache
def needs(*permission: str) -> KeyAuth:
    """The auth for an operation that needs these permissions, e.g.
    ``@router.get(..., auth=needs("profile.read"))``."""
    return KeyAuth(*permission)


def actor_of(request: HttpRequest) -> Actor:
    key: Any = getattr(request, "auth", None)
    ip = request.META.get("REMOTE_ADDR")
    if isinstance(key, ApiKey):
        return Actor(key.actor_label, ip)
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return Actor(f"user:{user.pk}", ip)
    return Actor("anonymous", ip)
