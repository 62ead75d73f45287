"""Every write of the feedback app: one transaction each, with an audit row.

Surveys, the contact policy, invitations (checked against the policy), responses (which also
land on the person's timeline as a ``survey`` event through the real ingest path) and themes.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.text import slugify

from cxm.core import audit, pii
from cxm.core.audit import Actor
from cxm.core.clock import now
from cxm.core.errors import Conflict, CxmError, InvalidInput, NotFound
from cxm.feedback import annotate, policy, queries, tasks, tokens
from cxm.feedback import definition as survey_definition
from cxm.feedback.models import (
    Contact,
    ContactPolicy,
    Invitation,
    Response,
    Survey,
    Theme,
    ThemeJob,
)
from cxm.identity import queries as identity_queries
from cxm.identity.models import Profile
from cxm.ingest import actions as ingest_actions
from cxm.ingest import queries as ingest_queries

logger = logging.getLogger(__name__)

INVITATION_DAYS = 30
# How far ahead of our clock an answer's time may be (a client's clock runs a little fast).
CLOCK_SKEW = timedelta(minutes=5)
DELIVERY_CHANNELS = ("email", "link", "widget")
# Consent is asked per contact channel (identity.consent.CHANNELS); a link is sent by email
# or pasted into a message, so it needs the same consent as an email.
CONSENT_CHANNEL = {"email": "email", "link": "email", "widget": "in_app"}
RESPONSE_EVENT = "Survey Answered"
_SURVEY_FIELDS = ("name", "kind", "status", "definition", "touchpoint", "stage",
                  "trigger_event", "trigger_delay_minutes", "rules")


# -- surveys ---------------------------------------------------------------------------------


def _check_survey_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    clean = dict(fields)
    if "name" in clean:
        name = str(clean["name"] or "").strip()
        if not name or len(name) > 120:
            raise InvalidInput("name: give the survey a name of 1 to 120 characters",
                               code="invalid_name")
        clean["name"] = name
    if "kind" in clean and clean["kind"] not in survey_definition.KINDS:
        raise InvalidInput(f"kind: must be one of {', '.join(survey_definition.KINDS)}",
                           code="invalid_kind")
    if "status" in clean and clean["status"] not in {s for s, _ in Survey.STATUS_CHOICES}:
        raise InvalidInput("status: must be draft, active or closed", code="invalid_status")
    if "definition" in clean:
        try:
            clean["definition"] = survey_definition.parse(clean["definition"]).model_dump(
                mode="json", exclude_none=True)
        except survey_definition.DefinitionError as error:
            raise InvalidInput(f"definition: {error}", code="invalid_definition") from None
    if "rules" in clean:
        try:
            policy.rules_from(clean["rules"] or {})
        except ValueError as error:
            raise InvalidInput(f"rules: {error}", code="invalid_rules") from None
        clean["rules"] = dict(clean["rules"] or {})
    for key, limit in (("touchpoint", 60), ("stage", 20), ("trigger_event", 200)):
        if key in clean:
            clean[key] = str(clean[key] or "").strip()
            if len(clean[key]) > limit:
                raise InvalidInput(f"{key}: at most {limit} characters", code=f"invalid_{key}")
    if "trigger_delay_minutes" in clean:
        delay = clean["trigger_delay_minutes"]
        if isinstance(delay, bool) or not isinstance(delay, int) or not 0 <= delay <= 525600:
            raise InvalidInput("trigger_delay_minutes: a whole number of minutes up to a year",
                               code="invalid_delay")
    return clean


def _check_kind_matches(kind: str, definition: Mapping[str, Any]) -> None:
    if kind == "custom":
        return
    parsed = survey_definition.parse(definition)
    if parsed.score_question(kind) is None:
        raise InvalidInput(f"definition: a {kind.upper()} survey needs a question of type "
                           f"{kind!r}", code="invalid_definition")


def _check_answers_still_fit(survey: Survey, fields: Mapping[str, Any]) -> None:
    """Once a survey has answers, what its headline score means cannot change: a new kind or
    another score question would silently drop the earlier answers from its results."""
    if "kind" not in fields and "definition" not in fields:
        return
    answered = survey.responses.count()
    if not answered:
        return
    before = _score_question(survey_definition.parse(survey.definition), survey.kind)
    after = _score_question(survey_definition.parse(fields.get("definition", survey.definition)),
                            fields.get("kind", survey.kind))
    same = (before is None and after is None) or (
        before is not None and after is not None and (before.id, before.type) ==
        (after.id, after.type))
    if fields.get("kind", survey.kind) != survey.kind or not same:
        raise Conflict(f"this survey has {answered} answers: its kind and its score question "
                       "cannot change any more (make a new survey instead); texts, other "
                       "questions and translations can", code="survey_has_answers")


def create_survey(
    *, name: str, kind: str, definition: Mapping[str, Any], actor: Actor,
    status: str = "active", touchpoint: str = "", stage: str = "", trigger_event: str = "",
    trigger_delay_minutes: int = 0, rules: Mapping[str, Any] | None = None,
) -> Survey:
    fields = _check_survey_fields({
        "name": name, "kind": kind, "definition": definition, "status": status,
        "touchpoint": touchpoint, "stage": stage, "trigger_event": trigger_event,
        "trigger_delay_minutes": trigger_delay_minutes, "rules": rules or {},
    })
    _check_kind_matches(fields["kind"], fields["definition"])
    slug = slugify(fields["name"])[:100] or "survey"
    with transaction.atomic():
        if Survey.objects.filter(name=fields["name"]).exists():
            raise Conflict(f"a survey named {fields['name']!r} exists already",
                           code="survey_exists")
        base, n = slug, 2
        while Survey.objects.filter(slug=slug).exists():
            slug, n = f"{base}-{n}", n + 1
        survey = Survey.objects.create(slug=slug, created_by=actor.label, **fields)
        transaction.on_commit(tasks.forget_triggers)
        audit.record(actor, "survey.create", "survey", str(survey.id),
                     {"kind": survey.kind, "status": survey.status,
                      "questions": len(fields["definition"]["questions"])})
    return survey


def update_survey(survey_id: uuid.UUID | str, *, actor: Actor, **changes: Any) -> Survey:
    unknown = sorted(set(changes) - set(_SURVEY_FIELDS))
    if unknown:
        raise InvalidInput(f"{unknown[0]}: not a survey field", code="invalid_field")
    fields = _check_survey_fields(changes)
    with transaction.atomic():
        survey = Survey.objects.select_for_update().filter(
            id=queries.survey_by_id(survey_id).id).get()
        _check_kind_matches(fields.get("kind", survey.kind),
                            fields.get("definition", survey.definition))
        _check_answers_still_fit(survey, fields)
        if "name" in fields and Survey.objects.filter(name=fields["name"]).exclude(
                id=survey.id).exists():
            raise Conflict(f"a survey named {fields['name']!r} exists already",
                           code="survey_exists")
        before = {k: getattr(survey, k) for k in fields if getattr(survey, k) != fields[k]}
        for key, value in fields.items():
            setattr(survey, key, value)
        survey.updated_at = now()
        survey.save()
        transaction.on_commit(tasks.forget_triggers)
        # Definitions hold no personal data; record the changed field names and small values.
        audit.record(actor, "survey.update", "survey", str(survey.id), {
            "before": {k: (v if k not in {"definition", "rules"} else "…")
                       for k, v in before.items()},
            "after": {k: (fields[k] if k not in {"definition", "rules"} else "…")
                      for k in before},
        })
    return survey


def set_global_rules(rules: Mapping[str, Any], *, actor: Actor) -> policy.Rules:
    try:
        parsed = policy.rules_from(rules)
    except ValueError as error:
        raise InvalidInput(str(error), code="invalid_rules") from None
    with transaction.atomic():
        row, _ = ContactPolicy.objects.select_for_update().get_or_create(name="global")
        before = policy.rules_from(row.rules).as_dict()
        row.rules = parsed.as_dict()
        row.updated_at = now()
        row.updated_by = actor.label
        row.save()
        audit.record(actor, "contact_policy.update", "contact_policy", "global",
                     {"before": before, "after": parsed.as_dict()})
    return parsed


# -- invitations -----------------------------------------------------------------------------


def _person(profile_id: uuid.UUID) -> Profile:
    return identity_queries.canonical(profile_id)


def invite(
    *, survey: Survey, profile_id: uuid.UUID, channel: str, actor: Actor,
    touchpoint: str | None = None, dedupe_key: str | None = None, at: datetime | None = None,
) -> Invitation:
    """Ask one person. The contact policy decides first: a refused invitation is kept with
    status ``suppressed`` and the reason (shown on the profile), and nothing is sent. Email
    invitations are sent by the worker after commit (``tasks.send_invitation``)."""
    if channel not in DELIVERY_CHANNELS:
        raise InvalidInput(f"channel: must be one of {', '.join(DELIVERY_CHANNELS)}",
                           code="invalid_channel")
    if survey.status != "active":
        raise Conflict(f"survey {survey.name!r} is {survey.status}, not active",
                       code="survey_not_active")
    when = at or now()
    touch = survey.touchpoint if touchpoint is None else touchpoint[:60]
    with transaction.atomic():
        if dedupe_key:
            existing = Invitation.objects.filter(dedupe_key=dedupe_key).first()
            if existing is not None:
                return existing
        profile = _person(profile_id)
        if channel == "email" and not profile.email:
            raise InvalidInput("this customer has no email address to send the survey to",
                               code="no_email")
        ids = identity_queries.subject_of(profile).profile_ids
        # Serialise invitations to the same person so two concurrent triggers cannot both
        # pass the policy (select_for_update on the profile row: both databases).
        Profile.objects.select_for_update().filter(id=profile.id).exists()
        decision = policy.decide(
            queries.rules_for(survey), queries.contact_history(ids), at=when,
            channel=CONSENT_CHANNEL[channel], consent=profile.consent,
            survey_id=str(survey.id), touchpoint=touch)
        invitation = Invitation.objects.create(
            survey=survey, profile_id=profile.id, channel=channel, touchpoint=touch,
            nonce=tokens.new_nonce(), dedupe_key=dedupe_key, created_at=when,
            expires_at=when + timedelta(days=INVITATION_DAYS),
            status="pending" if decision.allowed else "suppressed",
            reason="" if decision.allowed else decision.reason[:300],
        )
        if decision.allowed:
            Contact.objects.create(profile_id=profile.id, at=when, kind="survey",
                                   channel=channel, touchpoint=touch, survey=survey)
            if channel == "email":
                transaction.on_commit(lambda: _enqueue_send(invitation.id))
            else:  # a link or the widget is delivered as it is created
                invitation.status, invitation.sent_at = "sent", when
                invitation.save(update_fields=["status", "sent_at"])
        audit.record(actor, "survey.invite", "invitation", str(invitation.id), {
            "survey": str(survey.id), "profile": str(profile.id), "channel": channel,
            "status": invitation.status, "rule": decision.rule})
    return invitation


def _enqueue_send(invitation_id: int) -> None:
    tasks.send_invitation(invitation_id)


def survey_url(invitation: Invitation) -> str:
    return f"{settings.CXM.base_url.rstrip('/')}/s/{tokens.token_for(invitation.nonce)}/"


def opt_out_url(invitation: Invitation) -> str:
    return survey_url(invitation) + "opt-out/"


def opt_out(token: str) -> Profile:
    """The person behind a survey link wants no more surveys on that channel: their consent
    ``<channel>:research`` becomes refused (recorded with the link as its source), which the
    contact policy then honours for every survey."""
    from cxm.identity import actions as identity_actions

    invitation = queries.invitation_by_token(token)
    if invitation.channel not in {"email", "link"}:
        # A widget token is handed to the page, not to the person's mailbox: it is no
        # proof that its holder speaks for the person's consent.
        raise NotFound("this link has no opt-out", code="invalid_link")
    profile = _person(invitation.profile_id)
    return identity_actions.set_consent(
        profile_id=profile.id, channel=CONSENT_CHANNEL[invitation.channel],
        purpose=policy.SURVEY_PURPOSE, granted=False,
        actor=Actor(f"respondent:invitation:{invitation.id}"))


@dataclass(frozen=True)
class Delivery:
    status: str  # sent, skipped, failed
    detail: str = ""


SENDING_TIMEOUT = timedelta(minutes=10)
MAX_ATTEMPTS = 5


def send_invitation(invitation_id: int) -> Delivery:
    """Send one email invitation over SMTP, at least once and normally once.

    The row is claimed (``sending``) in one short transaction, the email handed to SMTP outside
    any transaction — a slow mail server must not hold SQLite's write lock — and the outcome
    recorded in a second one. A retry finds the row sent and sends nothing; a process that dies
    between the hand-off and the second commit leaves it ``sending``, and it is sent again once
    ``SENDING_TIMEOUT`` has passed (a rare double beats an email that never leaves)."""
    from django.core.mail import EmailMultiAlternatives

    started = now()
    with transaction.atomic():
        invitation = (Invitation.objects.select_for_update().select_related("survey")
                      .filter(id=invitation_id).first())
        if invitation is None:
            return Delivery("skipped", "no such invitation")
        stale = (invitation.status == "sending" and invitation.sending_since is not None
                 and invitation.sending_since < started - SENDING_TIMEOUT)
        if invitation.status != "pending" and not stale:
            return Delivery("skipped", f"invitation is {invitation.status}")
        survey = invitation.survey
        if survey.status == "closed":
            _give_up(invitation, "the survey was closed before it was sent")
            return Delivery("skipped", "survey closed")
        profile = _person(invitation.profile_id)
        address = pii.reveal(profile.email) if profile.email else ""
        if not address:
            _give_up(invitation, "no email address")
            return Delivery("failed", "no email address")
        invitation.status, invitation.sending_since = "sending", started
        invitation.attempts += 1
        invitation.save(update_fields=["status", "sending_since", "attempts"])
    parsed = survey_definition.parse(survey.definition)
    language = survey_definition.pick_language(parsed, _languages_of(profile))
    local = survey_definition.localize(parsed, language, survey.name)
    url, stop = survey_url(invitation), opt_out_url(invitation)
    # A header cannot hold a line break (Django refuses it): one line, whatever was typed.
    title = " ".join((local.title or survey.name).split())
    first = local.questions[0].text
    text = (f"{title}\n\n{first}\n\nAnswer here (it takes a minute, no login): {url}\n\n"
            f"This link is personal and works once.\n"
            f"No more survey emails? {stop}\n")
    message = EmailMultiAlternatives(
        subject=title, body=text, from_email=settings.DEFAULT_FROM_EMAIL, to=[address],
        headers={"X-Cxm-Invitation": str(invitation.id),
                 # RFC 2369 / RFC 8058: the mail client's own "unsubscribe" button.
                 "List-Unsubscribe": f"<{stop}>",
                 "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"})
    message.attach_alternative(_invitation_html(title, first, url, stop), "text/html")
    try:
        message.send(fail_silently=False)
    except Exception as error:
        logger.warning("survey invitation %s not sent: %s", invitation.id,
                       type(error).__name__)
        reason = f"SMTP: {type(error).__name__}"[:300]
        with transaction.atomic():
            row = Invitation.objects.select_for_update().get(id=invitation.id)
            if row.attempts >= MAX_ATTEMPTS:
                _give_up(row, reason)
            else:
                row.status, row.sending_since, row.reason = "pending", None, reason
                row.save(update_fields=["status", "sending_since", "reason"])
        return Delivery("failed", reason)
    with transaction.atomic():
        Invitation.objects.filter(id=invitation.id).update(
            status="sent", sent_at=now(), sending_since=None, reason="")
        audit.record(Actor.system(), "survey.invitation_sent", "invitation", str(invitation.id),
                     {"channel": "email", "attempts": invitation.attempts})
    return Delivery("sent")


def _give_up(invitation: Invitation, reason: str) -> None:
    """Delivery failed for good: the person was never reached, so the contact the invitation
    counted against the contact policy is taken back."""
    invitation.status, invitation.reason, invitation.sending_since = "failed", reason[:300], None
    invitation.save(update_fields=["status", "reason", "sending_since"])
    Contact.objects.filter(profile_id=invitation.profile_id, survey_id=invitation.survey_id,
                           channel=invitation.channel, at=invitation.created_at).delete()
    audit.record(Actor.system(), "survey.invitation_failed", "invitation", str(invitation.id),
                 {"channel": invitation.channel, "attempts": invitation.attempts})


def _invitation_html(title: str, question: str, url: str, stop: str) -> str:
    from django.utils.html import format_html

    return str(format_html(
        '<!doctype html><html><body style="font-family:sans-serif;max-width:34rem">'
        "<h1 style=\"font-size:1.3rem\">{}</h1><p>{}</p>"
        '<p><a href="{}" style="display:inline-block;padding:.6rem 1.1rem;background:#2457d6;'
        'color:#fff;border-radius:6px;text-decoration:none">Answer the survey</a></p>'
        '<p style="color:#666;font-size:.85rem">This link is personal and works once. '
        '<a href="{}" style="color:#666">No more survey emails</a></p></body></html>',
        title, question, url, stop))


def _languages_of(profile: Profile) -> list[str]:
    wanted = []
    for key in ("language", "locale"):
        entry = profile.traits.get(key)
        if isinstance(entry, dict) and isinstance(entry.get("value"), str):
            wanted.append(entry["value"])
    return wanted


def invite_after_event(survey_id: uuid.UUID, profile_id: uuid.UUID, message_id: str) -> None:
    """The automatic delivery: idempotent on the triggering event's messageId."""
    survey = Survey.objects.filter(id=survey_id).first()
    if survey is None or survey.status != "active":
        return
    try:
        invite(survey=survey, profile_id=profile_id, channel="email",
               actor=Actor("trigger"), dedupe_key=f"event:{message_id}:{survey.id}"[:300])
    except (InvalidInput, NotFound) as error:
        logger.info("no automatic survey for event: %s", error.code)


