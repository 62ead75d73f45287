"""The respondent's side in a real headless Chromium: the survey page on a desktop and a
phone (skip logic shown live, a submission, a double submission counted once, a tampered
link refused) and the widget embedded in a page of ANOTHER origin (so CORS and the Shadow DOM
are really exercised). Screenshots go to /tmp/cxm-screens/."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from cxm.feedback import tokens
from cxm.feedback.models import Invitation, Response
from cxm.web import public_survey_views, widget
from tests.web.conftest import watch
from tests.web.test_public_survey import (
    Respondent,
    link_for,
    make_respondent,
    make_survey,
    survey_events,
)

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENS = Path("/tmp/cxm-screens")
PHONE = {"width": 390, "height": 844}


@pytest.fixture(autouse=True)
def _fresh_limits() -> Iterator[None]:
    for limiter in (public_survey_views.bad_links, widget.ask_limiter, widget.respond_limiter):
        limiter.reset()
    yield


@pytest.fixture
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_context_args, "viewport": {"width": 1280, "height": 900}}


@pytest.fixture
def watched(page: Page, live_server: Any) -> Iterator[Page]:
    """Fails the test on a script error, a console error, a failed request, or a request to
    anywhere but the server under test and the pretend shop."""
    problems = watch(page, (live_server.url, "http://shop.localhost:"),
                     console_ignored="status of 4", aborted_ok=False)
    yield page
    assert problems == []


def shot(page: Page, name: str) -> None:
    SCREENS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENS / name), full_page=True)


@pytest.fixture
def rita() -> Respondent:
    return make_respondent()


# --- the survey page ------------------------------------------------------------------------------


def test_answer_the_survey_on_a_desktop(watched: Page, live_server: Any,
                                        rita: Respondent) -> None:
    page = watched
    survey = make_survey()
    invitation, path = link_for(survey, rita)
    page.goto(live_server.url + path)
    expect(page.get_by_role("heading", name="How did we do?")).to_be_visible()
    why = page.locator("#q-why")
    expect(why).to_be_hidden()  # skip logic: asked only for a score of 6 or less
    shot(page, "survey-desktop.png")

    page.locator("#q-score label:has(input[value='9'])").click()
    expect(why).to_be_hidden()
    page.locator("#q-score label:has(input[value='4'])").click()
    expect(why).to_be_visible()
    page.get_by_label("What is the main reason for your score?").fill("Slow courier")
    page.locator("#q-used label", has_text="App").click()
    page.locator("#q-used label", has_text="Store").click()
    page.locator("#q-effort label:has(input[value='5'])").click()
    page.locator("#q-happy label:has(input[value='2'])").click()
    page.locator("#q-again label", has_text="No").click()
    # Changing the score hides the comment again: it is then not sent.
    page.locator("#q-score label:has(input[value='10'])").click()
    expect(why).to_be_hidden()
    page.locator("#q-score label:has(input[value='6'])").click()
    expect(why).to_be_visible()
    shot(page, "survey-desktop-filled.png")
    page.get_by_role("button", name="Send my answers").click()
    expect(page.get_by_test_id("survey-thanks")).to_have_text("Thank you!")
    expect(page.get_by_text("Thank you, your answers help us improve.")).to_be_visible()
    shot(page, "survey-thanks.png")

    stored = Response.objects.get(survey=survey)
    assert stored.score == 6.0 and stored.channel == "link"
    assert {k: v for k, v in stored.answers.items() if k != "why"} == {
        "score": 6, "used": ["app", "store"], "effort": 5, "happy": 2, "again": "no"}
    assert stored.sentiment  # the comment was analysed (and is stored encrypted)
    invitation.refresh_from_db()
    assert invitation.status == "answered"
    assert [e.channel for e in survey_events(rita.profile_id)] == ["survey"]

    # Back to the link later: already answered, nothing more stored.
    page.goto(live_server.url + path)
    expect(page.get_by_test_id("survey-message")).to_have_text("Already answered — thank you")


def test_a_double_submission_is_counted_once(context: BrowserContext, live_server: Any,
                                            rita: Respondent) -> None:
    survey = make_survey()
    _, path = link_for(survey, rita)
    first, second = context.new_page(), context.new_page()
    for tab in (first, second):
        tab.goto(live_server.url + path)
        tab.locator("#q-score label:has(input[value='8'])").click()
    first.get_by_role("button", name="Send my answers").click()
    expect(first.get_by_test_id("survey-thanks")).to_be_visible()
    second.get_by_role("button", name="Send my answers").click()
    expect(second.get_by_test_id("survey-message")).to_have_text(
        "Already answered — thank you")
    assert Response.objects.filter(survey=survey).count() == 1
    assert len(survey_events(rita.profile_id)) == 1


def test_the_page_on_a_phone(watched: Page, live_server: Any, rita: Respondent) -> None:
    page = watched
    page.set_viewport_size(PHONE)
    survey = make_survey()
    _, path = link_for(survey, rita)
    page.goto(live_server.url + path + "?lang=de")
    expect(page.get_by_role("heading", name="Wie war es?")).to_be_visible()
    # No sideways scrolling, and the eleven NPS buttons sit on one row, big enough to tap.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    boxes = [page.locator(f"#q-score label:has(input[value='{n}'])").bounding_box()
             for n in range(11)]
    assert all(box is not None for box in boxes)
    assert len({round(box["y"]) for box in boxes if box}) == 1
    assert min(box["height"] for box in boxes if box) >= 40
    assert max(box["x"] + box["width"] for box in boxes if box) <= PHONE["width"]
    shot(page, "survey-phone.png")
    page.locator("#q-score label:has(input[value='3'])").click()
    page.get_by_label("Was ist der wichtigste Grund für Ihre Bewertung?").fill(
        "Die Lieferung kam zu spät.")
    page.get_by_role("button", name="Antworten senden").click()
    expect(page.get_by_test_id("survey-thanks")).to_have_text("Vielen Dank!")
    expect(page.get_by_text("Danke für Ihre Antworten!")).to_be_visible()
    shot(page, "survey-thanks-phone.png")
    assert Response.objects.get(survey=survey).language == "de"


def test_a_tampered_link_is_refused(watched: Page, live_server: Any, rita: Respondent) -> None:
    page = watched
    survey = make_survey()
    _, path = link_for(survey, rita)
    token = path.split("/")[2]
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    response = page.goto(f"{live_server.url}/s/{tampered}/")
    assert response is not None and response.status == 404
    expect(page.get_by_test_id("survey-message")).to_have_text("This link is not valid")
    shot(page, "survey-invalid-link.png")
    assert not Response.objects.exists()


def test_a_refused_answer_shows_why_and_can_be_corrected(
    watched: Page, live_server: Any, rita: Respondent,
) -> None:
    page = watched
    survey = make_survey()
    _, path = link_for(survey, rita)
    page.goto(live_server.url + path)
    page.locator("#q-score label:has(input[value='1'])").click()
    page.get_by_label("What is the main reason for your score?").fill("<b>bad</b> service")
    page.get_by_role("button", name="Send my answers").click()
    expect(page.get_by_test_id("survey-problem")).to_contain_text(
        "markup such as HTML tags is not accepted")
    assert not Response.objects.exists()
    # The answers are still there; fix the comment and send again.
    expect(page.locator("#q-score input[value='1']")).to_be_checked()
    page.get_by_label("What is the main reason for your score?").fill("bad service")
    page.get_by_role("button", name="Send my answers").click()
    expect(page.get_by_test_id("survey-thanks")).to_be_visible()
    assert Response.objects.count() == 1


# --- the widget on another site ----------------------------------------------------------------

HOST_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Example Shop</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  body {{ font: 16px Georgia, serif; margin: 0; background: #fbf7f0; color: #3b2f2f; }}
  header {{ background: #3b2f2f; color: #fff; padding: 18px 32px; font-size: 22px; }}
  main {{ padding: 32px; max-width: 760px; }}
  .card {{ background: #fff; border: 1px solid #e8dccb; padding: 20px; margin: 16px 0; }}
  /* Hostile to anything that would let page CSS in: */
  * {{ color: rgb(255, 0, 0) !important; letter-spacing: 3px !important; }}
  button {{ display: none !important; }}
  fieldset, legend, label, span, p, section {{ font-size: 40px !important; }}
</style></head>
<body><header>Example Shop</header>
<main><h1>Your order has arrived</h1>
<div class="card">Order A-1001 was delivered today. Thank you for shopping with us.</div>
<div class="card">Need help? Our support team answers within a day.</div></main>
<script src="{server}/widget.js" data-write-key="{key}" data-survey="{survey}"
        {who} async></script>
</body></html>"""


