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
