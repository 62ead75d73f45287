"""The survey pages in a real headless Chromium, under the real Content-Security-Policy:
building a survey with the form, results with their charts and the htmx period switch,
sending a personal link, drivers, themes, the contact policy and the customer page's Surveys
section. Screenshots go to /tmp/cxm-screens/ (never into the repository)."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from cxm.core.audit import Actor
from cxm.core.clock import now
from cxm.feedback import actions
from cxm.feedback.models import Survey, ThemeJob
from cxm.identity import actions as identity_actions
from tests.web.conftest import Customer, make_customer, make_user, watch
from tests.web.test_browser import (  # noqa: F401  (fixtures used by name)
    SCREENS,
    _vendored_assets,
    browser_context_args,
    sign_in,
)

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytestmark = pytest.mark.browser

NPS = {"language": "en", "title": "How was your delivery?", "questions": [
    {"id": "score", "type": "nps", "text": "How likely are you to recommend us?",
     "required": True},
    {"id": "why", "type": "text", "text": "What is the main reason for your score?"}]}
BAD = ["The courier was late and nobody called", "Parcel arrived damaged, box crushed",
       "Late again, the delivery window was missed", "Courier left it in the rain, damaged",
       "Refund took three weeks, terrible support"]
GOOD = ["Fast delivery and a friendly courier", "Arrived early, great packaging",
        "Quick and easy, the locker was perfect", "Friendly staff and fast refund"]


@pytest.fixture
def shop(transactional_db: Any) -> tuple[Survey, list[Customer]]:
    """A delivery NPS answered by a handful of customers over three months."""
    people = [make_customer(tracks=4)] + [
        make_customer(name=name, email=email, phone=phone, user_id=f"u-{i}",
                      anonymous_id=f"anon-{i}", tracks=3, prefix=f"p{i}")
        for i, (name, email, phone) in enumerate([
            ("Grace Hopper", "grace@example.org", "+442079460958"),
            ("Alan Turing", "alan@example.co.uk", "+442079460123"),
            ("Hedy Lamarr", "hedy@example.com", "+13105550199")])]
    survey = actions.create_survey(name="Delivery NPS", kind="nps", definition=NPS,
                                   touchpoint="delivery", stage="service",
                                   trigger_event="Order Delivered", trigger_delay_minutes=120,
                                   actor=Actor("test"))
    actions.create_survey(name="Support CSAT", kind="csat", status="draft", actor=Actor("test"),
                          touchpoint="support", definition={"questions": [
                              {"id": "score", "type": "csat", "text": "How satisfied are you?"}]})
    rng = random.Random(7)
    start = now() - timedelta(days=90)
    for index in range(72):
        where = ("courier", "locker", "pickup")[index % 3]
        base = {"courier": 5, "locker": 8, "pickup": 7}[where]
        score = max(0, min(10, base + rng.randint(-4, 3)))
        comment = ""
        if index % 2 == 0:
            comment = rng.choice(BAD if score <= 6 else GOOD)
        answers: dict[str, Any] = {"score": score}
        if comment:
            answers["why"] = comment
        actions.submit(actions.Submission(
            survey=survey, answers=answers, channel=("email", "link", "widget")[index % 3],
            profile_id=people[index % len(people)].id, touchpoint=where,
            submitted_at=start + timedelta(days=index * 1.2, hours=index % 7)),
            actor=Actor("test"))
    for person in people[:2]:
        identity_actions.set_consent(profile_id=person.id, channel="email", purpose="research",
                                     granted=True, actor=Actor("test"))
    actions.invite(survey=survey, profile_id=people[1].id, channel="link", actor=Actor("test"))
    actions.invite(survey=survey, profile_id=people[2].id, channel="email", actor=Actor("test"))
    return survey, people


@pytest.fixture
def watched(page: Page, live_server: Any) -> Iterator[Page]:
    """As in test_browser — except the 400 answers a form with mistakes gets on purpose
    (Chromium logs each as a console error)."""
    problems = watch(page, (live_server.url,), console_ignored="status of 400")
    yield page
    assert problems == []


def shot(page: Page, name: str, full: bool = True) -> None:
    SCREENS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENS / f"{name}.png"), full_page=full)


def test_build_a_survey_with_the_form(watched: Page, live_server: Any) -> None:
    make_user("ana", role="analyst")
    page, base = watched, live_server.url
    sign_in(page, base, username="ana")
    page.get_by_role("link", name="Surveys").click()
    expect(page.get_by_role("heading", name="Surveys", exact=True)).to_be_visible()
    page.get_by_role("link", name="New survey").click()
    expect(page.get_by_label("Text of question 2")).to_have_value(
        "What is the main reason for your score?")
    page.get_by_test_id("templates").get_by_role("link", name="CSAT").click()
    expect(page.get_by_label("Text of question 1")).to_have_value(
        "How satisfied are you with your experience?")
    page.get_by_label("Name").fill("Support CSAT")
    page.get_by_role("textbox", name="Touchpoint").fill("support")
    page.get_by_label("Journey stage").select_option("support")

    page.get_by_test_id("add-question").click()
    expect(page.get_by_test_id("question-3")).to_be_visible()
    expect(page.get_by_label("Name")).to_have_value("Support CSAT")  # kept
    choices = page.get_by_label("Choices of question 3")
    expect(choices).to_be_hidden()  # only choice questions show their choices
    page.get_by_label("Type of question 3").select_option("single")
    expect(choices).to_be_visible()
    page.get_by_label("Text of question 3").fill("Who helped you?")
    choices.fill("Chat bot\nA person")
    page.get_by_label("Show question 3 only if").select_option("score")
    page.get_by_label("Condition of question 3").select_option("lte")
    page.get_by_label("Condition value of question 3").fill("3")

    page.get_by_test_id("add-translation").click()
    page.get_by_test_id("translation-0").get_by_label("Language code").fill("de")
    page.get_by_label("Translation 1, question 1").fill("Wie zufrieden sind Sie?")
    shot(page, "survey-builder")

    # A mistake: the condition value is not a number. The message shows, input is kept.
    page.get_by_label("Condition value of question 3").fill("low")
    page.get_by_test_id("save-survey").click()
    expect(page.get_by_test_id("builder-errors")).to_contain_text("“low” is not a number")
    expect(page.get_by_label("Text of question 3")).to_have_value("Who helped you?")
    shot(page, "survey-builder-error", full=False)
    page.get_by_label("Condition value of question 3").fill("3")
    page.get_by_test_id("save-survey").click()
    expect(page.get_by_test_id("survey-name")).to_contain_text("Support CSAT")
    expect(page.get_by_role("status")).to_contain_text("created")
    survey = Survey.objects.get(name="Support CSAT")
    assert survey.definition["questions"][2]["show_if"] == {
        "question": "score", "op": "lte", "value": 3}
    assert survey.definition["translations"]["de"]["questions"]["score"]["text"] == \
        "Wie zufrieden sind Sie?"


def test_results_trend_switch_and_send_a_link(
    watched: Page, live_server: Any, shop: tuple[Survey, list[Customer]],
) -> None:
    survey, people = shop
    make_user("ana", role="analyst")
    page, base = watched, live_server.url
    sign_in(page, base, username="ana")
    page.goto(f"{base}/surveys/")
    expect(page.get_by_test_id("survey-table")).to_contain_text("Delivery NPS")
    shot(page, "surveys-list")
    page.get_by_role("link", name="Delivery NPS").click()
    expect(page.get_by_test_id("kpi-value")).to_be_visible()
    expect(page.locator("[data-chart-type=trend] canvas")).to_have_count(1)
    expect(page.locator("#distribution-chart canvas")).to_have_count(1)
    expect(page.get_by_test_id("slice-touchpoint")).to_contain_text("courier")
    expect(page.get_by_test_id("verbatims").locator("tbody tr")).to_have_count(20)
    shot(page, "survey-results")
    page.get_by_role("heading", name="Trend").scroll_into_view_if_needed()
    shot(page, "survey-results-top", full=False)

    page.evaluate("window.__samePage = true")
    with page.expect_response(lambda r: "/trend/?period=month" in r.url):
        page.get_by_role("link", name="Month").click()
    expect(page.locator("#trend-chart-month canvas")).to_have_count(1)
    expect(page.locator("#trend-chart-week")).to_have_count(0)
    assert page.evaluate("window.__samePage") is True
    expect(page).to_have_url(f"{base}/surveys/{survey.id}/?period=month")

    form = page.get_by_test_id("invite-form")
    form.get_by_label("Customer").fill(people[0].email)
    form.get_by_label("Channel").select_option("link")
    form.get_by_role("button", name="Send").click()
    expect(page.get_by_test_id("invite-link")).to_contain_text("/s/")
    assert page.evaluate("window.__samePage") is True
    page.get_by_test_id("invite-result").scroll_into_view_if_needed()
    shot(page, "survey-invite-link", full=False)
    form = page.get_by_test_id("invite-form")
    form.get_by_label("Customer").fill(people[0].email)
    form.get_by_role("button", name="Send").click()
    expect(page.get_by_test_id("invite-result")).to_contain_text("contact policy says no")
    page.get_by_test_id("invite-result").scroll_into_view_if_needed()
    shot(page, "survey-invite-suppressed", full=False)


def test_drivers_and_contact_policy(
    watched: Page, live_server: Any, shop: tuple[Survey, list[Customer]],
) -> None:
    survey, _ = shop
    make_user("ana", role="analyst")
    page, base = watched, live_server.url
    sign_in(page, base, username="ana")
    page.goto(f"{base}/surveys/{survey.id}/")
    page.get_by_role("link", name="What drives the score").click()
    expect(page.get_by_test_id("drivers-help")).to_contain_text("How to read this")
    expect(page.locator("#drivers-chart canvas")).to_have_count(1)
    expect(page.get_by_test_id("drivers-table")).to_contain_text("courier")
    shot(page, "survey-drivers")

    page.get_by_role("link", name="Surveys", exact=True).first.click()
    page.get_by_role("link", name="Contact policy").click()
    page.get_by_label("Days between any two surveys").fill("14")
    page.get_by_label("Require research consent").uncheck()
    page.get_by_test_id("save-policy").click()
    expect(page.get_by_role("status")).to_contain_text("Contact policy saved")
    expect(page.get_by_label("Days between any two surveys")).to_have_value("14")
    shot(page, "contact-policy")


def test_customer_page_surveys_section_and_a_marketer_sees_no_comments(
    watched: Page, live_server: Any, shop: tuple[Survey, list[Customer]],
) -> None:
    survey, people = shop
    make_user("agnes", role="agent")
    make_user("mark", role="marketer")
    page, base = watched, live_server.url
    sign_in(page, base, username="agnes")
    page.goto(f"{base}/customers/{people[1].id}/")
    section = page.get_by_test_id("customer-surveys")
    expect(section.get_by_test_id("survey-standing")).to_contain_text("not before")
    expect(section.get_by_test_id("customer-responses")).to_contain_text("Delivery NPS")
    expect(section.get_by_test_id("customer-invitations")).to_contain_text("Sent")
    expect(page.locator("#channel-chart canvas")).to_have_count(1)  # the rest still works
    section.scroll_into_view_if_needed()
    shot(page, "customer-360-surveys", full=False)

    page.get_by_role("button", name="Sign out").click()
    sign_in(page, base, username="mark")
    page.goto(f"{base}/surveys/{survey.id}/")
    verbatims = page.get_by_test_id("verbatims")
    expect(verbatims).to_contain_text("needs the verbatims permission")
    for comment in BAD + GOOD:
        expect(verbatims).not_to_contain_text(comment)
    verbatims.scroll_into_view_if_needed()
    shot(page, "survey-results-marketer", full=False)


def test_themes_discover_rename_and_merge(
    watched: Page, live_server: Any, shop: tuple[Survey, list[Customer]],
) -> None:
    pytest.importorskip("cxm.text.themes")
    make_user("ana", role="analyst")
    page, base = watched, live_server.url
    sign_in(page, base, username="ana")
    page.goto(f"{base}/surveys/themes/")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_test_id("discover").click()
    # The click only queues the discovery: the page says so and polls until a worker is done.
    status = page.get_by_test_id("theme-job")
    expect(status).to_contain_text("Discovering themes…")
    expect(status).to_contain_text("by ana")
    shot(page, "survey-themes-discovering", full=False)
    job = ThemeJob.objects.get(kind="discover")
    assert actions.run_theme_job(job.id).status == "done"  # what `cxm worker` does
    expect(page.get_by_role("status")).to_contain_text("Themes discovered", timeout=10_000)
    expect(page.get_by_test_id("theme-job")).to_be_hidden()
    cards = page.locator(".theme-card")
    expect(cards.first).to_be_visible()
    expect(cards.first.locator(".chart-spark canvas")).to_have_count(1)
    shot(page, "survey-themes")
    first = cards.first
    first.get_by_text("Edit, or merge into another theme").click()
    shot(page, "survey-themes-edit", full=False)
    first.get_by_label("Name").fill("Courier problems")
    first.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("Theme “Courier problems” saved")
    if cards.count() > 1:
        second = cards.nth(1)
        second.get_by_text("Edit, or merge into another theme").click()
        page.once("dialog", lambda dialog: dialog.accept())
        second.get_by_role("button", name="Merge").click()
        expect(page.get_by_role("status")).to_contain_text("Merged into")
