"""Where the time goes: profiles of the paths the benchmarks measure (not part of run.py).

    .venv/bin/python bench/profile_hotspots.py [--db sqlite|postgres|both]
        [--only ingest,import,read,server] [--events 20000] [--top 25]

* ingest — in-process ``actions.ingest`` of 100-message batches (what ``/v1/batch`` runs per
  request, without HTTP), under cProfile, with SQL statements per batch and the share of
  wall time spent inside the database driver.
* import — in-process ``importer.run_import`` of a JSONL file under cProfile.
* read   — ``GET /api/v1/profiles/{id}`` and ``/timeline`` through Django's test client, per
  tier (light/medium/heavy), with the SQL each one runs and its time.
* server — py-spy (if installed: ``.venv/bin/pip install py-spy``) sampling the live gunicorn
  workers while 6 clients send batches; prints the hottest functions (self and inclusive).

Only cProfile/stdlib is needed except for ``server``. Writes bench/out/hotspots-<db>-*.txt.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import cProfile
import io
import json
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from _common import (
    BENCH,
    PYTHON,
    Server,
    Target,
    create_key,
    cxm,
    fresh_target,
    log,
    run_worker,
)

OUT = BENCH / "out"


def _stats_text(profiler: cProfile.Profile, top: int) -> str:
    buf = io.StringIO()
    stats = pstats.Stats(profiler, stream=buf)
    stats.strip_dirs()
    buf.write("== by own time (tottime) ==\n")
    stats.sort_stats("tottime").print_stats(top)
    buf.write("== by cumulative time ==\n")
    stats.sort_stats("cumulative").print_stats(top)
    return buf.getvalue()


class _SqlTimer:
    """execute_wrapper: counts statements and time inside the driver."""

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0
        self.by_kind: collections.Counter[str] = collections.Counter()
        self.time_by_kind: collections.Counter[str] = collections.Counter()

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            elapsed = time.perf_counter() - started
            self.count += 1
            self.seconds += elapsed
            words = sql.split()
            head = " ".join(words[:3])[:60] if words else "?"
            self.by_kind[head] += 1
            self.time_by_kind[head] += elapsed


class _PhaseTimers:
    """Wall time per call of named functions on the ingest path (inclusive), installed by
    replacing module attributes for the duration; names missing in this version are skipped.
    ``pipeline.resolver``/``preparer`` are wrapped through their accessors so registration is
    untouched. Commit time is measured on the connection object."""

    TARGETS = (
        ("cxm.ingest.actions", "validate_messages"),
        ("cxm.ingest.actions", "store_messages"),
        ("cxm.ingest.actions", "record_outcomes"),
        ("cxm.core.sql", "insert_rows"),
        ("cxm.identity.actions", "_lock_keys"),
        ("cxm.identity.actions", "_load_owners"),
        ("cxm.identity.actions", "_lock_profiles"),
        ("cxm.identity.rules", "plan_batch"),
        ("cxm.identity.actions", "_apply"),
        ("cxm.identity.actions", "_merge_stored"),
        ("cxm.identity.actions", "_write_profile_updates"),
        ("cxm.core.audit", "record_many"),
        # since the lock-scope rework: work before the transaction, the transaction's body,
        # the end-of-transaction profile sweep, the audit insert
        ("cxm.ingest.actions", "_prepare"),
        ("cxm.ingest.actions", "_store_prepared"),
        ("cxm.identity.actions", "_profile_facts"),
        ("cxm.identity.actions", "_load_merge_facts"),
        ("cxm.identity.actions", "_finish"),
        ("cxm.identity.actions", "_lock_for_finish"),
        ("cxm.core.audit", "_write"),
    )

    def __init__(self) -> None:
        self.totals: collections.Counter[str] = collections.Counter()
        self.calls: collections.Counter[str] = collections.Counter()

    def _wrap(self, label: str, func: Any) -> Any:
        totals, calls = self.totals, self.calls

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                totals[label] += time.perf_counter() - started
                calls[label] += 1

        return timed

    @contextlib.contextmanager
    def installed(self, connection: Any) -> Iterator[None]:
        import importlib

        from cxm.ingest import pipeline

        undo: list[tuple[Any, str, Any]] = []
        for module_name, attr in self.TARGETS:
            try:
                module = importlib.import_module(module_name)
            except ImportError:
                continue
            if hasattr(module, attr):
                original = getattr(module, attr)
                undo.append((module, attr, original))
                setattr(module, attr, self._wrap(f"{module_name.rsplit('.', 1)[1]}.{attr}",
                                                 original))
        for accessor in ("resolver", "preparer"):
            original_accessor = getattr(pipeline, accessor, None)
            if original_accessor is None:
                continue
            hook = original_accessor()
            if hook is None:
                continue
            wrapped = self._wrap(f"pipeline.{accessor} ({getattr(hook, '__name__', '?')})", hook)
            undo.append((pipeline, accessor, original_accessor))
            setattr(pipeline, accessor, lambda w=wrapped: w)
        connection.ensure_connection()
        original_commit = connection.commit
        connection.commit = self._wrap("connection.commit", original_commit)
        try:
            yield
        finally:
            connection.commit = original_commit
            for module, attr, original in reversed(undo):
                setattr(module, attr, original)


class _TimedCursor:
    """A raw psycopg cursor (cxm.core.sql.server_cursor) whose statements count in a
    _SqlTimer: on PostgreSQL the hot-path inserts bypass Django's execute wrappers."""

    def __init__(self, cursor: Any, timer: _SqlTimer):
        self._cursor = cursor
        self._timer = timer

    def __enter__(self) -> _TimedCursor:
        self._cursor.__enter__()
        return self

    def __exit__(self, *exc: Any) -> Any:
        return self._cursor.__exit__(*exc)

    def _timed(self, method: str, sql: str, params: Any, many: bool) -> Any:
        return self._timer(lambda q, p, m, c: getattr(self._cursor, method)(q, p), sql, params,
                           many, None)

    def execute(self, sql: str, params: Any = None, **kwargs: Any) -> Any:
        return self._timed("execute", sql, params, False)

    def executemany(self, sql: str, params: Any, **kwargs: Any) -> Any:
        return self._timed("executemany", sql, params, True)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


