"""How well :mod:`cxm.text.themes` recovers known themes from labelled texts, fully offline.

:func:`score` discovers themes in a :class:`Corpus` (texts + one known label each), assigns every
text with :func:`themes.assign_themes` and compares "text → its best theme" with the labels:

* **AMI / ARI** — adjusted mutual information and adjusted Rand index (scikit-learn) between the
  best theme and the label; a text with no theme is put in one extra cluster ``"none"``.
* **coverage** — share of texts with at least one theme.
* **purity** — share of all (text, theme) assignments, second themes included, where the text's
  label is the theme's majority label (over the texts it is the best theme of): low when a theme
  takes in texts on one shared generic word ("fast", "friendly").
* **overlapping names** — pairs of themes whose names share a word: near-duplicate themes.

Corpora: :func:`templated_corpus` builds comments from a phrase table shaped like the demo
generator's ``_COMMENT_PHRASES`` (the caller passes it in: ``cxm.text`` may not import
``cxm.demo``), :data:`FEEDBACK_SAMPLE` is 36 hand-labelled short comments, and
:func:`banking77_corpus` reads real customer queries labelled with 77 intents.
``bench/themes.py`` prints the table; ``tests/text/test_theme_eval.py`` guards it.
"""

from __future__ import annotations

import csv
import itertools
import random
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cxm.text import themes as text_themes

NONE = "none"

# 36 short comments in the style of the product reports that showed near-duplicate themes and
# loose assignment (hand-written for this evaluation, 6 per theme; label → texts). Small on
# purpose: it is the size at which a 12-theme request over-splits.
FEEDBACK_SAMPLE: dict[str, tuple[str, ...]] = {
    "fast delivery": (
        "Fast delivery and a friendly courier", "Super fast delivery, arrived next day",
        "Delivery was quick, courier was friendly", "Arrived a day early, great delivery",
        "Next day delivery as promised", "Really fast delivery, thank you"),
    "refund / support": (
        "Refund took three weeks, terrible support", "Still waiting for my refund",
        "Support never answered my refund request", "Friendly staff and fast refund",
        "Had to call support four times about the refund", "Refund was processed after a month"),
    "damaged": (
        "Parcel arrived damaged, box crushed", "Box was crushed and the mug broken",
        "Arrived damaged, the box was crushed", "Courier left it in the rain, damaged",
        "Item damaged in transit, box torn", "Crushed box, damaged contents"),
    "late": (
        "Late again, the delivery window was missed", "Courier was late and never called",
        "Missed the delivery window by three hours", "Delivery was two days late",
        "The courier came late, after the window", "Late delivery, nobody called me"),
    "locker": (
        "Quick and easy, the locker was perfect", "Picked it up from the locker, easy",
        "Locker pickup was simple", "The locker code did not work",
        "Love the parcel locker option", "Locker was full so I had to wait"),
    "price": (
        "Too expensive for what it is", "Great price, cheaper than elsewhere",
        "Shipping cost was too high", "Fair price and good quality", "Prices went up again",
        "Expensive shipping for a small order"),
}


def feedback_sample(max_themes: int = 12) -> Corpus:
    """:data:`FEEDBACK_SAMPLE` as a corpus, at the feedback app's default of 12 themes."""
    return Corpus(f"36 feedback comments, max {max_themes}",
                  tuple(t for texts in FEEDBACK_SAMPLE.values() for t in texts),
                  tuple(label for label, texts in FEEDBACK_SAMPLE.items() for _ in texts),
                  max_themes)


@dataclass(frozen=True)
class Corpus:
    name: str
    texts: tuple[str, ...]
    labels: tuple[str, ...]
    max_themes: int


@dataclass(frozen=True)
class ThemeScore:
    corpus: str
    texts: int
    labels: int
    max_themes: int
    themes: int
    overlapping_names: int
    coverage: float
    ami: float
    ari: float
    purity: float
    themes_per_text: float
    seconds: float
    names: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def templated_corpus(phrases: Mapping[str, Mapping[str, Sequence[str]]], *,
                     openers: Mapping[str, Sequence[str]], closers: Mapping[str, Sequence[str]],
                     values: Mapping[str, Sequence[str]], n: int = 1000, seed: int = 0,
                     second_phrase: float = 0.35, max_themes: int = 8,
                     name: str = "demo comments") -> Corpus:
    """``n`` comments put together the way the demo generator does it (an opener, a phrase of
    the labelled theme, with probability ``second_phrase`` a phrase of another theme, a closer),
    labelled with the first phrase's theme. ``values`` fills ``{product}``-style slots."""
    rng = random.Random(seed)
    keys = sorted(phrases)
    texts: list[str] = []
    labels: list[str] = []
    for _ in range(n):
        theme = rng.choice(keys)
        sentiment = rng.choice(sorted(phrases[theme]))
        slots = {key: rng.choice(list(options)) for key, options in sorted(values.items())}
        chosen = [rng.choice(list(phrases[theme][sentiment])).format(**slots)]
        if rng.random() < second_phrase:
            other = rng.choice([k for k in keys if k != theme])
            if sentiment in phrases[other]:
                chosen.append(rng.choice(list(phrases[other][sentiment])).format(**slots))
        body = ". ".join(p[0].upper() + p[1:] for p in chosen) + "."
        opener = rng.choice(list(openers.get(sentiment, ("",))))
        if opener and not opener.endswith((". ", "! ", ": ")):
            body = body[0].lower() + body[1:]
        texts.append((opener + body + rng.choice(list(closers.get(sentiment, ("",))))).strip())
        labels.append(theme)
    return Corpus(name, tuple(texts), tuple(labels), max_themes)


