"""Read helpers for tests, going through the same read paths as the product.

Personal data is encrypted at rest (``cxm.core.pii``): ``Identity.value`` holds a blind index,
stored payloads hold AES-GCM tokens and personal traits are tokens too. Tests must not query
those columns for plaintext; they ask the way the API and the web UI do.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.db import connection

from cxm.core import pii
from cxm.identity import queries
from cxm.identity.models import Identity, Profile
from cxm.ingest.models import Event


def profile_of(kind: str, value: str) -> Profile:
    """The (canonical) profile an identifier belongs to, as ``GET /profiles/lookup`` finds it.
    Raises ``cxm.core.errors.NotFound`` when there is none."""
    return queries.by_identifier(kind, value)


def identity_owner(kind: str, value: str) -> uuid.UUID:
    """The profile id on the identifier's own row (not followed through merges), matched by
    its blind index exactly as ingest and ``by_identifier`` match it."""
    key = pii.lookup_key(kind, queries.normalize_identifier(kind, value))
    return Identity.objects.get(kind=kind, value=key).profile_id


def identity_pairs(profile: Profile | uuid.UUID) -> set[tuple[str, str]]:
    """``{(kind, plaintext value)}`` of the identifiers a profile owns (``queries.identities``)."""
    if not isinstance(profile, Profile):
        profile = Profile(id=profile)
    return {(identity.kind, identity.value) for identity in queries.identities(profile)}


def revealed(event: Event) -> dict[str, Any]:
    """The event's message as it was sent (personal values decrypted)."""
    assert isinstance(event.payload, dict), event.payload
    return pii.reveal_payload(event.payload)


def events_of_user(user_id: str) -> list[Event]:
    """Every stored event whose message has this ``userId``, with its payload revealed.

    A scan (fine for test-sized data): it does not depend on identity resolution, so an event
    filed under the wrong profile is still found, as the old ``Event.user_id`` column was."""
    found = []
    for event in Event.objects.order_by("id").iterator():
        payload = revealed(event)
        if payload.get("userId") == user_id:
            event.payload = payload
            found.append(event)
    return found


def trait(profile: Profile, key: str) -> Any:
    """A trait's plaintext value (``queries.revealed_traits``)."""
    return queries.revealed_traits(profile)[key]["value"]


THREADS = 8


def run_together(work: Callable[[int], Any], count: int = THREADS) -> list[Any]:
    """Run ``work(i)`` in ``count`` threads released at the same moment."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def target(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[index] = work(index)
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    assert not errors, errors
    return results


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def process_env(tmp_path: Path, name: str, *, drop: tuple[str, ...] = ()
                ) -> Iterator[dict[str, str]]:
    """Environment for a separate cxm process: a fresh data dir and, on PostgreSQL, a database
    of its own (``<name>_<random>``, dropped afterwards). Variables starting with ``drop`` (and
    pytest's own) are left out."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", *drop))}
    env["CXM_DATA_DIR"] = str(tmp_path / "data")
    env["DJANGO_SETTINGS_MODULE"] = "cxm.settings"
    url = os.environ.get("CXM_DATABASE_URL", "")
    if not url.startswith("postgres"):
        yield env
        return
    import psycopg

    database = f"{name}_{uuid.uuid4().hex[:10]}"
    parts = urlsplit(url)
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    env["CXM_DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{database}"))
    try:
        yield env
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
