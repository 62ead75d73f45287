"""API keys: format, digests, scopes, authentication, actions, audit and the REST endpoints."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.test import Client

from cxm.accounts import actions, auth, keys
from cxm.accounts.models import ApiKey
from cxm.core.audit import Actor
from cxm.core.clock import now
from cxm.core.errors import InvalidInput, NotFound
from cxm.core.models import AuditLog


def bearer(key: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


# --- pure ------------------------------------------------------------------------------------


def test_generated_keys_have_a_prefix_and_a_sha256_digest() -> None:
    new = keys.generate()
    assert new.plaintext.startswith(f"cxm_{new.prefix}_")
    assert len(new.prefix) == keys.PREFIX_LEN
    assert new.digest == hashlib.sha256(new.plaintext.encode()).hexdigest()
    assert keys.parse_prefix(new.plaintext) == new.prefix
    assert keys.matches(new.plaintext, new.digest)
    assert not keys.matches(new.plaintext + "x", new.digest)
    assert keys.generate().plaintext != new.plaintext


@pytest.mark.parametrize("bad", ["", "cxm", "cxm_short_x", "abc_0123456789_x", "cxm_0123456789",
                                 "cxm_0123456789_a_b"])
def test_parse_prefix_rejects_other_shapes(bad: str) -> None:
    assert keys.parse_prefix(bad) is None


def test_scopes_are_the_permission_matrix_key_entries() -> None:
    from cxm.accounts import permissions

    assert {f"key:{scope}" for scope in keys.SCOPES} <= set(permissions.MATRIX)


# --- actions and authentication --------------------------------------------------------------


@pytest.mark.django_db
def test_create_key_stores_only_the_digest_and_audits() -> None:
    key, plaintext = actions.create_api_key(name=" ci ", scope="read", actor=Actor("user:1"),
                                            default_channel="store")
    row = ApiKey.objects.get(pk=key.pk)
    assert row.name == "ci" and row.scope == "read" and row.default_channel == "store"
    assert row.digest == keys.digest(plaintext)
    assert plaintext not in {row.name, row.prefix, row.digest}
    assert auth.authenticate(plaintext) == row
    audit = AuditLog.objects.get(action="api_key.created")
    assert (audit.actor, audit.target_id, audit.changes) == (
        "user:1", key.prefix, {"name": "ci", "scope": "read"})
    assert plaintext not in str(audit.changes)


@pytest.mark.django_db
@pytest.mark.parametrize(("kwargs", "code"), [
    ({"name": " ", "scope": "read"}, "key_name_required"),
    ({"name": "x", "scope": "write"}, "key_scope"),
    ({"name": "x", "scope": "ingest", "default_channel": "fax"}, "key_channel"),
])
def test_create_key_validation(kwargs: dict, code: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        actions.create_api_key(actor=Actor("test"), **kwargs)
    assert caught.value.code == code
    assert not ApiKey.objects.exists()


@pytest.mark.django_db
def test_authenticate_rejects_wrong_revoked_and_expired_keys() -> None:
    key, plaintext = actions.create_api_key(name="k", scope="ingest", actor=Actor("t"))
    assert auth.authenticate(plaintext) is not None
    assert auth.authenticate(None) is None
    assert auth.authenticate("") is None
    assert auth.authenticate("garbage") is None
    wrong_secret = plaintext[:-1] + ("A" if plaintext[-1] != "A" else "B")
    assert auth.authenticate(wrong_secret) is None
    assert auth.authenticate(f"  {plaintext}  ") is not None  # surrounding space is ignored

    actions.revoke_api_key(prefix=key.prefix, actor=Actor("t"))
    auth.clear_cache()
    assert auth.authenticate(plaintext) is None
    assert AuditLog.objects.filter(action="api_key.revoked", target_id=key.prefix).count() == 1
    actions.revoke_api_key(prefix=key.prefix, actor=Actor("t"))  # idempotent
    assert AuditLog.objects.filter(action="api_key.revoked").count() == 1
    with pytest.raises(NotFound):
        actions.revoke_api_key(prefix="nope", actor=Actor("t"))

    _, expired = actions.create_api_key(name="old", scope="read", actor=Actor("t"),
                                        expires_at=now() - timedelta(seconds=1))
    assert auth.authenticate(expired) is None
    _, fresh = actions.create_api_key(name="new", scope="read", actor=Actor("t"),
                                      expires_at=now() + timedelta(days=1))
    assert auth.authenticate(fresh) is not None


@pytest.mark.django_db
def test_a_cached_key_still_expires_on_time() -> None:
    _, plaintext = actions.create_api_key(name="k", scope="read", actor=Actor("t"),
                                          expires_at=now() + timedelta(milliseconds=300))
    assert auth.authenticate(plaintext) is not None  # now cached for a few seconds
    time.sleep(0.4)
    assert auth.authenticate(plaintext) is None  # expiry is checked on every call


# --- REST endpoints --------------------------------------------------------------------------


@pytest.mark.django_db
def test_admin_creates_a_key_over_the_api(client: Client, admin_key: str) -> None:
    response = client.post("/api/v1/keys", {"name": "pos", "scope": "ingest",
                                            "default_channel": "store"},
                           content_type="application/json", **bearer(admin_key))
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["scope"] == "ingest" and body["default_channel"] == "store"
    assert auth.authenticate(body["key"]) is not None
    audit = AuditLog.objects.filter(action="api_key.created", target_id=body["prefix"]).get()
    assert audit.actor.startswith("key:")


@pytest.mark.django_db
def test_bad_key_requests_over_the_api_get_400(client: Client, admin_key: str) -> None:
    bad = client.post("/api/v1/keys", {"name": "x", "scope": "root"},
                      content_type="application/json", **bearer(admin_key))
    assert bad.status_code == 400 and bad.json()["code"] == "key_scope"
    missing = client.post("/api/v1/keys", {"scope": "read"}, content_type="application/json",
                          **bearer(admin_key))
    assert missing.status_code == 400 and "name" in missing.json()["message"]
    assert ApiKey.objects.count() == 1


@pytest.mark.django_db
def test_admin_lists_and_revokes_keys_over_the_api(
    client: Client, admin_key: str, make_key: Callable[..., str]
) -> None:
    new_key = make_key("ingest", name="pos", channel="store")
    prefix = keys.parse_prefix(new_key)
    listed = client.get("/api/v1/keys", **bearer(admin_key)).json()
    mine = next(k for k in listed if k["prefix"] == prefix)
    assert mine["scope"] == "ingest" and mine["default_channel"] == "store"
    assert mine["revoked_at"] is None
    assert all("key" not in k and "digest" not in k for k in listed)
    assert new_key not in str(listed)

    revoked = client.delete(f"/api/v1/keys/{prefix}", **bearer(admin_key))
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    auth.clear_cache()
    assert auth.authenticate(new_key) is None
    missing = client.delete("/api/v1/keys/nope", **bearer(admin_key))
    assert missing.status_code == 404 and missing.json()["code"] == "key_not_found"
    audit = AuditLog.objects.get(action="api_key.revoked", target_id=prefix)
    assert audit.actor == f"key:{keys.parse_prefix(admin_key)}"


@pytest.mark.django_db
def test_key_endpoints_need_an_admin_key(client: Client, make_key: Callable[..., str]) -> None:
    for scope in ("ingest", "read"):
        key = make_key(scope)
        assert client.get("/api/v1/keys", **bearer(key)).status_code == 403
        response = client.post("/api/v1/keys", {"name": "x", "scope": "admin"},
                               content_type="application/json", **bearer(key))
        assert response.status_code == 403
        assert response.json()["code"] == "forbidden"
    assert client.get("/api/v1/keys").status_code == 401
    assert client.get("/api/v1/keys", **bearer("cxm_0123456789_nope")).status_code == 401
    assert ApiKey.objects.filter(scope="admin").count() == 0
