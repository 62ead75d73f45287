"""Segment-compatible tracking endpoints (``/v1/track`` … ``/v1/batch``).

Plain Django views rather than Django Ninja: the wire format (gzip bodies, ``text/plain``
bodies from analytics.js, write key as Basic user or in the body, Segment's answers) is fixed
by the SDKs, and the hot path must not pay for a schema layer it cannot use.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import io
import logging
import zlib
from collections.abc import Callable
from typing import Any

import orjson
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from cxm.accounts import auth as key_auth
from cxm.accounts import permissions, principals
from cxm.accounts.models import ApiKey
from cxm.core.audit import Actor
from cxm.core.clock import now
from cxm.ingest import actions, ratelimit, spec

logger = logging.getLogger(__name__)

_CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, Content-Encoding",
    "Access-Control-Max-Age": "86400",
}


class RequestError(Exception):
    """A refused request; ``count`` messages are counted as rejected with ``code``."""

    def __init__(self, status: int, code: str, message: str, *, count: int = 1,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.count = count
        self.headers = headers or {}


def _json(status: int, body: dict[str, Any],
          headers: dict[str, str] | None = None) -> HttpResponse:
    response = HttpResponse(orjson.dumps(body), status=status, content_type="application/json")
    for header, value in {**_CORS, **(headers or {})}.items():
        response[header] = value
    return response


def _error(status: int, code: str, message: str,
           headers: dict[str, str] | None = None) -> HttpResponse:
    return _json(status, {"success": False, "code": code, "message": message}, headers)


def _read_body(request: HttpRequest, limit: int) -> bytes:
    declared = request.META.get("CONTENT_LENGTH")
    if declared and declared.isdigit() and int(declared) > limit * 4:
        raise RequestError(413, "payload_too_large",
                           f"request body is {int(declared)} bytes; the limit is {limit} bytes")
    body = request.body
    encoding = request.META.get("HTTP_CONTENT_ENCODING", "").strip().lower()
    if encoding in {"gzip", "x-gzip", "deflate"}:
        try:
            if encoding == "deflate":
                body = zlib.decompressobj().decompress(body, limit + 1)
            else:
                with gzip.GzipFile(fileobj=io.BytesIO(body)) as stream:
                    body = stream.read(limit + 1)  # never inflate past the limit (zip bombs)
        except (OSError, EOFError, zlib.error):
            raise RequestError(400, "invalid_encoding",
                               f"request body is not valid {encoding} data") from None
    elif encoding not in {"", "identity"}:
        raise RequestError(415, "unsupported_encoding",
                           f"Content-Encoding {encoding!r} is not supported; use gzip")
    if len(body) > limit:
        raise RequestError(413, "payload_too_large",
                           f"request body is over {limit} bytes ({limit // 1024} KB), the limit")
    return body


def _parse(body: bytes) -> Any:
    if not body.strip():
        raise RequestError(400, "invalid_json", "request body is empty; send a JSON object")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise RequestError(400, "invalid_json",
                           f"request body is not valid JSON: {error}") from None


def _presented_key(request: HttpRequest, data: Any) -> str | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "basic" and credentials:
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise RequestError(401, "unauthorized",
                               "Authorization header is not valid HTTP Basic") from None
        return decoded.partition(":")[0]
    if scheme.lower() == "bearer" and credentials:
        return credentials.strip()
    if isinstance(data, dict) and isinstance(data.get("writeKey"), str):
        return str(data["writeKey"])
    return None


def _authenticate(request: HttpRequest, data: Any) -> ApiKey:
    presented = _presented_key(request, data)
    if not presented:
        raise RequestError(401, "unauthorized", "no write key: send it as the HTTP Basic user "
                                                "name or as writeKey in the body")
    key = key_auth.authenticate(presented)
    if key is None:
        raise RequestError(401, "unauthorized", "write key is not valid, expired or revoked")
    if not permissions.allows(principals.of_key(key), "events.ingest"):
        raise RequestError(403, "forbidden", f"a {key.scope} key cannot ingest; use an "
                                             "ingest key")
    return key


def _throttle(key: ApiKey, data: Any, is_batch: bool) -> None:
    """The key's token bucket (``CXM_INGEST_RATE_LIMIT`` events a second, per process)."""
    cfg = settings.CXM
    batch = data.get("batch") if is_batch and isinstance(data, dict) else None
    cost = max(1, len(batch)) if isinstance(batch, list) else 1
    wait = ratelimit.limiter.take(key.prefix, cost, cfg.ingest_rate_limit,
                                  cfg.ingest_rate_burst)
    if wait:
        raise RequestError(
            429, "rate_limited",
            f"this key is over its limit of {cfg.ingest_rate_limit:g} events a second; "
            f"retry after {wait} s (the SDKs do so by themselves)",
            count=cost, headers={"Retry-After": str(wait)})


