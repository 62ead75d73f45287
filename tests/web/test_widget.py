"""The survey widget's script and JSON endpoints through Django's test client: write keys,
CORS, reuse of an open invitation, the contact policy, and answers stored once. The widget in
a real browser on another origin is in test_public_survey_browser.py."""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from cxm import config
from cxm.core.audit import Actor
from cxm.feedback import actions, tokens
from cxm.feedback.models import Contact, Invitation, Response, Survey
from cxm.web import widget
from tests.web.test_public_survey import (
    DEFINITION,
    Respondent,
    make_respondent,
    make_survey,
    survey_events,
)

SHOP = "http://shop.test"


@pytest.fixture(autouse=True)
def _fresh_limits() -> Any:
    widget.ask_limiter.reset()
    widget.respond_limiter.reset()
    yield
    widget.ask_limiter.reset()
    widget.respond_limiter.reset()


@pytest.fixture
def rita(db: Any) -> Respondent:
    return make_respondent()


@pytest.fixture
def survey(db: Any) -> Survey:
    return make_survey("Checkout CSAT")


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def post(client: Client, url: str, body: Any, *, key: str | None = None,
         origin: str = SHOP, **headers: str) -> Any:
    sent = {"Origin": origin, **(basic(key) if key else {}), **headers}
    raw = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(url, raw, content_type="application/json", headers=sent)


def signed(visitor: dict[str, Any]) -> dict[str, Any]:
    """The visitor with the userHash the shop's server would render (of the first id)."""
    for name in ("userId", "email", "anonymousId"):
        if isinstance(visitor.get(name), str) and "userHash" not in visitor:
            return {**visitor, "userHash": tokens.visitor_hash(visitor[name])}
    return visitor


def ask(client: Client, survey: Survey, key: str | None, **visitor: Any) -> Any:
    return post(client, f"/w/v1/surveys/{survey.slug}/ask", signed(visitor), key=key)


# --- the script -------------------------------------------------------------------------------


