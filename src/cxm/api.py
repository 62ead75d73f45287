"""The REST API under ``/api/v1/``: routers from each app, one error shape for all."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from cxm.accounts.api import router as keys_router
from cxm.core.errors import CxmError
from cxm.feedback.api import router as feedback_router
from cxm.identity.api import router as profiles_router
from cxm.identity.privacy_api import router as privacy_router
from cxm.metrics.api import router as metrics_router

api = NinjaAPI(
    title="cxm API",
    version="1",
    description="Profiles, timelines and settings of the cxm platform. Authenticate with "
                "`Authorization: Bearer <key>`; create keys with `cxm keys create`.",
    urls_namespace="api-v1",
    docs_url="/docs",
)
api.add_router("", profiles_router)
api.add_router("", keys_router)
api.add_router("", privacy_router)
api.add_router("", metrics_router)
api.add_router("", feedback_router)


@api.exception_handler(CxmError)
def on_cxm_error(request: HttpRequest, error: CxmError) -> HttpResponse:
    return api.create_response(request, {"code": error.code, "message": error.message},
                               status=error.status)


@api.exception_handler(RequestDataTooBig)
def on_too_big(request: HttpRequest, error: RequestDataTooBig) -> HttpResponse:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return api.create_response(
        request, {"code": "payload_too_large",
                  "message": f"request body is over {limit} bytes, the limit"},
        status=413)


@api.exception_handler(AuthenticationError)
def on_auth_error(request: HttpRequest, error: AuthenticationError) -> HttpResponse:
    return api.create_response(
        request, {"code": "unauthorized",
                  "message": "send a valid API key as 'Authorization: Bearer <key>'"},
        status=401)


@api.exception_handler(HttpError)
def on_http_error(request: HttpRequest, error: HttpError) -> HttpResponse:
    codes = {403: "forbidden", 404: "not_found", 405: "method_not_allowed"}
    return api.create_response(
        request, {"code": codes.get(error.status_code, "error"), "message": str(error)},
        status=error.status_code)


@api.exception_handler(ValidationError)
def on_validation_error(request: HttpRequest, error: ValidationError) -> HttpResponse:
    problems = []
    for item in error.errors:
        where = ".".join(str(p) for p in item.get("loc", ()) if p not in {"body", "query"})
        problems.append(f"{where}: {item.get('msg', 'invalid')}" if where else
                        str(item.get("msg", "invalid")))
    return api.create_response(
        request, {"code": "invalid", "message": "; ".join(problems) or "invalid request",
                  "errors": error.errors},
        status=400)
