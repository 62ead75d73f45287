"""The one function every feature asks before it contacts or processes a person (pure).

Consent is stored per ``channel:purpose`` (see ``Profile.consent``); Segment's category
preferences are stored for every channel as ``*:<purpose>``. The most specific statement wins:
``channel:purpose``, then ``channel:*``, then ``*:purpose``. Without any statement, ``service``
messages are allowed (the customer's own orders and cases: a contract or legitimate interest)
and every other purpose needs an opt-in, as GDPR/ePrivacy marketing rules require.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

CHANNELS = ("email", "sms", "phone", "in_app", "push", "post")
PURPOSES = ("service", "marketing", "research", "analytics", "personalisation")
ALLOWED_WITHOUT_STATEMENT = frozenset({"service"})


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str  # e.g. "email:marketing granted 2026-01-02 by key:abc", "no opt-in"
    source: str = ""
    at: str = ""


def may_contact(consent: Mapping[str, Any], channel: str, purpose: str) -> Decision:
    channel, purpose = channel.lower(), purpose.lower()
    for key in (f"{channel}:{purpose}", f"{channel}:*", f"*:{purpose}"):
        entry = consent.get(key)
        if isinstance(entry, dict) and isinstance(entry.get("granted"), bool):
            verb = "granted" if entry["granted"] else "refused"
            return Decision(entry["granted"], f"{key} {verb}", str(entry.get("source", "")),
                            str(entry.get("at", "")))
    if purpose in ALLOWED_WITHOUT_STATEMENT:
        return Decision(True, f"{purpose} needs no opt-in")
    return Decision(False, f"no opt-in for {channel}:{purpose}")
