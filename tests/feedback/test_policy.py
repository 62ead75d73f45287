"""The contact policy (pure: no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cxm.feedback import policy
from cxm.feedback.policy import Contact, Rules

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
CONSENTED = {"email:research": {"granted": True, "source": "test", "at": "2026-01-01"}}


def survey_sent(days_ago: float, touchpoint: str = "", survey_id: str = "s1") -> Contact:
    return Contact(at=NOW - timedelta(days=days_ago), kind="survey", channel="email",
                   touchpoint=touchpoint, survey_id=survey_id)


def decide(history: list[Contact], rules: Rules | None = None, **kw: object) -> policy.Decision:
    return policy.decide(rules or Rules(), history, at=NOW, channel="email",
                         consent=kw.pop("consent", CONSENTED), **kw)  # type: ignore[arg-type]


def test_a_first_survey_with_consent_is_allowed() -> None:
    decision = decide([])
    assert decision.allowed and decision.rule == ""


def test_no_consent_no_survey() -> None:
    decision = decide([], consent={})
    assert not decision.allowed
    assert decision.rule == "require_consent"
    assert "no opt-in for email:research" in decision.reason
    refused = {"email:research": {"granted": False}}
    assert decide([], consent=refused).rule == "require_consent"
    assert decide([], Rules(require_consent=False), consent={}).allowed


def test_once_in_30_days() -> None:
    assert not decide([survey_sent(29)]).allowed
    decision = decide([survey_sent(10), survey_sent(100)])
    assert decision.rule == "min_days_between"
    assert decision.next_eligible_at == NOW + timedelta(days=20)
    assert decide([survey_sent(30)]).allowed  # exactly 30 days later is fine
    assert decide([survey_sent(29)], Rules(min_days_between=0)).allowed


def test_not_twice_for_the_same_touchpoint_in_90_days() -> None:
    history = [survey_sent(60, touchpoint="delivery")]
    refused = decide(history, touchpoint="delivery")
    assert refused.rule == "touchpoint_days"
    assert refused.next_eligible_at == NOW + timedelta(days=30)
    assert decide(history, touchpoint="support").allowed
    assert decide([survey_sent(91, touchpoint="delivery")], touchpoint="delivery").allowed


def test_same_survey_rule_and_weekly_cap_over_every_kind_of_contact() -> None:
    rules = Rules(min_days_between=0, survey_days=180)
    assert decide([survey_sent(100, survey_id="s1")], rules, survey_id="s1").rule == \
        "survey_days"
    assert decide([survey_sent(100, survey_id="s1")], rules, survey_id="s2").allowed
    messages = [Contact(at=NOW - timedelta(days=d), kind="message", channel="email")
                for d in (1, 2, 6)]
    capped = decide(messages, Rules(max_contacts_7d=3))
    assert capped.rule == "max_contacts_7d"
    assert capped.next_eligible_at == NOW + timedelta(days=1)
    assert decide(messages, Rules(max_contacts_7d=4)).allowed


def test_a_survey_can_tighten_but_not_loosen_the_global_rules() -> None:
    company = Rules(min_days_between=30, touchpoint_days=90, max_contacts_7d=3)
    loose = Rules(min_days_between=7, touchpoint_days=0, max_contacts_7d=10,
                  require_consent=False)
    combined = company.stricter(loose)
    assert combined == Rules(min_days_between=30, touchpoint_days=90, max_contacts_7d=3,
                             require_consent=True)
    strict = company.stricter(Rules(min_days_between=60, survey_days=365, max_contacts_7d=1))
    assert (strict.min_days_between, strict.survey_days, strict.max_contacts_7d) == (60, 365, 1)


def test_rules_from_json_refuse_nonsense() -> None:
    assert policy.rules_from({"min_days_between": 14}).min_days_between == 14
    with pytest.raises(ValueError, match="unknown contact rule 'days'"):
        policy.rules_from({"days": 3})
    with pytest.raises(ValueError, match="whole number"):
        policy.rules_from({"touchpoint_days": -1})
    with pytest.raises(ValueError, match="whole number"):
        policy.rules_from({"touchpoint_days": True})
    with pytest.raises(ValueError, match="true or false"):
        policy.rules_from({"require_consent": "yes"})
