from __future__ import annotations

from django.db import models

from cxm.core.clock import now
from cxm.core.ids import uuid7


class Survey(models.Model):
    """A questionnaire and how it is delivered. ``definition`` is validated by
    :mod:`cxm.feedback.definition`; ``kind`` names the headline metric (read from the first
    question of that type)."""

    KIND_CHOICES = [("nps", "NPS"), ("csat", "CSAT"), ("ces", "CES"), ("custom", "Custom")]
    STATUS_CHOICES = [("draft", "Draft"), ("active", "Active"), ("closed", "Closed")]

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    name = models.CharField(max_length=120, unique=True)
    slug = models.SlugField(max_length=120, unique=True)
    kind = models.CharField(max_length=10, choices=KIND_CHOICES)
    status = models.CharField(max_length=10, choices=STATUS_CHOICES, default="draft")
    definition = models.JSONField()
    touchpoint = models.CharField(max_length=60, blank=True, default="",
                                  help_text="what is rated, e.g. delivery, support, onboarding")
    stage = models.CharField(max_length=20, blank=True, default="",
                             help_text="journey stage the answers describe")
    # Automatic delivery: invite by email this long after an event of this name.
    trigger_event = models.CharField(max_length=200, blank=True, default="")
    trigger_delay_minutes = models.PositiveIntegerField(default=0)
    rules = models.JSONField(default=dict, blank=True,
                             help_text="this survey's contact rules (feedback.policy)")
    created_at = models.DateTimeField(default=now)
    updated_at = models.DateTimeField(default=now)
    created_by = models.CharField(max_length=80, blank=True, default="")

    def __str__(self) -> str:
        return self.name


class ContactPolicy(models.Model):
    """The company-wide contact rules (one row, ``name='global'``)."""

    name = models.CharField(max_length=20, unique=True, default="global")
    rules = models.JSONField(default=dict)
    updated_at = models.DateTimeField(default=now)
    updated_by = models.CharField(max_length=80, blank=True, default="")

    def __str__(self) -> str:
        return self.name


class Invitation(models.Model):
    """One person asked to answer one survey; its token is the personal link."""

    STATUS_CHOICES = [
        ("pending", "Pending"), ("sending", "Sending"), ("sent", "Sent"),
        ("answered", "Answered"),
        ("suppressed", "Suppressed by policy"), ("failed", "Failed"),
    ]

    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="invitations")
    profile_id = models.UUIDField(db_index=True)
    channel = models.CharField(max_length=10, help_text="email, link, widget")
    touchpoint = models.CharField(max_length=60, blank=True, default="")
    nonce = models.CharField(max_length=32, unique=True)
    # Makes an automatic invitation idempotent: e.g. "event:<messageId>".
    dedupe_key = models.CharField(max_length=300, null=True, blank=True, unique=True)
    status = models.CharField(max_length=12, choices=STATUS_CHOICES, default="pending")
    reason = models.CharField(max_length=300, blank=True, default="")
    created_at = models.DateTimeField(default=now)
    sent_at = models.DateTimeField(null=True, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    # Set while an email is handed to SMTP outside any transaction; a row left "sending"
    # longer than actions.SENDING_TIMEOUT (the process died) is sent again.
    sending_since = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["survey", "status"], name="invitation_survey_status")]

    def __str__(self) -> str:
        return f"{self.survey_id} → {self.profile_id} ({self.status})"


