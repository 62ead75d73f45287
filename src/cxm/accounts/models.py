from __future__ import annotations

from django.conf import settings
from django.db import models

from cxm.core.clock import now


class Scope(models.TextChoices):
    INGEST = "ingest", "ingest (write events only)"
    READ = "read", "read (REST API reads)"
    ADMIN = "admin", "admin (everything)"


class ApiKey(models.Model):
    """An API key. Only a SHA-256 digest of the secret is stored; the key is shown once."""

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    digest = models.CharField(max_length=64)
    scope = models.CharField(max_length=10, choices=Scope.choices)
    default_channel = models.CharField(max_length=20, blank=True, default="")
    created_at = models.DateTimeField(default=now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.scope}, {self.prefix})"

    @property
    def is_active(self) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > now()

    @property
    def actor_label(self) -> str:
        return f"key:{self.prefix}"


class Role(models.TextChoices):
    ADMIN = "admin", "admin"
    ANALYST = "analyst", "analyst"
    AGENT = "agent", "agent"
    MARKETER = "marketer", "marketer"
    VIEWER = "viewer", "viewer"


class Membership(models.Model):
    """A web user's role: exactly one per user.

    A row of its own rather than Django groups: a user has one role, never several, so "what is
    this user's role" has one answer that a column holds and a choice constraint checks; groups
    would bring per-model permissions this platform does not use and let a user sit in two roles
    at once. What each role may do is in ``accounts.permissions.MATRIX``, not in the database.
    Superusers are admins whatever this row says; a user with no row has no role and may do
    nothing.
    """

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                related_name="membership")
    role = models.CharField(max_length=20, choices=Role.choices)
    changed_at = models.DateTimeField(default=now)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(role__in=Role.values),
                                   name="accounts_membership_role_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.role}"


class LoginFailure(models.Model):
    """One failed sign-in, kept for the throttling window only (``accounts.throttle``).

    A table rather than a per-process cache: the web server runs several processes, and each
    must see the others' failures. Rows older than the window are pruned as new ones arrive.
    """

    at = models.DateTimeField(default=now, db_index=True)
    username = models.CharField(max_length=150)
    ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["username", "at"], name="accounts_loginfail_user_at"),
            models.Index(fields=["ip", "at"], name="accounts_loginfail_ip_at"),
        ]

    def __str__(self) -> str:
        return f"{self.username} at {self.at:%Y-%m-%d %H:%M}"
