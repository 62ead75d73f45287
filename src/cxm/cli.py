"""The ``cxm`` command. Every command that reports takes ``--json``."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

app = typer.Typer(help="cxm — Customer Experience Management platform", no_args_is_help=True)
keys_app = typer.Typer(help="Manage API keys", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
console = Console(stderr=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def _setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cxm.settings")
    import django

    try:
        django.setup()
    except Exception as error:  # settings validation names the variable at fault
        console.print(f"[red]cannot start:[/red] {error}")
        raise typer.Exit(2) from None


def _migrate(quiet: bool = True) -> None:
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0 if quiet else 1)


def _print(data: Any, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(data, default=str, indent=2) + "\n")


@app.command()
def migrate() -> None:
    """Create or upgrade the database tables."""
    _setup()
    _migrate(quiet=False)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
    workers: Annotated[int, typer.Option(help="web worker processes (0 = 2 per core)")] = 0,
    threads: Annotated[int, typer.Option(help="threads per worker")] = 4,
) -> None:
    """Run the web app, the REST API and the ingest API (migrates first)."""
    _setup()
    _migrate()
    _run_server(host, port, workers, threads)


def _run_server(host: str, port: int, workers: int, threads: int) -> None:
    from gunicorn.app.base import BaseApplication

    from cxm.wsgi import application

    count = workers or max(2, (os.cpu_count() or 1) * 2)

    class Server(BaseApplication):
        def load_config(self) -> None:
            for key, value in {
                "bind": f"{host}:{port}", "workers": count, "threads": threads,
                "worker_class": "gthread", "timeout": 120, "graceful_timeout": 10,
                "accesslog": None, "errorlog": "-", "loglevel": "warning",
                "limit_request_line": 8190, "keepalive": 5,
            }.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            return application

    console.print(f"cxm listening on http://{host}:{port} ({count} workers × {threads} threads)")
    Server().run()


@app.command()
def worker() -> None:
    """Run background work and schedules (huey consumer)."""
    _setup()
    _migrate()
    from django.core.management import call_command

    call_command("run_huey")


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="what the key is for")],
    scope: Annotated[str, typer.Option(help="ingest, read or admin")],
    channel: Annotated[str, typer.Option(help="default channel of events sent with it")] = "",
    as_json: JsonFlag = False,
) -> None:
    """Create an API key and print it (it is shown only once)."""
    _setup()
    _migrate()
    from cxm.accounts import actions
    from cxm.core.audit import Actor
    from cxm.core.errors import CxmError

    try:
        key, plaintext = actions.create_api_key(name=name, scope=scope, default_channel=channel,
                                                actor=Actor("cli"))
    except CxmError as error:
        console.print(f"[red]{error.message}[/red]")
        raise typer.Exit(2) from None
    if as_json:
        _print({"key": plaintext, "prefix": key.prefix, "name": key.name, "scope": key.scope},
               True)
    else:
        sys.stdout.write(plaintext + "\n")


@keys_app.command("list")
def keys_list(as_json: JsonFlag = False) -> None:
    """List API keys (never their secrets)."""
    _setup()
    _migrate()
    from cxm.accounts.models import ApiKey

    rows: list[dict[str, Any]] = [{"prefix": k.prefix, "name": k.name, "scope": k.scope,
             "created_at": k.created_at.isoformat(),
             "revoked": k.revoked_at is not None} for k in ApiKey.objects.order_by("created_at")]
    if as_json:
        _print(rows, True)
        return
    table = Table("prefix", "name", "scope", "created", "revoked")
    for row in rows:
        table.add_row(str(row["prefix"]), str(row["name"]), str(row["scope"]),
                      str(row["created_at"])[:19],
                      "yes" if row["revoked"] else "")
    Console().print(table)


@keys_app.command("revoke")
def keys_revoke(prefix: str, as_json: JsonFlag = False) -> None:
    """Revoke a key by its prefix."""
    _setup()
    from cxm.accounts import actions
    from cxm.core.audit import Actor
    from cxm.core.errors import CxmError

    try:
        key = actions.revoke_api_key(prefix=prefix, actor=Actor("cli"))
    except CxmError as error:
        console.print(f"[red]{error.message}[/red]")
        raise typer.Exit(2) from None
    _print({"prefix": key.prefix, "revoked": True}, as_json)
    if not as_json:
        sys.stdout.write(f"revoked {key.prefix}\n")


@app.command("import")
def import_file(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    map_: Annotated[list[str] | None, typer.Option(
        "--map", help="CSV only: COLUMN=PATH, e.g. email=traits.email, id=userId")] = None,
    type_: Annotated[str, typer.Option("--type", help="CSV only: message type")] = "identify",
    event: Annotated[str | None, typer.Option(help="CSV only: event name for track")] = None,
    encoding: Annotated[str, typer.Option(help="CSV only: text encoding")] = "utf-8-sig",
    source: Annotated[str | None, typer.Option(help="source label (default import:<file>)")]
    = None,
    as_json: JsonFlag = False,
) -> None:
    """Import a JSONL file of Segment messages or a CSV with a column mapping."""
    _setup()
    _migrate()
    from cxm.core.audit import Actor
    from cxm.ingest import importer

    try:
        kind = importer.file_kind(file)
    except ValueError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None
    label = (source or f"import:{file.name}")[:40]
    rejects_path = file.with_name(file.name + ".rejects.jsonl")
    total_bytes = file.stat().st_size
    with file.open("rb") as stream:
        if kind == "jsonl":
            lines = importer.read_jsonl(stream)
        else:
            if not map_:
                console.print("[red]a CSV import needs --map COLUMN=PATH (at least one)[/red]")
                raise typer.Exit(2)
            columns = {}
            for item in map_:
                column, sep, target = item.partition("=")
                if not sep or not column or not target:
                    console.print(f"[red]--map {item!r} must look like COLUMN=PATH[/red]")
                    raise typer.Exit(2)
                columns[column] = target
            mapping = importer.CsvMapping(columns=columns, message_type=type_, event=event)
            try:
                lines = importer.read_csv(stream, mapping, encoding)
            except ValueError as error:
                console.print(f"[red]{error}[/red]")
                raise typer.Exit(2) from None
        with Progress(TextColumn("importing {task.fields[name]}"), BarColumn(),
                      TextColumn("{task.percentage:>3.0f}%  {task.fields[rate]}"),
                      TimeRemainingColumn(), console=console, disable=as_json,
                      transient=False) as progress:
            task = progress.add_task("import", total=total_bytes, name=file.name, rate="")
            started = time.perf_counter()
            done = [0]

            def advance(count: int) -> None:
                done[0] += count
                elapsed = time.perf_counter() - started
                progress.update(task, completed=stream.tell(),
                                rate=f"{done[0] / elapsed:,.0f} events/s" if elapsed else "")

            try:
                summary = importer.run_import(lines, actor=Actor(label), source=label,
                                              rejects_path=rejects_path, progress=advance)
            except ValueError as error:
                console.print(f"[red]{error}[/red]")
                raise typer.Exit(2) from None
    if as_json:
        _print(summary.as_dict(), True)
        return
    out = Console()
    out.print(f"[bold]{summary.total:,}[/bold] lines in {summary.seconds:.1f}s: "
              f"[green]{summary.accepted:,} accepted[/green], "
              f"{summary.duplicates:,} duplicates, [red]{summary.rejected:,} rejected[/red]")
    for reason, count in summary.reasons.most_common():
        out.print(f"  rejected {count:,}× {reason}")
    if summary.rejects_file:
        out.print(f"rejected lines with reasons: {summary.rejects_file}")


@app.command()
def demo(
    customers: Annotated[int, typer.Option(help="customers to generate")] = 5000,
    seed: Annotated[int, typer.Option(help="random seed (same seed, same company)")] = 42,
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="load only")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Load a believable company's year of data through the real ingest path, then serve it."""
    _setup()
    _migrate()
    from cxm.demo import loader

    result = loader.load(customers=customers, seed=seed, console=console, quiet=as_json)
    _print(result, as_json)
    if not no_serve:
        if not as_json:
            console.print(f"log in at http://{host}:{port}/ as [bold]{result['username']}[/bold]"
                          f" / [bold]{result['password']}[/bold]")
        _run_server(host, port, 0, 4)


@app.command()
def createuser(
    username: str,
    password: Annotated[str, typer.Option(prompt=True, hide_input=True)],
    admin: Annotated[bool, typer.Option(help="full rights")] = True,
) -> None:
    """Create a user who can log in to the web UI."""
    _setup()
    _migrate()
    from cxm.accounts import actions
    from cxm.core.audit import Actor

    actions.create_user(username=username, password=password, is_admin=admin, actor=Actor("cli"))
    sys.stdout.write(f"created {username}\n")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
