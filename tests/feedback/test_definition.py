"""Survey definitions and answers (pure: no database)."""

from __future__ import annotations

import copy

import pytest

from cxm.feedback import definition
from cxm.feedback.definition import DefinitionError
from tests.feedback.conftest import NPS_DEFINITION


def parsed() -> definition.Definition:
    return definition.parse(copy.deepcopy(NPS_DEFINITION))


def test_a_sound_definition_parses() -> None:
    survey = parsed()
    assert [q.id for q in survey.questions] == ["score", "why", "fix"]
    assert survey.score_question("nps").id == "score"  # type: ignore[union-attr]
    assert survey.score_question("csat") is None


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d["questions"].append(dict(d["questions"][0])), "used twice"),
    (lambda d: d["questions"][0].update(show_if={"question": "fix", "op": "eq",
                                                 "value": "price"}), "earlier question"),
    (lambda d: d["questions"][2].update(choices=[{"id": "a", "label": "A"}]), "two choices"),
    (lambda d: d["questions"][1].update(choices=[{"id": "a", "label": "A"},
                                                 {"id": "b", "label": "B"}]), "only single"),
    (lambda d: d["questions"][2].update(show_if={"question": "why", "op": "lt", "value": 3}),
     "only works on score"),
    (lambda d: d["questions"][2].update(show_if={"question": "score", "op": "lte",
                                                 "value": "six"}), "needs a number"),
    (lambda d: d["translations"]["de"]["questions"].update(nope={"text": "x"}),
     "no question 'nope'"),
    (lambda d: d["questions"][0].update(type="stars"), "questions.0.type"),
    (lambda d: d.update(questions=[]), "at least 1"),
    (lambda d: d["questions"][0].update(id="Has Spaces"), "questions.0.id"),
    (lambda d: d.update(colour="red"), "colour"),
])
def test_bad_definitions_say_what_is_wrong(change: object, message: str) -> None:
    raw = copy.deepcopy(NPS_DEFINITION)
    change(raw)  # type: ignore[operator]
    with pytest.raises(DefinitionError, match=message):
        definition.parse(raw)


def test_clean_answers_applies_skip_logic() -> None:
    survey = parsed()
    assert definition.clean_answers(survey, {"score": 3, "why": "Late", "fix": "delivery"}) == {
        "score": 3, "why": "Late", "fix": "delivery"}
    # A promoter is not shown the "what to fix" question: answering it anyway is refused.
    with pytest.raises(DefinitionError, match="fix: this question is skipped"):
        definition.clean_answers(survey, {"score": 9, "fix": "price"})
    assert definition.clean_answers(survey, {"score": "10", "why": "", "fix": None}) == {
        "score": 10}


@pytest.mark.parametrize(("answers", "message"), [
    ({"score": 11}, "from 0 to 10, got 11"),
    ({"score": -1}, "from 0 to 10"),
    ({"score": 7.5}, "whole number"),
    ({"score": True}, "whole number"),
    ({"score": "ten"}, "whole number"),
    ({"why": "no score"}, "score: an answer is required"),
    ({"score": 3, "why": "<script>alert(1)</script>"}, "markup"),
    ({"score": 3, "why": "see javascript:alert(1)"}, "markup"),
    ({"score": 3, "why": "x" * 5001}, "at most 5000"),
    ({"score": 3, "why": ["a"]}, "must be text"),
    ({"score": 3, "fix": "free shipping"}, "choose one of"),
    ({"score": 3, "colour": "red"}, "colour: this survey has no such question"),
    ({}, "score: an answer is required"),
])
def test_hostile_or_malformed_answers_are_refused(answers: dict[str, object],
                                                   message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        definition.clean_answers(parsed(), answers)


def test_text_answers_lose_control_characters_but_keep_words() -> None:
    cleaned = definition.clean_answers(parsed(), {"score": 8, "why": "  fast\x00 and 5 < 6 \x07"})
    assert cleaned["why"] == "fast and 5 < 6"


def test_multi_choice_keeps_the_survey_order_and_drops_repeats() -> None:
    survey = definition.parse({"questions": [
        {"id": "used", "type": "multi", "text": "Which?",
         "choices": [{"id": "web", "label": "Web"}, {"id": "app", "label": "App"},
                     {"id": "shop", "label": "Shop"}]},
        {"id": "why", "type": "text", "text": "Why the shop?",
         "show_if": {"question": "used", "op": "eq", "value": "shop"}}]})
    assert definition.clean_answers(survey, {"used": ["shop", "web", "shop"]}) == {
        "used": ["web", "shop"]}
    assert definition.clean_answers(survey, {"used": ["shop"], "why": "near"})["why"] == "near"
    with pytest.raises(DefinitionError, match="skipped"):
        definition.clean_answers(survey, {"used": ["app"], "why": "near"})


def test_visible_questions_follow_the_answers() -> None:
    survey = parsed()
    assert [q.id for q in definition.visible_questions(survey, {"score": 2})] == [
        "score", "why", "fix"]
    assert [q.id for q in definition.visible_questions(survey, {"score": 9})] == [
        "score", "why"]
    assert [q.id for q in definition.visible_questions(survey, {})] == ["score", "why"]


def test_languages() -> None:
    survey = parsed()
    assert definition.pick_language(survey, ["de-AT", "en"]) == "de"
    assert definition.pick_language(survey, ["fr"]) == "en"
    german = definition.localize(survey, "de")
    assert german.title == "Wie war es?"
    assert german.thank_you == "Danke!"
    assert german.questions[0].text == "Wie wahrscheinlich …?"
    assert german.questions[1].text == "What is the main reason for your score?"  # untranslated
    assert (german.questions[0].low, german.questions[0].high) == (0, 10)
    assert definition.localize(survey, "fr").language == "en"
    assert definition.accept_language("fr-CH, fr;q=0.9, de;q=0.95, *;q=0.5") == [
        "fr-CH", "de", "fr"]


@pytest.mark.parametrize("text", ["Parcel arrived <a week late", "x<y", "<3 love it",
                                  "a < b > c", "5 > 4 stars"])
def test_angle_brackets_in_words_are_kept(text: str) -> None:
    assert definition.clean_answers(parsed(), {"score": 5, "why": text})["why"] == text


@pytest.mark.parametrize("text", ["<b>bold</b>", "<img src=x onerror=alert(1)",
                                  "<svg onload=alert(1)>", "<a href=x>link</a>", "<!-- x",
                                  "JavaScript :alert(1)"])
def test_markup_is_refused(text: str) -> None:
    with pytest.raises(DefinitionError, match="markup"):
        definition.clean_answers(parsed(), {"score": 5, "why": text})


def test_show_if_in_takes_scalars_only() -> None:
    raw = copy.deepcopy(NPS_DEFINITION)
    raw["questions"][2]["show_if"] = {"question": "score", "op": "in", "value": [[1]]}
    with pytest.raises(DefinitionError, match="list of numbers or choice ids"):
        definition.parse(raw)
