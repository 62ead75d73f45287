"""Fast multi-row writes for the ingest hot path, on SQLite and PostgreSQL.

Django's ``bulk_create`` spends most of its time preparing each field of each row; on the
ingest path that was over half the cost of an event. These helpers take already-adapted
values (see :func:`adapt_datetime`, :func:`adapt_json`, :func:`adapt_uuid`) and send one
multi-row ``INSERT … RETURNING`` per chunk. Everything else should use the ORM.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import orjson
from django.db import connection
from django.db.models import Model

_SQLITE_MAX_VARIABLES = 32_000


_vendor: str | None = None


def is_postgres() -> bool:
    # A process talks to one database; asking the connection proxy costs ~4 µs a call and the
    # hot path asks per value.
    global _vendor
    if _vendor is None:
        _vendor = connection.vendor
    return _vendor == "postgresql"


def adapt_datetime(value: datetime | None) -> Any:
    """What Django itself would store: naive UTC text on SQLite, the aware datetime on PG."""
    if value is None or is_postgres():
        return value
    if value.tzinfo is UTC:  # the common case (ingest parses everything to UTC)
        return value.replace(tzinfo=None).isoformat(sep=" ")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")


def adapt_uuid(value: uuid.UUID | None) -> Any:
    if value is None or is_postgres():
        return value
    return value.hex


def _orjson_text(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def adapt_json(value: Any) -> Any:
    if is_postgres():
        from psycopg.types.json import Jsonb

        return Jsonb(value, dumps=_orjson_text)
    return _orjson_text(value)


def server_cursor() -> Any:
    """A psycopg cursor with server-side (binary) parameter binding on Django's connection, in
    its current transaction. Django's own cursors quote every value into the SQL text on the
    client, which costs more than the insert itself for large array parameters."""
    import psycopg

    connection.ensure_connection()
    return psycopg.Cursor(connection.connection)


@contextmanager
def sqlite_cursor() -> Iterator[Any]:
    """The sqlite3 cursor under Django's connection, in its current transaction, with ``?``
    placeholders and Django's error classes. Django's wrapper rewrites ``%s`` to ``?`` with a
    regular expression on every call, which for a 1,200-placeholder insert costs more than the
    insert's own Python work. (Statements sent here bypass ``connection.execute_wrapper``.)"""
    connection.ensure_connection()
    with connection.wrap_database_errors:
        cursor = connection.connection.cursor()
        try:
            yield cursor
        finally:
            cursor.close()


def execute_many(sql: str, rows: Sequence[Sequence[Any]]) -> None:
    if not rows:
        return
    if is_postgres():
        with server_cursor() as pg_cursor:
            pg_cursor.executemany(sql, rows)
        return
    with sqlite_cursor() as cursor:
        cursor.executemany(sql.replace("%s", "?"), rows)


def _pg_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if type(value).__name__ == "Jsonb":  # adapt_json's wrapper
        return _orjson_text(value.obj)
    return str(value)


def _pg_quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def pg_array(values: Iterable[Any]) -> str:
    """A PostgreSQL array literal (every element quoted, ``None`` as NULL), sent as one text
    parameter and cast by the statement (``%s::uuid[]``): psycopg's own list dumper costs
    several µs of Python per element; this quotes a whole column in a few C-level passes."""
    texts = [v if type(v) is str else _pg_text(v) for v in values]
    if not texts:
        return "{}"
    if None not in texts:
        joined = "\x00".join(texts)  # type: ignore[arg-type]  # no None, checked
        if joined.count("\x00") == len(texts) - 1:  # (PostgreSQL text never holds a NUL)
            if "\\" in joined or '"' in joined:
                joined = joined.replace("\\", "\\\\").replace('"', '\\"')
            return '{"' + joined.replace("\x00", '","') + '"}'
    return "{" + ",".join(["NULL" if t is None else _pg_quoted(t) for t in texts]) + "}"


def insert_rows(
    model: type[Model], columns: Sequence[str], rows: Sequence[Sequence[Any]], *,
    on_conflict_do_nothing: str | None = None, returning: str | tuple[str, ...] | None = "id",
    text_arrays: bool = False,
) -> list[Any]:
    """Insert rows; returns the ``returning`` column (or a tuple of columns) of the rows
    actually inserted. The order of the answer is not promised: return the columns you need to
    match rows up.

    SQLite gets one multi-row ``VALUES`` statement per chunk. PostgreSQL gets
    ``INSERT … SELECT FROM unnest(array, …)``: one parameter per column instead of one per
    value, which spares psycopg from parsing and quoting thousands of placeholders. The arrays
    go binary through psycopg's list dumper, or, with ``text_arrays``, each as one text
    literal (:func:`pg_array`) — cheaper for short values (ids, kinds, stamps, small JSON).
    """
    if not rows:
        return []
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    column_sql = ", ".join(quote(c) for c in columns)
    conflict = (f" ON CONFLICT ({quote(on_conflict_do_nothing)}) DO NOTHING"
                if on_conflict_do_nothing else "")
    returned = (returning,) if isinstance(returning, str) else (returning or ())
    tail = " RETURNING " + ", ".join(quote(c) for c in returned) if returned else ""
    single = isinstance(returning, str)
    out: list[Any] = []
    if is_postgres():
        types = [_array_type(model, c) for c in columns]
        mark = "%s" if text_arrays else "%b"
        unnest = ", ".join(f"{mark}::{t}[]" for t in types)
        sql = (f"INSERT INTO {table} ({column_sql}) SELECT * FROM unnest({unnest})"
               + conflict + tail)
        with server_cursor() as pg_cursor:
            for start in range(0, len(rows), 5000):
                chunk = rows[start:start + 5000]
                if text_arrays:
                    pg_cursor.execute(sql, [pg_array(col) for col in zip(*chunk, strict=True)])
                else:
                    pg_cursor.execute(sql, [list(col) for col in zip(*chunk, strict=True)],
                                      binary=True)
                if returned:
                    out.extend(r[0] if single else tuple(r) for r in pg_cursor.fetchall())
        return out
    with sqlite_cursor() as cursor:
        placeholder = "(" + ", ".join(["?"] * len(columns)) + ")"
        per_chunk = max(1, min(1000, _SQLITE_MAX_VARIABLES // len(columns)))
        for start in range(0, len(rows), per_chunk):
            chunk = rows[start:start + per_chunk]
            sql = (f"INSERT INTO {table} ({column_sql}) VALUES "
                   + ", ".join([placeholder] * len(chunk)) + conflict + tail)
            cursor.execute(sql, [value for row in chunk for value in row])
            if returned:
                out.extend(r[0] if single else tuple(r) for r in cursor.fetchall())
    return out


def _array_type(model: type[Model], column: str) -> str:
    field = next(f for f in model._meta.concrete_fields if f.column == column)
    db_type = field.db_type(connection) or "text"
    # serial types are for column definitions; their values are plain integers
    return {"bigserial": "bigint", "serial": "integer"}.get(db_type, db_type.split("(")[0]
                                                            if "varchar" in db_type else db_type)