# -- responses -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Submission:
    """Answers to store. ``person`` are message fields naming the person when there is no
    profile yet (imports: ``{"context": {"traits": {"email": …}}}``)."""

    survey: Survey
    answers: Mapping[str, Any]
    channel: str
    language: str = ""
    profile_id: uuid.UUID | None = None
    person: Mapping[str, Any] | None = None
    invitation: Invitation | None = None
    client_key: str | None = None
    submitted_at: datetime | None = None
    touchpoint: str | None = None


def submit(submission: Submission, *, actor: Actor) -> Response:
    """Store one response once. Refused (nothing stored) when the answers do not fit the
    survey; :class:`Conflict` ``already_answered`` when its link or client key was used."""
    survey = submission.survey
    try:
        parsed = survey_definition.parse(survey.definition)
        answers = survey_definition.clean_answers(parsed, submission.answers)
    except survey_definition.DefinitionError as error:
        raise InvalidInput(str(error), code="invalid_answer") from None
    when = submission.submitted_at or now()
    if when > now() + CLOCK_SKEW:
        raise InvalidInput(f"submitted_at {when.isoformat()} is in the future",
                           code="invalid_date")
    invitation = submission.invitation
    profile_id = submission.profile_id or (invitation.profile_id if invitation else None)
    profile = _person(profile_id) if profile_id else None
    person = (dict(submission.person or {}) if profile is None
              else identity_queries.message_fields_of(profile))
    if not person and submission.channel != "import":
        raise InvalidInput("a response needs the person who gave it (an email, a user id or a "
                           "profile)", code="no_person")
    response = Response(survey=survey, client_key=submission.client_key, submitted_at=when,
                        channel=submission.channel[:10], kind=survey.kind,
                        language=(submission.language or parsed.language)[:12])
    score_question = _score_question(parsed, survey.kind)
    score = answers.get(score_question.id) if score_question else None
    if score_question is not None:
        response.kind = score_question.type
    text_ids = {q.id for q in parsed.questions if q.type == "text"}
    texts = [answers[q.id] for q in parsed.questions if q.id in text_ids and q.id in answers]
    comment = texts[0] if texts else ""
    found = annotate.annotate(comment) if comment else None
    # The answer goes on the person's timeline through the real ingest path (identity
    # resolution included), validated before the transaction like any other message.
    source = f"survey:{survey.slug}"[:40]
    received = now()
    # An imported answer may be anonymous: it counts in the metrics but has no timeline.
    events = [_timeline_event(survey, response.id, when, score, response.kind, person,
                              submission.channel)] if person else []
    messages, rejected = ingest_actions.validate_messages(events, received_at=received)
    if rejected:
        raise InvalidInput(f"the person could not be recorded: {rejected[0].message}",
                           code="invalid_person")
    # All audit rows (ours and ingest's) are written as the block ends: the audit lock is
    # taken last (see core.audit).
    with transaction.atomic(), audit.collect():
        if invitation is not None:
            invitation = Invitation.objects.select_for_update().get(id=invitation.id)
            if invitation.status == "answered" or Response.objects.filter(
                    invitation=invitation).exists():
                raise Conflict("this survey was already answered with this link; thank you",
                               code="already_answered")
            if invitation.status == "suppressed":
                raise Conflict("this survey link is not active", code="invalid_link")
            if invitation.expires_at < when:
                raise Conflict("this survey link has expired", code="link_expired")
            if survey.status == "closed":
                raise Conflict("this survey is closed and takes no more answers; thank you",
                               code="survey_closed")
        if submission.client_key and Response.objects.filter(
                client_key=submission.client_key).exists():
            raise Conflict("this answer was received already", code="already_answered")
        if messages:
            result = ingest_actions.store_messages(messages, actor=actor, source=source)
            ingest_actions.record_outcomes(source, received.date(), result)
        if profile is None and messages:
            stored = ingest_queries.profile_of_message(messages[0].message_id)
            profile = _person(stored) if stored else None
        response.invitation = invitation
        response.profile_id = profile.id if profile else None
        response.score = float(score) if score is not None else None
        response.answers = {k: (pii.protect(v) if k in text_ids else v)
                            for k, v in answers.items()}
        if comment and found is not None:
            response.comment = pii.protect(comment)
            response.sentiment, response.sentiment_score = found.sentiment, found.score
            response.emotion = found.emotion
        response.dims = {
            "touchpoint": (submission.touchpoint if submission.touchpoint is not None else
                           (invitation.touchpoint if invitation else survey.touchpoint)),
            "stage": survey.stage,
            "segment": queries.segment_of(profile) if profile else "",
        }
        try:
            with transaction.atomic():
                response.save(force_insert=True)
        except IntegrityError:  # the same link or client key, submitted concurrently
            raise Conflict("this answer was received already", code="already_answered") \
                from None
        if comment:
            matched = annotate.matching_themes(comment, list(
                Theme.objects.filter(merged_into__isnull=True)))
            if matched:
                response.themes.set(matched)
        if invitation is not None:
            invitation.status, invitation.answered_at = "answered", when
            invitation.save(update_fields=["status", "answered_at"])
        audit.record(actor, "survey.response", "response", str(response.id), {
            "survey": str(survey.id), "profile": str(response.profile_id or ""),
            "channel": response.channel, "questions": sorted(answers)})
    return response


