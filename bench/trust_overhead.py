"""What encryption and blind indexes cost ingest: the same batches, in-process, with
``CXM_ENCRYPTION`` off and on, alternated in one run on each database.

    .venv/bin/python bench/trust_overhead.py [--events N] [--rounds R] [--db sqlite|postgres|both]

Each measurement is a fresh subprocess (the setting is read at start-up) on a fresh database,
ingesting the same workload through ``cxm.ingest.actions.ingest`` in batches of 100 (what the
Segment SDKs send), identity resolution and profile updates included. The audit hash chain is
on in both modes (it has no switch); its own cost is measured per row in the closing table of
bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"

CHILD = r"""
import os, sys, time, json
sys.path.insert(0, os.path.join(os.environ["CXM_ROOT"], "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cxm.settings")
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from datetime import UTC, datetime, timedelta
from workload import Workload
from cxm.core.audit import Actor
from cxm.ingest import actions
n = int(os.environ["BENCH_EVENTS"])
messages = list(Workload(people=5000, seed=11).messages(
    n, start=datetime(2026, 1, 1, tzinfo=UTC), step=timedelta(seconds=2)))
actor = Actor("key:bench")
actions.ingest(messages[:500], actor=actor, source="key:bench")  # warm-up
started = time.perf_counter()
accepted = 0
for i in range(500, n, 100):
    accepted += actions.ingest(messages[i:i + 100], actor=actor, source="key:bench").accepted
elapsed = time.perf_counter() - started
print(json.dumps({"events_per_s": accepted / elapsed, "accepted": accepted}))
"""


def _pg(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(sql)


def measure(db: str, encryption: bool, events: int) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CXM_")}
    with tempfile.TemporaryDirectory(prefix="cxm-trust-") as data_dir:
        env.update(CXM_DATA_DIR=data_dir, CXM_ENCRYPTION="true" if encryption else "false",
                   CXM_ROOT=str(ROOT), BENCH_EVENTS=str(events))
        if db == "postgres":
            _pg("DROP DATABASE IF EXISTS cxm_trust_bench")
            _pg("CREATE DATABASE cxm_trust_bench")
            env["CXM_DATABASE_URL"] = "postgresql://postgres@127.0.0.1:5432/cxm_trust_bench"
        try:
            out = subprocess.run([sys.executable, "-c", CHILD], env=env, check=True,
                                 capture_output=True, text=True, timeout=900)
        finally:
            if db == "postgres":
                _pg("DROP DATABASE IF EXISTS cxm_trust_bench")
    return float(json.loads(out.stdout.strip().splitlines()[-1])["events_per_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "bench"))
    from _common import machine_info

    print(json.dumps(machine_info(None), default=str))
    dbs = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    for db in dbs:
        figures: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(args.rounds):
            for encryption in (False, True):
                rate = measure(db, encryption, args.events)
                figures[encryption].append(rate)
                print(f"{db:8s} encryption={'on ' if encryption else 'off'} {rate:8,.0f} ev/s",
                      flush=True)
        off, on = statistics.median(figures[False]), statistics.median(figures[True])
        print(f"{db:8s} median off {off:,.0f} ev/s, on {on:,.0f} ev/s: "
              f"encryption costs {100 * (1 - on / off):.1f}% of throughput")


if __name__ == "__main__":
    main()
