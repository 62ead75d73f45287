from __future__ import annotations

from typing import Any

from django.db import models
from django.db.backends.signals import connection_created
from django.dispatch import receiver

from cxm.core.clock import now


class AuditLog(models.Model):
    """Append-only, hash-chained record of every change to customer data and every read of
    personal data: who (``actor``: ``user:<id>``, ``key:<prefix>``, ``cli``, ``system`` …),
    what (``action`` on ``target_type``/``target_id``, with ``changes``), when (``at``, UTC)
    and from where (``ip`` of the client, when there is one).

    Rows are written only by :mod:`cxm.core.audit` (``record``, ``record_many``,
    ``record_read``), never with the ORM: each row carries ``seq`` (1, 2, 3 … with no gaps),
    the ``row_hash`` of the row before it (``prev_hash``; 64 zeros for ``seq`` 1) and its own
    ``row_hash``, the hex SHA-256 of its canonical serialisation (see
    :func:`cxm.core.audit.row_hash`). ``audit.verify_chain`` recomputes the chain.

    ``changes`` convention: an update stores ``{"before": {...}, "after": {...}}`` holding only
    the fields that changed; other actions store a small object of ids, counts and the *keys*
    of what changed (``{"keys": ["plan", "preferences.pillow"]}``). **Never personal values**
    (emails, names, phones, addresses, free text written by a customer): rows cannot be
    edited, so a personal value written here could never be erased. Store the id of the thing
    and the names of the fields instead.

    The database refuses UPDATE and DELETE on this table (triggers from migration 0002; on
    PostgreSQL TRUNCATE too). The one exception is Django's ``flush`` — the command that wipes
    *every* table, used between transactional tests — which :func:`_allow_flush` lets through.
    A migration that rebuilds this table on SQLite (most ``AlterField``s do) drops the
    triggers: it must run ``core.migrations.0002``'s ``install_triggers`` again.
    """

    seq = models.BigIntegerField(unique=True, help_text="1, 2, 3 …: the row's place in the chain")
    at = models.DateTimeField(default=now, db_index=True)
    actor = models.CharField(max_length=120, help_text="user:<id>, key:<prefix> or system")
    action = models.CharField(max_length=60)
    target_type = models.CharField(max_length=40)
    target_id = models.CharField(max_length=64)
    changes = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    prev_hash = models.CharField(max_length=64, help_text="row_hash of the row with seq - 1")
    row_hash = models.CharField(max_length=64, help_text="hex SHA-256 of this row's contents")

    class Meta:
        # (x, seq): the audit search filters on one of these and pages newest-first by seq.
        indexes = [
            models.Index(fields=["actor", "seq"], name="core_audit_actor_seq"),
            models.Index(fields=["action", "seq"], name="core_audit_action_seq"),
            models.Index(fields=["target_id", "seq"], name="core_audit_target_seq"),
        ]

    def __str__(self) -> str:
        return (f"#{self.seq} {self.at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action} "
                f"{self.target_id}")


# --- the database-level guard ----------------------------------------------------------------
# SQLite's DELETE trigger asks ``cxm_audit_flushing()`` (registered below on every connection
# Django opens) whether Django's ``flush`` is running; a connection without the function (the
# sqlite3 shell, another program) cannot prepare a DELETE on the table at all. PostgreSQL's
# TRUNCATE trigger reads the transaction-local setting ``cxm.audit_flush`` instead.


def _allow_flush(wrapper: Any) -> None:
    """Wrap this connection's ``execute_sql_flush`` so the wipe of all tables may include the
    audit table. Nothing else turns the flag on."""
    ops = wrapper.ops
    if getattr(ops, "_cxm_audit_flush", False):
        return
    original = ops.execute_sql_flush

    def execute_sql_flush(sql_list: list[str]) -> None:
        from django.db import transaction

        with transaction.atomic(using=wrapper.alias):
            if wrapper.vendor == "postgresql":
                with wrapper.cursor() as cursor:
                    cursor.execute("SET LOCAL cxm.audit_flush = 'on'")
            wrapper.cxm_audit_flushing = True
            try:
                original(sql_list)
            finally:
                wrapper.cxm_audit_flushing = False

    ops.execute_sql_flush = execute_sql_flush
    ops._cxm_audit_flush = True


@receiver(connection_created, dispatch_uid="cxm.core.audit_guard")
def _audit_guard(sender: Any, connection: Any, **kwargs: Any) -> None:
    if connection.vendor == "sqlite":
        connection.connection.create_function(
            "cxm_audit_flushing", 0,
            lambda: 1 if getattr(connection, "cxm_audit_flushing", False) else 0)
    _allow_flush(connection)
