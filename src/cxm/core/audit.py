"""Writing audit rows. Called from ``actions`` modules inside their transaction."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cxm.core import sql
from cxm.core.clock import now
from cxm.core.models import AuditLog


@dataclass(frozen=True)
class Actor:
    """Who is making a change: ``user:<id>``, ``key:<prefix>`` or ``system``."""

    label: str
    ip: str | None = None

    @classmethod
    def system(cls) -> Actor:
        return cls("system")


def record(
    actor: Actor, action: str, target_type: str, target_id: str,
    changes: dict[str, Any] | None = None,
) -> None:
    AuditLog.objects.create(
        actor=actor.label, action=action, target_type=target_type, target_id=target_id,
        changes=changes or {}, ip=actor.ip,
    )


@dataclass(frozen=True)
class Entry:
    action: str
    target_type: str
    target_id: str
    changes: dict[str, Any]


def record_many(actor: Actor, entries: Iterable[Entry], at: datetime | None = None) -> int:
    """Many rows in one statement (the ingest path writes one per touched profile)."""
    when = sql.adapt_datetime(at or now())
    rows = [
        (when, actor.label[:120], e.action, e.target_type, e.target_id[:64],
         sql.adapt_json(e.changes), actor.ip)
        for e in entries
    ]
    sql.insert_rows(AuditLog,
                    ("at", "actor", "action", "target_type", "target_id", "changes", "ip"),
                    rows, returning=None)
    return len(rows)