def _score_question(parsed: survey_definition.Definition, kind: str
                    ) -> survey_definition.Question | None:
    """The question the headline score comes from: the first of the survey's kind, or for a
    custom survey the first score question of any kind."""
    if kind != "custom":
        return parsed.score_question(kind)
    return next((q for q in parsed.questions if q.type in survey_definition.SCORE_TYPES), None)


def _timeline_event(
    survey: Survey, response_id: uuid.UUID, when: datetime, score: Any, kind: str,
    person: Mapping[str, Any], channel: str,
) -> dict[str, Any]:
    context = dict(person.get("context") or {})
    context["channel"] = "survey"
    event: dict[str, Any] = {
        "type": "track", "event": RESPONSE_EVENT, "messageId": f"cxm-response-{response_id}",
        "timestamp": when.isoformat(),
        "properties": {"survey": survey.name, "survey_id": str(survey.id), "kind": kind,
                       "score": score, "response_id": str(response_id), "delivery": channel},
        "context": context,
    }
    for key in ("userId", "anonymousId"):
        if key in person:
            event[key] = person[key]
    return event


def answer_invitation(token: str, answers: Mapping[str, Any], *, language: str = "") -> Response:
    invitation = queries.invitation_by_token(token)
    # No IP: the audit log is permanent and a respondent's address is personal data.
    actor = Actor(f"respondent:invitation:{invitation.id}")
    return submit(Submission(survey=invitation.survey, answers=answers,
                             channel=invitation.channel,
                             language=language, invitation=invitation), actor=actor)


