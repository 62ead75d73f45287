"""The ``cxm`` command. Every command that reports takes ``--json``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
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


def _operator(permission: str) -> Any:
    """The local operator (an admin: the CLI runs on the server as its operator) as an audit
    actor, ``cli:<os user>``, after asking the permission matrix like every entry point."""
    from cxm.accounts import permissions, principals
    from cxm.core.audit import Actor

    operator = principals.local_operator()
    if not permissions.allows(operator, permission):
        console.print(f"[red]{operator.label} may not {permission}[/red]")
        raise typer.Exit(2)
    return Actor(operator.label)


def _print(data: Any, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(data, default=str, indent=2) + "\n")


@app.command()
def migrate() -> None:
    """Create or upgrade the database tables."""
    _setup()
    _migrate(quiet=False)


WorkerFlag = Annotated[bool, typer.Option(
    "--worker/--no-worker",
    help="also run the background worker (`cxm worker`) as a child process of the server")]


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
    workers: Annotated[int, typer.Option(help="web worker processes (0 = 2 per core)")] = 0,
    threads: Annotated[int, typer.Option(help="threads per worker")] = 4,
    with_worker: WorkerFlag = False,
) -> None:
    """Run the web app, the REST API and the ingest API (migrates first).

    Background work (email invitations, surveys after events, schedules) runs in `cxm worker`,
    a separate process; `--worker` starts one beside the server and stops it with the server."""
    _setup()
    _migrate()
    _run_server(host, port, workers, threads, with_worker=with_worker)


def _run_server(host: str, port: int, workers: int, threads: int, *,
                with_worker: bool = False) -> None:
    from django.conf import settings
    from gunicorn.app.base import BaseApplication

    from cxm.wsgi import application

    count = workers or max(2, (os.cpu_count() or 1) * 2)

    child: subprocess.Popen[bytes] | None = None

    def post_fork(server: Any, web_worker: Any) -> None:
        # A web worker inherits a copy of the handle on the background worker, which is not
        # its child: mark it finished, so nothing in the web worker waits on it or warns.
        if child is not None:
            child.returncode = 0

    class Server(BaseApplication):
        def load_config(self) -> None:
            for key, value in {
                "bind": f"{host}:{port}", "workers": count, "threads": threads,
                "worker_class": "gthread", "timeout": 120, "graceful_timeout": 10,
                "accesslog": None, "errorlog": "-", "loglevel": "warning",
                "limit_request_line": 8190, "keepalive": 5, "post_fork": post_fork,
            }.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            return application

    if with_worker and settings.CXM.queue == "immediate":
        console.print("CXM_QUEUE=immediate runs background work inside the web processes: "
                      "no worker started")
    elif with_worker:
        child = _start_worker()
    elif settings.CXM.queue != "immediate":
        console.print("background work (email invitations, surveys after events, schedules) "
                      "needs `cxm worker` running too, or `cxm serve --worker`")
    owner = os.getpid()
    console.print(f"cxm listening on http://{host}:{port} ({count} workers × {threads} threads)")
    try:
        Server().run()
    finally:
        # Gunicorn forks its web workers from this process, and each unwinds through here
        # when it exits: only the process that started the background worker stops it.
        if child is not None and os.getpid() == owner and child.returncode is None:
            _stop_worker(child)


WORKER_GRACE = 15.0  # seconds the worker may take to finish the task in hand when stopped


def _start_worker() -> subprocess.Popen[bytes]:
    """``cxm worker`` as a child process, writing to the same console. It gets its own process
    group, so Ctrl-C in the terminal reaches only the server, which then stops the worker
    (gracefully, see ``_stop_worker``); and it watches this process, so it exits by itself if
    the server dies without stopping it (e.g. ``kill -9``)."""
    child = subprocess.Popen(
        [sys.executable, "-m", "cxm", "worker", "--exit-with-parent", str(os.getpid())],
        process_group=0)
    console.print(f"background worker started (pid {child.pid})")
    return child


def _stop_worker(child: subprocess.Popen[bytes]) -> None:
    """SIGINT (huey finishes the task in hand), then SIGTERM, then SIGKILL, each with a bounded
    wait. A second Ctrl-C or SIGTERM to the server skips to the next step."""
    def hurry(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    # Gunicorn's handlers only queue signals for its loop, which has ended.
    signal.signal(signal.SIGINT, hurry)
    signal.signal(signal.SIGTERM, hurry)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for number, wait in ((signal.SIGINT, WORKER_GRACE), (signal.SIGTERM, 5.0),
                         (signal.SIGKILL, 5.0)):
        if child.poll() is not None:
            break
        try:
            child.send_signal(number)
            child.wait(timeout=wait)
        except (subprocess.TimeoutExpired, KeyboardInterrupt):
            continue
    if child.poll() is None:
        console.print(f"[red]background worker (pid {child.pid}) did not stop[/red]")
    else:
        console.print("background worker stopped")


def _exit_with_parent(parent: int) -> None:
    """Stop this worker when ``parent`` (the server that started it) is gone: the worker is
    re-parented then, which ``getppid`` shows within half a second."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        console.print("the server that started this worker is gone: worker stopping")
        os.kill(os.getpid(), signal.SIGINT)  # huey: finish the task in hand, then exit
        time.sleep(WORKER_GRACE + 5)
        os._exit(1)

    threading.Thread(target=watch, name="cxm-exit-with-parent", daemon=True).start()


