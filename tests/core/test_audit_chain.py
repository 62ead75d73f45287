"""The audit log's hash chain: built on every write, verified end to end, tampering found at the
right row, one chain under concurrent writers, and a database that refuses UPDATE and DELETE.
Runs on SQLite and, with ``CXM_DATABASE_URL``, on PostgreSQL."""

from __future__ import annotations

import hashlib
import importlib
import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction
from typer.testing import CliRunner

from cxm.core import audit
from cxm.core.models import AuditLog
from tests.helpers import THREADS, run_together

TABLE = "core_auditlog"
_migration = importlib.import_module("cxm.core.migrations.0002_audit_chain")


class _Editor:
    """Enough of a schema editor for the migration's trigger functions."""

    connection = connection

    def execute(self, sql: str) -> None:
        with connection.cursor() as cursor:
            cursor.execute(sql)


def drop_guard() -> None:
    """What someone with the database's owner rights could do first."""
    _migration.remove_triggers(None, _Editor())


def restore_guard() -> None:
    _migration.install_triggers(None, _Editor())


def execute(sql: str, params: list[Any] | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])


def json_param() -> str:
    return "%s::jsonb" if connection.vendor == "postgresql" else "%s"


def write_rows(count: int = 10) -> None:
    actor = audit.Actor("user:7", "203.0.113.9")
    audit.record(actor, "profile.merged", "profile", str(uuid.UUID(int=1)),
                 {"merged": str(uuid.UUID(int=2)), "kind": "manual"})
    audit.record_many(audit.Actor("key:ab12cd34"), [
        audit.Entry("profile.traits_changed", "profile", str(uuid.UUID(int=i)),
                    {"keys": ["plan", f"k{i}"]}) for i in range(count - 2)])
    audit.record(actor, "user.role_changed", "user", "3",
                 {"before": {"role": "viewer"}, "after": {"role": "analyst"}})


def rows() -> list[AuditLog]:
    return list(AuditLog.objects.order_by("seq"))


# --- building and verifying ------------------------------------------------------------------


@pytest.mark.django_db
def test_rows_are_numbered_and_chained_and_the_chain_verifies() -> None:
    assert audit.verify_chain() == audit.VerifyResult(True, 0)
    write_rows(10)
    stored = rows()
    assert [r.seq for r in stored] == list(range(1, 11))
    assert stored[0].prev_hash == audit.GENESIS
    for before, after in itertools.pairwise(stored):
        assert after.prev_hash == before.row_hash
    assert len({r.row_hash for r in stored}) == 10
    result = audit.verify_chain(chunk=3)  # several chunks
    assert result.ok and result.rows == 10 and result.problem is None
    assert (result.head_seq, result.head_hash) == (10, stored[-1].row_hash)
    assert audit.verify_chain(anchor=(4, stored[3].row_hash)).anchor_checked


@pytest.mark.django_db
def test_the_hash_is_sha256_of_sorted_orjson_of_the_row() -> None:
    at = datetime(2025, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)
    audit.record_many(audit.Actor("user:7", "203.0.113.9"),
                      [audit.Entry("profile.merged", "profile", "p-1", {"b": 1, "a": [2]})], at)
    (row,) = rows()
    text = orjson.dumps({
        "seq": 1, "at": "2025-03-01T09:30:15.123456Z", "actor": "user:7",
        "action": "profile.merged", "target_type": "profile", "target_id": "p-1",
        "changes": {"a": [2], "b": 1}, "ip": "203.0.113.9", "prev_hash": "0" * 64,
    }, option=orjson.OPT_SORT_KEYS)
    assert text.startswith(b'{"action":"profile.merged","actor":"user:7","at":')
    assert row.row_hash == hashlib.sha256(text).hexdigest()


