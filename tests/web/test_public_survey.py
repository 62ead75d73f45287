"""The respondent's survey page ``/s/<token>/`` through Django's test client: languages,
one answer per link, refused answers stored nowhere, tampered and expired links, body limits,
CSRF, and that the page shows nothing personal."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client

from cxm.core.audit import Actor
from cxm.core.clock import now
from cxm.feedback import actions, tokens
from cxm.feedback.models import Invitation, Response, Survey
from cxm.identity import queries as identity_queries
from cxm.ingest.models import Event
from cxm.web import public_survey_views
from tests.web.conftest import ingest, stamp

DEFINITION: dict[str, Any] = {
    "language": "en",
    "title": "How did we do?",
    "questions": [
        {"id": "score", "type": "nps", "required": True,
         "text": "How likely are you to recommend us to a friend?"},
        {"id": "why", "type": "text", "text": "What is the main reason for your score?",
         "show_if": {"question": "score", "op": "lte", "value": 6}},
        {"id": "used", "type": "multi", "text": "Which did you use?",
         "choices": [{"id": "web", "label": "Website"}, {"id": "app", "label": "App"},
                     {"id": "store", "label": "Store"}]},
        {"id": "effort", "type": "ces", "text": "How easy was it to get what you needed?"},
        {"id": "happy", "type": "csat", "text": "How satisfied are you with the delivery?"},
        {"id": "again", "type": "single", "text": "Would you order again?",
         "choices": [{"id": "yes", "label": "Yes"}, {"id": "no", "label": "No"}]},
    ],
    "translations": {"de": {
        "title": "Wie war es?",
        "questions": {
            "score": {"text": "Wie wahrscheinlich ist es, dass Sie uns weiterempfehlen?"},
            "why": {"text": "Was ist der wichtigste Grund für Ihre Bewertung?"},
            "used": {"choices": {"web": "Webseite"}},
            "again": {"text": "Würden Sie wieder bestellen?",
                      "choices": {"yes": "Ja", "no": "Nein"}},
        },
        "thank_you": "Danke für Ihre Antworten!"}},
    "thank_you": "Thank you, your answers help us improve.",
}


@dataclass(frozen=True)
class Respondent:
    profile_id: uuid.UUID
    email: str
    name: str
    user_id: str


def make_respondent(
    *, name: str = "Rita Respondent", email: str = "rita@example.com",
    user_id: str = "u-rita", anonymous_id: str = "anon-rita", language: str | None = None,
    consent: bool = True, prefix: str = "rita",
) -> Respondent:
    """A customer made through the real ingest path, who agreed to be asked for feedback by
    email and in the app (the contact policy needs that opt-in)."""
    traits: dict[str, Any] = {"name": name, "email": email}
    if consent:
        traits["consent"] = {"email": {"research": True}, "in_app": {"research": True}}
    if language:
        traits["language"] = language
    ingest([{"type": "identify", "messageId": f"{prefix}-identify", "userId": user_id,
             "anonymousId": anonymous_id, "timestamp": stamp(0), "traits": traits,
             "context": {"channel": "web"}}])
    profile = identity_queries.by_identifier("email", email)
    return Respondent(profile.id, email, name, user_id)


def make_survey(name: str = "Delivery NPS", definition: dict[str, Any] | None = None,
                **fields: Any) -> Survey:
    return actions.create_survey(name=name, kind="nps", definition=definition or DEFINITION,
                                 actor=Actor("test"), touchpoint="delivery", **fields)


def link_for(survey: Survey, respondent: Respondent, channel: str = "link",
             at: Any = None) -> tuple[Invitation, str]:
    invitation = actions.invite(survey=survey, profile_id=respondent.profile_id,
                                channel=channel, actor=Actor("test"), at=at)
    return invitation, f"/s/{tokens.token_for(invitation.nonce)}/"


def survey_events(profile_id: uuid.UUID) -> list[Event]:
    return list(Event.objects.filter(profile_id=profile_id, name="Survey Answered"))


@pytest.fixture(autouse=True)
def _fresh_limits() -> Any:
    public_survey_views.bad_links.reset()
    yield
    public_survey_views.bad_links.reset()


@pytest.fixture
def rita(db: Any) -> Respondent:
    return make_respondent()


@pytest.fixture
def survey(db: Any) -> Survey:
    return make_survey()


def page_text(response: Any) -> str:
    return response.content.decode()


# --- showing the survey -----------------------------------------------------------------------


def test_the_page_shows_the_survey_without_personal_data(
    client: Client, rita: Respondent, survey: Survey,
) -> None:
    invitation, url = link_for(survey, rita)
    response = client.get(url)
    assert response.status_code == 200
    html = page_text(response)
    assert "How likely are you to recommend us to a friend?" in html
    # An NPS row of eleven buttons, 0 to 10, with its end labels; CES 1–7, CSAT 1–5.
    assert re.findall(r'name="a\.score" value="(\d+)"', html) == [str(n) for n in range(11)]
    assert re.findall(r'name="a\.effort" value="(\d+)"', html) == [str(n) for n in range(1, 8)]
    assert re.findall(r'name="a\.happy" value="(\d+)"', html) == [str(n) for n in range(1, 6)]
    assert "Not at all likely" in html and "Extremely likely" in html
    assert 'type="checkbox" name="a.used" value="store"' in html
    assert 'type="radio" name="a.again" value="no"' in html
    assert '<textarea name="a.why"' in html
    assert 'data-show-if="{&quot;question&quot;: &quot;score&quot;' in html
    # Nothing personal: not the email, not the name, not the user id.
    for value in (rita.email, rita.name, rita.user_id, "rita"):
        assert value.lower() not in html.lower()
    # The CSP holds: no inline script or style; the page's own static files only.
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert " style=" not in html and "<style" not in html
    assert "/static/cxm/survey.js" in html and "/static/cxm/survey.css" in html
    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert response["Cache-Control"] == "no-store"
    assert response["Referrer-Policy"] == "same-origin"  # the token goes to no other site
    assert 'name="csrfmiddlewaretoken"' in html
    # The staff navigation is not there.
    assert "Sign out" not in html and "API keys" not in html
    invitation.refresh_from_db()
    assert invitation.status == "sent"


@pytest.mark.parametrize(("how", "expected"), [
    ({"path": "?lang=de"}, "de"),
    ({"path": "?lang=de-AT"}, "de"),
    ({"headers": {"Accept-Language": "fr-FR,fr;q=0.9,de;q=0.8"}}, "de"),
    ({"headers": {"Accept-Language": "fr-FR,fr;q=0.9"}}, "en"),
    ({"path": "?lang=xx"}, "en"),
    ({"path": "?lang=en", "headers": {"Accept-Language": "de"}}, "en"),
])
def test_language_from_the_link_then_the_browser(
    client: Client, rita: Respondent, survey: Survey, how: dict[str, Any], expected: str,
) -> None:
    _, url = link_for(survey, rita)
    response = client.get(url + how.get("path", ""), headers=how.get("headers", {}))
    html = page_text(response)
    assert f'<html lang="{expected}">' in html
    if expected == "de":
        assert "Wie wahrscheinlich ist es, dass Sie uns weiterempfehlen?" in html
        assert "Sehr wahrscheinlich" in html and "Antworten senden" in html
        assert ">Webseite<" in html and ">App<" in html  # untranslated choices stay
    else:
        assert "How likely are you to recommend us to a friend?" in html


def test_the_profiles_language_comes_before_the_browsers(client: Client, survey: Survey) -> None:
    hans = make_respondent(name="Hans Meier", email="hans@example.de", user_id="u-hans",
                           anonymous_id="anon-hans", language="de", prefix="hans")
    _, url = link_for(survey, hans)
    html = page_text(client.get(url, headers={"Accept-Language": "en-US,en;q=0.9"}))
    assert '<html lang="de">' in html and "Wie war es?" in html
    assert '<html lang="en">' in page_text(client.get(url + "?lang=en"))


# --- answering --------------------------------------------------------------------------------


def test_an_answer_is_stored_once_and_lands_on_the_timeline(
    client: Client, rita: Respondent, survey: Survey,
) -> None:
    invitation, url = link_for(survey, rita)
    form = {"a.score": "9", "a.used": ["web", "app"], "a.effort": "6", "a.happy": "5",
            "a.again": "yes", "lang": "en", "js": "1"}
    response = client.post(url, form)
    assert response.status_code == 200, page_text(response)
    assert "Thank you, your answers help us improve." in page_text(response)
    (stored,) = Response.objects.filter(survey=survey)
    assert stored.score == 9.0 and stored.channel == "link" and stored.language == "en"
    assert stored.answers == {"score": 9, "used": ["web", "app"], "effort": 6, "happy": 5,
                              "again": "yes"}
    assert stored.profile_id == rita.profile_id
    invitation.refresh_from_db()
    assert invitation.status == "answered" and invitation.answered_at is not None
    (event,) = survey_events(rita.profile_id)
    assert event.channel == "survey"
    assert event.payload["properties"]["score"] == 9

    # The same link again: "already answered", and nothing more stored.
    again = client.post(url, {**form, "a.score": "2"})
    assert again.status_code == 409
    assert "Already answered" in page_text(again)
    assert Response.objects.filter(survey=survey).count() == 1
    assert len(survey_events(rita.profile_id)) == 1
    assert client.get(url).status_code == 409


def test_the_thank_you_page_speaks_the_surveys_language(
    client: Client, rita: Respondent, survey: Survey,
) -> None:
    _, url = link_for(survey, rita)
    response = client.post(url + "?lang=de", {"a.score": "10", "lang": "de", "js": "1"})
    assert response.status_code == 200
    html = page_text(response)
    assert '<html lang="de">' in html and "Danke für Ihre Antworten!" in html
    assert Response.objects.get(survey=survey).language == "de"


def test_without_javascript_answers_to_skipped_questions_are_dropped(
    client: Client, rita: Respondent, survey: Survey,
) -> None:
    """Every question is on the page when JavaScript is off; the skip logic still decides
    what is stored."""
    _, url = link_for(survey, rita)
    response = client.post(url, {"a.score": "10", "a.why": "Fast and friendly",
                                  "a.again": "yes"})
    assert response.status_code == 200, page_text(response)
    assert Response.objects.get(survey=survey).answers == {"score": 10, "again": "yes"}


@pytest.mark.parametrize(("form", "message"), [
    ({"a.score": "7", "a.again": "<script>alert(1)</script>"}, "choose one of"),
    ({"a.score": "11"}, "the score must be from 0 to 10, got 11"),
    ({"a.score": "-1"}, "the score must be from 0 to 10, got -1"),
    ({"a.score": "7.5"}, "the score must be a whole number from 0 to 10"),
    ({"a.score": ["3", "9"]}, "the score must be a whole number"),
    ({"a.score": "8", "a.effort": "0"}, "the score must be from 1 to 7"),
    ({"a.score": "8", "a.used": ["web", "moon"]}, "'moon' is not one of"),
    ({"a.score": "8", "a.evil": "x"}, "this survey has no such question"),
    ({"a.used": ["web"]}, "score: an answer is required"),
    ({"a.score": "9", "a.why": "sneaky"}, "this question is skipped"),
    ({"a.score": "9", "a.again": ["yes", "no"]}, "choose one of"),
])
def test_hostile_or_malformed_answers_are_refused_and_stored_nowhere(
    client: Client, rita: Respondent, survey: Survey, form: dict[str, Any], message: str,
) -> None:
    invitation, url = link_for(survey, rita)
    response = client.post(url, {**form, "js": "1"})
    assert response.status_code == 400
    html = page_text(response)
    assert "Please check your answers" in html
    assert message in html.replace("&#x27;", "'")
    assert "<script>alert(1)</script>" not in html  # escaped if shown again at all
    assert not Response.objects.exists()
    assert survey_events(rita.profile_id) == []
    invitation.refresh_from_db()
    assert invitation.status == "sent"
    # The link still works: the person can correct the answer.
    assert client.post(url, {"a.score": "3", "js": "1"}).status_code == 200


def test_markup_in_a_comment_is_refused_with_a_clear_message(
    client: Client, rita: Respondent, survey: Survey,
) -> None:
    _, url = link_for(survey, rita)
    for text in ("<script>alert('x')</script>", "<img src=x onerror=alert(1)>",
                 "click javascript:alert(1)"):
        response = client.post(url, {"a.score": "2", "a.why": text, "js": "1"})
        assert response.status_code == 400
        html = page_text(response)
        assert "markup such as HTML tags is not accepted" in html
        assert "<script>alert" not in html and "<img src=x" not in html
        assert 'id="q-why"' in html and "sv-q-error" in html  # the question is marked
    assert not Response.objects.exists()
    assert survey_events(rita.profile_id) == []


def test_a_too_long_comment_is_refused(client: Client, rita: Respondent, survey: Survey) -> None:
    _, url = link_for(survey, rita)
    response = client.post(url, {"a.score": "2", "a.why": "slow " * 1200, "js": "1"})
    assert response.status_code == 400
    assert "at most 5000 characters" in page_text(response)
    assert not Response.objects.exists()


def test_a_huge_body_gets_the_413_page_and_stores_nothing(
    client: Client, rita: Respondent, survey: Survey, settings: Any,
) -> None:
    _, url = link_for(survey, rita)
    huge = "x" * (public_survey_views.MAX_FORM_BYTES + 10)
    response = client.post(url, {"a.score": "2", "a.why": huge})
    assert response.status_code == 413
    assert "That was too much text" in page_text(response)
    # Past Django's own limit too (which would otherwise be a bare 400).
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 4096
    response = client.post(url, {"a.score": "2", "a.why": "y" * 5000})
    assert response.status_code == 413
    assert not Response.objects.exists()
    assert survey_events(rita.profile_id) == []


def test_too_many_fields_are_refused(client: Client, rita: Respondent, survey: Survey,
                                     settings: Any) -> None:
    _, url = link_for(survey, rita)
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 20
    response = client.post(url, {f"a.q{n}": "1" for n in range(50)})
    assert response.status_code == 400
    assert "could not be read" in page_text(response)
    assert not Response.objects.exists()


def test_csrf_stays_on(rita: Respondent, survey: Survey) -> None:
    browser = Client(enforce_csrf_checks=True)
    _, url = link_for(survey, rita)
    assert browser.post(url, {"a.score": "8"}).status_code == 403
    assert not Response.objects.exists()
    html = page_text(browser.get(url))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert token is not None
    response = browser.post(url, {"a.score": "8", "csrfmiddlewaretoken": token.group(1)})
    assert response.status_code == 200
    assert Response.objects.count() == 1


# --- links that do not work -----------------------------------------------------------------


def test_tampered_made_up_and_suppressed_links_look_the_same(
    client: Client, rita: Respondent, survey: Survey,
) -> None:
    invitation, url = link_for(survey, rita)
    token = tokens.token_for(invitation.nonce)
    nonce, signature = token.split(".", 1)
    flipped = nonce[:-1] + ("0" if nonce[-1] != "0" else "1")
    unknown_but_signed = tokens.token_for("0" * 32)
    refused_rita = make_respondent(name="Sam Nope", email="sam@example.com", user_id="u-sam",
                                   anonymous_id="anon-sam", consent=False, prefix="sam")
    suppressed = actions.invite(survey=survey, profile_id=refused_rita.profile_id,
                                channel="link", actor=Actor("test"))
    assert suppressed.status == "suppressed"
    bodies = set()
    for bad in (f"{flipped}.{signature}", f"{nonce}.{signature[:-2]}xx", nonce, "x" * 300,
                unknown_but_signed, tokens.token_for(suppressed.nonce), "%3Cscript%3E"):
        response = client.get(f"/s/{bad}/")
        assert response.status_code == 404, bad
        body = page_text(response)
        assert "This link is not valid" in body
        bodies.add(body.replace(bad, ""))
        post = client.post(f"/s/{bad}/", {"a.score": "10"})
        assert post.status_code == 404
    assert len(bodies) == 1  # nothing tells a made-up link from a real one that is not yours
    assert not Response.objects.exists()
    assert client.get(url).status_code == 200  # the real link still works


def test_an_expired_link_is_refused(client: Client, rita: Respondent, survey: Survey) -> None:
    invitation, url = link_for(survey, rita, at=now() - timedelta(days=31))
    response = client.get(url)
    assert response.status_code == 410
    assert "This link has expired" in page_text(response)
    assert client.post(url, {"a.score": "10", "js": "1"}).status_code == 410
    assert not Response.objects.exists()
    invitation.refresh_from_db()
    assert invitation.status == "sent"


def test_guessing_links_is_slowed_down(client: Client, rita: Respondent, survey: Survey) -> None:
    _, url = link_for(survey, rita)
    statuses = [client.get(f"/s/{uuid.uuid4().hex}.guess/").status_code for _ in range(25)]
    assert statuses[:20] == [404] * 20
    assert statuses[-1] == 429
    # From another address, and for the real link, nothing changed.
    assert client.get("/s/nope/", REMOTE_ADDR="10.0.0.9").status_code == 404
    assert client.get(url).status_code == 200


def test_other_methods_are_refused(client: Client, rita: Respondent, survey: Survey) -> None:
    _, url = link_for(survey, rita)
    assert client.put(url, "a.score=1").status_code == 405
    assert client.head(url).status_code == 200


# --- opting out -------------------------------------------------------------------------------


def test_the_opt_out_link_stops_survey_emails(rita: Respondent, survey: Survey) -> None:
    from cxm.identity.models import Profile

    browser = Client(enforce_csrf_checks=True)
    _, url = link_for(survey, rita, channel="email")
    page = browser.get(url + "opt-out/")
    assert page.status_code == 200 and "No more survey emails?" in page_text(page)
    assert browser.post(url + "opt-out/").status_code == 403  # a person's POST needs CSRF
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page_text(page))
    assert token is not None
    done = browser.post(url + "opt-out/", {"csrfmiddlewaretoken": token.group(1)})
    assert done.status_code == 200 and "no more survey emails" in page_text(done).lower()
    consent = Profile.objects.get(id=rita.profile_id).consent["email:research"]
    assert consent["granted"] is False
    assert consent["source"].startswith("respondent:invitation:")
    # The contact policy honours it from now on, for every survey.
    other = make_survey("Support NPS")
    later = actions.invite(survey=other, profile_id=rita.profile_id, channel="email",
                           actor=Actor("test"))
    assert later.status == "suppressed" and "no consent" in later.reason


def test_a_mail_clients_one_click_unsubscribe_needs_no_csrf(
    rita: Respondent, survey: Survey,
) -> None:
    from cxm.identity.models import Profile

    _, url = link_for(survey, rita, channel="email")
    one_click = Client(enforce_csrf_checks=True).post(
        url + "opt-out/", {"List-Unsubscribe": "One-Click"})
    assert one_click.status_code == 200
    assert Profile.objects.get(id=rita.profile_id).consent["email:research"]["granted"] is False
    tampered = Client().post(url[:-2] + "x/opt-out/", {"List-Unsubscribe": "One-Click"})
    assert tampered.status_code == 404
