"""Bulk import of JSONL (Segment messages) and CSV (rows mapped to messages) files.

Reading and mapping are pure generators; :func:`run_import` feeds them to the same
``actions.store_messages`` the HTTP API uses, in chunks, so an import resolves identities and
de-duplicates exactly like live traffic. Re-running a file stores nothing twice: JSONL messages
carry ``messageId`` (or get a content hash), CSV rows get one derived from their content.
"""

from __future__ import annotations

import contextlib
import csv
import gc
import hashlib
import io
import itertools
import multiprocessing
import os
import pickle
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from multiprocessing.connection import Connection
from pathlib import Path
from typing import IO, Any

import orjson

from cxm.core.audit import Actor
from cxm.core.clock import now
from cxm.ingest import actions, spec


@dataclass(frozen=True)
class CsvMapping:
    """How CSV columns become a Segment message. ``columns`` maps a column to a dotted message
    path, e.g. ``{"email": "traits.email", "customer": "userId", "when": "timestamp"}``."""

    columns: dict[str, str]
    message_type: str = "identify"
    event: str | None = None


@dataclass
class ImportSummary:
    total: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    rejects_file: str | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"total": self.total, "accepted": self.accepted, "duplicates": self.duplicates,
                "rejected": self.rejected, "reasons": dict(self.reasons),
                "rejects_file": self.rejects_file, "seconds": round(self.seconds, 3),
                "events_per_second": round(self.total / self.seconds) if self.seconds else None}


@dataclass(frozen=True, slots=True)
class Line:
    number: int
    raw: Any  # a parsed message, or a _Bad marker
    text: str


@dataclass(frozen=True, slots=True)
class _Bad:
    code: str
    message: str


def _content_id(prefix: str, content: Any, seen: Counter[str]) -> str:
    """An id for a record without ``messageId``: its content plus how many times the same
    content came before in the file, so a re-run (or a longer file) stores each record once."""
    digest = hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()
    seen[digest] += 1
    return f"{prefix}-{digest[:40]}-{seen[digest]}"


def read_jsonl(stream: IO[bytes]) -> Iterator[Line]:
    seen: Counter[str] = Counter()
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            message = orjson.loads(line)
        except orjson.JSONDecodeError as error:
            yield Line(number, _Bad("invalid_json", f"not valid JSON: {error}"),
                       line.decode("utf-8", "replace")[:2000])
            continue
        if isinstance(message, dict) and not message.get("messageId"):
            message["messageId"] = _content_id("jsonl", message, seen)
        yield Line(number, message, "")


def _set_path(target: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = target
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def map_row(row: dict[str, str], mapping: CsvMapping) -> dict[str, Any]:
    message: dict[str, Any] = {"type": mapping.message_type}
    if mapping.event:
        message["event"] = mapping.event
    for column, target in mapping.columns.items():
        value = row.get(column)
        if value is None or value == "":
            continue
        _set_path(message, target, value.strip())
    return message


def read_csv(stream: IO[bytes], mapping: CsvMapping, encoding: str = "utf-8-sig"
             ) -> Iterator[Line]:
    text = io.TextIOWrapper(stream, encoding=encoding, newline="")
    reader = csv.DictReader(text)
    missing = [c for c in mapping.columns if c not in (reader.fieldnames or [])]
    if missing:
        raise ValueError(f"columns not in the file: {', '.join(missing)} "
                         f"(it has: {', '.join(reader.fieldnames or [])})")
    seen: Counter[str] = Counter()
    try:
        for row in reader:
            number = reader.line_num
            message = map_row(row, mapping)
            if "messageId" not in message:
                message["messageId"] = _content_id("csv", row, seen)
            yield Line(number, message, "")
    finally:
        text.detach()  # the caller owns the byte stream; closing the wrapper would close it


@dataclass(slots=True)
class _Ready:
    """One chunk after the work that needs no database: what the storing side needs, and
    nothing else (it crosses a process boundary when the importer runs two processes)."""

    lines: int
    rejects: list[tuple[int, str, str, Any]]  # (line number, code, message, input)
    rejections: list[actions.Rejection]
    prepared: actions.Prepared
    day: date


def _prepare_chunk(chunk: list[Line], source: str) -> _Ready:
    """Validate a chunk and build its rows (encryption, serialisation, blind indexes)."""
    good = [line for line in chunk if not isinstance(line.raw, _Bad)]
    rejects: list[tuple[int, str, str, Any]] = []
    unreadable: list[actions.Rejection] = []
    received = now()
    messages, rejected = actions.validate_messages(
        [line.raw for line in good], received_at=received)
    bad_at = {r.index: r for r in rejected}
    # Rejects in line order: unreadable lines and invalid messages interleaved as in the file.
    position = 0
    for line in chunk:
        if isinstance(line.raw, _Bad):
            rejects.append((line.number, line.raw.code, line.raw.message, line.text))
            unreadable.append(actions.Rejection(line.number, None, line.raw.code,
                                                line.raw.message))
            continue
        rejection = bad_at.get(position)
        if rejection is not None:
            rejects.append((line.number, rejection.code, rejection.message, line.raw))
        position += 1
    prepared = actions.prepare_messages(messages, source)
    return _Ready(len(chunk), rejects, rejected + unreadable, prepared, received.date())


def _chunks(lines: Iterator[Line], size: int) -> Iterator[list[Line]]:
    chunk: list[Line] = []
    for line in lines:
        chunk.append(line)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _can_fork() -> bool:
    # sched_getaffinity is Linux-only; elsewhere count the machine's CPUs.
    cpus = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
            else os.cpu_count() or 1)
    return "fork" in multiprocessing.get_all_start_methods() and cpus > 1