@pytest.mark.django_db
def test_values_that_the_database_respells_still_verify() -> None:
    # jsonb keeps numbers as decimals (2.0 may come back as 2, 1e20 as an integer); inet
    # has its own spelling of IPv6; datetimes and UUIDs are stored as strings.
    audit.record(audit.Actor("user:1", "2001:DB8:0:0:1:0:0:1"), "x.numbers", "x", "1", {
        "two": 2.0, "big": 1e20, "huge": 10**30, "tenth": 0.1, "tiny": 1.5e-10, "neg": -0.0,
        "flag": True, "none": None, "id": uuid.UUID(int=5),
        "when": datetime(2025, 1, 1, tzinfo=UTC),
        "nested": {"list": [1.5, 3.0, "x", {"z": 1e16}]}, 7: "int key"})
    audit.record(audit.Actor("user:1", "::ffff:192.0.2.1"), "x.mapped", "x", "2", {})
    audit.record(audit.Actor("user:1", "fe80::1%eth0"), "x.scoped", "x", "3", {})
    audit.record(audit.Actor("user:1", "not-an-address"), "x.bad", "x", "4", {})
    result = audit.verify_chain()
    assert result.ok and result.rows == 4, result
    first = AuditLog.objects.get(seq=1)
    assert first.changes["two"] == 2 and first.changes["7"] == "int key"
    assert AuditLog.objects.get(seq=4).ip is None


@pytest.mark.django_db
def test_reads_of_personal_data_are_recorded_with_field_names_only() -> None:
    actor = audit.Actor("user:9", "198.51.100.4")
    audit.record_read(actor, "profile", "p-1", ["phone", "email", "email"])
    assert audit.record_reads(actor, "profile", ["p-2", "p-3"], {"name"}) == 2
    reads = rows()
    assert [(r.action, r.target_id, r.changes) for r in reads] == [
        (audit.READ_PERSONAL, "p-1", {"fields": ["email", "phone"]}),
        (audit.READ_PERSONAL, "p-2", {"fields": ["name"]}),
        (audit.READ_PERSONAL, "p-3", {"fields": ["name"]})]
    assert reads[0].actor == "user:9" and reads[0].ip == "198.51.100.4"
    assert audit.verify_chain().ok


# --- tampering -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_edited_row_is_found_at_its_seq() -> None:
    write_rows(10)
    drop_guard()
    execute(f"UPDATE {TABLE} SET changes = {json_param()} WHERE seq = %s",
            [json.dumps({"keys": ["plan", "k9"]}), 6])
    result = audit.verify_chain(chunk=4)
    assert (result.ok, result.broken_seq, result.problem, result.rows) == (False, 6, "edited", 5)
    assert "row 6" in result.detail


@pytest.mark.django_db
def test_an_edited_actor_or_time_is_found_too() -> None:
    write_rows(5)
    drop_guard()
    execute(f"UPDATE {TABLE} SET actor = %s WHERE seq = %s", ["user:1", 2])
    assert (audit.verify_chain().broken_seq, audit.verify_chain().problem) == (2, "edited")
    execute(f"UPDATE {TABLE} SET actor = %s WHERE seq = %s", ["key:ab12cd34", 2])
    assert audit.verify_chain().ok
    row = AuditLog.objects.get(seq=4)
    AuditLog.objects.filter(seq=4).update(at=row.at - timedelta(microseconds=1))
    assert (audit.verify_chain().broken_seq, audit.verify_chain().problem) == (4, "edited")


@pytest.mark.django_db
def test_a_deleted_row_is_found_as_a_gap() -> None:
    write_rows(10)
    drop_guard()
    execute(f"DELETE FROM {TABLE} WHERE seq IN (%s, %s)", [4, 5])
    result = audit.verify_chain()
    assert (result.ok, result.broken_seq, result.problem, result.rows) == (False, 4, "deleted", 3)
    assert "rows 4–5 are missing" in result.detail