@app.command()
def worker(
    exit_with_parent: Annotated[int, typer.Option(
        hidden=True, help="exit when this process (the server that started us) is gone")] = 0,
) -> None:
    """Run background work and schedules (huey consumer)."""
    if exit_with_parent:
        _exit_with_parent(exit_with_parent)
    try:
        _setup()
        _migrate()
        from django.core.management import call_command

        call_command("run_huey")
    except KeyboardInterrupt:  # stopped before huey took over the signals
        raise typer.Exit(130) from None


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
    from cxm.core.errors import CxmError

    try:
        key, plaintext = actions.create_api_key(name=name, scope=scope, default_channel=channel,
                                                actor=_operator("keys.manage"))
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

    _operator("keys.manage")
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
    from cxm.core.errors import CxmError

    try:
        key = actions.revoke_api_key(prefix=prefix, actor=_operator("keys.manage"))
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
    from cxm.ingest import importer

    actor = _operator("events.ingest")

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
                summary = importer.run_import(lines, actor=actor, source=label,
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
    with_worker: Annotated[bool, typer.Option(
        "--worker/--no-worker", help="run the background worker beside the server")] = True,
    as_json: JsonFlag = False,
) -> None:
    """Load a believable company's year of data through the real ingest path, then serve it
    with a background worker. Mail goes to files in the data dir's outbox unless
    CXM_SMTP_HOST or CXM_EMAIL_BACKEND is set."""
    from cxm import config

    config.use_demo_defaults(host, port)
    _setup()
    _migrate()
    from django.conf import settings

    from cxm.demo import loader

    result = loader.load(customers=customers, seed=seed, console=console, quiet=as_json)
    outbox = settings.CXM.outbox_dir if settings.CXM.email_backend == "file" else None
    result["email_outbox"] = str(outbox) if outbox else None
    _print(result, as_json)
    if not no_serve:
        if not as_json:
            if outbox:
                console.print(f"survey emails are written to files in [bold]{outbox}[/bold] "
                              "(no mail server needed; set CXM_SMTP_HOST to send for real)")
            else:
                console.print(f"survey emails go to SMTP {settings.EMAIL_HOST}:"
                              f"{settings.EMAIL_PORT}")
            console.print(f"log in at http://{host}:{port}/ as [bold]{result['username']}[/bold]"
                          f" / [bold]{result['password']}[/bold]")
        _run_server(host, port, 0, 4, with_worker=with_worker)


@app.command()
def createuser(
    username: str,
    password: Annotated[str, typer.Option(prompt=True, hide_input=True,
                                          confirmation_prompt=True)],
    role: Annotated[str, typer.Option(
        help="admin, analyst, agent, marketer or viewer (see docs/security.md)")] = "admin",
    as_json: JsonFlag = False,
) -> None:
    """Create a user who can sign in to the web UI, with a role."""
    _setup()
    _migrate()
    from cxm.accounts import actions
    from cxm.core.errors import CxmError

    try:
        user_id = actions.create_user(username=username, password=password, role=role,
                                      actor=_operator("users.manage"))
    except CxmError as error:
        console.print(f"[red]{error.message}[/red]")
        raise typer.Exit(2) from None
    if as_json:
        _print({"id": user_id, "username": username.strip(), "role": role}, True)
    else:
        sys.stdout.write(f"created {username.strip()} ({role})\n")


