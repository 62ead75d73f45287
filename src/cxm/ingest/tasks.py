"""Background work of the ingest app: the event retention policy (daily, in the worker)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F
from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from cxm.core import audit
from cxm.core.clock import now
from cxm.ingest.models import Event, ProfileChannel

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
            # The per-channel counts follow the events they count.
            gone = (Event.objects.filter(id__in=ids).exclude(profile_id=None)
                    .values_list("profile_id", "channel").annotate(n=Count("id")))
            for profile_id, channel, n in gone:
                ProfileChannel.objects.filter(profile_id=profile_id, channel=channel).update(
                    count=F("count") - n)
            ProfileChannel.objects.filter(count__lte=0).delete()
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
