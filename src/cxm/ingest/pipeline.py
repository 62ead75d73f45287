"""Hooks through which later stages take part in ingest without ingest importing them.

The resolver runs inside the ingest transaction (a message is stored with its profile or not
at all); subscribers run after commit and must be cheap (enqueue work for the worker).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from cxm.core.audit import Actor
from cxm.ingest.spec import Message


@dataclass(frozen=True, slots=True)
class Resolution:
    profile_id: uuid.UUID
    identity_id: int | None


class Resolutions(list[Resolution]):
    """What a resolver may return instead of a plain list: ``finish`` (if set) is called in the
    same transaction right after the events are inserted, with the positions (in the resolved
    list) of the messages that were stored — so per-profile counters are written last, and
    only for events that were actually stored."""

    finish: Callable[[list[int]], None] | None = None


class RetryBatch(Exception):
    """Raised inside the ingest transaction when a concurrent batch changed what this one read
    (PostgreSQL, where batches run in parallel). Ingest rolls the transaction back and runs
    the batch again with ``hint`` in :data:`lock_hint` (what the resolver should lock first)."""

    def __init__(self, hint: Any):
        super().__init__("retry the batch")
        self.hint = hint


LOCK_ALL = "all"
# Set by ingest around each attempt: None on a first attempt (lock only what must be), a set of
# keys learnt from an earlier attempt, or LOCK_ALL (lock everything up front: the attempt
# cannot be retried, e.g. inside a caller's transaction, or it was retried too often).
lock_hint: ContextVar[Any] = ContextVar("cxm_ingest_lock_hint", default=LOCK_ALL)

Resolver = Callable[[Sequence[Message], Actor], list[Resolution]]
Preparer = Callable[[Sequence[Message]], None]
Subscriber = Callable[[list[int]], None]

Precompute = Callable[[Sequence[Message]], Any]

_resolver: Resolver | None = None
_preparer: Preparer | None = None
_precompute: Precompute | None = None
# What the precompute hook returned for the batch being resolved (set by ingest around it).
precomputed: ContextVar[Any] = ContextVar("cxm_ingest_precomputed", default=None)
_subscribers: list[Subscriber] = []


def register_resolver(resolver: Resolver, preparer: Preparer | None = None,
                      precompute: Precompute | None = None) -> None:
    """``preparer`` runs first in the transaction, before ingest checks for repeated
    messageIds: it takes the locks that serialise concurrent batches about the same people, so
    a repeat sent concurrently with its original is seen as one. One registration slot,
    filled in the identity app's ``AppConfig.ready``. ``precompute`` runs before the
    transaction (no lock held) on the same messages; what it returns is in :data:`precomputed`
    while the resolver runs."""
    global _resolver, _preparer, _precompute
    _resolver = resolver
    _preparer = preparer
    _precompute = precompute


def preparer() -> Preparer | None:
    return _preparer


def precompute() -> Precompute | None:
    """The registered precompute hook, or the resolver's own ``precompute`` attribute."""
    return _precompute or getattr(_resolver, "precompute", None)


def resolver() -> Resolver | None:
    return _resolver


def subscribe(subscriber: Subscriber) -> None:
    if subscriber not in _subscribers:
        _subscribers.append(subscriber)


def subscribers() -> list[Subscriber]:
    return list(_subscribers)
