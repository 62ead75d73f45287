"""Hooks through which feature apps take part in platform-wide jobs without core importing them.

Each app registers, in its ``AppConfig.ready``, what it holds about a person (export), how to
remove it (erase) and how to re-encrypt its personal columns (key rotation). Core drives the
jobs; later apps subscribe — the layering of design §5.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Subject:
    """A person, as every profile id that was ever theirs (merged-away ones included)."""

    profile_ids: tuple[uuid.UUID, ...]


Exporter = Callable[[Subject], dict[str, Any]]
Eraser = Callable[[Subject], dict[str, int]]
Reencryptor = Callable[[Callable[[Any], Any], int], int]  # (rewrite, batch size) -> rows changed


@dataclass(frozen=True)
class PersonalDataStore:
    name: str
    export: Exporter
    erase: Eraser
    reencrypt: Reencryptor | None = None
    order: int = 100  # erasure order: dependants (higher) first


_stores: dict[str, PersonalDataStore] = {}


def register(store: PersonalDataStore) -> None:
    _stores[store.name] = store


def stores() -> list[PersonalDataStore]:
    return sorted(_stores.values(), key=lambda s: -s.order)