class Shop:
    """A pretend shop on its own origin: a real HTTP server on another port, reached as
    ``shop.localhost`` (Chromium resolves ``*.localhost`` to the loopback address itself).
    Both sides are loopback, so Chromium's private-network rules allow the calls and CORS is
    what decides — as between a public shop and a public cxm."""

    def __init__(self) -> None:
        self.html = b""
        shop = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(shop.html)))
                self.end_headers()
                self.wfile.write(shop.html)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://shop.localhost:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def serve(self, live_server: Any, key: str, survey: str, who: str) -> None:
        self.html = HOST_PAGE.format(server=live_server.url, key=key, survey=survey,
                                     who=who).encode()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def shop() -> Iterator[Shop]:
    server = Shop()
    try:
        yield server
    finally:
        server.close()


def test_the_widget_on_another_origin(watched: Page, live_server: Any, rita: Respondent,
                                      ingest_key: str, shop: Shop) -> None:
    page = watched
    survey = make_survey("Delivery widget")
    shop.serve(live_server, ingest_key, survey.slug,
               f'data-user-id="{rita.user_id}" '
               f'data-user-hash="{tokens.visitor_hash(rita.user_id)}"')
    with page.expect_response(lambda r: "/ask" in r.url and r.request.method == "POST") as asked:
        page.goto(f"{shop.url}/order/A-1001")
    # A cross-origin call, allowed by CORS for the shop's origin (after a preflight: it
    # sends Authorization and JSON).
    assert asked.value.status == 200
    assert asked.value.headers["access-control-allow-origin"] == shop.url
    panel = page.locator("[data-cxm-survey] section.panel")
    expect(panel).to_be_visible()
    expect(panel.get_by_text("How did we do?")).to_be_visible()
    # The page's CSS does not reach into the Shadow DOM.
    title = panel.locator("p.title")
    assert title.evaluate("e => getComputedStyle(e).color") == "rgb(29, 35, 48)"
    assert title.evaluate("e => getComputedStyle(e).fontSize") == "16px"
    expect(panel.get_by_role("button", name="Send my answers")).to_be_visible()
    shot(page, "widget-on-shop.png")

    panel.locator("fieldset[data-question='score'] label:has(input[value='2'])").click()
    expect(panel.locator("fieldset[data-question='why']")).to_be_visible()
    panel.get_by_label("What is the main reason for your score?").fill("Late again.")
    panel.locator("fieldset[data-question='score'] label:has(input[value='9'])").click()
    expect(panel.locator("fieldset[data-question='why']")).to_be_hidden()
    panel.locator("fieldset[data-question='again'] label", has_text="Yes").click()
    panel.get_by_role("button", name="Send my answers").click()
    expect(panel.locator("[data-cxm-thanks]")).to_contain_text(
        "Thank you, your answers help us improve.")
    shot(page, "widget-thanks.png")

    (stored,) = Response.objects.filter(survey=survey)
    assert (stored.channel, stored.score) == ("widget", 9.0)
    assert stored.answers == {"score": 9, "again": "yes"}  # the hidden comment was not sent
    assert [e.channel for e in survey_events(rita.profile_id)] == ["survey"]

    # A second submission of the same token from the shop's page: refused, counted once.
    token = _token_of(survey, rita)
    again = page.evaluate(
        """([url, token]) => fetch(url, {method: "POST", mode: "cors",
              headers: {"Content-Type": "application/json"},
              body: JSON.stringify({token: token, answers: {score: 0}})})
            .then(r => r.json().then(b => [r.status, b.code]))""",
        [f"{live_server.url}/w/v1/responses", token])
    assert again == [409, "already_answered"]
    # A tampered token from the page: refused.
    forged = page.evaluate(
        """([url, token]) => fetch(url, {method: "POST", mode: "cors",
              headers: {"Content-Type": "application/json"},
              body: JSON.stringify({token: token, answers: {score: 10}})})
            .then(r => r.json().then(b => [r.status, b.code]))""",
        [f"{live_server.url}/w/v1/responses", token[:-3] + "abc"])
    assert forged == [404, "invalid_link"]
    assert Response.objects.count() == 1 and len(survey_events(rita.profile_id)) == 1

    # The next visit shows nothing (answered, and this tab remembers).
    page.reload()
    page.wait_for_load_state("networkidle")
    expect(page.locator("[data-cxm-survey]")).to_have_count(0)


