"""``cxm surveys import`` and ``cxm metrics``, run in-process on the test database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cxm.cli import app
from cxm.feedback.models import Response, Survey
from cxm.identity import queries as identity_queries
from cxm.ingest.models import Event

pytestmark = pytest.mark.django_db(transaction=True)
runner = CliRunner()

# NPS by hand: promoters 9, 10, 10 (3); passives 7, 8 (2); detractors 0, 3, 6 (3) → 0.
ROWS = [("ann@example.com", "10", "Fast delivery", "2026-03-02"),
        ("bob@example.com", "9", "Friendly staff", "2026-03-03"),
        ("cy@example.com", "10", "", "2026-03-03"),
        ("di@example.com", "8", "ok", "2026-03-09"),
        ("ed@example.com", "7", "", "2026-03-10"),
        ("flo@example.com", "6", "Too slow", "2026-03-10"),
        ("gus@example.com", "3", "Broken on arrival", "2026-03-16"),
        ("hal@example.com", "0", "Never again", "2026-03-17")]


def run(*args: str, code: int = 0) -> Any:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == code, (result.stdout, result.stderr)
    return result


def write_csv(path: Path, rows: list[tuple[str, ...]], *, sep: str = ",",
              encoding: str = "utf-8") -> Path:
    lines = [sep.join(("Email", "Score", "Comment", "Date"))]
    lines += [sep.join(row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding=encoding)
    return path


def import_args(path: Path, *extra: str) -> list[str]:
    return ["surveys", "import", str(path), "--survey", "Store NPS", "--kind", "nps",
            "--score-column", "Score", "--comment-column", "Comment", "--email-column",
            "Email", "--date-column", "Date", *extra]


def test_import_then_metrics(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "answers.csv", [*ROWS, ("ivy@example.com", "11", "", "")])
    summary = json.loads(run(*import_args(path), "--json").stdout)
    assert summary["survey_created"] is True
    assert (summary["accepted"], summary["duplicates"], summary["rejected"]) == (8, 0, 1)
    rejects = [json.loads(line) for line in Path(summary["rejects_file"]).read_text()
               .splitlines()]
    assert rejects[0]["line"] == 10 and "from 0 to 10, got 11" in rejects[0]["reason"]
    survey = Survey.objects.get(name="Store NPS")
    assert survey.kind == "nps" and survey.status == "closed"
    # Every answer is on its person's profile and timeline.
    gus = identity_queries.by_identifier("email", "gus@example.com")
    event = Event.objects.get(profile_id=gus.id, name="Survey Answered")
    assert event.channel == "survey"
    assert event.timestamp.date().isoformat() == "2026-03-16"

    again = json.loads(run(*import_args(path), "--json").stdout)
    assert (again["accepted"], again["duplicates"], again["rejected"]) == (0, 8, 1)
    assert Response.objects.count() == 8

    nps = json.loads(run("metrics", "nps", "--survey", "Store NPS", "--json").stdout)
    assert nps["value"] == 0.0
    assert nps["responses"] == 8
    assert nps["counts"] == {"promoters": 3, "passives": 2, "detractors": 3}
    assert nps["ci"]["low"] < 0 < nps["ci"]["high"]
    by_week = json.loads(run("metrics", "nps", "--survey", "Store NPS", "--period", "week",
                             "--json").stdout)
    assert [(w["start"], w["responses"]) for w in by_week["trend"]] == [
        ("2026-03-02", 3), ("2026-03-09", 3), ("2026-03-16", 2)]
    text = run("metrics", "nps", "--survey", "Store NPS").stdout
    assert "NPS of survey 'Store NPS': 0.0" in text and "8 responses" in text


def test_import_reads_other_encodings_and_separators(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "latin.csv", [("zoë@example.com", "4", "Très bien", "")],
                     sep=";", encoding="latin-1")
    broken = run(*import_args(path), code=2)
    assert "not utf-8" in broken.stderr and "--encoding" in broken.stderr
    assert not Survey.objects.exists()
    summary = json.loads(run(*import_args(path, "--encoding", "latin-1"), "--json").stdout)
    assert summary["accepted"] == 1
    assert Response.objects.get().score == 4.0


def test_import_mistakes_are_named(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", ROWS[:1])
    wrong = run("surveys", "import", str(path), "--survey", "X", "--kind", "nps",
                "--score-column", "Rating", code=2)
    assert "columns not in the file: Rating" in wrong.stderr
    assert "it has: Email, Score, Comment, Date" in wrong.stderr
    assert not Survey.objects.exists()
    assert "--kind must be" in run(*import_args(path)[:6], "stars", "--score-column", "Score",
                                   code=2).stderr
    assert "no such file" in run(*import_args(tmp_path / "missing.csv"), code=2).stderr
    run(*import_args(path))
    csat = ["surveys", "import", str(path), "--survey", "Store NPS", "--kind", "csat",
            "--score-column", "Score"]
    assert "is a NPS survey, not CSAT" in run(*csat, code=2).stderr
    assert "use `cxm metrics nps`" in run("metrics", "csat", "--survey", "Store NPS",
                                          code=2).stderr
    assert "no survey named 'Nope'" in run("metrics", "nps", "--survey", "Nope", code=2).stderr


def test_metrics_without_answers_and_listing(tmp_path: Path) -> None:
    empty = json.loads(run("metrics", "ces", "--json").stdout)
    assert empty["value"] is None and empty["responses"] == 0 and empty["ci"] is None
    run(*import_args(write_csv(tmp_path / "a.csv", ROWS)))
    listed = json.loads(run("surveys", "list", "--json").stdout)
    assert listed == [{"name": "Store NPS", "slug": "store-nps", "kind": "nps",
                       "status": "closed", "touchpoint": "", "responses": 8}]


def test_widget_secret_and_hash() -> None:
    import hashlib
    import hmac

    from cxm.feedback import tokens

    secret = json.loads(run("widget", "secret", "--json").stdout)["secret"]
    assert secret == tokens.widget_secret() and len(secret) == 64
    digest = json.loads(run("widget", "hash", "u-42", "--json").stdout)["hash"]
    assert digest == hmac.new(secret.encode(), b"u-42", hashlib.sha256).hexdigest()
    assert tokens.visitor_hash_ok("u-42", digest.upper())
    assert not tokens.visitor_hash_ok("u-43", digest)