@contextlib.contextmanager
def sql_timed(connection: Any, timer: _SqlTimer) -> Iterator[None]:
    """Count every statement: Django's cursors and cxm.core.sql's raw cursor."""
    try:
        from cxm.core import sql as core_sql
    except ImportError:
        core_sql = None
    original = getattr(core_sql, "server_cursor", None) if core_sql else None
    if original is not None:
        core_sql.server_cursor = lambda: _TimedCursor(original(), timer)  # type: ignore[union-attr]
    try:
        with connection.execute_wrapper(timer):
            yield
    finally:
        if original is not None:
            core_sql.server_cursor = original  # type: ignore[union-attr]


# --- inner (Django) parts -------------------------------------------------------------------------


def inner_ingest(args: argparse.Namespace) -> dict[str, Any]:
    import django

    django.setup()
    from django.db import connection

    from cxm.core.audit import Actor
    from cxm.ingest import actions
    from http_ingest import HttpConfig, prepare

    cfg = HttpConfig(rounds=1, events_per_round=args.events, warmup_events=1000)
    prepared = prepare(cfg)
    batches = [orjson.loads(b)["batch"] for b in prepared.warmup]
    timed = [orjson.loads(b)["batch"] for b in prepared.rounds[0]]
    actor = Actor("key:profile", "127.0.0.1")
    for batch in batches:  # warm-up: creates the first profiles
        actions.ingest(batch, actor=actor, source="key:profile")
    # Unprofiled pass first (for a clean events/s, with phase timers), then a profiled pass of
    # fresh messages.
    half = len(timed) // 2
    sql = _SqlTimer()
    phases = _PhaseTimers()
    with sql_timed(connection, sql), phases.installed(connection):
        started = time.perf_counter()
        for batch in timed[:half]:
            actions.ingest(batch, actor=actor, source="key:profile")
        plain_seconds = time.perf_counter() - started
    phase = phases.totals
    profiler = cProfile.Profile()
    profiler.enable()
    started = time.perf_counter()
    for batch in timed[half:]:
        actions.ingest(batch, actor=actor, source="key:profile")
    profiled_seconds = time.perf_counter() - started
    profiler.disable()
    events = sum(len(b) for b in timed[:half])
    return {
        "vendor": connection.vendor,
        "batches": half, "events": events,
        "events_per_s_single_process": round(events / plain_seconds, 1),
        "ms_per_batch": round(plain_seconds / half * 1000, 2),
        "phase_ms_per_batch": {k: round(v / half * 1000, 2)
                               for k, v in sorted(phase.items(), key=lambda kv: -kv[1])},
        "phase_calls_per_batch": {k: round(v / half, 2) for k, v in phases.calls.items()},
        "sql_statements_per_batch": round(sql.count / half, 1),
        "sql_ms_per_batch": round(sql.seconds / half * 1000, 2),
        "sql_share_of_wall": round(sql.seconds / plain_seconds, 3),
        "sql_by_statement": {k: {"per_batch": round(n / half, 2),
                                 "ms_per_batch": round(sql.time_by_kind[k] / half * 1000, 3)}
                             for k, n in sql.by_kind.most_common(25)},
        "profiled_seconds": round(profiled_seconds, 2),
        "profile": _stats_text(profiler, args.top),
    }


