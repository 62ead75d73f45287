"""``cxm surveys import``: answers collected by another tool, from a CSV file.

Each row becomes a response through :func:`cxm.feedback.actions.submit` — the same path as a
link or the widget — so it lands on the person's profile and timeline. A row's ``client_key``
is derived from the survey, the row number and the row's content, so running the same file
again stores nothing twice.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson

from cxm.core.audit import Actor
from cxm.core.errors import Conflict, CxmError
from cxm.feedback import actions, queries
from cxm.feedback.models import Survey

DEFAULT_QUESTIONS = {
    "nps": "How likely are you to recommend us to a friend or colleague?",
    "csat": "How satisfied were you?",
    "ces": "How easy was it to get what you needed?",
}
_DATE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d", "%d.%m.%Y", "%d/%m/%Y",
                 "%d.%m.%Y %H:%M", "%d/%m/%Y %H:%M")


@dataclass(frozen=True)
class Columns:
    score: str
    comment: str | None = None
    email: str | None = None
    date: str | None = None
    user_id: str | None = None


@dataclass
class ImportSummary:
    survey: str
    survey_created: bool
    total: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    rejects_file: str | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"survey": self.survey, "survey_created": self.survey_created,
                "total": self.total, "accepted": self.accepted, "duplicates": self.duplicates,
                "rejected": self.rejected, "reasons": dict(self.reasons),
                "rejects_file": self.rejects_file, "seconds": round(self.seconds, 2)}


def survey_for_import(name: str, kind: str, comment: bool, actor: Actor
                      ) -> tuple[Survey, bool]:
    """The survey named ``name`` (its kind must match), or a new one for the imported
    answers: closed, since it is answered elsewhere."""
    if kind not in DEFAULT_QUESTIONS:
        raise ValueError("--kind must be nps, csat or ces")
    try:
        survey = queries.survey_by_name(name)
    except CxmError:
        questions: list[dict[str, Any]] = [
            {"id": "score", "type": kind, "text": DEFAULT_QUESTIONS[kind], "required": True}]
        if comment:
            questions.append({"id": "comment", "type": "text",
                              "text": "What is the main reason for your score?"})
        survey = actions.create_survey(name=name, kind=kind, status="closed", actor=actor,
                                       definition={"questions": questions})
        return survey, True
    if survey.kind != kind:
        raise ValueError(f"survey {name!r} is a {survey.kind.upper()} survey, not "
                         f"{kind.upper()}")
    return survey, False


def read_rows(stream: IO[bytes], encoding: str) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) pairs; the delimiter (comma, semicolon, tab) is detected."""
    try:
        text = io.TextIOWrapper(stream, encoding=encoding, newline="")
        sample = text.read(64 * 1024)
    except LookupError:
        raise ValueError(f"unknown encoding {encoding!r}") from None
    except UnicodeDecodeError as error:
        raise ValueError(f"the file is not {encoding}: {error.reason} at byte {error.start} "
                         "(try --encoding latin-1 or cp1252)") from None
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, ",;\t")
    except csv.Error:
        dialect = csv.excel
    text.seek(0)
    reader = csv.DictReader(text, dialect=dialect)
    try:
        for row in reader:
            yield reader.line_num, {k: (v or "") for k, v in row.items() if k is not None}
    except UnicodeDecodeError as error:
        raise ValueError(f"the file is not {encoding}: {error.reason} (try --encoding latin-1 "
                         "or cp1252)") from None


def check_columns(header: list[str], columns: Columns) -> None:
    wanted = [c for c in (columns.score, columns.comment, columns.email, columns.date,
                          columns.user_id) if c]
    missing = [c for c in wanted if c not in header]
    if missing:
        raise ValueError(f"columns not in the file: {', '.join(missing)} "
                         f"(it has: {', '.join(header)})")


def parse_date(raw: str) -> datetime:
    value = raw.strip()
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        for pattern in _DATE_FORMATS:
            try:
                parsed = datetime.strptime(value, pattern)
                break
            except ValueError:
                continue
        else:
            raise ValueError(f"date {value!r} is not a date (use YYYY-MM-DD or ISO 8601)"
                             ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_score(raw: str) -> int:
    value = raw.strip().replace(",", ".")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"score {raw!r} is not a number") from None
    if not number.is_integer():
        raise ValueError(f"score {raw!r} is not a whole number")
    return int(number)


def run_import(
    path: Path, *, survey: Survey, survey_created: bool, columns: Columns, encoding: str,
    actor: Actor, progress: Callable[[int, int], None] | None = None,
) -> ImportSummary:
    summary = ImportSummary(survey=survey.name, survey_created=survey_created)
    rejects_path = path.with_name(path.name + ".rejects.jsonl")
    rejects: list[bytes] = []
    started = datetime.now(UTC)
    with path.open("rb") as stream:
        rows = read_rows(stream, encoding)
        first = next(rows, None)
        if first is None:
            return summary
        check_columns(list(first[1]), columns)
        score_id = next(q["id"] for q in survey.definition["questions"]
                        if q["type"] == survey.kind)
        comment_id = next((q["id"] for q in survey.definition["questions"]
                           if q["type"] == "text"), None)
        for line, row in _chain(first, rows):
            summary.total += 1
            digest = hashlib.sha256(orjson.dumps([line, row], option=orjson.OPT_SORT_KEYS))
            key = f"import:{survey.id}:{digest.hexdigest()[:40]}"
            try:
                answers: dict[str, Any] = {score_id: parse_score(row[columns.score])}
                if columns.comment and comment_id and row.get(columns.comment, "").strip():
                    answers[comment_id] = row[columns.comment]
                person: dict[str, Any] | None = None
                if columns.user_id and row.get(columns.user_id, "").strip():
                    person = {"userId": row[columns.user_id].strip()}
                elif columns.email and row.get(columns.email, "").strip():
                    person = {"context": {"traits": {"email": row[columns.email].strip()}}}
                when = parse_date(row[columns.date]) if columns.date and \
                    row.get(columns.date, "").strip() else None
                actions.submit(actions.Submission(
                    survey=survey, answers=answers, channel="import", person=person,
                    client_key=key, submitted_at=when), actor=actor)
                summary.accepted += 1
            except Conflict:
                summary.duplicates += 1
            except (CxmError, ValueError) as error:
                reason = error.message if isinstance(error, CxmError) else str(error)
                summary.rejected += 1
                summary.reasons[reason.split(":")[0][:80]] += 1
                rejects.append(orjson.dumps({"line": line, "reason": reason, "row": row}))
            if progress is not None:
                progress(summary.total, stream.tell())
    if rejects:
        rejects_path.write_bytes(b"\n".join(rejects) + b"\n")
        summary.rejects_file = str(rejects_path)
    summary.seconds = (datetime.now(UTC) - started).total_seconds()
    return summary


def _chain(first: tuple[int, dict[str, str]], rest: Iterator[tuple[int, dict[str, str]]]
           ) -> Iterator[tuple[int, dict[str, str]]]:
    yield first
    yield from rest
