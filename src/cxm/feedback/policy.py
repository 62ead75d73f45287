"""The contact policy against survey fatigue (pure: no I/O).

Asked before every invitation — and, later, by orchestration before every outbound message —
with what the platform has already sent the person. Rules (all optional, 0 = off):

``min_days_between``  no survey to the same person more often than once in this many days
``touchpoint_days``   not twice about the same touchpoint (e.g. "delivery") in this many days
``survey_days``       not the same survey twice in this many days
``max_contacts_7d``   at most this many contacts of any kind (surveys and messages) in 7 days
``require_consent``   the person must allow ``<channel>:research`` (``identity.consent``)

Global rules and a survey's own rules combine by taking the stricter of each, so a survey can
tighten but never loosen what the company decided for everyone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta
from typing import Any

from cxm.identity.consent import may_contact

SURVEY_PURPOSE = "research"


@dataclass(frozen=True)
class Rules:
    min_days_between: int = 30
    touchpoint_days: int = 90
    survey_days: int = 0
    max_contacts_7d: int = 0
    require_consent: bool = True

    def stricter(self, other: Rules) -> Rules:
        def tighter(a: int, b: int) -> int:
            return max(a, b)

        def cap(a: int, b: int) -> int:  # for a maximum count, smaller non-zero is stricter
            return min(x for x in (a, b) if x) if (a or b) else 0

        return Rules(
            min_days_between=tighter(self.min_days_between, other.min_days_between),
            touchpoint_days=tighter(self.touchpoint_days, other.touchpoint_days),
            survey_days=tighter(self.survey_days, other.survey_days),
            max_contacts_7d=cap(self.max_contacts_7d, other.max_contacts_7d),
            require_consent=self.require_consent or other.require_consent,
        )

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


RULE_NAMES = tuple(f.name for f in fields(Rules))


def rules_from(data: Mapping[str, Any] | None, base: Rules | None = None) -> Rules:
    """Rules from stored or submitted JSON; unknown names and bad values raise ValueError."""
    result = base or Rules()
    if not data:
        return result
    unknown = sorted(set(data) - set(RULE_NAMES))
    if unknown:
        raise ValueError(f"unknown contact rule {unknown[0]!r} (known: {', '.join(RULE_NAMES)})")
    changes: dict[str, Any] = {}
    for name, value in data.items():
        if name == "require_consent":
            if not isinstance(value, bool):
                raise ValueError("require_consent must be true or false")
        elif isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 3650:
            raise ValueError(f"{name} must be a whole number of days/contacts from 0 to 3650")
        changes[name] = value
    return replace(result, **changes)


@dataclass(frozen=True)
class Contact:
    """Something already sent to the person."""

    at: datetime
    kind: str  # "survey" | "message"
    channel: str
    touchpoint: str = ""
    survey_id: str = ""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    rule: str = ""  # which rule refused, "" when allowed
    next_eligible_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"allowed": self.allowed, "reason": self.reason, "rule": self.rule,
                "next_eligible_at": self.next_eligible_at.isoformat()
                if self.next_eligible_at else None}


def decide(
    rules: Rules, history: Iterable[Contact], *, at: datetime, channel: str,
    consent: Mapping[str, Any], survey_id: str = "", touchpoint: str = "",
) -> Decision:
    """May this person be sent this survey now? The first rule that refuses says why."""
    if rules.require_consent:
        consent_decision = may_contact(consent, channel, SURVEY_PURPOSE)
        if not consent_decision.allowed:
            return Decision(False, f"no consent: {consent_decision.reason}", "require_consent")
    contacts = sorted(history, key=lambda c: c.at, reverse=True)
    surveys = [c for c in contacts if c.kind == "survey"]
    checks: list[tuple[str, int, list[Contact], str]] = [
        ("min_days_between", rules.min_days_between, surveys, "asked for feedback"),
        ("touchpoint_days", rules.touchpoint_days,
         [c for c in surveys if touchpoint and c.touchpoint == touchpoint],
         f"asked about {touchpoint!r}"),
        ("survey_days", rules.survey_days,
         [c for c in surveys if survey_id and c.survey_id == survey_id],
         "sent this survey"),
    ]
    for rule, days, relevant, what in checks:
        if not days or not relevant:
            continue
        latest = relevant[0].at
        until = latest + timedelta(days=days)
        if until > at:
            return Decision(False, f"{what} on {latest.date().isoformat()}; the limit is once "
                            f"in {days} days", rule, until)
    if rules.max_contacts_7d:
        recent = [c for c in contacts if c.at > at - timedelta(days=7)]
        if len(recent) >= rules.max_contacts_7d:
            oldest = recent[rules.max_contacts_7d - 1].at
            return Decision(False, f"{len(recent)} contacts in the last 7 days; the limit is "
                            f"{rules.max_contacts_7d}", "max_contacts_7d",
                            oldest + timedelta(days=7))
    return Decision(True, "within the contact policy")
