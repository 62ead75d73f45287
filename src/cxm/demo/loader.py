"""Loading the demo company through the real ingest path (``ingest.actions.ingest``)."""

from __future__ import annotations

import secrets
from itertools import islice
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from cxm.accounts import actions as account_actions
from cxm.accounts.models import ApiKey
from cxm.core.audit import Actor
from cxm.demo import surveys as demo_surveys
from cxm.demo.generator import DemoConfig, generate
from cxm.ingest import actions as ingest_actions
from cxm.ingest.models import Event

DEMO_USER = "demo"
_CHUNK = 1000


def load(*, customers: int, seed: int, console: Console, quiet: bool = False) -> dict[str, Any]:
    """Create the demo login and key, then ingest the generated messages (re-runs store
    nothing twice: message ids are deterministic)."""
    from django.contrib.auth import get_user_model

    user_model = get_user_model()
    password = secrets.token_urlsafe(9)
    user = user_model.objects.filter(username=DEMO_USER).first()
    if user is None:
        account_actions.create_user(username=DEMO_USER, password=password, role="admin",
                                    actor=Actor("demo"))
    else:
        user.set_password(password)
        user.save(update_fields=["password"])
    key = ApiKey.objects.filter(name="Demo website and apps", revoked_at__isnull=True).first()
    if key is None:
        key, _ = account_actions.create_api_key(name="Demo website and apps", scope="ingest",
                                                actor=Actor("demo"))
    actor = Actor(key.actor_label)
    messages = generate(DemoConfig(customers=customers, seed=seed))
    totals = {"accepted": 0, "duplicates": 0, "rejected": 0}
    already = Event.objects.exists()
    with Progress(TextColumn("loading demo data"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("messages"), console=console, disable=quiet) as progress:
        task = progress.add_task("demo", total=None)
        while True:
            chunk = list(islice(messages, _CHUNK))
            if not chunk:
                break
            result = ingest_actions.ingest(chunk, actor=actor, source=key.actor_label)
            totals["accepted"] += result.accepted
            totals["duplicates"] += result.duplicates
            totals["rejected"] += len(result.rejected)
            progress.advance(task, len(chunk))
    if not quiet:
        console.print("recording survey answers and discovering their themes")
    surveys = demo_surveys.load(actor)
    return {"customers": customers, "seed": seed, **totals, **surveys, "reloaded": already,
            "username": DEMO_USER, "password": password}
