"""Views of the web UI: thin. Reads go through ``identity.queries`` (which reveals personal
values through ``core.pii``), writes through the ``actions`` modules, and every view checks who
is asking. Personal values are never logged here."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import wraps
from typing import Any, TypeVar, cast
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from cxm.accounts import actions as account_actions
from cxm.accounts.models import ApiKey
from cxm.core import pii
from cxm.core.audit import Actor
from cxm.core.clock import now
from cxm.core.errors import CxmError, InvalidInput, NotFound
from cxm.identity import actions as identity_actions
from cxm.identity import queries
from cxm.identity.models import Identity, Merge, Profile
from cxm.ingest.models import Event
from cxm.web.forms import ApiKeyForm, SearchForm, TimelineForm

View = TypeVar("View", bound=Callable[..., HttpResponse])

TIMELINE_PAGE = 50
SEARCH_LIMIT = 25
MAX_PROPERTIES = 4

# One colour per channel, used by the badges (inline CSS variable) and the chart alike.
CHANNEL_COLOURS: dict[str, str] = {
    "web": "#2563eb", "app": "#7c3aed", "email": "#0891b2", "chat": "#059669",
    "phone": "#d97706", "social": "#db2777", "store": "#65a30d", "iot": "#475569",
    "survey": "#9333ea", "support": "#dc2626", "other": "#6b7280",
}
_ADDRESS_ORDER = ("street", "city", "state", "postalCode", "country")
# Shown first in a timeline row when present; the noisy ones are left out.
_KEY_PROPERTIES = (
    "path", "title", "name", "order_id", "total", "revenue", "value", "currency", "product_id",
    "sku", "query", "score", "rating", "email_subject", "campaign_name", "method",
)
_NOISY_PROPERTIES = frozenset({"url", "referrer", "search", "keywords"})
# Page and product names are not personal, so property rows show them.
_PERSONAL_PROPERTIES = pii.PERSONAL_TRAITS - {"name", "title"}
IDENTITY_LABELS = {
    "user_id": "User id", "anonymous_id": "Anonymous id", "email": "Email", "phone": "Phone",
    "previous_id": "Previous id",
}


def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok", "database": connection.vendor})


# --- helpers ---------------------------------------------------------------------------------


def signed_in(view: View) -> View:
    """Django's ``login_required``; an htmx request from an expired session is told to load
    the login page instead of having it swapped into a table."""
    checked = login_required(view)

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated and _is_htmx(request):
            current = urlsplit(request.headers.get("HX-Current-URL", ""))
            here = (current.path + ("?" + current.query if current.query else "")) or "/"
            response = HttpResponse(status=401)
            response["HX-Redirect"] = f"{settings.LOGIN_URL}?{urlencode({'next': here}, safe='/')}"
            return response
        return checked(request, *args, **kwargs)

    return cast(View, wrapped)


def staff_required(view: View) -> View:
    """Signed-in staff only: others get 403 (anonymous users go to the login page first)."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_staff:
            raise PermissionDenied("staff only")
        return view(request, *args, **kwargs)

    return signed_in(cast(View, wrapped))


def _actor(request: HttpRequest) -> Actor:
    return Actor(f"user:{request.user.pk}", request.META.get("REMOTE_ADDR") or None)


def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def channel_colour(channel: str) -> str:
    return CHANNEL_COLOURS.get(channel, CHANNEL_COLOURS["other"])


