"""Secure defaults: headers, no inline code in the UI, request size limits, production
settings, and the ingest rate limit."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from cxm import config
from cxm.ingest import ratelimit
from cxm.web.middleware import CONTENT_SECURITY_POLICY
from tests.ingest.helpers import post

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "src" / "cxm" / "web" / "templates"

# --- headers ---------------------------------------------------------------------------------


def assert_security_headers(response: Any) -> None:
    assert response["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"
    assert "camera=()" in response["Permissions-Policy"]
    assert "geolocation=()" in response["Permissions-Policy"]


def test_csp_allows_only_this_server() -> None:
    directives = dict(d.strip().split(" ", 1) for d in CONTENT_SECURITY_POLICY.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"  # no 'unsafe-inline'
    assert directives["frame-ancestors"] == "'none'"
    assert directives["object-src"] == "'none'"
    assert "unsafe" not in CONTENT_SECURITY_POLICY and "http" not in CONTENT_SECURITY_POLICY


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/login/", "/", "/healthz", "/api/v1/openapi.json",
                                  "/api/v1/docs", "/api/v1/profiles", "/no-such-page/",
                                  "/static/cxm/cxm.css"])
def test_every_answer_has_the_security_headers(client: Client, path: str) -> None:
    assert_security_headers(client.get(path))


@pytest.mark.django_db
def test_ingest_keeps_its_cors_headers_beside_the_security_headers(
    client: Client, ingest_key: str,
) -> None:
    for response in (post(client, "/v1/track", {"userId": "u", "event": "E"}, ingest_key),
                     client.options("/v1/track"),
                     post(client, "/v1/track", {"userId": "u", "event": "E"}, "nope")):
        assert response["Access-Control-Allow-Origin"] == "*"
        assert "Authorization" in response["Access-Control-Allow-Headers"]
        assert_security_headers(response)


@pytest.mark.django_db
def test_api_docs_are_served_from_this_server(client: Client) -> None:
    text = client.get("/api/v1/docs").content.decode()
    urls = re.findall(r'(?:src|href)="([^"]*)"', text)
    assert urls and all(url.startswith("/") for url in urls), urls
    assert "cdn" not in text.lower()


def test_templates_have_no_inline_scripts_styles_or_handlers() -> None:
    for template in TEMPLATES.rglob("*.html"):
        text = template.read_text()
        assert not re.search(r"\sstyle=", text), f"{template.name}: inline style attribute"
        assert "<style" not in text, f"{template.name}: <style> element"
        assert not re.search(r"\son[a-z]+=", text), f"{template.name}: inline event handler"
        for tag in re.findall(r"<script[^>]*>", text):
            assert "src=" in tag or 'type="application/json"' in tag, (template.name, tag)
        assert "javascript:" not in text


def test_channel_badge_classes_match_the_chart_colours() -> None:
    from cxm.web.views import CHANNEL_COLOURS

    css = (ROOT / "src" / "cxm" / "web" / "static" / "cxm" / "cxm.css").read_text()
    found = dict(re.findall(r"\.ch-([a-z]+) \{ --ch: (#[0-9a-f]{6}); \}", css))
    assert found == CHANNEL_COLOURS


# --- request size limits ---------------------------------------------------------------------


@pytest.mark.django_db
def test_large_bodies_are_refused_everywhere(client: Client, admin_key: str,
                                             ingest_key: str) -> None:
    from django.conf import settings

    from cxm.accounts.models import ApiKey

    big = "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
    keys_before = ApiKey.objects.count()
    api = client.post("/api/v1/keys", {"name": big, "scope": "read"},
                      content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {admin_key}")
    assert api.status_code == 413 and api.json()["code"] == "payload_too_large"
    assert ApiKey.objects.count() == keys_before
    login = client.post("/login/", {"username": "a", "password": big})
    assert login.status_code == 400  # Django's own refusal (RequestDataTooBig)
    single = post(client, "/v1/track", {"userId": "u", "event": "E",
                                        "properties": {"x": "y" * 40_000}}, ingest_key)
    assert single.status_code == 413 and single.json()["code"] == "payload_too_large"
    batch = post(client, "/v1/batch", {"batch": [{"userId": "u", "event": "E",
                                                  "properties": {"x": big}}]}, ingest_key)
    assert batch.status_code == 413


# --- production settings ---------------------------------------------------------------------

GOOD = {"CXM_PRODUCTION": "true", "CXM_SECRET_KEY": "k" * 48,
        "CXM_ALLOWED_HOSTS": "cx.example.com"}


def test_production_accepts_safe_settings(config_env: Callable[..., config.Config]) -> None:
    loaded = config_env(**GOOD)
    assert loaded.production and not loaded.debug
    assert loaded.allowed_hosts == ["cx.example.com"]


@pytest.mark.parametrize(("changes", "variable"), [
    ({"CXM_SECRET_KEY": ""}, "CXM_SECRET_KEY"),
    ({"CXM_SECRET_KEY": config.DEFAULT_SECRET}, "CXM_SECRET_KEY"),
    ({"CXM_SECRET_KEY": "short-secret"}, "CXM_SECRET_KEY"),
    ({"CXM_DEBUG": "true"}, "CXM_DEBUG"),
    ({"CXM_ALLOWED_HOSTS": ""}, "CXM_ALLOWED_HOSTS"),
    ({"CXM_ALLOWED_HOSTS": "*"}, "CXM_ALLOWED_HOSTS"),
    ({"CXM_ALLOWED_HOSTS": "cx.example.com,*"}, "CXM_ALLOWED_HOSTS"),
])
def test_production_refuses_unsafe_settings(config_env: Callable[..., config.Config],
                                            changes: dict[str, str], variable: str) -> None:
    with pytest.raises(config.ConfigError, match=variable):
        config_env(**{**GOOD, **changes})


def test_development_allows_the_defaults(config_env: Callable[..., config.Config]) -> None:
    loaded = config_env(CXM_DEBUG="true")
    assert loaded.secret_key == config.DEFAULT_SECRET and loaded.debug
    assert loaded.ingest_rate_limit == 20_000 and loaded.ingest_rate_burst == 40_000


@pytest.mark.parametrize(("variables", "message"), [
    ({"CXM_INGEST_RATE_LIMIT": "-1"}, "CXM_INGEST_RATE_LIMIT"),
    ({"CXM_INGEST_RATE_LIMIT": "fast"}, "CXM_INGEST_RATE_LIMIT"),
    ({"CXM_INGEST_RATE_LIMIT": "nan"}, "CXM_INGEST_RATE_LIMIT"),
    ({"CXM_INGEST_RATE_BURST": "-5"}, "CXM_INGEST_RATE_BURST"),
])
def test_bad_rate_limits_are_refused(config_env: Callable[..., config.Config],
                                     variables: dict[str, str], message: str) -> None:
    with pytest.raises(config.ConfigError, match=message):
        config_env(**variables)


def test_rate_limit_settings(config_env: Callable[..., config.Config]) -> None:
    loaded = config_env(CXM_INGEST_RATE_LIMIT="50", CXM_INGEST_RATE_BURST="500")
    assert (loaded.ingest_rate_limit, loaded.ingest_rate_burst) == (50, 500)
    assert config_env(CXM_INGEST_RATE_LIMIT="0").ingest_rate_limit == 0


def test_a_production_server_will_not_start_with_the_default_secret(tmp_path: Path) -> None:
    """The real start-up path (``cxm``) names the variable and exits."""
    import os
    import subprocess
    import sys

    environment = {k: v for k, v in os.environ.items() if not k.startswith("CXM_")}
    environment.update({"CXM_DATA_DIR": str(tmp_path), "CXM_PRODUCTION": "true",
                        "CXM_ALLOWED_HOSTS": "cx.example.com"})
    done = subprocess.run([sys.executable, "-c", "from cxm.cli import main; main()", "keys",
                           "list"], env=environment,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "CXM_SECRET_KEY" in done.stderr


# --- ingest rate limit -----------------------------------------------------------------------


def test_token_bucket() -> None:
    clock = [100.0]
    limiter = ratelimit.KeyLimiter(clock=lambda: clock[0])
    assert limiter.take("k", 10, rate=10, burst=10) == 0
    assert limiter.take("k", 1, rate=10, burst=10) == 1  # empty: wait
    assert limiter.take("other", 10, rate=10, burst=10) == 0  # each key its own bucket
    clock[0] += 0.5
    assert limiter.take("k", 5, rate=10, burst=10) == 0  # refilled 5
    assert limiter.take("k", 5, rate=10, burst=10) == 1
    clock[0] += 10
    assert limiter.take("k", 500, rate=10, burst=10) == 0  # bigger than the bucket: needs full
    assert limiter.take("k", 500, rate=10, burst=10) == 1
    clock[0] += 0.05
    assert limiter.take("k", 10, rate=10, burst=10) == 1  # rounded up to whole seconds
    assert limiter.take("k", 10**9, rate=0, burst=0) == 0  # 0 = off
    assert limiter.take("k", 30, rate=1, burst=40) == 0  # a new setting starts a new bucket


@pytest.fixture
def limited(settings: Any) -> Iterator[None]:
    ratelimit.limiter.reset()
    settings.CXM = dataclasses.replace(settings.CXM, ingest_rate_limit=5.0,
                                       ingest_rate_burst=10.0)
    yield
    ratelimit.limiter.reset()


@pytest.mark.django_db
def test_a_key_over_its_rate_gets_429_with_retry_after(
    client: Client, limited: None, make_key: Callable[..., str],
) -> None:
    from cxm.ingest.models import Event, Outcome

    key, other = make_key("ingest", name="busy"), make_key("ingest", name="calm")
    batch = {"batch": [{"type": "track", "userId": "u", "event": "E", "messageId": f"m{i}"}
                       for i in range(8)]}
    assert post(client, "/v1/batch", batch, key).status_code == 200
    assert post(client, "/v1/track", {"userId": "u", "event": "E"}, key).status_code == 200
    assert post(client, "/v1/track", {"userId": "u", "event": "E"}, key).status_code == 200
    refused = post(client, "/v1/batch", {"batch": [
        {"type": "track", "userId": "u", "event": "E", "messageId": f"late{i}"}
        for i in range(3)]}, key)
    assert refused.status_code == 429
    assert refused.json() == {"success": False, "code": "rate_limited",
                              "message": refused.json()["message"]}
    assert "5 events a second" in refused.json()["message"]
    assert int(refused["Retry-After"]) >= 1
    assert refused["Access-Control-Allow-Origin"] == "*"
    assert not Event.objects.filter(message_id__startswith="late").exists()
    # counted as rejected, each message
    assert Outcome.objects.get(outcome="rejected", reason="rate_limited").count == 3
    # another key has its own bucket
    assert post(client, "/v1/track", {"userId": "u", "event": "E"}, other).status_code == 200


@pytest.mark.django_db
def test_a_refused_key_is_not_charged_for_the_rate(
    client: Client, limited: None, make_key: Callable[..., str],
) -> None:
    """A request refused before the limit (bad key, bad JSON) costs nothing."""
    key = make_key("ingest")
    for _ in range(20):
        assert post(client, "/v1/track", None, key, raw=b"{not json").status_code == 400
    assert post(client, "/v1/track", {"userId": "u", "event": "E"}, key).status_code == 200
