"""The 360 page's consent form, export download and erase button; reads leave audit rows."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cxm.core.errors import NotFound
from cxm.core.models import AuditLog
from cxm.identity import queries
from cxm.identity.consent import may_contact
from tests.web.conftest import make_customer, make_user

pytestmark = pytest.mark.django_db


def test_opening_a_customer_with_personal_data_is_audited(client: Any, customer: Any) -> None:
    agent = make_user("agent", role="agent")
    client.force_login(agent)
    assert client.get(f"/customers/{customer.id}/").status_code == 200
    row = AuditLog.objects.get(action="profile.read_personal", target_id=str(customer.id))
    assert row.actor == f"user:{agent.pk}" and "email" in row.changes["fields"]


def test_a_masked_view_is_not_a_personal_read(client: Any, customer: Any) -> None:
    client.force_login(make_user("viewer", role="viewer"))
    page = client.get(f"/customers/{customer.id}/")
    assert page.status_code == 200 and "ada@example.com" not in page.content.decode()
    assert not AuditLog.objects.filter(action="profile.read_personal").exists()


def test_agent_records_consent_and_the_decision_follows(client: Any, customer: Any) -> None:
    client.force_login(make_user("agent", role="agent"))
    page = client.get(f"/customers/{customer.id}/").content.decode()
    assert 'data-testid="consent-form"' in page
    answer = client.post(f"/customers/{customer.id}/consent/",
                         {"channel": "sms", "purpose": "marketing", "granted": "yes"})
    assert answer.status_code == 302
    profile = queries.canonical(customer.id)
    assert may_contact(profile.consent, "sms", "marketing").allowed
    bad = client.post(f"/customers/{customer.id}/consent/",
                      {"channel": "pigeon", "purpose": "marketing", "granted": "yes"},
                      follow=True)
    assert "channel must be one of" in bad.content.decode()
    assert client.post(f"/customers/{customer.id}/consent/",
                       {"channel": "sms", "purpose": "marketing", "granted": "maybe"}
                       ).status_code == 400


def test_viewer_cannot_edit_consent_nor_see_the_privacy_actions(client: Any,
                                                               customer: Any) -> None:
    client.force_login(make_user("viewer", role="viewer"))
    page = client.get(f"/customers/{customer.id}/").content.decode()
    assert "consent-form" not in page and "erase-button" not in page
    assert client.post(f"/customers/{customer.id}/consent/",
                       {"channel": "sms", "purpose": "marketing", "granted": "yes"}
                       ).status_code == 403
    assert client.get(f"/customers/{customer.id}/export/").status_code == 403
    assert client.post(f"/customers/{customer.id}/erase/", {"confirm": "erase"}
                       ).status_code == 403


def test_admin_downloads_the_export_then_erases_the_customer(client: Any) -> None:
    customer = make_customer(tracks=5)
    client.force_login(make_user("boss", role="admin"))
    export = client.get(f"/customers/{customer.id}/export/")
    assert export.status_code == 200
    assert "attachment" in export["Content-Disposition"]
    data = json.loads(export.content)
    assert data["identity"]["profiles"][0]["email"] == "ada@example.com"
    assert len(data["ingest"]["events"]) == 6
    assert client.post(f"/customers/{customer.id}/erase/", {}).status_code == 400
    done = client.post(f"/customers/{customer.id}/erase/", {"confirm": "erase"}, follow=True)
    assert "Customer erased: 6 events" in done.content.decode()
    with pytest.raises(NotFound):
        queries.by_identifier("email", "ada@example.com")
    assert client.get(f"/customers/{customer.id}/").status_code == 404
    assert AuditLog.objects.filter(action="privacy.erased").count() == 1


def test_audit_page_lists_reads_and_erasures(client: Any, customer: Any) -> None:
    admin = make_user("boss", role="admin")
    client.force_login(admin)
    client.get(f"/customers/{customer.id}/")
    page = client.get("/audit/", {"action": "profile.read_personal"})
    assert page.status_code == 200
    assert "profile.read_personal" in page.content.decode()


def test_search_results_showing_personal_fields_are_audited(client: Any, customer: Any,
                                                            admin_key: str) -> None:
    client.force_login(make_user("agent", role="agent"))
    assert client.get("/customers/results/", {"q": "lovelace"}).status_code == 200
    rows = AuditLog.objects.filter(action="profile.read_personal", target_id=str(customer.id))
    assert rows.count() == 1 and rows.get().changes["fields"] == ["email", "name", "phone"]
    api = client.get("/api/v1/profiles", {"q": "ada@example.com"},
                     HTTP_AUTHORIZATION=f"Bearer {admin_key}")
    assert api.status_code == 200 and api.json()[0]["email"] == "ada@example.com"
    assert rows.count() == 2 and rows.latest("seq").actor.startswith("key:")
