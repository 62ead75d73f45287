"""Subject-access export, erasure that leaves no trace, and key rotation — end to end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from typer.testing import CliRunner

from cxm.cli import app
from cxm.core import crypto, privacy
from cxm.core.audit import Actor
from cxm.core.errors import NotFound
from cxm.core.models import AuditLog
from cxm.identity import queries
from cxm.identity.models import Identity, Profile
from cxm.ingest import actions as ingest
from cxm.ingest.models import Event

ANN = {
    "email": "ann.erasable@example.com", "phone": "+14155550199", "first": "Annabel",
    "last": "Quillfeather", "user": "user-ann-7731", "anon": "anon-ann-5520", "crm": "CRM-88412",
}
BOB = {"email": "bob.keeps@example.com", "user": "user-bob-1", "anon": "anon-bob-1"}


def _messages() -> list[dict[str, Any]]:
    return [
        {"type": "page", "anonymousId": ANN["anon"], "messageId": "p1",
         "timestamp": "2026-01-01T10:00:00Z", "name": "Home",
         "context": {"page": {"path": "/"}}},
        {"type": "identify", "anonymousId": ANN["anon"], "userId": ANN["user"], "messageId": "i1",
         "timestamp": "2026-01-01T10:05:00Z",
         "traits": {"email": ANN["email"], "phone": ANN["phone"], "firstName": ANN["first"],
                    "lastName": ANN["last"], "plan": "gold",
                    "consent": {"email": {"marketing": True}}}},
        {"type": "track", "userId": ANN["user"], "event": "Order Completed", "messageId": "t1",
         "timestamp": "2026-01-02T09:00:00Z",
         "properties": {"order_id": "o-1", "revenue": 42.5, "email": ANN["email"]}},
        {"type": "track", "event": "Ticket Created", "messageId": "c1",
         "timestamp": "2026-01-03T09:00:00Z",
         "context": {"externalIds": [{"id": ANN["crm"], "type": "crm_id"}],
                     "traits": {"email": ANN["email"].upper()}},
         "properties": {"subject": "Late parcel",
                        "transcript_excerpt": f"Hi, this is {ANN['first']} {ANN['last']}"}},
        {"type": "identify", "userId": BOB["user"], "anonymousId": BOB["anon"], "messageId": "b1",
         "timestamp": "2026-01-01T11:00:00Z", "traits": {"email": BOB["email"], "name": "Bob"}},
    ]


@pytest.fixture
def people(transactional_db: Any) -> Profile:
    result = ingest.ingest(_messages(), actor=Actor("test"), source="test")
    assert result.accepted == 5 and not result.rejected
    return queries.by_identifier("email", ANN["email"])


def _database_bytes() -> bytes:
    """Every byte the database holds: the SQLite file (and its WAL), or every PostgreSQL row."""
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        name = Path(connection.settings_dict["NAME"])
        blob = name.read_bytes()
        wal = name.with_name(name.name + "-wal")
        return blob + (wal.read_bytes() if wal.exists() else b"")
    parts = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f'SELECT t::text FROM "{table}" AS t')  # our own tables
            parts.extend(row[0] for row in cursor.fetchall())
    return "\n".join(parts).encode()


def _stored_tokens(profile: Profile) -> set[str]:
    """Every encrypted token and blind index stored for the person."""
    tokens = {i.value for i in Identity.objects.filter(profile=profile)}
    tokens |= {i.protected_value for i in Identity.objects.filter(profile=profile)}
    tokens |= {profile.display_name, profile.email, profile.phone}

    def walk(value: Any) -> None:
        if isinstance(value, str) and (value.startswith(crypto.PREFIX) or value.startswith("h:")):
            tokens.add(value)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(profile.traits)
    for payload in Event.objects.filter(profile_id=profile.id).values_list("payload", flat=True):
        walk(payload)
    return {t for t in tokens if t}


def test_export_holds_everything_in_plaintext(people: Profile) -> None:
    data = privacy.export(queries.subject_of(people), Actor("test"))
    text = json.dumps(data)
    for value in (ANN["email"], ANN["phone"], ANN["first"], ANN["user"], ANN["anon"], ANN["crm"]):
        assert value in text
    assert BOB["email"] not in text
    (profile,) = data["identity"]["profiles"]
    assert profile["email"] == ANN["email"]
    assert profile["traits"]["plan"]["value"] == "gold"
    kinds = {(i["kind"], i["value"]) for i in data["identity"]["identities"]}
    assert ("ext:crm_id", ANN["crm"]) in kinds and ("user_id", ANN["user"]) in kinds
    assert len(data["ingest"]["events"]) == 4
    order = next(e for e in data["ingest"]["events"] if e["name"] == "Order Completed")
    assert order["message"]["properties"]["email"] == ANN["email"]
    assert AuditLog.objects.filter(action="privacy.exported", target_id=str(people.id)).exists()


def test_erasure_leaves_no_trace(people: Profile) -> None:
    before = _database_bytes()
    tokens = _stored_tokens(people)
    assert tokens, "the person's data should be stored as tokens before erasure"
    assert all(t.encode() in before for t in tokens)
    plaintext = [ANN[k] for k in ("email", "phone", "first", "last", "user", "anon", "crm")]
    assert not [p for p in plaintext if p.encode() in before], "stored in the clear"
    survivor_id = people.id

    removed = privacy.erase(queries.subject_of(people), Actor("test"))

    assert removed["ingest.events"] == 4 and removed["identity.profiles"] == 1
    for kind, value in (("email", ANN["email"]), ("phone", ANN["phone"]),
                        ("user_id", ANN["user"]), ("anonymous_id", ANN["anon"]),
                        ("ext:crm_id", ANN["crm"])):
        with pytest.raises(NotFound):
            queries.by_identifier(kind, value)
    after = _database_bytes()
    left = [t for t in tokens if t.encode() in after]
    assert not left, f"{len(left)} stored values of the erased person remain"
    assert not [p for p in plaintext if p.encode() in after]
    # Bob is untouched, and the erasure is on record without personal values.
    bob = queries.by_identifier("email", BOB["email"])
    assert queries.reveal(bob.email) == BOB["email"]
    proof = AuditLog.objects.get(action="privacy.erased")
    assert proof.target_id == str(survivor_id)
    assert proof.changes["removed"]["ingest.events"] == 4
    assert ANN["email"] not in json.dumps(proof.changes)


def test_cli_export_and_erase(people: Profile, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "ann.json"
    result = runner.invoke(app, ["privacy", "export", "--email", ANN["email"].upper(),
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["identity"]["profiles"][0]["phone"] == ANN["phone"]
    result = runner.invoke(app, ["privacy", "erase", "--phone", "(415) 555-0199", "--yes",
                                 "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["removed"]["identity.identities"] == 5
    result = runner.invoke(app, ["privacy", "export", "--email", ANN["email"]])
    assert result.exit_code == 1
    assert "no profile" in result.output


def test_api_export_and_erase_need_their_permissions(people: Profile, read_key: str,
                                                     admin_key: str) -> None:
    client = Client()
    url = f"/api/v1/profiles/{people.id}"
    refused = client.get(f"{url}/export", HTTP_AUTHORIZATION=f"Bearer {read_key}")
    assert refused.status_code == 403
    assert ANN["email"] not in refused.content.decode()
    assert client.post(f"{url}/erase", HTTP_AUTHORIZATION=f"Bearer {read_key}").status_code == 403
    exported = client.get(f"{url}/export", HTTP_AUTHORIZATION=f"Bearer {admin_key}")
    assert exported.status_code == 200
    assert exported.json()["identity"]["profiles"][0]["email"] == ANN["email"]
    erased = client.post(f"{url}/erase", HTTP_AUTHORIZATION=f"Bearer {admin_key}")
    assert erased.status_code == 200, erased.content
    assert erased.json()["removed"]["ingest.events"] == 4
    gone = client.get(url, HTTP_AUTHORIZATION=f"Bearer {admin_key}")
    assert gone.status_code == 404


def test_erasing_a_merged_person_removes_every_profile_they_had(transactional_db: Any) -> None:
    ingest.ingest([
        {"type": "page", "anonymousId": "m-anon-1", "messageId": "m1", "name": "Home"},
        {"type": "identify", "userId": "m-user", "messageId": "m2",
         "traits": {"email": "merged.person@example.com"}},
    ], actor=Actor("test"), source="test")
    # A later identify links the two stored profiles: a merge.
    ingest.ingest([{"type": "identify", "userId": "m-user", "anonymousId": "m-anon-1",
                    "messageId": "m3"}], actor=Actor("test"), source="test")
    person = queries.by_identifier("email", "merged.person@example.com")
    subject = queries.subject_of(person)
    assert len(subject.profile_ids) == 2
    privacy.erase(subject, Actor("test"))
    assert not Profile.objects.filter(id__in=subject.profile_ids).exists()
    assert not Event.objects.exists()


def test_key_rotation_reencrypts_everything_and_keeps_lookups(people: Profile) -> None:
    old_key = crypto.keyring().current_id
    runner = CliRunner()
    result = runner.invoke(app, ["crypto", "rotate", "--json"])
    assert result.exit_code == 0, result.output
    new_key = json.loads(result.stdout)["current_key"]
    assert new_key != old_key
    tokens = _stored_tokens(queries.by_identifier("email", ANN["email"]))
    encrypted = [t for t in tokens if t.startswith(crypto.PREFIX)]
    assert encrypted and all(crypto.key_id_of(t) == new_key for t in encrypted)
    still = queries.by_identifier("phone", ANN["phone"])
    assert queries.reveal(still.email) == ANN["email"]
    page = queries.timeline(still, limit=10)
    assert any(e.payload.get("userId") == ANN["user"] for e in page.events)
    # The old key stays in the keyring (rows written by servers not yet restarted use it).
    assert old_key in crypto.keyring().keys
