"""Rule-based emotion tagging from a small hand-written lexicon (written for this package).

Transparent by design: every cue is listed below, and :func:`detect` says which cues fired.
It has **not** been evaluated on labelled emotion data (none with a usable licence is at hand);
the unit tests pin hand-picked examples only.

Rules:

* A cue is a word or a phrase of up to four words, matched on lower-cased words (apostrophes
  dropped: "don't" → "dont"); phrases win over the words inside them.
* Negation: a negator ("not", "never", "no", "don't", …) up to three words before a cue, in the
  same clause, cancels it — "not angry" is no anger. A negated joy or gratitude cue ("not happy",
  "not helpful") counts half towards *frustration* instead, the usual meaning in customer text.
* An intensifier ("very", "so", "extremely", …) right before a cue ×1.5; "!" anywhere ×1.2.
* The emotion with the highest total wins; ties go to the earlier emotion in ``EMOTIONS``
  (negative ones first: in customer care a missed complaint costs more than a missed compliment).
  No cue: ``"none"``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

EMOTIONS: tuple[str, ...] = (
    "anger", "frustration", "fear", "sadness", "surprise", "gratitude", "joy",
)
NONE = "none"

LEXICON: dict[str, tuple[str, ...]] = {
    "anger": (
        "angry", "anger", "furious", "outraged", "outrageous", "livid", "mad", "rage", "hate",
        "hated", "hates", "disgusted", "disgusting", "disgrace", "disgraceful", "unacceptable",
        "ridiculous", "insulting", "insult", "rude", "scam", "scammed", "ripoff", "rip off",
        "fraud", "liar", "lied", "lying", "cheated", "robbed", "appalling", "appalled",
        "pathetic", "worst", "terrible", "horrible", "awful", "atrocious", "shameful",
        "how dare", "fed up", "sick of", "never again", "sue", "lawyer", "incompetent",
        "despicable",
    ),
    "frustration": (
        "frustrated", "frustrating", "frustration", "annoyed", "annoying", "annoyance",
        "irritated", "irritating", "waiting", "waited", "still waiting", "still not",
        "again and again", "keeps", "kept", "every time", "useless", "hopeless", "pointless",
        "waste", "wasted", "waste of time", "slow", "delay", "delayed", "late", "confusing",
        "confused", "complicated", "hassle", "struggle", "struggling", "stuck", "broken",
        "doesnt work", "didnt work", "not working", "stopped working", "cant", "unable",
        "impossible", "on hold", "no response", "no reply", "nobody", "ignored", "ignoring",
        "tired of", "why is it", "why does", "why do i", "disappointing", "disappointed",
        "disappointment", "inconvenient", "inconvenience", "problem", "issue", "issues",
        "error", "fail", "failed", "fails", "failure", "unhelpful", "overcharged",
        "overpriced", "charged twice",
    ),
    "fear": (
        "afraid", "scared", "fear", "frightened", "terrified", "worried", "worry", "worrying",
        "anxious", "anxiety", "nervous", "panic", "panicking", "concerned", "concern",
        "alarming", "unsafe", "danger", "dangerous", "risk", "risky", "stolen", "hacked",
        "suspicious", "fraudulent", "unauthorized", "unauthorised", "compromised",
        "threat", "threatened",
    ),
    "sadness": (
        "sad", "sadly", "unhappy", "upset", "heartbroken", "depressed", "depressing",
        "miserable", "sorry", "regret", "regretted", "unfortunately", "lonely", "cry",
        "crying", "cried", "tears", "grief", "gloomy", "let down", "let me down",
        "hurt", "hurts",
    ),
    "surprise": (
        "surprised", "surprising", "surprise", "unexpected", "unexpectedly", "shocked",
        "shocking", "astonished", "amazed", "wow", "whoa", "cant believe", "didnt expect",
        "out of nowhere", "suddenly", "speechless", "stunned",
    ),
    "gratitude": (
        "thank", "thanks", "thank you", "thankful", "grateful", "gratitude", "appreciate",
        "appreciated", "appreciation", "kudos", "cheers", "much obliged", "helpful",
        "went above and beyond", "above and beyond", "lifesaver",
    ),
    "joy": (
        "happy", "glad", "delighted", "pleased", "love", "loved", "loving", "lovely",
        "enjoy", "enjoyed", "enjoying", "great", "excellent", "amazing", "awesome", "fantastic",
        "wonderful", "perfect", "perfectly", "brilliant", "superb", "outstanding", "excited",
        "exciting", "thrilled", "pleasure", "satisfied", "impressed", "best", "fun", "good",
        "nice", "smooth", "easy", "recommend", "friendly", "fast", "quick", "beautiful",
    ),
}

NEGATORS = frozenset({
    "not", "no", "never", "nor", "neither", "nobody", "nothing", "none", "cannot", "without",
    "hardly", "barely", "dont", "doesnt", "didnt", "isnt", "wasnt", "arent", "werent", "wont",
    "wouldnt", "cant", "couldnt", "shouldnt", "havent", "hasnt", "hadnt", "aint",
})
INTENSIFIERS = frozenset({
    "very", "so", "really", "extremely", "incredibly", "absolutely", "totally", "completely",
    "utterly", "super", "truly", "beyond", "most",
})
NEGATION_WINDOW = 3
NEGATED_POSITIVE_TO_FRUSTRATION = 0.5
INTENSIFIER_FACTOR = 1.5
EXCLAMATION_FACTOR = 1.2
_POSITIVE = frozenset({"joy", "gratitude"})

_WORD_RE = re.compile(r"[a-z]+(?:'[a-z]+)*|[.!?,;:]")
_CLAUSE_BREAK = frozenset({".", "!", "?", ",", ";", ":", "but", "however", "although"})
_MAX_PHRASE = max(len(cue.split()) for cues in LEXICON.values() for cue in cues)
_CUES: dict[tuple[str, ...], str] = {
    tuple(cue.split()): emotion for emotion, cues in LEXICON.items() for cue in cues
}


@dataclass(frozen=True)
class EmotionResult:
    label: str  # one of EMOTIONS or "none"
    scores: dict[str, float] = field(default_factory=dict)  # emotion -> total, only those > 0
    cues: tuple[str, ...] = ()  # the cues that fired, as written in the text ("not happy")


def _words(text: str) -> list[str]:
    text = text.lower().replace("’", "'").replace("‘", "'")
    return [token.replace("'", "") for token in _WORD_RE.findall(text)]


def detect(text: str) -> EmotionResult:
    words = _words(text)
    scores: dict[str, float] = {}
    cues: list[str] = []
    # Cue matches (longest phrase first), each remembering where it starts.
    i = 0
    while i < len(words):
        for size in range(min(_MAX_PHRASE, len(words) - i), 0, -1):
            emotion = _CUES.get(tuple(words[i:i + size]))
            if emotion is None:
                continue
            negated = _negated(words, i)
            weight = INTENSIFIER_FACTOR if i > 0 and words[i - 1] in INTENSIFIERS else 1.0
            phrase = " ".join(words[i:i + size])
            # A negator that is itself a cue ("cant", "nobody") must not cancel itself.
            if negated and phrase not in NEGATORS:
                if emotion in _POSITIVE:
                    target = "frustration"
                    weight *= NEGATED_POSITIVE_TO_FRUSTRATION
                else:
                    i += size
                    break
                cues.append(f"not {phrase}")
            else:
                target = emotion
                cues.append(phrase)
            scores[target] = scores.get(target, 0.0) + weight
            i += size
            break
        else:
            i += 1
    if "!" in words:
        scores = {emotion: value * EXCLAMATION_FACTOR for emotion, value in scores.items()}
    if not scores:
        return EmotionResult(NONE, {}, tuple(cues))
    best = max(EMOTIONS, key=lambda emotion: (scores.get(emotion, 0.0), -EMOTIONS.index(emotion)))
    return EmotionResult(best, {e: round(v, 3) for e, v in scores.items()}, tuple(cues))


def _negated(words: list[str], start: int) -> bool:
    """Whether a negator stands up to NEGATION_WINDOW words before ``start``, same clause."""
    for j in range(start - 1, max(-1, start - 1 - NEGATION_WINDOW), -1):
        if words[j] in _CLAUSE_BREAK:
            return False
        if words[j] in NEGATORS:
            return True
    return False


def label(text: str) -> str:
    return detect(text).label