class _Preparer:
    """A forked process that reads the rest of the file and prepares chunk N+1 (parsing,
    validation, encryption, serialisation — about a third of an event's CPU) while this
    process stores chunk N, so two cores work on an import. It touches no database (it never
    uses the connection it inherits) and exits with ``os._exit``; a pipe carries the pickled
    chunks, at most about one ahead (``send`` blocks until the storing side reads), so memory
    stays bounded. Order is kept: one producer, one consumer."""

    def __init__(self, chunks: Iterator[list[Line]], source: str):
        context = multiprocessing.get_context("fork")
        self._recv, send = context.Pipe(duplex=False)
        self._process = context.Process(target=self._produce, args=(chunks, source, send),
                                        daemon=True, name="cxm-import-prepare")
        self._process.start()
        send.close()

    @staticmethod
    def _produce(chunks: Iterator[list[Line]], source: str, send: Connection) -> None:
        # Everything inherited is frozen out of the collector's reach and the collector is
        # left off: a chunk builds ~100,000 short-lived objects without cycles, which are
        # freed by reference counting, and the collections it triggered cost a quarter of
        # this process's time. A collection after each chunk picks up any stray cycle.
        gc.freeze()
        gc.disable()
        try:
            for chunk in chunks:
                ready = _prepare_chunk(chunk, source)
                gc.collect(0)
                send.send_bytes(pickle.dumps(ready, protocol=pickle.HIGHEST_PROTOCOL))
            send.send_bytes(b"")
        except BaseException as error:  # reported to the storing side, which raises it
            import traceback

            try:  # the error itself (a ValueError reading the file is the user's to see) ...
                report = pickle.dumps(error)
                pickle.loads(report)  # noqa: S301 - checking our own bytes round-trip
            except Exception:  # ... or, when it does not pickle, its traceback
                report = pickle.dumps(RuntimeError("preparing the import failed:\n"
                                                   + traceback.format_exc()))
            with contextlib.suppress(OSError):
                send.send_bytes(b"!" + report)
        finally:
            send.close()

    def __iter__(self) -> Iterator[_Ready]:
        while True:
            try:
                data = self._recv.recv_bytes()
            except EOFError:
                raise RuntimeError("the import's preparing process ended unexpectedly "
                                   f"(exit code {self._process.exitcode})") from None
            if not data:
                return
            if data[:1] == b"!":
                raise pickle.loads(data[1:])  # noqa: S301 - our own child, over our own pipe
            # Unpickling builds ~20 objects an event; with the cyclic collector running it
            # costs five times as much (it scans the young objects again and again), and
            # none of them form cycles.
            gc.disable()
            try:
                ready = pickle.loads(data)  # noqa: S301 - our own child, over our own pipe
            finally:
                gc.enable()
            yield ready

    def close(self) -> None:
        self._recv.close()
        if self._process.is_alive():
            self._process.terminate()
        self._process.join(timeout=10)


def run_import(
    lines: Iterator[Line], *, actor: Actor, source: str, rejects_path: Path,
    chunk_size: int = 5000, progress: Callable[[int], None] | None = None,
    parallel: bool | None = None,
) -> ImportSummary:
    """Store ``lines`` in chunks of ``chunk_size``, one transaction each. With ``parallel``
    (default: when the file has more than one chunk and there are two CPUs to use, on a
    platform that can fork) a second process prepares the next chunk while this one stores."""
    import time

    started = time.perf_counter()
    summary = ImportSummary()
    rejects: IO[bytes] | None = None

    def store(ready: _Ready) -> None:
        nonlocal rejects
        for number, code, message, raw in ready.rejects:
            if rejects is None:
                rejects = rejects_path.open("wb")
            rejects.write(orjson.dumps({"line": number, "code": code, "message": message,
                                        "input": raw}) + b"\n")
            summary.rejected += 1
            summary.reasons[code] += 1
        # Stored and counted in one transaction (one commit per chunk).
        result = actions.store_prepared_counted(ready.prepared, ready.rejections, actor=actor,
                                                source=source, day=ready.day)
        summary.total += ready.lines
        summary.accepted += result.accepted
        summary.duplicates += result.duplicates
        if progress is not None:
            progress(ready.lines)

    lines = iter(lines)
    preparer: _Preparer | None = None
    try:
        # The first chunk is read here; only a file longer than that is worth a process, which
        # then reads the rest (a forked copy of ``lines``: this process reads no further).
        first = list(itertools.islice(lines, chunk_size))
        after = next(lines, None)
        rest = _chunks(itertools.chain([after], lines) if after is not None else lines,
                       chunk_size)
        if after is not None and (parallel if parallel is not None else _can_fork()):
            preparer = _Preparer(rest, source)
            store(_prepare_chunk(first, source))
            for ready in preparer:
                store(ready)
        else:
            for chunk in itertools.chain([first] if first else [], rest):
                store(_prepare_chunk(chunk, source))
    finally:
        if preparer is not None:
            preparer.close()
        if rejects is not None:
            rejects.close()
            summary.rejects_file = str(rejects_path)
    summary.seconds = time.perf_counter() - started
    return summary


def file_kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in {".jsonl", ".ndjson", ".json"}:
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    raise ValueError(f"{path.name}: use a .jsonl/.ndjson file of Segment messages or a .csv file")


__all__ = ["CsvMapping", "ImportSummary", "file_kind", "map_row", "read_csv", "read_jsonl",
           "run_import", "spec"]
