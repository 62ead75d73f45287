"""Personal survey links: ``<nonce>.<signature>``.

The nonce (128 random bits) finds the invitation; the signature (HMAC with the secret key,
Django's ``Signer``) lets a tampered or made-up token be refused without touching the database.
"""

from __future__ import annotations

import secrets

from django.core import signing

_SALT = "cxm.feedback.invitation"


def _signer() -> signing.Signer:
    return signing.Signer(salt=_SALT, sep=".")


def new_nonce() -> str:
    return secrets.token_hex(16)


def token_for(nonce: str) -> str:
    return _signer().sign(nonce)


def nonce_of(token: str) -> str | None:
    """The nonce of a genuine token, ``None`` for anything else."""
    if not isinstance(token, str) or len(token) > 200:
        return None
    try:
        nonce = _signer().unsign(token)
    except signing.BadSignature:
        return None
    if len(nonce) != 32 or any(c not in "0123456789abcdef" for c in nonce):
        return None
    return nonce
