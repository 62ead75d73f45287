"""Background work of the ingest app: the event retention policy (daily, in the worker)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from cxm.core import audit
from cxm.core.clock import now
from cxm.ingest.models import Event

logger = logging.getLogger(__name__)
_BATCH = 5000


def delete_events_before(cutoff: datetime, actor: audit.Actor) -> int:
    """Delete events older than ``cutoff`` in small transactions (ingest keeps running)."""
    total = 0
    while True:
        with transaction.atomic():
            ids = list(Event.objects.filter(timestamp__lt=cutoff).order_by("id")
                       .values_list("id", flat=True)[:_BATCH])
            if not ids:
                break
            total += Event.objects.filter(id__in=ids).delete()[0]
    if total:
        audit.record(actor, "retention.events_deleted", "event", "*",
                     {"before": cutoff.isoformat(), "deleted": total})
    return total


@db_periodic_task(crontab(hour="3", minute="15"), name="cxm.retention.events")
def apply_event_retention() -> int:
    days = settings.CXM.retention_events_days
    if days <= 0:
        return 0
    deleted = delete_events_before(now() - timedelta(days=days), audit.Actor("retention"))
    logger.info("retention removed %d events older than %d days", deleted, days)
    return deleted