@pytest.mark.django_db
def test_a_deleted_first_row_is_found() -> None:
    write_rows(3)
    drop_guard()
    execute(f"DELETE FROM {TABLE} WHERE seq = %s", [1])
    result = audit.verify_chain()
    assert (result.broken_seq, result.problem) == (1, "deleted")


@pytest.mark.django_db
def test_swapped_rows_are_found_as_reordered() -> None:
    write_rows(8)
    drop_guard()
    execute(f"UPDATE {TABLE} SET seq = -1 WHERE seq = 3")
    execute(f"UPDATE {TABLE} SET seq = 3 WHERE seq = 4")
    execute(f"UPDATE {TABLE} SET seq = 4 WHERE seq = -1")
    result = audit.verify_chain()
    assert (result.broken_seq, result.problem) == (3, "reordered")
    assert "written as row 4" in result.detail


@pytest.mark.django_db
def test_a_row_rewritten_with_a_recomputed_hash_breaks_the_next_link() -> None:
    write_rows(6)
    drop_guard()
    forged = AuditLog.objects.get(seq=3)
    forged.changes = {"keys": ["forged"]}
    forged.row_hash = audit.stored_row_hash(forged)
    forged.save()
    result = audit.verify_chain()
    assert (result.broken_seq, result.problem, result.rows) == (4, "relinked", 3)


@pytest.mark.django_db
def test_rows_cut_off_the_end_are_found_against_an_anchor() -> None:
    write_rows(6)
    head = audit.verify_chain()
    assert head.head_seq == 6 and head.head_hash is not None
    drop_guard()
    execute(f"DELETE FROM {TABLE} WHERE seq >= %s", [5])
    assert audit.verify_chain().ok  # nothing left to compare with…
    result = audit.verify_chain(anchor=(6, head.head_hash))  # …but the anchor remembers
    assert (result.ok, result.problem, result.broken_seq) == (False, "deleted", 5)


@pytest.mark.django_db
def test_a_rewritten_chain_is_found_against_an_anchor() -> None:
    write_rows(4)
    head = audit.verify_chain()
    assert head.head_hash is not None
    drop_guard()
    AuditLog.objects.filter(seq=1).update(actor="user:1")
    prev = audit.GENESIS
    for row in rows():  # recompute the whole chain, as someone with the algorithm could
        row.prev_hash = prev
        row.row_hash = prev = audit.stored_row_hash(row)
        row.save()
    assert audit.verify_chain().ok
    result = audit.verify_chain(anchor=(4, head.head_hash))
    assert (result.ok, result.broken_seq, result.problem) == (False, 4, "edited")


# --- the database refuses changes ------------------------------------------------------------


def refused(work: Callable[[], Any]) -> str:
    with pytest.raises(DatabaseError) as caught, transaction.atomic():
        work()
    assert isinstance(caught.value, IntegrityError)
    return str(caught.value)


@pytest.mark.django_db
def test_the_database_refuses_update_and_delete() -> None:
    write_rows(3)
    assert "append-only" in refused(lambda: execute(
        f"UPDATE {TABLE} SET actor = 'user:1' WHERE seq = 2"))
    assert "append-only" in refused(lambda: execute(f"DELETE FROM {TABLE} WHERE seq = 3"))
    assert "append-only" in refused(lambda: execute(f"DELETE FROM {TABLE}"))
    refused(lambda: AuditLog.objects.filter(seq=1).update(action="x.y"))
    refused(lambda: AuditLog.objects.filter(seq=1).delete())
    refused(lambda: AuditLog.objects.get(seq=2).delete())
    if connection.vendor == "postgresql":
        assert "TRUNCATE" in refused(lambda: execute(f"TRUNCATE {TABLE}"))
    assert AuditLog.objects.count() == 3
    assert audit.verify_chain().ok


