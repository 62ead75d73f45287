"""The floor every benchmark is compared with: raw ``executemany`` INSERTs of the same event rows
into a plain table with ``ingest_event``'s columns and indexes, committed in the same batch sizes
(no ORM, no validation, no identity resolution)."""

from __future__ import annotations

import time
from typing import Any

from _common import Target, project

RAW_TABLE = "bench_raw_event"


def create_raw_table(target: Target) -> None:
    """A copy of ingest_event's schema (columns, unique messageId, timeline and time indexes),
    taken from the live database so it follows the migrations."""
    conn = target.connect()
    try:
        cur = conn.cursor()
        cur.execute(f"DROP TABLE IF EXISTS {RAW_TABLE}")
        if target.kind == "postgres":
            cur.execute(f"CREATE TABLE {RAW_TABLE} (LIKE ingest_event INCLUDING ALL)")
            conn.commit()
            return
        cur.execute("SELECT type, name, sql FROM sqlite_master WHERE tbl_name = 'ingest_event' "
                    "AND sql IS NOT NULL ORDER BY type DESC")
        statements = cur.fetchall()
        if not statements:
            raise RuntimeError("ingest_event does not exist: run migrations first")
        for kind, name, sql in statements:
            sql = sql.replace('"ingest_event"', f'"{RAW_TABLE}"')
            if kind == "index":
                sql = sql.replace(f'"{name}"', f'"raw_{name}"')
            cur.execute(sql)
    finally:
        conn.close()


def raw_insert(target: Target, rows: list[dict[str, Any]], batch: int) -> dict[str, float]:
    """executemany the rows in ``batch``-sized transactions; returns rows/s. Rows are mapped
    onto the table's current columns before the clock starts."""
    conn = target.connect()
    try:
        shape = project(target, conn, RAW_TABLE, list(rows[0]) if rows else [])
        values = shape.rows(rows)
        cur = conn.cursor()
        if target.kind == "postgres":
            conn.commit()
        sql = (f"INSERT INTO {RAW_TABLE} ({', '.join(shape.columns)}) "
               f"VALUES ({', '.join(shape.placeholders)})")
        started = time.perf_counter()
        for start in range(0, len(values), batch):
            if target.kind == "sqlite":
                cur.execute("BEGIN IMMEDIATE")
            cur.executemany(sql, values[start:start + batch])
            conn.commit() if target.kind == "postgres" else cur.execute("COMMIT")
        seconds = time.perf_counter() - started
    finally:
        conn.close()
    return {"rows": len(rows), "seconds": round(seconds, 3),
            "events_per_s": round(len(rows) / seconds, 1)}