def banking77_corpus(path: Path, *, every: int = 1, max_themes: int = 12,
                     name: str | None = None) -> Corpus:
    """The queries of banking77's ``test.csv`` (columns ``text``, ``category``); with ``every``
    > 1 only every ``every``-th intent in sorted order — a fixed subset, not a picked one."""
    with path.open(newline="", encoding="utf-8") as handle:
        rows = [(row["text"], row["category"]) for row in csv.DictReader(handle)]
    intents = sorted({label for _, label in rows})[::every]
    keep = set(intents)
    rows = [(text, label) for text, label in rows if label in keep]
    return Corpus(name or f"banking77 ({len(intents)} intents)",
                  tuple(t for t, _ in rows), tuple(label for _, label in rows), max_themes)


def score(corpus: Corpus) -> ThemeScore:
    """Discover themes in ``corpus.texts``, assign each text, compare with the labels."""
    from sklearn.metrics import adjusted_mutual_info_score, adjusted_rand_score

    start = time.perf_counter()
    found = text_themes.discover_themes(list(corpus.texts), max_themes=corpus.max_themes)
    assigned = [text_themes.assign_themes(text, found) for text in corpus.texts]
    seconds = time.perf_counter() - start

    best = [names[0] if names else NONE for names in assigned]
    majority: dict[str, str] = {}
    by_theme: dict[str, Counter[str]] = {}
    for theme, label in zip(best, corpus.labels, strict=True):
        by_theme.setdefault(theme, Counter())[label] += 1
    for theme, counts in by_theme.items():
        majority[theme] = min(counts.items(), key=lambda item: (-item[1], item[0]))[0]
    pairs = [(theme, label) for names, label in zip(assigned, corpus.labels, strict=True)
             for theme in names]
    pure = sum(1 for theme, label in pairs if majority.get(theme) == label)
    name_words = [set(theme.name.replace("/", " ").split()) for theme in found]
    overlapping = sum(1 for a, b in itertools.combinations(name_words, 2) if a & b)
    n = max(len(corpus.texts), 1)
    return ThemeScore(
        corpus=corpus.name, texts=len(corpus.texts), labels=len(set(corpus.labels)),
        max_themes=corpus.max_themes, themes=len(found), overlapping_names=overlapping,
        coverage=round(sum(1 for names in assigned if names) / n, 3),
        ami=round(float(adjusted_mutual_info_score(corpus.labels, best)), 3),
        ari=round(float(adjusted_rand_score(corpus.labels, best)), 3),
        purity=round(pure / len(pairs), 3) if pairs else 0.0,
        themes_per_text=round(len(pairs) / n, 2), seconds=round(seconds, 2),
        names=tuple(theme.name for theme in found))


def format_table(scores: Sequence[ThemeScore]) -> str:
    """A Markdown table of ``scores``."""
    lines = ["| corpus | texts | labels | max themes | themes | overlapping names | coverage "
             "| AMI | ARI | purity | themes/text | s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in scores:
        lines.append(f"| {s.corpus} | {s.texts:,} | {s.labels} | {s.max_themes} | {s.themes} "
                     f"| {s.overlapping_names} | {s.coverage:.3f} | {s.ami:.3f} | {s.ari:.3f} "
                     f"| {s.purity:.3f} | {s.themes_per_text:.2f} | {s.seconds:.1f} |")
    return "\n".join(lines)


def standard_corpora(phrases: Mapping[str, Mapping[str, Sequence[str]]], *,
                     openers: Mapping[str, Sequence[str]], closers: Mapping[str, Sequence[str]],
                     values: Mapping[str, Sequence[str]],
                     data_dir: Path | None) -> list[Corpus]:
    """The corpora of ``bench/themes.py`` and of the regression test: the 36-comment
    :data:`FEEDBACK_SAMPLE`, 1,000 templated comments at the text CLI's default of 8 themes and
    the feedback app's 12, then banking77 (a fixed 10-intent subset at 12 themes, all 77
    intents at 30) when ``data_dir`` holds it."""
    corpora = [feedback_sample(12)]
    corpora += [templated_corpus(phrases, openers=openers, closers=closers, values=values,
                                 max_themes=max_themes, name=f"demo comments, max {max_themes}")
                for max_themes in (8, 12)]
    path = data_dir / "banking77" / "test.csv" if data_dir is not None else None
    if path is not None and path.is_file():
        corpora.append(banking77_corpus(path, every=8, max_themes=12))
        corpora.append(banking77_corpus(path, every=1, max_themes=30))
    return corpora


def demo_values(products: Sequence[str], agents: Sequence[str]) -> dict[str, list[str]]:
    """Slot values for the demo phrase table: product names (lower-cased, as the generator
    writes them), agent first names and 2–9 days late."""
    return {"product": [p.lower() for p in products], "agent": list(agents),
            "late": [str(days) for days in range(2, 10)]}
