"""The survey builder's form: rows of questions and translations an analyst fills in, turned
into the survey definition JSON (``cxm.feedback.definition``) and back.

It checks shape only (numbers are numbers, a condition names an earlier question); whether the
survey is sound is decided by ``feedback.actions`` and ``feedback.definition``, whose messages
the page shows next to the form. Add, remove and move operations re-render the form from what
was posted, so nothing typed is lost and the page works without JavaScript.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cxm.feedback import definition as survey_definition

MAX_ROWS = survey_definition.MAX_QUESTIONS
MAX_TRANSLATIONS = 12

KIND_LABELS = {"nps": "NPS", "csat": "CSAT", "ces": "CES", "custom": "Custom"}
TYPE_LABELS = {
    "nps": "NPS score (0–10)", "csat": "CSAT score (1–5)", "ces": "CES score (1–7)",
    "text": "Open text", "single": "One choice", "multi": "Several choices",
}
OP_LABELS = {
    "eq": "is", "ne": "is not", "lt": "is below", "lte": "is at most", "gt": "is above",
    "gte": "is at least", "in": "is one of", "answered": "was answered",
}
STATUS_LABELS = {"draft": "Draft", "active": "Active", "closed": "Closed"}
STAGES = ("discovery", "consideration", "purchase", "onboarding", "service", "support",
          "loyalty", "advocacy")
RULE_FIELDS: dict[str, tuple[str, str]] = {
    "min_days_between": ("Days between any two surveys",
                         "No survey to the same person more often than once in this many days."),
    "touchpoint_days": ("Days between surveys about one touchpoint",
                        "Not asked twice about the same touchpoint (e.g. delivery) in this "
                        "many days."),
    "survey_days": ("Days between two sends of one survey",
                    "The same survey is not sent twice to a person in this many days."),
    "max_contacts_7d": ("Contacts in any 7 days, at most",
                        "Surveys and messages of every kind together."),
}
RULE_CONSENT_HELP = ("Only people who allow research contact on the channel "
                     "(consent <channel>:research) are asked.")

TEMPLATES: dict[str, dict[str, Any]] = {
    "nps": {"title": "How are we doing?", "questions": [
        {"id": "score", "type": "nps", "required": True,
         "text": "How likely are you to recommend us to a friend or colleague?"},
        {"id": "why", "type": "text", "text": "What is the main reason for your score?"},
    ]},
    "csat": {"title": "How did we do?", "questions": [
        {"id": "score", "type": "csat", "required": True,
         "text": "How satisfied are you with your experience?"},
        {"id": "why", "type": "text", "text": "What could we have done better?",
         "show_if": {"question": "score", "op": "lte", "value": 3}},
    ]},
    "ces": {"title": "Was it easy?", "questions": [
        {"id": "score", "type": "ces", "required": True,
         "text": "How easy was it to get what you needed today?"},
        {"id": "why", "type": "text", "text": "What made it easy or hard?"},
    ]},
    "custom": {"title": "Tell us what you think", "questions": [
        {"id": "used", "type": "multi", "text": "Which did you use?",
         "choices": [{"id": "website", "label": "Website"}, {"id": "app", "label": "App"},
                     {"id": "store", "label": "Store"}]},
        {"id": "comments", "type": "text", "text": "Anything else you would like to tell us?"},
    ]},
}


@dataclass
class BuilderState:
    """Everything on the builder page, as typed (strings), so it can be shown again."""

    name: str = ""
    kind: str = "nps"
    status: str = "active"
    touchpoint: str = ""
    stage: str = ""
    trigger_event: str = ""
    trigger_delay: str = "0"
    language: str = "en"
    title: str = ""
    thank_you: str = "Thank you for your answers."
    rules: dict[str, str] = field(default_factory=dict)
    require_consent: bool = False
    questions: list[dict[str, Any]] = field(default_factory=list)
    translations: list[dict[str, Any]] = field(default_factory=list)
    json_text: str = ""


# --- from a definition ----------------------------------------------------------------------


def choice_id(label: str) -> str:
    base = re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")[:40]
    if not base or not base[0].isalpha():
        base = ("c_" + base)[:40].rstrip("_") or "c"
    return base


def _choices_text(choices: Sequence[Mapping[str, Any]]) -> str:
    lines = []
    for choice in choices:
        label, cid = str(choice.get("label", "")), str(choice.get("id", ""))
        lines.append(label if choice_id(label) == cid else f"{cid} | {label}")
    return "\n".join(lines)


def _value_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(_value_text(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def question_row(raw: Mapping[str, Any]) -> dict[str, Any]:
    condition = raw.get("show_if") or {}
    return {
        "id": str(raw.get("id", "")), "type": str(raw.get("type", "text")),
        "text": str(raw.get("text", "")), "required": bool(raw.get("required", False)),
        "choices": _choices_text(raw.get("choices") or []),
        "show_q": str(condition.get("question", "")), "show_op": str(condition.get("op", "eq")),
        "show_value": _value_text(condition.get("value")),
    }


def _translation_rows(definition: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    questions = definition.get("questions") or []
    for language, translation in (definition.get("translations") or {}).items():
        per_question = []
        for question in questions:
            qt = (translation.get("questions") or {}).get(question.get("id"), {})
            labels = qt.get("choices") or {}
            per_question.append({
                "text": qt.get("text") or "",
                "choices": "\n".join(labels.get(c.get("id"), "")
                                     for c in question.get("choices") or []).rstrip("\n"),
            })
        rows.append({"lang": language, "title": translation.get("title") or "",
                     "thank_you": translation.get("thank_you") or "",
                     "questions": per_question})
    return rows


def apply_definition(state: BuilderState, definition: Mapping[str, Any]) -> BuilderState:
    state.language = str(definition.get("language", "en"))
    state.title = str(definition.get("title", ""))
    state.thank_you = str(definition.get("thank_you", "Thank you for your answers."))
    state.questions = [question_row(q) for q in definition.get("questions") or []]
    state.translations = _translation_rows(definition)
    state.json_text = json.dumps(dict(definition), indent=2, ensure_ascii=False)
    return state


def from_template(kind: str) -> BuilderState:
    kind = kind if kind in TEMPLATES else "nps"
    state = BuilderState(kind=kind)
    return apply_definition(state, TEMPLATES[kind])


def from_survey(survey: Any) -> BuilderState:
    rules = dict(survey.rules or {})
    state = BuilderState(
        name=survey.name, kind=survey.kind, status=survey.status, touchpoint=survey.touchpoint,
        stage=survey.stage, trigger_event=survey.trigger_event,
        trigger_delay=str(survey.trigger_delay_minutes),
        rules={k: str(rules[k]) for k in RULE_FIELDS if k in rules},
        require_consent=bool(rules.get("require_consent", False)),
    )
    return apply_definition(state, survey.definition)


# --- from the posted form -------------------------------------------------------------------


def _count(data: Mapping[str, Any], key: str, limit: int) -> int:
    try:
        return max(0, min(int(str(data.get(key, "0"))), limit))
    except ValueError:
        return 0


def from_post(data: Any) -> BuilderState:
    """``data`` is ``request.POST`` (a QueryDict)."""

    def get(key: str, default: str = "") -> str:
        return str(data.get(key, default)).replace("\r\n", "\n")

    state = BuilderState(
        name=get("name"), kind=get("kind", "nps"), status=get("status", "active"),
        touchpoint=get("touchpoint"), stage=get("stage"), trigger_event=get("trigger_event"),
        trigger_delay=get("trigger_delay", "0"), language=get("language", "en"),
        title=get("title"), thank_you=get("thank_you"),
        rules={k: get(f"rule_{k}").strip() for k in RULE_FIELDS if get(f"rule_{k}").strip()},
        require_consent=data.get("rule_require_consent") == "on",
        json_text=get("definition_json"),
    )
    questions = _count(data, "q_count", MAX_ROWS + 1)
    for i in range(questions):
        state.questions.append({
            "id": get(f"q{i}_id").strip(), "type": get(f"q{i}_type", "text"),
            "text": get(f"q{i}_text"), "required": data.get(f"q{i}_required") == "on",
            "choices": get(f"q{i}_choices"), "show_q": get(f"q{i}_show_q"),
            "show_op": get(f"q{i}_show_op", "eq"), "show_value": get(f"q{i}_show_value"),
        })
    for t in range(_count(data, "t_count", MAX_TRANSLATIONS + 1)):
        state.translations.append({
            "lang": get(f"t{t}_lang").strip(), "title": get(f"t{t}_title"),
            "thank_you": get(f"t{t}_thank_you"),
            "questions": [{"text": get(f"t{t}_q{i}_text"),
                           "choices": get(f"t{t}_q{i}_choices")} for i in range(questions)],
        })
    return state


def apply_op(state: BuilderState, op: str) -> str:
    """Add, remove or move a row; returns a note for the page ("" if nothing happened)."""
    action, _, raw_index = op.partition(":")
    index = int(raw_index) if raw_index.isdigit() else -1
    questions, translations = state.questions, state.translations
    if action == "add_question":
        if len(questions) >= MAX_ROWS:
            return f"A survey has at most {MAX_ROWS} questions."
        questions.append({"id": "", "type": "text", "text": "", "required": False,
                          "choices": "", "show_q": "", "show_op": "eq", "show_value": ""})
        for t in translations:
            t["questions"].append({"text": "", "choices": ""})
        return ""
    if action == "remove_question" and 0 <= index < len(questions):
        questions.pop(index)
        for t in translations:
            if index < len(t["questions"]):
                t["questions"].pop(index)
        return ""
    if action in {"up", "down"} and 0 <= index < len(questions):
        other = index - 1 if action == "up" else index + 1
        if 0 <= other < len(questions):
            questions[index], questions[other] = questions[other], questions[index]
            for t in translations:
                rows = t["questions"]
                if max(index, other) < len(rows):
                    rows[index], rows[other] = rows[other], rows[index]
        return ""
    if action == "add_translation":
        if len(translations) >= MAX_TRANSLATIONS:
            return f"At most {MAX_TRANSLATIONS} translations."
        translations.append({"lang": "", "title": "", "thank_you": "",
                             "questions": [{"text": "", "choices": ""} for _ in questions]})
        return ""
    if action == "remove_translation" and 0 <= index < len(translations):
        translations.pop(index)
        return ""
    return ""


# --- to the survey's fields -----------------------------------------------------------------


def _parse_choices(text: str) -> list[dict[str, str]]:
    choices: list[dict[str, str]] = []
    seen: set[str] = set()
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        cid, bar, label = line.partition("|")
        if bar and re.fullmatch(r"[a-z][a-z0-9_]{0,39}", cid.strip()):
            cid, label = cid.strip(), label.strip()
        else:
            cid, label = choice_id(line), line
        base, n = cid, 2
        while cid in seen:
            cid, n = f"{base[:36]}_{n}", n + 1
        seen.add(cid)
        choices.append({"id": cid, "label": label})
    return choices


def _number(text: str) -> int | float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if value.is_integer() else value


def _condition_value(op: str, text: str, target: Mapping[str, Any] | None,
                     where: str, errors: list[str]) -> Any:
    text = text.strip()
    if op == "answered":
        return None
    parts = [p.strip() for p in text.split(",") if p.strip()] if op == "in" else [text]
    if not parts or parts == [""]:
        errors.append(f"{where}: give the value the condition compares with")
        return None
    values: list[Any] = []
    for part in parts:
        if target is not None and target["type"] in survey_definition.SCORE_TYPES:
            number = _number(part)
            if number is None:
                errors.append(f"{where}: “{part}” is not a number")
                return None
            values.append(number)
        elif target is not None and target["type"] in {"single", "multi"}:
            by_label = {c["label"].lower(): c["id"] for c in target["choices"]}
            values.append(by_label.get(part.lower(), part))
        else:
            values.append(part)
    return values if op == "in" else values[0]


def build(state: BuilderState) -> tuple[dict[str, Any], list[str]]:
    """The keyword arguments for ``actions.create_survey``/``update_survey``, and the
    problems found in the form's shape (the actions check the rest)."""
    errors: list[str] = []
    questions: list[dict[str, Any]] = []
    used: set[str] = set()
    for number, row in enumerate(state.questions, start=1):
        qid = row["id"].strip() or f"q{number}"
        while qid in used and not row["id"].strip():
            qid = f"{qid}_x"
        used.add(qid)
        question: dict[str, Any] = {"id": qid, "type": row["type"], "text": row["text"].strip(),
                                    "required": bool(row["required"])}
        if row["type"] in {"single", "multi"}:
            question["choices"] = _parse_choices(row["choices"])
        if row["show_q"]:
            target = next((q for q in questions if q["id"] == row["show_q"]), None)
            op = row["show_op"] if row["show_op"] in OP_LABELS else "eq"
            condition: dict[str, Any] = {"question": row["show_q"], "op": op}
            value = _condition_value(op, row["show_value"], target,
                                     f"Question {number}, show if", errors)
            if op != "answered":
                condition["value"] = value
            question["show_if"] = condition
        questions.append(question)
        row["id"] = qid
    translations: dict[str, Any] = {}
    for row in state.translations:
        lang = row["lang"].strip()
        entry: dict[str, Any] = {"questions": {}}
        if row["title"].strip():
            entry["title"] = row["title"].strip()
        if row["thank_you"].strip():
            entry["thank_you"] = row["thank_you"].strip()
        for question, texts in zip(questions, row["questions"], strict=False):
            qt: dict[str, Any] = {}
            if texts["text"].strip():
                qt["text"] = texts["text"].strip()
            labels = texts["choices"].splitlines()
            mapped = {c["id"]: label.strip()
                      for c, label in zip(question.get("choices", []), labels, strict=False)
                      if label.strip()}
            if mapped:
                qt["choices"] = mapped
            if qt:
                entry["questions"][question["id"]] = qt
        has_content = bool(entry["questions"]) or "title" in entry or "thank_you" in entry
        if not lang:
            if has_content:
                errors.append("Translations: give each translation its language code, "
                              "e.g. de or fr-CA")
            continue
        if lang in translations:
            errors.append(f"Translations: {lang!r} is listed twice")
        translations[lang] = entry
    definition: dict[str, Any] = {"language": state.language.strip() or "en",
                                  "title": state.title.strip(), "questions": questions,
                                  "thank_you": state.thank_you.strip()
                                  or "Thank you for your answers."}
    if translations:
        definition["translations"] = translations
    rules: dict[str, Any] = {}
    for name, text in state.rules.items():
        if name not in RULE_FIELDS:
            continue
        value = _number(text)
        if not isinstance(value, int) or value < 0:
            errors.append(f"Contact rules: {RULE_FIELDS[name][0].lower()} must be a whole "
                          "number of 0 or more")
            continue
        rules[name] = value
    if state.require_consent:
        rules["require_consent"] = True
    delay = _number(state.trigger_delay.strip() or "0")
    if not isinstance(delay, int) or delay < 0:
        errors.append("Trigger delay: a whole number of minutes")
        delay = 0
    fields = {
        "name": state.name, "kind": state.kind, "status": state.status,
        "touchpoint": state.touchpoint, "stage": state.stage,
        "trigger_event": state.trigger_event, "trigger_delay_minutes": delay,
        "rules": rules, "definition": definition,
    }
    return fields, errors


def definition_from_json(text: str) -> tuple[dict[str, Any] | None, str]:
    """The JSON textarea's definition, checked like the form's; (None, problem) if bad."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        return None, f"Definition JSON: not valid JSON ({error.msg}, line {error.lineno})"
    try:
        parsed = survey_definition.parse(raw)
    except survey_definition.DefinitionError as error:
        return None, f"Definition JSON: {error}"
    return parsed.model_dump(mode="json", exclude_none=True), ""


def json_of(fields: Mapping[str, Any]) -> str:
    return json.dumps(fields["definition"], indent=2, ensure_ascii=False)
