"""REST endpoints for API keys (permission ``keys.manage``)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Router, Status

from cxm.accounts import actions
from cxm.accounts.api_auth import actor_of, needs
from cxm.accounts.models import ApiKey
from cxm.accounts.schemas import KeyIn, KeyOut, NewKeyOut
from cxm.core.schemas import ErrorOut

router = Router(tags=["keys"])
MANAGE = needs("keys.manage")


def key_out(key: ApiKey) -> dict[str, Any]:
    return {"prefix": key.prefix, "name": key.name, "scope": key.scope,
            "default_channel": key.default_channel, "created_at": key.created_at,
            "expires_at": key.expires_at, "revoked_at": key.revoked_at}


@router.get("/keys", response={200: list[KeyOut], 401: ErrorOut, 403: ErrorOut}, auth=MANAGE)
def list_keys(request: HttpRequest) -> Any:
    return [key_out(k) for k in ApiKey.objects.order_by("-created_at")]


@router.post("/keys", response={201: NewKeyOut, 400: ErrorOut, 401: ErrorOut, 403: ErrorOut},
             auth=MANAGE, summary="Create a key; the plaintext is in this answer only")
def create_key(request: HttpRequest, body: KeyIn) -> Any:
    key, plaintext = actions.create_api_key(
        name=body.name, scope=body.scope, actor=actor_of(request), expires_at=body.expires_at,
        default_channel=body.default_channel,
    )
    return Status(201, {**key_out(key), "key": plaintext})


@router.delete("/keys/{prefix}", response={200: KeyOut, 401: ErrorOut, 403: ErrorOut,
                                           404: ErrorOut}, auth=MANAGE)
def revoke_key(request: HttpRequest, prefix: str) -> Any:
    return key_out(actions.revoke_api_key(prefix=prefix, actor=actor_of(request)))
