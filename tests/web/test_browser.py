"""The web UI in a real headless Chromium: htmx search, the 360 page's chart and "Load more",
and creating an API key. Screenshots go to /tmp/cxm-screens/ (never into the repository)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from cxm.identity import queries
from tests.web.conftest import PASSWORD, Customer, make_customer, watch

# pytest-playwright's sync API keeps an event loop running in this thread, and Django refuses
# ORM calls from a thread with a running loop; the tests and fixtures here are plain sync code.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
VENDOR = ROOT / "src" / "cxm" / "web" / "static" / "vendor"
SCREENS = Path("/tmp/cxm-screens")


@pytest.fixture(scope="session", autouse=True)
def _vendored_assets() -> None:
    """htmx and ECharts come from npm through scripts/build-assets; build them if missing."""
    if all((VENDOR / name).is_file() for name in ("htmx.min.js", "echarts.min.js")):
        return
    done = subprocess.run([str(ROOT / "scripts" / "build-assets")], cwd=ROOT,
                          capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        pytest.fail(f"scripts/build-assets failed:\n{done.stdout}\n{done.stderr}")


@pytest.fixture
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_context_args, "viewport": {"width": 1440, "height": 900}}


@pytest.fixture
def watched(page: Page, live_server: Any) -> Iterator[Page]:
    """The page, failing the test on a script error, a failed request or any request that
    leaves the server under test (``tests.web.conftest.watch``)."""
    problems = watch(page, (live_server.url,))
    yield page
    assert problems == []


def sign_in(page: Page, base: str, username: str = "admin") -> None:
    page.goto(f"{base}/customers/")
    expect(page).to_have_url(f"{base}/login/?next=/customers/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{base}/customers/")


@pytest.fixture
def crowd(transactional_db: Any, customer: Customer) -> Customer:
    """The customer under test among a few others, so lists look like lists."""
    others = [("Grace Hopper", "grace@example.org", "+442079460958"),
              ("Katherine Johnson", "kj@example.net", "+12025550143"),
              ("Alan Turing", "alan@example.co.uk", "+442079460123"),
              ("Hedy Lamarr", "hedy@example.com", "+13105550199")]
    for index, (name, email, phone) in enumerate(others):
        make_customer(name=name, email=email, phone=phone, user_id=f"u-{index}",
                      anonymous_id=f"anon-{index}", tracks=5 + index * 7, prefix=f"c{index}")
    return customer


def test_search_then_customer_360_then_load_more(
    watched: Page, live_server: Any, staff_user: Any, crowd: Customer,
) -> None:
    page, base = watched, live_server.url
    SCREENS.mkdir(parents=True, exist_ok=True)
    sign_in(page, base)
    expect(page.get_by_role("heading", name="Customers", exact=True)).to_be_visible()
    expect(page.get_by_test_id("total-profiles")).to_have_text("5")
    page.screenshot(path=str(SCREENS / "customers.png"), full_page=True)

    # Typing updates the results through htmx: no page load, the table swaps in place.
    page.evaluate("window.__samePage = true")
    with page.expect_response(lambda r: "/customers/results/" in r.url
                              and "ada%40example.com" in r.url):
        page.get_by_role("searchbox").press_sequentially(crowd.email, delay=15)
    results = page.locator("#results")
    expect(results).to_contain_text(f"Results for “{crowd.email}”")
    expect(results.locator("tbody tr")).to_have_count(1)
    expect(results).not_to_contain_text("Grace Hopper")
    assert page.evaluate("window.__samePage") is True
    expect(page).to_have_url(f"{base}/?q=ada%40example.com")
    page.screenshot(path=str(SCREENS / "customers-search.png"), full_page=True)

    # Through to the 360 page.
    results.get_by_role("link", name=crowd.name).click()
    expect(page).to_have_url(f"{base}/customers/{crowd.id}/")
    expect(page.get_by_test_id("profile-name")).to_have_text(crowd.name)
    expect(page.locator("#channel-chart canvas")).to_have_count(1)
    rows = page.locator("#timeline-rows tr.event-row")
    expect(rows).to_have_count(50)
    expect(rows.first).to_contain_text("Step 069")
    expect(page.get_by_test_id("identities")).to_contain_text("u-ada")
    expect(page.get_by_test_id("traits")).to_contain_text("gold")
    page.screenshot(path=str(SCREENS / "customer-360.png"))
    page.screenshot(path=str(SCREENS / "customer-360-full.png"), full_page=True)

    # "Load more" appends the next page of the timeline in place.
    page.evaluate("window.__samePage = true")
    page.get_by_role("link", name="Load more").click()
    expect(rows).to_have_count(crowd.events)
    expect(rows.last).to_contain_text("Identified")
    expect(page.get_by_role("link", name="Load more")).to_have_count(0)
    assert page.evaluate("window.__samePage") is True
    expect(page).to_have_url(f"{base}/customers/{crowd.id}/")

    # The channel filter swaps the rows for that channel's.
    emails = queries.channel_counts(queries.canonical(crowd.id))["email"]
    page.get_by_label("Channel", exact=True).select_option("email")
    expect(rows).to_have_count(emails)
    expect(page.locator("#timeline-rows .badge", has_text="web")).to_have_count(0)


def test_create_and_revoke_an_api_key(
    watched: Page, live_server: Any, staff_user: Any,
) -> None:
    from cxm.accounts.models import ApiKey

    page, base = watched, live_server.url
    sign_in(page, base)
    page.get_by_role("link", name="API keys").click()
    expect(page).to_have_url(f"{base}/settings/keys/")
    page.get_by_label("Name").fill("Mobile app")
    page.get_by_label("Scope").select_option("read")
    page.get_by_role("button", name="Create key").click()
    secret = page.get_by_test_id("new-key-value")
    expect(secret).to_be_visible()
    plaintext = secret.inner_text().strip()
    row = ApiKey.objects.get(name="Mobile app")
    assert plaintext.startswith(f"cxm_{row.prefix}_") and row.digest != plaintext
    assert row.scope == "read"
    expect(page.get_by_test_id("key-table")).to_contain_text("Mobile app")
    SCREENS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENS / "api-keys.png"), full_page=True)

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_test_id("key-table").get_by_role("button", name="Revoke").click()
    expect(page.get_by_role("status")).to_contain_text("is revoked")
    expect(page.get_by_test_id("key-table")).to_contain_text("revoked")
    expect(page.get_by_test_id("key-table")).not_to_contain_text(plaintext)
    row.refresh_from_db()
    assert row.revoked_at is not None


def test_a_non_staff_user_sees_no_keys(page: Page, live_server: Any, plain_user: Any) -> None:
    base = live_server.url
    sign_in(page, base, username="agent")
    expect(page.get_by_role("link", name="API keys")).to_have_count(0)
    response = page.goto(f"{base}/settings/keys/")
    assert response is not None and response.status == 403


def test_an_expired_session_sends_the_search_box_to_the_login_page(
    page: Page, live_server: Any, plain_user: Any,
) -> None:
    base = live_server.url
    sign_in(page, base, username="agent")
    page.context.clear_cookies()
    page.get_by_role("searchbox").press_sequentially("ada", delay=15)
    expect(page).to_have_url(f"{base}/login/?next=/customers/")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()


def test_users_page_create_a_user_and_change_their_role(
    watched: Page, live_server: Any, staff_user: Any, plain_user: Any,
) -> None:
    from cxm.accounts import principals

    page, base = watched, live_server.url
    sign_in(page, base)
    page.get_by_role("link", name="Users").click()
    expect(page).to_have_url(f"{base}/settings/users/")
    form = page.get_by_test_id("new-user-form")
    form.get_by_label("Username", exact=True).fill("nina")
    form.get_by_label("Password").fill("correct-horse-9")
    form.get_by_label("Role").select_option("marketer")
    form.get_by_role("button", name="Add user").click()
    expect(page.get_by_role("status")).to_contain_text("User nina created as marketer")
    row = page.get_by_test_id("user-nina")
    expect(row.get_by_label("Role of nina")).to_have_value("marketer")
    row.get_by_label("Role of nina").select_option("analyst")
    row.get_by_role("button", name="Change").click()
    expect(page.get_by_role("status")).to_contain_text("nina is now analyst")
    SCREENS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENS / "users.png"), full_page=True)

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_test_id("user-agent").get_by_role("button", name="Deactivate").click()
    expect(page.get_by_role("status")).to_contain_text("agent is deactivated")
    expect(page.get_by_test_id("user-agent")).to_contain_text("deactivated")
    from django.contrib.auth import get_user_model

    assert principals.role_of(get_user_model().objects.get(username="nina")) == "analyst"


def test_a_viewer_sees_masked_customers_and_the_chart_works_under_the_csp(
    watched: Page, live_server: Any, crowd: Customer,
) -> None:
    from tests.web.conftest import make_user

    make_user("vera", role="viewer")
    page, base = watched, live_server.url
    sign_in(page, base, username="vera")
    expect(page.get_by_test_id("customer-results")).not_to_contain_text(crowd.email)
    expect(page.get_by_test_id("customer-results")).to_contain_text("a***@example.com")
    page.goto(f"{base}/customers/{crowd.id}/")
    expect(page.get_by_test_id("profile-name")).to_have_text("Ad***")
    chart = page.locator("#channel-chart canvas")
    expect(chart).to_have_count(1)
    box = chart.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + 20)  # the tooltip appears
    page.wait_for_timeout(400)
    badge = page.locator("#timeline-rows .badge.ch-web").first
    colour = badge.evaluate("el => getComputedStyle(el).color")
    assert colour == "rgb(37, 99, 235)"  # #2563eb from the stylesheet, no inline style
    SCREENS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENS / "customer-360-viewer.png"))


def test_the_api_docs_load_under_the_csp(watched: Page, live_server: Any) -> None:
    page, base = watched, live_server.url
    page.goto(f"{base}/api/v1/docs")
    expect(page.get_by_text("/api/v1/profiles/{profile_id}/timeline")).to_be_visible()
