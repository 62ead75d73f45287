"""Themes discovered from the texts themselves, then assigned by editable keyword weights.

:func:`discover_themes` clusters texts with TF-IDF + NMF (scikit-learn, fixed ``random_state``):
each NMF component becomes a :class:`Theme` named by its top key words, with its top terms and
their weights (largest = 1.0). :func:`assign_themes` then scores one text against each theme
with those weights alone — so an analyst can edit a theme's keywords, merge two themes
(:func:`merge_themes`, union of keywords) or rename one, and re-assigning is deterministic and
needs no model. Discovery and assignment share :func:`terms`, so they see the same words.
"""

from __future__ import annotations

import itertools
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

DEFAULT_MAX_THEMES = 8
KEYWORDS_PER_THEME = 10
NAME_WORDS = 3
# A text joins a theme when the weights of the theme keywords it contains add up to this: the
# top keyword alone (1.0) or two or three lesser ones.
ASSIGN_THRESHOLD = 0.6
MIN_TEXTS_PER_THEME = 3  # fewer texts than this per theme and NMF only memorises them
MIN_KEYWORD_WEIGHT = 0.05  # relative to the theme's top term; smaller terms are noise
RANDOM_STATE = 0

# English stop words (scikit-learn's ENGLISH_STOP_WORDS, BSD-3-Clause, plus apostrophe-less
# contractions and a few words every customer text is full of). Kept here so that assignment
# needs no scikit-learn.
_STOP_WORDS_TEXT = """
a about above across after afterwards again against all almost alone along already also although
always am among amongst amoungst amount an and another any anyhow anyone anything anyway anywhere
are around as at back be became because become becomes becoming been before beforehand behind
being below beside besides between beyond bill both bottom but by call can cannot cant co con
could couldnt cry de describe detail do done down due during each eg eight either eleven else
elsewhere empty enough etc even ever every everyone everything everywhere except few fifteen
fifty fill find fire first five for former formerly forty found four from front full further get
give go had has hasnt have he hence her here hereafter hereby herein hereupon hers herself him
himself his how however hundred i ie if in inc indeed interest into is it its itself keep last
latter latterly least less ltd made many may me meanwhile might mill mine more moreover most
mostly move much must my myself name namely neither never nevertheless next nine no nobody none
noone nor not nothing now nowhere of off often on once one only onto or other others otherwise
our ours ourselves out over own part per perhaps please put rather re same see seem seemed
seeming seems serious several she should show side since sincere six sixty so some somehow
someone something sometime sometimes somewhere still such system take ten than that the their
them themselves then thence there thereafter thereby therefore therein thereupon these they
thick thin third this those though three through throughout thru thus to together too top
toward towards twelve twenty two un under until up upon us very via was we well were what
whatever when whence whenever where whereafter whereas whereby wherein whereupon wherever whether
which while whither who whoever whole whom whose why will with within without would yet you your
yours yourself yourselves
dont doesnt didnt isnt wasnt arent werent wont wouldnt shouldnt havent hadnt aint im ive id ill
youre youve youll hes shes thats theres whats lets
just really like got want need know think did does doing ok okay oh yes yeah hi hello thanks
thank able way use used using lot
"""
STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())

_WORD_RE = re.compile(r"[a-z]+(?:'[a-z]+)*")


def _normalise(word: str) -> str:
    """Lower-case word without apostrophes and with a plural ending undone ("cards" → "card",
    "currencies" → "currency", "boxes" → "box") so that a theme's keywords do not split between
    singular and plural. Deliberately crude: no dictionary, the same answer every time."""
    word = word.replace("'", "")
    if len(word) <= 3 or not word.endswith("s"):
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "sses", "xes", "zes")):
        return word[:-2]
    if word.endswith(("ss", "us", "is", "ys", "os")):
        return word
    return word[:-1]


def terms(text: str) -> list[str]:
    """Content words of ``text`` (no numbers, punctuation or stop words), then the bigrams of
    adjacent content words — the vocabulary of discovery and of assignment alike."""
    words = [_normalise(w) for w in _WORD_RE.findall(text.lower().replace("’", "'"))]
    words = [w for w in words if len(w) > 1 and w not in STOP_WORDS]
    return words + [f"{a} {b}" for a, b in itertools.pairwise(words)]


