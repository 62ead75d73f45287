"""Rule-based emotion tagging on hand-picked examples (not an evaluation: no labelled data)."""

from __future__ import annotations

import pytest

from cxm.text import emotion


@pytest.mark.parametrize(("text", "expected"), [
    ("I am so happy with my new phone", "joy"),
    ("Thank you for the quick help!", "gratitude"),
    ("This is outrageous, you charged me twice and the agent was rude", "anger"),
    ("Still waiting for my refund, this is so frustrating", "frustration"),
    ("I'm worried my card was stolen", "fear"),
    ("Sadly my order arrived broken and I'm really upset", "sadness"),
    ("Wow, I didn't expect the package so early", "surprise"),
    ("Please send me the invoice for March", "none"),
    ("", "none"),
])
def test_hand_picked(text: str, expected: str) -> None:
    assert emotion.label(text) == expected


def test_negated_negative_emotion_is_dropped() -> None:
    assert emotion.label("I'm not angry") == "none"
    assert emotion.label("I am not worried at all") == "none"


def test_negated_joy_becomes_frustration() -> None:
    result = emotion.detect("I am not happy with the service")
    assert result.label == "frustration"
    assert "not happy" in result.cues


def test_negation_stops_at_clause_break() -> None:
    assert emotion.label("Not what I ordered, but I love it") == "joy"


def test_intensifier_and_phrases() -> None:
    plain = emotion.detect("I am happy").scores["joy"]
    assert emotion.detect("I am very happy").scores["joy"] == pytest.approx(
        plain * emotion.INTENSIFIER_FACTOR)
    assert emotion.detect("thank you").cues == ("thank you",)  # the phrase, not "thank"


def test_lexicon_has_no_duplicate_cues_across_emotions() -> None:
    seen: dict[str, str] = {}
    for name, cues in emotion.LEXICON.items():
        assert name in emotion.EMOTIONS
        for cue in cues:
            assert cue not in seen, f"{cue!r} in {seen.get(cue)} and {name}"
            seen[cue] = name