# -- themes ----------------------------------------------------------------------------------
#
# Discovery and re-sorting every comment take seconds at tens of thousands of comments, so the
# web UI and the API only ask for them (request_discovery, edit_theme): a ThemeJob row is
# written and tasks.run_theme_job runs it in the worker, which calls run_theme_job below. The
# slow part (reading, discovering, matching) runs outside any transaction; the themes and their
# links are then replaced in one transaction, so a failure leaves the previous ones whole.

# A job queued or running longer than this is taken as lost (no worker, or it died mid-run):
# the next request marks it failed and starts a new one.
THEME_JOB_STALE = timedelta(hours=1)
_LINK_CHUNK = 1000


@dataclass(frozen=True)
class JobRequest:
    job: ThemeJob
    created: bool  # False: an equal job was queued or running already, and is returned


@dataclass(frozen=True)
class ThemeEdit:
    theme: Theme
    job: ThemeJob | None  # the re-sort of every comment, when the key words changed


@dataclass(frozen=True)
class _Sorted:
    comments: int
    links: int
    created: list[Theme]
    replaced: int


def request_discovery(*, actor: Actor, max_themes: int = 12) -> JobRequest:
    """Ask the worker to discover themes. While a discovery is queued or running, that job is
    returned instead of a second one (a double click, a retried request)."""
    if not 1 <= max_themes <= 50:
        raise InvalidInput("max_themes: from 1 to 50", code="invalid_max_themes")
    with transaction.atomic():
        return _request_job("discover", actor=actor, max_themes=max_themes)


