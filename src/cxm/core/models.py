from __future__ import annotations

from django.db import models

from cxm.core.clock import now


class AuditLog(models.Model):
    """Append-only record of every change to customer data: who, what, when, from where."""

    at = models.DateTimeField(default=now, db_index=True)
    actor = models.CharField(max_length=120, help_text="user:<id>, key:<prefix> or system")
    action = models.CharField(max_length=60, db_index=True)
    target_type = models.CharField(max_length=40)
    target_id = models.CharField(max_length=64, db_index=True)
    changes = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["target_type", "target_id", "at"])]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action} {self.target_id}"
