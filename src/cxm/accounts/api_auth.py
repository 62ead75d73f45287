"""Django Ninja authentication: ``Authorization: Bearer <key>`` with a required scope."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja.errors import HttpError
from ninja.security import HttpBearer

from cxm.accounts import auth, keys
from cxm.accounts.models import ApiKey
from cxm.core.audit import Actor


class KeyAuth(HttpBearer):
    """Accepts an active key whose scope allows ``need``; a key without it gets 403."""

    def __init__(self, need: str):
        super().__init__()
        self.need = need

    def authenticate(self, request: HttpRequest, token: str) -> ApiKey | None:
        key = auth.authenticate(token)
        if key is None:
            return None
        if not keys.allows(key.scope, self.need):
            raise HttpError(403, f"a {key.scope} key cannot {self.need}; this needs a key with "
                                 f"the {self.need} scope")
        return key


read_auth = KeyAuth("read")
write_auth = KeyAuth("write")
admin_auth = KeyAuth("admin")


def actor_of(request: HttpRequest) -> Actor:
    key: Any = getattr(request, "auth", None)
    ip = request.META.get("REMOTE_ADDR")
    if isinstance(key, ApiKey):
        return Actor(key.actor_label, ip)
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return Actor(f"user:{user.pk}", ip)
    return Actor("anonymous", ip)