def _request_job(kind: str, *, actor: Actor, max_themes: int = 12,
                 theme_id: int | None = None) -> JobRequest:
    """Inside a transaction: the job of ``kind`` that already waits (for a discovery: or runs),
    or a new one, handed to the worker after commit."""
    _retire_stale_jobs()
    waiting = ThemeJob.objects.filter(kind=kind, status__in=(
        ThemeJob.ACTIVE if kind == "discover" else ("queued",)))
    existing = waiting.select_for_update().order_by("id").first()
    if existing is not None:
        return JobRequest(existing, False)
    try:
        with transaction.atomic():
            job = ThemeJob.objects.create(kind=kind, requested_by=actor.label[:80],
                                          max_themes=max_themes, theme_id=theme_id)
    except IntegrityError:  # a concurrent request created it first
        existing = waiting.order_by("id").first()
        if existing is None:
            raise Conflict("another theme job was just requested; try again",
                           code="theme_job_busy") from None
        return JobRequest(existing, False)
    audit.record(actor, "theme.job_queued", "theme_job", str(job.id),
                 {"kind": kind, "max_themes": max_themes, "theme": theme_id})
    transaction.on_commit(lambda: tasks.run_theme_job(job.id))
    return JobRequest(job, True)


def _retire_stale_jobs() -> None:
    cutoff = now() - THEME_JOB_STALE
    ThemeJob.objects.filter(status="queued", created_at__lt=cutoff).update(
        status="failed", finished_at=now(),
        error="no worker picked it up within an hour (is `cxm worker` running?)")
    ThemeJob.objects.filter(status="running", started_at__lt=cutoff).update(
        status="failed", finished_at=now(), error="the worker stopped before it finished")


