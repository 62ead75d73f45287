"""Benchmark 1: Segment ``/v1/batch`` ingest over HTTP, identity resolution included.

For each worker count: a fresh database, ``cxm serve``, an ingest key from ``cxm keys create``,
a warm-up, then several timed rounds of pre-serialised 100-message batches sent by concurrent
keep-alive clients. Afterwards the events stored in the database must equal the events sent.
The baseline inserts the same rows raw, 100 per transaction, into a copy of ``ingest_event``.
"""

from __future__ import annotations

import base64
import http.client
import os
import queue
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from _common import (
    CpuMeter,
    PgWaitSampler,
    Server,
    create_key,
    cxm,
    fresh_target,
    latency_summary,
    log,
    median,
    wait_for_quiet,
)
from baseline import create_raw_table, raw_insert
from workload import ProfileIds, Workload, event_rows


@dataclass
class HttpConfig:
    workers: tuple[int, ...] = (2, 3, 4)
    threads: int = 4
    clients: int = 6
    batch: int = 100
    rounds: int = 3
    events_per_round: int = 30_000
    warmup_events: int = 2_000
    people: int = 20_000
    skew: float = 1.1


@dataclass
class Prepared:
    warmup: list[bytes]
    rounds: list[list[bytes]]
    round_messages: list[list[dict[str, Any]]]
    sent: int


def prepare(cfg: HttpConfig, seed: int = 7) -> Prepared:
    workload = Workload(people=cfg.people, seed=seed, skew=cfg.skew)
    start = datetime.now(UTC) - timedelta(hours=6)
    step = timedelta(milliseconds=50)

    def bodies(messages: list[dict[str, Any]]) -> list[bytes]:
        out = []
        for i in range(0, len(messages), cfg.batch):
            sent_at = messages[min(i + cfg.batch, len(messages)) - 1]["timestamp"]
            out.append(orjson.dumps({"batch": messages[i:i + cfg.batch], "sentAt": sent_at}))
        return out

    warm = list(workload.messages(cfg.warmup_events, start=start, step=step))
    rounds, round_messages = [], []
    for _ in range(cfg.rounds):
        msgs = list(workload.messages(cfg.events_per_round, start=start, step=step))
        round_messages.append(msgs)
        rounds.append(bodies(msgs))
    sent = len(warm) + sum(len(m) for m in round_messages)
    return Prepared(bodies(warm), rounds, round_messages, sent)


class _Client(threading.Thread):
    def __init__(self, port: int, key: str, work: queue.Queue[bytes | None],
                 results: list[dict[str, Any]]):
        super().__init__(daemon=True)
        self.port = port
        self.auth = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
        self.work = work
        self.results = results
        self.accepted = 0
        self.duplicates = 0
        self.rejected = 0
        self.retries = 0
        self.failures: list[str] = []
        self.latencies: list[float] = []

    def _conn(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)

    def run(self) -> None:
        conn = self._conn()
        headers = {"Authorization": self.auth, "Content-Type": "application/json"}
        while True:
            body = self.work.get()
            if body is None:
                break
            for attempt in range(4):
                try:
                    started = time.perf_counter()
                    conn.request("POST", "/v1/batch", body=body, headers=headers)
                    reply = conn.getresponse()
                    data = reply.read()
                    self.latencies.append((time.perf_counter() - started) * 1000)
                    if reply.status == 200:
                        answer = orjson.loads(data)
                        self.accepted += answer["accepted"]
                        self.duplicates += answer["duplicates"]
                        self.rejected += len(answer["rejected"])
                        if answer["rejected"] and len(self.failures) < 5:
                            self.failures.append(f"rejected: {answer['rejected'][:2]}")
                        break
                    self.retries += 1
                    if len(self.failures) < 5:
                        self.failures.append(f"HTTP {reply.status}: {data[:300]!r}")
                except (OSError, http.client.HTTPException) as error:
                    self.retries += 1
                    if len(self.failures) < 5:
                        self.failures.append(f"{type(error).__name__}: {error}")
                    conn.close()
                    conn = self._conn()
                time.sleep(0.2 * (attempt + 1))
            else:
                self.failures.append("gave up on a batch after 4 attempts")
        conn.close()
        self.results.append({"accepted": self.accepted, "duplicates": self.duplicates,
                             "rejected": self.rejected, "retries": self.retries,
                             "failures": self.failures, "latencies": self.latencies})


def send(port: int, key: str, bodies: list[bytes], clients: int) -> dict[str, Any]:
    work: queue.Queue[bytes | None] = queue.Queue()
    for body in bodies:
        work.put(body)
    for _ in range(clients):
        work.put(None)
    results: list[dict[str, Any]] = []
    threads = [_Client(port, key, work, results) for _ in range(clients)]
    meter = CpuMeter().start()
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    cpu = meter.stop()
    latencies = [x for r in results for x in r["latencies"]]
    accepted = sum(r["accepted"] for r in results)
    return {
        "seconds": round(seconds, 3),
        "accepted": accepted,
        "duplicates": sum(r["duplicates"] for r in results),
        "rejected": sum(r["rejected"] for r in results),
        "retries": sum(r["retries"] for r in results),
        "failures": [f for r in results for f in r["failures"]][:10],
        "events_per_s": round(accepted / seconds, 1),
        "request_latency": latency_summary(latencies),
        "cpu": cpu,
    }


