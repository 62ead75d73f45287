"""Who may open which page: the web side of ``cxm.accounts.permissions``.

Every view but the public ones (login, logout, health) carries ``@requires("<permission>")``:
an anonymous visitor is sent to the login page (an htmx request is told to load it instead of
having it swapped into a table), a signed-in user without the permission gets the 403 page.
Templates see the signed-in user's permissions as ``can`` (``{% if "keys.manage" in can %}``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase

from cxm.accounts import permissions, principals
from cxm.accounts.permissions import Principal

View = TypeVar("View", bound=Callable[..., HttpResponseBase])


def principal_of(request: HttpRequest) -> Principal:
    """The signed-in user as a principal, worked out once per request."""
    cached = getattr(request, "_cxm_principal", None)
    if cached is None:
        cached = principals.of_user(getattr(request, "user", None))
        request._cxm_principal = cached  # type: ignore[attr-defined]
    return cast(Principal, cached)


def allows(request: HttpRequest, permission: str) -> bool:
    return permissions.allows(principal_of(request), permission)


def is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def _to_login(request: HttpRequest) -> HttpResponse:
    if is_htmx(request):
        current = urlsplit(request.headers.get("HX-Current-URL", ""))
        here = (current.path + ("?" + current.query if current.query else "")) or "/"
        response = HttpResponse(status=401)
        response["HX-Redirect"] = f"{settings.LOGIN_URL}?{urlencode({'next': here}, safe='/')}"
        return response
    return redirect_to_login(request.get_full_path())


def requires(*needed: str) -> Callable[[View], View]:
    """The view needs every one of these permissions (names checked when decorating)."""
    for permission in needed:
        permissions.allows(None, permission)  # an unknown name fails at import time

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if not request.user.is_authenticated:
                return _to_login(request)
            principal = principal_of(request)
            if not permissions.allows_all(principal, needed):
                raise PermissionDenied(f"needs {', '.join(needed)}")
            return view(request, *args, **kwargs)

        wrapped.cxm_permissions = needed  # type: ignore[attr-defined]
        return cast(View, wrapped)

    return decorate


def public(view: View) -> View:
    """Marks a view that anyone may open (checked by the permission-matrix test)."""
    view.cxm_permissions = ()  # type: ignore[attr-defined]
    return view


def context(request: HttpRequest) -> dict[str, Any]:
    """Template context: ``can`` (the user's permissions) and ``role``."""
    principal = principal_of(request)
    return {"can": principal.grants, "role": principal.entry or ""}
