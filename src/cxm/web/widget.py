"""The embeddable survey widget: ``/widget.js`` and its JSON endpoints under ``/w/v1/``.

A site embeds::

    <script src="https://cxm.example/widget.js" data-write-key="…" data-survey="<slug>"
            data-user-id="…" async></script>

and the script asks ``POST /w/v1/surveys/<slug>/ask`` whether this visitor should see the
survey now. The write key is an ingest key (``events.ingest``), the trust level of Segment's
browser write key: anyone can read it from the page. The visitor is resolved to a profile
through ``identity.queries``; an unknown visitor gets 204 (nothing to show). The contact
policy decides through ``feedback.actions.invite(channel="widget")``; a refusal is 204 too,
so the answer does not say which of the two it was. An open widget invitation for the same
person and survey is reused, so reloading the page neither creates invitations nor uses up
the person's contact budget.

``POST /w/v1/responses`` takes ``{token, answers, language}``; the token (signed, personal)
is the credential, as on the survey page, and ``feedback.actions.answer_invitation`` stores
the answers once.

CORS: answers carry ``Access-Control-Allow-Origin`` for the calling origin when it is
allowed (``CXM_WIDGET_ORIGINS``; empty = any origin), preflights are answered, and no cookies
are used (``credentials: "omit"``), so CSRF does not apply. Errors are JSON
``{"code": …, "message": …}`` with a 4xx status.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any

import orjson
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from cxm.accounts import auth as key_auth
from cxm.accounts import permissions, principals
from cxm.accounts.models import ApiKey
from cxm.core.audit import Actor
from cxm.core.clock import now
from cxm.core.errors import Conflict, CxmError, InvalidInput, NotFound
from cxm.feedback import actions as feedback_actions
from cxm.feedback import definition as survey_definition
from cxm.feedback import policy, tokens
from cxm.feedback import queries as feedback_queries
from cxm.feedback.models import Invitation, Survey
from cxm.identity import queries as identity_queries
from cxm.identity.models import Profile
from cxm.ingest.ratelimit import KeyLimiter
from cxm.web.access import public
from cxm.web.public_survey_views import ui_strings

logger = logging.getLogger(__name__)

SCRIPT = Path(__file__).resolve().parent / "static" / "cxm" / "widget.js"
SCRIPT_MAX_AGE = 300  # seconds; the ETag makes revalidation cheap
ASK_MAX_BYTES = 8 * 1024
RESPONSE_MAX_BYTES = 256 * 1024
# A refusal by the contact policy is recorded once a day per person and survey, not on
# every page view of a visitor who may not be asked.
SUPPRESSION_MEMORY = timedelta(hours=24)
# Per network address: a burst of 60 asks, then one a second; responses half that.
ask_limiter = KeyLimiter()
respond_limiter = KeyLimiter()
VISITOR_FIELDS = {"userId": "user_id", "email": "email", "anonymousId": "anonymous_id"}


class WidgetError(Exception):
    def __init__(self, status: int, code: str, message: str,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


# -- CORS and JSON ---------------------------------------------------------------------------


def origin_allowed(origin: str) -> bool:
    allowed = settings.CXM.widget_origins
    return not allowed or origin.rstrip("/").lower() in allowed


def _cors(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    origin = request.headers.get("Origin", "")
    response["Vary"] = "Origin"
    if origin and origin_allowed(origin):
        response["Access-Control-Allow-Origin"] = origin
        response["Access-Control-Allow-Methods"] = "POST, OPTIONS"
        response["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
        response["Access-Control-Max-Age"] = "600"
    response["Cache-Control"] = "no-store"
    return response


def _json(request: HttpRequest, status: int, body: dict[str, Any] | None = None,
          headers: dict[str, str] | None = None) -> HttpResponse:
    response = (HttpResponse(status=status) if body is None else
                HttpResponse(orjson.dumps(body), status=status,
                             content_type="application/json"))
    for header, value in (headers or {}).items():
        response[header] = value
    return _cors(request, response)


def _error(request: HttpRequest, error: WidgetError) -> HttpResponse:
    return _json(request, error.status, {"code": error.code, "message": error.message},
                 error.headers)


def _check_request(request: HttpRequest) -> HttpResponse | None:
    """The answer to a preflight, a wrong method or a refused origin; None to go on."""
    origin = request.headers.get("Origin", "")
    if origin and not origin_allowed(origin):
        return _error(request, WidgetError(
            403, "origin_not_allowed", f"the survey widget is not enabled for {origin[:100]}; "
            "add it to CXM_WIDGET_ORIGINS"))
    if request.method == "OPTIONS":
        return _json(request, 204)
    if request.method != "POST":
        return _error(request, WidgetError(405, "method_not_allowed", "use POST",
                                           {"Allow": "POST, OPTIONS"}))
    return None


def _body(request: HttpRequest, limit: int) -> dict[str, Any]:
    limit = min(limit, int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE or limit))
    declared = request.META.get("CONTENT_LENGTH") or ""
    too_big = WidgetError(413, "payload_too_large",
                          f"the request body is larger than {limit // 1024} KB, the limit")
    if declared.isdigit() and int(declared) > limit:
        raise too_big
    try:
        raw = request.body
    except RequestDataTooBig:
        raise too_big from None
    if len(raw) > limit:
        raise too_big
    try:
        data = orjson.loads(raw) if raw.strip() else None
    except orjson.JSONDecodeError:
        raise WidgetError(400, "invalid_json", "the request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise WidgetError(400, "invalid_json", "send a JSON object")
    return data


def _text(data: dict[str, Any], name: str, limit: int = 200) -> str:
    value = data.get(name)
    if value is None or value == "":
        return ""
    if not isinstance(value, str) or len(value) > limit:
        raise WidgetError(400, "invalid_field", f"{name}: a string of at most {limit} "
                          "characters")
    return value.strip()


def _throttle(limiter: KeyLimiter, request: HttpRequest, rate: float, burst: float) -> None:
    wait = limiter.take(str(request.META.get("REMOTE_ADDR") or "unknown"), 1, rate, burst)
    if wait:
        raise WidgetError(429, "rate_limited", f"too many requests; retry after {wait} s",
                          {"Retry-After": str(wait)})


# -- write keys ------------------------------------------------------------------------------


def _write_key(request: HttpRequest, data: dict[str, Any]) -> ApiKey:
    """An ingest key, as ``/v1/*`` takes it: HTTP Basic user, Bearer, or ``writeKey``."""
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    presented = ""
    if scheme.lower() == "basic" and credentials:
        try:
            presented = base64.b64decode(credentials.strip(), validate=True).decode() \
                .partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            raise WidgetError(401, "unauthorized", "the Authorization header is not valid "
                              "HTTP Basic") from None
    elif scheme.lower() == "bearer" and credentials:
        presented = credentials.strip()
    elif isinstance(data.get("writeKey"), str):
        presented = data["writeKey"]
    if not presented:
        raise WidgetError(401, "unauthorized", "no write key: set data-write-key on the "
                          "script tag")
    key = key_auth.authenticate(presented)
    if key is None:
        raise WidgetError(401, "unauthorized", "the write key is not valid, expired or "
                          "revoked")
    if not permissions.allows(principals.of_key(key), "events.ingest"):
        raise WidgetError(403, "forbidden", f"a {key.scope} key cannot be used by the "
                          "widget; use an ingest key (the site's write key)")
    return key


# -- the script ------------------------------------------------------------------------------


@cache
def _script() -> tuple[bytes, str]:
    content = SCRIPT.read_bytes()
    return content, '"' + hashlib.sha256(content).hexdigest()[:32] + '"'


@public
@csrf_exempt
def widget_script(request: HttpRequest) -> HttpResponse:
    if request.method not in {"GET", "HEAD"}:
        response = HttpResponse(status=405)
        response["Allow"] = "GET, HEAD"
        return response
    content, etag = _script()
    if etag in request.headers.get("If-None-Match", ""):
        response = HttpResponse(status=304)
    else:
        response = HttpResponse(content, content_type="text/javascript; charset=utf-8")
    response["ETag"] = etag
    response["Cache-Control"] = f"public, max-age={SCRIPT_MAX_AGE}"
    # Loaded by other sites' pages: allow that explicitly (and reading it with CORS).
    response["Access-Control-Allow-Origin"] = "*"
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response


# -- ask -------------------------------------------------------------------------------------


def _visitor(data: dict[str, Any]) -> Profile | None:
    """The visitor the customer's server vouched for: the first identifier given must come
    with ``userHash`` = HMAC-SHA256(widget secret, that identifier), checked before anything
    is looked up, so the public write key alone reveals nothing about who is a customer."""
    for name, kind in VISITOR_FIELDS.items():
        value = _text(data, name)
        if not value:
            continue
        if not tokens.visitor_hash_ok(value, _text(data, "userHash", 128)):
            raise WidgetError(403, "identity_not_verified",
                              f"send userHash (data-user-hash) with {name}: the HMAC-SHA256 of "
                              "it with the widget secret, made by your server "
                              "(`cxm widget secret`)")
        try:
            return identity_queries.by_identifier(kind, value)
        except NotFound:
            continue
        except InvalidInput as error:
            raise WidgetError(400, error.code, f"{name}: {error.message}") from None
    return None


def _languages(data: dict[str, Any], profile: Profile, request: HttpRequest) -> list[str]:
    wanted = []
    explicit = _text(data, "language", 20)
    if explicit:
        wanted.append(explicit)
    for key in ("language", "locale"):
        entry = profile.traits.get(key)
        if isinstance(entry, dict) and isinstance(entry.get("value"), str):
            wanted.append(entry["value"][:20])
    browser = data.get("languages")
    if isinstance(browser, list):
        wanted.extend(str(code)[:20] for code in browser[:10] if isinstance(code, str))
    wanted.extend(survey_definition.accept_language(
        request.headers.get("Accept-Language", "")[:500])[:10])
    return wanted


def _invitation_for(survey: Survey, profile: Profile, key: ApiKey) -> Invitation | None:
    """The person's open widget invitation, or a new one if the contact policy allows."""
    ids = identity_queries.subject_of(profile).profile_ids
    existing = feedback_queries.open_invitation(survey, ids, "widget", now())
    if existing is not None:
        return existing
    when = now()
    decision = policy.decide(
        feedback_queries.rules_for(survey), feedback_queries.contact_history(ids), at=when,
        channel=feedback_actions.CONSENT_CHANNEL["widget"], consent=profile.consent,
        survey_id=str(survey.id), touchpoint=survey.touchpoint)
    if not decision.allowed and feedback_queries.suppressed_since(
            survey, ids, "widget", when - SUPPRESSION_MEMORY):
        return None  # refused already today: nothing new to record
    invitation = feedback_actions.invite(survey=survey, profile_id=profile.id,
                                         channel="widget", actor=Actor(key.actor_label))
    return invitation if invitation.status == "sent" else None


@public
@csrf_exempt
def ask(request: HttpRequest, slug: str) -> HttpResponse:
    early = _check_request(request)
    if early is not None:
        return early
    try:
        _throttle(ask_limiter, request, 1.0, 60.0)
        data = _body(request, ASK_MAX_BYTES)
        key = _write_key(request, data)
        try:
            survey = feedback_queries.survey_by_name(slug)
        except NotFound:
            raise WidgetError(404, "survey_not_found", f"no survey {slug[:80]!r}; check "
                              "data-survey on the script tag") from None
        if survey.status != "active":
            return _json(request, 204)
        profile = _visitor(data)
        if profile is None:
            return _json(request, 204)
        try:
            invitation = _invitation_for(survey, profile, key)
        except Conflict:  # closed meanwhile
            return _json(request, 204)
        except InvalidInput as error:
            raise WidgetError(400, error.code, error.message) from None
        if invitation is None:
            return _json(request, 204)
        parsed = survey_definition.parse(survey.definition)
        language = survey_definition.pick_language(parsed, _languages(data, profile, request))
        local = survey_definition.localize(parsed, language, survey.name)
        words = ui_strings(local.language)
    except WidgetError as error:
        return _error(request, error)
    return _json(request, 200, {
        "token": tokens.token_for(invitation.nonce),
        "expires_at": invitation.expires_at.isoformat(),
        "survey": {"slug": survey.slug, **local.as_dict()},
        "labels": {name: words[name] for name in (
            "submit", "close", "sending", "failed", "required", "problem", "thanks",
            "nps_low", "nps_high", "csat_low", "csat_high", "ces_low", "ces_high")},
    })


# -- responses -------------------------------------------------------------------------------

_CONFLICT_STATUS = {"already_answered": 409, "link_expired": 410, "survey_closed": 410,
                    "invalid_link": 404}


@public
@csrf_exempt
def respond(request: HttpRequest) -> HttpResponse:
    early = _check_request(request)
    if early is not None:
        return early
    try:
        _throttle(respond_limiter, request, 0.5, 30.0)
        data = _body(request, RESPONSE_MAX_BYTES)
        token = _text(data, "token", 200)
        answers = data.get("answers")
        if not token:
            raise WidgetError(400, "invalid_field", "token: the invitation token from ask")
        if not isinstance(answers, dict):
            raise WidgetError(400, "invalid_field", "answers: an object of question id → "
                              "answer")
        language = _text(data, "language", 20)
        try:
            invitation = feedback_queries.invitation_by_token(token)
            parsed = survey_definition.parse(invitation.survey.definition)
            language = survey_definition.pick_language(parsed, [language] if language else [])
            feedback_actions.answer_invitation(token, answers, language=language)
        except InvalidInput as error:
            raise WidgetError(400, "invalid_answer", error.message) from None
        except Conflict as error:
            raise WidgetError(_CONFLICT_STATUS.get(error.code, 409), error.code,
                              error.message) from None
        except NotFound as error:
            raise WidgetError(404, "invalid_link", error.message) from None
        except CxmError as error:
            raise WidgetError(error.status if 400 <= error.status < 500 else 400, error.code,
                              error.message) from None
    except WidgetError as error:
        return _error(request, error)
    return _json(request, 201, {"status": "answered"})
