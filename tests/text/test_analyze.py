"""analyze_texts: one Analysis per text, sentiment + emotion + discovered themes."""

from __future__ import annotations

from cxm.text.analyze import Analysis, analyze_texts
from cxm.text.themes import Theme


def test_one_result_per_text_in_order() -> None:
    texts = ["Thank you, the agent was wonderful", "My refund never arrived, I'm furious",
             "How do I reset my password?"]
    results = analyze_texts(texts)
    assert [r.text for r in results] == texts
    assert results[0].sentiment == "positive"
    assert results[2].sentiment == "neutral"
    assert results[0].emotion in {"gratitude", "joy"}
    assert results[1].emotion == "anger"
    assert results[0].score > 0 > results[1].score


def test_as_dict_fields() -> None:
    result = analyze_texts(["great"], max_themes=0)[0]
    assert isinstance(result, Analysis)
    assert set(result.as_dict()) == {"text", "sentiment", "score", "emotion", "themes"}


def test_given_themes_are_used() -> None:
    themes = [Theme("billing", {"invoice": 1.0, "bill": 1.0})]
    results = analyze_texts(["where is my invoice", "nice staff"], themes=themes)
    assert results[0].themes == ["billing"]
    assert results[1].themes == []


def test_empty_input() -> None:
    assert analyze_texts([]) == []


def test_furious_refund_is_negative() -> None:
    assert analyze_texts(["My refund never arrived, I'm furious"])[0].sentiment == "negative"
