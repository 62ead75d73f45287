"""The identity app's part in export, erasure and key rotation (registered in apps.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.db.models import Q

from cxm.core import pii
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
    changed = 0
    last = None
    while True:
        with transaction.atomic():
            query = Profile.objects.order_by("id")
            if last is not None:
                query = query.filter(id__gt=last)
            batch = list(query.select_for_update()[:batch_size])
            if not batch:
                break
            last = batch[-1].id
            for profile in batch:
                fields = {
                    "display_name": rewrite(profile.display_name),
                    "email": rewrite(profile.email), "phone": rewrite(profile.phone),
                    "traits": rewrite(profile.traits),
                }
                if any(getattr(profile, k) != v for k, v in fields.items()):
                    Profile.objects.filter(id=profile.id).update(**fields)
                    changed += 1
    last_id = 0
    while True:
        with transaction.atomic():
            rows = list(Identity.objects.filter(id__gt=last_id).order_by("id")
                        .select_for_update().values_list("id", "protected_value")[:batch_size])
            if not rows:
                break
            last_id = rows[-1][0]
            for ident_id, protected in rows:
                new = rewrite(protected)
                if new != protected:
                    Identity.objects.filter(id=ident_id).update(protected_value=new)
                    changed += 1
    return changed


STORE = PersonalDataStore(name="identity", export=export, erase=erase, reencrypt=reencrypt,
                          order=100)
