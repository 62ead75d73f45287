"""Delivering surveys by email over real SMTP (an aiosmtpd server the tests start), and
automatically after an event that comes in through the real ingest path (``/v1/track``), with
huey running tasks inline. The answer is given on the personal link — with Django's test client
here, and in a real headless Chromium in the test marked ``browser``."""

from __future__ import annotations

import base64
import dataclasses
import email
import email.policy
import logging
import os
import re
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from django.test import Client

from cxm.core.audit import Actor
from cxm.feedback import actions, tasks
from cxm.feedback.models import Invitation, Response, Survey
from cxm.identity import queries as identity_queries
from tests.helpers import free_port
from tests.web.test_public_survey import (
    DEFINITION,
    Respondent,
    make_respondent,
    make_survey,
    survey_events,
)

# pytest-playwright's sync API keeps an event loop running in this thread (browser test only).
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

SCREENS = Path("/tmp/cxm-screens")
LINK = re.compile(r"https?://[^\s/]+/s/([A-Za-z0-9_.:-]+)/")


# --- a real SMTP server --------------------------------------------------------------------------


class Mailbox:
    """aiosmtpd handler: keeps every message it is given."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.recipients: list[list[str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.original_content or envelope.content,
                                           policy=email.policy.default)
        assert isinstance(message, email.message.EmailMessage)
        self.messages.append(message)
        self.recipients.append(list(envelope.rcpt_tos))
        return "250 Message accepted for delivery"

    def wait_for(self, count: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(self.messages) >= count, f"{len(self.messages)} emails, expected {count}"

    @staticmethod
    def text(message: email.message.EmailMessage) -> str:
        body = message.get_body(preferencelist=("plain",))
        assert body is not None
        return str(body.get_content())


@pytest.fixture
def smtp_settings(settings: Any) -> Iterator[Any]:
    """Django's real SMTP backend (pytest-django swaps in the in-memory one) on a free port
    where nothing listens yet; the links in emails point at Django's test client host."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = free_port()
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_TIMEOUT = 5
    settings.DEFAULT_FROM_EMAIL = "Example Shop <surveys@shop.example>"
    settings.CXM = dataclasses.replace(settings.CXM, base_url="http://testserver")
    yield settings


def start_smtp(port: int) -> tuple[Controller, Mailbox]:
    # aiosmtpd's thread logs each session at INFO; after the test those lines would go to a
    # capture stream pytest has closed ("Logging error" noise in the CI log).
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    return controller, mailbox


@pytest.fixture
def smtp(smtp_settings: Any) -> Iterator[Mailbox]:
    controller, mailbox = start_smtp(smtp_settings.EMAIL_PORT)
    try:
        yield mailbox
    finally:
        controller.stop()


@pytest.fixture
def immediate_huey() -> Iterator[Any]:
    """Tasks run inline, as a worker would run them; restored afterwards."""
    from huey.contrib.djhuey import HUEY

    before = HUEY.immediate
    HUEY.immediate = True
    tasks.forget_triggers()
    try:
        yield HUEY
    finally:
        HUEY.immediate = before
        tasks.forget_triggers()


def link_path(mailbox: Mailbox, index: int = 0) -> str:
    found = LINK.search(Mailbox.text(mailbox.messages[index]))
    assert found is not None, Mailbox.text(mailbox.messages[index])
    return f"/s/{found.group(1)}/"


def assert_answered_once(survey: Survey, person: Respondent, channel: str = "email") -> None:
    (stored,) = Response.objects.filter(survey=survey)
    assert stored.profile_id == person.profile_id and stored.channel == channel
    invitation = stored.invitation
    assert invitation is not None and invitation.status == "answered"
    events = survey_events(person.profile_id)
    assert len(events) == 1 and events[0].channel == "survey"
    # …and it shows on the person's timeline, through the same query the 360 page uses.
    profile = identity_queries.canonical(person.profile_id)
    timeline = identity_queries.timeline(profile, channel="survey").events
    assert [e.name for e in timeline] == ["Survey Answered"]


# --- email over SMTP ------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_an_email_invitation_arrives_over_smtp_and_its_link_answers_once(
    smtp: Mailbox, immediate_huey: Any, client: Client,
) -> None:
    rita = make_respondent()
    survey = make_survey()
    invitation = actions.invite(survey=survey, profile_id=rita.profile_id, channel="email",
                                actor=Actor("test"))
    smtp.wait_for(1)
    (message,) = smtp.messages
    assert smtp.recipients == [[rita.email]]
    assert message["To"] == rita.email
    assert message["Subject"] == "How did we do?"
    assert "surveys@shop.example" in message["From"]
    assert message["X-Cxm-Invitation"] == str(invitation.id)
    text = Mailbox.text(message)
    assert "How likely are you to recommend us to a friend?" in text
    # An opt-out in the text, the HTML part and the mail client's unsubscribe button.
    opt_out = str(message["List-Unsubscribe"]).strip().strip("<>")
    assert opt_out.endswith("/opt-out/") and opt_out in text
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    html = message.get_body(preferencelist=("html",))
    assert html is not None and "Answer the survey" in str(html.get_content())
    invitation.refresh_from_db()
    assert (invitation.status, invitation.attempts) == ("sent", 1)

    url = link_path(smtp)
    page = client.get(url)
    assert page.status_code == 200
    assert rita.email not in page.content.decode()
    done = client.post(url, {"a.score": "3", "a.why": "The parcel came two days late.",
                             "js": "1"})
    assert done.status_code == 200, done.content.decode()
    assert client.post(url, {"a.score": "10", "js": "1"}).status_code == 409
    assert_answered_once(survey, rita)
    stored = Response.objects.get(survey=survey)
    assert stored.comment and "parcel" not in stored.comment  # open text is encrypted at rest
    assert stored.sentiment  # text analytics ran on the comment
    assert len(smtp.messages) == 1  # answering sends nothing more


