"""Benchmark 3: reading a profile and its latest 50 timeline events.

A fresh database is migrated (``cxm migrate``) and bulk-loaded in raw SQL (read_data.py); then
in-process latency of ``queries.canonical`` + ``queries.timeline`` against a raw-SQL baseline
(read_worker.py), and over HTTP ``GET /api/v1/profiles/{id}`` + ``/timeline?limit=50`` with a
read key, one client, keep-alive, next to ``GET /healthz`` as the HTTP floor.
"""

from __future__ import annotations

import http.client
import json
import time
from dataclasses import dataclass
from typing import Any

from _common import (
    CpuMeter,
    Server,
    create_key,
    cxm,
    fresh_target,
    latency_summary,
    log,
    run_worker,
    wait_for_quiet,
)
from read_data import build, sample


@dataclass
class ReadConfig:
    profiles: int = 100_000
    events: int = 1_000_000
    lookups: int = 2_000
    http_lookups: int = 500
    http_workers: int = 2


def _http(port: int, key: str, picks: list[dict[str, str]]) -> dict[str, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Authorization": f"Bearer {key}"}

    def get(path: str, auth: bool = True) -> tuple[float, bytes]:
        started = time.perf_counter()
        conn.request("GET", path, headers=headers if auth else {})
        reply = conn.getresponse()
        body = reply.read()
        elapsed = (time.perf_counter() - started) * 1000
        if reply.status != 200:
            raise RuntimeError(f"GET {path}: HTTP {reply.status} {body[:300]!r}")
        return elapsed, body

    for pick in picks[:50]:  # warm-up
        get(f"/api/v1/profiles/{pick['id']}")
        get(f"/api/v1/profiles/{pick['id']}/timeline?limit=50")
    health = [get("/healthz", auth=False)[0] for _ in range(200)]
    profile_ms, timeline_ms, both_ms = [], [], []
    by_tier: dict[str, list[float]] = {}
    events_seen = 0
    for pick in picks:
        a, _ = get(f"/api/v1/profiles/{pick['id']}")
        b, body = get(f"/api/v1/profiles/{pick['id']}/timeline?limit=50")
        events_seen += len(json.loads(body)["events"])
        profile_ms.append(a)
        timeline_ms.append(b)
        both_ms.append(a + b)
        by_tier.setdefault(pick["tier"], []).append(a + b)
    conn.close()
    return {
        "lookups": len(picks), "events_returned": events_seen,
        "profile_plus_timeline": latency_summary(both_ms),
        "profile": latency_summary(profile_ms), "timeline": latency_summary(timeline_ms),
        "healthz_floor": latency_summary(health),
        "by_tier": {t: latency_summary(v) for t, v in sorted(by_tier.items())},
    }


def run(kind: str, cfg: ReadConfig, profile_out: str | None = None) -> dict[str, Any]:
    with fresh_target(kind) as target:
        cxm(target, "migrate")
        data = build(target, cfg.profiles, cfg.events)
        picks = sample(data, cfg.lookups)
        sample_path = target.data_dir / "sample.json"
        sample_path.write_text(json.dumps(picks))
        args = [str(sample_path)]
        if profile_out:
            args += ["--profile", profile_out]
        wait_for_quiet()
        meter = CpuMeter().start()
        inproc = run_worker("read_worker.py", target, args, timeout=900)
        inproc["cpu"] = meter.stop()
        o, b = inproc["ours"], inproc["baseline"]
        log(f"  read/{kind} in-process ({inproc['lookups']:,} lookups): p50 {o['p50_ms']:.2f} "
            f"p95 {o['p95_ms']:.2f} p99 {o['p99_ms']:.2f} ms; raw SQL p50 {b['p50_ms']:.2f} "
            f"p95 {b['p95_ms']:.2f} p99 {b['p99_ms']:.2f} ms; foreign CPU "
            f"{inproc['cpu']['foreign_cores']:.2f} cores")
        for tier, s in inproc["by_tier"].items():
            log(f"    {tier:7s} n={s['n']:5d}: p50 {s['p50_ms']:.2f} p95 {s['p95_ms']:.2f} "
                f"p99 {s['p99_ms']:.2f} ms")
        key = create_key(target, "read", "bench-read")
        with Server(target, cfg.http_workers) as server:
            wait_for_quiet()
            meter = CpuMeter().start()
            over_http = _http(server.port, key, picks[:cfg.http_lookups])
            over_http["cpu"] = meter.stop()
        h = over_http["profile_plus_timeline"]
        log(f"  read/{kind} HTTP profile+timeline ({over_http['lookups']} lookups): p50 "
            f"{h['p50_ms']:.1f} p95 {h['p95_ms']:.1f} p99 {h['p99_ms']:.1f} ms (profile p95 "
            f"{over_http['profile']['p95_ms']:.1f}, timeline p95 "
            f"{over_http['timeline']['p95_ms']:.1f}, /healthz p50 "
            f"{over_http['healthz_floor']['p50_ms']:.2f}; foreign CPU "
            f"{over_http['cpu']['foreign_cores']:.2f} cores)")
        for tier, s in over_http["by_tier"].items():
            log(f"    {tier:7s} n={s['n']:5d}: p50 {s['p50_ms']:.1f} p95 {s['p95_ms']:.1f} ms")
        return {
            "config": {"profiles": cfg.profiles, "events": cfg.events, "lookups": cfg.lookups,
                       "http_lookups": cfg.http_lookups, "http_workers": cfg.http_workers},
            "load": {"seconds": data.seconds, "payload_bytes_avg": data.payload_bytes_avg,
                     "tiers": {t: data.tier.count(t) for t in sorted(set(data.tier))},
                     "max_events_per_profile": max(data.counts)},
            "in_process": inproc,
            "ratio_p50": round(o["p50_ms"] / b["p50_ms"], 3) if b["p50_ms"] else None,
            "ratio_p95": round(o["p95_ms"] / b["p95_ms"], 3) if b["p95_ms"] else None,
            "http": over_http,
        }
