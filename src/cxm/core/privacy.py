"""Subject-access export, erasure and key rotation, driven over every registered store."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from django.db import DatabaseError, connection, transaction
from django.db.models import QuerySet

from cxm.core import audit, crypto
from cxm.core.clock import now
from cxm.core.registry import Subject, stores

logger = logging.getLogger(__name__)


def export(subject: Subject, actor: audit.Actor) -> dict[str, Any]:
    """Everything every app holds on the person, personal values revealed."""
    data: dict[str, Any] = {
        "generated_at": now().isoformat(),
        "profile_ids": [str(p) for p in subject.profile_ids],
    }
    for store in reversed(stores()):
        data[store.name] = store.export(subject)
    audit.record(actor, "privacy.exported", "profile", str(subject.profile_ids[0]),
                 {"profiles": len(subject.profile_ids),
                  "sections": sorted(k for k in data if k not in {"generated_at",
                                                                  "profile_ids"})})
    return data


def erase(subject: Subject, actor: audit.Actor) -> dict[str, int]:
    """Remove the person from every store in one transaction and record a proof of erasure
    (what was removed, counted — no personal value) in the audit log."""
    removed: dict[str, int] = {}
    with transaction.atomic():
        for store in stores():
            for table, count in store.erase(subject).items():
                removed[f"{store.name}.{table}"] = count
        audit.record(actor, "privacy.erased", "profile", str(subject.profile_ids[0]),
                     {"profiles": [str(p) for p in subject.profile_ids], "removed": removed})
    _flush_deleted_pages()
    logger.info("erased a subject: %d profiles, %d rows", len(subject.profile_ids),
                sum(removed.values()))
    return removed


def _flush_deleted_pages() -> None:
    """SQLite keeps old page images in the write-ahead log until a checkpoint; fold them into
    the (secure_delete) database file now so no copy of the erased rows remains on disk."""
    if connection.vendor != "sqlite" or connection.in_atomic_block:
        return  # inside a caller's transaction the checkpoint cannot run; the caller's commit
        # is followed by SQLite's own automatic checkpoints
    try:
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except DatabaseError:
        logger.warning("could not checkpoint the write-ahead log after an erasure")


def rewrite_token(current: str) -> Callable[[Any], Any]:
    """A function that re-encrypts every token in a JSON-like value not under ``current``."""

    def rewrite(value: Any) -> Any:
        if isinstance(value, str):
            if crypto.is_encrypted(value) and crypto.key_id_of(value) != current:
                return crypto.encrypt(crypto.decrypt(value))
            return value
        if isinstance(value, dict):
            return {k: rewrite(v) for k, v in value.items()}
        if isinstance(value, list):
            return [rewrite(v) for v in value]
        return value

    return rewrite


def reencrypt_all(batch_size: int = 500,
                  progress: Callable[[str, int], None] | None = None) -> dict[str, int]:
    """Re-encrypt every stored token under the current key, store by store, in small
    transactions (the platform keeps running; readers decrypt old and new tokens alike)."""
    rewrite = rewrite_token(crypto.keyring().current_id)
    changed: dict[str, int] = {}
    for store in stores():
        if store.reencrypt is None:
            continue
        changed[store.name] = store.reencrypt(rewrite, batch_size)
        if progress is not None:
            progress(store.name, changed[store.name])
    return changed



def reencrypt_rows(rows: QuerySet[Any], fields: Sequence[str], rewrite: Callable[[Any], Any],
                   batch_size: int, *, lock: bool = True) -> int:
    """Rewrite ``fields`` of every row of ``rows`` through ``rewrite``, a batch per transaction
    in primary-key order; only rows that change are written, and only those columns. With
    ``lock`` the batch is locked while it is rewritten; without it, a concurrent writer of
    other columns (e.g. a merge moving events) is never blocked. Returns the rows changed."""
    changed = 0
    last: Any = None
    while True:
        with transaction.atomic():
            query = rows.order_by("pk")
            if last is not None:
                query = query.filter(pk__gt=last)
            if lock:
                query = query.select_for_update()
            batch = list(query.values_list("pk", *fields)[:batch_size])
            if not batch:
                break
            last = batch[-1][0]
            for pk, *values in batch:
                new = [rewrite(value) for value in values]
                if new != values:
                    rows.model.objects.filter(pk=pk).update(**dict(zip(fields, new, strict=True)))
                    changed += 1
    return changed
