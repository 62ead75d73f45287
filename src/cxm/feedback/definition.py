"""What a survey asks, and whether a set of answers fits it (pure: no I/O).

A survey's ``definition`` is JSON an analyst writes in the UI or sends to the API::

    {"language": "en",
     "questions": [
        {"id": "score", "type": "nps", "text": "How likely are you to recommend us?",
         "required": true},
        {"id": "why", "type": "text", "text": "What is the main reason for your score?",
         "show_if": {"question": "score", "op": "lte", "value": 6}},
        {"id": "used", "type": "multi", "text": "Which did you use?",
         "choices": [{"id": "web", "label": "Website"}, {"id": "app", "label": "App"}]}],
     "translations": {"de": {"questions": {"score": {"text": "Wie wahrscheinlich …"}},
                             "thank_you": "Danke!"}},
     "thank_you": "Thank you!"}

Skip logic is one condition per question on an *earlier* question (``show_if``); a question
whose condition is false is skipped, and an answer sent for it anyway is refused rather than
stored, so what is stored always matches what the respondent was shown.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

QuestionType = Literal["nps", "csat", "ces", "text", "single", "multi"]
SCORE_TYPES: dict[str, tuple[int, int]] = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}
KINDS = ("nps", "csat", "ces", "custom")
MAX_TEXT = 5000
MAX_QUESTIONS = 50
_ID = r"^[a-z][a-z0-9_]{0,39}$"
_LANGUAGE = r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$"
# Markup is never needed in a survey answer and is the usual shape of an injection attempt:
# refuse it outright instead of storing something a later page might render.
# Only what can be markup is refused: a whole tag ("<b>", "</p>", "<img src=x …>"), an opening
# of the dangerous elements even unclosed, a comment, or a javascript: URL — "<3", "x<y",
# "a < b > c" or "arrived <a week late" are words, not markup (browsers read them as text).
_MARKUP = re.compile(
    r"</?[a-zA-Z][a-zA-Z0-9-]*(\s[^<>]*)?/?>"
    r"|</?(script|iframe|svg|img|object|embed|style|link|meta|form|math|base)\b"
    r"|<!--|javascript\s*:", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class DefinitionError(ValueError):
    """The definition or the answers do not fit; ``str()`` says what and where."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Choice(_Strict):
    id: Annotated[str, Field(pattern=_ID)]
    label: Annotated[str, Field(min_length=1, max_length=200)]


class Condition(_Strict):
    question: Annotated[str, Field(pattern=_ID)]
    op: Literal["eq", "ne", "lt", "lte", "gt", "gte", "in", "answered"]
    value: Any = None


class Question(_Strict):
    id: Annotated[str, Field(pattern=_ID)]
    type: QuestionType
    text: Annotated[str, Field(min_length=1, max_length=500)]
    required: bool = False
    choices: list[Choice] = Field(default_factory=list, max_length=50)
    show_if: Condition | None = None

    @model_validator(mode="after")
    def _choices_fit_type(self) -> Question:
        if self.type in {"single", "multi"}:
            if len(self.choices) < 2:
                raise ValueError(f"question {self.id!r}: a {self.type} question needs at least "
                                 "two choices")
            ids = [c.id for c in self.choices]
            if len(set(ids)) != len(ids):
                raise ValueError(f"question {self.id!r}: choice ids must be unique")
        elif self.choices:
            raise ValueError(f"question {self.id!r}: only single and multi questions have "
                             "choices")
        return self


class QuestionTranslation(_Strict):
    text: Annotated[str | None, Field(max_length=500)] = None
    choices: dict[str, Annotated[str, Field(max_length=200)]] = Field(default_factory=dict)


class Translation(_Strict):
    questions: dict[str, QuestionTranslation] = Field(default_factory=dict)
    thank_you: Annotated[str | None, Field(max_length=500)] = None
    title: Annotated[str | None, Field(max_length=200)] = None


