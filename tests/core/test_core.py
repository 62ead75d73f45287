"""Shared kernel: ids, personal-data door, errors, clock and the audit log."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from cxm.core import audit, clock, errors, ids, pii
from cxm.core.models import AuditLog


def test_uuid7_has_version_variant_and_time_order() -> None:
    made = []
    for _ in range(5):
        made.append(ids.uuid7())
        time.sleep(0.002)
    for value in made:
        assert value.version == 7
        assert value.variant == uuid.RFC_4122
    assert made == sorted(made)
    millis = made[0].int >> 80
    assert abs(millis - time.time_ns() // 1_000_000) < 60_000


def test_uuid7_is_unique_within_one_millisecond() -> None:
    values = {ids.uuid7() for _ in range(5000)}
    assert len(values) == 5000


def test_pii_door_round_trips_and_masks() -> None:
    assert pii.reveal(pii.protect("Ada Lovelace")) == "Ada Lovelace"
    assert pii.lookup_key("email", "a@x.com") == pii.lookup_key("email", "a@x.com")
    assert pii.is_personal_trait("email") and pii.is_personal_trait("firstName")
    assert not pii.is_personal_trait("plan")
    assert pii.mask("alice@example.com") == "a***@example.com"
    assert pii.mask("+14155552671") == "+1***"
    assert pii.mask("ab") == "***"
    assert "alice" not in pii.mask("alice@example.com")


def test_errors_carry_code_status_and_message() -> None:
    error = errors.NotFound("no profile 1", code="profile_not_found")
    assert (error.code, error.status, error.message) == ("profile_not_found", 404, "no profile 1")
    assert str(error) == "no profile 1"
    assert errors.InvalidInput("x").status == 400 and errors.InvalidInput("x").code == "invalid"
    conflict = errors.Conflict("busy", status=503)
    assert conflict.status == 503 and conflict.code == "conflict"
    assert isinstance(conflict, errors.CxmError)


def test_clock_is_utc_aware() -> None:
    current = clock.now()
    assert current.tzinfo is not None and current.utcoffset() == timedelta(0)
    assert abs(current - datetime.now(UTC)) < timedelta(seconds=5)


@pytest.mark.django_db
def test_audit_record_and_record_many() -> None:
    actor = audit.Actor("user:7", "127.0.0.1")
    audit.record(actor, "thing.done", "thing", "42", {"a": 1})
    row = AuditLog.objects.get(action="thing.done")
    assert (row.actor, row.target_type, row.target_id, row.changes, row.ip) == (
        "user:7", "thing", "42", {"a": 1}, "127.0.0.1")
    assert row.at is not None
    when = datetime(2025, 1, 1, tzinfo=UTC)
    count = audit.record_many(audit.Actor.system(), [
        audit.Entry("x.one", "x", "1", {}), audit.Entry("x.two", "x", "2", {"k": "v"})], when)
    assert count == 2
    rows = list(AuditLog.objects.filter(action__startswith="x.").order_by("target_id"))
    assert [(r.action, r.actor, r.at, r.ip) for r in rows] == [
        ("x.one", "system", when, None), ("x.two", "system", when, None)]
    assert audit.record_many(actor, []) == 0
