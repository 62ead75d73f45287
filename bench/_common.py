"""Shared helpers for the benchmarks: databases, servers, machine facts, statistics.

Only the standard library plus what cxm itself installs (psycopg, orjson) and the ``test``
extra (httpx) are used here, so ``.venv/bin/python bench/run.py`` works in a plain dev venv.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PYTHON = str(ROOT / ".venv" / "bin" / "python")
CXM = str(ROOT / ".venv" / "bin" / "cxm")
if not Path(PYTHON).exists():  # a venv elsewhere: use the interpreter running us
    PYTHON = sys.executable
    CXM = str(Path(sys.executable).with_name("cxm"))

PG_ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_BENCH_DB = os.environ.get("BENCH_PG_DB", "cxm_bench")

# Extra CXM_* settings for every target of this run (run.py --env KEY=VALUE).
EXTRA_ENV: dict[str, str] = {}

# run.py --quiet-wait: before each timed measurement wait up to this many seconds for other
# people's processes on this shared machine to use less than QUIET_CORES of CPU.
QUIET_WAIT = 0.0
QUIET_CORES = 0.3

# Every process we start, so that a crash or Ctrl-C still stops them.
_CHILDREN: list[subprocess.Popen[Any]] = []


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- statistics ---------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank-with-interpolation percentile (q in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q / 100.0
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def latency_summary(ms: Sequence[float]) -> dict[str, float]:
    return {
        "n": len(ms),
        "p50_ms": round(percentile(ms, 50), 3),
        "p95_ms": round(percentile(ms, 95), 3),
        "p99_ms": round(percentile(ms, 99), 3),
        "mean_ms": round(statistics.fmean(ms), 3) if ms else float("nan"),
        "max_ms": round(max(ms), 3) if ms else float("nan"),
    }


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


# --- databases ----------------------------------------------------------------------------------


@dataclass
class Target:
    """One database the app runs on: its env for ``cxm`` and raw connections for baselines."""

    kind: str  # "sqlite" | "postgres"
    data_dir: Path
    database_url: str = ""
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "cxm.sqlite3"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        for key in list(env):
            if key.startswith("CXM_") or key == "DJANGO_SETTINGS_MODULE":
                del env[key]
        env.update({
            "CXM_DATA_DIR": str(self.data_dir),
            # Production settings, as a real deployment runs: DEBUG off (Django keeps no query
            # log), a real secret, explicit hosts.
            "CXM_PRODUCTION": "true",
            "CXM_DEBUG": "false",
            "CXM_SECRET_KEY": "bench-" + secrets.token_hex(24),
            "CXM_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "PYTHONUNBUFFERED": "1",
        })
        if self.database_url:
            env["CXM_DATABASE_URL"] = self.database_url
        env.update(self.extra_env)
        return env

    def connect(self) -> Any:
        """A raw DB-API connection (autocommit off), configured like the app's."""
        if self.kind == "sqlite":
            conn = sqlite3.connect(self.sqlite_path, timeout=30, isolation_level=None)
            synchronous = self.extra_env.get("CXM_SQLITE_SYNCHRONOUS", "FULL")
            for pragma in ("journal_mode=WAL", f"synchronous={synchronous}", "foreign_keys=ON",
                           "cache_size=-65536", "temp_store=MEMORY"):
                conn.execute(f"PRAGMA {pragma}")
            return conn
        import psycopg

        return psycopg.connect(self.database_url)

    def count(self, table: str) -> int:
        conn = self.connect()
        try:
            cur = conn.cursor()
            cur.execute(f"SELECT count(*) FROM {table}")
            return int(cur.fetchone()[0])
        finally:
            conn.close()