@pytest.mark.django_db(transaction=True)
def test_the_email_speaks_the_persons_language(smtp: Mailbox, immediate_huey: Any) -> None:
    hans = make_respondent(name="Hans Meier", email="hans@example.de", user_id="u-hans",
                           anonymous_id="anon-hans", language="de", prefix="hans")
    actions.invite(survey=make_survey(), profile_id=hans.profile_id, channel="email",
                   actor=Actor("test"))
    smtp.wait_for(1)
    assert smtp.messages[0]["Subject"] == "Wie war es?"
    assert "Wie wahrscheinlich ist es" in Mailbox.text(smtp.messages[0])


@pytest.mark.django_db(transaction=True)
def test_no_email_without_consent(smtp: Mailbox, immediate_huey: Any) -> None:
    shy = make_respondent(name="Sam Shy", email="sam@example.com", user_id="u-sam",
                          anonymous_id="anon-sam", consent=False, prefix="sam")
    invitation = actions.invite(survey=make_survey(), profile_id=shy.profile_id,
                                channel="email", actor=Actor("test"))
    assert invitation.status == "suppressed"
    time.sleep(0.2)
    assert smtp.messages == []


@pytest.mark.django_db(transaction=True)
def test_smtp_down_keeps_the_invitation_pending_and_a_retry_sends_once(
    smtp_settings: Any, immediate_huey: Any, client: Client,
) -> None:
    rita = make_respondent()
    survey = make_survey()
    # Nothing listens on the port yet: the task fails, nothing crashes, the row waits.
    invitation = actions.invite(survey=survey, profile_id=rita.profile_id, channel="email",
                                actor=Actor("test"))
    invitation.refresh_from_db()
    assert invitation.status == "pending"
    assert invitation.attempts == 1
    assert invitation.reason.startswith("SMTP: ")
    # huey scheduled its own retry; run it by hand a minute "later", once the server is up.
    later = immediate_huey._get_timestamp() + timedelta(minutes=5)
    scheduled = immediate_huey.read_schedule(later)
    assert [t.name for t in scheduled] == ["cxm.feedback.send_invitation"]
    with pytest.raises(RuntimeError, match="not sent yet"):
        tasks.send_invitation.call_local(invitation.id)  # still down: attempt two
    invitation.refresh_from_db()
    assert (invitation.status, invitation.attempts) == ("pending", 2)

    controller, mailbox = start_smtp(smtp_settings.EMAIL_PORT)
    try:
        for task in scheduled:
            immediate_huey.execute(task, timestamp=later)
        mailbox.wait_for(1)
        invitation.refresh_from_db()
        assert (invitation.status, invitation.attempts) == ("sent", 3)
        assert invitation.reason == ""
        # Another retry (a duplicate delivery by the queue) sends nothing.
        assert tasks.send_invitation.call_local(invitation.id) == "skipped"
        assert actions.send_invitation(invitation.id).status == "skipped"
        time.sleep(0.2)
        assert len(mailbox.messages) == 1
        url = link_path(mailbox)
    finally:
        controller.stop()
    assert client.post(url, {"a.score": "9", "js": "1"}).status_code == 200
    assert_answered_once(survey, rita)


@pytest.mark.django_db(transaction=True)
def test_an_invitation_that_never_gets_through_fails_after_five_attempts(
    smtp_settings: Any, immediate_huey: Any,
) -> None:
    rita = make_respondent()
    invitation = actions.invite(survey=make_survey(), profile_id=rita.profile_id,
                                channel="email", actor=Actor("test"))
    for _ in range(4):
        actions.send_invitation(invitation.id)
    invitation.refresh_from_db()
    assert (invitation.status, invitation.attempts) == ("failed", 5)
    assert actions.send_invitation(invitation.id).status == "skipped"
    # Never reached: the contact is taken back, so the person may be asked again.
    from cxm.feedback.models import Contact

    assert not Contact.objects.filter(profile_id=rita.profile_id).exists()


