"""Personal survey links: ``<nonce>.<signature>``.

The nonce (128 random bits) finds the invitation; the signature (HMAC with the secret key,
Django's ``Signer``) lets a tampered or made-up token be refused without touching the database.
"""

from __future__ import annotations

import hashlib
import hmac
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


# -- the widget's visitor identity -------------------------------------------------------------
# The widget's write key is public (it is in the page), so a visitor's identity must be vouched
# for by the customer's own server: it renders ``data-user-hash`` = HMAC-SHA256(widget secret,
# user id) next to the user id, the way Intercom and Zendesk verify identities. Without it,
# anyone with the key could answer, or use up the contact allowance, in a customer's name.

_WIDGET_SALT = b"cxm.feedback.widget-identity"


def widget_secret() -> str:
    """The secret the customer's server signs visitor ids with (``cxm widget secret``);
    derived from the platform's secret key, so it changes when that key changes."""
    from django.conf import settings

    return hmac.new(settings.SECRET_KEY.encode(), _WIDGET_SALT, hashlib.sha256).hexdigest()


def visitor_hash(value: str) -> str:
    return hmac.new(widget_secret().encode(), value.encode(), hashlib.sha256).hexdigest()


def visitor_hash_ok(value: str, given: str) -> bool:
    return isinstance(given, str) and hmac.compare_digest(visitor_hash(value), given.lower())
