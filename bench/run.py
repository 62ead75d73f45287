"""Run the cxm performance benchmarks on SQLite and PostgreSQL; see bench/README.md.

    .venv/bin/python bench/run.py [--quick] [--db sqlite|postgres|both] [--only http,import,read]

Prints the machine and the figures, and writes everything to bench/out/<timestamp>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import _common
import file_import
import http_ingest
import profile_read
from _common import BENCH, log, machine_info, postgres_available, stop_all_children

TARGETS = {"http_events_per_s": 5000, "import_events_per_s": 20000, "read_p95_ms": 20.0}


def _configs(quick: bool) -> tuple[http_ingest.HttpConfig, file_import.ImportConfig,
                                   profile_read.ReadConfig]:
    if quick:
        return (
            http_ingest.HttpConfig(rounds=3, events_per_round=4_000, warmup_events=1_000),
            file_import.ImportConfig(events=20_000, repeats=2),
            profile_read.ReadConfig(profiles=10_000, events=100_000, lookups=2_000,
                                    http_lookups=300),
        )
    return (
        http_ingest.HttpConfig(rounds=3, events_per_round=20_000, warmup_events=2_000),
        file_import.ImportConfig(events=200_000, repeats=3),
        profile_read.ReadConfig(profiles=100_000, events=1_000_000, lookups=2_000,
                                http_lookups=500),
    )


def _on_signal(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _fmt(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


def summary_rows(results: dict[str, Any]) -> list[list[str]]:
    rows: list[list[str]] = []
    for db, res in results["databases"].items():
        http = res.get("http")
        if http and "by_workers" in http:
            for r in http["by_workers"]:
                ok = r["median_events_per_s"] >= TARGETS["http_events_per_s"]
                noise = max(x["cpu"]["foreign_cores"] for x in r["rounds"])
                rows.append([
                    f"HTTP /v1/batch, {r['workers']}w×{r['threads']}t, {r['clients']} clients",
                    db, f"{_fmt(r['median_events_per_s'])} ev/s",
                    f"{_fmt(r['baseline_median_rows_per_s'])} rows/s", f"{r['ratio']:.3f}",
                    "≥ 5,000 ev/s",
                    ("above" if ok else "BELOW") + ("" if r["complete"] else ", EVENTS LOST"),
                    f"{noise:.2f}",
                ])
        imp = res.get("import")
        if imp and "reps" in imp:
            noise = max(x["cpu"]["foreign_cores"] for x in imp["reps"])
            for label, key, ratio in (("cxm import (CLI wall)", "median_cli_events_per_s",
                                       "ratio_cli"),
                                      ("cxm import (run_import)",
                                       "median_run_import_events_per_s", "ratio_run_import")):
                ok = imp[key] >= TARGETS["import_events_per_s"]
                rows.append([
                    f"{label}, {imp['config']['events']:,} msgs", db, f"{_fmt(imp[key])} ev/s",
                    f"{_fmt(imp['baseline_median_rows_per_s'])} rows/s", f"{imp[ratio]:.3f}",
                    "≥ 20,000 ev/s",
                    ("above" if ok else "BELOW") + ("" if imp["complete"] else ", EVENTS LOST"),
                    f"{noise:.2f}",
                ])
        read = res.get("read")
        if read and "in_process" in read:
            o, b = read["in_process"]["ours"], read["in_process"]["baseline"]
            cfg = read["config"]
            rows.append([
                f"profile+timeline in-process, {cfg['profiles']:,} p / {cfg['events']:,} ev "
                f"(p50 / p95 / p99)", db,
                f"{o['p50_ms']:.2f} / {o['p95_ms']:.2f} / {o['p99_ms']:.2f} ms",
                f"{b['p50_ms']:.2f} / {b['p95_ms']:.2f} / {b['p99_ms']:.2f} ms",
                f"{read['ratio_p95']:.1f} (p95)", "p95 ≤ 20 ms",
                "within" if o["p95_ms"] <= TARGETS["read_p95_ms"] else "ABOVE",
                f"{read['in_process']['cpu']['foreign_cores']:.2f}",
            ])
            h = read["http"]["profile_plus_timeline"]
            rows.append([
                "GET profile + GET timeline over HTTP (p50 / p95 / p99)", db,
                f"{h['p50_ms']:.1f} / {h['p95_ms']:.1f} / {h['p99_ms']:.1f} ms",
                f"/healthz {read['http']['healthz_floor']['p50_ms']:.2f} ms p50", "—",
                "p95 ≤ 20 ms", "within" if h["p95_ms"] <= TARGETS["read_p95_ms"] else "ABOVE",
                f"{read['http']['cpu']['foreign_cores']:.2f}",
            ])
        for name in ("http", "import", "read"):
            if res.get(name, {}).get("error"):
                lines = [x.strip() for x in res[name]["error"].splitlines() if x.strip()]
                named = [x for x in lines if re.match(r"^[\w.]*(Error|Exception)\b", x)]
                why = (named or lines or ["?"])[-1]
                rows.append([name, db, "ERROR", "", "", "", why[:120].replace("|", "/"), ""])
    return rows


def render_table(rows: list[list[str]]) -> str:
    head = ["benchmark", "db", "cxm (median)", "raw baseline", "ours/baseline", "target",
            "status", "foreign CPU (cores, max)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes (~3 minutes)")
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--only", default="http,import,read",
                        help="comma-separated subset of http,import,read")
    parser.add_argument("--workers", help="HTTP worker counts to try, e.g. 2,3,4")
    parser.add_argument("--clients", type=int, help="concurrent HTTP clients (default 6)")
    parser.add_argument("--skew", type=float,
                        help="HTTP workload: Zipf exponent of activity per person (default 1.1; "
                             "0 = uniform)")
    parser.add_argument("--quiet-wait", type=float, default=0.0, metavar="SECONDS",
                        help="before each timed measurement, wait up to this long for other "
                             "processes on the machine to use < 0.3 cores (shared machines)")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="extra setting for every cxm process, e.g. "
                             "CXM_SQLITE_SYNCHRONOUS=NORMAL (repeatable)")
    parser.add_argument("--read-profile", action="store_true",
                        help="also write cProfile stats of the in-process reads to bench/out")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _on_signal)

    http_cfg, import_cfg, read_cfg = _configs(args.quick)
    if args.workers:
        http_cfg.workers = tuple(int(w) for w in args.workers.split(","))
    if args.clients:
        http_cfg.clients = args.clients
    if args.skew is not None:
        http_cfg.skew = args.skew
    for item in args.env:
        env_key, sep, env_value = item.partition("=")
        if not sep or not env_key:
            parser.error(f"--env {item!r} must look like KEY=VALUE")
        _common.EXTRA_ENV[env_key] = env_value
    _common.QUIET_WAIT = args.quiet_wait
    only = {x.strip() for x in args.only.split(",") if x.strip()}
    pg_version = postgres_available()
    dbs = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    if "postgres" in dbs and pg_version is None:
        log("PostgreSQL is not reachable at BENCH_PG_URL; skipping it")
        dbs.remove("postgres")

    started = time.perf_counter()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out_dir = BENCH / "out"
    out_dir.mkdir(exist_ok=True)
    machine = machine_info(pg_version)
    print("cxm benchmarks —", "quick" if args.quick else "full", "run,", stamp)
    for key in ("cpu", "cores", "ram_gib", "os", "python", "sqlite", "postgresql",
                "git_commit", "src_digest"):
        print(f"  {key:11s} {machine[key]}")
    print(f"  {'packages':11s} {machine['packages']}")
    print(f"  {'loadavg':11s} {machine['loadavg_at_start']}", flush=True)

    results: dict[str, Any] = {
        "command": " ".join([os.path.relpath(sys.executable, Path.cwd()), *sys.argv]),
        "started_utc": stamp, "mode": "quick" if args.quick else "full", "machine": machine,
        "targets": TARGETS, "extra_env": dict(_common.EXTRA_ENV),
        "quiet_wait_s": args.quiet_wait,
        "databases": {db: {} for db in dbs},
    }
    out_path = out_dir / f"{stamp}.json"
    failed = False
    try:
        prepared = None
        if "http" in only:
            total = http_cfg.warmup_events + http_cfg.rounds * http_cfg.events_per_round
            log(f"preparing {total:,} messages in {http_cfg.batch}-message batches")
            prepared = http_ingest.prepare(http_cfg)
        import_file = None
        messages: list[Any] = []
        with tempfile.TemporaryDirectory(prefix="cxm-bench-import-") as tmp:
            if "import" in only:
                import_file = Path(tmp) / "segment-messages.jsonl"
                messages = file_import.write_file(import_cfg, import_file)
                log(f"wrote {len(messages):,} messages to {import_file.name} "
                    f"({import_file.stat().st_size / 1e6:.1f} MB)")
            for db in dbs:
                res = results["databases"][db]
                for name in ("http", "import", "read"):
                    if name not in only:
                        continue
                    log(f"{name} on {db}")
                    t0 = time.perf_counter()
                    try:
                        if name == "http" and prepared is not None:
                            res[name] = http_ingest.run(db, http_cfg, prepared)
                        elif name == "import" and import_file is not None:
                            res[name] = file_import.run(db, import_cfg, import_file, messages)
                        elif name == "read":
                            prof = str(out_dir / f"{stamp}-read-{db}.pstats") \
                                if args.read_profile else None
                            res[name] = profile_read.run(db, read_cfg, prof)
                    except KeyboardInterrupt:
                        raise
                    except Exception as error:
                        failed = True
                        traceback.print_exc()
                        res[name] = {"error": f"{type(error).__name__}: {error}"}
                    res.setdefault("seconds", {})[name] = round(time.perf_counter() - t0, 1)
                    out_path.write_text(json.dumps(results, indent=2, default=str))
    except KeyboardInterrupt:
        log("interrupted: stopping servers and dropping benchmark databases")
        failed = True
    finally:
        stop_all_children()
        results["seconds_total"] = round(time.perf_counter() - started, 1)
        results["machine"]["loadavg_at_end"] = list(os.getloadavg())
        rows = summary_rows(results)
        results["table_markdown"] = render_table(rows)
        for db, res in results["databases"].items():
            for name in ("http", "import"):
                if res.get(name) and res[name].get("complete") is False:
                    failed = True
                    log(f"FAILURE: {name} on {db} lost events (stored != sent)")
        out_path.write_text(json.dumps(results, indent=2, default=str))
    print()
    print(results["table_markdown"])
    print()
    log(f"total {results['seconds_total']:.0f}s; results in {out_path.relative_to(BENCH.parent)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
