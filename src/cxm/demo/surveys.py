"""The demo company's surveys: the generator's survey tool sends ``Survey Responded`` events;
here they become responses of three surveys, through the feedback actions, and their comments'
themes are discovered — so the survey pages have a year of answers to show."""

from __future__ import annotations

from typing import Any

from cxm.core.audit import Actor
from cxm.feedback import actions as feedback_actions
from cxm.feedback.models import Survey
from cxm.ingest import queries as ingest_queries

_REASON = {"id": "comment", "type": "text", "text": "What is the main reason for your score?"}
_REASON_DE = {"comment": {"text": "Was ist der wichtigste Grund für Ihre Bewertung?"}}

SURVEYS: list[dict[str, Any]] = [
    {"name": "Post-purchase NPS", "kind": "nps", "touchpoint": "delivery", "stage": "purchase",
     "definition": {"title": "How did we do?", "questions": [
         {"id": "score", "type": "nps", "required": True,
          "text": "How likely are you to recommend Juniper & Oak to a friend?"}, _REASON],
         "translations": {"de": {"title": "Wie war es?", "questions": {
             "score": {"text": "Wie wahrscheinlich ist es, dass Sie Juniper & Oak einem "
                               "Freund empfehlen?"}, **_REASON_DE}}}}},
    {"name": "Support CSAT", "kind": "csat", "touchpoint": "support", "stage": "support",
     "definition": {"title": "Your support request", "questions": [
         {"id": "score", "type": "csat", "required": True,
          "text": "How satisfied were you with the help you received?"}, _REASON]}},
    {"name": "Checkout CES", "kind": "ces", "touchpoint": "checkout", "stage": "purchase",
     "definition": {"title": "Your checkout", "questions": [
         {"id": "score", "type": "ces", "required": True,
          "text": "Juniper & Oak made it easy to complete my purchase."}, _REASON]}},
]
_CHUNK = 2000


def load(actor: Actor) -> dict[str, int]:
    for spec in SURVEYS:
        if not Survey.objects.filter(name=spec["name"]).exists():
            feedback_actions.create_survey(actor=actor, **spec)
    ids = ingest_queries.track_ids(feedback_actions.EXTERNAL_EVENT)
    recorded = skipped = 0
    for start in range(0, len(ids), _CHUNK):
        result = feedback_actions.record_event_answers(ids[start:start + _CHUNK], actor=actor)
        recorded += result.recorded
        skipped += result.skipped
    themes = feedback_actions.discover_themes(actor=actor, max_themes=10) if recorded else []
    return {"survey_responses": recorded, "survey_events_skipped": skipped,
            "themes": len(themes)}
