"""Benchmark 2: ``cxm import FILE.jsonl`` of N Segment messages into a fresh database.

Each repetition: a fresh database, ``cxm migrate``, then the timed ``cxm import FILE --json``
subprocess (end to end: interpreter start, Django set-up, reading, validation, identity
resolution, storage). The CLI's own ``--json`` summary gives the in-process ``run_import``
figure. Afterwards the stored events must equal the lines in the file. Baseline: the same rows
raw, ``executemany`` in transactions of 2,000 (the importer's chunk size).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from _common import CpuMeter, cxm, fresh_target, log, median, wait_for_quiet
from baseline import create_raw_table, raw_insert
from workload import ProfileIds, Workload, event_rows

IMPORTER_CHUNK = 2000


@dataclass
class ImportConfig:
    events: int = 200_000
    people: int = 20_000
    repeats: int = 2


def write_file(cfg: ImportConfig, path: Path, seed: int = 11) -> list[dict[str, Any]]:
    workload = Workload(people=cfg.people, seed=seed)
    start = datetime.now(UTC) - timedelta(days=365)
    step = timedelta(seconds=365 * 86400 / cfg.events / 1.0)
    messages = list(workload.messages(cfg.events, start=start, step=step))
    with path.open("wb") as out:
        for message in messages:
            out.write(orjson.dumps(message) + b"\n")
    return messages


def run(kind: str, cfg: ImportConfig, path: Path, messages: list[dict[str, Any]]
        ) -> dict[str, Any]:
    reps = []
    for number in range(1, cfg.repeats + 1):
        with fresh_target(kind) as target:
            cxm(target, "migrate")
            quiet = wait_for_quiet()
            meter = CpuMeter().start()
            started = time.perf_counter()
            done = cxm(target, "import", str(path), "--json", timeout=1800)
            wall = time.perf_counter() - started
            cpu = meter.stop()
            summary = json.loads(done.stdout)
            stored = target.count("ingest_event")
            profiles = target.count("identity_profile")
            merges = target.count("identity_merge")
            complete = stored == len(messages) == summary["accepted"]
            inproc = summary["total"] / summary["seconds"] if summary["seconds"] else 0.0
            rep = {
                "cli_seconds": round(wall, 3),
                "cli_events_per_s": round(len(messages) / wall, 1),
                "run_import_seconds": summary["seconds"],
                "run_import_events_per_s": round(inproc, 1),
                "summary": summary, "stored": stored, "profiles": profiles, "merges": merges,
                "complete": complete, "cpu": cpu, "quiet_wait": quiet,
            }
            create_raw_table(target)
            rows = event_rows(messages, kind, datetime.now(UTC), ProfileIds(),
                              source=f"import:{path.name}"[:40])
            rep["baseline"] = raw_insert(target, rows, IMPORTER_CHUNK)
            reps.append(rep)
            log(f"  import/{kind} #{number}: {len(messages):,} lines, CLI {wall:.1f}s = "
                f"{rep['cli_events_per_s']:,.0f} ev/s, run_import {inproc:,.0f} ev/s; stored "
                f"{stored:,} ({'OK' if complete else 'LOST'}), {profiles:,} profiles, "
                f"{merges:,} merges; raw {rep['baseline']['events_per_s']:,.0f} rows/s; CPU cores: "
                f"cxm {cpu['ours_cores']:.2f}, exited processes (e.g. its PG backend) "
                f"{cpu['unattributed_cores']:.2f}, foreign {cpu['foreign_cores']:.2f}")
    cli = median([r["cli_events_per_s"] for r in reps])
    inproc = median([r["run_import_events_per_s"] for r in reps])
    floor = median([r["baseline"]["events_per_s"] for r in reps])
    return {
        "config": {"events": cfg.events, "people": cfg.people, "repeats": cfg.repeats,
                   "file_bytes": path.stat().st_size},
        "reps": reps,
        "median_cli_events_per_s": cli,
        "median_run_import_events_per_s": inproc,
        "baseline_median_rows_per_s": floor,
        "ratio_cli": round(cli / floor, 4),
        "ratio_run_import": round(inproc / floor, 4),
        "complete": all(r["complete"] for r in reps),
    }
