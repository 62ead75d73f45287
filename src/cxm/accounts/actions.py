"""Every write to accounts goes through here."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction

from cxm.accounts import keys
from cxm.accounts.models import ApiKey
from cxm.core import audit
from cxm.core.clock import now
from cxm.core.errors import InvalidInput, NotFound

CHANNELS = ("web", "app", "email", "chat", "phone", "social", "store", "iot", "survey", "support")


def create_api_key(
    *, name: str, scope: str, actor: audit.Actor, expires_at: datetime | None = None,
    default_channel: str = "", created_by_id: int | None = None,
) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the plaintext, which is never stored or shown again."""
    name = name.strip()
    if not name:
        raise InvalidInput("name must not be empty", code="key_name_required")
    if scope not in keys.SCOPES:
        raise InvalidInput(f"scope must be one of {', '.join(keys.SCOPES)}", code="key_scope")
    if default_channel and default_channel not in CHANNELS:
        raise InvalidInput(f"default channel must be one of {', '.join(CHANNELS)}",
                           code="key_channel")
    new = keys.generate()
    with transaction.atomic():
        key = ApiKey.objects.create(
            name=name, prefix=new.prefix, digest=new.digest, scope=scope,
            expires_at=expires_at, default_channel=default_channel, created_by_id=created_by_id,
        )
        audit.record(actor, "api_key.created", "api_key", key.prefix,
                     {"name": name, "scope": scope})
    return key, new.plaintext


def revoke_api_key(*, prefix: str, actor: audit.Actor) -> ApiKey:
    with transaction.atomic():
        try:
            key = ApiKey.objects.select_for_update().get(prefix=prefix)
        except ApiKey.DoesNotExist:
            raise NotFound(f"no API key with prefix {prefix!r}", code="key_not_found") from None
        if key.revoked_at is None:
            key.revoked_at = now()
            key.save(update_fields=["revoked_at"])
            audit.record(actor, "api_key.revoked", "api_key", key.prefix, {"name": key.name})
    return key


def create_user(*, username: str, password: str, is_admin: bool, actor: audit.Actor) -> int:
    """Create a web user (password stored with Argon2)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.password_validation import validate_password
    from django.core.exceptions import ValidationError

    user_model = get_user_model()
    username = username.strip()
    if not username:
        raise InvalidInput("username must not be empty", code="username_required")
    if user_model.objects.filter(username=username).exists():
        raise InvalidInput(f"user {username!r} exists already", code="username_taken")
    try:
        validate_password(password)
    except ValidationError as error:
        raise InvalidInput(" ".join(error.messages), code="weak_password") from None
    with transaction.atomic():
        user = user_model.objects.create_user(username=username, password=password,
                                              is_staff=is_admin, is_superuser=is_admin)
        audit.record(actor, "user.created", "user", str(user.pk),
                     {"username": username, "admin": is_admin})
    return int(user.pk)
