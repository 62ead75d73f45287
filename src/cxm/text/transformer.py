"""A fine-tuned small transformer for sentiment, run with ONNX Runtime on one thread.

The shipped file (``models/sentiment_transformer.onnx``) is all-MiniLM-L6-v2 cut to its first
four layers, fine-tuned with a mean-pooling + linear head on the same labelled corpora as the
linear model (``bench/sentiment_teacher.py finetune all banking77 --layers 4``), exported and
quantised to int8 (``… export``); the card beside it (``sentiment_transformer.json``) names the
data, the licences and the held-out scores. It reads WordPiece ids from the shipped
``tokenizer.json`` (the same vocabulary) and answers class probabilities in :data:`LABELS`
order. No torch at run time: ``onnxruntime`` and ``tokenizers`` only.

Texts are cut to ``max_tokens`` word pieces (survey comments and support messages are a
sentence or two; the first 64 pieces carry the sentiment of nearly all of them) and run in
batches of similar length, so padding costs little.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

MODELS_DIR = Path(__file__).resolve().parent / "models"
MODEL_PATH = MODELS_DIR / "sentiment_transformer.onnx"
TOKENIZER_PATH = MODELS_DIR / "tokenizer.json"
LABELS: tuple[str, str, str] = ("negative", "neutral", "positive")
MAX_TOKENS = 64
BATCH = 16  # measured: 16 texts a run beat 32 (+7 %) and 64 (+26 %) on one core


class TransformerClassifier:
    """Class probabilities of texts from an ONNX sentiment model (inputs ``ids`` and ``mask``,
    output probabilities ``(batch, 3)``). ``threads`` is ONNX Runtime's intra-op thread count:
    one by default, so that web and worker processes don't fight over the cores."""

    def __init__(self, model_path: Path = MODEL_PATH, *, tokenizer_path: Path = TOKENIZER_PATH,
                 threads: int = 1, max_tokens: int = MAX_TOKENS) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(
            str(model_path), options, providers=["CPUExecutionProvider"])
        self._tokenizer = Tokenizer.from_file(str(tokenizer_path))
        # The file pads and truncates for a fixed-width export; here batches are cut to the
        # longest text of each batch instead.
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_tokens)
        self.model_path = model_path
        self.card = _card(model_path)

    def probabilities(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        out = np.zeros((len(texts), len(LABELS)), dtype=np.float32)
        if not texts:
            return out
        encodings = [e.ids for e in self._tokenizer.encode_batch([_closed(t) for t in texts])]
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i]))
        for start in range(0, len(order), BATCH):
            rows = order[start:start + BATCH]
            width = max(len(encodings[i]) for i in rows)
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for row, index in enumerate(rows):
                pieces = encodings[index]
                ids[row, :len(pieces)] = pieces
                mask[row, :len(pieces)] = 1
            out[rows] = self._session.run(None, {"ids": ids, "mask": mask})[0]
        return out


def _closed(text: str) -> str:
    """The text with a full stop after a last word left open. Among the training corpora only
    the voice-assistant requests (CLINC150, all neutral) end without punctuation, so the
    transformer learnt "no final punctuation → neutral": "My refund never arrived, I'm furious"
    came out neutral, the same with a full stop negative."""
    stripped = text.rstrip()
    return stripped + "." if stripped and stripped[-1].isalnum() else text


def _card(model_path: Path) -> dict[str, Any]:
    path = model_path.with_suffix(".json")
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


@functools.cache
def load(model_path: Path = MODEL_PATH) -> TransformerClassifier:
    """The shipped model, loaded once per process (and per path)."""
    if not model_path.exists():
        raise FileNotFoundError(
            f"sentiment transformer missing at {model_path}; build it with "
            "bench/sentiment_teacher.py (see its docstring)")
    return TransformerClassifier(model_path)
