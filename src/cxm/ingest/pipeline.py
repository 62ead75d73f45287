"""Hooks through which later stages take part in ingest without ingest importing them.

The resolver runs inside the ingest transaction (a message is stored with its profile or not
at all); subscribers run after commit and must be cheap (enqueue work for the worker).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cxm.core.audit import Actor
from cxm.ingest.spec import Message


@dataclass(frozen=True, slots=True)
class Resolution:
    profile_id: uuid.UUID
    identity_id: int | None


Resolver = Callable[[Sequence[Message], Actor], list[Resolution]]
Preparer = Callable[[Sequence[Message]], None]
Subscriber = Callable[[list[int]], None]

_resolver: Resolver | None = None
_preparer: Preparer | None = None
_subscribers: list[Subscriber] = []


def register_resolver(resolver: Resolver, preparer: Preparer | None = None) -> None:
    """``preparer`` runs first in the transaction, before ingest checks for repeated
    messageIds: it takes the locks that serialise concurrent batches about the same people, so
    a repeat sent concurrently with its original is seen as one. One registration slot,
    filled in the identity app's ``AppConfig.ready``."""
    global _resolver, _preparer
    _resolver = resolver
    _preparer = preparer


def preparer() -> Preparer | None:
    return _preparer


def resolver() -> Resolver | None:
    return _resolver


def subscribe(subscriber: Subscriber) -> None:
    if subscriber not in _subscribers:
        _subscribers.append(subscriber)


def subscribers() -> list[Subscriber]:
    return list(_subscribers)
