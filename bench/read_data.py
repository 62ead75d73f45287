"""Bulk-load a migrated cxm database with profiles, identities and events, fast, in raw SQL.

Skewed like real data: a few "heavy" profiles with thousands of events, a medium tier with
hundreds, and a long tail with a handful each; about 1% of profiles are merged into another
(their lookups follow ``merged_into``). Events are spread over a year and stored in time order
(as ingest appends them), so one profile's events are scattered through the table.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from _common import Target, log, project
from workload import Workload

PROFILE_COLS = ("id", "created_at", "updated_at", "first_seen", "last_seen", "event_count",
                "traits", "preferences", "consent", "display_name", "email", "phone",
                "merged_into_id")
IDENTITY_COLS = ("kind", "value", "source", "created_at", "profile_id")
EVENT_COLS = ("message_id", "type", "name", "channel", "profile_id", "identity_id", "user_id",
              "anonymous_id", "timestamp", "received_at", "sent_at", "original_timestamp",
              "source", "payload")


@dataclass
class Dataset:
    profiles: list[uuid.UUID]
    tier: list[str]  # per profile: heavy | medium | light | merged
    counts: list[int]
    events: int
    seconds: dict[str, float] = field(default_factory=dict)
    payload_bytes_avg: float = 0.0


def _uuid7(ms: int, rng: random.Random) -> uuid.UUID:
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= rng.getrandbits(12) << 64
    value |= 0b10 << 62
    value |= rng.getrandbits(62)
    return uuid.UUID(int=value)


def _dt(kind: str, value: datetime | None) -> Any:
    if value is None or kind == "postgres":
        return value
    return value.replace(tzinfo=None).isoformat(" ", "microseconds")


def _id(kind: str, value: uuid.UUID | None) -> Any:
    if value is None or kind == "postgres":
        return value
    return value.hex


def plan(profiles: int, events: int, seed: int = 5) -> tuple[list[str], list[int]]:
    """Tier and event count per profile, summing to ``events``."""
    rng = random.Random(seed)
    heavy = max(1, profiles // 2000)
    medium = max(1, profiles // 50)
    merged = profiles // 100
    tier = ["heavy"] * heavy + ["medium"] * medium + ["merged"] * merged
    tier += ["light"] * (profiles - len(tier))
    rng.shuffle(tier)
    counts = [0] * profiles
    budget = events
    for i, t in enumerate(tier):
        if t == "heavy":
            counts[i] = rng.randint(2000, 6000)
        elif t == "medium":
            counts[i] = rng.randint(50, 350)
        budget -= counts[i]
    if budget < 0:
        raise ValueError("too few events for the heavy and medium tiers")
    light = [i for i, t in enumerate(tier) if t == "light"]
    for _ in range(budget):
        counts[light[int(rng.random() * len(light))]] += 1
    return tier, counts


def _payload_templates(n: int) -> list[dict[str, Any]]:
    workload = Workload(people=2000, seed=3)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    return list(workload.messages(n, start=start, step=timedelta(seconds=1)))


def _executemany_chunks(target: Target, conn: Any, sql: str, rows: list[tuple[Any, ...]]
                        ) -> None:
    cur = conn.cursor()
    for start in range(0, len(rows), 20_000):
        cur.executemany(sql, rows[start:start + 20_000])


def _insert(target: Target, conn: Any, table: str, cols: tuple[str, ...],
            rows: list[tuple[Any, ...]]) -> None:
    """Insert tuples given in ``cols`` order, mapped onto the table's current columns."""
    shape = project(target, conn, table, cols)
    if shape.columns != cols:
        position = {c: i for i, c in enumerate(cols)}
        picks = [(position[c], None) if c in position else (-1, shape.fill[c])
                 for c in shape.columns]
        rows = [tuple(r[i] if i >= 0 else v for i, v in picks) for r in rows]
    names = ", ".join(shape.columns)
    if target.kind == "postgres":
        with conn.cursor() as cur, cur.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    marks = ", ".join("?" for _ in shape.columns)
    _executemany_chunks(target, conn, f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)


def _secondary_indexes(target: Target, conn: Any, table: str) -> list[tuple[str, str]]:
    """(name, CREATE statement) of the plain indexes of a table (not PK/unique constraints)."""
    cur = conn.cursor()
    if target.kind == "postgres":
        cur.execute("SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename = %s "
                    "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = "
                    "i.indexname)", (table,))
    else:
        cur.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
                    "AND sql IS NOT NULL", (table,))
    return [(str(name), str(sql)) for name, sql in cur.fetchall()]