audit_app = typer.Typer(help="Check and search the audit log", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


def _parse_when(value: str | None, name: str) -> Any:
    """An ISO date or date-time; without a zone it is UTC."""
    from datetime import UTC, datetime

    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        console.print(f"[red]{name} must be an ISO date or date-time, got {value!r}[/red]")
        raise typer.Exit(2) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@audit_app.command("verify")
def audit_verify(
    anchor: Annotated[str | None, typer.Option(
        help="SEQ:HASH reported by an earlier run: that row must still carry that hash")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Recompute the audit log's hash chain; exits 1 at the first broken row."""
    _setup()
    _migrate()
    _operator("audit.read")
    from cxm.core import audit

    expected: tuple[int, str] | None = None
    if anchor:
        seq, sep, digest = anchor.partition(":")
        if not sep or not seq.isdigit() or len(digest) != 64:
            console.print("[red]--anchor must look like SEQ:HASH (64 hex digits)[/red]")
            raise typer.Exit(2)
        expected = (int(seq), digest.lower())
    result = audit.verify_chain(anchor=expected)
    if as_json:
        _print(result.as_dict(), True)
    elif result.ok:
        head = f"head {result.head_seq}:{result.head_hash}" if result.head_seq else "empty"
        sys.stdout.write(f"audit log intact: {result.rows:,} rows, {head}\n")
    else:
        sys.stdout.write(f"audit log BROKEN at row {result.broken_seq} ({result.problem}): "
                         f"{result.detail}\n")
    if not result.ok:
        raise typer.Exit(1)


@audit_app.command("search")
def audit_search(
    actor: Annotated[str | None, typer.Option(help="user:<id>, key:<prefix>, cli:<user> …")]
    = None,
    action: Annotated[str | None, typer.Option(help="e.g. profile.merged, or profile.*")]
    = None,
    target: Annotated[str | None, typer.Option(help="target id, e.g. a profile id")] = None,
    since: Annotated[str | None, typer.Option(help="from this ISO date/time (UTC)")] = None,
    until: Annotated[str | None, typer.Option(help="before this ISO date/time (UTC)")] = None,
    limit: Annotated[int, typer.Option(help="rows per page (at most 500)")] = 100,
    before_seq: Annotated[int | None, typer.Option(
        help="older than this row: the next_before_seq of the page before")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Audit rows, newest first, filtered; page with --before-seq."""
    _setup()
    _migrate()
    _operator("audit.read")
    from cxm.core import audit

    page = audit.search(actor=actor, action=action, target_id=target,
                        since=_parse_when(since, "--since"), until=_parse_when(until, "--until"),
                        limit=limit, before_seq=before_seq)
    if as_json:
        _print({"rows": [audit.as_dict(row) for row in page.rows],
                "next_before_seq": page.next_before_seq}, True)
        return
    table = Table("seq", "at (UTC)", "actor", "action", "target", "changes", "ip")
    for row in page.rows:
        table.add_row(str(row.seq), f"{row.at:%Y-%m-%d %H:%M:%S}", row.actor, row.action,
                      f"{row.target_type}:{row.target_id}",
                      json.dumps(row.changes, sort_keys=True)[:80], row.ip or "")
    Console().print(table)
    if page.next_before_seq is not None:
        console.print(f"older rows: --before-seq {page.next_before_seq}")


def _register_subcommands() -> None:
    # Kept in their own modules so that this file does not grow without end.
    from cxm.cli_privacy import crypto_app, privacy_app

    app.add_typer(privacy_app, name="privacy")
    app.add_typer(crypto_app, name="crypto")
    from cxm.cli_feedback import metrics_app, surveys_app, widget_app

    app.add_typer(surveys_app, name="surveys")
    app.add_typer(metrics_app, name="metrics")
    app.add_typer(widget_app, name="widget")
    from cxm.cli_text import text_app

    app.add_typer(text_app, name="text")


_register_subcommands()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