def run_theme_job(job_id: int) -> ThemeJob:
    """The worker's side of a job, acting as the person who asked for it. A job runs once:
    one that is no longer queued (done, failed, retired, or taken by another worker) is left
    alone. Any error is recorded on the job as ``failed``; themes and links stay as they were."""
    claimed = ThemeJob.objects.filter(id=job_id, status="queued").update(
        status="running", started_at=now())
    job = ThemeJob.objects.filter(id=job_id).first()
    if job is None:
        raise NotFound(f"no theme job {job_id}", code="theme_job_not_found")
    if not claimed:
        logger.info("theme job %s is %s already; not run again", job_id, job.status)
        return job
    actor = Actor(job.requested_by)
    try:
        if job.kind == "discover":
            _discover(actor=actor, max_themes=job.max_themes, job_id=job.id)
        else:
            _rematch(actor=actor, job_id=job.id)
    except Exception as error:  # recorded for the analyst; the transaction rolled back
        logger.exception("theme job %s (%s) failed", job_id, job.kind)
        message = str(error) if isinstance(error, CxmError) else (
            f"{type(error).__name__}: {error}")
        with transaction.atomic():
            ThemeJob.objects.filter(id=job_id).update(status="failed", finished_at=now(),
                                                      error=message[:500])
            audit.record(actor, "theme.job_failed", "theme_job", str(job_id),
                         {"kind": job.kind, "error": type(error).__name__})
    job.refresh_from_db()
    return job


def discover_themes(*, actor: Actor, max_themes: int = 12) -> list[Theme]:
    """Find themes in every stored comment, now (the demo loader and tests; the UI and API
    ask the worker through :func:`request_discovery`). Analyst-edited themes are kept, the
    others are replaced by what the data says now; then every comment is sorted again."""
    return _discover(actor=actor, max_themes=max_themes).created


def rematch_themes(*, actor: Actor) -> int:
    """Sort every comment into the current themes again, now; returns the links written."""
    return _rematch(actor=actor).links


def _comments() -> tuple[list[uuid.UUID], list[str]]:
    rows = Response.objects.exclude(comment="").values_list("id", "comment")
    ids, texts = [], []
    for response_id, comment in rows.iterator(chunk_size=2000):
        ids.append(response_id)
        texts.append(pii.reveal(comment))
    return ids, texts


def _sort(ids: Sequence[uuid.UUID], texts: Sequence[str], themes: Sequence[Theme]
          ) -> dict[uuid.UUID, list[Theme]]:
    match = annotate.theme_matcher(themes)
    return {response_id: match(text) for response_id, text in zip(ids, texts, strict=True)}


def _fingerprint(themes: Sequence[Theme]) -> list[tuple[int | None, str, list[Any]]]:
    return [(t.id, t.name, sorted(t.keywords.items())) for t in themes]


def _active_themes_locked() -> list[Theme]:
    """Every active theme, locked until commit: link replacements and edits take turns."""
    return list(Theme.objects.select_for_update().filter(merged_into__isnull=True)
                .order_by("id"))


