"""The audit log page through Django's test client: who may see it, filters, "load older"
paging and the "Verify chain" button. Rows are written through ``cxm.core.audit``."""

from __future__ import annotations

import importlib
import re
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.urls import include, path

from cxm.core import audit
from cxm.web import audit_views

# The page under /audit/ beside the rest of the site, wired or not in cxm.web.urls yet.
urlpatterns = [
    path("audit/", audit_views.audit_log, name="audit-log"),
    path("", include("cxm.urls")),
]
pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

URL = "/audit/"
PROFILE = uuid.UUID("01938f2e-0000-7000-8000-000000000001")


def html(response: Any) -> str:
    return response.content.decode()


def seqs(text: str) -> list[int]:
    return [int(s) for s in re.findall(r'class="audit-row" data-seq="(\d+)"', text)]


def user(name: str, *, staff: bool) -> Any:
    """A superuser (an admin: may read the audit log) or a user without a role (may not).
    Made directly, not through the actions, so that no audit row precedes the test's own."""
    return get_user_model().objects.create_user(name, password="a-long-password-1",
                                                is_staff=staff, is_superuser=staff)


@pytest.fixture
def staff(client: Client) -> Client:
    client.force_login(user("auditor", staff=True))
    return client


def write(count: int, action: str = "profile.created", actor: str = "key:ab12cd34",
          at: datetime | None = None) -> None:
    audit.record_many(audit.Actor(actor, "203.0.113.9"), [
        audit.Entry(action, "profile", str(PROFILE) if i == 0 else f"p-{i}", {"n": i})
        for i in range(count)], at)


def test_the_page_needs_a_login(client: Client) -> None:
    response = client.get(URL)
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert client.post(URL).status_code == 302


def test_the_page_needs_the_audit_permission(client: Client) -> None:
    client.force_login(user("viewer", staff=False))
    assert client.get(URL).status_code == 403
    assert client.post(URL).status_code == 403


def test_newest_rows_first_with_who_what_when_and_where(staff: Client) -> None:
    write(3, at=datetime(2025, 2, 1, 8, 0, tzinfo=UTC))
    audit.record(audit.Actor("user:1", "198.51.100.4"), "user.role_changed", "user", "3",
                 {"before": {"role": "viewer"}, "after": {"role": "analyst"}})
    response = staff.get(URL)
    assert response.status_code == 200
    text = html(response)
    assert seqs(text) == [4, 3, 2, 1]
    assert "user.role_changed" in text and "198.51.100.4" in text
    assert "viewer → analyst" in text
    assert "2025-02-01 08:00:00" in text
    assert f'href="/customers/{PROFILE}/"' in text  # a profile target links to its page
    assert 'id="audit-more"' not in text


def test_filters(staff: Client) -> None:
    write(3, at=datetime(2025, 1, 10, tzinfo=UTC))
    write(2, action="profile.merged", actor="user:5", at=datetime(2025, 3, 10, tzinfo=UTC))
    assert seqs(html(staff.get(URL, {"action": "profile.merged"}))) == [5, 4]
    assert seqs(html(staff.get(URL, {"action": "profile.*"}))) == [5, 4, 3, 2, 1]
    assert seqs(html(staff.get(URL, {"actor": "user:5"}))) == [5, 4]
    assert seqs(html(staff.get(URL, {"target": str(PROFILE)}))) == [4, 1]
    assert seqs(html(staff.get(URL, {"since": "2025-03-10"}))) == [5, 4]
    assert seqs(html(staff.get(URL, {"until": "2025-01-10"}))) == [3, 2, 1]  # day included
    assert seqs(html(staff.get(URL, {"since": "2025-01-11", "until": "2025-03-09"}))) == []
    empty = html(staff.get(URL, {"actor": "nobody"}))
    assert "No audit rows match these filters." in empty


def test_bad_filters_are_told_not_crashed_on(staff: Client) -> None:
    response = staff.get(URL, {"since": "yesterday"})
    assert response.status_code == 400 and "Enter a valid date." in html(response)
    response = staff.get(URL, {"since": "2025-03-02", "until": "2025-03-01"})
    assert response.status_code == 400 and "“To” is before “From”." in html(response)
    assert staff.get(URL, {"before": "x"}).status_code == 400


def test_load_older_pages_by_seq_and_keeps_the_filters(staff: Client) -> None:
    write(audit_views.PAGE + 10)  # 60 rows
    write(5, action="profile.merged")  # 61–65
    first = html(staff.get(URL))
    assert seqs(first) == list(range(65, 65 - audit_views.PAGE, -1))
    more = re.search(r'id="audit-more".*?href="([^"]+)"', first, re.S)
    assert more is not None
    link = more.group(1).replace("&amp;", "&")
    assert link == f"{URL}?before=16"
    second = staff.get(link, headers={"HX-Request": "true"})  # htmx selects the rows
    assert seqs(html(second)) == list(range(15, 0, -1))
    assert 'id="audit-more"' not in html(second)
    assert "Older rows" in html(second)

    filtered = html(staff.get(URL, {"action": "profile.created", "actor": "key:ab12cd34"}))
    assert seqs(filtered) == list(range(60, 10, -1))
    link = re.search(r'id="audit-more".*?href="([^"]+)"', filtered, re.S)
    assert link is not None
    query = link.group(1).replace("&amp;", "&")
    assert "action=profile.created" in query and "actor=key%3Aab12cd34" in query
    assert seqs(html(staff.get(query))) == list(range(10, 0, -1))


def test_verify_chain_button(staff: Client) -> None:
    write(4)
    page = html(staff.get(URL))
    assert "Verify chain" in page and 'data-testid="verify-result"' not in page
    response = staff.post(URL)
    assert response.status_code == 200
    text = html(response)
    assert 'data-ok="true"' in text and "Intact: 4 rows checked" in text
    assert seqs(text) == [4, 3, 2, 1]

    migration = importlib.import_module("cxm.core.migrations.0002_audit_chain")

    class Editor:
        def execute(self, sql: str) -> None:
            with connection.cursor() as cursor:
                cursor.execute(sql)

    Editor.connection = connection  # type: ignore[attr-defined]
    migration.remove_triggers(None, Editor())  # rolled back with the test's transaction
    with connection.cursor() as cursor:
        cursor.execute("UPDATE core_auditlog SET actor = 'user:1' WHERE seq = 3")
    text = html(staff.post(f"{URL}?action=profile.created"))
    assert 'data-ok="false"' in text
    assert "Broken at row 3 (edited)." in text and "2 rows before it verified" in text
