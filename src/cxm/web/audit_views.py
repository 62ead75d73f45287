"""The audit log page: filters, "load older" paging and a "Verify chain" button.

Reads go through ``cxm.core.audit`` (``search``, ``verify_chain``). Audit rows hold ids and
field names, never personal values, so nothing here needs revealing or masking.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_http_methods

from cxm.core import audit
from cxm.core.models import AuditLog
from cxm.web.access import requires

PAGE = 50
FILTERS = ("target", "actor", "action", "since", "until")


class AuditFilterForm(forms.Form):
    target = forms.CharField(required=False, max_length=64, label="Target id")
    actor = forms.CharField(required=False, max_length=120)
    action = forms.CharField(required=False, max_length=61)
    since = forms.DateField(required=False, label="From")
    until = forms.DateField(required=False, label="To")
    before = forms.IntegerField(required=False, min_value=1)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if since and until and until < since:
            raise forms.ValidationError("“To” is before “From”.")
        return data


def _day_start(day: date | None) -> datetime | None:
    return datetime.combine(day, time.min, tzinfo=UTC) if day else None


def _text(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value[:120]
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return ", ".join(str(v) for v in value)[:120]
    return json.dumps(value, sort_keys=True, ensure_ascii=False)[:120]


def _changes(changes: Any) -> list[tuple[str, str]]:
    """``(key, text)`` pairs; an update's ``before``/``after`` become ``key: old → new``."""
    if not isinstance(changes, dict):
        return [("", _text(changes))]
    before, after = changes.get("before"), changes.get("after")
    if isinstance(before, dict) or isinstance(after, dict):
        before, after = before or {}, after or {}
        pairs = [(str(key), f"{_text(before.get(key))} → {_text(after.get(key))}")
                 for key in sorted({*before, *after})]
        pairs += [(str(k), _text(v)) for k, v in sorted(changes.items())
                  if k not in ("before", "after")]
        return pairs
    return [(str(k), _text(v)) for k, v in sorted(changes.items())]


def _target_url(row: AuditLog) -> str:
    if row.target_type != "profile":
        return ""
    try:
        return reverse("customer", args=[uuid.UUID(row.target_id)])
    except (ValueError, NoReverseMatch):
        return ""


def _row(row: AuditLog) -> dict[str, Any]:
    return {
        "seq": row.seq, "at": row.at, "actor": row.actor, "action": row.action,
        "target_type": row.target_type, "target_id": row.target_id,
        "target_url": _target_url(row), "changes": _changes(row.changes), "ip": row.ip or "",
        "row_hash": row.row_hash,
    }


@require_http_methods(["GET", "HEAD", "POST"])
@requires("audit.read")
def audit_log(request: HttpRequest) -> HttpResponse:
    """GET: the rows, newest first, filtered; POST: the same page with the chain verified."""
    form = AuditFilterForm(request.GET)
    rows: list[dict[str, Any]] = []
    more_query = ""
    filters: dict[str, str] = {}
    if form.is_valid():
        data = form.cleaned_data
        until = data["until"] + timedelta(days=1) if data["until"] else None
        page = audit.search(
            actor=data["actor"] or None, action=data["action"] or None,
            target_id=data["target"] or None, since=_day_start(data["since"]),
            until=_day_start(until), limit=PAGE, before_seq=data["before"])
        rows = [_row(row) for row in page.rows]
        filters = {name: str(request.GET[name]) for name in FILTERS if request.GET.get(name)}
        if page.next_before_seq is not None:
            more_query = urlencode({**filters, "before": page.next_before_seq})
    verified = audit.verify_chain() if request.method == "POST" else None
    return render(request, "cxm/audit.html", {
        "nav": "audit", "form": form, "rows": rows, "more_query": more_query,
        "filters_query": urlencode(filters), "filtered": bool(filters),
        "older": form.is_valid() and form.cleaned_data["before"] is not None,
        "verified": verified,
    }, status=200 if form.is_valid() else 400)
