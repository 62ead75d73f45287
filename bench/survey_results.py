"""Survey results at scale: the counts path against the old row path, on N answers.

    .venv/bin/python bench/survey_results.py [--answers 100000] [--db sqlite|postgres|both]
                                             [--runs 5] [--json]

For each database: a fresh one (``_common.fresh_target``), ``cxm migrate``, then a Django
process of its own (this script with ``--worker``) that

* builds the data: 2,000 people through the real ingest path (identify messages with a
  ``segment`` trait and research consent), the demo's *Post-purchase NPS* survey through
  ``feedback.actions.create_survey``, 200 answers through ``feedback.actions.submit`` (the whole
  real path: timeline event, themes, audit) and ``discover_themes`` on their comments; then the
  other N − 200 answers in bulk, built exactly as ``feedback.actions.record_event_answers``
  builds its rows (``definition.clean_answers``, comment through ``pii.protect``, sentiment /
  emotion from ``annotate.annotate``, ``dims`` with the profile's segment, themes from
  ``annotate.matching_themes``; annotation is cached per distinct comment text — it is a pure
  function of the text) over a year, on five channels, ~35% with a comment, ~60% answering an
  invitation (plus unanswered and suppressed invitations for the response rate). What the bulk
  path leaves out is the per-answer timeline event and audit row, which no results read looks
  at;
* times, median of ``--runs`` after one warm-up (the old row path: median of 3):
  ``metrics.queries.survey_results`` (counts) vs ``survey_results_from_rows`` (the old path),
  the list headline, ``GET /api/v1/surveys/{id}/results`` and the results page ``/surveys/<id>/``
  through Django's test client in-process (middleware, view, serialisation / template; no
  socket) — "before" by swapping the old functions in —, the drivers page and its parts,
  theme statistics and the themes page;
* checks that the counts and the row path give the same ``as_dict()`` (exit status 1 if not).

Prints the machine, a table and (``--json``) everything as JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import secrets
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# A PostgreSQL database of its own: the other benchmarks drop and recreate "cxm_bench" (WITH
# FORCE), which must not hit this one when both run on the shared machine.
os.environ.setdefault("BENCH_PG_DB", "cxm_bench_survey_results")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    cxm,
    fresh_target,
    log,
    machine_info,
    postgres_available,
    run_worker,
    stop_all_children,
)

PEOPLE = 2000
REAL_ANSWERS = 200
SEGMENTS = ("consumer", "smb", "enterprise", "partner")
CHANNELS: tuple[tuple[str, float], ...] = (
    ("email", 0.45), ("link", 0.15), ("widget", 0.2), ("api", 0.1), ("import", 0.1))
TOUCHPOINTS = ("delivery", "delivery", "delivery", "returns", "support")
START = datetime(2025, 1, 1, tzinfo=UTC)


# --- the worker: data and timings inside one Django process --------------------------------------


def _timed(call: Callable[[], Any], runs: int) -> tuple[float, list[float]]:
    call()  # warm-up: connection, caches, imports
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), [round(t, 1) for t in times]


def _people() -> list[Any]:
    from cxm.core.audit import Actor
    from cxm.identity.models import Profile
    from cxm.ingest.actions import ingest

    messages = [{"type": "identify", "messageId": f"bench-person-{i}", "userId": f"bench-{i}",
                 "timestamp": "2025-01-01T00:00:00Z",
                 "traits": {"email": f"person{i}@example.com", "segment": SEGMENTS[i % 4],
                            "consent": {"email": {"research": True}}}}
                for i in range(PEOPLE)]
    for start in range(0, len(messages), 500):
        result = ingest(messages[start:start + 500], actor=Actor("bench"), source="bench")
        assert not result.rejected, result.rejected
    return list(Profile.objects.filter(merged_into__isnull=True))


def _comments(rng: random.Random, count: int) -> list[tuple[str, str]]:
    """(text, sentiment class) in the demo generator's words."""
    from cxm.demo import generator

    phrases, openers, closers = (generator._COMMENT_PHRASES, generator._OPENERS,
                                 generator._CLOSERS)
    out = []
    for _ in range(count):
        theme = rng.choice(list(phrases))
        mood = rng.choice(("pos", "neu", "neg"))
        body = rng.choice(phrases[theme][mood]).format(
            product="walnut desk", late=rng.randint(2, 6), agent=rng.choice(generator._AGENTS))
        body = body[0].upper() + body[1:] + "."
        opener = rng.choice(openers[mood])
        if opener and not opener.endswith((". ", "! ", ": ")):
            body = body[0].lower() + body[1:]
        out.append(((opener + body + rng.choice(closers[mood])).strip(), mood))
    return out