@dataclass
class Projection:
    """How dict rows map onto a table as it is now (the schema changes while the code does):
    known keys that are columns are kept, columns nobody gave a value and that are NOT NULL
    without a default get their type's empty value, the rest is dropped."""

    table: str
    columns: tuple[str, ...]
    fill: dict[str, Any]
    dropped: tuple[str, ...]
    placeholders: tuple[str, ...]

    def rows(self, dicts: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
        cols, fill = self.columns, self.fill
        return [tuple(d[c] if c in d else fill[c] for c in cols) for d in dicts]


_SCHEMA_NOTES: set[tuple[Any, ...]] = set()


def project(target: Target, conn: Any, table: str, keys: Sequence[str]) -> Projection:
    cur = conn.cursor()
    if target.kind == "postgres":
        cur.execute("SELECT column_name, data_type, is_nullable, column_default FROM "
                    "information_schema.columns WHERE table_name = %s ORDER BY ordinal_position",
                    (table,))
        found = [(n, t.lower(), nullable == "NO", d is not None)
                 for n, t, nullable, d in cur.fetchall()]
        create_sql = ""
    else:
        cur.execute(f'PRAGMA table_info("{table}")')
        found = [(row[1], str(row[2]).lower(), bool(row[3]), row[4] is not None)
                 for row in cur.fetchall()]
        cur.execute("SELECT sql FROM sqlite_master WHERE name = ?", (table,))
        create_sql = cur.fetchone()[0]
    if not found:
        raise RuntimeError(f"table {table} does not exist (migrations not run?)")
    names = {name for name, *_ in found}
    columns: list[str] = []
    placeholders: list[str] = []
    fill: dict[str, Any] = {}
    for name, kind, not_null, has_default in found:
        is_json = "json" in kind or f'JSON_VALID("{name}")' in create_sql
        if name not in keys:
            if name == "id" or not not_null or has_default:
                continue
            if is_json:
                fill[name] = "{}"
            elif any(word in kind for word in ("int", "numeric", "real", "double")):
                fill[name] = 0
            elif "bool" in kind:
                fill[name] = False
            elif "time" in kind or "date" in kind:
                now = datetime.now(UTC)
                fill[name] = now if target.kind == "postgres" else \
                    now.replace(tzinfo=None).isoformat(" ", "microseconds")
            else:
                fill[name] = ""
        columns.append(name)
        placeholders.append("?" if target.kind == "sqlite" else
                            "%s::jsonb" if kind == "jsonb" else "%s")
    dropped = tuple(k for k in keys if k not in names)
    note = (target.kind, table, tuple(sorted(fill)), dropped)
    if (fill or dropped) and note not in _SCHEMA_NOTES:
        _SCHEMA_NOTES.add(note)
        log(f"  {target.kind}: {table}: schema differs from the loader's rows; "
            f"filled {sorted(fill)} with empty values, left out {list(dropped)}")
    return Projection(table, tuple(columns), fill, dropped, tuple(placeholders))


def _pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql)


def postgres_available() -> str | None:
    """The server version, or None when PostgreSQL cannot be reached."""
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            return str(row[0]) if row else "?"
    except Exception:
        return None


@contextlib.contextmanager
def fresh_target(kind: str, extra_env: dict[str, str] | None = None) -> Iterator[Target]:
    """A brand-new empty database (SQLite file in a temp dir, or a dedicated PG database),
    dropped afterwards."""
    data_dir = Path(tempfile.mkdtemp(prefix=f"cxm-bench-{kind}-"))
    target = Target(kind, data_dir, extra_env={**EXTRA_ENV, **(extra_env or {})})
    if kind == "postgres":
        base = PG_ADMIN_URL.rsplit("/", 1)[0]
        target.database_url = f"{base}/{PG_BENCH_DB}"
        _pg_admin(f'DROP DATABASE IF EXISTS "{PG_BENCH_DB}" WITH (FORCE)')
        _pg_admin(f'CREATE DATABASE "{PG_BENCH_DB}"')
    try:
        yield target
    finally:
        if kind == "postgres":
            with contextlib.suppress(Exception):
                _pg_admin(f'DROP DATABASE IF EXISTS "{PG_BENCH_DB}" WITH (FORCE)')
        shutil.rmtree(data_dir, ignore_errors=True)


