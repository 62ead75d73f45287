"""Surveys and people for the feedback tests, made through the real actions and ingest path."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from cxm.core.audit import Actor

ANALYST = Actor("user:analyst")

NPS_DEFINITION: dict[str, Any] = {
    "language": "en",
    "title": "How did we do?",
    "questions": [
        {"id": "score", "type": "nps", "text": "How likely are you to recommend us?",
         "required": True},
        {"id": "why", "type": "text", "text": "What is the main reason for your score?"},
        {"id": "fix", "type": "single", "text": "What should we fix first?",
         "choices": [{"id": "delivery", "label": "Delivery"}, {"id": "price", "label": "Price"}],
         "show_if": {"question": "score", "op": "lte", "value": 6}},
    ],
    "translations": {"de": {"title": "Wie war es?",
                            "questions": {"score": {"text": "Wie wahrscheinlich …?"}},
                            "thank_you": "Danke!"}},
}


def add_person(
    email: str = "ada@example.com", user_id: str | None = "u-ada", *, research: bool = True,
    language: str | None = None, segment: str | None = None,
) -> uuid.UUID:
    from cxm.identity import queries
    from cxm.ingest.actions import ingest

    traits: dict[str, Any] = {"email": email, "name": "Ada Lovelace",
                              "consent": {"email": {"research": research},
                                          "in_app": {"research": research}}}
    if language:
        traits["language"] = language
    if segment:
        traits["segment"] = segment
    message: dict[str, Any] = {"type": "identify", "messageId": f"id-{email}",
                               "traits": traits, "timestamp": "2026-01-01T00:00:00Z"}
    if user_id:
        message["userId"] = user_id
    else:
        message["anonymousId"] = f"anon-{email}"
    result = ingest([message], actor=Actor("test"), source="test")
    assert result.accepted == 1, result.rejected
    return queries.by_identifier("email", email).id


@pytest.fixture
def person(db: Any) -> Callable[..., uuid.UUID]:
    return add_person


@pytest.fixture
def nps_survey(db: Any) -> Any:
    from cxm.feedback import actions

    return actions.create_survey(name="Post-purchase NPS", kind="nps",
                                 definition=NPS_DEFINITION, touchpoint="delivery",
                                 stage="purchase", actor=ANALYST)