def table_stats(target: Any) -> dict[str, Any]:
    """PostgreSQL: updates vs HOT updates and sizes of the hot tables (why updates cost)."""
    if target.kind != "postgres":
        return {}
    conn = target.connect()
    try:
        cur = conn.cursor()
        cur.execute(
            "SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_dead_tup, "
            "pg_total_relation_size(relid) FROM pg_stat_user_tables WHERE relname IN "
            "('identity_profile', 'identity_identity', 'ingest_event', 'core_auditlog')")
        return {name: {"inserts": ins, "updates": upd, "hot_updates": hot, "dead": dead,
                       "total_bytes": size}
                for name, ins, upd, hot, dead, size in cur.fetchall()}
    finally:
        conn.close()


def run(kind: str, cfg: HttpConfig, prepared: Prepared) -> dict[str, Any]:
    out: dict[str, Any] = {"config": {k: getattr(cfg, k) for k in cfg.__dataclass_fields__},
                           "by_workers": []}
    for workers in cfg.workers:
        with fresh_target(kind) as target:
            cxm(target, "migrate")
            key = create_key(target, "ingest")
            rounds, base = [], []
            create_raw_table(target)
            ids = ProfileIds()
            with Server(target, workers, cfg.threads) as server:
                log(f"  http/{kind}: {workers} workers × {cfg.threads} threads on "
                    f":{server.port}, {cfg.clients} clients")
                warm = send(server.port, key, prepared.warmup, cfg.clients)
                for number, bodies in enumerate(prepared.rounds, start=1):
                    quiet = wait_for_quiet()
                    if kind == "postgres":
                        with PgWaitSampler(target.database_url) as sampler:
                            result = send(server.port, key, bodies, cfg.clients)
                        result["pg_backends"] = sampler.summary()
                    else:
                        result = send(server.port, key, bodies, cfg.clients)
                    result["quiet_wait"] = quiet
                    rounds.append(result)
                    # Paired baseline right after each round (server idle), so both see the
                    # same machine conditions: the same rows, raw, 100 per transaction.
                    rows = event_rows(prepared.round_messages[number - 1], kind,
                                      datetime.now(UTC), ids)
                    base.append(raw_insert(target, rows, cfg.batch))
                    log(f"    round {number}: {result['accepted']:,} events in "
                        f"{result['seconds']:.2f}s = {result['events_per_s']:,.0f} ev/s "
                        f"(req p50 {result['request_latency']['p50_ms']:.0f} ms, "
                        f"p95 {result['request_latency']['p95_ms']:.0f} ms, "
                        f"retries {result['retries']}, foreign CPU "
                        f"{result['cpu']['foreign_cores']:.2f} cores); raw "
                        f"{base[-1]['events_per_s']:,.0f} rows/s")
                    cpu = result["cpu"]
                    per = 100_000 / max(result["events_per_s"], 1)  # core-ms per 100 events
                    log(f"      CPU: cxm {cpu['ours_cores']:.2f} cores "
                        f"({cpu['ours_cores'] * per:.1f} ms/100 ev), postgres "
                        f"{cpu['postgres_cores']:.2f} ({cpu['postgres_cores'] * per:.1f} ms/100 "
                        f"ev), machine busy {cpu['machine_busy_cores']:.2f} of {os.cpu_count()}"
                        + (f"; PG backends per sample: {result['pg_backends']}"
                           if "pg_backends" in result else ""))
            stored = target.count("ingest_event")
            profiles = target.count("identity_profile")
            merges = target.count("identity_merge")
            accepted = warm["accepted"] + sum(r["accepted"] for r in rounds)
            complete = stored == prepared.sent == accepted
            log(f"    stored {stored:,} of {prepared.sent:,} sent ({'OK' if complete else 'LOST'})"
                f"; {profiles:,} profiles, {merges:,} merges")
            db_stats = table_stats(target)
            ours = median([r["events_per_s"] for r in rounds])
            floor = median([b["events_per_s"] for b in base])
            log(f"    median {ours:,.0f} ev/s vs raw executemany {floor:,.0f} rows/s "
                f"(ours/baseline {ours / floor:.3f})")
            out["by_workers"].append({
                "workers": workers, "threads": cfg.threads, "clients": cfg.clients,
                "warmup": warm, "rounds": rounds,
                "median_events_per_s": ours,
                "baseline_rounds": base, "baseline_median_rows_per_s": floor,
                "ratio": round(ours / floor, 4),
                "paired_ratios": [round(r["events_per_s"] / b["events_per_s"], 4)
                                  for r, b in zip(rounds, base, strict=True)],
                "sent": prepared.sent, "accepted": accepted, "stored": stored,
                "complete": complete, "profiles": profiles, "merges": merges,
                "db_stats": db_stats,
            })
    best = max(out["by_workers"], key=lambda r: r["median_events_per_s"])
    out["best"] = {"workers": best["workers"], "events_per_s": best["median_events_per_s"],
                   "baseline_rows_per_s": best["baseline_median_rows_per_s"],
                   "ratio": best["ratio"]}
    out["complete"] = all(r["complete"] for r in out["by_workers"])
    return out
