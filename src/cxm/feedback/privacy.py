"""The feedback app's part in export, erasure and key rotation (registered in apps.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cxm.core import pii, privacy
from cxm.core.registry import PersonalDataStore, Subject
from cxm.feedback.models import Contact, Invitation, Response


def export(subject: Subject) -> dict[str, Any]:
    ids = list(subject.profile_ids)
    responses = []
    for response in Response.objects.filter(profile_id__in=ids).select_related("survey") \
            .order_by("submitted_at"):
        responses.append({
            "id": str(response.id), "survey": response.survey.name,
            "submitted_at": response.submitted_at.isoformat(), "channel": response.channel,
            "score": response.score, "language": response.language,
            "answers": {k: pii.reveal_any(v) for k, v in response.answers.items()},
            "sentiment": response.sentiment, "emotion": response.emotion,
        })
    invitations = [
        {"survey": i.survey.name, "channel": i.channel, "status": i.status,
         "created_at": i.created_at.isoformat(), "reason": i.reason}
        for i in Invitation.objects.filter(profile_id__in=ids).select_related("survey")
        .order_by("created_at")
    ]
    contacts = [
        {"at": c.at.isoformat(), "kind": c.kind, "channel": c.channel,
         "touchpoint": c.touchpoint}
        for c in Contact.objects.filter(profile_id__in=ids).order_by("at")
    ]
    return {"survey_responses": responses, "survey_invitations": invitations,
            "contacts": contacts}


def erase(subject: Subject) -> dict[str, int]:
    ids = list(subject.profile_ids)
    # delete() counts cascaded rows too (theme links): report each table's own rows.
    responses = Response.objects.filter(profile_id__in=ids).delete()[1]
    return {
        "survey_responses": responses.get("feedback.Response", 0),
        "survey_theme_links": responses.get("feedback.Response_themes", 0),
        "survey_invitations": Invitation.objects.filter(profile_id__in=ids).delete()[0],
        "contacts": Contact.objects.filter(profile_id__in=ids).delete()[0],
    }


def reencrypt(rewrite: Callable[[Any], Any], batch_size: int) -> int:
    return privacy.reencrypt_rows(Response.objects.all(), ("comment", "answers"), rewrite,
                                  batch_size)


# Erased before the identity store (order 100): responses point at profiles.
STORE = PersonalDataStore(name="feedback", export=export, erase=erase, reencrypt=reencrypt,
                          order=200)
