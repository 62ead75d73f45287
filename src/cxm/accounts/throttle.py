"""Sign-in throttling: after 5 failed sign-ins for one user name, or 20 from one address, within
15 minutes, further attempts are refused for 15 minutes.

Failures live in the ``LoginFailure`` table (written by ``accounts.actions``), so every web
process sees every other's. Refused attempts are not recorded: a lock lasts 15 minutes from the
failure that set it, however often someone knocks meanwhile. A successful sign-in clears its
user name's failures (not its address's: signing in to one's own account must not reset the
count of guesses made against others from the same address).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from cxm.accounts.models import LoginFailure
from cxm.core.clock import now

USER_LIMIT = 5
IP_LIMIT = 20
WINDOW = timedelta(minutes=15)
LOCK = timedelta(minutes=15)


@dataclass(frozen=True)
class Lock:
    by: str  # "username" or "ip"
    until: datetime

    def seconds_left(self, at: datetime) -> int:
        return max(1, int((self.until - at).total_seconds() + 0.999))

    def message(self, at: datetime) -> str:
        minutes = (self.seconds_left(at) + 59) // 60
        whom = "this user name" if self.by == "username" else "your network address"
        return (f"Too many failed sign-ins for {whom}. Sign-in is paused for {minutes} "
                f"minute{'s' if minutes != 1 else ''}; try again then.")


def normalize(username: str) -> str:
    return username.strip().lower()[:150]


def locked_until(stamps: list[datetime], limit: int, window: timedelta = WINDOW,
                 lock: timedelta = LOCK) -> datetime | None:
    """When the latest lock set by these failures ends (pure): a lock starts at any failure
    that is the ``limit``-th within ``window`` and lasts ``lock``."""
    ordered = sorted(stamps)
    until = None
    for index in range(limit - 1, len(ordered)):
        if ordered[index] - ordered[index - limit + 1] <= window:
            until = ordered[index] + lock
    return until


def check(username: str, ip: str | None, at: datetime | None = None) -> Lock | None:
    """The lock in force for this user name or address, or ``None``."""
    at = at or now()
    since = at - WINDOW - LOCK
    checks: list[tuple[str, int, list[datetime]]] = [(
        "username", USER_LIMIT,
        list(LoginFailure.objects.filter(username=normalize(username), at__gte=since, at__lte=at)
             .values_list("at", flat=True)),
    )]
    if ip:
        checks.append(("ip", IP_LIMIT, list(
            LoginFailure.objects.filter(ip=ip, at__gte=since, at__lte=at)
            .values_list("at", flat=True))))
    for by, limit, stamps in checks:
        until = locked_until(stamps, limit)
        if until is not None and until > at:
            return Lock(by, until)
    return None
