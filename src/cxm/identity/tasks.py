"""Background work of the identity app: erasing profiles inactive past the retention period."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from cxm.core import audit, privacy
from cxm.core.clock import now
from cxm.identity import queries
from cxm.identity.models import Profile

logger = logging.getLogger(__name__)


def erase_inactive_before(cutoff: datetime, actor: audit.Actor, limit: int = 1000) -> int:
    """Erase (everywhere, with proof in the audit log) people last seen before ``cutoff``."""
    erased = 0
    stale = list(Profile.objects.filter(merged_into__isnull=True, last_seen__lt=cutoff)
                 .order_by("last_seen")[:limit])
    for profile in stale:
        privacy.erase(queries.subject_of(profile), actor)
        erased += 1
    return erased


@db_periodic_task(crontab(hour="3", minute="45"), name="cxm.retention.profiles")
def apply_profile_retention() -> int:
    days = settings.CXM.retention_inactive_profiles_days
    if days <= 0:
        return 0
    erased = erase_inactive_before(now() - timedelta(days=days), audit.Actor("retention"))
    logger.info("retention erased %d profiles inactive for %d days", erased, days)
    return erased
