"""The ``cxm`` command: keys and file import, run in-process on the test database."""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cxm.accounts import auth, keys
from cxm.accounts.models import ApiKey
from cxm.cli import app
from cxm.core.models import AuditLog
from cxm.identity.models import Profile
from cxm.ingest.models import Event, Outcome
from tests.helpers import identity_pairs, profile_of, revealed, trait

pytestmark = pytest.mark.django_db(transaction=True)

runner = CliRunner()


def run(*args: str, code: int = 0) -> Any:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == code, (result.stdout, result.stderr)
    return result


def run_json(*args: str) -> Any:
    return json.loads(run(*args, "--json").stdout)


def test_keys_create_prints_a_key_that_authenticates_with_its_scope() -> None:
    for scope in ("ingest", "read", "admin"):
        created = run_json("keys", "create", "--name", f"ci-{scope}", "--scope", scope)
        assert created["scope"] == scope and created["name"] == f"ci-{scope}"
        key = auth.authenticate(created["key"])
        assert key is not None and key.scope == scope
        assert key.prefix == created["prefix"] == keys.parse_prefix(created["key"])
    plain = run("keys", "create", "--name", "plain", "--scope", "ingest").stdout.strip()
    assert auth.authenticate(plain) is not None
    operator = f"cli:{getpass.getuser()}"
    assert AuditLog.objects.filter(action="api_key.created", actor=operator).count() == 4
    # the secret is stored only as a digest
    assert not ApiKey.objects.filter(digest=plain).exists()


def test_keys_create_rejects_a_bad_scope() -> None:
    result = run("keys", "create", "--name", "x", "--scope", "root", code=2)
    assert "scope" in result.stderr
    assert ApiKey.objects.count() == 0


def test_keys_list_and_revoke() -> None:
    created = run_json("keys", "create", "--name", "temp", "--scope", "read")
    listed = run_json("keys", "list")
    assert [(k["prefix"], k["name"], k["scope"], k["revoked"]) for k in listed] == [
        (created["prefix"], "temp", "read", False)]
    assert created["key"] not in json.dumps(listed)
    assert run_json("keys", "revoke", created["prefix"]) == {"prefix": created["prefix"],
                                                              "revoked": True}
    auth.clear_cache()
    assert auth.authenticate(created["key"]) is None
    assert run_json("keys", "list")[0]["revoked"] is True
    run("keys", "revoke", "nosuchkey", code=2)


JSONL_LINES = [
    {"type": "identify", "userId": "u1", "messageId": "j-1",
     "traits": {"email": "Ann@Example.com", "name": "Ann"}},
    {"type": "track", "userId": "u1", "event": "Order Completed", "messageId": "j-2",
     "timestamp": "2025-01-01T10:00:00Z"},
    None,  # a malformed line
    {"type": "track", "userId": "u1", "messageId": "j-4"},  # no event
    {"type": "page", "anonymousId": "a9", "name": "Home", "timestamp": "2025-01-02T10:00:00Z"},
    {"type": "track", "userId": "u1", "event": "Order Completed", "messageId": "j-2",
     "timestamp": "2025-01-01T10:00:00Z"},  # repeated in the file
]


def write_jsonl(path: Path) -> Path:
    with path.open("w") as out:
        for line in JSONL_LINES:
            out.write("{this is not json\n" if line is None else json.dumps(line) + "\n")
        out.write("\n")  # blank lines are skipped
    return path


