"""Per-key token buckets for the ingest API (``CXM_INGEST_RATE_LIMIT`` events per second).

The buckets live in this process: with N web processes a key may send up to N times the rate
in all. That bounds a runaway client cheaply without a shared store on the hot path; a
cluster-wide limit belongs in the load balancer or a shared store (Redis) later.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class TokenBucket:
    """``rate`` tokens a second, at most ``capacity`` saved up (pure apart from the clock)."""

    rate: float
    capacity: float
    tokens: float
    stamp: float

    def take(self, cost: float, at: float) -> float:
        """Take ``cost`` tokens; returns 0 when taken, else the seconds to wait for them.
        A cost above the capacity needs a full bucket (so big batches pass at low rates)."""
        self.tokens = min(self.capacity, self.tokens + max(0.0, at - self.stamp) * self.rate)
        self.stamp = at
        cost = min(cost, self.capacity)
        if self.tokens >= cost:
            self.tokens -= cost
            return 0.0
        return (cost - self.tokens) / self.rate


class KeyLimiter:
    """One bucket per key, created full; thread-safe (gunicorn runs threads per process)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_keys: int = 10_000):
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()

    def take(self, key: str, cost: int, rate: float, burst: float) -> int:
        """0 when allowed, else the whole seconds to wait (for ``Retry-After``)."""
        if rate <= 0:
            return 0
        capacity = max(burst, 1.0)
        at = self._clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None or bucket.rate != rate or bucket.capacity != capacity:
                if len(self._buckets) >= self._max_keys:
                    self._buckets.clear()
                bucket = TokenBucket(rate, capacity, capacity, at)
                self._buckets[key] = bucket
            wait = bucket.take(cost, at)
        return 0 if wait <= 0 else max(1, math.ceil(wait))

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()


limiter = KeyLimiter()
