"""Theme jobs: discovery and the re-sorting of every comment run in the worker, recorded in a
``ThemeJob`` (queued → running → done | failed). One discovery at a time; a failure records
why and leaves the previous themes and links whole; the audit rows name who asked."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import IntegrityError, transaction
from django.test import Client

from cxm.core.audit import Actor
from cxm.core.clock import now
from cxm.core.errors import InvalidInput
from cxm.core.models import AuditLog
from cxm.feedback import actions, queries
from cxm.feedback.models import Response, Survey, Theme, ThemeJob
from tests.feedback.test_api import call

pytest.importorskip("cxm.text.themes")

ANALYST = Actor("user:42")
COMMENTS = ("The delivery was late and the courier was rude",
            "Late delivery again, the parcel arrived a week late",
            "Delivery late, courier never rang the bell",
            "Great price and cheap shipping", "Good price, cheaper than the shop",
            "The price was fair and the discount great",
            "The box arrived damaged and the vase was broken",
            "Damaged packaging, broken glass inside")
TASK = "cxm.feedback.run_theme_job"


def add_comments(survey: Survey, comments: tuple[str, ...] = COMMENTS, repeat: int = 2) -> None:
    for round_ in range(repeat):
        for index, comment in enumerate(comments):
            actions.submit(actions.Submission(
                survey=survey, answers={"score": 2 + index % 9, "why": comment},
                channel="import", client_key=f"c-{round_}-{index}"), actor=Actor("test"))


def links() -> set[tuple[str, int]]:
    return {(str(r), t) for r, t in Response.themes.through.objects.values_list(
        "response_id", "theme_id")}


def themes() -> dict[int, tuple[str, list[str]]]:
    return {t.id: (t.name, sorted(t.keywords)) for t in Theme.objects.all()}


@pytest.fixture
def commented(nps_survey: Survey) -> Survey:
    add_comments(nps_survey)
    return nps_survey


@pytest.fixture
def queue() -> Iterator[Any]:
    """The real queue (huey not immediate): tasks wait for a worker, as in production."""
    from huey.contrib.djhuey import HUEY

    assert not HUEY.immediate
    HUEY.flush()
    try:
        yield HUEY
    finally:
        HUEY.flush()


@pytest.fixture
def immediate_huey() -> Iterator[Any]:
    """CXM_QUEUE=immediate: tasks run inline after commit, as a worker would run them."""
    from huey.contrib.djhuey import HUEY

    before = HUEY.immediate
    HUEY.immediate = True
    try:
        yield HUEY
    finally:
        HUEY.immediate = before


def waiting_jobs(huey: Any) -> list[tuple[Any, ...]]:
    return [tuple(task.args) for task in huey.pending() if task.name == TASK]


# --- queued: the request only writes the job and hands it to the queue ---------------------


@pytest.mark.django_db
def test_a_discovery_is_queued_once_and_runs_once(
    commented: Survey, queue: Any, django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        first = actions.request_discovery(actor=ANALYST, max_themes=4)
    assert first.created and first.job.status == "queued" and first.job.kind == "discover"
    assert first.job.requested_by == "user:42" and first.job.started_at is None
    assert waiting_jobs(queue) == [(first.job.id,)]
    assert not Theme.objects.exists()  # nothing done in the request

    # A second click (or a retried request) gets the same job; nothing more is queued.
    with django_capture_on_commit_callbacks(execute=True):
        again = actions.request_discovery(actor=Actor("user:7"))
    assert not again.created and again.job.id == first.job.id
    assert waiting_jobs(queue) == [(first.job.id,)]
    assert ThemeJob.objects.count() == 1
    assert AuditLog.objects.filter(action="theme.job_queued").count() == 1
    assert queries.theme_job_to_show() == first.job

    # The worker runs it (as tasks.run_theme_job does), acting as the analyst who asked.
    done = actions.run_theme_job(first.job.id)
    assert done.status == "done" and done.error == ""
    assert done.started_at is not None and done.finished_at is not None
    assert done.comments == len(COMMENTS) * 2 and done.theme_links == len(links()) > 0
    assert done.themes_created == Theme.objects.count() > 0
    (row,) = AuditLog.objects.filter(action="theme.discover")
    assert row.actor == "user:42" and row.changes["job"] == done.id
    assert queries.theme_job_to_show() is None

    # A second delivery of the same task changes nothing.
    before = (themes(), links())
    assert actions.run_theme_job(first.job.id).status == "done"
    assert (themes(), links()) == before
    assert AuditLog.objects.filter(action="theme.discover").count() == 1

    # Once it is done, the next request starts a new discovery.
    with django_capture_on_commit_callbacks(execute=True):
        later = actions.request_discovery(actor=ANALYST)
    assert later.created and later.job.id != first.job.id


@pytest.mark.django_db
def test_a_running_discovery_is_returned_too(commented: Survey) -> None:
    job = actions.request_discovery(actor=ANALYST).job
    ThemeJob.objects.filter(id=job.id).update(status="running", started_at=now())
    assert actions.request_discovery(actor=ANALYST).job.id == job.id


@pytest.mark.django_db
def test_the_database_refuses_a_second_active_discovery(commented: Survey) -> None:
    actions.request_discovery(actor=ANALYST)
    with pytest.raises(IntegrityError), transaction.atomic():
        ThemeJob.objects.create(kind="discover", requested_by="user:1", status="running")


@pytest.mark.django_db
def test_a_lost_job_is_retired_and_a_new_one_starts(commented: Survey) -> None:
    lost = actions.request_discovery(actor=ANALYST).job
    ThemeJob.objects.filter(id=lost.id).update(created_at=now() - timedelta(hours=2))
    fresh = actions.request_discovery(actor=ANALYST)
    assert fresh.created and fresh.job.id != lost.id
    lost.refresh_from_db()
    assert lost.status == "failed" and "cxm worker" in lost.error
    # Should the old task still reach a worker, it does nothing.
    assert actions.run_theme_job(lost.id).status == "failed"
    assert not Theme.objects.exists()


@pytest.mark.django_db
def test_max_themes_is_checked() -> None:
    with pytest.raises(InvalidInput):
        actions.request_discovery(actor=ANALYST, max_themes=0)


# --- failure: recorded, and the previous themes and links stay whole ------------------------


@pytest.mark.django_db
def test_a_failing_job_records_why_and_keeps_the_previous_links(
    commented: Survey, monkeypatch: pytest.MonkeyPatch,
) -> None:
    actions.discover_themes(actor=ANALYST, max_themes=3)
    before_themes, before_links = themes(), links()
    assert before_links
    job = actions.request_discovery(actor=ANALYST, max_themes=5).job
    real = actions._replace_links

    def replace_then_fail(*args: Any, **kwargs: Any) -> int:
        real(*args, **kwargs)  # the old links are gone inside the transaction…
        raise RuntimeError("disk full")

    monkeypatch.setattr(actions, "_replace_links", replace_then_fail)
    failed = actions.run_theme_job(job.id)
    assert failed.status == "failed" and failed.error == "RuntimeError: disk full"
    assert failed.finished_at is not None
    assert (themes(), links()) == (before_themes, before_links)  # …and back after rollback
    assert AuditLog.objects.filter(action="theme.discover").count() == 1  # the first only
    (row,) = AuditLog.objects.filter(action="theme.job_failed")
    assert row.actor == "user:42" and row.target_id == str(job.id)
    assert queries.theme_job_to_show() == failed
    # The failed job does not block the next discovery.
    assert actions.request_discovery(actor=ANALYST).created


# --- CXM_QUEUE=immediate: the whole lifecycle inline ----------------------------------------


@pytest.mark.django_db(transaction=True)
def test_lifecycle_with_an_immediate_queue(nps_survey: Survey, immediate_huey: Any) -> None:
    add_comments(nps_survey)
    requested = actions.request_discovery(actor=ANALYST, max_themes=4)
    job = queries.theme_job(requested.job.id)
    assert job.status == "done" and job.themes_created > 0 and job.comments == 16
    damaged = [r.id for r in Response.objects.all()
               if "amaged" in queries.comment_of(r)]
    theme = Theme.objects.order_by("id").first()
    assert theme is not None
    edit = actions.edit_theme(theme.id, actor=ANALYST, keywords=["damaged", "broken"])
    assert edit.job is not None and edit.theme.keywords.keys() == {"damaged", "broken"}
    rematch = queries.theme_job(edit.job.id)
    assert rematch.kind == "rematch" and rematch.status == "done"
    assert rematch.theme_id == theme.id and rematch.comments == 16
    members = set(theme.responses.values_list("id", flat=True))
    assert members and members <= set(damaged)
    (row,) = AuditLog.objects.filter(action="theme.rematch")
    assert row.actor == "user:42"


# --- key word edits: the theme at once, the re-sort in the worker ---------------------------


@pytest.mark.django_db
def test_a_keyword_edit_changes_the_theme_at_once_and_queues_the_resort(
    commented: Survey,
) -> None:
    actions.discover_themes(actor=ANALYST, max_themes=3)
    theme = Theme.objects.order_by("id").first()
    assert theme is not None
    before_links = links()
    edit = actions.edit_theme(theme.id, actor=ANALYST, keywords=["damaged", "broken"])
    theme.refresh_from_db()
    assert set(theme.keywords) == {"damaged", "broken"} and theme.edited
    assert edit.job is not None and edit.job.status == "queued"
    assert links() == before_links  # not yet sorted again
    # A second edit before the worker starts is covered by the same job.
    second = actions.edit_theme(theme.id, actor=ANALYST, keywords=["damaged", "glass"])
    assert second.job is not None and second.job.id == edit.job.id
    # A rename alone sorts nothing.
    assert actions.edit_theme(theme.id, actor=ANALYST, name="Breakage").job is None
    # A discovery may be asked for while a re-sort waits.
    assert actions.request_discovery(actor=ANALYST).created

    done = actions.run_theme_job(edit.job.id)
    assert done.status == "done" and done.comments == len(COMMENTS) * 2
    matched = {queries.comment_of(r) for r in Response.objects.filter(themes=theme)}
    assert matched and all("amaged" in c or "glass" in c for c in matched)
    after = links()
    assert after != before_links
    actions.rematch_themes(actor=ANALYST)  # the same as sorting in the request would give
    assert links() == after


@pytest.mark.django_db
def test_a_resort_sees_an_edit_made_while_it_read_the_comments(
    commented: Survey, monkeypatch: pytest.MonkeyPatch,
) -> None:
    actions.discover_themes(actor=ANALYST, max_themes=3)
    theme = Theme.objects.order_by("id").first()
    assert theme is not None
    job = actions.edit_theme(theme.id, actor=ANALYST, keywords=["price"]).job
    assert job is not None
    real = actions._sort
    calls: list[int] = []

    def sort_then_edit(*args: Any) -> Any:
        planned = real(*args)
        if not calls:  # a colleague saves other key words while the worker sorts
            Theme.objects.filter(id=theme.id).update(keywords={"damaged": 1.0})
        calls.append(1)
        return planned

    monkeypatch.setattr(actions, "_sort", sort_then_edit)
    assert actions.run_theme_job(job.id).status == "done"
    assert len(calls) == 2  # sorted again, under the lock, with the colleague's words
    after = links()
    actions.rematch_themes(actor=ANALYST)  # sorting now, with the words saved last
    assert links() == after


# --- merging stays synchronous: the answers are re-pointed ----------------------------------


@pytest.mark.django_db
def test_merge_repoints_the_answers_without_a_job(commented: Survey) -> None:
    actions.discover_themes(actor=ANALYST, max_themes=4)
    first, second = Theme.objects.order_by("id")[:2]
    expected = set(first.responses.values_list("id", flat=True)) | set(
        second.responses.values_list("id", flat=True))
    actions.merge_themes(second.id, first.id, actor=ANALYST)
    assert set(first.responses.values_list("id", flat=True)) == expected
    assert not second.responses.exists()
    assert not ThemeJob.objects.exists()
    assert AuditLog.objects.get(action="theme.merge").changes["merged"] == str(second.id)


# --- the API: 202 with the job, then its status ----------------------------------------------


@pytest.mark.django_db
def test_api_discover_answers_202_with_the_job(
    client: Client, admin_key: str, read_key: str, commented: Survey,
) -> None:
    made = call(client, "post", "/api/v1/themes/discover", admin_key, {"max_themes": 4})
    assert made.status_code == 202, made.content
    job = made.json()
    assert job["status"] == "queued" and job["kind"] == "discover"
    assert job["links"] == {"self": f"/api/v1/themes/jobs/{job['id']}",
                            "themes": "/api/v1/themes"}
    assert job["requested_by"].startswith("key:")
    again = call(client, "post", "/api/v1/themes/discover", admin_key, {"max_themes": 4})
    assert again.status_code == 202 and again.json()["id"] == job["id"]
    assert call(client, "post", "/api/v1/themes/discover", read_key, {}).status_code == 403

    status = call(client, "get", job["links"]["self"], read_key)
    assert status.status_code == 200 and status.json()["status"] == "queued"
    actions.run_theme_job(job["id"])
    done = call(client, "get", job["links"]["self"], read_key).json()
    assert done["status"] == "done" and done["comments"] == len(COMMENTS) * 2
    assert done["finished_at"] and done["themes_created"] > 0
    listed = call(client, "get", "/api/v1/themes", read_key).json()
    assert len(listed) == done["themes_created"]

    missing = call(client, "get", "/api/v1/themes/jobs/999999", read_key)
    assert missing.status_code == 404 and missing.json()["code"] == "theme_job_not_found"

    patched = call(client, "patch", f"/api/v1/themes/{listed[0]['id']}", admin_key,
                   {"keywords": ["damaged", "broken"]})
    assert patched.status_code == 200, patched.content
    body = patched.json()
    assert set(body["keywords"]) == {"damaged", "broken"}
    assert body["job"]["kind"] == "rematch" and body["job"]["status"] == "queued"
    renamed = call(client, "patch", f"/api/v1/themes/{listed[0]['id']}", admin_key,
                   {"name": "Breakage"})
    assert renamed.status_code == 200 and renamed.json()["job"] is None


@pytest.mark.django_db
def test_openapi_documents_the_job(client: Client) -> None:
    document = client.get("/api/v1/openapi.json").json()
    discover = document["paths"]["/api/v1/themes/discover"]["post"]
    assert "202" in discover["responses"] and "200" not in discover["responses"]
    assert "cxm worker" in discover["description"]
    assert "get" in document["paths"]["/api/v1/themes/jobs/{job_id}"]
    assert "ThemeJobOut" in document["components"]["schemas"]
