"""Views of the web UI: thin. Reads go through ``identity.queries`` (which reveals personal
values through ``core.pii``), writes through the ``actions`` modules, and every view states the
permission it needs with ``@requires`` (``cxm.web.access``; the matrix is in
``cxm.accounts.permissions``). Without ``profile.read_personal`` personal values are masked
here, in the view layer. Personal values are never logged here."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth import views as auth_views
from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from cxm.accounts import actions as account_actions
from cxm.accounts import permissions
from cxm.accounts import throttle as login_throttle
from cxm.accounts.models import ApiKey
from cxm.core import audit, pii, privacy
from cxm.core.audit import Actor
from cxm.core.clock import now
from cxm.core.errors import CxmError, InvalidInput, NotFound
from cxm.identity import actions as identity_actions
from cxm.identity import consent, queries
from cxm.identity.models import Identity, Merge, Profile
from cxm.ingest.models import Event
from cxm.web import survey_views
from cxm.web.access import allows, public, requires
from cxm.web.forms import ApiKeyForm, NewUserForm, RoleForm, SearchForm, TimelineForm

TIMELINE_PAGE = 50
SEARCH_LIMIT = 25
MAX_PROPERTIES = 4

# One colour per channel, for the chart; the badges use the same colours as CSS classes
# (``.ch-<channel>`` in cxm.css: no inline styles, so the CSP needs no 'unsafe-inline').
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


@public
def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok", "database": connection.vendor})


# --- helpers ---------------------------------------------------------------------------------


def _actor(request: HttpRequest) -> Actor:
    return Actor(f"user:{request.user.pk}", request.META.get("REMOTE_ADDR") or None)


def _personal(request: HttpRequest) -> bool:
    return allows(request, "profile.read_personal")


def _masked(value: str, personal: bool) -> str:
    return value if personal or not value else pii.mask(value)


def channel_colour(channel: str) -> str:
    return CHANNEL_COLOURS.get(channel, CHANNEL_COLOURS["other"])


def channel_class(channel: str) -> str:
    return channel if channel in CHANNEL_COLOURS else "other"


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


def _profile_row(profile: Profile, personal: bool) -> dict[str, Any]:
    return {
        "id": profile.id,
        "name": _masked(queries.reveal(profile.display_name), personal),
        "email": _masked(queries.reveal(profile.email), personal),
        "phone": _masked(queries.reveal(profile.phone), personal),
        "first_seen": profile.first_seen,
        "last_seen": profile.last_seen,
        "event_count": profile.event_count,
    }


def _search_rows(request: HttpRequest, query: str, personal: bool) -> list[dict[str, Any]]:
    """Search results; showing their names, emails and phones is an audited read."""
    rows = [_profile_row(p, personal) for p in queries.search(query, SEARCH_LIMIT)]
    if personal and rows:
        audit.record_reads(_actor(request), "profile", [str(r["id"]) for r in rows],
                           ["name", "email", "phone"])
    return rows


def _totals() -> dict[str, int]:
    since = now() - timedelta(hours=24)
    return {
        "profiles": Profile.objects.filter(merged_into__isnull=True).count(),
        "events": Event.objects.count(),
        "events_24h": Event.objects.filter(timestamp__gte=since).count(),
    }


def _stamped_rows(entries: dict[str, dict[str, Any]], personal: bool = True,
                  ) -> list[dict[str, Any]]:
    return [
        {"key": key,
         "value": _display(entry.get("value")) if personal or not pii.is_personal_trait(key)
         else pii.mask(_display(entry.get("value"))),
         "source": entry.get("source", ""), "at": _parse_stamp(entry.get("at"))}
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
        "id": event.pk, "channel": event.channel, "colour_class": channel_class(event.channel),
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
            "can_undo": absorbed and merge.undone_at is None
            and allows(request, "profile.merge"),
        })
    return rows


def _identity_rows(identities: list[Identity], personal: bool) -> list[dict[str, Any]]:
    rows = []
    for identity in identities:
        kind = identity.kind
        label = IDENTITY_LABELS.get(kind)
        if label is None and kind.startswith("ext:"):
            label = f"External · {kind[4:]}"
        rows.append({"kind": kind, "label": label or kind,
                     "value": _masked(identity.value, personal),
                     "source": identity.source, "since": identity.created_at})
    return rows


# --- customers -------------------------------------------------------------------------------


@require_safe
@requires("profile.read")
def customers(request: HttpRequest) -> HttpResponse:
    form = SearchForm(request.GET)
    query = form.cleaned_data["q"] if form.is_valid() else ""
    personal = _personal(request)
    rows = _search_rows(request, query, personal)
    return render(request, "cxm/customers.html", {
        "nav": "customers", "form": form, "query": query, "rows": rows,
        "totals": _totals(),
    })


@require_safe
@requires("profile.read")
def customer_results(request: HttpRequest) -> HttpResponse:
    """The results table alone, for the search box's htmx requests."""
    form = SearchForm(request.GET)
    query = form.cleaned_data["q"] if form.is_valid() else ""
    personal = _personal(request)
    rows = _search_rows(request, query, personal)
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
@requires("profile.read")
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
    personal = _personal(request)
    if personal:
        audit.record_read(_actor(request), "profile", str(profile.id),
                          ["name", "email", "phone", "traits", "identities", "timeline"])
    return render(request, "cxm/customer.html", {
        "nav": "customers",
        "profile": _profile_row(profile, personal),
        "personal": personal,
        "traits": _stamped_rows(queries.revealed_traits(profile), personal),
        "preferences": _stamped_rows(profile.preferences),
        "consent": [
            {**row, "at": _parse_stamp(row.get("at"))} for row in queries.consent_list(profile)
        ],
        "identities": _identity_rows(queries.identities(profile), personal),
        "merges": _merge_rows(request, profile),
        "channels": [{"name": ch, "count": n, "colour": channel_colour(ch)}
                     for ch, n in counts.items()],
        "chart": chart,
        "events": events,
        "channel": channel,
        "paged": cursor is not None,
        "more_query": _more_query(channel, next_cursor),
        "channel_choices": sorted(counts),
        "consent_channels": consent.CHANNELS,
        "consent_purposes": consent.PURPOSES,
        "surveys": (survey_views.profile_surveys(request, profile)
                    if allows(request, "surveys.read") else None),
    })