@pytest.mark.django_db
def test_appending_stays_allowed_and_a_seq_cannot_be_taken_twice() -> None:
    write_rows(3)
    row = AuditLog.objects.get(seq=3)
    with pytest.raises(IntegrityError), transaction.atomic():
        execute(f"INSERT INTO {TABLE} (seq, at, actor, action, target_type, target_id, changes,"
                f" ip, prev_hash, row_hash) VALUES (3, %s, 'x', 'x', 'x', 'x', {json_param()},"
                " NULL, %s, %s)", [row.at, "{}", row.prev_hash, row.row_hash])
    audit.record(audit.Actor.system(), "x.after", "x", "1")
    assert audit.verify_chain().rows == 4


# --- concurrency -----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_make_one_unforked_chain() -> None:
    rounds = 6

    def work(index: int) -> None:
        actor = audit.Actor(f"user:{index}", "198.51.100.7")
        for n in range(rounds):
            with transaction.atomic():
                audit.record_many(actor, [audit.Entry("t.batch", "t", f"{index}-{n}-{k}",
                                                      {"n": n}) for k in range(3)])
                audit.record(actor, "t.single", "t", f"{index}-{n}")
            audit.record(actor, "t.autocommit", "t", f"{index}-{n}")  # its own transaction

    run_together(work)
    expected = THREADS * rounds * 5
    assert list(AuditLog.objects.order_by("seq").values_list("seq", flat=True)) == list(
        range(1, expected + 1))
    assert AuditLog.objects.values("prev_hash").distinct().count() == expected  # no fork
    result = audit.verify_chain(chunk=50)
    assert result.ok and result.rows == expected, result
    # each transaction's rows are consecutive: nobody wrote in between
    for index in range(THREADS):
        for n in range(rounds):
            seqs = sorted(AuditLog.objects.filter(
                actor=f"user:{index}", target_id__startswith=f"{index}-{n}",
                action__in=["t.batch", "t.single"]).values_list("seq", flat=True))
            assert seqs == list(range(seqs[0], seqs[0] + 4)), seqs


@pytest.mark.django_db(transaction=True)
def test_a_second_writer_waits_for_the_first_to_commit() -> None:
    done = threading.Event()

    def second() -> None:
        try:
            audit.record(audit.Actor("user:2"), "t.second", "t", "2")
        finally:
            connection.close()
            done.set()

    with transaction.atomic():
        audit.record(audit.Actor("user:1"), "t.first", "t", "1")
        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(0.4)
        assert not done.is_set(), "the second writer did not wait for the audit lock"
    thread.join(timeout=30)
    assert done.is_set()
    assert list(AuditLog.objects.order_by("seq").values_list("action", flat=True)) == [
        "t.first", "t.second"]
    assert audit.verify_chain().ok


# --- collect: write at the end of the transaction -------------------------------------------


@pytest.mark.django_db
def test_collect_writes_the_rows_when_the_block_ends() -> None:
    actor = audit.Actor("key:ab12cd34")
    with transaction.atomic():
        with audit.collect():
            audit.record(actor, "t.one", "t", "1")
            with audit.collect():  # nested: the outer block writes
                assert audit.record_many(actor, [audit.Entry("t.two", "t", "2", {}),
                                                 audit.Entry("t.three", "t", "3", {})]) == 2
            audit.record_read(actor, "profile", "p-1", ["email"])
            assert AuditLog.objects.count() == 0
        assert list(AuditLog.objects.order_by("seq").values_list("action", flat=True)) == [
            "t.one", "t.two", "t.three", audit.READ_PERSONAL]
    assert audit.verify_chain().ok


@pytest.mark.django_db
def test_collect_writes_nothing_when_the_block_raises() -> None:
    with pytest.raises(RuntimeError), audit.collect():
        audit.record(audit.Actor.system(), "t.lost", "t", "1")
        raise RuntimeError("the transaction is rolled back anyway")
    assert AuditLog.objects.count() == 0
    audit.record(audit.Actor.system(), "t.kept", "t", "2")
    assert AuditLog.objects.get().seq == 1


