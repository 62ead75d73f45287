from __future__ import annotations

from datetime import datetime

from ninja import Schema


class KeyIn(Schema):
    name: str
    scope: str
    expires_at: datetime | None = None
    default_channel: str = ""


class KeyOut(Schema):
    prefix: str
    name: str
    scope: str
    default_channel: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class NewKeyOut(KeyOut):
    key: str
