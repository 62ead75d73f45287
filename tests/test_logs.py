"""Nothing personal appears in the logs, whatever path the data takes."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.test import Client

from cxm.core import privacy
from cxm.core.audit import Actor
from cxm.identity import queries

EMAIL, PHONE, NAME, USER = "log.secret@example.com", "+14155550177", "Zebulon", "u-log-secret"


@pytest.mark.django_db(transaction=True)
def test_ingest_reads_errors_and_erasure_log_nothing_personal(
    caplog: pytest.LogCaptureFixture, ingest_key: str, admin_key: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    client = Client()
    auth: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Bearer {ingest_key}"}
    ok = client.post("/v1/identify", {"userId": USER, "traits": {
        "email": EMAIL, "phone": PHONE, "firstName": NAME}}, content_type="application/json",
        **auth)
    assert ok.status_code == 200
    bad = client.post("/v1/track", {"userId": USER, "traits": {"email": EMAIL}},
                      content_type="application/json", **auth)  # no event name: a 400
    assert bad.status_code == 400
    admin: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Bearer {admin_key}"}
    assert client.get("/api/v1/profiles/lookup", {"email": EMAIL}, **admin).status_code == 200
    assert client.get("/api/v1/profiles/lookup", {"email": "nobody@example.com"},
                      **admin).status_code == 404
    privacy.erase(queries.subject_of(queries.by_identifier("email", EMAIL)), Actor("test"))
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert caplog.records, "expected the request and erasure paths to log something"
    for secret in (EMAIL, PHONE, NAME, USER, "nobody@example.com"):
        assert secret not in logged