class Contact(models.Model):
    """Everything sent to a person, for the contact policy (orchestration adds its messages)."""

    profile_id = models.UUIDField()
    at = models.DateTimeField(default=now)
    kind = models.CharField(max_length=10, default="survey")
    channel = models.CharField(max_length=10)
    touchpoint = models.CharField(max_length=60, blank=True, default="")
    survey = models.ForeignKey(Survey, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        indexes = [models.Index(fields=["profile_id", "-at"], name="contact_profile_at")]

    def __str__(self) -> str:
        return f"{self.kind} {self.channel} {self.at:%Y-%m-%d}"


class Theme(models.Model):
    """A theme of open-text answers: discovered from the data, then named, edited and merged
    by analysts. ``keywords`` ({word: weight}) decides which answers belong to it."""

    name = models.CharField(max_length=120)
    keywords = models.JSONField(default=dict)
    edited = models.BooleanField(default=False, help_text="an analyst changed it: rediscovery "
                                 "keeps it")
    merged_into = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="absorbed")
    created_at = models.DateTimeField(default=now)
    updated_at = models.DateTimeField(default=now)

    def __str__(self) -> str:
        return self.name


class Response(models.Model):
    """One person's answers to one survey. ``invitation`` is unique: a link answers once;
    ``client_key`` makes widget and import submissions idempotent."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="responses")
    invitation = models.OneToOneField(Invitation, null=True, blank=True,
                                      on_delete=models.SET_NULL, related_name="response")
    client_key = models.CharField(max_length=200, null=True, blank=True, unique=True)
    profile_id = models.UUIDField(null=True, blank=True, db_index=True)
    submitted_at = models.DateTimeField(default=now, db_index=True)
    channel = models.CharField(max_length=10, help_text="email, link, widget, import, api")
    language = models.CharField(max_length=12, blank=True, default="")
    kind = models.CharField(max_length=10)
    score = models.FloatField(null=True, blank=True, help_text="the headline score")
    # Choice and score answers in clear; open-text answers through core.pii.protect.
    answers = models.JSONField()
    # The headline comment (first open-text answer) and what text analytics found in it.
    comment = models.TextField(blank=True, default="", help_text="core.pii.protect")
    sentiment = models.CharField(max_length=10, blank=True, default="")
    sentiment_score = models.FloatField(null=True, blank=True)
    emotion = models.CharField(max_length=20, blank=True, default="")
    # Slicing dimensions frozen at answer time: touchpoint, stage, segment.
    dims = models.JSONField(default=dict, blank=True)
    themes = models.ManyToManyField(Theme, blank=True, related_name="responses")

    class Meta:
        indexes = [models.Index(fields=["survey", "submitted_at"], name="response_survey_time")]

    def __str__(self) -> str:
        return f"{self.survey_id} {self.score} {self.submitted_at:%Y-%m-%d}"


class ThemeJob(models.Model):
    """One run of theme work done by the worker (``tasks.run_theme_job``): a discovery, or
    sorting every comment into the themes again after an analyst changed key words. At most one
    discovery is queued or running, and at most one of each kind waits in the queue (the
    constraints below; ``actions.request_discovery`` hands back the existing job instead)."""

    KIND_CHOICES = [("discover", "Discover themes"), ("rematch", "Sort comments again")]
    STATUS_CHOICES = [("queued", "Queued"), ("running", "Running"), ("done", "Done"),
                      ("failed", "Failed")]
    ACTIVE = ("queued", "running")

    kind = models.CharField(max_length=10, choices=KIND_CHOICES)
    status = models.CharField(max_length=10, choices=STATUS_CHOICES, default="queued")
    requested_by = models.CharField(max_length=80, help_text="the actor: the task acts as them")
    max_themes = models.PositiveSmallIntegerField(default=12)
    theme_id = models.BigIntegerField(null=True, blank=True,
                                      help_text="the edited theme that asked for a re-sort")
    created_at = models.DateTimeField(default=now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    comments = models.PositiveIntegerField(default=0, help_text="comments sorted")
    theme_links = models.PositiveIntegerField(default=0, help_text="answer–theme links written")
    themes_created = models.PositiveIntegerField(default=0)
    themes_replaced = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["kind"], condition=models.Q(kind="discover", status__in=["queued",
                                                                                 "running"]),
                name="theme_job_one_discovery"),
            models.UniqueConstraint(fields=["kind"], condition=models.Q(status="queued"),
                                    name="theme_job_one_queued_per_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.status})"