def _parse_stamp(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def _display(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        if set(value) <= set(_ADDRESS_ORDER):
            parts = [value[k] for k in _ADDRESS_ORDER if value.get(k) not in (None, "")]
            return ", ".join(str(p) for p in parts)[:300]
        return "; ".join(f"{k}: {_display(v)}" for k, v in value.items())[:300]
    if isinstance(value, list):
        return ", ".join(_display(v) for v in value)[:300]
    return str(value)[:300]


def _profile_row(profile: Profile) -> dict[str, Any]:
    return {
        "id": profile.id,
        "name": queries.reveal(profile.display_name),
        "email": queries.reveal(profile.email),
        "phone": queries.reveal(profile.phone),
        "first_seen": profile.first_seen,
        "last_seen": profile.last_seen,
        "event_count": profile.event_count,
    }


def _totals() -> dict[str, int]:
    since = now() - timedelta(hours=24)
    return {
        "profiles": Profile.objects.filter(merged_into__isnull=True).count(),
        "events": Event.objects.count(),
        "events_24h": Event.objects.filter(timestamp__gte=since).count(),
    }


def _stamped_rows(entries: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"key": key, "value": _display(entry.get("value")), "source": entry.get("source", ""),
         "at": _parse_stamp(entry.get("at"))}
        for key, entry in sorted(entries.items())
    ]


def _event_title(event: Event) -> str:
    if event.name:
        return event.name
    return {"identify": "Identified", "page": "Page view", "screen": "Screen view",
            "group": "Joined group", "alias": "Alias"}.get(event.type, event.type)


def _event_details(event: Event) -> list[tuple[str, str]]:
    """A few properties worth a glance, the telling ones first; personal ones by name only."""
    payload = event.payload if isinstance(event.payload, dict) else {}
    details: list[tuple[str, str]] = []
    properties = payload.get("properties")
    if isinstance(properties, dict):
        scalars = {str(k): v for k, v in properties.items()
                   if k != "channel" and not isinstance(v, dict | list) and v not in (None, "")
                   and v != event.name}
        ordered = [k for k in _KEY_PROPERTIES if k in scalars]
        ordered += [k for k in scalars if k not in _KEY_PROPERTIES and k not in _NOISY_PROPERTIES]
        for key in ordered[:MAX_PROPERTIES]:
            details.append((key, "•••" if key in _PERSONAL_PROPERTIES
                            else _display(scalars[key])[:60]))
    traits = payload.get("traits")
    if event.type == "identify" and isinstance(traits, dict) and traits:
        details.append(("traits", ", ".join(sorted(str(k) for k in traits)[:8])))
    return details


def _event_row(event: Event) -> dict[str, Any]:
    return {
        "id": event.pk, "channel": event.channel, "colour": channel_colour(event.channel),
        "type": event.type, "title": _event_title(event), "timestamp": event.timestamp,
        "details": _event_details(event),
    }


def _timeline(
    profile: Profile, *, channel: str, cursor: str | None,
) -> tuple[list[dict[str, Any]], str | None]:
    page = queries.timeline(profile, limit=TIMELINE_PAGE, cursor=cursor or None,
                            channel=channel or None)
    return [_event_row(e) for e in page.events], page.next_cursor


def _more_query(channel: str, cursor: str | None) -> str:
    if not cursor:
        return ""
    return urlencode({k: v for k, v in (("channel", channel), ("cursor", cursor)) if v})


def _merge_rows(request: HttpRequest, profile: Profile) -> list[dict[str, Any]]:
    rows = []
    for merge in queries.merges(profile):
        absorbed = merge.survivor_id == profile.id
        reason = merge.reason if isinstance(merge.reason, dict) else {}
        rows.append({
            "id": merge.pk,
            "absorbed": absorbed,
            "other_id": merge.merged_id if absorbed else merge.survivor_id,
            "at": merge.at,
            "actor": merge.actor,
            "reason": ", ".join(f"{k}: {v}" for k, v in sorted(reason.items()) if v) or "—",
            "undone_at": merge.undone_at,
            "undone_by": merge.undone_by,
            "can_undo": absorbed and merge.undone_at is None and request.user.is_staff,
        })
    return rows


def _identity_rows(identities: list[Identity]) -> list[dict[str, Any]]:
    rows = []
    for identity in identities:
        kind = identity.kind
        label = IDENTITY_LABELS.get(kind)
        if label is None and kind.startswith("ext:"):
            label = f"External · {kind[4:]}"
        rows.append({"kind": kind, "label": label or kind, "value": identity.value,
                     "source": identity.source, "since": identity.created_at})
    return rows


# --- customers -------------------------------------------------------------------------------


@require_safe
@signed_in
def customers(request: HttpRequest) -> HttpResponse:
    form = SearchForm(request.GET)
    query = form.cleaned_data["q"] if form.is_valid() else ""
    rows = [_profile_row(p) for p in queries.search(query, SEARCH_LIMIT)]
    return render(request, "cxm/customers.html", {
        "nav": "customers", "form": form, "query": query, "rows": rows,
        "totals": _totals(),
    })


@require_safe
@signed_in
def customer_results(request: HttpRequest) -> HttpResponse:
    """The results table alone, for the search box's htmx requests."""
    form = SearchForm(request.GET)
    query = form.cleaned_data["q"] if form.is_valid() else ""
    rows = [_profile_row(p) for p in queries.search(query, SEARCH_LIMIT)]
    response = render(request, "cxm/partials/customer_results.html",
                      {"query": query, "rows": rows})
    # Keep the address bar in step, so reload and back show the same search.
    response["HX-Replace-Url"] = reverse("customers") + (
        "?" + urlencode({"q": query}) if query else "")
    return response


def _canonical_or_404(profile_id: uuid.UUID) -> Profile:
    try:
        return queries.canonical(profile_id)
    except NotFound:
        raise Http404("no such customer") from None


@require_safe
@signed_in
def customer(request: HttpRequest, profile_id: uuid.UUID) -> HttpResponse:
    profile = _canonical_or_404(profile_id)
    if profile.id != profile_id:
        messages.info(request, f"Profile {str(profile_id)[:8]}… was merged into this customer; "
                               "showing the combined profile.")
        return redirect("customer", profile_id=profile.id)

    filters = TimelineForm(request.GET)
    channel, cursor = "", None
    if filters.is_valid():
        channel = filters.cleaned_data["channel"]
        cursor = filters.cleaned_data["cursor"] or None
    try:
        events, next_cursor = _timeline(profile, channel=channel, cursor=cursor)
    except InvalidInput as error:
        messages.error(request, error.message)
        events, next_cursor = _timeline(profile, channel="", cursor=None)
        channel = ""

    counts = queries.channel_counts(profile)
    chart = [{"name": ch, "value": n, "colour": channel_colour(ch)} for ch, n in counts.items()]
    return render(request, "cxm/customer.html", {
        "nav": "customers",
        "profile": _profile_row(profile),
        "traits": _stamped_rows(queries.revealed_traits(profile)),
        "preferences": _stamped_rows(profile.preferences),
        "consent": [
            {**row, "at": _parse_stamp(row.get("at"))} for row in queries.consent_list(profile)
        ],
        "identities": _identity_rows(queries.identities(profile)),
        "merges": _merge_rows(request, profile),
        "channels": [{"name": ch, "count": n, "colour": channel_colour(ch)}
                     for ch, n in counts.items()],
        "chart": chart,
        "events": events,
        "channel": channel,
        "paged": cursor is not None,
        "more_query": _more_query(channel, next_cursor),
        "channel_choices": sorted(counts),
    })


@require_safe
@signed_in
def customer_timeline(request: HttpRequest, profile_id: uuid.UUID) -> HttpResponse:
    """Timeline rows (and the next "Load more" row) for htmx."""
    profile = _canonical_or_404(profile_id)
    filters = TimelineForm(request.GET)
    if not filters.is_valid():
        return HttpResponseBadRequest("channel or cursor is not valid")
    channel = filters.cleaned_data["channel"]
    try:
        events, next_cursor = _timeline(profile, channel=channel,
                                        cursor=filters.cleaned_data["cursor"] or None)
    except InvalidInput as error:
        return HttpResponseBadRequest(error.message)
    return render(request, "cxm/partials/timeline_rows.html", {
        "profile": {"id": profile.id}, "events": events, "channel": channel,
        "more_query": _more_query(channel, next_cursor),
    })


@require_POST
@staff_required
def customer_unmerge(request: HttpRequest, profile_id: uuid.UUID, merge_id: int) -> HttpResponse:
    if not Merge.objects.filter(id=merge_id, survivor_id=profile_id).exists():
        raise Http404("no such merge on this customer")
    try:
        survivor, restored = identity_actions.unmerge(merge_id=merge_id, actor=_actor(request))
    except CxmError as error:
        messages.error(request, f"Could not undo the merge: {error.message}")
        return redirect("customer", profile_id=profile_id)
    messages.success(request, f"Merge undone: profile {str(restored.id)[:8]}… is a separate "
                              "customer again and will not be merged back automatically.")
    return redirect("customer", profile_id=survivor.id)


# --- API keys --------------------------------------------------------------------------------


def _key_rows() -> list[ApiKey]:
    return list(ApiKey.objects.select_related("created_by").order_by("-created_at", "-id"))


@require_http_methods(["GET", "POST"])
@staff_required
def api_keys(request: HttpRequest) -> HttpResponse:
    created: ApiKey | None = None
    plaintext = ""
    if request.method == "POST":
        form = ApiKeyForm(request.POST)
        if form.is_valid():
            try:
                created, plaintext = account_actions.create_api_key(
                    name=form.cleaned_data["name"], scope=form.cleaned_data["scope"],
                    default_channel=form.cleaned_data["default_channel"] or "",
                    actor=_actor(request), created_by_id=request.user.pk,
                )
            except CxmError as error:
                form.add_error(None, error.message)
            else:
                form = ApiKeyForm()
    else:
        form = ApiKeyForm()
    response = render(request, "cxm/api_keys.html", {
        "nav": "keys", "form": form, "keys": _key_rows(), "created": created,
        "plaintext": plaintext,
    }, status=400 if request.method == "POST" and created is None else 200)
    # The plaintext is in this response only: keep it out of every cache and history.
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@staff_required
def api_key_revoke(request: HttpRequest, prefix: str) -> HttpResponse:
    try:
        key = account_actions.revoke_api_key(prefix=prefix, actor=_actor(request))
    except NotFound:
        raise Http404("no such key") from None
    messages.success(request, f"Key {key.prefix}… ({key.name}) is revoked; clients using it "
                              "are refused within seconds.")
    return redirect("api-keys")