def read_rejects(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_import_jsonl_with_bad_lines_reports_and_reruns_as_duplicates(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "events.jsonl")
    summary = run_json("import", str(source))
    assert (summary["total"], summary["accepted"], summary["duplicates"],
            summary["rejected"]) == (6, 3, 1, 2)
    assert summary["reasons"] == {"invalid_json": 1, "missing_event": 1}
    rejects_file = Path(summary["rejects_file"])
    assert rejects_file == tmp_path / "events.jsonl.rejects.jsonl"
    rejects = read_rejects(rejects_file)
    assert [(r["line"], r["code"]) for r in rejects] == [(3, "invalid_json"),
                                                         (4, "missing_event")]
    assert all(r["message"] for r in rejects)
    assert rejects[0]["input"].startswith("{this is not json")
    assert rejects[1]["input"]["messageId"] == "j-4"

    assert Event.objects.count() == 3
    assert set(Event.objects.values_list("source", flat=True)) == {"import:events.jsonl"}
    ann = profile_of("email", "ann@example.com")
    assert ann.event_count == 2
    assert trait(ann, "name") == "Ann"

    again = run_json("import", str(source))
    assert (again["total"], again["accepted"], again["rejected"]) == (6, 0, 2)
    assert Event.objects.count() == 3
    ann.refresh_from_db()
    assert ann.event_count == 2
    counts = {(o.outcome, o.reason): o.count for o in Outcome.objects.filter(
        source="import:events.jsonl")}
    assert counts[("accepted", "")] == 3
    assert counts[("rejected", "missing_event")] == 2


def test_import_counts_malformed_lines_in_outcomes(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "events.jsonl")
    run_json("import", str(source))
    counts = {(o.outcome, o.reason): o.count for o in Outcome.objects.all()}
    assert counts[("rejected", "invalid_json")] == 1
    assert counts[("rejected", "missing_event")] == 1


def test_rerunning_an_import_reports_every_line_as_a_duplicate(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "events.jsonl")
    run_json("import", str(source))
    again = run_json("import", str(source))
    assert (again["accepted"], again["duplicates"], again["rejected"]) == (0, 4, 2)
    counts = {(o.outcome, o.reason): o.count for o in Outcome.objects.all()}
    assert counts[("duplicate", "")] == 5


def test_import_human_output_has_a_summary(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "e.ndjson")
    result = run("import", str(source))
    assert "3 accepted" in result.stdout and "2 rejected" in result.stdout
    assert "invalid_json" in result.stdout and "missing_event" in result.stdout
    assert "e.ndjson.rejects.jsonl" in result.stdout.replace("\n", "")


def test_rerunning_an_import_of_untimed_lines_stores_nothing_twice(tmp_path: Path) -> None:
    source = tmp_path / "untimed.jsonl"
    source.write_text("\n".join(json.dumps({"type": "track", "userId": f"u{i}",
                                            "event": "Signed Up"}) for i in range(3)) + "\n")
    assert run_json("import", str(source))["accepted"] == 3
    again = run_json("import", str(source))
    assert again["accepted"] == 0 and again["duplicates"] == 3
    assert Event.objects.count() == 3


def write_csv(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join(["id,Email,full name,plan", *rows]) + "\n", encoding="utf-8")
    return path




def test_csv_import_with_a_mapping_creates_profiles_and_reruns_cleanly(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "crm.csv", [
        "c-1,Ann@Example.com,Ann Lee,gold",
        "c-2,bob@example.com,Bob Ray,",
        "c-3,,Cy,silver",
        "c-1,Ann@Example.com,Ann Lee,gold",  # an exact repeat row is a second row
    ])
    args = ["import", str(source), "--map", "id=userId", "--map", "Email=traits.email",
            "--map", "full name=traits.name", "--map", "plan=traits.plan"]
    summary = run_json(*args)
    assert (summary["total"], summary["accepted"], summary["rejected"]) == (4, 4, 0)
    assert Profile.objects.filter(merged_into__isnull=True).count() == 3
    ann = profile_of("user_id", "c-1")
    assert identity_pairs(ann) == {("user_id", "c-1"), ("email", "ann@example.com")}
    assert trait(ann, "name") == "Ann Lee"
    assert trait(ann, "plan") == "gold"
    assert ann.event_count == 2
    bob = profile_of("user_id", "c-2")
    assert "plan" not in bob.traits  # empty cells are not traits
    assert set(Event.objects.values_list("type", flat=True)) == {"identify"}

    again = run_json(*args)
    assert (again["accepted"], again["duplicates"]) == (0, 4)
    assert Event.objects.count() == 4
    ann.refresh_from_db()
    assert ann.event_count == 2

    # a longer version of the file stores only the new row
    longer = write_csv(tmp_path / "crm.csv", [
        "c-1,Ann@Example.com,Ann Lee,gold", "c-2,bob@example.com,Bob Ray,",
        "c-3,,Cy,silver", "c-1,Ann@Example.com,Ann Lee,gold", "c-4,dee@example.com,Dee,",
    ])
    third = run_json("import", str(longer), *args[2:])
    assert (third["accepted"], third["duplicates"]) == (1, 4)


def test_csv_track_import_via_cli(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "orders.csv", ["c-1,a@x.com,A,gold", ",,,"])
    summary = run_json("import", str(source), "--map", "id=userId", "--map",
                       "Email=context.traits.email", "--type", "track", "--event",
                       "Order Imported")
    assert (summary["accepted"], summary["rejected"]) == (1, 1)
    assert summary["reasons"] == {"missing_identifier": 1}
    rejects = read_rejects(Path(summary["rejects_file"]))
    assert rejects[0]["line"] == 3 and rejects[0]["code"] == "missing_identifier"
    event = Event.objects.get()
    assert (event.type, event.name, revealed(event)["userId"]) == (
        "track", "Order Imported", "c-1")


def test_csv_import_usage_errors(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "orders.csv", ["c-1,a@x.com,A,gold"])
    result = run("import", str(source), "--map", "nope=userId", code=2)
    assert "nope" in result.stderr
    run("import", str(source), code=2)  # a CSV needs a mapping
    run("import", str(source), "--map", "broken", code=2)
    other = tmp_path / "data.xml"
    other.write_text("<x/>")
    run("import", str(other), code=2)
    assert Event.objects.count() == 0


def test_createuser_with_a_role_is_audited_as_the_operator() -> None:
    from django.contrib.auth import get_user_model

    from cxm.accounts import principals

    created = run_json("createuser", "ana", "--password", "a-long-password-1", "--role",
                       "analyst")
    assert (created["username"], created["role"]) == ("ana", "analyst")
    user = get_user_model().objects.get(username="ana")
    assert principals.role_of(user) == "analyst" and user.check_password("a-long-password-1")
    row = AuditLog.objects.get(action="user.created")
    assert row.actor == f"cli:{getpass.getuser()}"
    assert row.changes == {"username": "ana", "role": "analyst"}
    assert "a-long-password-1" not in str(row.changes)
    # the default role is admin (the first user made on the server runs it)
    run("createuser", "root", "--password", "a-long-password-2")
    assert principals.role_of(get_user_model().objects.get(username="root")) == "admin"


def test_createuser_refuses_a_bad_role_a_weak_password_and_a_taken_name() -> None:
    from django.contrib.auth import get_user_model

    assert "role" in run("createuser", "x", "--password", "a-long-password-1", "--role",
                         "root", code=2).stderr
    assert "too short" in run("createuser", "x", "--password", "short", code=2).stderr
    run("createuser", "x", "--password", "a-long-password-1")
    assert "exists" in run("createuser", "X", "--password", "a-long-password-1",
                           code=2).stderr
    assert get_user_model().objects.count() == 1
