"""Themes discovered from the texts themselves, then assigned by editable keyword weights.

:func:`discover_themes` clusters texts with TF-IDF + NMF (scikit-learn, fixed ``random_state``),
folds near-duplicate components together and makes each group a :class:`Theme` named by two or
three distinctive key words, with its top terms and their weights (largest = 1.0).
:func:`assign_themes` then scores one text against each theme with those weights alone — so an
analyst can edit a theme's keywords, merge two themes (:func:`merge_themes`, union of keywords)
or rename one, and re-assigning is deterministic and needs no model. Discovery and assignment
share :func:`terms`, so they see the same words. Quality against labelled texts:
:mod:`cxm.text.theme_eval`, ``bench/themes.py``.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
import warnings
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field
from typing import Any

DEFAULT_MAX_THEMES = 8
KEYWORDS_PER_THEME = 10
NAME_WORDS = 3
# Assignment (see assign_themes), all relative to the theme's top weight: one key word is
# enough when it weighs >= ASSIGN_THRESHOLD and is among the ANCHOR_TERMS heaviest or weighs
# >= ANCHOR_LEVEL; otherwise two or more words whose weights add up to MULTI_THRESHOLD. At most
# MAX_THEMES_PER_TEXT themes, a second one only when it scores SECOND_THEME_RATIO of the best.
ASSIGN_THRESHOLD = 0.6
ANCHOR_TERMS = 2
ANCHOR_LEVEL = 0.7
MULTI_THRESHOLD = 0.8
MAX_THEMES_PER_TEXT = 2
SECOND_THEME_RATIO = 0.5
# Discovery: generic evaluative words are damped by GENERIC_FACTOR in the TF-IDF matrix. Two
# NMF components are near-duplicates, folded into one theme, when their term vectors have
# cosine >= FOLD_COSINE, their text loadings cosine >= FOLD_TEXT_COSINE (they claim the same
# texts), or their FOLD_TOP_TERMS heaviest single words share FOLD_SHARED_WORDS.
GENERIC_FACTOR = 0.3
FOLD_COSINE = 0.3
FOLD_TEXT_COSINE = 0.25
FOLD_TOP_TERMS = 3
FOLD_SHARED_WORDS = 2
# At most √(texts) components: 36 comments give 6 (not 12 — over-splitting is what produced
# "arrived / box / crushed" next to "damaged / box / crushed"), 1,000 give 32.
THEMES_PER_SQRT_TEXTS = 1.0
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

# Words that say how good or bad something was, or how strongly, not what it was about: in
# discovery they are damped (GENERIC_FACTOR) and they name a theme only when nothing else can.
# Assignment does not treat them specially: an analyst who types "rude" as a key word gets it.
_GENERIC_WORDS_TEXT = """
amazing awesome awful bad best better brilliant decent definitely disappointed disappointing
easy excellent experience fantastic fast fine friendly good great happy helpful honestly
horrible kind lovely love nice overall perfect pleased poor quick quickly recommend recommended
rude simple slow slowly super terrible unhappy useless wonderful worse worst
"""
GENERIC_WORDS = frozenset(_GENERIC_WORDS_TEXT.split())

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


def _words(term: str) -> set[str]:
    return set(term.split())


def theme_name(keywords: Mapping[str, float], words: int = NAME_WORDS,
               avoid: Mapping[str, float] | None = None,
               taken: Set[str] = frozenset()) -> str:
    """Two or three key words, heaviest first, no word twice: a term sharing a word with one
    already chosen is skipped ("box" then not "box crushed"), and a generic word ("fast",
    "great") only names a theme that has nothing else. With ``avoid`` (term → the largest
    weight it has in *other* themes) a term is ranked by how much more it belongs to this
    theme; words in ``taken`` (other themes' names) are used only when fewer than two terms
    would be left — so that two themes are not both named after a word they share."""
    avoid = avoid or {}

    def generic(term: str) -> bool:
        return all(word in GENERIC_WORDS for word in term.split())

    ranked = [term for term, _ in sorted(
        keywords.items(), key=lambda item: (generic(item[0]), -(item[1] - avoid.get(item[0], 0.0)),
                                            item[0]))]
    chosen: list[str] = []
    used: set[str] = set()
    for allow_taken in (False, True):
        for term in ranked:
            if len(chosen) == words or (allow_taken and len(chosen) >= 2):
                break
            if term in chosen or _words(term) & used or (not allow_taken and _words(term) & taken):
                continue
            if chosen and generic(term):
                continue  # generic words only when nothing better names the theme
            chosen.append(term)
            used |= _words(term)
    ordered = sorted(chosen, key=ranked.index)
    return " / ".join(ordered)


def _cosine(rows: Any) -> Any:
    import numpy as np

    norms = np.linalg.norm(rows, axis=1)
    norms[norms == 0] = 1.0
    unit = rows / norms[:, None]
    return unit @ unit.T


def _fold_groups(components: Any, weights: Any, vocabulary: Sequence[str]) -> list[list[int]]:
    """Indices of NMF components grouped into near-duplicates: two components fold together
    when their term vectors have cosine ≥ :data:`FOLD_COSINE`, when their text loadings
    (columns of ``weights``) have cosine ≥ :data:`FOLD_TEXT_COSINE`, or when their
    :data:`FOLD_TOP_TERMS` heaviest non-generic single words share :data:`FOLD_SHARED_WORDS`
    (e.g. "arrived / box / crushed" and "damaged / box / crushed"). Transitive (union-find),
    deterministic."""
    n = len(components)
    cosine = _cosine(components)
    shared_texts = _cosine(weights.T)
    words = [j for j, term in enumerate(vocabulary)
             if " " not in term and term not in GENERIC_WORDS]
    tops: list[set[str]] = []
    for component in components:
        order = sorted(words, key=lambda j: (-component[j], vocabulary[j]))
        tops.append({vocabulary[j] for j in order[:FOLD_TOP_TERMS] if component[j] > 0})
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in itertools.combinations(range(n), 2):
        if (cosine[i, j] >= FOLD_COSINE or shared_texts[i, j] >= FOLD_TEXT_COSINE
                or len(tops[i] & tops[j]) >= FOLD_SHARED_WORDS):
            a, b = root(i), root(j)
            parent[max(a, b)] = min(a, b)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(root(i), []).append(i)
    return list(groups.values())


def discover_themes(texts: Sequence[str], max_themes: int = DEFAULT_MAX_THEMES) -> list[Theme]:
    """Up to ``max_themes`` themes found in ``texts``, largest first; fewer (or none) when there
    are too few texts or words to support them, or when components turn out to be near-
    duplicates of each other (they are folded into one). Deterministic for the same input."""
    documents = [text for text in texts if terms(text)]
    n_themes = min(max_themes, len(documents) // MIN_TEXTS_PER_THEME,
                   math.ceil(math.sqrt(len(documents)) * THEMES_PER_SQRT_TEXTS))
    if n_themes < 1:
        return []

    import numpy as np
    from sklearn.decomposition import NMF
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.preprocessing import normalize

    # With enough texts a term must occur in two of them to count: a word used once cannot
    # characterise a group of texts.
    vectorizer = TfidfVectorizer(analyzer=terms, min_df=2 if len(documents) >= 20 else 1,
                                 sublinear_tf=True)
    try:
        matrix = vectorizer.fit_transform(documents)
    except ValueError:  # no term left after min_df
        return []
    vocabulary = [str(term) for term in vectorizer.get_feature_names_out()]
    # More components than distinct texts would only split identical texts apart.
    n_themes = min(n_themes, len(vocabulary), len(set(documents)))
    if n_themes < 1:
        return []
    # Generic evaluative words ("great", "fast", "friendly") say how, not what: damped, they
    # neither pull texts about different things into one theme nor become its top key words.
    scale = np.array([GENERIC_FACTOR if term in GENERIC_WORDS else 1.0 for term in vocabulary])
    matrix = normalize(matrix.multiply(scale[None, :]).tocsr())
    nmf = NMF(n_components=n_themes, init="nndsvda", random_state=RANDOM_STATE, max_iter=1000)
    # A not-quite-converged NMF still gives usable, deterministic components; the themes are a
    # starting point an analyst edits, so the warning is not worth failing on.
    # When a few distinct texts repeat, the fit can be exact and the reconstruction error
    # (which scikit-learn computes as sqrt of a difference, for its convergence report only)
    # rounds to a tiny negative number: numpy's "invalid value in sqrt" is noise there.
    with warnings.catch_warnings(), np.errstate(invalid="ignore"):
        warnings.simplefilter("ignore", ConvergenceWarning)
        weights = nmf.fit_transform(matrix)
    components = nmf.components_

    folded: list[tuple[float, Any]] = []
    for group in _fold_groups(components, weights, vocabulary):
        # Each member scaled to its top term first, so a weak duplicate does not vanish.
        merged = sum(components[i] / max(components[i].max(), 1e-12) for i in group)
        volume = float(sum(weights[:, i].sum() for i in group))
        if float(np.max(merged)) > 0:
            folded.append((volume, merged))

    keyword_sets: list[dict[str, float]] = []
    for _, component in sorted(folded, key=lambda item: -item[0]):
        top = float(component.max())
        order = sorted(range(len(component)), key=lambda j: (-component[j], vocabulary[j]))
        keyword_sets.append({
            vocabulary[j]: round(float(component[j] / top), 3)
            for j in order[:KEYWORDS_PER_THEME]
            if component[j] / top >= MIN_KEYWORD_WEIGHT
        })

    themes: list[Theme] = []
    seen_names: set[str] = set()
    taken: set[str] = set()
    for index, keywords in enumerate(keyword_sets):
        avoid: dict[str, float] = {}
        for other_index, other in enumerate(keyword_sets):
            if other_index != index:
                for term, weight in other.items():
                    avoid[term] = max(weight, avoid.get(term, 0.0))
        name = theme_name(keywords, avoid=avoid, taken=taken)
        if not name or name in seen_names:
            continue
        seen_names.add(name)
        taken |= set(name.replace(" / ", " ").split())
        themes.append(Theme(name, keywords))
    return themes


@functools.lru_cache(maxsize=8192)  # called per key word per text when sorting comments
def normalise_term(term: str) -> str:
    """A keyword as :func:`terms` would produce it, so that one an analyst typed ("Cards",
    "late deliveries") still matches."""
    return " ".join(_normalise(word) for word in term.lower().replace("’", "'").split())


def _matches(text: str, themes: Sequence[Theme],
             threshold: float = ASSIGN_THRESHOLD) -> list[tuple[Theme, float, bool]]:
    """(theme, score, qualifies) per theme: the score is the sum of the weights of the theme's
    keywords present in ``text`` (each counted once); see :func:`assign_themes` for when a
    text qualifies."""
    present = set(terms(text))
    result = []
    for theme in themes:
        weights = sorted(theme.keywords.values(), reverse=True)
        if not weights or weights[0] <= 0:
            result.append((theme, 0.0, False))
            continue
        top = weights[0]
        anchor = weights[min(ANCHOR_TERMS, len(weights)) - 1]  # the weakest of the top terms
        found = {normalise_term(k): w for k, w in theme.keywords.items()
                 if normalise_term(k) in present}
        score = sum(found.values())
        words: set[str] = set()
        for term in found:
            words |= _words(term)
        level = max(threshold * top, min(anchor, ANCHOR_LEVEL * top))
        strong = any(w >= level for w in found.values())
        several = len(words) >= 2 and score >= MULTI_THRESHOLD * top
        result.append((theme, round(score, 4), strong or several))
    return result


def theme_scores(text: str, themes: Sequence[Theme]) -> dict[str, float]:
    """Sum of the weights of each theme's keywords present in ``text`` (each counted once)."""
    return {theme.name: score for theme, score, _ in _matches(text, themes)}


def assign_themes(text: str, themes: Sequence[Theme],
                  threshold: float = ASSIGN_THRESHOLD) -> list[str]:
    """Names of the themes ``text`` belongs to, best first (ties by name), at most
    :data:`MAX_THEMES_PER_TEXT`. A text qualifies for a theme when it contains one strong key
    word — weighing ≥ ``threshold`` × the theme's top weight and either among its
    :data:`ANCHOR_TERMS` heaviest or ≥ :data:`ANCHOR_LEVEL` × the top weight (so a word an
    analyst added at the theme's strongest weight is enough on its own) — or two or more key
    words whose weights add up to :data:`MULTI_THRESHOLD` × the top weight. One shared generic
    word ("fast") is not enough. A second theme is kept only when it scores at least
    :data:`SECOND_THEME_RATIO` × the best."""
    matches = _matches(text, themes, threshold)
    chosen = sorted(((score, theme.name) for theme, score, ok in matches if ok),
                    key=lambda item: (-item[0], item[1]))
    if not chosen:
        return []
    best = chosen[0][0]
    return [name for score, name in chosen[:MAX_THEMES_PER_TEXT]
            if score >= SECOND_THEME_RATIO * best]


def merge_themes(first: Theme, second: Theme, name: str | None = None) -> Theme:
    """One theme with the union of both keyword sets (the larger weight where both have one)."""
    keywords = dict(first.keywords)
    for term, weight in second.keywords.items():
        keywords[term] = max(weight, keywords.get(term, 0.0))
    return Theme(name or theme_name(keywords), keywords)