class Definition(_Strict):
    language: Annotated[str, Field(pattern=_LANGUAGE)] = "en"
    title: Annotated[str, Field(max_length=200)] = ""
    questions: Annotated[list[Question], Field(min_length=1, max_length=MAX_QUESTIONS)]
    translations: dict[Annotated[str, Field(pattern=_LANGUAGE)], Translation] = Field(
        default_factory=dict)
    thank_you: Annotated[str, Field(max_length=500)] = "Thank you for your answers."

    @model_validator(mode="after")
    def _references_are_sound(self) -> Definition:
        seen: dict[str, Question] = {}
        for question in self.questions:
            if question.id in seen:
                raise ValueError(f"question id {question.id!r} is used twice")
            condition = question.show_if
            if condition is not None:
                target = seen.get(condition.question)
                if target is None:
                    raise ValueError(f"question {question.id!r}: show_if must refer to an "
                                     f"earlier question, not {condition.question!r}")
                _check_condition_value(question.id, condition, target)
            seen[question.id] = question
        for language, translation in self.translations.items():
            for qid, qt in translation.questions.items():
                if qid not in seen:
                    raise ValueError(f"translation {language!r}: no question {qid!r}")
                known = {c.id for c in seen[qid].choices}
                unknown = set(qt.choices) - known
                if unknown:
                    raise ValueError(f"translation {language!r}, question {qid!r}: no choice "
                                     f"{sorted(unknown)[0]!r}")
        return self

    def question(self, question_id: str) -> Question | None:
        return next((q for q in self.questions if q.id == question_id), None)

    def score_question(self, kind: str) -> Question | None:
        """The question the survey's headline metric is read from: the first of its kind."""
        return next((q for q in self.questions if q.type == kind), None)


def _check_condition_value(qid: str, condition: Condition, target: Question) -> None:
    op, value = condition.op, condition.value
    if op == "answered":
        return
    if op == "in":
        if not isinstance(value, list) or not value or not all(
                isinstance(v, str | int | float) and not isinstance(v, bool) for v in value):
            raise ValueError(f"question {qid!r}: show_if 'in' needs a non-empty list of "
                             "numbers or choice ids")
        return
    if target.type in SCORE_TYPES:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"question {qid!r}: show_if on a score needs a number")
    elif op in {"lt", "lte", "gt", "gte"}:
        raise ValueError(f"question {qid!r}: {op} only works on score questions")
    elif target.type in {"single", "multi"} and value not in {c.id for c in target.choices}:
        raise ValueError(f"question {qid!r}: show_if value {value!r} is not a choice of "
                         f"{target.id!r}")


def parse(raw: Any) -> Definition:
    """Validate a definition; :class:`DefinitionError` names every problem found."""
    if isinstance(raw, Definition):
        return raw
    try:
        return Definition.model_validate(raw)
    except ValidationError as error:
        problems = []
        for item in error.errors():
            where = ".".join(str(p) for p in item.get("loc", ()))
            message = str(item.get("msg", "invalid")).removeprefix("Value error, ")
            problems.append(f"{where}: {message}" if where else message)
        raise DefinitionError("; ".join(problems)) from None


# -- answers ---------------------------------------------------------------------------------


def condition_holds(condition: Condition, answers: Mapping[str, Any]) -> bool:
    given = answers.get(condition.question)
    if condition.op == "answered":
        return given not in (None, "", [])
    if given is None:
        return False
    value = condition.value
    if isinstance(given, list):  # a multi answer: does it include the value?
        return value in given if condition.op == "eq" else (
            value not in given if condition.op == "ne" else
            bool(set(given) & set(value)) if condition.op == "in" else False)
    match condition.op:
        case "eq":
            return bool(given == value)
        case "ne":
            return bool(given != value)
        case "in":
            return given in value
        case "lt":
            return bool(given < value)
        case "lte":
            return bool(given <= value)
        case "gt":
            return bool(given > value)
        case "gte":
            return bool(given >= value)
    return False


def visible_questions(definition: Definition, answers: Mapping[str, Any]) -> list[Question]:
    """The questions shown, given the answers so far (skip logic applied in order)."""
    shown: list[Question] = []
    effective: dict[str, Any] = {}
    for question in definition.questions:
        if question.show_if is None or condition_holds(question.show_if, effective):
            shown.append(question)
            if question.id in answers:
                effective[question.id] = answers[question.id]
    return shown


def clean_text(value: str, where: str) -> str:
    text = _CONTROL.sub("", value).strip()
    if len(text) > MAX_TEXT:
        raise DefinitionError(f"{where}: at most {MAX_TEXT} characters, got {len(text)}")
    if _MARKUP.search(text):
        raise DefinitionError(f"{where}: markup such as HTML tags is not accepted in an answer")
    return text


def _clean_score(question: Question, value: Any) -> int:
    low, high = SCORE_TYPES[question.type]
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value.strip())
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise DefinitionError(f"{question.id}: the score must be a whole number from {low} to "
                              f"{high}")
    if not low <= value <= high:
        raise DefinitionError(f"{question.id}: the score must be from {low} to {high}, "
                              f"got {value}")
    return value


