"""Every write to accounts goes through here."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q

from cxm.accounts import keys, permissions, throttle
from cxm.accounts.models import ApiKey, LoginFailure, Membership
from cxm.core import audit
from cxm.core.clock import now
from cxm.core.errors import Conflict, InvalidInput, NotFound

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


def create_user(
    *, username: str, password: str, actor: audit.Actor, role: str | None = None,
    is_admin: bool | None = None,
) -> int:
    """Create a web user with a role (password checked by Django's validators, stored with
    Argon2). ``is_admin`` is the older spelling of ``role="admin"``; with neither, the user is
    a viewer (least privilege)."""
    from django.contrib.auth.password_validation import validate_password
    from django.core.exceptions import ValidationError

    if role is None:
        role = "admin" if is_admin else "viewer"
    _check_role(role)
    user_model = get_user_model()
    username = username.strip()
    if not username:
        raise InvalidInput("username must not be empty", code="username_required")
    if len(username) > 150:
        raise InvalidInput("username must be at most 150 characters", code="username_too_long")
    if user_model.objects.filter(username__iexact=username).exists():
        raise InvalidInput(f"user {username!r} exists already", code="username_taken")
    try:
        validate_password(password, user_model(username=username))
    except ValidationError as error:
        raise InvalidInput(" ".join(error.messages), code="weak_password") from None
    with transaction.atomic():
        user = user_model.objects.create_user(username=username, password=password,
                                              is_staff=role == "admin")
        Membership.objects.create(user=user, role=role)
        audit.record(actor, "user.created", "user", str(user.pk),
                     {"username": username, "role": role})
    return int(user.pk)


def _check_role(role: str) -> None:
    if role not in permissions.ROLES:
        raise InvalidInput(f"role must be one of {', '.join(permissions.ROLES)}", code="role")


def _locked_user(user_id: int) -> Any:
    try:
        return get_user_model().objects.select_for_update().get(pk=user_id)
    except get_user_model().DoesNotExist:
        raise NotFound(f"no user with id {user_id}", code="user_not_found") from None


def _other_active_admins(user_id: int) -> int:
    return int(get_user_model().objects.filter(is_active=True).exclude(pk=user_id).filter(
        Q(is_superuser=True) | Q(membership__role="admin")).count())


def set_role(*, user_id: int, role: str, actor: audit.Actor) -> str:
    """Give a user a role; returns the previous one ("" when the user had none). The last
    active admin keeps the role, so the platform never loses its administrator."""
    _check_role(role)
    with transaction.atomic():
        user = _locked_user(user_id)
        membership = Membership.objects.select_for_update().filter(user=user).first()
        before = "admin" if user.is_superuser else (membership.role if membership else "")
        if before == role:
            return str(before)
        if before == "admin" and user.is_active and not _other_active_admins(user.pk):
            raise Conflict("this is the only active admin; make someone else admin first",
                           code="last_admin")
        if membership is None:
            Membership.objects.create(user=user, role=role)
        else:
            membership.role = role
            membership.changed_at = now()
            membership.save(update_fields=["role", "changed_at"])
        user.is_superuser = user.is_superuser and role == "admin"
        user.is_staff = role == "admin"
        user.save(update_fields=["is_superuser", "is_staff"])
        audit.record(actor, "user.role_changed", "user", str(user.pk),
                     {"username": user.get_username(), "from": before, "to": role})
    return str(before)


def deactivate_user(*, user_id: int, actor: audit.Actor) -> Any:
    """Stop a user from signing in (their open sessions end with it); nothing is deleted, so
    the audit log keeps naming them. Users cannot deactivate themselves, nor the last admin."""
    with transaction.atomic():
        user = _locked_user(user_id)
        if not user.is_active:
            return user
        if actor.label == f"user:{user.pk}":
            raise Conflict("you cannot deactivate yourself", code="cannot_deactivate_self")
        is_admin = user.is_superuser or Membership.objects.filter(user=user,
                                                                  role="admin").exists()
        if is_admin and not _other_active_admins(user.pk):
            raise Conflict("this is the only active admin", code="last_admin")
        user.is_active = False
        user.save(update_fields=["is_active"])
        audit.record(actor, "user.deactivated", "user", str(user.pk),
                     {"username": user.get_username()})
    return user


def reactivate_user(*, user_id: int, actor: audit.Actor) -> Any:
    with transaction.atomic():
        user = _locked_user(user_id)
        if user.is_active:
            return user
        user.is_active = True
        user.save(update_fields=["is_active"])
        audit.record(actor, "user.reactivated", "user", str(user.pk),
                     {"username": user.get_username()})
    return user


# --- sign-in throttling (see accounts.throttle) ------------------------------------------------


def record_login_failure(*, username: str, ip: str | None,
                         at: datetime | None = None) -> throttle.Lock | None:
    """Count a failed sign-in; returns the lock it set, if it set one (that is audited)."""
    at = at or now()
    name = throttle.normalize(username)
    with transaction.atomic():
        LoginFailure.objects.filter(at__lt=at - throttle.WINDOW - throttle.LOCK).delete()
        LoginFailure.objects.create(username=name, ip=ip or None, at=at)
        lock = throttle.check(name, ip, at)
        if lock is not None:
            target = ("login", name[:64]) if lock.by == "username" else ("ip", ip or "")
            audit.record(audit.Actor("anonymous", ip), "login.locked", *target,
                         {"by": lock.by, "until": lock.until.isoformat()})
    return lock


def clear_login_failures(*, username: str) -> None:
    """A successful sign-in forgets the user name's failures (not the address's)."""
    LoginFailure.objects.filter(username=throttle.normalize(username)).delete()