def _replace_links(plan: dict[uuid.UUID, list[Theme]], themes: Sequence[Theme]) -> int:
    """Inside the transaction: the links of every comment in ``plan`` become the planned ones;
    comments that arrived since the plan was made are sorted here too."""
    arrived = list(set(Response.objects.exclude(comment="").values_list("id", flat=True))
                   - set(plan))
    if arrived:
        plan = dict(plan)
        for start in range(0, len(arrived), _LINK_CHUNK):
            rows = list(Response.objects.filter(id__in=arrived[start:start + _LINK_CHUNK])
                        .values_list("id", "comment"))
            plan.update(_sort([r[0] for r in rows], [pii.reveal(r[1]) for r in rows], themes))
    through = Response.themes.through
    ids = list(plan)
    for start in range(0, len(ids), _LINK_CHUNK):
        through.objects.filter(response_id__in=ids[start:start + _LINK_CHUNK]).delete()
    links = [through(response_id=response_id, theme_id=theme.id)
             for response_id, matched in plan.items() for theme in matched]
    through.objects.bulk_create(links, batch_size=2000, ignore_conflicts=True)
    return len(links)


def _finish_job(job_id: int | None, sorted_: _Sorted) -> None:
    if job_id is not None:
        ThemeJob.objects.filter(id=job_id).update(
            status="done", finished_at=now(), comments=sorted_.comments,
            theme_links=sorted_.links, themes_created=len(sorted_.created),
            themes_replaced=sorted_.replaced, error="")


def _discover(*, actor: Actor, max_themes: int, job_id: int | None = None) -> _Sorted:
    ids, texts = _comments()
    found = annotate.discover(texts, max_themes=max_themes)

    def plan_with(kept: list[Theme]) -> tuple[list[Theme], dict[uuid.UUID, list[Theme]]]:
        names = {t.name.lower() for t in kept}
        new = [Theme(name=name, keywords=keywords) for name, keywords in found
               if name.lower() not in names]
        return new, _sort(ids, texts, [*kept, *new])

    kept = list(Theme.objects.filter(merged_into__isnull=True, edited=True).order_by("id"))
    new, plan = plan_with(kept)
    with transaction.atomic():
        active = _active_themes_locked()
        now_kept = [t for t in active if t.edited]
        if _fingerprint(now_kept) != _fingerprint(kept):  # edited meanwhile: sort again
            kept = now_kept
            new, plan = plan_with(kept)
        stale = [t.id for t in active if not t.edited]
        Theme.objects.filter(merged_into__in=stale).update(merged_into=None)
        Theme.objects.filter(id__in=stale).delete()
        for theme in new:
            theme.save(force_insert=True)
        links = _replace_links(plan, [*kept, *new])
        result = _Sorted(len(plan), links, new, len(stale))
        audit.record(actor, "theme.discover", "theme", "*",
                     {"created": len(new), "replaced": len(stale), "comments": len(texts),
                      "job": job_id})
        _finish_job(job_id, result)
    return result


def _rematch(*, actor: Actor, job_id: int | None = None) -> _Sorted:
    ids, texts = _comments()
    themes = list(Theme.objects.filter(merged_into__isnull=True).order_by("id"))
    plan = _sort(ids, texts, themes)
    with transaction.atomic():
        active = _active_themes_locked()
        if _fingerprint(active) != _fingerprint(themes):  # edited meanwhile: sort again
            themes = active
            plan = _sort(ids, texts, themes)
        links = _replace_links(plan, themes)
        result = _Sorted(len(plan), links, [], 0)
        audit.record(actor, "theme.rematch", "theme", "*",
                     {"comments": len(plan), "links": links, "job": job_id})
        _finish_job(job_id, result)
    return result


def _theme(theme_id: int) -> Theme:
    theme = Theme.objects.select_for_update().filter(id=theme_id, merged_into__isnull=True).first()
    if theme is None:
        raise NotFound(f"no theme {theme_id}", code="theme_not_found")
    return theme


def edit_theme(theme_id: int, *, actor: Actor, name: str | None = None,
               keywords: Sequence[str] | Mapping[str, float] | None = None) -> ThemeEdit:
    """Rename a theme or change its key words, at once. New key words change which comments
    belong to it: that re-sort is a job for the worker (returned; one already waiting to start
    is reused, since it reads the themes when it starts)."""
    job = None
    with transaction.atomic():
        theme = _theme(theme_id)
        before = {"name": theme.name, "keywords": sorted(theme.keywords)}
        weights = dict(theme.keywords)
        if name is not None:
            clean = survey_definition.clean_text(name, "name")
            if not clean or len(clean) > 120:
                raise InvalidInput("name: 1 to 120 characters", code="invalid_name")
            theme.name = clean
        if keywords is not None:
            theme.keywords = annotate.keyword_weights(keywords, theme.keywords)
            if not theme.keywords:
                raise InvalidInput("keywords: give at least one word", code="invalid_keywords")
        theme.edited, theme.updated_at = True, now()
        theme.save()
        audit.record(actor, "theme.edit", "theme", str(theme.id), {
            "before": before, "after": {"name": theme.name, "keywords": sorted(theme.keywords)}})
        if theme.keywords != weights:
            job = _request_job("rematch", actor=actor, theme_id=theme.id).job
    return ThemeEdit(theme, job)