def _clean_answer(question: Question, value: Any) -> Any:
    if question.type in SCORE_TYPES:
        return _clean_score(question, value)
    if question.type == "text":
        if not isinstance(value, str):
            raise DefinitionError(f"{question.id}: the answer must be text")
        return clean_text(value, question.id)
    known = {c.id for c in question.choices}
    if question.type == "single":
        if not isinstance(value, str) or value not in known:
            raise DefinitionError(f"{question.id}: choose one of {', '.join(sorted(known))}")
        return value
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise DefinitionError(f"{question.id}: the answer must be a list of choices")
    unknown = [v for v in values if v not in known]
    if unknown:
        raise DefinitionError(f"{question.id}: {unknown[0]!r} is not one of "
                              f"{', '.join(sorted(known))}")
    return sorted(set(values), key=[c.id for c in question.choices].index)


def clean_answers(definition: Definition, raw: Mapping[str, Any]) -> dict[str, Any]:
    """The answers as they will be stored, or :class:`DefinitionError` saying what is wrong.

    Empty answers (``None``, ``""``, ``[]``) count as not given; a required question that is
    shown must be answered; an answer to a question the respondent was not shown (unknown, or
    skipped by its condition) is refused."""
    given = {k: v for k, v in raw.items() if v not in (None, "", [])}
    unknown = sorted(set(given) - {q.id for q in definition.questions})
    if unknown:
        raise DefinitionError(f"{unknown[0]}: this survey has no such question")
    cleaned: dict[str, Any] = {}
    for question in definition.questions:
        shown = question.show_if is None or condition_holds(question.show_if, cleaned)
        if not shown:
            if question.id in given:
                raise DefinitionError(f"{question.id}: this question is skipped for the "
                                      "answers given, so it cannot be answered")
            continue
        if question.id not in given:
            if question.required:
                raise DefinitionError(f"{question.id}: an answer is required")
            continue
        cleaned[question.id] = _clean_answer(question, given[question.id])
    if not cleaned:
        raise DefinitionError("no question was answered")
    return cleaned


# -- languages -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LocalQuestion:
    id: str
    type: str
    text: str
    required: bool
    choices: list[tuple[str, str]]
    show_if: dict[str, Any] | None
    low: int | None
    high: int | None


@dataclass(frozen=True)
class LocalSurvey:
    language: str
    title: str
    thank_you: str
    questions: list[LocalQuestion]

    def as_dict(self) -> dict[str, Any]:
        return {
            "language": self.language, "title": self.title, "thank_you": self.thank_you,
            "questions": [
                {"id": q.id, "type": q.type, "text": q.text, "required": q.required,
                 "choices": [{"id": i, "label": label} for i, label in q.choices],
                 "show_if": q.show_if, "min": q.low, "max": q.high}
                for q in self.questions
            ],
        }


def pick_language(definition: Definition, wanted: list[str]) -> str:
    """The first wanted language the survey has (exact, then the base language), else the
    survey's own. ``wanted`` in preference order, e.g. from a profile trait then
    Accept-Language."""
    available = {definition.language, *definition.translations}
    for raw in wanted:
        code = raw.strip().replace("_", "-")
        if not code:
            continue
        for candidate in (code, code.split("-")[0].lower()):
            if candidate in available:
                return candidate
    return definition.language


def localize(definition: Definition, language: str, title: str = "") -> LocalSurvey:
    translation = definition.translations.get(language) if language != definition.language \
        else None
    questions = []
    for q in definition.questions:
        qt = translation.questions.get(q.id) if translation else None
        low, high = SCORE_TYPES.get(q.type, (None, None))
        questions.append(LocalQuestion(
            id=q.id, type=q.type, text=(qt.text if qt and qt.text else q.text),
            required=q.required,
            choices=[(c.id, (qt.choices.get(c.id) if qt else None) or c.label)
                     for c in q.choices],
            show_if=q.show_if.model_dump() if q.show_if else None, low=low, high=high,
        ))
    return LocalSurvey(
        language=language if translation or language == definition.language
        else definition.language,
        title=(translation.title if translation and translation.title else
               definition.title or title),
        thank_you=(translation.thank_you if translation and translation.thank_you
                   else definition.thank_you),
        questions=questions,
    )


def accept_language(header: str) -> list[str]:
    """Languages from an Accept-Language header, best first."""
    weighted: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        code, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if code and code != "*":
            weighted.append((-quality, position, code))
    return [code for _, _, code in sorted(weighted)]
