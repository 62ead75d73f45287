"""Bulk import of JSONL (Segment messages) and CSV (rows mapped to messages) files.

Reading and mapping are pure generators; :func:`run_import` feeds them to the same
``actions.store_messages`` the HTTP API uses, in chunks, so an import resolves identities and
de-duplicates exactly like live traffic. Re-running a file stores nothing twice: JSONL messages
carry ``messageId`` (or get a content hash), CSV rows get one derived from their content.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
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


def run_import(
    lines: Iterator[Line], *, actor: Actor, source: str, rejects_path: Path,
    chunk_size: int = 5000, progress: Callable[[int], None] | None = None,
) -> ImportSummary:
    import time

    started = time.perf_counter()
    summary = ImportSummary()
    rejects: IO[bytes] | None = None
    chunk: list[Line] = []

    def reject(line: Line, code: str, message: str) -> None:
        nonlocal rejects
        if rejects is None:
            rejects = rejects_path.open("wb")
        raw = line.raw if not isinstance(line.raw, _Bad) else line.text
        rejects.write(orjson.dumps({"line": line.number, "code": code, "message": message,
                                    "input": raw}) + b"\n")
        summary.rejected += 1
        summary.reasons[code] += 1

    def flush() -> None:
        good = [line for line in chunk if not isinstance(line.raw, _Bad)]
        unreadable: list[actions.Rejection] = []
        for line in chunk:
            if isinstance(line.raw, _Bad):
                reject(line, line.raw.code, line.raw.message)
                unreadable.append(actions.Rejection(line.number, None, line.raw.code,
                                                    line.raw.message))
        received = now()
        messages, rejected = actions.validate_messages(
            [line.raw for line in good], received_at=received)
        for rejection in rejected:
            line = good[rejection.index]
            reject(line, rejection.code, rejection.message)
        # Stored and counted in one transaction (one commit per chunk).
        result = actions.store_counted(messages, rejected + unreadable, actor=actor,
                                       source=source, day=received.date())
        summary.accepted += result.accepted
        summary.duplicates += result.duplicates
        if progress is not None:
            progress(len(chunk))
        chunk.clear()

    try:
        for line in lines:
            summary.total += 1
            chunk.append(line)
            if len(chunk) >= chunk_size:
                flush()
        if chunk:
            flush()
    finally:
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
