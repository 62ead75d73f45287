"""Train the shipped sentiment model: ``python -m cxm.text.train --data ../shared/data``.

Reads the public corpora under the data directory (see ``load_corpora``), chooses the
regularisation strength by leave-one-domain-out inside the training data, fits a multinomial
logistic regression on :func:`cxm.text.sentiment.features`, and writes ``models/sentiment.npz``
and ``models/MODEL_CARD.md`` (data, licences, date, held-out metrics from
:mod:`cxm.text.evaluate`). Seeds are fixed: the same data gives the same file.

Needs scikit-learn and scipy (training only) and vaderSentiment (its MIT lexicon becomes the
model's lexicon features, and it is the evaluation baseline). Inference needs neither.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from cxm.text import sentiment
from cxm.text.sentiment import LABELS, SentimentModel

SEED = 20260101
REVIEW_DOMAINS: tuple[str, ...] = ("amazon", "yelp", "imdb")
INTENT_DOMAINS: tuple[str, ...] = ("banking77", "clinc150", "bitext")
# Neutral texts drawn from each intent corpus. A held-out test set takes 500, so its three classes
# are balanced (each review corpus gives 500 + 500); training takes 1,500 for more varied
# requests, and class weights rebalance the classes.
NEUTRAL_TEST_PER_CORPUS = 500
NEUTRAL_TRAIN_PER_CORPUS = 1500
C_GRID: tuple[float, ...] = (1.0, 3.0, 10.0, 30.0)
TARGET_MARGIN = 0.20  # the target over VADER's macro-F1 on an unseen domain
MIN_FEATURE_COUNT = 2  # a feature seen in one training text only is noise, and bloats the file

SOURCES: dict[str, dict[str, str]] = {
    "amazon": {"path": "sentiment_labelled_sentences/amazon_cells_labelled.txt",
               "name": "UCI Sentiment Labelled Sentences — Amazon (Kotzias et al. 2015)",
               "licence": "CC BY 4.0"},
    "yelp": {"path": "sentiment_labelled_sentences/yelp_labelled.txt",
             "name": "UCI Sentiment Labelled Sentences — Yelp (Kotzias et al. 2015)",
             "licence": "CC BY 4.0"},
    "imdb": {"path": "sentiment_labelled_sentences/imdb_labelled.txt",
             "name": "UCI Sentiment Labelled Sentences — IMDb (Kotzias et al. 2015)",
             "licence": "CC BY 4.0"},
    "banking77": {"path": "banking77",
                  "name": "BANKING77 (PolyAI, Casanueva et al. 2020), train + test",
                  "licence": "CC BY 4.0"},
    "clinc150": {"path": "clinc150/data_full.json",
                 "name": "CLINC150 (Larson et al. 2019), in-scope, small_talk domain excluded",
                 "licence": "CC BY 3.0"},
    "bitext": {"path": "bitext_customer_support/"
                       "Bitext_Sample_Customer_Support_Training_Dataset.csv",
               "name": "Bitext customer-support sample (synthetic), rows tagged offensive (W) "
                       "and the complaint intent excluded",
               "licence": "CDLA-Sharing-1.0"},
}


@dataclass(frozen=True)
class Example:
    text: str
    label: str  # one of LABELS
    domain: str


def default_data_dir() -> Path:
    """``$CXM_SHARED_DATA``, else ``../shared/data`` beside the repository."""
    env = os.environ.get("CXM_SHARED_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / ".." / "shared" / "data"


# --- corpora ------------------------------------------------------------------------------------


def _load_review(path: Path, domain: str) -> list[Example]:
    # "sentence<TAB>score" with a header, CRLF; sentences may contain quotes (QUOTE_NONE).
    examples = []
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader)
        if [h.strip() for h in header] != ["sentence", "score"]:
            raise ValueError(f"{path}: unexpected header {header!r}")
        for row in reader:
            if len(row) != 2:
                continue
            text, score = row[0].strip(), row[1].strip()
            examples.append(Example(text, "positive" if score == "1" else "negative", domain))
    return examples


def _load_banking77(folder: Path) -> list[str]:
    texts: list[str] = []
    for name in ("train.csv", "test.csv"):
        with (folder / name).open(encoding="utf-8", newline="") as handle:
            texts.extend(row["text"].strip() for row in csv.DictReader(handle))
    return texts


def _load_clinc150(path: Path) -> list[str]:
    # The small_talk domain (greetings, thanks, jokes, "are you a bot") is chit-chat with a
    # voice assistant, not a neutral customer request, and "thank_you" is plainly positive.
    data = json.loads(path.read_text(encoding="utf-8"))
    domains = json.loads((path.parent / "domains.json").read_text(encoding="utf-8"))
    excluded = set(domains["small_talk"])
    return [text.strip() for split in ("train", "val", "test")
            for text, intent in data[split] if intent not in excluded]


def _load_bitext(path: Path) -> list[str]:
    # Bitext writes each request in several "language variations"; tag W adds swearing
    # ("cancel the damn order") and the complaint intent is an unhappy customer: neither is
    # neutral, so both are left out by rule (the tags, not by looking at predictions).
    with path.open(encoding="utf-8", newline="") as handle:
        return [row["instruction"].strip() for row in csv.DictReader(handle)
                if "W" not in row["tags"] and row["intent"] != "complaint"]


def load_corpora(data_dir: Path) -> dict[str, list[Example]]:
    """Every labelled example by domain. Reviews keep their pos/neg label; intent-corpus
    utterances are all labelled neutral (the whole corpus; sample with :func:`sample`)."""
    corpora: dict[str, list[Example]] = {}
    for domain in REVIEW_DOMAINS:
        corpora[domain] = _load_review(data_dir / SOURCES[domain]["path"], domain)
    loaders = {"banking77": _load_banking77, "clinc150": _load_clinc150,
               "bitext": _load_bitext}
    for domain, loader in loaders.items():
        texts = sorted(set(loader(data_dir / SOURCES[domain]["path"])) - {""})
        corpora[domain] = [Example(text, "neutral", domain) for text in texts]
    return corpora


def sample(examples: Sequence[Example], n: int, seed: int = SEED) -> list[Example]:
    """A fixed pseudo-random sample of ``n`` examples (all of them if fewer)."""
    if len(examples) <= n:
        return list(examples)
    return random.Random(f"{seed}:{examples[0].domain}").sample(list(examples), n)


def dataset(corpora: dict[str, list[Example]], domains: Sequence[str], *, neutral_per_corpus: int,
            seed: int = SEED) -> list[Example]:
    """Reviews whole, intent corpora sampled to ``neutral_per_corpus`` each."""
    result: list[Example] = []
    for domain in domains:
        if domain in INTENT_DOMAINS:
            result.extend(sample(corpora[domain], neutral_per_corpus, seed))
        else:
            result.extend(corpora[domain])
    return result


def training_set(corpora: dict[str, list[Example]], domains: Sequence[str]) -> list[Example]:
    return dataset(corpora, domains, neutral_per_corpus=NEUTRAL_TRAIN_PER_CORPUS)


def test_set(corpora: dict[str, list[Example]], domains: Sequence[str]) -> list[Example]:
    return dataset(corpora, domains, neutral_per_corpus=NEUTRAL_TEST_PER_CORPUS)


def vader_lexicon() -> dict[str, float]:
    """VADER's valence lexicon (MIT), read from the installed vaderSentiment package. Only
    single-token entries that our tokenizer can produce are kept."""
    try:
        import vaderSentiment
    except ImportError as error:  # pragma: no cover - the test extra installs it
        raise RuntimeError("training needs vaderSentiment (pip install -e '.[test]')") from error
    path = Path(vaderSentiment.__file__).parent / "vader_lexicon.txt"
    lexicon: dict[str, float] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if len(parts) < 2:
            continue
        word = parts[0].strip().lower()
        if sentiment.tokenize(word) == [word]:
            lexicon[word] = float(parts[1])
    return lexicon


# --- fitting ------------------------------------------------------------------------------------


FeatureCache = dict[str, dict[str, float]]


def fit(examples: Sequence[Example], lexicon: dict[str, float], c: float,
        cache: FeatureCache | None = None) -> SentimentModel:
    """Multinomial logistic regression on the L2-normalised features of ``examples``.
    ``cache`` (text -> raw features, for this ``lexicon`` only) saves recomputing them when the
    same texts are fitted several times during model selection."""
    from scipy import sparse
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    cache = cache if cache is not None else {}
    raw = []
    for example in examples:
        values = cache.get(example.text)
        if values is None:
            values = cache[example.text] = sentiment.features(example.text, lexicon)
        raw.append(values)
    counts: dict[str, int] = {}
    for values in raw:
        for key in values:
            counts[key] = counts.get(key, 0) + 1
    lexical = {sentiment.LEX_POSITIVE, sentiment.LEX_NEGATIVE, sentiment.EXCLAMATION}
    keys = sorted(k for k, n in counts.items() if n >= MIN_FEATURE_COUNT or k in lexical)
    vocabulary = {key: i for i, key in enumerate(keys)}
    rows: list[int] = []
    cols: list[int] = []
    data: list[float] = []
    for row, values in enumerate(raw):
        known = [(vocabulary[k], v) for k, v in values.items() if k in vocabulary]
        norm = float(np.sqrt(sum(v * v for _, v in known))) or 1.0
        for col, value in known:
            rows.append(row)
            cols.append(col)
            data.append(value / norm)
    matrix = sparse.csr_matrix((data, (rows, cols)), shape=(len(raw), len(keys)))
    target = np.asarray([LABELS.index(example.label) for example in examples])
    classifier = LogisticRegression(C=c, solver="newton-cg", max_iter=1000, random_state=SEED,
                                    class_weight="balanced")
    # A model that has not converged is not one we want to ship: fail loudly instead.
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        classifier.fit(matrix, target)
    weights = np.zeros((len(keys), len(LABELS)), dtype=np.float32)
    bias = np.zeros(len(LABELS), dtype=np.float32)
    for position, label_index in enumerate(classifier.classes_):
        weights[:, label_index] = classifier.coef_[position]
        bias[label_index] = classifier.intercept_[position]
    return SentimentModel(vocabulary=vocabulary, weights=weights, bias=bias, labels=LABELS,
                          lexicon=lexicon, metadata={"C": c, "n_train": len(examples)})


def choose_c(corpora: dict[str, list[Example]], review_domains: Sequence[str],
             intent_domains: Sequence[str], lexicon: dict[str, float],
             cache: FeatureCache | None = None) -> float:
    """The C with the best mean macro-F1 when each training review domain (paired with one
    training intent corpus) is held out in turn — model selection never sees the test domain."""
    from cxm.text import evaluate

    pairs = list(zip(review_domains, intent_domains, strict=True))
    if len(pairs) < 2:
        return C_GRID[len(C_GRID) // 2]
    best_c, best_f1 = C_GRID[0], -1.0
    for c in C_GRID:
        scores = []
        for held_out in pairs:
            train_domains = [d for pair in pairs if pair != held_out for d in pair]
            model = fit(training_set(corpora, train_domains), lexicon, c, cache)
            test = test_set(corpora, held_out)
            predictions = [model.classify(example.text).label for example in test]
            scores.append(evaluate.scores([e.label for e in test], predictions)["macro_f1"])
        mean = float(np.mean(scores))
        if mean > best_f1 + 1e-9:
            best_c, best_f1 = c, mean
    return best_c


# --- command ------------------------------------------------------------------------------------


def _model_card(model: SentimentModel, report: Any, path: Path) -> str:
    from cxm.text import evaluate

    size_kb = path.stat().st_size / 1024
    lines = [
        "# Sentiment model card",
        "",
        f"- File: `models/{path.name}` ({size_kb:,.0f} KB), format {sentiment.FORMAT_VERSION}, "
        "read with numpy only.",
        f"- Trained: {model.metadata['trained_at']} by `python -m cxm.text.train` "
        f"(seed {SEED}; scikit-learn {model.metadata['sklearn']}, numpy "
        f"{model.metadata['numpy']}).",
        "- Model: multinomial logistic regression (scikit-learn, newton-cg), "
        f"C = {model.metadata['C']} chosen by leave-one-domain-out inside the training data; "
        f"{len(model.vocabulary):,} features (word unigrams/bigrams with negation marking and "
        "contrast weighting, 2 lexicon-valence features, exclamation count), features seen in "
        f"fewer than {MIN_FEATURE_COUNT} training texts dropped.",
        f"- Labels: {', '.join(LABELS)}; score = P(positive) − P(negative).",
        "",
        "## Training data (all six corpora; the evaluation below uses models trained without the "
        "held-out ones)",
        "",
        "| corpus | texts used | label | licence |",
        "|---|---|---|---|",
    ]
    for domain, count in model.metadata["train_counts"].items():
        label = "neutral" if domain in INTENT_DOMAINS else "positive / negative"
        lines.append(f"| {SOURCES[domain]['name']} | {count:,} | {label} | "
                     f"{SOURCES[domain]['licence']} |")
    lines += [
        "",
        "Lexicon: VADER `vader_lexicon.txt` (vaderSentiment 3.3.2, MIT licence, © C.J. Hutto), "
        f"{len(model.lexicon):,} single-word entries copied into the model file.",
        "",
        "**Neutral labels are derived, not annotated**: every utterance of an intent corpus "
        "(customer requests to a bank / assistant / shop) is labelled neutral. Bitext rows tagged "
        "as offensive language (W) and its `complaint` intent are excluded, as is CLINC150's "
        "small_talk domain. Some remaining requests are mildly negative in tone (\"my card still "
        "hasn't arrived\"); they count as neutral here. Intent utterances are questions/commands "
        "and reviews are statements, so part of what separates neutral from the rest is genre.",
        "",
        "## Held-out evaluation (leave one review domain + one intent corpus out)",
        "",
    ]
    lines += evaluate.markdown_table(report)
    worst = min(r.margin for r in report.rotations)
    verdict = "met" if worst >= TARGET_MARGIN else "**missed**"
    lines += ["", f"Target: macro-F1 at least {TARGET_MARGIN:+.2f} above VADER on each unseen "
              f"domain — {verdict} (smallest margin {worst:+.3f}, mean "
              f"{report.mean('ours', 'macro_f1') - report.mean('vader', 'macro_f1'):+.3f})."]
    lines += ["", f"Data directory at training time: `{model.metadata['data_dir']}`.", ""]
    return "\n".join(lines)


def train(data_dir: Path, out: Path) -> tuple[SentimentModel, Any]:
    import sklearn

    from cxm.text import evaluate

    corpora = load_corpora(data_dir)
    lexicon = vader_lexicon()
    report = evaluate.run_evaluation(data_dir, corpora=corpora, lexicon=lexicon)
    cache: FeatureCache = {}
    c = choose_c(corpora, REVIEW_DOMAINS, INTENT_DOMAINS, lexicon, cache)
    examples = training_set(corpora, REVIEW_DOMAINS + INTENT_DOMAINS)
    model = fit(examples, lexicon, c, cache)
    counts: dict[str, int] = {}
    for example in examples:
        counts[example.domain] = counts.get(example.domain, 0) + 1
    model.metadata.update({
        "trained_at": datetime.now(UTC).strftime("%Y-%m-%d"),
        "seed": SEED,
        "sklearn": sklearn.__version__,
        "numpy": np.__version__,
        "train_counts": counts,
        "data_dir": str(data_dir),
        "sources": {d: SOURCES[d] for d in counts},
        "lexicon": "VADER vader_lexicon.txt (vaderSentiment 3.3.2), MIT",
    })
    model.save(out)
    (out.parent / "MODEL_CARD.md").write_text(_model_card(model, report, out), encoding="utf-8")
    return model, report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cxm.text.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=default_data_dir(),
                        help="the shared data directory (default: $CXM_SHARED_DATA or "
                             "../shared/data)")
    parser.add_argument("--out", type=Path, default=sentiment.MODEL_PATH,
                        help="model file to write (MODEL_CARD.md goes beside it)")
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        print(f"data directory not found: {args.data}", file=sys.stderr)
        return 2
    model, report = train(args.data.resolve(), args.out)
    from cxm.text import evaluate

    print("\n".join(evaluate.markdown_table(report)))
    print(f"\nwrote {args.out} ({args.out.stat().st_size / 1024:,.0f} KB, "
          f"{len(model.vocabulary):,} features, C={model.metadata['C']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
