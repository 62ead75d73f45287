"""``cxm surveys …`` and ``cxm metrics …`` (survey answers in, KPIs out)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

# Not imported from cxm.cli at module level: that module registers this one.
console = Console(stderr=True)
JsonFlag = Annotated[bool, typer.Option("--json", help="machine-readable output")]

surveys_app = typer.Typer(help="Surveys: list, import answers collected elsewhere",
                          no_args_is_help=True)
metrics_app = typer.Typer(help="Survey KPIs: NPS, CSAT, CES with 95% confidence intervals",
                          no_args_is_help=True)


def _setup() -> None:
    from cxm import cli

    cli._setup()
    cli._migrate()


def _print(data: Any, as_json: bool) -> None:
    from cxm import cli

    cli._print(data, as_json)


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]{message}[/red]")
    return typer.Exit(2)


@surveys_app.command("list")
def list_surveys(as_json: JsonFlag = False) -> None:
    """Every survey with its kind, status and number of responses."""
    _setup()
    from django.db.models import Count

    from cxm.feedback import queries

    rows = [{"name": s.name, "slug": s.slug, "kind": s.kind, "status": s.status,
             "touchpoint": s.touchpoint, "responses": s.n}
            for s in queries.surveys().annotate(n=Count("responses"))]
    if as_json:
        _print(rows, True)
        return
    table = Table("name", "kind", "status", "touchpoint", "responses")
    for row in rows:
        table.add_row(str(row["name"]), str(row["kind"]), str(row["status"]),
                      str(row["touchpoint"]), f"{row['responses']:,}")
    Console().print(table)


@surveys_app.command("import")
def import_answers(
    file: Annotated[Path, typer.Argument(help="a CSV file (comma, semicolon or tab)")],
    survey: Annotated[str, typer.Option("--survey", help="survey name (created if new)")],
    kind: Annotated[str, typer.Option("--kind", help="nps, csat or ces")],
    score_column: Annotated[str, typer.Option("--score-column", help="column of the score")],
    comment_column: Annotated[str | None, typer.Option(
        "--comment-column", help="column of the open-text comment")] = None,
    email_column: Annotated[str | None, typer.Option(
        "--email-column", help="column of the respondent's email")] = None,
    user_id_column: Annotated[str | None, typer.Option(
        "--user-id-column", help="column of the respondent's user id")] = None,
    date_column: Annotated[str | None, typer.Option(
        "--date-column", help="column of the answer date (ISO 8601 or YYYY-MM-DD)")] = None,
    encoding: Annotated[str, typer.Option(help="text encoding of the file")] = "utf-8-sig",
    as_json: JsonFlag = False,
) -> None:
    """Import survey answers collected by another tool; safe to re-run."""
    if not file.is_file():
        raise _fail(f"no such file: {file}")
    kind = kind.lower()
    if kind not in {"nps", "csat", "ces"}:
        raise _fail("--kind must be nps, csat or ces")
    _setup()
    from cxm import cli
    from cxm.core.errors import CxmError
    from cxm.feedback import importer

    actor = cli._operator("surveys.manage")
    columns = importer.Columns(score=score_column, comment=comment_column, email=email_column,
                               date=date_column, user_id=user_id_column)
    # Read the header first, so a wrong column name creates no survey.
    try:
        with file.open("rb") as stream:
            first = next(importer.read_rows(stream, encoding), None)
        if first is not None:
            importer.check_columns(list(first[1]), columns)
        target, created = importer.survey_for_import(survey, kind, bool(comment_column), actor)
    except (ValueError, CxmError) as error:
        raise _fail(error.message if isinstance(error, CxmError) else str(error)) from None
    total_bytes = file.stat().st_size
    with Progress(TextColumn("importing {task.fields[name]}"), BarColumn(),
                  TextColumn("{task.percentage:>3.0f}%  {task.fields[rows]} rows"),
                  TimeRemainingColumn(), console=console, disable=as_json) as progress:
        task = progress.add_task("import", total=total_bytes, name=file.name, rows=0)

        def advance(rows: int, position: int) -> None:
            progress.update(task, completed=position, rows=rows)

        try:
            summary = importer.run_import(file, survey=target, survey_created=created,
                                          columns=columns, encoding=encoding, actor=actor,
                                          progress=advance)
        except ValueError as error:
            raise _fail(str(error)) from None
    if as_json:
        _print(summary.as_dict(), True)
        return
    out = Console()
    if created:
        out.print(f"created survey [bold]{target.name}[/bold] ({kind.upper()}, closed: "
                  "answered elsewhere)")
    out.print(f"[bold]{summary.total:,}[/bold] rows in {summary.seconds:.1f}s: "
              f"[green]{summary.accepted:,} accepted[/green], {summary.duplicates:,} "
              f"duplicates, [red]{summary.rejected:,} rejected[/red]")
    for reason, count in summary.reasons.most_common():
        out.print(f"  rejected {count:,}× {reason}")
    if summary.rejects_file:
        out.print(f"rejected rows with reasons: {summary.rejects_file}")


def _metric(kind: str, survey: str | None, by: str | None, period: str | None,
            as_json: bool) -> None:
    _setup()
    from cxm.core.errors import CxmError
    from cxm.feedback import queries as feedback_queries
    from cxm.metrics import queries

    try:
        target = feedback_queries.survey_by_name(survey) if survey else None
        if target is not None and target.kind not in {kind, "custom"}:
            raise _fail(f"survey {target.name!r} is a {target.kind.upper()} survey; use "
                        f"`cxm metrics {target.kind}`")
        results = queries.survey_results(target, kind=kind, period=period or "month")
    except CxmError as error:
        raise _fail(error.message) from None
    except ValueError as error:
        raise _fail(str(error)) from None
    data = results.as_dict()
    if by and by not in results.slices:
        raise _fail(f"--by must be one of {', '.join(results.slices)}")
    if not by:
        data.pop("slices")
    else:
        data["slices"] = {by: data["slices"][by]}
    if not period:
        data.pop("trend")
        data.pop("period")
    if as_json:
        _print(data, True)
        return
    out = Console()
    overall = results.overall
    label = {"nps": "NPS", "csat": "CSAT (% satisfied)", "ces": "CES (mean effort)"}[kind]
    scope = f"survey {target.name!r}" if target else f"every {kind.upper()} survey"
    if overall.value is None:
        out.print(f"{label} of {scope}: no answers yet")
        return
    ci = f" (95% CI {overall.ci.low:.1f} to {overall.ci.high:.1f})" if overall.ci else ""
    out.print(f"{label} of {scope}: [bold]{overall.value:.1f}[/bold]{ci}, "
              f"{overall.responses:,} responses")
    out.print("  " + ", ".join(f"{k} {v:,}" for k, v in overall.counts.items()
                               if not k.isdigit()))
    if results.response_rate and results.response_rate.value is not None:
        out.print(f"  response rate {results.response_rate.value:.1f}% "
                  f"({results.response_rate.responded:,} of {results.response_rate.invited:,})")
    if by:
        table = Table(by, "value", "95% CI", "responses")
        for name, result in results.slices[by]:
            table.add_row(name, "—" if result.value is None else f"{result.value:.1f}",
                          f"{result.ci.low:.1f} … {result.ci.high:.1f}" if result.ci else "—",
                          f"{result.responses:,}")
        out.print(table)
    if period:
        table = Table(period, "value", "responses")
        for start, result in results.trend:
            table.add_row(start.isoformat(),
                          "—" if result.value is None else f"{result.value:.1f}",
                          f"{result.responses:,}")
        out.print(table)


Survey = Annotated[str | None, typer.Option("--survey", help="survey name (default: all of "
                                                              "this kind)")]
By = Annotated[str | None, typer.Option("--by", help="slice by channel, touchpoint, stage, "
                                                      "segment or survey")]
Period = Annotated[str | None, typer.Option("--period", help="trend by day, week or month")]


@metrics_app.command("nps")
def nps(survey: Survey = None, by: By = None, period: Period = None,
        as_json: JsonFlag = False) -> None:
    """Net Promoter Score (−100…100): promoters 9–10 minus detractors 0–6, in %."""
    _metric("nps", survey, by, period, as_json)


@metrics_app.command("csat")
def csat(survey: Survey = None, by: By = None, period: Period = None,
         as_json: JsonFlag = False) -> None:
    """Customer satisfaction: % of answers 4 or 5 on a 1–5 scale."""
    _metric("csat", survey, by, period, as_json)


@metrics_app.command("ces")
def ces(survey: Survey = None, by: By = None, period: Period = None,
        as_json: JsonFlag = False) -> None:
    """Customer effort score: mean answer on a 1–7 scale (higher is easier)."""
    _metric("ces", survey, by, period, as_json)


widget_app = typer.Typer(help="The embeddable survey widget", no_args_is_help=True)


@widget_app.command("secret")
def widget_secret(as_json: JsonFlag = False) -> None:
    """The secret your server signs visitor ids with: data-user-hash =
    HMAC-SHA256(secret, user id) as hex. Keep it on the server, never in the page."""
    _setup()
    from cxm import cli
    from cxm.feedback import tokens

    cli._operator("settings.manage")
    secret = tokens.widget_secret()
    if as_json:
        _print({"secret": secret}, True)
    else:
        Console().print(secret)


@widget_app.command("hash")
def widget_hash(value: Annotated[str, typer.Argument(help="a user id (or email)")],
                as_json: JsonFlag = False) -> None:
    """The data-user-hash for one visitor (for trying the widget out by hand)."""
    _setup()
    from cxm import cli
    from cxm.feedback import tokens

    cli._operator("settings.manage")
    digest = tokens.visitor_hash(value)
    if as_json:
        _print({"value": value, "hash": digest}, True)
    else:
        Console().print(digest)
