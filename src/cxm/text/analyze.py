"""Sentiment, emotion and themes for a batch of texts — what ``cxm text analyze`` prints."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cxm.text import emotion, sentiment
from cxm.text.themes import DEFAULT_MAX_THEMES, Theme, assign_themes, discover_themes


@dataclass(frozen=True)
class Analysis:
    text: str
    sentiment: str  # positive / neutral / negative
    score: float  # in [-1, 1]: P(positive) - P(negative)
    emotion: str  # one of emotion.EMOTIONS or "none"
    themes: list[str] = field(default_factory=list)  # names of the themes the text belongs to

    def as_dict(self) -> dict[str, Any]:
        return {"text": self.text, "sentiment": self.sentiment, "score": self.score,
                "emotion": self.emotion, "themes": list(self.themes)}


def analyze_texts(texts: Sequence[str], *, max_themes: int = DEFAULT_MAX_THEMES,
                  themes: Sequence[Theme] | None = None) -> list[Analysis]:
    """One :class:`Analysis` per text, in order. Themes are discovered from ``texts`` unless
    given (e.g. themes an analyst has edited); ``max_themes=0`` turns them off."""
    if themes is None:
        themes = discover_themes(texts, max_themes) if max_themes > 0 else []
    results = []
    for text, polarity in zip(texts, sentiment.classify_many(texts), strict=True):
        results.append(Analysis(
            text=text,
            sentiment=polarity.label,
            score=polarity.score,
            emotion=emotion.label(text),
            themes=assign_themes(text, themes),
        ))
    return results
