"""Small display filters for the web UI's templates."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.filter
def thousands(value: Any) -> str:
    """1234567 -> "1,234,567" (without loading django.contrib.humanize)."""
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return str(value)


@register.filter
def initials(name: str) -> str:
    parts = [p for p in str(name or "").split() if p[:1].isalnum()]
    if not parts:
        return "?"
    letters = parts[0][:1] + (parts[-1][:1] if len(parts) > 1 else "")
    return letters.upper()


@register.filter
def short_id(value: Any) -> str:
    return str(value)[:8]
