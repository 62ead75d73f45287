"""File import: JSONL and CSV readers, the mapping, and run_import on the real write path."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from cxm.core.audit import Actor
from cxm.identity.models import Identity, Profile
from cxm.ingest import importer
from cxm.ingest.importer import CsvMapping
from cxm.ingest.models import Event
from tests.helpers import profile_of, trait

CSV = "id,Email,full name,plan\nc-1,Ann@Example.com,Ann Lee,gold\nc-2,bob@x.com,Bob,\n" \
      "c-1,Ann@Example.com,Ann Lee,gold\n"
MAPPING = CsvMapping(columns={"id": "userId", "Email": "traits.email",
                              "full name": "traits.name", "plan": "traits.plan"})


def test_read_jsonl_numbers_lines_and_marks_bad_ones() -> None:
    stream = io.BytesIO(b'{"a": 1}\n\n{broken\n  \n[1]\n')
    lines = list(importer.read_jsonl(stream))
    assert [line.number for line in lines] == [1, 3, 5]
    first = dict(lines[0].raw)
    assert first.pop("messageId").startswith("jsonl-")  # derived from content, stable on re-runs
    assert first == {"a": 1}
    assert next(importer.read_jsonl(io.BytesIO(b'{"a": 1}\n'))).raw == lines[0].raw
    bad = lines[1].raw
    assert getattr(bad, "code", None) == "invalid_json"
    assert lines[1].text.startswith("{broken")
    assert lines[2].raw == [1]


def test_map_row_builds_nested_messages_and_skips_empty_cells() -> None:
    mapping = CsvMapping(columns={"id": "userId", "mail": "traits.email",
                                  "city": "context.traits.address.city", "n": "properties.n"},
                         message_type="track", event="Imported")
    message = importer.map_row({"id": " c-1 ", "mail": "a@x.com", "city": "Oslo", "n": ""},
                               mapping)
    assert message == {"type": "track", "event": "Imported", "userId": "c-1",
                       "traits": {"email": "a@x.com"},
                       "context": {"traits": {"address": {"city": "Oslo"}}}}


def test_read_csv_gives_stable_ids_per_row_and_repeat() -> None:
    first = list(importer.read_csv(io.BytesIO(CSV.encode("utf-8-sig")), MAPPING))
    second = list(importer.read_csv(io.BytesIO(CSV.encode()), MAPPING))
    assert [line.number for line in first] == [2, 3, 4]
    ids = [line.raw["messageId"] for line in first]
    assert ids == [line.raw["messageId"] for line in second]
    assert len(set(ids)) == 3  # the repeated row is a second, distinct row
    assert ids[0].rsplit("-", 1)[0] == ids[2].rsplit("-", 1)[0]
    assert first[0].raw["traits"] == {"email": "Ann@Example.com", "name": "Ann Lee",
                                      "plan": "gold"}


def test_read_csv_names_missing_columns() -> None:
    mapping = CsvMapping(columns={"nope": "userId", "id": "userId"})
    with pytest.raises(ValueError, match="nope"):
        list(importer.read_csv(io.BytesIO(CSV.encode()), mapping))


def test_file_kind() -> None:
    assert importer.file_kind(Path("a.JSONL")) == "jsonl"
    assert importer.file_kind(Path("a.ndjson")) == "jsonl"
    assert importer.file_kind(Path("a.csv")) == "csv"
    with pytest.raises(ValueError, match="xlsx"):
        importer.file_kind(Path("a.xlsx"))


@pytest.mark.django_db
def test_run_import_of_csv_creates_profiles_once(tmp_path: Path) -> None:
    def run() -> importer.ImportSummary:
        return importer.run_import(
            importer.read_csv(io.BytesIO(CSV.encode()), MAPPING), actor=Actor("cli:test"),
            source="import:crm.csv", rejects_path=tmp_path / "rejects.jsonl", chunk_size=2)

    summary = run()
    assert (summary.total, summary.accepted, summary.duplicates, summary.rejected) == (3, 3, 0, 0)
    assert summary.rejects_file is None and not (tmp_path / "rejects.jsonl").exists()
    ann = profile_of("email", "ann@example.com")
    assert trait(ann, "name") == "Ann Lee" and ann.event_count == 2
    assert Profile.objects.filter(merged_into__isnull=True).count() == 2
    again = run()
    assert (again.total, again.accepted, again.rejected) == (3, 0, 0)
    assert Event.objects.count() == 3
    ann.refresh_from_db()
    assert ann.event_count == 2


@pytest.mark.django_db
def test_run_import_reports_progress_and_rejects_across_chunks(tmp_path: Path) -> None:
    lines = [json.dumps({"type": "track", "userId": "u", "event": "E", "messageId": f"m{i}"})
             for i in range(7)]
    lines.insert(3, json.dumps({"type": "track", "userId": "u", "messageId": "bad"}))
    lines.insert(6, "nope")
    data = ("\n".join(lines) + "\n").encode()
    seen: list[int] = []
    summary = importer.run_import(importer.read_jsonl(io.BytesIO(data)), actor=Actor("t"),
                                  source="import:x", rejects_path=tmp_path / "r.jsonl",
                                  chunk_size=3, progress=seen.append)
    assert sum(seen) == 9 and len(seen) == 3
    assert (summary.total, summary.accepted, summary.rejected) == (9, 7, 2)
    rejects = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert [(r["line"], r["code"]) for r in rejects] == [(4, "missing_event"),
                                                         (7, "invalid_json")]
    assert summary.as_dict()["reasons"] == {"missing_event": 1, "invalid_json": 1}
    assert Event.objects.count() == 7
    assert Profile.objects.get().event_count == 7


# --- the import path stores what the HTTP path stores ------------------------------------------

def _story() -> list[dict[str, Any]]:
    """Two devices of one person browsing anonymously, signing up on one and logging in on
    the other (a merge of two stored profiles), an alias, a second person who shares nothing,
    trait and consent changes, a repeated messageId and an invalid message."""
    day = "2026-03-0{}T10:{:02d}:00.000Z"
    messages: list[dict[str, Any]] = []

    def add(n: int, **fields: Any) -> None:
        messages.append({"messageId": f"m-{len(messages)}",
                         "timestamp": day.format(1 + n // 60, n % 60), **fields})

    # Groups of four (the HTTP batches and import chunks below): the profiles that merge are
    # created in different groups, so which survives (the older) does not depend on ids.
    add(0, type="page", anonymousId="web-1", name="Home")
    add(1, type="track", anonymousId="web-1", event="Product Viewed",
        properties={"sku": "A1"})
    add(2, type="identify", anonymousId="web-1", userId="u-1",
        traits={"email": "Ann@Example.com", "name": "Ann Lee", "plan": "free"})
    add(3, type="identify", userId="u-2", traits={"email": "bob@example.com", "plan": "pro"},
        context={"consent": {"categoryPreferences": {"marketing": False}}})
    add(4, type="screen", anonymousId="app-1", name="Start", context={"os": {"name": "iOS"}})
    add(5, type="track", anonymousId="app-2", event="Opened")
    add(6, type="track", userId="u-1", event="Order Completed",
        properties={"revenue": 12.5}, context={"channel": "store"})
    add(7, type="track", userId="u-2", event="Ticket Created")
    add(8, type="identify", anonymousId="app-1", userId="u-1",
        traits={"phone": "+1 415 555 0100"})  # merges the stored app profile into Ann's
    add(9, type="alias", previousId="app-2", userId="u-1")  # and the other one
    add(10, type="track", userId="u-1", event="Email Opened")
    add(11, type="identify", userId="u-1", traits={"plan": "gold",
                                                   "consent": {"email": {"marketing": True}}})
    messages.append(dict(messages[6]))  # a repeat of m-6: stored once
    add(12, type="track", userId="u-2")  # no event name: rejected
    add(13, type="page", anonymousId="web-9", context={"traits": {"email": "bob@example.com"}})
    return messages


def _snapshot(audit_after: int = 0) -> dict[str, Any]:
    """The stored state with everything random (profile ids, nonces, receipt times, the
    source label) left out: profiles named by their identities. Audit rows cannot be deleted:
    only those after ``audit_after`` count."""
    from cxm.core import pii
    from cxm.core.models import AuditLog
    from cxm.identity.models import Merge
    from cxm.ingest.models import ProfileChannel

    names: dict[Any, tuple[Any, ...]] = {}
    for profile in Profile.objects.all():
        names[profile.id] = tuple(sorted((i.kind, pii.reveal(i.protected_value))
                                         for i in Identity.objects.filter(profile=profile)))
    for profile in Profile.objects.exclude(merged_into=None):
        names[profile.id] = ("merged into", names[profile.merged_into_id])

    def name_of(pid: Any) -> Any:
        return names.get(pid)

    def stamped(entries: dict[str, Any], value_key: str) -> dict[str, Any]:
        return {k: (pii.reveal_any(v[value_key]), v["at"]) for k, v in entries.items()}

    profiles = sorted((
        (name_of(p.id), p.merged_into_id is not None, p.event_count, p.first_seen, p.last_seen,
         sorted(stamped(p.traits, "value").items()), sorted(stamped(p.preferences,
                                                                     "value").items()),
         sorted(stamped(p.consent, "granted").items()),
         pii.reveal(p.display_name), pii.reveal(p.email), pii.reveal(p.phone), p.search_index,
         sorted((c.channel, c.count) for c in ProfileChannel.objects.filter(profile_id=p.id)))
        for p in Profile.objects.all()), key=repr)
    events = sorted((
        (e.message_id, e.type, e.name, e.channel, e.timestamp, name_of(e.profile_id),
         orjson.dumps(pii.reveal_payload(e.payload), option=orjson.OPT_SORT_KEYS))
        for e in Event.objects.all()), key=repr)
    merges = sorted(((name_of(m.survivor_id), name_of(m.merged_id), sorted(m.reason.items()),
                      len(m.moved_identity_ids)) for m in Merge.objects.all()), key=repr)
    rows = AuditLog.objects.filter(seq__gt=audit_after)
    audit = sorted((a.action, orjson.dumps({k: v for k, v in a.changes.items() if k != "merged"},
                                           option=orjson.OPT_SORT_KEYS))  # "merged": an id
                   for a in rows.filter(action__startswith="profile.")
                   | rows.filter(action__startswith="identity."))
    return {"profiles": profiles, "events": events, "merges": merges, "audit": audit}


def _clear() -> None:
    from cxm.identity.models import Merge
    from cxm.ingest.models import Outcome, ProfileChannel

    Merge.objects.all().delete()
    Event.objects.all().delete()
    ProfileChannel.objects.all().delete()
    Outcome.objects.all().delete()
    Identity.objects.all().delete()
    Profile.objects.all().delete()


@pytest.mark.django_db
@pytest.mark.parametrize("parallel", [False, True])
def test_import_stores_what_http_ingest_stores(tmp_path: Path, client: Any, ingest_key: str,
                                               parallel: bool) -> None:
    """The same messages, in the same groups (HTTP batches of 4, import chunks of 4), stored
    once through ``/v1/batch`` and once through ``run_import`` (in one process and with the
    preparing process), give the same profiles, merges, events, counters and audit actions."""
    from cxm.accounts import keys
    from cxm.core.models import AuditLog
    from tests.ingest.helpers import post

    story = _story()
    for start in range(0, len(story), 4):
        response = post(client, "/v1/batch", {"batch": story[start:start + 4]}, ingest_key)
        assert response.status_code == 200, response.content
    over_http = _snapshot()
    assert len(over_http["merges"]) == 2  # both app profiles, stored, merged into Ann's
    _clear()
    before = AuditLog.objects.order_by("-seq").values_list("seq", flat=True)[0]

    data = b"".join(orjson.dumps(m) + b"\n" for m in story)
    # The HTTP key's label as the actor, so that the traits' "source" is the same too.
    actor = Actor(f"key:{keys.parse_prefix(ingest_key)}")
    summary = importer.run_import(importer.read_jsonl(io.BytesIO(data)), actor=actor,
                                  source="import:story", rejects_path=tmp_path / "r.jsonl",
                                  chunk_size=4, parallel=parallel)
    assert (summary.total, summary.accepted, summary.duplicates, summary.rejected) == (
        len(story), len(story) - 2, 1, 1)
    assert _snapshot(before) == over_http
    again = importer.run_import(importer.read_jsonl(io.BytesIO(data)), actor=actor,
                                source="import:story", rejects_path=tmp_path / "r.jsonl",
                                chunk_size=4, parallel=parallel)
    assert (again.accepted, again.duplicates) == (0, len(story) - 1)
    assert _snapshot(before) == over_http