@pytest.mark.django_db
def test_rows_recorded_in_a_savepoint_inside_collect_go_with_its_rollback() -> None:
    actor = audit.Actor.system()
    with audit.collect():
        audit.record(actor, "t.outer", "t", "1")
        with pytest.raises(RuntimeError), transaction.atomic():
            audit.record(actor, "t.rolled_back", "t", "2")  # written at once, inside it
            raise RuntimeError
        with transaction.atomic():
            audit.record(actor, "t.inner", "t", "3")
    assert list(AuditLog.objects.order_by("seq").values_list("action", flat=True)) == [
        "t.inner", "t.outer"]
    assert audit.verify_chain().ok


# --- search ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_search_filters_and_pages_newest_first() -> None:
    early = datetime(2025, 1, 1, tzinfo=UTC)
    late = datetime(2025, 6, 1, tzinfo=UTC)
    audit.record_many(audit.Actor("key:a"), [
        audit.Entry("profile.created", "profile", f"p{i}", {}) for i in range(7)], early)
    audit.record_many(audit.Actor("user:1"), [
        audit.Entry("profile.merged", "profile", "p1", {"merged": "p2"})], late)
    audit.record_many(audit.Actor("user:1"), [
        audit.Entry("user.created", "user", "5", {})], late)

    everything = audit.search()
    assert [r.seq for r in everything.rows] == list(range(9, 0, -1))
    assert everything.next_before_seq is None
    assert [r.seq for r in audit.search(actor="user:1").rows] == [9, 8]
    assert [r.seq for r in audit.search(action="profile.merged").rows] == [8]
    assert [r.seq for r in audit.search(action="profile.*").rows] == list(range(8, 0, -1))
    assert [r.seq for r in audit.search(target_id="p1").rows] == [8, 2]
    assert [r.seq for r in audit.search(since=late).rows] == [9, 8]
    assert [r.seq for r in audit.search(until=late).rows] == list(range(7, 0, -1))

    first = audit.search(action="profile.created", limit=3)
    assert [r.seq for r in first.rows] == [7, 6, 5] and first.next_before_seq == 5
    second = audit.search(action="profile.created", limit=3, before_seq=first.next_before_seq)
    assert [r.seq for r in second.rows] == [4, 3, 2] and second.next_before_seq == 2
    last = audit.search(action="profile.created", limit=3, before_seq=second.next_before_seq)
    assert [r.seq for r in last.rows] == [1] and last.next_before_seq is None


# --- the command line ------------------------------------------------------------------------


@pytest.fixture
def guard_restored() -> Iterator[None]:
    yield
    restore_guard()


@pytest.mark.django_db(transaction=True)
def test_cxm_audit_verify_and_search(guard_restored: None) -> None:
    from cxm.cli import app

    runner = CliRunner()
    write_rows(5)
    result = runner.invoke(app, ["audit", "verify", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["rows"] == 5 and report["head_seq"] == 5
    anchor = f"5:{report['head_hash']}"
    result = runner.invoke(app, ["audit", "verify", "--anchor", anchor], catch_exceptions=False)
    assert result.exit_code == 0 and "intact" in result.stdout

    found = runner.invoke(app, ["audit", "search", "--action", "profile.merged", "--json"],
                          catch_exceptions=False)
    assert found.exit_code == 0, found.output
    page = json.loads(found.stdout)
    assert [(r["seq"], r["action"], r["actor"]) for r in page["rows"]] == [
        (1, "profile.merged", "user:7")]
    assert page["next_before_seq"] is None

    drop_guard()
    execute(f"UPDATE {TABLE} SET target_id = 'x' WHERE seq = 3")
    result = runner.invoke(app, ["audit", "verify", "--json"], catch_exceptions=False)
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert (report["ok"], report["broken_seq"], report["problem"]) == (False, 3, "edited")
    result = runner.invoke(app, ["audit", "verify"], catch_exceptions=False)
    assert result.exit_code == 1 and "BROKEN at row 3 (edited)" in result.stdout
