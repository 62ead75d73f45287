"""Resolving a presented API key to its row, with a short in-process cache.

The cache keeps ingest from paying a database round trip per request; its few seconds of
lifetime bound how long a revoked key keeps working in a running process.
"""

from __future__ import annotations

import threading
import time

from cxm.accounts import keys
from cxm.accounts.models import ApiKey

_TTL_SECONDS = 5.0
_cache: dict[str, tuple[float, ApiKey | None]] = {}
_lock = threading.Lock()


def authenticate(plaintext: str | None) -> ApiKey | None:
    """The active key for this plaintext, or ``None``."""
    if not plaintext:
        return None
    plaintext = plaintext.strip()
    prefix = keys.parse_prefix(plaintext)
    if prefix is None:
        return None
    stamp = time.monotonic()
    with _lock:
        hit = _cache.get(plaintext)
    if hit is not None and stamp - hit[0] < _TTL_SECONDS:
        key = hit[1]
    else:
        found = ApiKey.objects.filter(prefix=prefix).first()
        key = found if found is not None and keys.matches(plaintext, found.digest) else None
        with _lock:
            if len(_cache) > 10_000:
                _cache.clear()
            _cache[plaintext] = (stamp, key)
    if key is None or not key.is_active:
        return None
    return key


def clear_cache() -> None:
    with _lock:
        _cache.clear()
