"""The one door personal data goes through on its way to and from storage.

- ``protect(value)`` → what is stored: an AES-GCM token (see :mod:`cxm.core.crypto`).
- ``reveal(stored)`` → the plaintext (values stored before encryption pass through unchanged).
- ``lookup_key(kind, normalized)`` → the keyed hash (blind index) identifiers are matched by.
- ``protect_payload`` / ``reveal_payload`` → the same for the personal parts of a stored
  Segment message (identifiers, traits, personal properties).

Nothing else in the code base reads or writes a personal column directly. With
``CXM_ENCRYPTION=off`` (development only; refused in production) everything is stored readable,
which exists to measure what encryption costs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from cxm.core import crypto

# Trait and property keys (Segment's reserved traits plus common variants) whose values are
# personal. Values under these keys are encrypted wherever they are stored.
PERSONAL_TRAITS = frozenset(
    {
        "email", "phone", "name", "firstName", "lastName", "first_name", "last_name",
        "address", "birthday", "username", "avatar", "title", "mobile", "phone_number",
        "street", "postalCode", "postal_code", "zip", "ip", "transcript", "transcript_excerpt",
        "comment", "message", "body", "text", "handle", "screen_name", "social_handle",
    }
)
# Properties are narrower: a product or page "name" or "title" is not personal.
PERSONAL_PROPERTIES = PERSONAL_TRAITS - {"name", "title", "avatar"}
# Message fields that identify a person: encrypted in stored payloads (the identity graph
# keeps their blind index).
PERSONAL_MESSAGE_FIELDS = ("userId", "anonymousId", "previousId")
# Marks a token whose plaintext is JSON (an object, list or number) rather than a string; the
# record-separator control character cannot start a value a person typed.
_JSON_MARK = "\x1ejson:"


def _enabled() -> bool:
    from django.conf import settings

    return bool(settings.CXM.encryption)


def protect(value: str) -> str:
    if not value or not _enabled() or crypto.is_encrypted(value):
        return value
    return crypto.encrypt(value)


def reveal(stored: str) -> str:
    if not stored or not crypto.is_encrypted(stored):
        return stored
    return crypto.decrypt(stored)


def protect_any(value: Any) -> Any:
    """Strings are encrypted as they are; objects and lists as their JSON."""
    if isinstance(value, str):
        return protect(value)
    if value is None or isinstance(value, bool) or not _enabled():
        return value
    return protect(_JSON_MARK + orjson.dumps(value).decode())


def reveal_any(value: Any) -> Any:
    if not isinstance(value, str) or not crypto.is_encrypted(value):
        return value
    plain = crypto.decrypt(value)
    if plain.startswith(_JSON_MARK):
        return orjson.loads(plain[len(_JSON_MARK):])
    return plain


def lookup_key(kind: str, normalized: str) -> str:
    """The value an identifier is indexed and matched by. The kind is not part of the hash, so a
    value can be searched for across every kind at once (the search box)."""
    if not _enabled():
        return normalized
    return crypto.blind_index("identifier", normalized)


def search_tokens(words: Iterable[str]) -> str:
    """Space-delimited blind tokens of lower-cased words, for exact-word search of encrypted
    names and emails; stored with a leading and trailing space so ``contains " t "`` works."""
    tokens = []
    for word in words:
        word = word.strip().lower()
        if word:
            tokens.append(crypto.search_token(word) if _enabled() else word)
    return (" " + " ".join(dict.fromkeys(tokens)) + " ") if tokens else ""


def is_personal_trait(key: str) -> bool:
    return key in PERSONAL_TRAITS


def _map_personal(data: dict[str, Any], fn: Any, keys: frozenset[str]) -> dict[str, Any]:
    return {k: fn(v) if k in keys else v for k, v in data.items()}


def _transform_payload(payload: dict[str, Any], fn: Any) -> dict[str, Any]:
    out = dict(payload)
    for field in PERSONAL_MESSAGE_FIELDS:
        if isinstance(out.get(field), str | int | float) and not isinstance(out[field], bool):
            out[field] = fn(out[field])
    if isinstance(out.get("traits"), dict):
        out["traits"] = _map_personal(out["traits"], fn, PERSONAL_TRAITS)
    if isinstance(out.get("properties"), dict):
        out["properties"] = _map_personal(out["properties"], fn, PERSONAL_PROPERTIES)
    context = out.get("context")
    if isinstance(context, dict):
        context = dict(context)
        if isinstance(context.get("traits"), dict):
            context["traits"] = _map_personal(context["traits"], fn, PERSONAL_TRAITS)
        if isinstance(context.get("externalIds"), list):
            context["externalIds"] = [
                {**e, "id": fn(e["id"])} if isinstance(e, dict) and "id" in e
                else e for e in context["externalIds"]
            ]
        if "ip" in context:
            context["ip"] = fn(context["ip"])
        out["context"] = context
    return out


def _encrypt_any(value: Any) -> Any:
    """``protect_any`` without the per-value settings check (the caller made it once)."""
    if isinstance(value, str):
        return value if not value or crypto.is_encrypted(value) else crypto.encrypt(value)
    if value is None or isinstance(value, bool):
        return value
    # Numbers too: a phone or a user id sent as a JSON number is as personal as a string.
    return crypto.encrypt(_JSON_MARK + orjson.dumps(value).decode())


def protect_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """A copy of a Segment message with its personal values encrypted."""
    if not _enabled():
        return payload
    return _transform_payload(payload, _encrypt_any)


def reveal_payload(payload: dict[str, Any]) -> dict[str, Any]:
    return _transform_payload(payload, reveal_any)


def mask(value: str) -> str:
    """A form safe for logs and low-privilege views: keeps shape, drops content."""
    if "@" in value:
        local, _, domain = value.partition("@")
        return f"{local[:1]}***@{domain}"
    return f"{value[:2]}***" if len(value) > 2 else "***"