@require_POST
@requires("consent.edit")
def customer_consent(request: HttpRequest, profile_id: uuid.UUID) -> HttpResponse:
    """Record a consent statement made by hand (e.g. the customer asked an agent)."""
    profile = _canonical_or_404(profile_id)
    granted = request.POST.get("granted")
    if granted not in {"yes", "no"}:
        return HttpResponseBadRequest("granted must be yes or no")
    try:
        identity_actions.set_consent(
            profile_id=profile.id, channel=request.POST.get("channel", ""),
            purpose=request.POST.get("purpose", ""), granted=granted == "yes",
            actor=_actor(request))
    except CxmError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, "Consent recorded.")
    return redirect("customer", profile_id=profile.id)


@require_safe
@requires("privacy.export")
def customer_export(request: HttpRequest, profile_id: uuid.UUID) -> HttpResponse:
    """Everything held on the customer, as a JSON download (subject-access request)."""
    profile = _canonical_or_404(profile_id)
    data = privacy.export(queries.subject_of(profile), _actor(request))
    response = HttpResponse(json.dumps(data, default=str, indent=2, ensure_ascii=False),
                            content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="cxm-export-{profile.id}.json"'
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@requires("privacy.erase")
def customer_erase(request: HttpRequest, profile_id: uuid.UUID) -> HttpResponse:
    """Erase the customer everywhere (asks for a confirmation field, not just a click)."""
    profile = _canonical_or_404(profile_id)
    if request.POST.get("confirm") != "erase":
        return HttpResponseBadRequest("confirm the erasure with confirm=erase")
    removed = privacy.erase(queries.subject_of(profile), _actor(request))
    messages.success(request, f"Customer erased: {removed.get('ingest.events', 0)} events and "
                              f"{removed.get('identity.profiles', 0)} profile(s) removed.")
    return redirect("customers")


@require_safe
@requires("profile.read")
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
@requires("profile.merge")
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
@requires("keys.manage")
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
@requires("keys.manage")
def api_key_revoke(request: HttpRequest, prefix: str) -> HttpResponse:
    try:
        key = account_actions.revoke_api_key(prefix=prefix, actor=_actor(request))
    except NotFound:
        raise Http404("no such key") from None
    messages.success(request, f"Key {key.prefix}… ({key.name}) is revoked; clients using it "
                              "are refused within seconds.")
    return redirect("api-keys")


# --- sign-in ---------------------------------------------------------------------------------


def _client_ip(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


class LoginView(auth_views.LoginView):
    """Django's sign-in, throttled (``accounts.throttle``): 5 failures for a user name or 20
    from an address within 15 minutes pause sign-in for 15 minutes, answered with 429."""

    template_name = "cxm/login.html"
    redirect_authenticated_user = True

    def _refused(self, lock: login_throttle.Lock) -> HttpResponse:
        form = self.get_form_class()(self.request)  # unbound: no "did not match" on top
        context = self.get_context_data(form=form, throttle_message=lock.message(now()))
        return self.render_to_response(context, status=429)

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        lock = login_throttle.check(str(request.POST.get("username", "")), _client_ip(request))
        if lock is not None:
            return self._refused(lock)
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form: Any) -> HttpResponse:
        username = str(form.data.get("username", ""))
        if username.strip() and form.data.get("password") and form.non_field_errors():
            lock = account_actions.record_login_failure(username=username,
                                                        ip=_client_ip(self.request))
            if lock is not None:
                return self._refused(lock)
        return super().form_invalid(form)

    def form_valid(self, form: Any) -> HttpResponse:
        account_actions.clear_login_failures(username=form.get_user().get_username())
        return super().form_valid(form)


login = public(LoginView.as_view())
logout = public(auth_views.LogoutView.as_view())


# --- users -----------------------------------------------------------------------------------


def _stored_role(user: Any) -> str:
    """The role as stored (shown also for deactivated users)."""
    if user.is_superuser:
        return "admin"
    membership = getattr(user, "membership", None)
    return str(membership.role) if membership is not None else ""


def _user_rows(request: HttpRequest) -> list[dict[str, Any]]:
    rows = []
    for user in get_user_model().objects.select_related("membership").order_by("username"):
        role = _stored_role(user)
        rows.append({
            "id": user.pk, "username": user.get_username(), "role": role,
            "active": user.is_active, "last_login": user.last_login,
            "joined": user.date_joined, "is_me": user.pk == request.user.pk,
            "role_form": RoleForm(initial={"role": role or "viewer"},
                                  auto_id=f"id_role_{user.pk}_%s"),
        })
    return rows


@require_http_methods(["GET", "POST"])
@requires("users.manage")
def users(request: HttpRequest) -> HttpResponse:
    form = NewUserForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            account_actions.create_user(
                username=form.cleaned_data["username"], password=form.cleaned_data["password"],
                role=form.cleaned_data["role"], actor=_actor(request))
        except InvalidInput as error:
            field = {"weak_password": "password", "username_taken": "username",
                     "username_required": "username", "username_too_long": "username",
                     "role": "role"}.get(error.code)
            form.add_error(field, error.message)
        else:
            messages.success(request, f"User {form.cleaned_data['username']} created as "
                                      f"{form.cleaned_data['role']}.")
            return redirect("users")
    response = render(request, "cxm/users.html", {
        "nav": "users", "form": form, "users": _user_rows(request),
        "roles": [(role, permissions.ROLE_LABELS[role]) for role in permissions.ROLES],
    }, status=400 if request.method == "POST" else 200)
    response["Cache-Control"] = "no-store"
    return response


def _user_change(request: HttpRequest, change: Any, done: str) -> HttpResponse:
    try:
        user = change()
    except NotFound:
        raise Http404("no such user") from None
    except CxmError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, done.format(user=user))
    return redirect("users")


@require_POST
@requires("users.manage")
def user_role(request: HttpRequest, user_id: int) -> HttpResponse:
    form = RoleForm(request.POST)
    if not form.is_valid():
        return HttpResponseBadRequest("role must be one of " + ", ".join(permissions.ROLES))
    role = form.cleaned_data["role"]

    def change() -> Any:
        account_actions.set_role(user_id=user_id, role=role, actor=_actor(request))
        return get_user_model().objects.get(pk=user_id).get_username()

    return _user_change(request, change, "{user} is now " + role + ".")


@require_POST
@requires("users.manage")
def user_deactivate(request: HttpRequest, user_id: int) -> HttpResponse:
    return _user_change(
        request,
        lambda: account_actions.deactivate_user(user_id=user_id,
                                                actor=_actor(request)).get_username(),
        "{user} is deactivated: they cannot sign in, and their open sessions have ended.")


@require_POST
@requires("users.manage")
def user_reactivate(request: HttpRequest, user_id: int) -> HttpResponse:
    return _user_change(
        request,
        lambda: account_actions.reactivate_user(user_id=user_id,
                                                actor=_actor(request)).get_username(),
        "{user} can sign in again.")
