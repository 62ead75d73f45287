"""Fuzzing the REST API from its own OpenAPI document with schemathesis, in-process against
the WSGI app with an admin key: no answer may be a 5xx, and every answer must match the
document (status code, content type, body schema). A few examples per operation keep it to
seconds; run with CXM_FUZZ_EXAMPLES=500 for a deeper search."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from cxm.wsgi import application

EXAMPLES = int(os.environ.get("CXM_FUZZ_EXAMPLES", "25"))

schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


@dataclass(frozen=True)
class Known:
    key: str
    profile_id: str


@pytest.fixture
def known(transactional_db: Any, make_key: Any) -> Iterator[Known]:
    """An admin key and a real customer (through the ingest path), whose id the fuzzer uses
    in half its requests so that the answers with bodies get checked too.

    Not in a test transaction: erasure checkpoints SQLite's log, which an open transaction
    forbids. The WSGI handler closes database connections as each request ends; like Django's
    test client, keep them while the fuzzer runs."""
    from tests.web.conftest import make_customer

    customer = make_customer(tracks=2)
    key = str(make_key("admin", name="fuzzer"))
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield Known(key, str(customer.id))
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@schema.parametrize()
@schema.given(use_known_id=st.booleans())
@settings(max_examples=EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much])
def test_the_api_answers_every_request_as_documented(case: Any, use_known_id: bool,
                                                   known: Known) -> None:
    if use_known_id and isinstance(case.path_parameters, dict) and \
            "profile_id" in case.path_parameters:
        case.path_parameters["profile_id"] = known.profile_id
    case.call_and_validate(headers={"Authorization": f"Bearer {known.key}"}, checks=CHECKS)
