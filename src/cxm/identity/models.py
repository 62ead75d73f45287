from __future__ import annotations

from django.db import models

from cxm.core.clock import now
from cxm.core.ids import uuid7


class Profile(models.Model):
    """One person. A merged profile keeps its row, pointing at the survivor, so that links to
    it keep working and the merge can be undone."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    created_at = models.DateTimeField(default=now)
    updated_at = models.DateTimeField(default=now)
    first_seen = models.DateTimeField(null=True, blank=True)
    last_seen = models.DateTimeField(null=True, blank=True, db_index=True)
    event_count = models.BigIntegerField(default=0)
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="absorbed"
    )
    # {trait: {"value": v, "source": "key:…", "at": "…Z"}}; personal values via core.pii.
    traits = models.JSONField(default=dict, blank=True)
    preferences = models.JSONField(default=dict, blank=True)
    # {"<channel>:<purpose>": {"granted": bool, "source": "…", "at": "…Z"}}
    consent = models.JSONField(default=dict, blank=True)
    # Personal display fields, stored through core.pii.protect.
    display_name = models.CharField(max_length=600, blank=True, default="")
    email = models.CharField(max_length=600, blank=True, default="")
    phone = models.CharField(max_length=300, blank=True, default="")
    # Blind tokens of name words, email and phone (core.pii.search_tokens) for search.
    search_index = models.TextField(blank=True, default="")

    def __str__(self) -> str:
        return str(self.id)


class Identity(models.Model):
    """An identifier (user id, anonymous id, email, phone, external id) owned by one profile."""

    kind = models.CharField(max_length=64)
    value = models.CharField(max_length=300, help_text="core.pii.lookup_key of the value")
    protected_value = models.CharField(max_length=600, blank=True, default="",
                                       help_text="core.pii.protect of the value")
    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="identities")
    source = models.CharField(max_length=40, blank=True, default="")
    created_at = models.DateTimeField(default=now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["value", "kind"], name="identity_unique_value"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}"


class Merge(models.Model):
    """Why two profiles became one, and everything needed to undo it."""

    survivor = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="+")
    merged = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="+")
    at = models.DateTimeField(default=now)
    actor = models.CharField(max_length=120)
    reason = models.JSONField(default=dict)
    moved_identity_ids = models.JSONField(default=list)
    undone_at = models.DateTimeField(null=True, blank=True)
    undone_by = models.CharField(max_length=120, blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["survivor", "at"]), models.Index(fields=["merged", "at"])]

    def __str__(self) -> str:
        return f"{self.merged_id} -> {self.survivor_id}"


class MergeBlock(models.Model):
    """Two profiles a person has said are different: deterministic matching never merges them."""

    profile_low = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="+")
    profile_high = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=now)
    reason = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["profile_low", "profile_high"],
                                    name="merge_block_pair"),
        ]

    def __str__(self) -> str:
        return f"{self.profile_low_id} x {self.profile_high_id}"