def cxm(target: Target, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run the ``cxm`` CLI with the target's env; raises with its output when it fails."""
    done = subprocess.run([CXM, *args], env=target.env(), capture_output=True, text=True,
                          timeout=timeout, cwd=target.data_dir, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"cxm {' '.join(args)} failed ({done.returncode}):\n"
                           f"{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return done


def create_key(target: Target, scope: str, name: str = "bench") -> str:
    done = cxm(target, "keys", "create", "--name", name, "--scope", scope, "--json")
    return str(json.loads(done.stdout)["key"])


# --- servers ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """``cxm serve`` in its own process group; always stopped by :meth:`stop`."""

    def __init__(self, target: Target, workers: int, threads: int = 4):
        self.target = target
        self.workers = workers
        self.threads = threads
        self.port = free_port()
        self.proc: subprocess.Popen[Any] | None = None
        self.log_path = target.data_dir / f"server-{self.port}.log"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait: float = 60.0) -> Server:
        log_file = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [CXM, "serve", "--host", "127.0.0.1", "--port", str(self.port),
             "--workers", str(self.workers), "--threads", str(self.threads)],
            env=self.target.env(), cwd=self.target.data_dir, stdout=log_file,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
        log_file.close()
        _CHILDREN.append(self.proc)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"cxm serve exited with {self.proc.returncode}:\n"
                                   f"{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.base}/healthz", timeout=2) as reply:
                    if reply.status == 200:
                        # gunicorn forks workers lazily; give them all a moment to boot
                        time.sleep(0.5)
                        return self
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"cxm serve did not answer /healthz in {wait}s:\n{self.log_tail()}")

    def pids(self) -> list[int]:
        """The master and its workers (for py-spy)."""
        if self.proc is None:
            return []
        found = [self.proc.pid]
        with contextlib.suppress(OSError):
            for entry in Path("/proc").iterdir():
                if entry.name.isdigit():
                    with contextlib.suppress(OSError):
                        stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                        if int(stat[1]) == self.proc.pid:
                            found.append(int(entry.name))
        return found

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None:
            stop_process_group(self.proc)
            self.proc = None

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def stop_process_group(proc: subprocess.Popen[Any], grace: float = 10.0) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
    else:
        # the master is gone; make sure no orphaned worker of its group survives
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    if proc in _CHILDREN:
        _CHILDREN.remove(proc)


def stop_all_children() -> None:
    for proc in list(_CHILDREN):
        with contextlib.suppress(Exception):
            stop_process_group(proc, grace=5)