def _has_table(target: Target, conn: Any, table: str) -> bool:
    cur = conn.cursor()
    if target.kind == "postgres":
        cur.execute("SELECT to_regclass(%s) IS NOT NULL", [table])
    else:
        cur.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?",
                    [table])
    return bool(cur.fetchone()[0])


def build(target: Target, profiles: int, events: int, seed: int = 5) -> Dataset:
    """Fill the (migrated, empty) database; returns what was loaded."""
    rng = random.Random(seed)
    t0 = time.perf_counter()
    tier, counts = plan(profiles, events, seed)
    kind = target.kind
    now = datetime.now(UTC).replace(microsecond=0)
    year_ago = now - timedelta(days=365)
    span = (now - year_ago).total_seconds()

    # profiles: created up to a year ago; uuid7 ids from their creation time
    created = sorted(year_ago + timedelta(seconds=rng.random() * span * 0.9)
                     for _ in range(profiles))
    ids = [_uuid7(int(c.timestamp() * 1000), rng) for c in created]
    survivors = [i for i, t in enumerate(tier) if t != "merged"]
    merged_into: list[int | None] = [
        survivors[int(rng.random() * len(survivors))] if t == "merged" else None for t in tier
    ]
    # events: a shuffled bag of profile indexes, given sorted timestamps = time-ordered table
    owners = [i for i, n in enumerate(counts) for _ in range(n)]
    rng.shuffle(owners)
    seconds = sorted(rng.random() * span for _ in range(events))
    templates = _payload_templates(400)
    first_seen: list[datetime | None] = [None] * profiles
    last_seen: list[datetime | None] = [None] * profiles
    event_rows: list[tuple[Any, ...]] = []
    payload_bytes = 0
    src = "key:benchload"
    for n, (owner, offset) in enumerate(zip(owners, seconds, strict=True)):
        when = year_ago + timedelta(seconds=offset)
        if first_seen[owner] is None:
            first_seen[owner] = when
        last_seen[owner] = when
        template = templates[n % len(templates)]
        message = dict(template)
        message_id = f"{n:08x}-{rng.getrandbits(64):016x}"
        message["messageId"] = message_id
        message["timestamp"] = when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        message["anonymousId"] = f"anon-{owner}"
        if "userId" in template:
            message["userId"] = f"user-{owner}"
        payload = orjson.dumps(message).decode()
        payload_bytes += len(payload)
        name = message.get("event") or message.get("name") or ""
        event_rows.append((
            message_id, message["type"], name, "app" if "app" in message["context"] else "web",
            _id(kind, ids[owner]), None, message.get("userId", ""), message["anonymousId"],
            _dt(kind, when), _dt(kind, when + timedelta(seconds=2)), None, _dt(kind, when), src,
            payload,
        ))
    t_gen = time.perf_counter()

    profile_rows = []
    identity_rows = []
    for i in range(profiles):
        traits: dict[str, Any] = {}
        stamp = created[i].strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        email = f"person{i}@example.com" if rng.random() < 0.5 else ""
        if email:
            traits = {
                "email": {"value": email, "source": src, "at": stamp},
                "firstName": {"value": "Ada", "source": src, "at": stamp},
                "lastName": {"value": f"Person{i}", "source": src, "at": stamp},
                "plan": {"value": rng.choice(("free", "plus", "pro")), "source": src,
                         "at": stamp},
            }
        pid = ids[i]
        target_idx = merged_into[i]
        profile_rows.append((
            _id(kind, pid), _dt(kind, created[i]), _dt(kind, last_seen[i] or created[i]),
            _dt(kind, first_seen[i]), _dt(kind, last_seen[i]), counts[i],
            orjson.dumps(traits).decode(),
            orjson.dumps({"newsletter": {"value": True, "source": src, "at": stamp}}
                         if email else {}).decode(),
            orjson.dumps({"email:marketing": {"granted": True, "source": src, "at": stamp}}
                         if email else {}).decode(),
            f"Ada Person{i}" if email else "", email, "",
            _id(kind, ids[target_idx]) if target_idx is not None else None,
        ))
        # identities live on the surviving profile for merged ones
        owner_id = _id(kind, ids[target_idx] if target_idx is not None else pid)
        identity_rows.append(("anonymous_id", f"anon-{i}", src, _dt(kind, created[i]), owner_id))
        if rng.random() < 0.6:
            identity_rows.append(("user_id", f"user-{i}", src, _dt(kind, created[i]), owner_id))
        if email:
            identity_rows.append(("email", email, src, _dt(kind, created[i]), owner_id))
    # merged profiles' events belong to their survivors (as a merge moves them)
    if any(t == "merged" for t in tier):
        pos = EVENT_COLS.index("profile_id")
        merged_map = {_id(kind, ids[i]): _id(kind, ids[m]) for i, m in enumerate(merged_into)
                      if m is not None}
        event_rows = [r if r[pos] not in merged_map else
                      (*r[:pos], merged_map[r[pos]], *r[pos + 1:]) for r in event_rows]
    t_rows = time.perf_counter()

    conn = target.connect()
    try:
        indexes = _secondary_indexes(target, conn, "ingest_event")
        cur = conn.cursor()
        if kind == "sqlite":
            cur.execute("PRAGMA synchronous=OFF")
            cur.execute("BEGIN")
        for name, _ in indexes:
            cur.execute(f'DROP INDEX "{name}"')
        # profiles first without merged_into (FK to rows not yet inserted), then the links
        pos = PROFILE_COLS.index("merged_into_id")
        _insert(target, conn, "identity_profile", PROFILE_COLS,
                [(*r[:pos], None) for r in profile_rows])
        links = [(r[pos], r[0]) for r in profile_rows if r[pos] is not None]
        mark = "%s" if kind == "postgres" else "?"
        cur.executemany(f"UPDATE identity_profile SET merged_into_id = {mark} WHERE id = {mark}",
                        links)
        _insert(target, conn, "identity_identity", IDENTITY_COLS, identity_rows)
        t_small = time.perf_counter()
        _insert(target, conn, "ingest_event", EVENT_COLS, event_rows)
        t_events = time.perf_counter()
        for _, sql in indexes:
            cur.execute(sql)
        # What ingest keeps per profile and channel (the migration's own fill statement,
        # if this version of the schema has the table).
        if _has_table(target, conn, "ingest_profilechannel"):
            cur.execute("INSERT INTO ingest_profilechannel (profile_id, channel, count) "
                        "SELECT profile_id, channel, count(*) FROM ingest_event "
                        "WHERE profile_id IS NOT NULL GROUP BY profile_id, channel")
        if kind == "sqlite":
            cur.execute("COMMIT")
        else:
            conn.commit()
        t_index = time.perf_counter()
        if kind == "postgres":
            conn.autocommit = True
            for table in ("identity_profile", "identity_identity", "ingest_event",
                          "ingest_profilechannel"):
                if not _has_table(target, conn, table):
                    continue
                conn.execute(f"VACUUM ANALYZE {table}")
        else:
            cur.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    t_end = time.perf_counter()
    data = Dataset(ids, tier, counts, events)
    data.payload_bytes_avg = round(payload_bytes / max(1, events), 1)
    data.seconds = {"generate": round(t_gen - t0, 2), "rows": round(t_rows - t_gen, 2),
                    "profiles_identities": round(t_small - t_rows, 2),
                    "events": round(t_events - t_small, 2),
                    "indexes": round(t_index - t_events, 2),
                    "vacuum_analyze_or_checkpoint": round(t_end - t_index, 2),
                    "total": round(t_end - t0, 2)}
    log(f"  read/{kind}: loaded {profiles:,} profiles, {events:,} events "
        f"(payload avg {data.payload_bytes_avg:.0f} B) in {data.seconds['total']:.1f}s "
        f"{data.seconds}")
    if os.environ.get("BENCH_KEEP_DB"):
        log(f"  kept data in {target.data_dir}")
    return data


def sample(data: Dataset, n: int, seed: int = 9) -> list[dict[str, str]]:
    """Profile lookups: 80% uniform over all profiles, 10% heavy, 10% medium."""
    rng = random.Random(seed)
    by_tier: dict[str, list[int]] = {}
    for i, t in enumerate(data.tier):
        by_tier.setdefault(t, []).append(i)
    picks = []
    for _ in range(n):
        x = rng.random()
        if x < 0.10:
            i = rng.choice(by_tier["heavy"])
        elif x < 0.20:
            i = rng.choice(by_tier["medium"])
        else:
            i = rng.randrange(len(data.profiles))
        picks.append({"id": str(data.profiles[i]), "tier": data.tier[i]})
    return picks
