"""File import: JSONL and CSV readers, the mapping, and run_import on the real write path."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from cxm.core.audit import Actor
from cxm.identity.models import Profile
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
