"""The web UI through Django's test client: who may see what, search, the 360 page, unmerge
and API keys. Data goes in through the real ingest path; checks go through the queries."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from cxm.identity import queries
from tests.web.conftest import PASSWORD, Customer, ingest, make_customer, stamp

pytestmark = pytest.mark.django_db


def html(response: Any) -> str:
    return response.content.decode()


def event_rows(text: str) -> int:
    return text.count('class="event-row"')


# --- who may see what ------------------------------------------------------------------------


@pytest.mark.parametrize("path", [
    "/", "/customers/", "/customers/results/?q=ada",
    f"/customers/{uuid.UUID(int=1)}/", f"/customers/{uuid.UUID(int=1)}/timeline/",
    "/settings/keys/",
])
def test_pages_need_a_login(client: Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")


def test_posts_need_a_login(client: Client) -> None:
    for path in (f"/customers/{uuid.UUID(int=1)}/merges/1/undo/", "/settings/keys/",
                 "/settings/keys/abc/revoke/"):
        response = client.post(path)
        assert response.status_code == 302
        assert response["Location"].startswith("/login/")


def test_htmx_requests_without_a_session_are_sent_to_the_login_page(client: Client) -> None:
    response = client.get("/customers/results/", {"q": "ada"}, headers={
        "HX-Request": "true", "HX-Current-URL": "http://testserver/?q=ad"})
    assert response.status_code == 401
    assert response["HX-Redirect"] == "/login/?next=/%3Fq%3Dad"
    assert response.content == b""


def test_healthz_is_open(client: Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_login_with_csrf_and_logout(staff_user: Any) -> None:
    browser = Client(enforce_csrf_checks=True)
    page = browser.get("/login/")
    assert page.status_code == 200
    assert 'name="csrfmiddlewaretoken"' in html(page)
    # Without the token the form is refused.
    refused = browser.post("/login/", {"username": "admin", "password": PASSWORD})
    assert refused.status_code == 403
    token = browser.cookies["csrftoken"].value
    wrong = browser.post("/login/", {"username": "admin", "password": "nope-nope-nope",
                                     "csrfmiddlewaretoken": token})
    assert wrong.status_code == 200
    assert "did not match" in html(wrong)
    done = browser.post("/login/", {"username": "admin", "password": PASSWORD,
                                    "csrfmiddlewaretoken": token, "next": "/settings/keys/"})
    assert done.status_code == 302
    assert done["Location"] == "/settings/keys/"
    assert browser.get("/").status_code == 200
    token = browser.cookies["csrftoken"].value
    out = browser.post("/logout/", {"csrfmiddlewaretoken": token})
    assert out.status_code == 302
    assert browser.get("/").status_code == 302


# --- customers and search --------------------------------------------------------------------


@pytest.fixture
def two_customers(customer: Customer) -> tuple[Customer, Customer]:
    other = make_customer(name="Grace Hopper", email="grace@example.org", phone="+442079460958",
                          user_id="u-grace", anonymous_id="anon-grace", tracks=3, prefix="gr")
    return customer, other


def test_customers_page_lists_recent_customers_and_totals(
    login: Callable[[Any], Client], staff_user: Any, two_customers: tuple[Customer, Customer],
) -> None:
    ada, grace = two_customers
    text = html(login(staff_user).get("/"))
    assert "Recently active customers" in text
    assert ada.name in text and grace.name in text
    assert ada.email in text and ada.phone in text
    assert re.search(r'data-testid="total-profiles">2<', text)
    assert re.search(rf'data-testid="total-events">{ada.events + grace.events}<', text)
    assert 'hx-get="/customers/results/"' in text
    assert 'hx-trigger="keyup changed delay:300ms, search"' in text


@pytest.mark.parametrize("query", [
    "ada@example.com", "ADA@Example.com", "+14155550123", "(415) 555-0123", "Lovelace",
    "ada LOVELACE", "u-ada", "anon-ada", "ada-77", "{id}",
])
def test_search_finds_a_customer(
    login: Callable[[Any], Client], plain_user: Any, two_customers: tuple[Customer, Customer],
    query: str,
) -> None:
    ada, grace = two_customers
    client = login(plain_user)
    query = query.replace("{id}", str(ada.id))
    for path in ("/", "/customers/results/"):
        response = client.get(path, {"q": query})
        assert response.status_code == 200
        text = html(response)
        assert f"/customers/{ada.id}/" in text, (path, query)
        assert grace.name not in text
        assert ada.email in text


@pytest.mark.parametrize("query", ["Ada Love", "Love", "lovelac", "ada@example", "4155550"])
def test_search_matches_whole_words_only(
    login: Callable[[Any], Client], plain_user: Any, customer: Customer, query: str,
) -> None:
    """Names, emails and phones are encrypted at rest, so search compares blind tokens of
    whole words (and exact identifiers): the trade-off is that a partial word, a prefix of an
    email or of a phone number finds nothing."""
    client = login(plain_user)
    for path in ("/", "/customers/results/"):
        text = html(client.get(path, {"q": query}))
        assert "No customer matches" in text, (path, query)
        assert f"/customers/{customer.id}/" not in text, (path, query)


def test_search_partial_is_a_fragment_and_keeps_the_url(
    login: Callable[[Any], Client], plain_user: Any, customer: Customer,
) -> None:
    response = login(plain_user).get("/customers/results/", {"q": "ada@example.com"},
                                     headers={"HX-Request": "true"})
    text = html(response)
    assert "<html" not in text and "<table" in text
    assert response["HX-Replace-Url"] == "/?q=ada%40example.com"


def test_search_without_a_match_says_so(
    login: Callable[[Any], Client], plain_user: Any, customer: Customer,
) -> None:
    text = html(login(plain_user).get("/", {"q": "nobody@nowhere.example"}))
    assert "No customer matches" in text
    assert f"/customers/{customer.id}/" not in text


# --- customer 360 ----------------------------------------------------------------------------


def test_customer_page_shows_profile_traits_identities_and_timeline(
    login: Callable[[Any], Client], plain_user: Any, customer: Customer,
) -> None:
    response = login(plain_user).get(f"/customers/{customer.id}/")
    assert response.status_code == 200
    text = html(response)
    assert customer.name in text and customer.email in text and customer.phone in text
    assert 'data-testid="profile-events">71<' in text
    # traits, preferences and consent
    assert "plan" in text and "gold" in text
    assert "pillow" in text and "soft" in text
    assert "marketing" in text and "granted" in text
    # identities: kind and value
    for label, value in (("User id", "u-ada"), ("Anonymous id", "anon-ada"),
                         ("Email", "ada@example.com"), ("External · shopify", "ada-77")):
        assert label in text and value in text
    # timeline: newest 50 first, with a way to load more
    assert event_rows(text) == 50
    assert text.index("Step 069") < text.index("Step 020")
    assert "Step 019" not in text
    assert "ORD-069" in text
    assert "Load more" in text and 'hx-get="/customers/' in text
    # channel chart fed by json_script, badges coloured per channel
    assert '<script id="channel-data" type="application/json">' in text
    assert 'id="channel-chart"' in text
    assert "vendor/echarts.min.js" in text and "vendor/htmx.min.js" in text
    assert 'class="badge ch-web"' in text and "style=" not in text  # no inline styles (CSP)
    # Everything the page loads comes from this server (no CDN: the product runs offline).
    assert all(url.startswith(("/", "?", "#"))
               for url in re.findall(r'(?:src|href)="([^"]*)"', text))
    # an agent cannot undo merges (none here anyway) and sees no keys or users link
    assert "/settings/keys/" not in text and "/settings/users/" not in text


def test_timeline_pages_with_the_cursor_and_filters_by_channel(
    login: Callable[[Any], Client], plain_user: Any, customer: Customer,
) -> None:
    client = login(plain_user)
    profile = queries.canonical(customer.id)
    first = queries.timeline(profile, limit=50)
    assert first.next_cursor
    more = client.get(f"/customers/{customer.id}/timeline/", {"cursor": first.next_cursor},
                      headers={"HX-Request": "true"})
    assert more.status_code == 200
    text = html(more)
    assert event_rows(text) == customer.events - 50
    assert "Step 019" in text and "Step 069" not in text
    assert "Load more" not in text

    emails = html(client.get(f"/customers/{customer.id}/timeline/", {"channel": "email"}))
    expected = queries.channel_counts(profile)["email"]
    assert event_rows(emails) == expected
    assert ">web<" not in emails and ">email<" in emails

    # The plain (no-JS) page takes the same parameters.
    page = html(client.get(f"/customers/{customer.id}/", {"cursor": first.next_cursor}))
    assert event_rows(page) == customer.events - 50
    assert "Back to newest" in page

    bad = client.get(f"/customers/{customer.id}/timeline/", {"cursor": "not-a-cursor"})
    assert bad.status_code == 400
    bad = client.get(f"/customers/{customer.id}/timeline/", {"channel": "pigeon"})
    assert bad.status_code == 400


def test_unknown_customer_is_404(login: Callable[[Any], Client], plain_user: Any) -> None:
    client = login(plain_user)
    assert client.get(f"/customers/{uuid.uuid4()}/").status_code == 404
    assert client.get(f"/customers/{uuid.uuid4()}/timeline/").status_code == 404
    assert client.get("/customers/not-a-uuid/").status_code == 404


# --- merges and unmerge ----------------------------------------------------------------------


@pytest.fixture
def merged_pair(db: Any) -> tuple[uuid.UUID, uuid.UUID]:
    """An anonymous visitor (older) and a signed-in user, then one event tying them together:
    the user's profile is merged into the visitor's. Returns (survivor, merged)."""
    ingest([{"type": "identify", "messageId": "m-1", "anonymousId": "anon-m",
             "timestamp": stamp(0),
             "traits": {"email": "hedy@example.com", "name": "Hedy Lamarr"}}])
    survivor = queries.by_identifier("anonymous_id", "anon-m").id
    ingest([{"type": "identify", "messageId": "m-2", "userId": "u-hedy", "timestamp": stamp(5),
             "traits": {"plan": "pro"}},
            {"type": "track", "messageId": "m-3", "userId": "u-hedy", "event": "Logged In",
             "timestamp": stamp(6)}])
    merged = queries.by_identifier("user_id", "u-hedy").id
    assert merged != survivor
    ingest([{"type": "track", "messageId": "m-4", "userId": "u-hedy", "anonymousId": "anon-m",
             "event": "Checkout Started", "timestamp": stamp(10)}])
    assert queries.canonical(merged).id == survivor
    return survivor, merged


def test_merged_id_redirects_to_the_survivor_with_a_notice(
    login: Callable[[Any], Client], plain_user: Any, merged_pair: tuple[uuid.UUID, uuid.UUID],
) -> None:
    survivor, merged = merged_pair
    client = login(plain_user)
    response = client.get(f"/customers/{merged}/")
    assert response.status_code == 302
    assert response["Location"] == f"/customers/{survivor}/"
    text = html(client.get(response["Location"]))
    assert "was merged into this customer" in text
    assert "Absorbed" in text and str(merged)[:8] in text
    assert "Undo merge" not in text  # an agent lacks profile.merge


def test_an_admin_can_undo_a_merge_from_the_page(
    login: Callable[[Any], Client], staff_user: Any, merged_pair: tuple[uuid.UUID, uuid.UUID],
) -> None:
    survivor, merged = merged_pair
    client = login(staff_user)
    text = html(client.get(f"/customers/{survivor}/"))
    assert "Undo merge" in text
    (merge,) = queries.merges(queries.canonical(survivor))
    response = client.post(f"/customers/{survivor}/merges/{merge.pk}/undo/", follow=True)
    assert response.status_code == 200
    assert "Merge undone" in html(response)
    # Both profiles exist on their own again, each with its own identities.
    assert queries.canonical(merged).id == merged
    assert queries.by_identifier("user_id", "u-hedy").id == merged
    assert queries.by_identifier("email", "hedy@example.com").id == survivor
    (undone,) = queries.merges(queries.canonical(survivor))
    assert undone.undone_at is not None
    assert undone.undone_by == f"user:{staff_user.pk}"
    assert client.get(f"/customers/{merged}/").status_code == 200

    # Undoing twice reports the action's error instead of failing.
    again = client.post(f"/customers/{survivor}/merges/{merge.pk}/undo/", follow=True)
    assert "Could not undo the merge: this merge was already undone" in html(again)


def test_an_agent_cannot_undo_a_merge(
    login: Callable[[Any], Client], plain_user: Any, merged_pair: tuple[uuid.UUID, uuid.UUID],
) -> None:
    survivor, merged = merged_pair
    (merge,) = queries.merges(queries.canonical(survivor))
    client = login(plain_user)
    response = client.post(f"/customers/{survivor}/merges/{merge.pk}/undo/")
    assert response.status_code == 403
    assert queries.canonical(merged).id == survivor
    # And the undo endpoint only takes POST.
    assert client.get(f"/customers/{survivor}/merges/{merge.pk}/undo/").status_code == 405


def test_unmerge_needs_csrf(staff_user: Any, merged_pair: tuple[uuid.UUID, uuid.UUID]) -> None:
    survivor, merged = merged_pair
    (merge,) = queries.merges(queries.canonical(survivor))
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)
    assert client.post(f"/customers/{survivor}/merges/{merge.pk}/undo/").status_code == 403
    assert queries.canonical(merged).id == survivor


# --- API keys --------------------------------------------------------------------------------


def test_keys_page_needs_keys_manage(login: Callable[[Any], Client], plain_user: Any) -> None:
    client = login(plain_user)
    assert client.get("/settings/keys/").status_code == 403
    assert client.post("/settings/keys/", {"name": "x", "scope": "ingest"}).status_code == 403
    assert client.post("/settings/keys/abc/revoke/").status_code == 403
    assert "API keys" not in html(client.get("/"))


def test_an_admin_creates_and_revokes_a_key(
    login: Callable[[Any], Client], staff_user: Any,
) -> None:
    from cxm.accounts import auth, keys
    from cxm.accounts.models import ApiKey

    client = login(staff_user)
    assert client.get("/settings/keys/").status_code == 200
    response = client.post("/settings/keys/", {"name": "Website", "scope": "ingest",
                                               "default_channel": "web"})
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    match = re.search(r'data-testid="new-key-value">([^<]+)<', html(response))
    assert match
    plaintext = match.group(1)
    row = ApiKey.objects.get(name="Website")
    assert plaintext.startswith(f"cxm_{row.prefix}_")
    assert row.digest != plaintext and plaintext not in row.digest
    assert keys.matches(plaintext, row.digest)
    assert (row.scope, row.default_channel, row.created_by_id) == ("ingest", "web", staff_user.pk)
    assert auth.authenticate(plaintext) is not None

    # Shown once: the list never shows it again.
    listing = html(client.get("/settings/keys/"))
    assert plaintext not in listing
    assert row.prefix in listing and "Website" in listing and "active" in listing

    revoked = client.post(f"/settings/keys/{row.prefix}/revoke/", follow=True)
    assert revoked.status_code == 200
    assert "is revoked" in html(revoked)
    row.refresh_from_db()
    assert row.revoked_at is not None
    auth.clear_cache()
    assert auth.authenticate(plaintext) is None
    assert client.post("/settings/keys/nosuchkey/revoke/").status_code == 404


def test_key_form_reports_bad_input(login: Callable[[Any], Client], staff_user: Any) -> None:
    from cxm.accounts.models import ApiKey

    client = login(staff_user)
    response = client.post("/settings/keys/", {"name": "  ", "scope": "ingest"})
    assert response.status_code == 400
    assert "This field is required" in html(response)
    response = client.post("/settings/keys/", {"name": "x", "scope": "root"})
    assert response.status_code == 400
    assert 'data-testid="new-key"' not in html(response)
    assert not ApiKey.objects.exists()
