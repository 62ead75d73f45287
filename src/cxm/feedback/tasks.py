"""Background work of the feedback app: sending email invitations, inviting people after the
events a survey is triggered by, and theme jobs (discovery, sorting comments again). All are
idempotent, so huey may retry them."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from datetime import timedelta

from huey.contrib.djhuey import db_task

from cxm.feedback.models import Survey

logger = logging.getLogger(__name__)


@db_task(retries=4, retry_delay=60, name="cxm.feedback.send_invitation")
def send_invitation(invitation_id: int) -> str:
    from cxm.feedback import actions

    delivery = actions.send_invitation(invitation_id)
    if delivery.status == "failed" and delivery.detail.startswith("SMTP"):
        # Raising makes huey retry later; the row stays pending until it is sent.
        raise RuntimeError(f"invitation {invitation_id} not sent yet: {delivery.detail}")
    return delivery.status


@db_task(retries=2, retry_delay=30, name="cxm.feedback.invite_after_event")
def invite_after_event(survey_id: str, profile_id: str, message_id: str) -> None:
    from cxm.feedback import actions

    actions.invite_after_event(uuid.UUID(survey_id), uuid.UUID(profile_id), message_id)


@db_task(retries=2, retry_delay=30, name="cxm.feedback.record_event_answers")
def record_event_answers(event_ids: list[int]) -> int:
    from cxm.core.audit import Actor
    from cxm.feedback import actions

    return actions.record_event_answers(event_ids, actor=Actor("survey-events")).recorded


@db_task(name="cxm.feedback.run_theme_job")
def run_theme_job(job_id: int) -> str:
    """A ``ThemeJob`` (feedback.actions.run_theme_job): runs once, records its own failure, so
    it is not retried; a second delivery of the same task finds the job taken and does nothing."""
    from cxm.feedback import actions

    return actions.run_theme_job(job_id).status


_TRIGGER_TTL = 15.0  # seconds a process keeps its list of triggered surveys
_triggers: tuple[float, bool, dict[str, list[Survey]]] = (0.0, False, {})


def forget_triggers() -> None:
    """Called when a survey changes, so this process sees new triggers at once (others
    within ``_TRIGGER_TTL`` seconds)."""
    global _triggers
    _triggers = (0.0, False, {})


def _active_triggers() -> tuple[bool, dict[str, list[Survey]]]:
    """(whether any survey exists, active surveys by their trigger event)."""
    global _triggers
    loaded_at, any_survey, triggers = _triggers
    if time.monotonic() - loaded_at < _TRIGGER_TTL:
        return any_survey, triggers
    triggers = {}
    for survey in Survey.objects.filter(status="active").exclude(trigger_event=""):
        triggers.setdefault(survey.trigger_event, []).append(survey)
    any_survey = Survey.objects.exists()
    _triggers = (time.monotonic(), any_survey, triggers)
    return any_survey, triggers


def on_events_stored(event_ids: Sequence[int]) -> None:
    """Ingest's after-commit hook: schedule invitations for surveys triggered by these events,
    and record answers other survey tools sent as events. Costs nothing per batch until a
    survey exists (the list is cached briefly), then one query by primary key."""
    from cxm.feedback.actions import EXTERNAL_EVENT
    from cxm.ingest import queries as ingest_queries

    any_survey, triggers = _active_triggers()
    if not any_survey or not event_ids:
        return
    answers = []
    for event in ingest_queries.tracks(event_ids, [*triggers, EXTERNAL_EVENT]):
        event_id, name, profile_id, message_id = (event.id, event.name, event.profile_id,
                                                  event.message_id)
        if name == EXTERNAL_EVENT:
            answers.append(event_id)
        for survey in triggers.get(name, []):
            args = (str(survey.id), str(profile_id), message_id)
            if survey.trigger_delay_minutes:
                delay = timedelta(minutes=survey.trigger_delay_minutes)
                invite_after_event.schedule(args, delay=int(delay.total_seconds()))
            else:
                invite_after_event(*args)
    if answers:
        record_event_answers(answers)
