"""API key format and hashing (pure). What each scope may do is in ``accounts.permissions``.

Keys carry 190 bits of randomness, so a single fast SHA-256 is as strong as a slow password
hash here (no dictionary to attack) and keeps authentication off the ingest hot path's budget.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from dataclasses import dataclass

_ALPHABET = string.ascii_letters + string.digits
PREFIX_LEN = 10
SCOPES = ("ingest", "read", "admin")  # their permissions: accounts.permissions.MATRIX


@dataclass(frozen=True)
class NewKey:
    prefix: str
    plaintext: str
    digest: str


def generate() -> NewKey:
    prefix = "".join(secrets.choice(_ALPHABET) for _ in range(PREFIX_LEN))
    secret = "".join(secrets.choice(_ALPHABET) for _ in range(32))
    plaintext = f"cxm_{prefix}_{secret}"
    return NewKey(prefix=prefix, plaintext=plaintext, digest=digest(plaintext))


def digest(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def parse_prefix(plaintext: str) -> str | None:
    parts = plaintext.split("_")
    if len(parts) != 3 or parts[0] != "cxm" or len(parts[1]) != PREFIX_LEN:
        return None
    return parts[1]


def matches(plaintext: str, stored_digest: str) -> bool:
    return hmac.compare_digest(digest(plaintext), stored_digest)