def inner_import(args: argparse.Namespace) -> dict[str, Any]:
    import django

    django.setup()
    from django.db import connection

    from cxm.core.audit import Actor
    from cxm.ingest import importer

    path = Path(args.file)
    sql = _SqlTimer()
    profiler = cProfile.Profile()
    with path.open("rb") as stream, sql_timed(connection, sql):
        profiler.enable()
        summary = importer.run_import(importer.read_jsonl(stream), actor=Actor("cli:profile"),
                                      source="import:profile",
                                      rejects_path=path.with_suffix(".rejects"))
        profiler.disable()
    return {
        "vendor": connection.vendor, "summary": summary.as_dict(),
        "sql_statements": sql.count, "sql_seconds": round(sql.seconds, 2),
        "sql_share_of_wall": round(sql.seconds / summary.seconds, 3),
        "sql_by_statement": {k: {"count": n, "seconds": round(sql.time_by_kind[k], 3)}
                             for k, n in sql.by_kind.most_common(25)},
        "profile": _stats_text(profiler, args.top),
    }


def inner_read(args: argparse.Namespace) -> dict[str, Any]:
    import django

    django.setup()
    from django.db import connection
    from django.test import Client

    picks: list[dict[str, str]] = json.loads(Path(args.file).read_text())
    client = Client(HTTP_AUTHORIZATION=f"Bearer {args.key}", HTTP_HOST="127.0.0.1")
    out: dict[str, Any] = {"vendor": connection.vendor, "tiers": {}}
    profiler = cProfile.Profile()
    for tier in ("light", "medium", "heavy"):
        ids = [p["id"] for p in picks if p["tier"] == tier][:40]
        for pid in ids[:5]:  # warm
            client.get(f"/api/v1/profiles/{pid}")
        per: dict[str, Any] = {}
        for name, suffix in (("profile", ""), ("timeline", "/timeline?limit=50")):
            sql = _SqlTimer()
            started = time.perf_counter()
            with sql_timed(connection, sql):
                if tier == "heavy":
                    profiler.enable()
                for pid in ids:
                    reply = client.get(f"/api/v1/profiles/{pid}{suffix}")
                    assert reply.status_code == 200, reply.content[:200]
                if tier == "heavy":
                    profiler.disable()
            wall = time.perf_counter() - started
            per[name] = {
                "ms_per_request": round(wall / len(ids) * 1000, 2),
                "sql_ms_per_request": round(sql.seconds / len(ids) * 1000, 2),
                "sql_per_request": round(sql.count / len(ids), 1),
                "sql_by_statement_ms": {k: round(v / len(ids) * 1000, 3)
                                        for k, v in sql.time_by_kind.most_common(8)},
            }
        out["tiers"][tier] = per
    out["profile_heavy"] = _stats_text(profiler, args.top)
    return out


# --- outer ----------------------------------------------------------------------------------------


def _inner(target: Target, mode: str, extra: list[str], top: int) -> dict[str, Any]:
    return run_worker("profile_hotspots.py", target, ["--inner", mode, "--top", str(top),
                                                      *extra], timeout=1200)


def _write(db: str, name: str, text: str) -> Path:
    OUT.mkdir(exist_ok=True)
    path = OUT / f"hotspots-{db}-{name}.txt"
    path.write_text(text)
    return path


def outer_ingest(db: str, args: argparse.Namespace) -> None:
    with fresh_target(db) as target:
        cxm(target, "migrate")
        res = _inner(target, "ingest", ["--events", str(args.events)], args.top)
    profile = res.pop("profile")
    path = _write(db, "ingest", json.dumps(res, indent=2) + "\n\n" + profile)
    log(f"ingest/{db}: {res['events_per_s_single_process']:,.0f} ev/s in one process, "
        f"{res['ms_per_batch']} ms/batch, phases {res['phase_ms_per_batch']}, "
        f"{res['sql_statements_per_batch']} SQL/batch = {res['sql_ms_per_batch']} ms "
        f"({res['sql_share_of_wall']:.0%} of wall) -> {path.relative_to(BENCH.parent)}")


