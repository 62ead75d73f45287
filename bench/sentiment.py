"""Sentiment: held-out quality against VADER and throughput on one core, in one run.

    .venv/bin/python bench/sentiment.py [--data DIR] [--rounds 5] [--sparse-only]
                                        [--without-synthetic] [--json]

Prints the machine, the evaluation table (ours vs VADER on an unseen review domain + an unseen
intent corpus, three rotations; see ``cxm.text.evaluate``) and texts/s of the shipped model and
of VADER on the same texts, each the median of ``--rounds`` timed passes with BLAS/OpenMP pinned
to one thread (and the process pinned to one CPU where the OS allows). ``--sparse-only`` also
evaluates the previous design (no static embeddings) in the same run, for comparison;
``--without-synthetic`` evaluates without our synthetic CX comments in training.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

# One thread for numpy's BLAS before numpy is imported (threadpoolctl below as well).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info  # noqa: E402


def _throughput(classify: Callable[[str], Any], texts: Sequence[str], rounds: int) -> float:
    for text in texts[:200]:  # warm-up: caches, lazy loading
        classify(text)
    rates = []
    for _ in range(rounds):
        start = time.perf_counter()
        for text in texts:
            classify(text)
        rates.append(len(texts) / (time.perf_counter() - start))
    return statistics.median(rates)


def _batch_throughput(classify_many: Callable[[Sequence[str]], Any], texts: Sequence[str],
                      rounds: int, batch: int = 256) -> float:
    """Texts/s of a batch classifier fed ``batch`` texts a call (how ``cxm text analyze`` and
    theme sorting call it)."""
    classify_many(texts[:batch])  # warm-up
    rates = []
    for _ in range(rounds):
        start = time.perf_counter()
        for first in range(0, len(texts), batch):
            classify_many(texts[first:first + batch])
        rates.append(len(texts) / (time.perf_counter() - start))
    return statistics.median(rates)


def main() -> int:
    from threadpoolctl import threadpool_limits

    from cxm.text import evaluate, sentiment, train

    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=train.default_data_dir())
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sparse-only", action="store_true",
                        help="also evaluate the sparse-only design (format 1, no embeddings)")
    parser.add_argument("--without-synthetic", action="store_true",
                        help="also evaluate without our synthetic CX comments in training")
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")
    args = parser.parse_args()
    if not args.data.is_dir():
        print(f"data directory not found: {args.data}", file=sys.stderr)
        return 2

    with contextlib.suppress(AttributeError, OSError):  # Linux only
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    machine = machine_info(None)
    print(f"machine: {machine['cpu']}, {machine['cores']} cores, Python {machine['python']}, "
          f"{machine['os']}, load {machine['loadavg_at_start']}, commit {machine['git_commit']}, "
          f"src {machine['src_digest']}")

    with threadpool_limits(limits=1):
        started = time.perf_counter()
        report = evaluate.run_evaluation(args.data)
        evaluation_seconds = time.perf_counter() - started
        print(f"\nheld-out evaluation ({evaluation_seconds:.1f} s, training included):\n")
        print("\n".join(evaluate.markdown_table(report)))
        sparse_report = None
        if args.sparse_only:
            sparse_report = evaluate.run_evaluation(args.data, use_embeddings=False)
            print("\nsparse-only design (no static embeddings), same rotations:\n")
            print("\n".join(evaluate.markdown_table(sparse_report)))

        no_synthetic_report = None
        if args.without_synthetic:
            no_synthetic_report = evaluate.run_evaluation(args.data, synthetic=False)
            print("\nwithout the synthetic CX comments in training, same rotations:\n")
            print("\n".join(evaluate.markdown_table(no_synthetic_report)))

        corpora = train.load_corpora(args.data)
        texts = [e.text for e in train.test_set(corpora, train.REVIEW_DOMAINS
                                                + train.INTENT_DOMAINS)]
        model = sentiment.load_model()
        cascade = sentiment.load_cascade()
        vader = evaluate.vader_labeller()
        ours_rate = _batch_throughput(cascade.classify_many, texts, args.rounds)
        single_rate = _throughput(cascade.classify, texts, args.rounds)
        linear_rate = _throughput(model.classify, texts, args.rounds)
        vader_rate = _throughput(vader, texts, args.rounds)
        routed = cascade.routed(texts)
    model_kb = sum(path.stat().st_size for path in (
        sentiment.MODEL_PATH, sentiment.EMBEDDINGS_PATH, sentiment.TOKENIZER_PATH)) / 1024
    transformer_kb = cascade.transformer.model_path.stat().st_size / 1024
    print(f"\nthroughput on one core, {len(texts):,} texts (all held-out test texts), median of "
          f"{args.rounds} rounds; the shipped cascade sends {routed:.0%} of them to the "
          "transformer:")
    print(f"| system | texts/s |\n|---|---|\n"
          f"| **ours: cascade, 256 texts a call** (`classify_many`) | **{ours_rate:,.0f}** |\n"
          f"| ours: cascade, one text a call (`classify`) | {single_rate:,.0f} |\n"
          f"| linear model alone (numpy + tokenizers, {model_kb:,.0f} KB) | {linear_rate:,.0f} |\n"
          f"| (transformer file: {transformer_kb:,.0f} KB, ONNX Runtime, one thread) | |\n"
          f"| VADER 3.3.2 | {vader_rate:,.0f} |")
    target = "met" if ours_rate >= 1000 else "MISSED"
    print(f"target ≥ 1,000 texts/s on one core: {target}")
    if args.json:
        print(json.dumps({"machine": machine, "evaluation": report.as_dict(),
                          "sparse_only_evaluation":
                              sparse_report.as_dict() if sparse_report else None,
                          "without_synthetic_evaluation":
                              no_synthetic_report.as_dict() if no_synthetic_report else None,
                          "texts_per_second": {"ours": round(ours_rate),
                                               "ours_one_at_a_time": round(single_rate),
                                               "linear": round(linear_rate),
                                               "vader": round(vader_rate)},
                          "routed_to_transformer": round(routed, 4),
                          "texts": len(texts), "rounds": args.rounds}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