def _score(rng: random.Random, mood: str) -> int:
    centre = {"pos": 9.0, "neu": 7.5, "neg": 4.0}.get(mood, 8.0)
    return max(0, min(10, round(rng.gauss(centre, 2.0))))


def build(answers: int, seed: int = 7) -> dict[str, Any]:
    from django.db import transaction

    from cxm.core import pii
    from cxm.core.audit import Actor
    from cxm.core.ids import uuid7
    from cxm.demo.surveys import SURVEYS
    from cxm.feedback import actions, annotate, queries
    from cxm.feedback import definition as survey_definition
    from cxm.feedback.models import Invitation, Response, Theme

    rng = random.Random(seed)
    actor = Actor("bench")
    started = time.perf_counter()
    people = _people()
    segment_of = {p.id: queries.segment_of(p) for p in people}
    spec = dict(SURVEYS[0])
    survey = actions.create_survey(actor=actor, **spec)
    parsed = survey_definition.parse(survey.definition)
    pool = _comments(rng, 400)
    people_done = time.perf_counter()

    # The real path for the first answers (and the comments themes are discovered from).
    for i in range(REAL_ANSWERS):
        text, mood = pool[i % len(pool)]
        actions.submit(actions.Submission(
            survey=survey, answers={"score": _score(rng, mood), "comment": text},
            channel="widget", profile_id=people[i % len(people)].id,
            submitted_at=START + timedelta(minutes=37 * i)), actor=actor)
    actions.discover_themes(actor=actor, max_themes=10)
    themes = list(Theme.objects.filter(merged_into__isnull=True))
    real_done = time.perf_counter()

    annotated: dict[str, Any] = {}
    matched: dict[str, list[Any]] = {}
    for text, _ in pool:
        annotated[text] = annotate.annotate(text)
        matched[text] = annotate.matching_themes(text, themes)
    names = [name for name, _ in CHANNELS]
    weights = [share for _, share in CHANNELS]
    seconds = 365 * 86400
    through = Response.themes.through
    made = REAL_ANSWERS
    chunk = 5000
    while made < answers:
        size = min(chunk, answers - made)
        responses: list[Response] = []
        links: list[Any] = []
        invitations: list[Invitation] = []
        for _ in range(size):
            channel = rng.choices(names, weights)[0]
            person = None if channel == "import" and rng.random() < 0.5 else rng.choice(people)
            comment, mood = rng.choice(pool) if rng.random() < 0.35 else ("", "")
            raw: dict[str, Any] = {"score": _score(rng, mood)}
            if comment:
                raw["comment"] = comment
            clean = survey_definition.clean_answers(parsed, raw)
            when = START + timedelta(seconds=rng.randrange(seconds))
            touchpoint = rng.choice(TOUCHPOINTS)
            invitation = None
            if channel in ("email", "link") and person is not None:
                invitation = Invitation(
                    survey=survey, profile_id=person.id, channel=channel, touchpoint=touchpoint,
                    nonce=secrets.token_hex(16), status="answered",
                    created_at=when - timedelta(hours=2), sent_at=when - timedelta(hours=2),
                    answered_at=when, expires_at=when + timedelta(days=30))
                invitations.append(invitation)
            found = annotated[comment] if comment else None
            response = Response(
                id=uuid7(), survey=survey, invitation=invitation,
                client_key=f"bench:{made}", profile_id=person.id if person else None,
                submitted_at=when, channel=channel, kind="nps", language=parsed.language,
                score=float(clean["score"]),
                answers={k: (pii.protect(v) if k == "comment" else v) for k, v in clean.items()},
                comment=pii.protect(comment) if comment else "",
                sentiment=found.sentiment if found else "",
                sentiment_score=found.score if found else None,
                emotion=found.emotion if found else "",
                dims={"touchpoint": touchpoint if invitation else survey.touchpoint,
                      "stage": survey.stage,
                      "segment": segment_of.get(person.id, "") if person else ""})
            responses.append(response)
            if comment:
                links.extend(through(response_id=response.id, theme_id=t.id)
                             for t in matched[comment])
            made += 1
        # Invitations that reached people and were not answered, and some the policy refused.
        for _ in range(size // 3):
            person = rng.choice(people)
            when = START + timedelta(seconds=rng.randrange(seconds))
            invitations.append(Invitation(
                survey=survey, profile_id=person.id, channel="email",
                nonce=secrets.token_hex(16), status=rng.choice(("sent", "sent", "suppressed")),
                created_at=when, expires_at=when + timedelta(days=30)))
        with transaction.atomic():
            Invitation.objects.bulk_create(invitations, batch_size=2000)
            for response in responses:  # the ids bulk_create just set
                if response.invitation is not None:
                    response.invitation_id = response.invitation.id
            Response.objects.bulk_create(responses, batch_size=2000)
            through.objects.bulk_create(links, batch_size=5000)
    done = time.perf_counter()
    return {"survey": str(survey.id), "answers": Response.objects.filter(survey=survey).count(),
            "invitations": Invitation.objects.filter(survey=survey).count(),
            "comments": Response.objects.filter(survey=survey).exclude(comment="").count(),
            "themes": len(themes),
            "setup_s": {"people_and_survey": round(people_done - started, 1),
                        "real_answers_and_themes": round(real_done - people_done, 1),
                        "bulk_answers": round(done - real_done, 1)}}


@contextlib.contextmanager
def _old_paths() -> Iterator[None]:
    """The row path in place of the counts path, for "before" figures of pages and the API."""
    from cxm.feedback import queries as feedback_queries
    from cxm.metrics import kpi
    from cxm.metrics import queries as metrics_queries

    def old_headline(survey: Any) -> Any:  # what survey_headline did: every score into Python
        metric = metrics_queries.kind_of(survey)
        invited, answered = feedback_queries.response_rate_inputs(survey)
        scores = [float(s) for s in survey.responses.filter(
            kind=metric, score__isnull=False).values_list("score", flat=True)]
        return metrics_queries.Headline(metric, kpi.compute(metric, scores),
                                        kpi.response_rate(invited, answered))

    saved = metrics_queries.survey_results, metrics_queries.survey_headline
    metrics_queries.survey_results = metrics_queries.survey_results_from_rows
    metrics_queries.survey_headline = old_headline
    try:
        yield
    finally:
        metrics_queries.survey_results, metrics_queries.survey_headline = saved


def measure(survey_id: str, runs: int) -> dict[str, Any]:
    from django.test import Client

    from cxm.accounts import actions as account_actions
    from cxm.core.audit import Actor
    from cxm.feedback import queries as feedback_queries
    from cxm.feedback.models import Survey
    from cxm.metrics import drivers
    from cxm.metrics import queries as metrics_queries

    survey = Survey.objects.get(id=survey_id)
    old_runs = max(3, min(runs, 3))
    _, key = account_actions.create_api_key(name="bench-read", scope="read",
                                            actor=Actor("bench"))
    user_pk = account_actions.create_user(username="bench-analyst", password=secrets.token_hex(16),
                                          role="analyst", actor=Actor("bench"))
    from django.contrib.auth import get_user_model

    client = Client(HTTP_HOST="127.0.0.1", secure=True)
    client.force_login(get_user_model().objects.get(pk=user_pk))
    api = Client(HTTP_HOST="127.0.0.1", secure=True, HTTP_AUTHORIZATION=f"Bearer {key}")

    def get(c: Client, url: str) -> Callable[[], None]:
        def call() -> None:
            reply = c.get(url)
            assert reply.status_code == 200, (url, reply.status_code)
        return call

    page = f"/surveys/{survey.id}/"
    results_api = f"/api/v1/surveys/{survey.id}/results?period=week"
    out: dict[str, Any] = {}
    figures: dict[str, dict[str, Any]] = {}

    def record(name: str, call: Callable[[], Any], n: int) -> None:
        ms, all_ms = _timed(call, n)
        figures[name] = {"median_ms": round(ms, 1), "runs_ms": all_ms}
        log(f"    {name}: {ms:,.1f} ms (median of {n})")

    record("results query (counts)", lambda: metrics_queries.survey_results(survey), runs)
    record("headline (counts)", lambda: metrics_queries.survey_headline(survey), runs)
    record("API results (counts)", get(api, results_api), runs)
    record("results page (counts)", get(client, page), runs)
    record("surveys list (counts)", get(client, "/surveys/"), runs)
    record("results query (rows, before)",
           lambda: metrics_queries.survey_results_from_rows(survey), old_runs)
    with _old_paths():
        record("headline (rows, before)", lambda: metrics_queries.survey_headline(survey),
               old_runs)
        record("API results (rows, before)", get(api, results_api), old_runs)
        record("results page (rows, before)", get(client, page), old_runs)
        record("surveys list (rows, before)", get(client, "/surveys/"), old_runs)
    record("drivers: read rows (driver_rows)",
           lambda: feedback_queries.driver_rows(survey=survey, kind="nps"), old_runs)
    rows = feedback_queries.driver_rows(survey=survey, kind="nps")
    inputs = [drivers.DriverInput(r.score, frozenset(
        {f"theme:{t}" for t in r.themes} | ({f"touchpoint:{r.touchpoint}"} if r.touchpoint
                                            else set()) | {f"channel:{r.channel}"}))
        for r in rows]
    record("drivers: analysis maths", lambda: drivers.analyze_drivers("nps", inputs), old_runs)
    record("drivers page", get(client, f"/surveys/{survey.id}/drivers/"), old_runs)
    record("theme stats (counts)", lambda: metrics_queries.theme_stats(period="month"), runs)
    record("themes page (counts)", get(client, "/surveys/themes/"), runs)

    counts = metrics_queries.survey_results(survey).as_dict()
    from_rows = metrics_queries.survey_results_from_rows(survey).as_dict()
    out["identical"] = counts == from_rows
    for period in ("day", "month"):
        out["identical"] &= (metrics_queries.survey_results(survey, period=period).as_dict()
                             == metrics_queries.survey_results_from_rows(
                                 survey, period=period).as_dict())
    out["headline"] = counts["value"], counts["ci"], counts["responses"]
    out["figures"] = figures
    return out


def worker(args: argparse.Namespace) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cxm.settings")
    import django

    django.setup()
    from django.db import connection

    log(f"  building {args.answers:,} answers on {connection.vendor}")
    data = build(args.answers)
    log(f"  built: {data}")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:  # what autovacuum would have done by now
            cursor.execute("VACUUM ANALYZE feedback_response")
            cursor.execute("VACUUM ANALYZE feedback_invitation")
    result = measure(data["survey"], args.runs)
    print(json.dumps({"data": data, **result}))


# --- the parent: databases, machine, table -------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--answers", type=int, default=100_000)
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return 0

    pg = postgres_available()
    machine = machine_info(pg)
    print(f"{machine['cpu']}, {machine['cores']} cores, Python {machine['python']}, "
          f"SQLite {machine.get('sqlite', '?')}, PostgreSQL {pg or 'unavailable'}, load average "
          f"{machine['loadavg_at_start'][0]:.1f} at start, commit {machine['git_commit'][:8]}, "
          f"src digest {machine['src_digest']}", flush=True)
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    if pg is None and "postgres" in kinds:
        log("PostgreSQL unreachable: skipped")
        kinds.remove("postgres")
    results: dict[str, Any] = {}
    try:
        for kind in kinds:
            log(f"{kind}: fresh database, migrate")
            with fresh_target(kind) as target:
                cxm(target, "migrate")
                results[kind] = run_worker(
                    "survey_results.py", target,
                    ["--worker", "--answers", str(args.answers), "--runs", str(args.runs)],
                    timeout=3600)
    finally:
        stop_all_children()
    names = list(next(iter(results.values()))["figures"]) if results else []
    print()
    print(f"| {args.answers:,} answers, median ms | " + " | ".join(results) + " |")
    print("|---|" + "---|" * len(results))
    for name in names:
        print(f"| {name} | " + " | ".join(f"{r['figures'][name]['median_ms']:,.1f}"
                                          for r in results.values()) + " |")
    ok = all(r["identical"] for r in results.values())
    print(f"\ncounts path == row path (as_dict, week/day/month): {ok}")
    if args.json:
        print(json.dumps({"machine": machine, "answers": args.answers, "results": results},
                         indent=2, default=str))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
