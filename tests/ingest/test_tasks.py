"""Retention policies run by the worker."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings

from cxm.core.audit import Actor
from cxm.core.models import AuditLog
from cxm.identity import queries
from cxm.identity.models import Profile
from cxm.identity.tasks import apply_profile_retention
from cxm.ingest import actions
from cxm.ingest.models import Event
from cxm.ingest.tasks import apply_event_retention


def _ingest(messages: list[dict[str, Any]]) -> None:
    result = actions.ingest(messages, actor=Actor("test"), source="test")
    assert not result.rejected


def _with(**values: Any) -> Any:
    return override_settings(CXM=dataclasses.replace(settings.CXM, **values))


@pytest.mark.django_db
def test_event_retention_deletes_only_old_events() -> None:
    _ingest([
        {"type": "track", "userId": "r1", "event": "Old", "messageId": "old",
         "timestamp": "2020-01-01T00:00:00Z"},
        {"type": "track", "userId": "r1", "event": "New", "messageId": "new"},
    ])
    with _with(retention_events_days=0):
        assert apply_event_retention.call_local() == 0
    with _with(retention_events_days=365):
        assert apply_event_retention.call_local() == 1
    assert list(Event.objects.values_list("message_id", flat=True)) == ["new"]
    row = AuditLog.objects.get(action="retention.events_deleted")
    assert row.changes["deleted"] == 1 and row.actor == "retention"


@pytest.mark.django_db
def test_profile_retention_erases_people_not_seen_for_the_period() -> None:
    _ingest([
        {"type": "identify", "userId": "gone", "messageId": "g1",
         "timestamp": "2019-05-01T00:00:00Z", "traits": {"email": "gone@example.com"}},
        {"type": "identify", "userId": "here", "messageId": "h1",
         "traits": {"email": "here@example.com"}},
    ])
    with _with(retention_inactive_profiles_days=730):
        assert apply_profile_retention.call_local() == 1
    assert Profile.objects.count() == 1
    assert queries.reveal(queries.by_identifier("user_id", "here").email) == "here@example.com"
    assert not Event.objects.filter(message_id="g1").exists()
    assert AuditLog.objects.filter(action="privacy.erased", actor="retention").count() == 1
