"""The feedback app's use of :mod:`cxm.text`: what one comment says, and which stored themes
it belongs to. Kept in one module so the rest of the app does not depend on how text
analytics names things."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cxm.feedback.models import Theme

if TYPE_CHECKING:
    from cxm.text import themes as text_themes

_WORD = re.compile(r"[^\W\d_][\w'-]*", re.UNICODE)


@dataclass(frozen=True)
class Found:
    sentiment: str
    score: float
    emotion: str


def annotate(text: str) -> Found:
    from cxm.text import emotion as text_emotion
    from cxm.text import sentiment as text_sentiment

    result = text_sentiment.classify(text)
    return Found(result.label, round(float(result.score), 4), text_emotion.label(text))


def _as_text_theme(theme: Theme) -> text_themes.Theme:
    from cxm.text import themes as text_themes

    return text_themes.Theme(name=theme.name, keywords=dict(theme.keywords))


def matching_themes(text: str, themes: Sequence[Theme]) -> list[Theme]:
    if not themes:
        return []
    from cxm.text import themes as text_themes

    converted = [_as_text_theme(t) for t in themes]
    names = set(text_themes.assign_themes(text, converted))
    return [t for t in themes if t.name in names]


def theme_matcher(themes: Sequence[Theme]) -> Callable[[str], list[Theme]]:
    """``matching_themes`` for many texts against the same themes (converted once)."""
    if not themes:
        return lambda text: []
    from cxm.text import themes as text_themes

    converted = [_as_text_theme(t) for t in themes]

    def match(text: str) -> list[Theme]:
        names = set(text_themes.assign_themes(text, converted))
        return [t for t in themes if t.name in names]

    return match


def discover(texts: Sequence[str], *, max_themes: int) -> list[tuple[str, dict[str, float]]]:
    from cxm.text import themes as text_themes

    return [(t.name, dict(t.keywords))
            for t in text_themes.discover_themes(list(texts), max_themes=max_themes)]


def keyword_weights(keywords: Sequence[str] | Mapping[str, float],
                    existing: Mapping[str, float]) -> dict[str, float]:
    """Key words an analyst typed, weighted: a word the theme already had keeps its weight, a
    new one gets the theme's strongest weight (the analyst says it matters)."""
    if isinstance(keywords, Mapping):
        return {str(k).strip().lower(): float(v) for k, v in keywords.items()
                if str(k).strip() and float(v) > 0}
    top = max(existing.values(), default=1.0)
    result: dict[str, float] = {}
    for raw in keywords:
        for word in _WORD.findall(str(raw).lower()):
            result[word] = float(existing.get(word, top))
    return result