@dataclass(frozen=True)
class Theme:
    name: str
    keywords: dict[str, float] = field(default_factory=dict)  # term -> weight in (0, 1]

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "keywords": dict(self.keywords)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Theme:
        return cls(str(data["name"]), {str(k): float(v) for k, v in data["keywords"].items()})


def theme_name(keywords: Mapping[str, float], words: int = NAME_WORDS) -> str:
    """The top key words, heaviest first, skipping a word already inside a chosen bigram."""
    chosen: list[str] = []
    for term, _ in sorted(keywords.items(), key=lambda item: (-item[1], item[0])):
        if any(part in chosen or any(part in c.split() for c in chosen)
               for part in term.split()):
            continue
        chosen.append(term)
        if len(chosen) == words:
            break
    return " / ".join(chosen)


def discover_themes(texts: Sequence[str], max_themes: int = DEFAULT_MAX_THEMES) -> list[Theme]:
    """Up to ``max_themes`` themes found in ``texts``; fewer (or none) when there are too few
    texts or words to support them. Deterministic for the same input."""
    documents = [text for text in texts if terms(text)]
    n_themes = min(max_themes, len(documents) // MIN_TEXTS_PER_THEME)
    if n_themes < 1:
        return []

    from sklearn.decomposition import NMF
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.feature_extraction.text import TfidfVectorizer

    # With enough texts a term must occur in two of them to count: a word used once cannot
    # characterise a group of texts.
    vectorizer = TfidfVectorizer(analyzer=terms, min_df=2 if len(documents) >= 20 else 1,
                                 sublinear_tf=True)
    try:
        matrix = vectorizer.fit_transform(documents)
    except ValueError:  # no term left after min_df
        return []
    vocabulary = vectorizer.get_feature_names_out()
    n_themes = min(n_themes, len(vocabulary))
    if n_themes < 1:
        return []
    nmf = NMF(n_components=n_themes, init="nndsvda", random_state=RANDOM_STATE, max_iter=1000)
    # A not-quite-converged NMF still gives usable, deterministic components; the themes are a
    # starting point an analyst edits, so the warning is not worth failing on.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        nmf.fit(matrix)

    themes: list[Theme] = []
    seen_names: set[str] = set()
    for component in nmf.components_:
        top = component.max()
        if top <= 0:
            continue
        order = sorted(range(len(component)), key=lambda j: (-component[j], vocabulary[j]))
        keywords = {
            str(vocabulary[j]): round(float(component[j] / top), 3)
            for j in order[:KEYWORDS_PER_THEME]
            if component[j] / top >= MIN_KEYWORD_WEIGHT
        }
        name = theme_name(keywords)
        if not name or name in seen_names:
            continue
        seen_names.add(name)
        themes.append(Theme(name, keywords))
    return themes


def theme_scores(text: str, themes: Sequence[Theme]) -> dict[str, float]:
    """Sum of the weights of each theme's keywords present in ``text`` (each counted once)."""
    present = set(terms(text))
    return {theme.name: round(sum(w for k, w in theme.keywords.items()
                                  if normalise_term(k) in present), 4)
            for theme in themes}


def normalise_term(term: str) -> str:
    """A keyword as :func:`terms` would produce it, so that one an analyst typed ("Cards",
    "late deliveries") still matches."""
    return " ".join(_normalise(word) for word in term.lower().replace("’", "'").split())


def assign_themes(text: str, themes: Sequence[Theme],
                  threshold: float = ASSIGN_THRESHOLD) -> list[str]:
    """Names of the themes ``text`` belongs to, best first (ties by name)."""
    scores = theme_scores(text, themes)
    chosen = [(score, name) for name, score in scores.items() if score >= threshold]
    return [name for score, name in sorted(chosen, key=lambda item: (-item[0], item[1]))]


def merge_themes(first: Theme, second: Theme, name: str | None = None) -> Theme:
    """One theme with the union of both keyword sets (the larger weight where both have one)."""
    keywords = dict(first.keywords)
    for term, weight in second.keywords.items():
        keywords[term] = max(weight, keywords.get(term, 0.0))
    return Theme(name or theme_name(keywords), keywords)