def outer_import(db: str, args: argparse.Namespace) -> None:
    from file_import import ImportConfig, write_file

    with tempfile.TemporaryDirectory() as tmp, fresh_target(db) as target:
        file = Path(tmp) / "profile.jsonl"
        write_file(ImportConfig(events=args.events), file)
        cxm(target, "migrate")
        res = _inner(target, "import", ["--file", str(file)], args.top)
    profile = res.pop("profile")
    path = _write(db, "import", json.dumps(res, indent=2) + "\n\n" + profile)
    log(f"import/{db}: {res['summary']['events_per_second']:,} ev/s under cProfile, SQL "
        f"{res['sql_share_of_wall']:.0%} of wall -> {path.relative_to(BENCH.parent)}")


def outer_read(db: str, args: argparse.Namespace) -> None:
    from read_data import build, sample

    with fresh_target(db) as target:
        cxm(target, "migrate")
        data = build(target, args.profiles, args.profiles * 10)
        file = target.data_dir / "picks.json"
        file.write_text(json.dumps(sample(data, 2000)))
        key = create_key(target, "read", "profile")
        res = _inner(target, "read", ["--file", str(file), "--key", key], args.top)
    profile = res.pop("profile_heavy")
    path = _write(db, "read", json.dumps(res, indent=2) + "\n\n" + profile)
    for tier, per in res["tiers"].items():
        log(f"read/{db} {tier}: profile {per['profile']['ms_per_request']} ms "
            f"(SQL {per['profile']['sql_ms_per_request']} ms, {per['profile']['sql_per_request']}"
            f" stmts), timeline {per['timeline']['ms_per_request']} ms "
            f"(SQL {per['timeline']['sql_ms_per_request']} ms)")
    log(f"  -> {path.relative_to(BENCH.parent)}")


def _collapsed_top(path: Path, top: int) -> str:
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    lines = [f"{total} samples", "== own (leaf) =="]
    lines += [f"{n / total:6.1%}  {f}" for f, n in own.most_common(top)]
    lines += ["== inclusive =="]
    lines += [f"{n / total:6.1%}  {f}" for f, n in inclusive.most_common(top * 2)]
    return "\n".join(lines)


def outer_server(db: str, args: argparse.Namespace) -> None:
    from http_ingest import HttpConfig, prepare, send

    pyspy = shutil.which("py-spy") or str(Path(PYTHON).with_name("py-spy"))
    if not Path(pyspy).exists():
        log("server: py-spy is not installed (.venv/bin/pip install py-spy); skipped")
        return
    cfg = HttpConfig(rounds=1, events_per_round=args.events, warmup_events=1000)
    prepared = prepare(cfg)
    with fresh_target(db) as target:
        cxm(target, "migrate")
        key = create_key(target, "ingest")
        with Server(target, args.workers) as server:
            send(server.port, key, prepared.warmup, cfg.clients)
            raw = target.data_dir / "pyspy.txt"
            spy = subprocess.Popen(
                [pyspy, "record", "--pid", str(server.pids()[0]), "--subprocesses",
                 "--format", "raw", "--rate", "200", "--output", str(raw), "--nonblocking"],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
            time.sleep(1.0)
            result = send(server.port, key, prepared.rounds[0], cfg.clients)
            spy.send_signal(2)
            try:
                spy.wait(timeout=30)
            except subprocess.TimeoutExpired:
                spy.kill()
            text = _collapsed_top(raw, args.top) if raw.exists() else "no py-spy output"
    path = _write(db, "server", f"{result['events_per_s']:.0f} ev/s while sampled, "
                                f"{args.workers} workers\n{text}\n")
    log(f"server/{db}: {result['events_per_s']:,.0f} ev/s while sampled -> "
        f"{path.relative_to(BENCH.parent)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--only", default="ingest,import,read,server")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--profiles", type=int, default=20_000,
                        help="read: profiles to load (10 events each on average)")
    parser.add_argument("--workers", type=int, default=2, help="server: gunicorn workers")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--inner", help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cxm.settings")
        result = {"ingest": inner_ingest, "import": inner_import, "read": inner_read}[
            args.inner](args)
        sys.stdout.write("\n" + json.dumps(result, default=str) + "\n")
        return
    dbs = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    steps = {"ingest": outer_ingest, "import": outer_import, "read": outer_read,
             "server": outer_server}
    for db in dbs:
        for name in args.only.split(","):
            steps[name.strip()](db, args)
    log(f"done at {datetime.now(UTC) + timedelta(0):%H:%M:%S} UTC")


if __name__ == "__main__":
    main()
