"""The survey pages through Django's test client: the list, the builder, results, drivers,
themes, the contact policy and the Surveys section of the customer page — who sees what
(verbatims only with ``feedback.verbatims``, and audited), and that every write goes through
``feedback.actions``. Data is made through the real actions and the ingest path."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from cxm.core.audit import Actor
from cxm.core.models import AuditLog as AuditEntry
from cxm.feedback import actions, queries
from cxm.feedback.models import Invitation, Survey, ThemeJob
from cxm.identity import actions as identity_actions
from tests.web.conftest import START, Customer, make_customer, make_user

pytestmark = pytest.mark.django_db

NPS = {"language": "en", "title": "How are we doing?", "questions": [
    {"id": "score", "type": "nps", "text": "How likely are you to recommend us?",
     "required": True},
    {"id": "why", "type": "text", "text": "What is the main reason for your score?"},
]}
COMMENTS = ("The courier was late again and nobody called",
            "Fast delivery and friendly staff, thank you",
            "Package arrived damaged, very disappointed")


def html(response: Any) -> str:
    return response.content.decode()


def make_survey(name: str = "Delivery NPS", **fields: Any) -> Survey:
    fields.setdefault("kind", "nps")
    fields.setdefault("definition", NPS)
    fields.setdefault("touchpoint", "delivery")
    return actions.create_survey(name=name, actor=Actor("test"), **fields)


def answer(survey: Survey, person: uuid.UUID, score: int, comment: str = "", *,
           day: int = 0, touchpoint: str | None = None) -> Any:
    answers: dict[str, Any] = {"score": score}
    if comment:
        answers["why"] = comment
    return actions.submit(actions.Submission(
        survey=survey, answers=answers, channel="email", profile_id=person,
        submitted_at=START + timedelta(days=day), touchpoint=touchpoint), actor=Actor("test"))


def allow_research(person: uuid.UUID) -> None:
    identity_actions.set_consent(profile_id=person, channel="email", purpose="research",
                                 granted=True, actor=Actor("test"))


@pytest.fixture
def world() -> tuple[Survey, Customer]:
    ada = make_customer(tracks=2)
    survey = make_survey()
    for index, score in enumerate((10, 9, 9, 8, 7, 3, 2, 10, 6, 9)):
        answer(survey, ada.id, score, COMMENTS[index % 3] if index < 6 else "", day=index * 4,
               touchpoint="delivery" if index % 2 else "returns")  # 36 days: March, April
    return survey, ada


@pytest.fixture
def as_role(client: Client) -> Callable[[str], Client]:
    def sign_in(role: str) -> Client:
        client.force_login(make_user(f"u-{role}", role=role))
        return client

    return sign_in


# --- who may see what ------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/surveys/", "/surveys/new/", "/surveys/themes/",
                                  "/settings/contact-policy/",
                                  f"/surveys/{uuid.UUID(int=3)}/"])
def test_survey_pages_need_a_login(client: Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 302 and response["Location"].startswith("/login/?next=")


def test_the_list_shows_each_survey_with_its_headline(
    world: tuple[Survey, Customer], as_role: Callable[[str], Client],
) -> None:
    survey, _ = world
    text = html(as_role("viewer").get("/surveys/"))
    assert "Delivery NPS" in text and f"/surveys/{survey.id}/" in text
    results = queries.survey_by_id(survey.id)
    assert results.status == "active"
    assert ">+20<" in text  # 5 promoters, 3 detractors of 10
    assert "delivery" in text
    assert "New survey" not in text  # a viewer may not create surveys
    assert 'href="/surveys/"' in text  # in the navigation


def test_a_viewer_sees_counts_never_comments(
    world: tuple[Survey, Customer], as_role: Callable[[str], Client],
) -> None:
    survey, ada = world
    client = as_role("marketer")
    text = html(client.get(f"/surveys/{survey.id}/"))
    assert "6 comments." in text or "6 comment" in text
    for comment in COMMENTS:
        assert comment not in text
    assert not AuditEntry.objects.filter(action="profile.read_personal",
                                         target_type="response").exists()
    page = html(client.get(f"/customers/{ada.id}/"))
    assert "left a comment" in page
    for comment in COMMENTS:
        assert comment not in page


def test_an_analyst_reads_comments_and_the_read_is_audited(
    world: tuple[Survey, Customer], as_role: Callable[[str], Client],
) -> None:
    survey, _ = world
    text = html(as_role("analyst").get(f"/surveys/{survey.id}/"))
    for comment in COMMENTS:
        assert comment in text
    reads = AuditEntry.objects.filter(target_type="response", action="profile.read_personal")
    assert reads.count() == 6
    assert all(r.changes == {"fields": ["comment"]} for r in reads)


@pytest.mark.parametrize("role", ["viewer", "agent"])
def test_roles_without_manage_cannot_build_or_send(
    world: tuple[Survey, Customer], as_role: Callable[[str], Client], role: str,
) -> None:
    survey, ada = world
    client = as_role(role)
    assert client.get("/surveys/new/").status_code == 403
    assert client.get(f"/surveys/{survey.id}/edit/").status_code == 403
    assert client.post(f"/surveys/{survey.id}/invite/",
                       {"customer": str(ada.id), "channel": "link"}).status_code == 403
    assert client.post("/settings/contact-policy/save/", {}).status_code == 403
    text = html(client.get(f"/surveys/{survey.id}/"))
    assert "Send to a customer" not in text and "Edit survey" not in text


# --- results ---------------------------------------------------------------------------------


def test_results_show_kpi_ci_counts_slices_and_trend(
    world: tuple[Survey, Customer], as_role: Callable[[str], Client],
) -> None:
    survey, _ = world
    client = as_role("analyst")
    text = html(client.get(f"/surveys/{survey.id}/"))
    assert re.search(r'data-testid="kpi-value">\+20<', text)
    assert "95% sure the true score is between" in text
    assert re.search(r'data-testid="classes">.*Promoters.*>5<.*Passives.*>2<.*Detractors.*>3<',
                     text, re.S)
    assert 'data-testid="slice-touchpoint"' in text and "returns" in text
    assert 'data-testid="slice-channel"' in text
    assert 'id="trend-data"' in text and 'data-chart-type="trend"' in text
    assert 'data-chart-type="distribution"' in text
    assert "<script>" not in text and " style=" not in text  # CSP: no inline code or styles
    monthly = client.get(f"/surveys/{survey.id}/trend/", {"period": "month"},
                         headers={"HX-Request": "true"})
    assert monthly.status_code == 200
    body = html(monthly)
    assert "<html" not in body and 'data-period="month"' in body
    assert body.count('"start"') == 2  # March and April 2025


def _answer_row_reads(captured: CaptureQueriesContext) -> list[str]:
    """Statements that read feedback_response rows one per answer: neither counting them
    (GROUP BY / COUNT) nor limited to a page of them."""
    return [q["sql"] for q in captured.captured_queries
            if 'FROM "feedback_response"' in q["sql"] and "GROUP BY" not in q["sql"]
            and "COUNT(" not in q["sql"] and "LIMIT" not in q["sql"]]


@pytest.mark.parametrize("path", ["/surveys/{id}/", "/surveys/", "/surveys/{id}/trend/"])
def test_results_list_and_trend_count_in_sql_and_page_the_comments(
    world: tuple[Survey, Customer], as_role: Callable[[str], Client], path: str,
) -> None:
    survey, _ = world
    client = as_role("analyst")
    with CaptureQueriesContext(connection) as captured:
        assert client.get(path.format(id=survey.id)).status_code == 200
    assert _answer_row_reads(captured) == []
    if path == "/surveys/{id}/":  # the comments: the latest page of them, limited in SQL
        assert any('"comment"' in q["sql"] and "LIMIT 20" in q["sql"]
                   for q in captured.captured_queries)


def test_unknown_survey_is_404(as_role: Callable[[str], Client]) -> None:
    client = as_role("analyst")
    assert client.get(f"/surveys/{uuid.UUID(int=5)}/").status_code == 404
    assert client.get(f"/surveys/{uuid.UUID(int=5)}/drivers/").status_code == 404


def test_a_custom_survey_without_scores_has_an_empty_state(
    as_role: Callable[[str], Client],
) -> None:
    survey = make_survey("Channels used", kind="custom", definition={"questions": [
        {"id": "used", "type": "multi", "text": "Which did you use?",
         "choices": [{"id": "web", "label": "Website"}, {"id": "app", "label": "App"}]}]})
    client = as_role("analyst")
    assert "No scored answers yet" in html(client.get(f"/surveys/{survey.id}/"))
    assert "Nothing to compare yet" in html(client.get(f"/surveys/{survey.id}/drivers/"))
    assert client.get("/surveys/").status_code == 200


# --- sending ---------------------------------------------------------------------------------


def test_send_a_personal_link_then_the_policy_suppresses_the_next(
    world: tuple[Survey, Customer], as_role: Callable[[str], Client],
) -> None:
    survey, ada = world
    allow_research(ada.id)
    client = as_role("analyst")
    sent = client.post(f"/surveys/{survey.id}/invite/",
                       {"customer": ada.email, "channel": "link"})
    assert sent.status_code == 200 and sent["Cache-Control"] == "no-store"
    text = html(sent)
    assert "Personal link ready" in text
    link = re.search(r'data-testid="invite-link">([^<]+)<', text)
    assert link and "/s/" in link.group(1)
    invitation = Invitation.objects.get()
    assert invitation.status == "sent" and invitation.channel == "link"

    again = client.post(f"/surveys/{survey.id}/invite/", {"customer": str(ada.id),
                                                          "channel": "link"},
                        headers={"HX-Request": "true"})
    body = html(again)
    assert "<html" not in body
    assert "the contact policy says no" in body and "the limit is once in 30 days" in body
    assert Invitation.objects.filter(status="suppressed").count() == 1
    counts = html(client.get(f"/surveys/{survey.id}/"))
    assert re.search(r"Suppressed by policy</span></dt><dd>1<", counts)


def test_send_without_consent_or_to_nobody(
    world: tuple[Survey, Customer], as_role: Callable[[str], Client],
) -> None:
    survey, ada = world
    client = as_role("marketer")
    refused = html(client.post(f"/surveys/{survey.id}/invite/",
                               {"customer": ada.email, "channel": "email"}))
    assert "No consent" in refused or "no consent" in refused
    nobody = client.post(f"/surveys/{survey.id}/invite/",
                         {"customer": "nobody@example.com", "channel": "link"})
    assert nobody.status_code == 400 and "No customer found" in html(nobody)
    assert 'value="nobody@example.com"' in html(nobody)  # the input is kept
    actions.update_survey(survey.id, status="closed", actor=Actor("test"))
    closed = client.post(f"/surveys/{survey.id}/invite/",
                         {"customer": str(ada.id), "channel": "link"})
    assert closed.status_code == 400 and "is closed, not active" in html(closed)


# --- the builder -----------------------------------------------------------------------------


def builder_post(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "Support CSAT", "kind": "csat", "status": "active", "touchpoint": "support",
        "stage": "support", "trigger_event": "Ticket Closed", "trigger_delay": "60",
        "language": "en", "title": "How did we do?", "thank_you": "Thanks!",
        "q_count": "3", "t_count": "1",
        "q0_id": "score", "q0_type": "csat", "q0_text": "How satisfied are you?",
        "q0_required": "on",
        "q1_id": "", "q1_type": "single", "q1_text": "Who helped you?",
        "q1_choices": "Chat bot\nagent | A person\n",
        "q1_show_q": "score", "q1_show_op": "gte", "q1_show_value": "3",
        "q2_id": "why", "q2_type": "text", "q2_text": "What could we do better?",
        "q2_show_q": "q2", "q2_show_op": "eq", "q2_show_value": "a person",
        "t0_lang": "de", "t0_title": "Wie war es?", "t0_thank_you": "Danke!",
        "t0_q0_text": "Wie zufrieden sind Sie?", "t0_q1_text": "Wer hat geholfen?",
        "t0_q1_choices": "\nEin Mensch", "t0_q2_text": "",
        "rule_survey_days": "60", "rule_require_consent": "on", "op": "save",
    }
    data.update(overrides)
    return data


def test_new_survey_starts_from_the_template_of_its_kind(
    as_role: Callable[[str], Client],
) -> None:
    client = as_role("analyst")
    text = html(client.get("/surveys/new/"))
    assert "What is the main reason for your score?" in text
    assert 'value="nps" selected' in text
    ces = html(client.get("/surveys/new/", {"kind": "ces"}))
    assert "How easy was it" in ces and "&quot;type&quot;: &quot;ces&quot;" in ces


def test_build_a_survey_with_the_form(as_role: Callable[[str], Client]) -> None:
    client = as_role("analyst")
    response = client.post("/surveys/new/", builder_post())
    assert response.status_code == 302, html(response)
    survey = Survey.objects.get(name="Support CSAT")
    assert response["Location"] == f"/surveys/{survey.id}/"
    assert (survey.kind, survey.touchpoint, survey.stage) == ("csat", "support", "support")
    assert (survey.trigger_event, survey.trigger_delay_minutes) == ("Ticket Closed", 60)
    assert survey.rules == {"survey_days": 60, "require_consent": True}
    questions = survey.definition["questions"]
    assert [q["id"] for q in questions] == ["score", "q2", "why"]
    assert questions[1]["choices"] == [{"id": "chat_bot", "label": "Chat bot"},
                                       {"id": "agent", "label": "A person"}]
    assert questions[1]["show_if"] == {"question": "score", "op": "gte", "value": 3}
    assert questions[2]["show_if"] == {"question": "q2", "op": "eq", "value": "agent"}
    assert survey.definition["translations"] == {"de": {
        "title": "Wie war es?", "thank_you": "Danke!",
        "questions": {"score": {"text": "Wie zufrieden sind Sie?", "choices": {}},
                      "q2": {"text": "Wer hat geholfen?", "choices": {"agent": "Ein Mensch"}}}}}
    # And back into the form for editing, unchanged.
    text = html(client.get(f"/surveys/{survey.id}/edit/"))
    assert "agent | A person" in text and "Chat bot" in text and "Ein Mensch" in text
    assert client.post(f"/surveys/{survey.id}/edit/", builder_post(
        name="Support CSAT v2", q0_id="score", q1_id="q2")).status_code == 302
    survey.refresh_from_db()
    assert survey.name == "Support CSAT v2"
    assert AuditEntry.objects.filter(action="survey.update", target_id=str(survey.id)).exists()


def test_builder_errors_keep_the_input(as_role: Callable[[str], Client]) -> None:
    client = as_role("analyst")
    wrong_kind = client.post("/surveys/new/", builder_post(kind="nps", name="Kept name"))
    assert wrong_kind.status_code == 400
    text = html(wrong_kind)
    assert "a NPS survey needs a question of type &#x27;nps&#x27;" in text
    assert 'value="Kept name"' in text and "Wer hat geholfen?" in text
    bad_condition = html(client.post("/surveys/new/", builder_post(q1_show_value="lots")))
    assert "Question 2, show if: “lots” is not a number" in bad_condition
    empty_text = html(client.post("/surveys/new/", builder_post(q2_text="")))
    assert "questions.2.text" in empty_text
    assert not Survey.objects.exists()
    make_survey("Taken")
    taken = html(client.post("/surveys/new/", builder_post(name="Taken")))
    assert "a survey named &#x27;Taken&#x27; exists already" in taken


def test_add_remove_and_move_rows_keep_what_was_typed(as_role: Callable[[str], Client]) -> None:
    client = as_role("analyst")
    added = html(client.post("/surveys/new/", builder_post(op="add_question")))
    assert added.count('class="q-row"') == 4 and 'value="Kept' not in added
    assert 'name="q3_text"' in added and 'name="t0_q3_text"' in added
    assert "Wer hat geholfen?" in added
    removed = html(client.post("/surveys/new/", builder_post(op="remove_question:0")))
    assert removed.count('class="q-row"') == 2 and "How satisfied are you?" not in removed
    assert "Wie zufrieden" not in removed and "Wer hat geholfen?" in removed
    moved = html(client.post("/surveys/new/", builder_post(op="down:0")))
    assert moved.index("Who helped you?") < moved.index("How satisfied are you?")
    more = html(client.post("/surveys/new/", builder_post(op="add_translation")))
    assert 'name="t1_lang"' in more
    fewer = html(client.post("/surveys/new/", builder_post(op="remove_translation:0")))
    assert "Wie war es?" not in fewer
    assert not Survey.objects.exists()


def test_edit_as_json(as_role: Callable[[str], Client]) -> None:
    import json

    client = as_role("analyst")
    definition = dict(NPS, title="From JSON")
    saved = client.post("/surveys/new/", builder_post(
        kind="nps", name="JSON survey", op="json", definition_json=json.dumps(definition)))
    assert saved.status_code == 302
    assert Survey.objects.get(name="JSON survey").definition["title"] == "From JSON"
    broken = client.post("/surveys/new/", builder_post(
        kind="nps", name="Broken", op="json", definition_json='{"questions": ['))
    assert broken.status_code == 400 and "not valid JSON" in html(broken)
    unsound = client.post("/surveys/new/", builder_post(
        kind="nps", name="Broken", op="json",
        definition_json=json.dumps({"questions": [{"id": "a", "type": "nps", "text": "x",
                                                   "show_if": {"question": "b",
                                                               "op": "answered"}}]})))
    assert "show_if must refer to an earlier question" in html(unsound)
    loaded = html(client.post("/surveys/new/", builder_post(
        kind="nps", name="Loaded", op="json_load", definition_json=json.dumps(definition))))
    assert "loaded into the form" in loaded and 'value="From JSON"' in loaded
    assert not Survey.objects.filter(name__in=["Broken", "Loaded"]).exists()


# --- drivers ---------------------------------------------------------------------------------


def test_drivers_explain_in_plain_words(as_role: Callable[[str], Client]) -> None:
    ada = make_customer(tracks=1)
    survey = make_survey()
    for index in range(24):
        late = index % 2 == 0
        answer(survey, ada.id, 3 if late else 10, day=index, touchpoint="courier" if late
               else "pickup")
    text = html(as_role("viewer").get(f"/surveys/{survey.id}/drivers/"))
    assert "How to read this" in text
    assert 'data-testid="drivers-table"' in text and "courier" in text
    assert "very likely real" in text
    assert "this costs the overall NPS about" in text
    assert 'data-chart-type="drivers"' in text


# --- themes ----------------------------------------------------------------------------------


def test_themes_page_without_themes(as_role: Callable[[str], Client]) -> None:
    text = html(as_role("analyst").get("/surveys/themes/"))
    assert "No themes yet" in text and "Discover themes" in text
    assert "Discover themes" not in html(as_role("viewer").get("/surveys/themes/"))


def test_discover_edit_and_merge_themes(
    world: tuple[Survey, Customer], as_role: Callable[[str], Client],
) -> None:
    pytest.importorskip("cxm.text.themes")
    from cxm.feedback.models import Theme

    survey, ada = world
    for index in range(12):
        answer(survey, ada.id, 2 + index % 3, COMMENTS[index % 3], day=index)
    client = as_role("analyst")
    assert client.post("/surveys/themes/discover/").status_code == 302
    # The button only queues the discovery; the page says so and polls its status line.
    text = html(client.get("/surveys/themes/"))
    assert "Discovering themes…" in text and "by u-analyst" in text
    (job,) = ThemeJob.objects.all()
    assert f'hx-get="/surveys/themes/jobs/{job.id}/"' in text
    assert 'hx-trigger="every 2s"' in text
    # A second click gets the same job, and says so.
    client.post("/surveys/themes/discover/")
    assert ThemeJob.objects.count() == 1
    assert "being discovered already" in html(client.get("/surveys/themes/"))
    polled = client.get(f"/surveys/themes/jobs/{job.id}/", HTTP_HX_REQUEST="true")
    assert polled.status_code == 200 and 'hx-trigger="every 2s"' in html(polled)
    assert "HX-Refresh" not in polled
    actions.run_theme_job(job.id)  # the worker
    done = client.get(f"/surveys/themes/jobs/{job.id}/", HTTP_HX_REQUEST="true")
    assert done["HX-Refresh"] == "true" and "every 2s" not in html(done)
    themes = list(queries.active_themes())
    assert themes, "discovery found no theme"
    text = html(client.get("/surveys/themes/"))
    assert "Themes discovered:" in text and "Discovering themes" not in text
    assert themes[0].name in text and 'data-chart-type="spark"' in text
    assert any(comment in text for comment in COMMENTS)  # examples, for an analyst
    first = themes[0]
    response = client.post(f"/surveys/themes/{first.id}/edit/",
                           {"name": "Courier delays", "keywords": "courier, late"})
    assert response.status_code == 302
    first.refresh_from_db()
    assert first.name == "Courier delays" and set(first.keywords) == {"courier", "late"}
    text = html(client.get("/surveys/themes/"))
    assert "Comments are being sorted again" in text
    assert "Sorting every comment into the themes again…" in text
    rematch = ThemeJob.objects.get(kind="rematch")
    assert actions.run_theme_job(rematch.id).status == "done"
    if len(themes) > 1:
        assert client.post(f"/surveys/themes/{themes[1].id}/merge/",
                           {"into": str(first.id)}).status_code == 302
        assert Theme.objects.get(id=themes[1].id).merged_into_id == first.id
    marketer = html(as_role("marketer").get("/surveys/themes/"))
    assert not any(comment in marketer for comment in COMMENTS)
    assert "needs the verbatims permission" in marketer


def test_a_failed_theme_job_shows_why_and_stops_polling(
    world: tuple[Survey, Customer], as_role: Callable[[str], Client],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = as_role("analyst")
    client.post("/surveys/themes/discover/")
    (job,) = ThemeJob.objects.all()

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the model file is missing")

    monkeypatch.setattr(actions.annotate, "discover", broken)
    assert actions.run_theme_job(job.id).status == "failed"
    polled = html(client.get(f"/surveys/themes/jobs/{job.id}/", HTTP_HX_REQUEST="true"))
    assert "Theme discovery failed" in polled and "the model file is missing" in polled
    assert "hx-trigger" not in polled
    page = html(client.get("/surveys/themes/"))
    assert 'data-testid="theme-job"' in page and "the model file is missing" in page
    assert "every 2s" not in page
    # A viewer sees the status too, but no button and no job of their own to start.
    viewer = as_role("viewer")
    text = html(viewer.get("/surveys/themes/"))
    assert "Theme discovery failed" in text and "Discover themes” tries again" not in text
    assert viewer.post("/surveys/themes/discover/").status_code == 403
    assert viewer.get("/surveys/themes/jobs/999999/").status_code == 404
    opened = viewer.get(f"/surveys/themes/jobs/{job.id}/")  # not by htmx: the page itself
    assert opened.status_code == 302 and opened["Location"] == "/surveys/themes/"


@pytest.mark.django_db(transaction=True)  # commits for real: the task runs after commit
def test_with_an_immediate_queue_the_button_finishes_the_discovery(
    world: tuple[Survey, Customer], as_role: Callable[[str], Client],
) -> None:
    pytest.importorskip("cxm.text.themes")
    from huey.contrib.djhuey import HUEY

    survey, ada = world
    for index in range(12):
        answer(survey, ada.id, 2 + index % 3, COMMENTS[index % 3], day=index)
    client = as_role("analyst")
    HUEY.immediate = True
    try:
        response = client.post("/surveys/themes/discover/")
    finally:
        HUEY.immediate = False
    assert response.status_code == 302
    assert ThemeJob.objects.get().status == "done"
    text = html(client.get("/surveys/themes/"))
    assert "Themes discovered:" in text and 'data-testid="theme-job"' not in text


# --- contact policy --------------------------------------------------------------------------


def test_contact_policy_read_and_change(as_role: Callable[[str], Client]) -> None:
    viewer = html(as_role("viewer").get("/settings/contact-policy/"))
    assert 'value="30"' in viewer and "Save policy" not in viewer and "disabled" in viewer
    client = as_role("analyst")
    bad = client.post("/settings/contact-policy/save/", {"min_days_between": "soon"})
    assert bad.status_code == 400 and 'value="soon"' in html(bad)
    assert "a whole number of 0 or more" in html(bad)
    good = client.post("/settings/contact-policy/save/", {
        "min_days_between": "14", "touchpoint_days": "60", "survey_days": "0",
        "max_contacts_7d": "3"})
    assert good.status_code == 302
    rules = queries.global_rules()
    assert (rules.min_days_between, rules.touchpoint_days, rules.max_contacts_7d,
            rules.require_consent) == (14, 60, 3, False)
    assert AuditEntry.objects.filter(action="contact_policy.update").count() == 1


# --- the customer page ------------------------------------------------------------------------


def test_customer_page_shows_answers_invitations_and_standing(
    world: tuple[Survey, Customer], as_role: Callable[[str], Client],
) -> None:
    survey, ada = world
    actions.invite(survey=survey, profile_id=ada.id, channel="email", actor=Actor("test"))
    client = as_role("agent")
    text = html(client.get(f"/customers/{ada.id}/"))
    section = text.split('data-testid="customer-surveys"', 1)[1].split("</section>", 1)[0]
    assert "Delivery NPS" in section and "Suppressed by policy" in section
    assert "no consent" in section
    assert COMMENTS[0] in section  # an agent reads verbatims
    assert "not to be surveyed" in section or "not before" in section
    allow_research(ada.id)
    actions.invite(survey=survey, profile_id=ada.id, channel="link", actor=Actor("test"))
    again = html(client.get(f"/customers/{ada.id}/"))
    assert re.search(r"not before \d{4}-\d{2}-\d{2}", again)
    assert "the limit is once in 30 days" in again
    # The rest of the page still renders.
    assert 'id="channel-chart"' in again and 'id="timeline-rows"' in again