def _handle(request: HttpRequest, forced_type: str | None) -> HttpResponse:
    if request.method == "OPTIONS":
        response = HttpResponse(status=204)
        for header, value in _CORS.items():
            response[header] = value
        return response
    if request.method != "POST":
        return _error(405, "method_not_allowed", "use POST")
    cfg = settings.CXM
    is_batch = forced_type is None
    limit = cfg.max_batch_bytes if is_batch else cfg.max_message_bytes
    received_at = now()
    try:
        data = _parse(_read_body(request, limit))
        key = _authenticate(request, data)
        _throttle(key, data, is_batch)
        if not isinstance(data, dict):
            raise RequestError(400, "invalid_message", "request body must be a JSON object")
        # No IP on ingest audit rows: behind a browser SDK it is the end customer's address,
        # personal data that must not sit in an append-only log.
        actor = Actor(key.actor_label)
        source = key.actor_label
        if is_batch:
            batch = data.get("batch")
            if not isinstance(batch, list):
                raise RequestError(400, "invalid_batch", "batch must be a list of messages")
            if not batch:
                raise RequestError(400, "invalid_batch", "batch is empty")
            try:
                batch_sent_at = spec.parse_time(data.get("sentAt"), "sentAt")
            except spec.SpecError as error:
                raise RequestError(400, error.code, error.message) from None
            # A batch's shared context and integrations apply to each message (Segment spec).
            shared_context = data.get("context")
            if isinstance(shared_context, dict):
                batch = [
                    {**m, "context": {**shared_context, **(m.get("context") or {})}}
                    if isinstance(m, dict) and isinstance(m.get("context", {}), dict) else m
                    for m in batch
                ]
            result = actions.ingest(
                batch, actor=actor, source=source, received_at=received_at,
                batch_sent_at=batch_sent_at, default_channel=key.default_channel,
            )
            if result.rejected and not result.accepted and not result.duplicates:
                first = result.rejected[0]
                return _json(400, {
                    "success": False, "code": first.code,
                    "message": f"no message was accepted; first problem: {first.message}",
                    "accepted": 0, "duplicates": 0,
                    "rejected": [r.as_dict() for r in result.rejected],
                })
            return _json(200, {
                "success": True, "accepted": result.accepted, "duplicates": result.duplicates,
                "rejected": [r.as_dict() for r in result.rejected],
            })
        result = actions.ingest(
            [data], actor=actor, source=source, received_at=received_at,
            forced_type=forced_type, default_channel=key.default_channel,
        )
        if result.rejected:
            first = result.rejected[0]
            return _error(400, first.code, first.message)
        return _json(200, {"success": True, "accepted": result.accepted,
                           "duplicates": result.duplicates})
    except RequestError as error:
        actions.add_outcomes("http", received_at.date(),
                             [(("rejected", error.code), error.count)])
        return _error(error.status, error.code, error.message, error.headers)


def _endpoint(forced_type: str | None) -> Callable[[HttpRequest], HttpResponse]:
    @csrf_exempt
    def view(request: HttpRequest) -> HttpResponse:
        return _handle(request, forced_type)

    view.__name__ = f"ingest_{forced_type or 'batch'}"
    return view


track = _endpoint("track")
identify = _endpoint("identify")
page = _endpoint("page")
screen = _endpoint("screen")
group = _endpoint("group")
alias = _endpoint("alias")
batch = _endpoint(None)
