from __future__ import annotations

from django.db import models


class Event(models.Model):
    """One accepted message. ``message_id`` is unique: a retried message is stored once.

    ``profile_id`` and ``identity_id`` are set by the identity stage inside the same
    transaction; they are plain columns because ingest comes before identity and must not
    depend on it.
    """

    message_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=10)
    name = models.CharField(max_length=200, blank=True, default="")
    channel = models.CharField(max_length=10)
    profile_id = models.UUIDField(null=True)
    identity_id = models.BigIntegerField(null=True)
    timestamp = models.DateTimeField()
    received_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    original_timestamp = models.DateTimeField(null=True, blank=True)
    source = models.CharField(max_length=40, help_text="key:<prefix> or import:<file>")
    payload = models.JSONField(help_text="the message; personal values via core.pii")

    class Meta:
        indexes = [
            models.Index(fields=["profile_id", "-timestamp", "-id"], name="event_profile_timeline"),
            models.Index(fields=["timestamp"], name="event_timestamp"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.name} {self.message_id}"


class Outcome(models.Model):
    """Counts of accepted, duplicate and rejected messages per day, source and reason."""

    day = models.DateField()
    source = models.CharField(max_length=40)
    outcome = models.CharField(max_length=12)
    reason = models.CharField(max_length=40, default="", blank=True)
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["day", "source", "outcome", "reason"],
                                    name="outcome_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.source} {self.outcome} {self.reason} {self.count}"


class ProfileChannel(models.Model):
    """How many of a profile's events came through each channel. The identity stage adds to it
    in the transaction that stores the events (so ``identity.queries.channel_counts`` reads a
    few rows instead of counting a heavy profile's events on every read); merges fold the
    merged profile's rows into the survivor, unmerge and retention recount. ``profile_id`` is
    a plain column, like ``Event.profile_id``; erasure deletes the rows with the events."""

    profile_id = models.UUIDField()
    channel = models.CharField(max_length=10)
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["profile_id", "channel"],
                                    name="profile_channel_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.profile_id} {self.channel} {self.count}"