def run_worker(script: str, target: Target, args: Sequence[str], timeout: float) -> dict[str, Any]:
    """Run ``bench/<script>`` with the target's env (a Django process of its own); its last
    stdout line is a JSON object."""
    proc = subprocess.Popen([PYTHON, str(BENCH / script), *args], env=target.env(),
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    _CHILDREN.append(proc)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop_process_group(proc)
        raise RuntimeError(f"{script} took longer than {timeout}s") from None
    finally:
        if proc in _CHILDREN:
            _CHILDREN.remove(proc)
    if proc.returncode != 0:
        raise RuntimeError(f"{script} failed ({proc.returncode}):\n{out[-2000:]}\n{err[-4000:]}")
    lines = [line for line in out.splitlines() if line.strip()]
    return dict(json.loads(lines[-1]))


# --- interference ------------------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_table() -> dict[int, tuple[int, float, str]]:
    """pid -> (ppid, cpu seconds so far, name) for every process we can read."""
    table: dict[int, tuple[int, float, str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        name = raw[raw.find("(") + 1:raw.rfind(")")]
        fields = raw[raw.rfind(")") + 2:].split()
        table[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICK,
                                  name)
    return table


def _machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent not idle (all processes, even exited ones)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(x) for x in fields]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return (sum(values[:8]) - idle) / _TICK


class CpuMeter:
    """Who used the CPU during a window, in cores (CPU seconds per wall second):

    * ``ours`` — this process and its descendants (servers, workers, ``cxm`` subprocesses,
      including children reaped during the window, via ``RUSAGE_CHILDREN``);
    * ``postgres`` — live PostgreSQL processes (backends serve everyone, ours included);
    * ``foreign`` — every other live process: other people's tests and servers on this shared
      machine, so a slow figure can be told from a busy machine;
    * ``unattributed`` — the rest of the machine's busy time: processes that exited inside
      the window (PostgreSQL backends of finished ``cxm`` commands, short foreign commands).
    """

    def __init__(self) -> None:
        self.before: dict[int, tuple[int, float, str]] = {}
        self.started = 0.0
        self.busy = 0.0
        self.children = 0.0

    @staticmethod
    def _children_cpu() -> float:
        import resource

        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    def _mine(self, table: dict[int, tuple[int, float, str]]) -> set[int]:
        mine = {os.getpid()}
        changed = True
        while changed:
            changed = False
            for pid, (ppid, _, _) in table.items():
                if ppid in mine and pid not in mine:
                    mine.add(pid)
                    changed = True
        return mine

    def start(self) -> CpuMeter:
        self.before = _proc_table()
        self.mine_before = self._mine(self.before)
        self.busy = _machine_busy_seconds()
        self.children = self._children_cpu()
        self.started = time.perf_counter()
        return self

    def stop(self) -> dict[str, Any]:
        after = _proc_table()
        wall = max(time.perf_counter() - self.started, 1e-9)
        busy = _machine_busy_seconds() - self.busy
        mine = self._mine(after)
        ours = foreign = postgres = 0.0
        top: dict[str, float] = {}
        for pid, (_, cpu, name) in after.items():
            delta = cpu - (self.before[pid][1] if pid in self.before else 0.0)
            if delta <= 0:
                continue
            if pid in mine:
                ours += delta
            elif name.startswith("postgres"):
                postgres += delta
            else:
                foreign += delta
                top[name] = top.get(name, 0.0) + delta
        # our children reaped in the window: their whole life is in RUSAGE_CHILDREN; take off
        # what they had used before the window started
        reaped_before = sum(self.before[pid][1] for pid in self.mine_before
                            if pid not in after and pid in self.before)
        ours += max(0.0, self._children_cpu() - self.children - reaped_before)
        return {
            "wall_s": round(wall, 2),
            "machine_busy_cores": round(busy / wall, 2),
            "ours_cores": round(ours / wall, 2),
            "postgres_cores": round(postgres / wall, 2),
            "foreign_cores": round(foreign / wall, 2),
            "unattributed_cores": round(max(0.0, busy - ours - postgres - foreign) / wall, 2),
            "foreign_top": {k: round(v, 1) for k, v in
                            sorted(top.items(), key=lambda kv: -kv[1])[:3]},
        }


def wait_for_quiet() -> dict[str, float]:
    """Sample foreign CPU in 2-second windows until it is below QUIET_CORES or QUIET_WAIT
    seconds have passed; returns how long we waited and the last reading."""
    if QUIET_WAIT <= 0:
        return {}
    started = time.perf_counter()
    while True:
        meter = CpuMeter().start()
        time.sleep(2.0)
        reading = meter.stop()
        foreign = reading["foreign_cores"] + reading["unattributed_cores"]
        waited = time.perf_counter() - started
        if foreign < QUIET_CORES or waited >= QUIET_WAIT:
            if waited > 2.5:
                log(f"    (waited {waited:.0f}s for a quieter machine: other processes now use "
                    f"{foreign:.2f} cores)")
            return {"waited_s": round(waited, 1), "foreign_cores_before": round(foreign, 2)}


class PgWaitSampler:
    """Samples ``pg_stat_activity`` of one database every ``interval`` seconds in a thread:
    how many backends were running, idle in a transaction, or waiting (and on what). Shows
    whether concurrent requests actually run in parallel or queue on locks."""

    def __init__(self, database_url: str, interval: float = 0.05):
        import threading

        self.url = database_url
        self.interval = interval
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.samples = 0
        self.states: dict[str, int] = {}
        self.locks: dict[str, int] = {}

    def _run(self) -> None:
        import psycopg

        dbname = self.url.rsplit("/", 1)[1]
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.stop_event.is_set():
                rows = conn.execute(
                    "SELECT state, wait_event_type, wait_event FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid() AND backend_type = "
                    "'client backend'", (dbname,)).fetchall()
                waiting = conn.execute(
                    "SELECT l.objsubid, count(*) FROM pg_locks l JOIN pg_database d ON "
                    "d.oid = l.database WHERE d.datname = %s AND l.locktype = 'advisory' AND "
                    "NOT l.granted GROUP BY l.objsubid", (dbname,)).fetchall()
                for objsubid, count in waiting:
                    # pg_advisory_xact_lock(bigint) has objsubid 1, (int4, int4) has 2
                    key = ("waiting for advisory lock (bigint key)" if objsubid == 1 else
                           "waiting for advisory lock (int4 pair key)")
                    self.locks[key] = self.locks.get(key, 0) + count
                self.samples += 1
                for state, wait_type, wait_event in rows:
                    if state == "active" and wait_type in (None, "", "CPU"):
                        key = "active (on CPU)"
                    elif state == "active":
                        key = f"active, waiting {wait_type}:{wait_event}"
                    else:
                        key = str(state)
                        if wait_type == "Client":
                            key += f" ({wait_event})"
                    self.states[key] = self.states.get(key, 0) + 1
                time.sleep(self.interval)

    def __enter__(self) -> PgWaitSampler:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()
        self.thread.join(timeout=5)

    def summary(self) -> dict[str, float]:
        """Average number of backends in each state per sample."""
        n = max(1, self.samples)
        merged = {**self.states, **self.locks}
        return {k: round(v / n, 2) for k, v in sorted(merged.items(), key=lambda kv: -kv[1])}


# --- machine ------------------------------------------------------------------------------------


def _git_commit() -> str:
    """HEAD's commit, read from .git without running git."""
    git = ROOT / ".git"
    try:
        if git.is_file():  # a worktree: "gitdir: <path>"
            git = Path(git.read_text().split(":", 1)[1].strip())
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref:"):
            return head
        ref = head.split(":", 1)[1].strip()
        common = git
        if (git / "commondir").exists():
            common = (git / (git / "commondir").read_text().strip()).resolve()
        for base in (git, common):
            if (base / ref).exists():
                return (base / ref).read_text().strip() + f" ({ref.rsplit('/', 1)[-1]})"
        for base in (git, common):
            packed = base / "packed-refs"
            if packed.exists():
                for line in packed.read_text().splitlines():
                    if line.endswith(" " + ref):
                        return line.split()[0] + f" ({ref.rsplit('/', 1)[-1]})"
        return f"unknown ({ref})"
    except OSError:
        return "unknown"


def source_digest() -> str:
    """sha256 of src/**/*.py: identifies the code measured even when the work tree has
    uncommitted changes (the commit alone would not)."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted((ROOT / "src").rglob("*.py")):
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def machine_info(pg_version: str | None) -> dict[str, Any]:
    cpu = platform.processor() or "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram_gib = float("nan")
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    versions: dict[str, str] = {}
    for module in ("django", "gunicorn", "psycopg", "orjson", "httpx"):
        try:
            from importlib.metadata import version

            versions[module] = version(module)
        except Exception:
            versions[module] = "?"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gib": ram_gib,
        "os": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": pg_version or "not available",
        "git_commit": _git_commit(),
        "src_digest": source_digest(),
        "packages": versions,
        "loadavg_at_start": list(os.getloadavg()),
    }
