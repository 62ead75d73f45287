"""In-process profile-read latency (run by profile_read.py with the target's env).

For each sampled profile id: ``queries.canonical(id)`` + ``queries.timeline(profile, limit=50)``
with the events materialised (payload decoded and touched), timed with perf_counter; next to it
(in random order, so neither gets the warmer cache) the raw-SQL baseline on a separate driver
connection: the profile row by id, then ``SELECT * FROM ingest_event WHERE profile_id = ?
ORDER BY timestamp DESC, id DESC LIMIT 50``. Prints one JSON line.

Usage: read_worker.py SAMPLE.json [--profile OUT.pstats]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

from _common import latency_summary


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("sample")
    parser.add_argument("--profile", help="write cProfile stats of the cxm lookups here")
    parser.add_argument("--warmup", type=int, default=200)
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cxm.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    from cxm.identity import queries

    picks: list[dict[str, str]] = json.loads(Path(args.sample).read_text())
    vendor = connection.vendor
    if vendor == "sqlite":
        raw = sqlite3.connect(settings.DATABASES["default"]["NAME"], isolation_level=None)
        raw.execute("PRAGMA journal_mode=WAL")
        raw.execute("PRAGMA cache_size=-65536")
        mark = "?"
    else:
        import psycopg

        # no automatic server-side prepare (Django's psycopg backend doesn't prepare either)
        raw = psycopg.connect(settings.CXM.database_url, autocommit=True,
                              prepare_threshold=None)
        mark = "%s"
    profile_sql = f"SELECT * FROM identity_profile WHERE id = {mark}"
    events_sql = (f"SELECT * FROM ingest_event WHERE profile_id = {mark} "
                  f"ORDER BY timestamp DESC, id DESC LIMIT 50")

    def ours(pid: str) -> int:
        profile = queries.canonical(uuid.UUID(pid))
        page = queries.timeline(profile, limit=50)
        n = 0
        for event in page.events:  # materialise what a caller would render
            n += len(event.payload) + len(event.name)
        return len(page.events)

    def baseline(pid: str) -> int:
        key: Any = uuid.UUID(pid).hex if vendor == "sqlite" else uuid.UUID(pid)
        cur = raw.cursor()
        cur.execute(profile_sql, (key,))
        row = cur.fetchone()
        # follow merged_into like canonical()
        names = [d[0] for d in cur.description]
        merged = row[names.index("merged_into_id")] if row is not None else None
        if merged:
            key = merged
            cur.execute(profile_sql, (key,))
            cur.fetchone()
        cur.execute(events_sql, (key,))
        return len(cur.fetchall())

    rng = random.Random(1)
    for pick in picks[:args.warmup]:
        ours(pick["id"])
        baseline(pick["id"])

    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
    ours_ms: list[float] = []
    base_ms: list[float] = []
    by_tier: dict[str, list[float]] = {}
    base_by_tier: dict[str, list[float]] = {}
    mismatches = 0
    for pick in picks:
        order = [0, 1] if rng.random() < 0.5 else [1, 0]
        counts = [0, 0]
        for which in order:
            if which == 0:
                if profiler:
                    profiler.enable()
                started = time.perf_counter()
                counts[0] = ours(pick["id"])
                elapsed = (time.perf_counter() - started) * 1000
                if profiler:
                    profiler.disable()
                ours_ms.append(elapsed)
                by_tier.setdefault(pick["tier"], []).append(elapsed)
            else:
                started = time.perf_counter()
                counts[1] = baseline(pick["id"])
                base_ms.append((time.perf_counter() - started) * 1000)
                base_by_tier.setdefault(pick["tier"], []).append(base_ms[-1])
        mismatches += counts[0] != counts[1]
    if profiler and args.profile:
        profiler.dump_stats(args.profile)
    print(json.dumps({
        "vendor": vendor, "lookups": len(picks),
        "ours": latency_summary(ours_ms), "baseline": latency_summary(base_ms),
        "by_tier": {t: latency_summary(v) for t, v in sorted(by_tier.items())},
        "baseline_by_tier": {t: latency_summary(v) for t, v in sorted(base_by_tier.items())},
        "count_mismatches": mismatches,
    }))


if __name__ == "__main__":
    main()