def merge_themes(source_id: int, target_id: int, *, actor: Actor) -> Theme:
    """Fold ``source`` into ``target``: its key words join the target's, its answers follow
    (their links are re-pointed in SQL; nothing is sorted again)."""
    if source_id == target_id:
        raise InvalidInput("choose two different themes to merge", code="same_theme")
    with transaction.atomic():
        source, target = _theme(source_id), _theme(target_id)
        merged = dict(source.keywords)
        for word, weight in target.keywords.items():
            merged[word] = max(weight, merged.get(word, 0.0))
        target.keywords, target.edited, target.updated_at = merged, True, now()
        target.save()
        source.merged_into, source.updated_at = target, now()
        source.save()
        through = Response.themes.through
        has_target = through.objects.filter(theme_id=target.id).values("response_id")
        moved = through.objects.filter(theme_id=source.id).exclude(
            response_id__in=has_target).update(theme_id=target.id)
        through.objects.filter(theme_id=source.id).delete()
        audit.record(actor, "theme.merge", "theme", str(target.id),
                     {"merged": str(source.id), "keywords": len(merged), "answers": moved})
    return target


# -- answers from other survey tools ---------------------------------------------------------

EXTERNAL_EVENT = "Survey Responded"


@dataclass(frozen=True)
class EventAnswers:
    recorded: int
    skipped: int  # no survey of that name, or answers that do not fit it


def record_event_answers(event_ids: Sequence[int], *, actor: Actor) -> EventAnswers:
    """Answers that another survey tool sent through ingest as ``Survey Responded`` track
    events (properties ``survey_name``, ``score``, optional ``comment``) become responses of
    the survey with that name. The event already is the timeline entry, so none is added.
    Idempotent: each event is recorded once (``client_key`` ``event:<messageId>``)."""
    events = ingest_queries.tracks(event_ids, [EXTERNAL_EVENT])
    if not events:
        return EventAnswers(0, 0)
    # Only surveys collecting answers: a draft or closed survey's figures stay as they are.
    surveys = {s.name: s for s in Survey.objects.filter(status="active")}
    latest = now() + CLOCK_SKEW
    parsed = {name: survey_definition.parse(s.definition) for name, s in surveys.items()}
    keys = [f"event:{e.message_id}"[:200] for e in events]
    seen = set(Response.objects.filter(client_key__in=keys).values_list("client_key",
                                                                       flat=True))
    profiles = {p.id: p for p in Profile.objects.filter(
        id__in={e.profile_id for e in events}).only("id", "traits")}
    responses: list[Response] = []
    comments: list[str] = []
    skipped = 0
    for event, key in zip(events, keys, strict=True):
        if key in seen:
            continue
        properties = pii.reveal_payload(event.payload).get("properties") or {}
        survey = surveys.get(str(properties.get("survey_name", "")))
        if survey is None or event.timestamp > latest:
            skipped += 1
            continue
        definition = parsed[survey.name]
        score_question = _score_question(definition, survey.kind)
        text_question = next((q for q in definition.questions if q.type == "text"), None)
        raw: dict[str, Any] = {}
        if score_question is not None:
            raw[score_question.id] = properties.get("score")
        comment = properties.get("comment")
        if text_question is not None and isinstance(comment, str):
            raw[text_question.id] = comment
        try:
            answers = survey_definition.clean_answers(definition, raw)
        except survey_definition.DefinitionError:
            skipped += 1
            continue
        text = answers.get(text_question.id, "") if text_question else ""
        found = annotate.annotate(text) if text else None
        profile = profiles.get(event.profile_id)  # type: ignore[arg-type]
        channel = properties.get("channel")
        responses.append(Response(
            survey=survey, client_key=key, profile_id=event.profile_id,
            submitted_at=event.timestamp,
            channel=channel[:10] if isinstance(channel, str) and channel else "email",
            kind=score_question.type if score_question else survey.kind,
            language=definition.language,
            score=float(answers[score_question.id]) if score_question else None,
            answers={k: (pii.protect(v) if text_question and k == text_question.id else v)
                     for k, v in answers.items()},
            comment=pii.protect(text) if text else "",
            sentiment=found.sentiment if found else "",
            sentiment_score=found.score if found else None,
            emotion=found.emotion if found else "",
            dims={"touchpoint": survey.touchpoint, "stage": survey.stage,
                  "segment": queries.segment_of(profile) if profile else ""}))
        comments.append(text)
    with transaction.atomic(), audit.collect():
        created = Response.objects.bulk_create(responses, batch_size=1000,
                                               ignore_conflicts=True)
        themes = list(Theme.objects.filter(merged_into__isnull=True))
        if themes:
            through = Response.themes.through
            through.objects.bulk_create([
                through(response_id=response.id, theme_id=theme.id)
                for response, text in zip(responses, comments, strict=True) if text
                for theme in annotate.matching_themes(text, themes)], ignore_conflicts=True)
        if created:
            audit.record(actor, "survey.responses_from_events", "survey", "*",
                         {"recorded": len(created), "skipped": skipped})
    return EventAnswers(len(created), skipped)
