"""Surveys, invitations and responses through the actions (both databases)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection

from cxm.core.audit import Actor
from cxm.core.clock import now
from cxm.core.errors import Conflict, InvalidInput, NotFound
from cxm.core.models import AuditLog
from cxm.feedback import actions, queries, tokens
from cxm.feedback.models import Contact, Invitation, Response, Survey
from cxm.ingest.models import Event
from tests.feedback.conftest import ANALYST, NPS_DEFINITION

pytestmark = pytest.mark.django_db
Person = Callable[..., uuid.UUID]


def link_for(invitation: Invitation) -> str:
    return tokens.token_for(invitation.nonce)


def test_create_survey_validates_and_audits(nps_survey: Survey) -> None:
    assert nps_survey.slug == "post-purchase-nps"
    assert AuditLog.objects.filter(action="survey.create", target_id=str(nps_survey.id)).exists()
    with pytest.raises(Conflict, match="exists already"):
        actions.create_survey(name="Post-purchase NPS", kind="nps", definition=NPS_DEFINITION,
                              actor=ANALYST)
    with pytest.raises(InvalidInput, match="a CSAT survey needs a question of type 'csat'"):
        actions.create_survey(name="Other", kind="csat", definition=NPS_DEFINITION,
                              actor=ANALYST)
    with pytest.raises(InvalidInput, match=r"definition: questions: .*at least 1"):
        actions.create_survey(name="Empty", kind="custom", definition={"questions": []},
                              actor=ANALYST)
    with pytest.raises(InvalidInput, match="rules: unknown contact rule"):
        actions.create_survey(name="Rules", kind="nps", definition=NPS_DEFINITION,
                              rules={"often": 1}, actor=ANALYST)
    changed = actions.update_survey(nps_survey.id, status="closed", actor=ANALYST)
    assert changed.status == "closed"
    row = AuditLog.objects.get(action="survey.update")
    assert row.changes == {"before": {"status": "active"}, "after": {"status": "closed"}}


def test_invitations_follow_the_contact_policy(person: Person, nps_survey: Survey) -> None:
    ada = person()
    first = actions.invite(survey=nps_survey, profile_id=ada, channel="link", actor=ANALYST)
    assert first.status == "sent" and first.reason == ""
    assert Contact.objects.filter(profile_id=ada, kind="survey").count() == 1
    second = actions.invite(survey=nps_survey, profile_id=ada, channel="link", actor=ANALYST)
    assert second.status == "suppressed"
    assert "limit is once in 30 days" in second.reason
    assert Contact.objects.filter(profile_id=ada).count() == 1  # nothing was sent
    # 31 days later the global 30-day rule passes, but not the 90-day touchpoint rule.
    later = actions.invite(survey=nps_survey, profile_id=ada, channel="link", actor=ANALYST,
                           at=first.created_at + timedelta(days=31))
    assert later.status == "suppressed" and "'delivery'" in later.reason
    other = actions.invite(survey=nps_survey, profile_id=ada, channel="link", actor=ANALYST,
                           touchpoint="support", at=first.created_at + timedelta(days=31))
    assert other.status == "sent"
    decisions = AuditLog.objects.filter(action="survey.invite").values_list("changes", flat=True)
    assert [d["status"] for d in decisions] == ["sent", "suppressed", "suppressed", "sent"]


def test_no_consent_means_no_invitation(person: Person, nps_survey: Survey) -> None:
    shy = person("shy@example.com", "u-shy", research=False)
    invitation = actions.invite(survey=nps_survey, profile_id=shy, channel="email",
                                actor=ANALYST)
    assert invitation.status == "suppressed"
    assert invitation.reason.startswith("no consent")
    assert not Contact.objects.filter(profile_id=shy).exists()


def test_invitation_errors(person: Person, nps_survey: Survey) -> None:
    ada = person()
    with pytest.raises(InvalidInput, match="channel: must be one of"):
        actions.invite(survey=nps_survey, profile_id=ada, channel="pigeon", actor=ANALYST)
    with pytest.raises(NotFound):
        actions.invite(survey=nps_survey, profile_id=uuid.uuid4(), channel="link",
                       actor=ANALYST)
    actions.update_survey(nps_survey.id, status="draft", actor=ANALYST)
    nps_survey.refresh_from_db()
    with pytest.raises(Conflict, match="is draft, not active"):
        actions.invite(survey=nps_survey, profile_id=ada, channel="link", actor=ANALYST)


def test_an_automatic_invitation_is_made_once_per_event(person: Person,
                                                         nps_survey: Survey) -> None:
    ada = person()
    actions.invite_after_event(nps_survey.id, ada, "order-1")
    actions.invite_after_event(nps_survey.id, ada, "order-1")
    assert Invitation.objects.filter(survey=nps_survey, profile_id=ada).count() == 1


def test_answering_a_link_lands_on_the_profile_once(person: Person, nps_survey: Survey) -> None:
    ada = person()
    invitation = actions.invite(survey=nps_survey, profile_id=ada, channel="link",
                                actor=ANALYST)
    token = link_for(invitation)
    response = actions.answer_invitation(token, {"score": "3", "why": "Late again",
                                                 "fix": "delivery"})
    assert response.profile_id == ada
    assert response.score == 3.0 and response.kind == "nps"
    assert response.dims == {"touchpoint": "delivery", "stage": "purchase", "segment": ""}
    assert queries.comment_of(response) == "Late again"
    assert queries.revealed_answers(response)["fix"] == "delivery"
    invitation.refresh_from_db()
    assert invitation.status == "answered"
    event = Event.objects.get(message_id=f"cxm-response-{response.id}")
    assert (event.channel, event.name, event.profile_id) == ("survey", "Survey Answered", ada)
    with pytest.raises(Conflict, match="already answered"):
        actions.answer_invitation(token, {"score": 10})
    assert Response.objects.count() == 1
    assert Event.objects.filter(name="Survey Answered").count() == 1
    audit = AuditLog.objects.get(action="survey.response")
    assert audit.actor == f"respondent:invitation:{invitation.id}"
    assert "Late" not in str(audit.changes)


def test_comments_are_encrypted_at_rest(person: Person, nps_survey: Survey) -> None:
    ada = person()
    invitation = actions.invite(survey=nps_survey, profile_id=ada, channel="link",
                                actor=ANALYST)
    actions.answer_invitation(link_for(invitation), {"score": 9, "why": "Zanzibar courier"})
    with connection.cursor() as cursor:
        cursor.execute("SELECT comment, answers FROM feedback_response")
        stored = " ".join(str(v) for v in cursor.fetchone())
    assert "Zanzibar" not in stored


@pytest.mark.parametrize("answers", [
    {"score": 11}, {"score": 5, "why": "<script>alert(1)</script>"}, {"score": 5, "x": 1},
    {"score": 9, "fix": "price"},
])
def test_a_refused_answer_stores_nothing(person: Person, nps_survey: Survey,
                                         answers: dict[str, Any]) -> None:
    ada = person()
    invitation = actions.invite(survey=nps_survey, profile_id=ada, channel="link",
                                actor=ANALYST)
    events_before = Event.objects.count()
    with pytest.raises(InvalidInput):
        actions.answer_invitation(link_for(invitation), answers)
    assert not Response.objects.exists()
    assert Event.objects.count() == events_before
    invitation.refresh_from_db()
    assert invitation.status == "sent"  # still answerable


def test_a_tampered_or_suppressed_link_is_refused(person: Person, nps_survey: Survey) -> None:
    ada = person()
    invitation = actions.invite(survey=nps_survey, profile_id=ada, channel="link",
                                actor=ANALYST)
    token = link_for(invitation)
    for bad in (token[:-1] + ("A" if token[-1] != "A" else "B"),
                tokens.token_for("0" * 32), "nonsense", "", "x" * 500):
        with pytest.raises(NotFound, match="not valid"):
            actions.answer_invitation(bad, {"score": 10})
    suppressed = actions.invite(survey=nps_survey, profile_id=ada, channel="link",
                                actor=ANALYST)
    with pytest.raises(Conflict, match="not active"):
        actions.answer_invitation(link_for(suppressed), {"score": 10})


def test_an_expired_link_is_refused(person: Person, nps_survey: Survey) -> None:
    ada = person()
    invitation = actions.invite(survey=nps_survey, profile_id=ada, channel="link",
                                actor=ANALYST, at=now() - timedelta(days=40))
    with pytest.raises(Conflict, match="expired"):
        actions.answer_invitation(link_for(invitation), {"score": 10})


def test_answers_from_elsewhere_create_or_find_the_person(nps_survey: Survey) -> None:
    from cxm.identity import queries as identity_queries

    response = actions.submit(actions.Submission(
        survey=nps_survey, answers={"score": 10}, channel="api",
        person={"context": {"traits": {"email": "New.Person@Example.com"}}},
        client_key="crm-1"), actor=ANALYST)
    profile = identity_queries.by_identifier("email", "new.person@example.com")
    assert response.profile_id == profile.id
    with pytest.raises(Conflict):
        actions.submit(actions.Submission(
            survey=nps_survey, answers={"score": 10}, channel="api",
            person={"userId": "someone"}, client_key="crm-1"), actor=ANALYST)
    anonymous = actions.submit(actions.Submission(
        survey=nps_survey, answers={"score": 4}, channel="import"), actor=ANALYST)
    assert anonymous.profile_id is None
    with pytest.raises(InvalidInput, match="needs the person"):
        actions.submit(actions.Submission(survey=nps_survey, answers={"score": 4},
                                          channel="api"), actor=ANALYST)
    assert Response.objects.count() == 2


def test_contact_policy_settings_are_audited() -> None:
    rules = actions.set_global_rules({"min_days_between": 14}, actor=ANALYST)
    assert rules.min_days_between == 14
    assert queries.global_rules().min_days_between == 14
    row = AuditLog.objects.get(action="contact_policy.update")
    assert row.changes["before"]["min_days_between"] == 30
    with pytest.raises(InvalidInput, match="unknown contact rule"):
        actions.set_global_rules({"never": True}, actor=ANALYST)


def test_export_and_erase_include_survey_answers(person: Person, nps_survey: Survey) -> None:
    from cxm.core import privacy
    from cxm.identity import queries as identity_queries

    ada = person()
    invitation = actions.invite(survey=nps_survey, profile_id=ada, channel="link",
                                actor=ANALYST)
    actions.answer_invitation(link_for(invitation), {"score": 2, "why": "Broken box"})
    subject = identity_queries.subject_of(identity_queries.canonical(ada))
    exported = privacy.export(subject, Actor("test"))
    answers = exported["feedback"]["survey_responses"]
    assert answers[0]["answers"]["why"] == "Broken box"
    privacy.erase(subject, Actor("test"))
    assert not Response.objects.exists()
    assert not Invitation.objects.exists()
    assert not Contact.objects.exists()


def test_a_closed_survey_takes_no_more_answers_by_link(person: Person,
                                                       nps_survey: Survey) -> None:
    ada = person()
    invitation = actions.invite(survey=nps_survey, profile_id=ada, channel="link",
                                actor=ANALYST)
    actions.update_survey(nps_survey.id, status="closed", actor=ANALYST)
    with pytest.raises(Conflict, match="closed"):
        actions.answer_invitation(link_for(invitation), {"score": 10})
    assert not Response.objects.exists()
    # Answers collected elsewhere may still be imported into a closed survey.
    nps_survey.refresh_from_db()
    actions.submit(actions.Submission(survey=nps_survey, answers={"score": 10},
                                      channel="import"), actor=ANALYST)
    assert Response.objects.count() == 1


def test_opting_out_refuses_research_consent_on_that_channel(person: Person,
                                                            nps_survey: Survey) -> None:
    ada = person()
    invitation = actions.invite(survey=nps_survey, profile_id=ada, channel="link",
                                actor=ANALYST)
    profile = actions.opt_out(link_for(invitation))
    profile.refresh_from_db()
    assert profile.consent["email:research"]["granted"] is False
    assert AuditLog.objects.filter(action="profile.consent_changed",
                                   actor=f"respondent:invitation:{invitation.id}").exists()
    with pytest.raises(NotFound):
        actions.opt_out("made-up")


def test_answers_dated_in_the_future_are_refused(nps_survey: Survey) -> None:
    from datetime import UTC, datetime

    with pytest.raises(InvalidInput, match="in the future"):
        actions.submit(actions.Submission(
            survey=nps_survey, answers={"score": 3}, channel="import",
            submitted_at=datetime(2999, 1, 1, tzinfo=UTC)), actor=ANALYST)
    assert not Response.objects.exists()


def test_answers_sent_as_events_count_only_for_active_surveys(person: Person,
                                                              nps_survey: Survey) -> None:
    from cxm.ingest.actions import ingest

    person()

    def sent(message_id: str, survey: str, timestamp: str = "2026-02-01T10:00:00Z") -> int:
        result = ingest([{"type": "track", "event": "Survey Responded", "userId": "u-ada",
                          "messageId": message_id, "timestamp": timestamp,
                          "properties": {"survey_name": survey, "score": 9,
                                         "comment": "Quick delivery"}}],
                        actor=Actor("test"), source="test")
        return result.event_ids[0]

    good = sent("ext-1", nps_survey.name)
    future = sent("ext-2", nps_survey.name, "8999-01-01T00:00:00Z")
    unknown = sent("ext-3", "No such survey")
    recorded = actions.record_event_answers([good, future, unknown], actor=ANALYST)
    assert (recorded.recorded, recorded.skipped) == (1, 2)
    assert actions.record_event_answers([good], actor=ANALYST).recorded == 0  # once only
    actions.update_survey(nps_survey.id, status="closed", actor=ANALYST)
    late = sent("ext-4", nps_survey.name)
    assert actions.record_event_answers([late], actor=ANALYST).skipped == 1
    (response,) = Response.objects.all()
    assert response.score == 9.0 and response.channel == "email"
    assert queries.comment_of(response) == "Quick delivery"


def test_a_survey_with_answers_keeps_its_kind_and_score_question(nps_survey: Survey) -> None:
    import copy

    actions.submit(actions.Submission(survey=nps_survey, answers={"score": 9},
                                      channel="import"), actor=ANALYST)
    csat = {"questions": [{"id": "score", "type": "csat", "text": "Happy?", "required": True}]}
    with pytest.raises(Conflict, match="1 answers: its kind and its score question"):
        actions.update_survey(nps_survey.id, kind="csat", definition=csat, actor=ANALYST)
    moved = copy.deepcopy(NPS_DEFINITION)
    moved["questions"][0]["id"] = "rating"
    moved["questions"][2]["show_if"]["question"] = "rating"
    moved["translations"] = {}
    with pytest.raises(Conflict, match="cannot change"):
        actions.update_survey(nps_survey.id, definition=moved, actor=ANALYST)
    reworded = copy.deepcopy(NPS_DEFINITION)
    reworded["questions"][0]["text"] = "Would you recommend us?"
    changed = actions.update_survey(nps_survey.id, definition=reworded, actor=ANALYST)
    assert changed.definition["questions"][0]["text"] == "Would you recommend us?"


def test_a_person_known_only_by_a_user_id_or_anonymous_id_can_answer(
    nps_survey: Survey,
) -> None:
    from cxm.identity import queries as identity_queries
    from cxm.ingest.actions import ingest

    for message in ({"userId": "u-only", "messageId": "only-1"},
                    {"anonymousId": "anon-only", "messageId": "only-2"}):
        ingest([{"type": "identify", "timestamp": "2026-01-01T00:00:00Z",
                 "traits": {"consent": {"email": {"research": True}}}, **message}],
               actor=Actor("test"), source="test")
    for kind, value in (("user_id", "u-only"), ("anonymous_id", "anon-only")):
        profile = identity_queries.by_identifier(kind, value)
        invitation = actions.invite(survey=nps_survey, profile_id=profile.id, channel="link",
                                    actor=ANALYST, touchpoint=value)
        response = actions.answer_invitation(link_for(invitation), {"score": 8})
        assert response.profile_id == profile.id
        event = Event.objects.get(message_id=f"cxm-response-{response.id}")
        assert event.profile_id == profile.id and event.channel == "survey"
