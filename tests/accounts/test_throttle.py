"""Sign-in throttling: the pure lock rule, and failures counted in the database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cxm.accounts import actions, throttle
from cxm.accounts.models import LoginFailure
from cxm.core.models import AuditLog

T = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)


def minutes(*offsets: float) -> list[datetime]:
    return [T + timedelta(minutes=m) for m in offsets]


def test_locked_until_rule() -> None:
    assert throttle.locked_until([], 5) is None
    assert throttle.locked_until(minutes(0, 1, 2, 3), 5) is None
    # the fifth failure within 15 minutes locks for 15 minutes from it
    assert throttle.locked_until(minutes(0, 1, 2, 3, 4), 5) == T + timedelta(minutes=19)
    assert throttle.locked_until(minutes(0, 1, 2, 3, 15), 5) == T + timedelta(minutes=30)
    # spread wider than the window: no lock
    assert throttle.locked_until(minutes(0, 4, 8, 12, 16), 5) is None
    # order does not matter; the latest lock wins
    assert throttle.locked_until(minutes(9, 0, 5, 1, 2, 3, 4), 5) == T + timedelta(minutes=24)


@pytest.mark.django_db
def test_five_failures_for_a_user_name_lock_it_for_fifteen_minutes() -> None:
    for index in range(4):
        assert actions.record_login_failure(username="Ann", ip=f"10.0.0.{index}",
                                            at=T + timedelta(minutes=index)) is None
    assert throttle.check("ann", "10.9.9.9", T + timedelta(minutes=4)) is None
    lock = actions.record_login_failure(username=" ANN ", ip="10.0.0.9",
                                        at=T + timedelta(minutes=4))
    assert lock is not None and lock.by == "username"
    assert lock.until == T + timedelta(minutes=19)
    # locked for every address, and for the name in any case
    assert throttle.check("ann", "192.0.2.1", T + timedelta(minutes=18, seconds=59)) == lock
    assert throttle.check("ANN", None, T + timedelta(minutes=10)) == lock
    assert throttle.check("ann", None, T + timedelta(minutes=19)) is None
    assert throttle.check("bob", "10.0.0.9", T + timedelta(minutes=10)) is None
    assert "15 minutes" in lock.message(T + timedelta(minutes=4))
    assert "1 minute;" in lock.message(T + timedelta(minutes=18, seconds=30))
    row = AuditLog.objects.get(action="login.locked")
    assert (row.target_type, row.target_id, row.ip) == ("login", "ann", "10.0.0.9")


@pytest.mark.django_db
def test_twenty_failures_from_one_address_lock_it() -> None:
    for index in range(19):
        assert actions.record_login_failure(username=f"user{index}", ip="203.0.113.5",
                                            at=T + timedelta(seconds=index)) is None
    lock = actions.record_login_failure(username="user19", ip="203.0.113.5",
                                        at=T + timedelta(seconds=19))
    assert lock is not None and lock.by == "ip"
    assert throttle.check("someone-else", "203.0.113.5", T + timedelta(minutes=5)) == lock
    assert throttle.check("someone-else", "203.0.113.6", T + timedelta(minutes=5)) is None
    assert AuditLog.objects.get(action="login.locked").target_type == "ip"


@pytest.mark.django_db
def test_old_failures_are_pruned_and_success_clears_the_user_name() -> None:
    actions.record_login_failure(username="ann", ip="10.0.0.1", at=T)
    actions.record_login_failure(username="bob", ip="10.0.0.1", at=T + timedelta(minutes=1))
    actions.record_login_failure(username="cy", ip="10.0.0.1", at=T + timedelta(minutes=40))
    assert sorted(LoginFailure.objects.values_list("username", flat=True)) == ["cy"]
    actions.record_login_failure(username="cy", ip="10.0.0.1", at=T + timedelta(minutes=41))
    actions.clear_login_failures(username="CY")
    assert not LoginFailure.objects.exists()