def test_the_script_is_served_as_javascript_with_caching(client: Client) -> None:
    response = client.get("/widget.js")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/javascript; charset=utf-8"
    assert response["Cache-Control"] == f"public, max-age={widget.SCRIPT_MAX_AGE}"
    assert response["Access-Control-Allow-Origin"] == "*"
    assert response["Cross-Origin-Resource-Policy"] == "cross-origin"
    assert response["X-Content-Type-Options"] == "nosniff"
    body = response.content.decode()
    assert "attachShadow" in body and "/w/v1/responses" in body
    assert "innerHTML" not in body  # server text is set with textContent only
    etag = response["ETag"]
    again = client.get("/widget.js", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert client.post("/widget.js").status_code == 405


# --- CORS ---------------------------------------------------------------------------------------


def test_preflight_is_answered_for_the_calling_origin(client: Client, survey: Survey) -> None:
    for url in (f"/w/v1/surveys/{survey.slug}/ask", "/w/v1/responses"):
        response = client.options(url, headers={
            "Origin": SHOP, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type"})
        assert response.status_code == 204
        assert response["Access-Control-Allow-Origin"] == SHOP
        assert "POST" in response["Access-Control-Allow-Methods"]
        assert "Authorization" in response["Access-Control-Allow-Headers"]
        assert "Origin" in response["Vary"]


def test_the_origin_allow_list(client: Client, rita: Respondent, survey: Survey,
                               ingest_key: str, settings: Any) -> None:
    settings.CXM = dataclasses.replace(settings.CXM, widget_origins=["https://shop.example"])
    refused = post(client, f"/w/v1/surveys/{survey.slug}/ask", signed({"userId": rita.user_id}),
                   key=ingest_key, origin="https://evil.example")
    assert refused.status_code == 403
    assert refused.json()["code"] == "origin_not_allowed"
    assert "Access-Control-Allow-Origin" not in refused
    preflight = client.options("/w/v1/responses", headers={"Origin": "https://evil.example"})
    assert preflight.status_code == 403 and "Access-Control-Allow-Origin" not in preflight
    assert not Invitation.objects.exists()
    allowed = post(client, f"/w/v1/surveys/{survey.slug}/ask", signed({"userId": rita.user_id}),
                   key=ingest_key, origin="https://shop.example")
    assert allowed.status_code == 200
    assert allowed["Access-Control-Allow-Origin"] == "https://shop.example"


def test_widget_origins_setting_is_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CXM_WIDGET_ORIGINS", "https://Shop.example/, http://localhost:3000")
    assert config.load().widget_origins == ["https://shop.example", "http://localhost:3000"]
    monkeypatch.setenv("CXM_WIDGET_ORIGINS", "shop.example")
    with pytest.raises(config.ConfigError, match="CXM_WIDGET_ORIGINS"):
        config.load()
    monkeypatch.setenv("CXM_WIDGET_ORIGINS", "https://shop.example/path")
    with pytest.raises(config.ConfigError, match="CXM_WIDGET_ORIGINS"):
        config.load()


# --- write keys ---------------------------------------------------------------------------------


def test_ask_needs_an_ingest_key(client: Client, rita: Respondent, survey: Survey,
                                 make_key: Callable[..., str]) -> None:
    cases = [(None, 401, "unauthorized"), ("cxm_not_a_key", 401, "unauthorized"),
             (make_key("read", name="reader"), 403, "forbidden")]
    for key, status, code in cases:
        response = ask(client, survey, key, userId=rita.user_id)
        assert response.status_code == status, key
        body = response.json()
        assert body["code"] == code and body["message"]
        assert response["Access-Control-Allow-Origin"] == SHOP  # the page can read why
    assert not Invitation.objects.exists()
    # The key may also be sent in the body or as a Bearer token.
    ingest = make_key("ingest")
    assert post(client, f"/w/v1/surveys/{survey.slug}/ask",
                signed({"userId": rita.user_id, "writeKey": ingest})).status_code == 200
    assert post(client, f"/w/v1/surveys/{survey.slug}/ask", signed({"userId": rita.user_id}),
                Authorization=f"Bearer {ingest}").status_code == 200


# --- ask ------------------------------------------------------------------------------------------


def test_ask_invites_a_known_visitor_once_and_reuses_the_invitation(
    client: Client, rita: Respondent, survey: Survey, ingest_key: str,
) -> None:
    first = ask(client, survey, ingest_key, userId=rita.user_id)
    assert first.status_code == 200
    assert first["Access-Control-Allow-Origin"] == SHOP
    body = first.json()
    assert body["survey"]["slug"] == survey.slug
    assert body["survey"]["title"] == "How did we do?"
    assert [q["id"] for q in body["survey"]["questions"]] == [
        q["id"] for q in DEFINITION["questions"]]
    nps = body["survey"]["questions"][0]
    assert (nps["type"], nps["min"], nps["max"]) == ("nps", 0, 10)
    assert body["labels"]["nps_low"] == "Not at all likely"
    assert rita.email not in first.content.decode()
    (invitation,) = Invitation.objects.all()
    assert (invitation.channel, invitation.status) == ("widget", "sent")
    assert tokens.nonce_of(body["token"]) == invitation.nonce
    # Reloading the page, or finding the person by email or anonymous id, asks nothing new.
    for visitor in ({"userId": rita.user_id}, {"email": "RITA@example.com"},
                    {"anonymousId": "anon-rita"}):
        again = ask(client, survey, ingest_key, **visitor)
        assert again.status_code == 200
        assert again.json()["token"] == body["token"]
    assert Invitation.objects.count() == 1
    assert Contact.objects.filter(profile_id=rita.profile_id).count() == 1


def test_an_unknown_visitor_gets_nothing(client: Client, survey: Survey, ingest_key: str,
                                         db: Any) -> None:
    for visitor in ({"userId": "u-stranger"}, {"email": "nobody@example.com"},
                    {"anonymousId": "anon-x"}, {}):
        response = ask(client, survey, ingest_key, **visitor)
        assert response.status_code == 204 and response.content == b""
    assert not Invitation.objects.exists()
    bad = ask(client, survey, ingest_key, email="not an email")
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_email"


def test_the_contact_policy_decides_and_a_refusal_is_recorded_once(
    client: Client, survey: Survey, ingest_key: str,
) -> None:
    quiet = make_respondent(name="Quinn Quiet", email="quinn@example.com", user_id="u-quinn",
                            anonymous_id="anon-quinn", consent=False, prefix="quinn")
    for _ in range(3):
        assert ask(client, survey, ingest_key, userId="u-quinn").status_code == 204
    (refused,) = Invitation.objects.filter(profile_id=quiet.profile_id)
    assert refused.status == "suppressed" and "consent" in refused.reason
    assert not Contact.objects.filter(profile_id=quiet.profile_id).exists()


def test_language_from_the_tag_the_profile_then_the_browser(
    client: Client, rita: Respondent, survey: Survey, ingest_key: str,
) -> None:
    german = ask(client, survey, ingest_key, userId=rita.user_id, languages=["de-DE", "en"])
    assert german.json()["survey"]["language"] == "de"
    assert german.json()["survey"]["questions"][0]["text"].startswith("Wie wahrscheinlich")
    assert german.json()["labels"]["submit"] == "Antworten senden"
    header = post(client, f"/w/v1/surveys/{survey.slug}/ask", signed({"userId": rita.user_id}),
                  key=ingest_key, **{"Accept-Language": "de"})
    assert header.json()["survey"]["language"] == "de"
    explicit = ask(client, survey, ingest_key, userId=rita.user_id, language="en",
                   languages=["de"])
    assert explicit.json()["survey"]["language"] == "en"


def test_closed_and_unknown_surveys(client: Client, rita: Respondent, survey: Survey,
                                    ingest_key: str) -> None:
    missing = post(client, "/w/v1/surveys/no-such-survey/ask",
                   signed({"userId": rita.user_id}),
                   key=ingest_key)
    assert missing.status_code == 404 and missing.json()["code"] == "survey_not_found"
    actions.update_survey(survey.id, status="closed", actor=Actor("test"))
    assert ask(client, survey, ingest_key, userId=rita.user_id).status_code == 204
    assert not Invitation.objects.exists()


def test_bad_requests_to_ask(client: Client, rita: Respondent, survey: Survey,
                             ingest_key: str) -> None:
    url = f"/w/v1/surveys/{survey.slug}/ask"
    for body, code in (("{nope", "invalid_json"), ("[1, 2]", "invalid_json"),
                       ({"userId": ["x"]}, "invalid_field"),
                       ({"userId": "u" * 500}, "invalid_field")):
        response = post(client, url, body, key=ingest_key)
        assert response.status_code == 400 and response.json()["code"] == code, body
    huge = post(client, url, signed({"userId": rita.user_id, "pad": "x" * 20_000}),
                key=ingest_key)
    assert huge.status_code == 413 and huge.json()["code"] == "payload_too_large"
    get = client.get(url, headers={"Origin": SHOP})
    assert get.status_code == 405 and get.json()["code"] == "method_not_allowed"
    assert not Invitation.objects.exists()


# --- responses ------------------------------------------------------------------------------------


def answer(client: Client, token: str, answers: Any, language: str = "en") -> Any:
    return post(client, "/w/v1/responses",
                {"token": token, "answers": answers, "language": language})


def test_an_answer_through_the_widget_is_stored_once(
    client: Client, rita: Respondent, survey: Survey, ingest_key: str,
) -> None:
    token = ask(client, survey, ingest_key, userId=rita.user_id).json()["token"]
    response = answer(client, token, {"score": 8, "used": ["app"], "again": "yes"})
    assert response.status_code == 201, response.content
    assert response.json() == {"status": "answered"}
    assert response["Access-Control-Allow-Origin"] == SHOP
    (stored,) = Response.objects.all()
    assert (stored.channel, stored.score, stored.profile_id) == ("widget", 8.0, rita.profile_id)
    assert stored.answers == {"score": 8, "used": ["app"], "again": "yes"}
    (event,) = survey_events(rita.profile_id)
    assert event.channel == "survey" and event.payload["properties"]["delivery"] == "widget"
    twice = answer(client, token, {"score": 1})
    assert twice.status_code == 409 and twice.json()["code"] == "already_answered"
    assert Response.objects.count() == 1 and len(survey_events(rita.profile_id)) == 1
    # The next page view: answered, and within the contact policy's quiet period.
    assert ask(client, survey, ingest_key, userId=rita.user_id).status_code == 204


@pytest.mark.parametrize(("answers", "code", "status", "message"), [
    ({"score": 4, "why": "<script>alert(1)</script>"}, "invalid_answer", 400, "markup"),
    ({"score": 11}, "invalid_answer", 400, "from 0 to 10"),
    ({"score": True}, "invalid_answer", 400, "whole number"),
    ({"score": 9, "why": "not shown"}, "invalid_answer", 400, "skipped"),
    ({"score": 9, "admin": True}, "invalid_answer", 400, "no such question"),
    ({}, "invalid_answer", 400, "score: an answer is required"),
    ([9], "invalid_field", 400, "answers"),
])
def test_refused_widget_answers_are_stored_nowhere(
    client: Client, rita: Respondent, survey: Survey, ingest_key: str, answers: Any,
    code: str, status: int, message: str,
) -> None:
    token = ask(client, survey, ingest_key, userId=rita.user_id).json()["token"]
    response = answer(client, token, answers)
    assert response.status_code == status
    assert response.json()["code"] == code and message in response.json()["message"]
    assert not Response.objects.exists() and survey_events(rita.profile_id) == []
    assert Invitation.objects.get().status == "sent"


def test_tampered_tokens_and_huge_bodies_are_refused(
    client: Client, rita: Respondent, survey: Survey, ingest_key: str,
) -> None:
    token = ask(client, survey, ingest_key, userId=rita.user_id).json()["token"]
    nonce, signature = token.split(".")
    for bad in (f"{nonce}.{signature[::-1]}", f"{'0' * 32}.{signature}",
                tokens.token_for("f" * 32), "", "x" * 300):
        response = answer(client, bad, {"score": 10})
        assert response.status_code in {400, 404}, bad
        assert response.json()["code"] in {"invalid_link", "invalid_field"}
    huge = answer(client, token, {"score": 3, "why": "z" * (widget.RESPONSE_MAX_BYTES + 1)})
    assert huge.status_code == 413 and huge.json()["code"] == "payload_too_large"
    assert post(client, "/w/v1/responses", "not json").json()["code"] == "invalid_json"
    assert not Response.objects.exists()
    assert answer(client, token, {"score": 3}).status_code == 201


def test_a_visitor_needs_the_hash_from_the_shops_server(
    client: Client, rita: Respondent, survey: Survey, ingest_key: str,
) -> None:
    """The write key is public: without a valid userHash nothing is looked up, shown or
    counted — so the key alone cannot tell who is a customer or answer in their name."""
    url = f"/w/v1/surveys/{survey.slug}/ask"
    for body in ({"userId": rita.user_id},
                 {"userId": rita.user_id, "userHash": "0" * 64},
                 {"email": rita.email, "userHash": tokens.visitor_hash(rita.user_id)},
                 {"userId": "u-stranger"}):
        refused = post(client, url, body, key=ingest_key)
        assert refused.status_code == 403, body
        assert refused.json()["code"] == "identity_not_verified"
        assert "cxm widget secret" in refused.json()["message"]
    assert not Invitation.objects.exists() and not Contact.objects.exists()
    assert ask(client, survey, ingest_key, userId=rita.user_id).status_code == 200
