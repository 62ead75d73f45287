"""The identity app's part in export, erasure and key rotation (registered in apps.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db.models import Q

from cxm.core import pii, privacy
from cxm.core.registry import PersonalDataStore, Subject
from cxm.identity import queries
from cxm.identity.models import Identity, Merge, MergeBlock, Profile


def export(subject: Subject) -> dict[str, Any]:
    ids = list(subject.profile_ids)
    profiles = []
    for profile in Profile.objects.filter(id__in=ids).order_by("created_at"):
        profiles.append({
            "id": str(profile.id),
            "merged_into": str(profile.merged_into_id) if profile.merged_into_id else None,
            "created_at": profile.created_at.isoformat(),
            "first_seen": profile.first_seen.isoformat() if profile.first_seen else None,
            "last_seen": profile.last_seen.isoformat() if profile.last_seen else None,
            "name": pii.reveal(profile.display_name), "email": pii.reveal(profile.email),
            "phone": pii.reveal(profile.phone),
            "traits": queries.revealed_traits(profile),
            "preferences": profile.preferences,
            "consent": queries.consent_list(profile),
        })
    identities = [
        {"kind": i.kind, "value": pii.reveal(i.protected_value), "source": i.source,
         "created_at": i.created_at.isoformat(), "profile_id": str(i.profile_id)}
        for i in Identity.objects.filter(profile_id__in=ids).order_by("created_at", "id")
    ]
    merges = [
        {"id": m.pk, "survivor_id": str(m.survivor_id), "merged_id": str(m.merged_id),
         "at": m.at.isoformat(), "actor": m.actor, "reason": m.reason,
         "undone_at": m.undone_at.isoformat() if m.undone_at else None}
        for m in Merge.objects.filter(Q(survivor_id__in=ids) | Q(merged_id__in=ids))
    ]
    return {"profiles": profiles, "identities": identities, "merges": merges}


def erase(subject: Subject) -> dict[str, int]:
    ids = list(subject.profile_ids)
    removed = {
        "identities": Identity.objects.filter(profile_id__in=ids).delete()[0],
        "merges": Merge.objects.filter(Q(survivor_id__in=ids) | Q(merged_id__in=ids))
        .delete()[0],
        "merge_blocks": MergeBlock.objects.filter(
            Q(profile_low_id__in=ids) | Q(profile_high_id__in=ids)).delete()[0],
    }
    # Merged-away profiles point at the survivor; unlink before deleting them all.
    Profile.objects.filter(id__in=ids).update(merged_into=None)
    removed["profiles"] = Profile.objects.filter(id__in=ids).delete()[0]
    return removed


def reencrypt(rewrite: Callable[[Any], Any], batch_size: int) -> int:
    return (privacy.reencrypt_rows(Profile.objects.all(),
                                   ("display_name", "email", "phone", "traits"), rewrite,
                                   batch_size)
            + privacy.reencrypt_rows(Identity.objects.all(), ("protected_value",), rewrite,
                                     batch_size))


STORE = PersonalDataStore(name="identity", export=export, erase=erase, reencrypt=reencrypt,
                          order=100)
