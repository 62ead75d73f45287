"""Consent: the one decision function, and editing consent through the API."""

from __future__ import annotations

from typing import Any

from django.test import Client

from cxm.core.audit import Actor
from cxm.core.models import AuditLog
from cxm.identity import queries
from cxm.identity.consent import may_contact
from cxm.ingest import actions as ingest


def _stamp(granted: bool, at: str = "2026-01-01T00:00:00.000000Z") -> dict[str, Any]:
    return {"granted": granted, "source": "key:x", "at": at}


def test_specific_statement_wins_over_general_ones() -> None:
    consent = {"*:marketing": _stamp(True), "email:marketing": _stamp(False),
               "sms:*": _stamp(False)}
    assert not may_contact(consent, "email", "marketing").allowed
    assert may_contact(consent, "push", "marketing").allowed  # from *:marketing
    assert not may_contact(consent, "sms", "marketing").allowed  # sms:* beats *:marketing
    decision = may_contact(consent, "EMAIL", "Marketing")
    assert decision.reason == "email:marketing refused" and decision.source == "key:x"


def test_without_a_statement_only_service_messages_are_allowed() -> None:
    assert may_contact({}, "email", "service").allowed
    for purpose in ("marketing", "research"):
        decision = may_contact({}, "email", purpose)
        assert not decision.allowed and "no opt-in" in decision.reason


def test_consent_from_events_and_edited_over_the_api(transactional_db: Any, admin_key: str,
                                                     read_key: str) -> None:
    ingest.ingest([{"type": "identify", "userId": "c-1", "messageId": "c1",
                    "timestamp": "2026-02-01T00:00:00Z",
                    "traits": {"consent": {"email": {"marketing": True}}}}],
                  actor=Actor("test"), source="test")
    profile = queries.by_identifier("user_id", "c-1")
    client = Client()
    check = f"/api/v1/profiles/{profile.id}/consent/check"
    allowed = client.get(check, {"channel": "email", "purpose": "marketing"},
                         HTTP_AUTHORIZATION=f"Bearer {read_key}")
    assert allowed.status_code == 200 and allowed.json()["allowed"] is True
    refused = client.put(f"/api/v1/profiles/{profile.id}/consent",
                         {"channel": "email", "purpose": "marketing", "granted": False},
                         content_type="application/json",
                         HTTP_AUTHORIZATION=f"Bearer {read_key}")
    assert refused.status_code == 403
    changed = client.put(f"/api/v1/profiles/{profile.id}/consent",
                         {"channel": "email", "purpose": "marketing", "granted": False},
                         content_type="application/json",
                         HTTP_AUTHORIZATION=f"Bearer {admin_key}")
    assert changed.status_code == 200, changed.content
    after = client.get(check, {"channel": "email", "purpose": "marketing"},
                       HTTP_AUTHORIZATION=f"Bearer {read_key}").json()
    assert after["allowed"] is False and after["source"].startswith("key:")
    row = AuditLog.objects.filter(action="profile.consent_changed",
                                  target_id=str(profile.id)).latest("id")
    assert row.changes == {"before": {"email:marketing": True},
                           "after": {"email:marketing": False}}
    bad = client.put(f"/api/v1/profiles/{profile.id}/consent",
                     {"channel": "pigeon", "purpose": "marketing", "granted": True},
                     content_type="application/json",
                     HTTP_AUTHORIZATION=f"Bearer {admin_key}")
    assert bad.status_code == 400 and "channel must be one of" in bad.json()["message"]
