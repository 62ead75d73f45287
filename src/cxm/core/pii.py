"""The one door personal data goes through on its way to and from storage.

Callers store ``protect(value)`` and read ``reveal(stored)``; identifiers are looked up by
``lookup_key(kind, normalized)``. Today protection is the identity function, so the stored form
is readable. Field-level encryption (AES-GCM with a key from the settings) and a keyed-hash blind
index replace these bodies without touching any caller: that is why nothing else in the code base
may read or write a personal column directly.
"""

from __future__ import annotations

# Trait keys (Segment's reserved traits plus common variants) whose values are personal.
PERSONAL_TRAITS = frozenset(
    {
        "email", "phone", "name", "firstName", "lastName", "first_name", "last_name",
        "address", "birthday", "username", "avatar", "title",
    }
)


def protect(value: str) -> str:
    return value


def reveal(stored: str) -> str:
    return stored


def lookup_key(kind: str, normalized: str) -> str:
    """The value an identifier is indexed and matched by."""
    return normalized


def is_personal_trait(key: str) -> bool:
    return key in PERSONAL_TRAITS


def mask(value: str) -> str:
    """A form safe for logs: keeps shape, drops content."""
    if "@" in value:
        local, _, domain = value.partition("@")
        return f"{local[:1]}***@{domain}"
    return f"{value[:2]}***" if len(value) > 2 else "***"