def _token_of(survey: Any, person: Respondent) -> str:
    from cxm.feedback import tokens

    invitation = Invitation.objects.get(survey=survey, profile_id=person.profile_id)
    return tokens.token_for(invitation.nonce)


def test_the_widget_on_a_phone_and_dismissed(watched: Page, live_server: Any,
                                             rita: Respondent, ingest_key: str,
                                             shop: Shop) -> None:
    page = watched
    page.set_viewport_size(PHONE)
    survey = make_survey("Phone widget")
    shop.serve(live_server, ingest_key, survey.slug,
               f'data-email="rita@example.com" data-lang="de" '
               f'data-user-hash="{tokens.visitor_hash("rita@example.com")}"')
    page.goto(f"{shop.url}/")
    panel = page.locator("[data-cxm-survey] section.panel")
    expect(panel).to_be_visible()
    expect(panel.get_by_text("Wie war es?")).to_be_visible()
    box = panel.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    shot(page, "widget-phone.png")
    panel.get_by_role("button", name="Schließen").click()
    expect(page.locator("[data-cxm-survey]")).to_have_count(0)
    page.reload()
    page.wait_for_load_state("networkidle")
    expect(page.locator("[data-cxm-survey]")).to_have_count(0)
    # Dismissed, not answered: nothing stored, and the invitation is still open for later.
    assert not Response.objects.exists()
    assert Invitation.objects.get(survey=survey).status == "sent"


def test_the_widget_shows_nothing_to_an_unknown_visitor(
    watched: Page, live_server: Any, ingest_key: str, shop: Shop,
) -> None:
    page = watched
    survey = make_survey("Nobody widget")
    shop.serve(live_server, ingest_key, survey.slug,
               f'data-user-id="u-nobody" data-user-hash="{tokens.visitor_hash("u-nobody")}"')
    with page.expect_response(lambda r: "/ask" in r.url and r.request.method == "POST") as asked:
        page.goto(f"{shop.url}/")
    assert asked.value.status == 204
    page.wait_for_load_state("networkidle")
    expect(page.locator("[data-cxm-survey]")).to_have_count(0)
    assert not Invitation.objects.exists()
