"""Theme discovery (TF-IDF + NMF) and keyword-based assignment."""

from __future__ import annotations

import pytest

from cxm.text.themes import (
    Theme,
    assign_themes,
    discover_themes,
    merge_themes,
    terms,
    theme_name,
)

DELIVERY = ["My delivery was late again", "late delivery, the parcel came a week late",
            "the courier delivery was three days late", "parcel delivery late and box damaged",
            "delivery arrived late", "why is my delivery always late"]
REFUND = ["still waiting for my refund", "refund not received after two weeks",
          "I asked for a refund and got nothing", "how long does a refund take",
          "the refund was never paid back", "refund please, the item was faulty"]
APP = ["the app crashes on login", "app login keeps failing", "cannot login to the app",
       "the mobile app crashes every time", "app login error again", "app crashes at checkout"]


def test_finds_the_planted_themes() -> None:
    themes = discover_themes(DELIVERY + REFUND + APP, max_themes=3)
    assert len(themes) == 3
    names = " ".join(theme.name for theme in themes)
    for word in ("delivery", "refund", "app"):
        assert word in names
    for theme in themes:
        assert max(theme.keywords.values()) == pytest.approx(1.0)
    assert assign_themes("my delivery is late", themes) == [
        next(t.name for t in themes if "delivery" in t.name)]


def test_deterministic() -> None:
    texts = DELIVERY + REFUND + APP
    assert discover_themes(texts) == discover_themes(texts)


@pytest.mark.parametrize("texts", [[], ["one text only"], ["a", "b"], ["", "   ", "123 !!"],
                                   DELIVERY[:5]])
def test_tiny_inputs(texts: list[str]) -> None:
    themes = discover_themes(texts, max_themes=5)
    assert len(themes) <= max(0, len(texts) // 3)
    for text in texts:
        assign_themes(text, themes)


def test_max_themes_respected() -> None:
    assert len(discover_themes(DELIVERY + REFUND + APP, max_themes=1)) == 1
    assert discover_themes(DELIVERY + REFUND + APP, max_themes=0) == []


def test_terms_drop_stopwords_numbers_punctuation_and_plurals() -> None:
    assert terms("The 2 parcels, were LATE!!") == ["parcel", "late", "parcel late"]
    assert terms("currencies boxes class") == [
        "currency", "box", "class", "currency box", "box class"]


def test_assignment_uses_editable_keywords_and_merge_is_union() -> None:
    late = Theme("late delivery", {"late": 1.0, "delivery": 0.5})
    lost = Theme("lost parcel", {"lost": 1.0, "parcel": 0.5})
    assert assign_themes("it came late", [late, lost]) == ["late delivery"]
    assert assign_themes("delivery", [late, lost]) == []  # 0.5 < threshold
    edited = Theme("late delivery", {**late.keywords, "delivery": 1.0})
    assert assign_themes("delivery", [edited]) == ["late delivery"]
    merged = merge_themes(late, lost, name="delivery problems")
    assert merged.keywords == {"late": 1.0, "delivery": 0.5, "lost": 1.0, "parcel": 0.5}
    assert assign_themes("my parcel is lost", [merged]) == ["delivery problems"]
    assert Theme.from_dict(merged.as_dict()) == merged


def test_theme_name_skips_words_inside_chosen_bigrams() -> None:
    assert theme_name({"late delivery": 1.0, "late": 0.9, "delivery": 0.8, "courier": 0.5}) == (
        "late delivery / courier")


def test_keywords_typed_by_an_analyst_are_normalised() -> None:
    theme = Theme("cards", {"Cards": 1.0, "late deliveries": 1.0})
    assert assign_themes("my card is blocked", [theme]) == ["cards"]
    assert assign_themes("late delivery again", [theme]) == ["cards"]
