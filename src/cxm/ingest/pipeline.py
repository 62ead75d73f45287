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
Subscriber = Callable[[list[int]], None]

_resolver: Resolver | None = None
_subscribers: list[Subscriber] = []


def register_resolver(resolver: Resolver) -> None:
    global _resolver  # noqa: PLW0603 - a single registration slot set in AppConfig.ready
    _resolver = resolver


def resolver() -> Resolver | None:
    return _resolver


def subscribe(subscriber: Subscriber) -> None:
    if subscriber not in _subscribers:
        _subscribers.append(subscriber)


def subscribers() -> list[Subscriber]:
    return list(_subscribers)
