"""Small helpers for posting Segment messages in tests."""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

from django.test import Client


def basic(key: str) -> dict[str, str]:
    token = base64.b64encode(f"{key}:".encode()).decode()
    return {"HTTP_AUTHORIZATION": f"Basic {token}"}


def bearer(key: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def post(client: Client, path: str, body: Any, key: str | None = None, *,
         compress: bool = False, raw: bytes | None = None, **headers: str) -> Any:
    data = raw if raw is not None else json.dumps(body).encode()
    extra: dict[str, str] = dict(basic(key)) if key else {}
    if compress:
        data = gzip.compress(data)
        extra["HTTP_CONTENT_ENCODING"] = "gzip"
    extra.update(headers)
    return client.post(path, data=data, content_type="application/json", **extra)
