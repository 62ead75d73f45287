"""The surveys REST API: validation with clear messages, idempotent answers, results."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from cxm.core.models import AuditLog
from cxm.feedback.models import Response
from tests.feedback.conftest import NPS_DEFINITION

pytestmark = pytest.mark.django_db
Person = Callable[..., uuid.UUID]


def call(client: Client, method: str, url: str, key: str, body: Any = None) -> Any:
    kwargs: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    if body is not None:
        kwargs["content_type"] = "application/json"
        return getattr(client, method)(url, body, **kwargs)
    return getattr(client, method)(url, **kwargs)


def create(client: Client, key: str, **overrides: Any) -> Any:
    body = {"name": "Delivery NPS", "kind": "nps", "definition": NPS_DEFINITION,
            "touchpoint": "delivery", **overrides}
    return call(client, "post", "/api/v1/surveys", key, body)


def test_create_read_change_a_survey(client: Client, admin_key: str, read_key: str,
                                     ingest_key: str) -> None:
    made = create(client, admin_key)
    assert made.status_code == 201, made.content
    survey = made.json()
    assert survey["slug"] == "delivery-nps" and survey["status"] == "active"
    got = call(client, "get", f"/api/v1/surveys/{survey['id']}", read_key).json()
    assert got["definition"]["questions"][0]["type"] == "nps"
    patched = call(client, "patch", f"/api/v1/surveys/{survey['id']}", admin_key,
                   {"status": "closed"})
    assert patched.status_code == 200 and patched.json()["status"] == "closed"
    assert [s["name"] for s in call(client, "get", "/api/v1/surveys", read_key).json()] == [
        "Delivery NPS"]
    # A read key cannot change surveys; an ingest key cannot even read them.
    assert create(client, read_key, name="Other").status_code == 403
    assert call(client, "get", "/api/v1/surveys", ingest_key).status_code == 403
    assert call(client, "get", "/api/v1/surveys", "not-a-key").status_code == 401


@pytest.mark.parametrize(("overrides", "status", "message"), [
    ({"kind": "stars"}, 400, "kind: must be one of nps, csat, ces, custom"),
    ({"definition": {"questions": [{"id": "q", "type": "nps"}]}}, 400,
     "definition: questions.0.text: Field required"),
    ({"kind": "ces"}, 400, "a CES survey needs a question of type 'ces'"),
    ({"name": ""}, 400, "give the survey a name"),
    ({"rules": {"min_days_between": -3}}, 400, "whole number"),
    ({"trigger_delay_minutes": -1}, 400, "trigger_delay_minutes"),
])
def test_bad_surveys_are_refused_with_a_reason(client: Client, admin_key: str,
                                               overrides: dict[str, Any], status: int,
                                               message: str) -> None:
    response = create(client, admin_key, **overrides)
    assert response.status_code == status, response.content
    assert message in response.json()["message"]


def test_duplicate_names_conflict(client: Client, admin_key: str) -> None:
    assert create(client, admin_key).status_code == 201
    again = create(client, admin_key)
    assert again.status_code == 409 and again.json()["code"] == "survey_exists"
    missing = call(client, "get", f"/api/v1/surveys/{uuid.uuid4()}", admin_key)
    assert missing.status_code == 404 and missing.json()["code"] == "survey_not_found"
    assert call(client, "get", "/api/v1/surveys/not-a-uuid", admin_key).status_code == 404


def test_invite_and_answer_through_the_api(client: Client, admin_key: str, read_key: str,
                                           person: Person) -> None:
    ada = person()
    survey = create(client, admin_key).json()
    invited = call(client, "post", f"/api/v1/surveys/{survey['id']}/invitations", admin_key,
                   {"profile_id": str(ada), "channel": "link"})
    assert invited.status_code == 201, invited.content
    assert invited.json()["status"] == "sent"
    assert invited.json()["link"].startswith("http://127.0.0.1:8000/s/")
    again = call(client, "post", f"/api/v1/surveys/{survey['id']}/invitations", admin_key,
                 {"profile_id": str(ada), "channel": "link"}).json()
    assert again["status"] == "suppressed" and again["link"] is None
    assert "30 days" in again["reason"]

    body = {"answers": {"score": 2, "why": "Courier lost it"}, "email": "ada@example.com",
            "client_key": "crm-77", "touchpoint": "returns"}
    first = call(client, "post", f"/api/v1/surveys/{survey['id']}/responses", admin_key, body)
    assert first.status_code == 201, first.content
    answer = first.json()
    assert answer["profile_id"] == str(ada) and answer["score"] == 2.0
    assert answer["dims"]["touchpoint"] == "returns"
    assert answer["sentiment"] in {"positive", "neutral", "negative"}
    retried = call(client, "post", f"/api/v1/surveys/{survey['id']}/responses", admin_key, body)
    assert retried.status_code == 409 and retried.json()["code"] == "already_answered"
    assert Response.objects.count() == 1

    hostile = call(client, "post", f"/api/v1/surveys/{survey['id']}/responses", admin_key,
                   {"answers": {"score": 99}, "email": "ada@example.com"})
    assert hostile.status_code == 400 and "from 0 to 10, got 99" in hostile.json()["message"]
    nobody = call(client, "post", f"/api/v1/surveys/{survey['id']}/responses", admin_key,
                  {"answers": {"score": 9}})
    assert nobody.status_code == 400 and nobody.json()["code"] == "no_person"

    listed = call(client, "get", f"/api/v1/surveys/{survey['id']}/responses", read_key).json()
    assert [r["comment"] for r in listed] == ["Courier lost it"]
    assert AuditLog.objects.filter(action="profile.read_personal",
                                   target_type="response").count() == 1


def test_results_and_drivers(client: Client, admin_key: str, read_key: str) -> None:
    survey = create(client, admin_key).json()
    url = f"/api/v1/surveys/{survey['id']}/responses"
    for index, score in enumerate([10, 10, 9, 8, 7, 6, 0]):
        response = call(client, "post", url, admin_key,
                        {"answers": {"score": score}, "user_id": f"u-{index}",
                         "submitted_at": f"2026-02-{index + 1:02d}T10:00:00Z"})
        assert response.status_code == 201, response.content
    results = call(client, "get", f"/api/v1/surveys/{survey['id']}/results?period=month",
                   read_key).json()
    # 3 promoters, 2 passives, 2 detractors of 7: (3 - 2) / 7 = 14.3
    assert results["value"] == 14.3 and results["responses"] == 7
    assert results["counts"] == {"promoters": 3, "passives": 2, "detractors": 2}
    assert results["trend"][0]["start"] == "2026-02-01"
    assert results["slices"]["touchpoint"][0]["label"] == "delivery"
    bad = call(client, "get", f"/api/v1/surveys/{survey['id']}/results?period=year", read_key)
    assert bad.status_code == 400 and "period must be one of" in bad.json()["message"]
    drivers = call(client, "get", f"/api/v1/surveys/{survey['id']}/drivers", read_key)
    assert drivers.status_code == 200 and isinstance(drivers.json(), list)
    overall = call(client, "get", "/api/v1/metrics/nps", read_key).json()
    assert overall["value"] == 14.3 and overall["survey"] is None
    assert call(client, "get", "/api/v1/metrics/stars", read_key).status_code == 400


def test_contact_policy_api(client: Client, admin_key: str, read_key: str) -> None:
    assert call(client, "get", "/api/v1/contact-policy", read_key).json()[
        "min_days_between"] == 30
    changed = call(client, "put", "/api/v1/contact-policy", admin_key,
                   {"min_days_between": 45, "touchpoint_days": 90, "survey_days": 0,
                    "max_contacts_7d": 2, "require_consent": True})
    assert changed.status_code == 200 and changed.json()["max_contacts_7d"] == 2
    refused = call(client, "put", "/api/v1/contact-policy", read_key, {"min_days_between": 1})
    assert refused.status_code == 403
    bad = call(client, "put", "/api/v1/contact-policy", admin_key, {"min_days_between": -1})
    assert bad.status_code == 400