@pytest.mark.django_db(transaction=True)
def test_a_send_that_died_midway_is_sent_again_later(smtp: Mailbox) -> None:
    from datetime import timedelta

    from cxm.core.clock import now
    from cxm.feedback.models import Invitation

    rita = make_respondent()
    invitation = actions.invite(survey=make_survey(), profile_id=rita.profile_id,
                                channel="email", actor=Actor("test"))
    # As if a worker claimed it and died before recording the outcome.
    Invitation.objects.filter(id=invitation.id).update(status="sending", sending_since=now())
    assert actions.send_invitation(invitation.id).status == "skipped"  # still being sent
    Invitation.objects.filter(id=invitation.id).update(
        sending_since=now() - actions.SENDING_TIMEOUT - timedelta(seconds=1))
    assert actions.send_invitation(invitation.id).status == "sent"
    smtp.wait_for(1)
    invitation.refresh_from_db()
    assert invitation.status == "sent" and invitation.sending_since is None


# --- automatically after an event ----------------------------------------------------------------


def track(client: Client, key: str, message: dict[str, Any]) -> None:
    auth = base64.b64encode(f"{key}:".encode()).decode()
    response = client.post("/v1/track", message, content_type="application/json",
                           headers={"Authorization": f"Basic {auth}"})
    assert response.status_code == 200, response.content


@pytest.mark.django_db(transaction=True)
def test_an_order_delivered_event_sends_the_survey_by_email(
    smtp: Mailbox, immediate_huey: Any, client: Client, ingest_key: str,
) -> None:
    rita = make_respondent()
    survey = make_survey(trigger_event="Order Delivered")
    make_survey("Unrelated", trigger_event="Refund Issued")
    delivered = {"userId": rita.user_id, "event": "Order Delivered", "messageId": "order-1",
                 "properties": {"order_id": "A-1001"}}
    track(client, ingest_key, {"userId": rita.user_id, "event": "Order Shipped",
                               "messageId": "order-0"})
    time.sleep(0.2)
    assert smtp.messages == []  # not a trigger
    track(client, ingest_key, delivered)
    smtp.wait_for(1)
    track(client, ingest_key, delivered)  # a retried event is stored once: no second survey
    time.sleep(0.2)
    assert len(smtp.messages) == 1
    assert smtp.recipients == [[rita.email]]
    (invitation,) = Invitation.objects.filter(survey=survey)
    assert invitation.channel == "email" and invitation.status == "sent"
    assert invitation.dedupe_key == f"event:order-1:{survey.id}"

    url = link_path(smtp)
    assert client.post(url, {"a.score": "10", "a.used": ["web"], "js": "1"}).status_code == 200
    assert client.post(url, {"a.score": "0", "js": "1"}).status_code == 409
    assert_answered_once(survey, rita)


@pytest.mark.django_db(transaction=True)
def test_a_delayed_trigger_sends_when_its_time_comes(
    smtp: Mailbox, immediate_huey: Any, client: Client, ingest_key: str,
) -> None:
    rita = make_respondent()
    survey = make_survey(trigger_event="Order Delivered", trigger_delay_minutes=60)
    track(client, ingest_key, {"userId": rita.user_id, "event": "Order Delivered",
                               "messageId": "order-7"})
    time.sleep(0.2)
    assert smtp.messages == [] and not Invitation.objects.exists()
    now = immediate_huey._get_timestamp()
    assert immediate_huey.read_schedule(now + timedelta(minutes=59)) == []
    later = now + timedelta(minutes=61)
    due = immediate_huey.read_schedule(later)
    assert [t.name for t in due] == ["cxm.feedback.invite_after_event"]
    for task in due:
        immediate_huey.execute(task, timestamp=later)
    smtp.wait_for(1)
    assert Invitation.objects.get(survey=survey).status == "sent"


# --- the whole journey in a real browser ----------------------------------------------------------


@pytest.fixture(scope="session")
def base_url() -> str | None:
    """Shadows pytest-playwright's fallback (see tests/web/conftest.py)."""
    return None


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_email_to_answer_in_chromium(
    smtp: Mailbox, immediate_huey: Any, live_server: Any, page: Any, settings: Any,
    ingest_key: str,
) -> None:
    from playwright.sync_api import expect

    settings.CXM = dataclasses.replace(settings.CXM, base_url=live_server.url)
    rita = make_respondent()
    survey = make_survey(trigger_event="Order Delivered")
    client = Client()
    track(client, ingest_key, {"userId": rita.user_id, "event": "Order Delivered",
                               "messageId": "order-42"})
    smtp.wait_for(1)
    found = LINK.search(Mailbox.text(smtp.messages[0]))
    assert found is not None
    link = found.group(0)
    assert link.startswith(live_server.url)

    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(link)
    expect(page.get_by_role("heading", name="How did we do?")).to_be_visible()
    page.locator("#q-score label.sv-scale-opt:has(input[value='2'])").click()
    page.get_by_label("What is the main reason for your score?").fill("It came late.")
    page.get_by_role("button", name="Send my answers").click()
    expect(page.get_by_test_id("survey-thanks")).to_have_text("Thank you!")
    SCREENS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENS / "survey-email-thanks-phone.png"), full_page=True)
    assert problems == []
    assert_answered_once(survey, rita)
    assert Response.objects.get(survey=survey).answers["score"] == 2
    assert DEFINITION["questions"][1]["id"] in Response.objects.get(survey=survey).answers
