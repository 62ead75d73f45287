"""Regenerate ``cx_comments.json``: our own synthetic CX comments with known sentiment.

    .venv/bin/python src/cxm/text/data/make_cx_comments.py

Source: the demo generator's survey/review comment tables in ``src/cxm/demo/generator.py``
(``_COMMENT_PHRASES``: theme -> "pos"/"neu"/"neg" -> templates with ``{product}``, ``{late}``,
``{agent}``; ``_OPENERS`` / ``_CLOSERS`` per sentiment; product names from ``_CATALOG_SOURCE``;
agent names from ``_AGENTS``), written for this project. The tables are read with ``ast``
(``ast.literal_eval`` of the assignments) — **not imported**: ``cxm.text`` sits below
``cxm.demo`` in the import-linter layers, and training only needs the resulting JSON.

Every template is filled ``FILLINGS`` times, deterministically (``random.Random`` seeded with a
string per template), each with a product, a number of days late, an agent, an opener and a
closer of the same sentiment, joined as the generator does; duplicates are dropped. Labels:
pos -> positive, neu -> neutral (the demo's "neu" comments are mixed/lukewarm opinions such as
"support was polite but slow"), neg -> negative.
"""

from __future__ import annotations

import ast
import hashlib
import json
import random
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
GENERATOR = HERE.parents[1] / "demo" / "generator.py"
OUT = HERE / "cx_comments.json"
FILLINGS = 4
SEED = 20260101
LABELS = {"pos": "positive", "neu": "neutral", "neg": "negative"}
TABLES = ("_COMMENT_PHRASES", "_OPENERS", "_CLOSERS", "_CATALOG_SOURCE", "_AGENTS")


def read_tables(path: Path = GENERATOR) -> dict[str, Any]:
    """The literal tables named in ``TABLES``, from the generator's source (no import)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: dict[str, Any] = {}
    for node in tree.body:
        target = value = None
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            target, value = node.target.id, node.value
        elif (isinstance(node, ast.Assign) and len(node.targets) == 1
              and isinstance(node.targets[0], ast.Name)):
            target, value = node.targets[0].id, node.value
        if target in TABLES and value is not None:
            found[target] = ast.literal_eval(value)
    missing = set(TABLES) - set(found)
    if missing:
        raise ValueError(f"{path}: tables not found: {sorted(missing)}")
    return found


def fill(tables: dict[str, Any], fillings: int = FILLINGS) -> list[dict[str, str]]:
    products = [name.lower() for _, _, items in tables["_CATALOG_SOURCE"] for name, _ in items]
    agents = list(tables["_AGENTS"])
    rows: list[dict[str, str]] = []
    seen: set[str] = set()
    for theme, by_sentiment in tables["_COMMENT_PHRASES"].items():
        for key, templates in by_sentiment.items():
            for index, template in enumerate(templates):
                rng = random.Random(f"{SEED}:{theme}:{key}:{index}")
                for _ in range(fillings):
                    phrase = template.format(product=rng.choice(products),
                                             late=rng.randint(2, 9), agent=rng.choice(agents))
                    body = phrase[0].upper() + phrase[1:] + "."
                    opener = rng.choice(tables["_OPENERS"][key])
                    if opener and not opener.endswith((". ", "! ", ": ")):
                        body = body[0].lower() + body[1:]
                    text = (opener + body + rng.choice(tables["_CLOSERS"][key])).strip()
                    if text not in seen:
                        seen.add(text)
                        rows.append({"text": text, "label": LABELS[key], "theme": theme})
    return rows


def main() -> int:
    source = GENERATOR.read_bytes()
    rows = fill(read_tables())
    document = {
        "description": "cxm synthetic CX comments: the demo generator's comment templates "
                       "filled in; synthetic, written for this project, known sentiment",
        "source": "src/cxm/demo/generator.py (_COMMENT_PHRASES, _OPENERS, _CLOSERS, "
                  "_CATALOG_SOURCE, _AGENTS)",
        "source_sha256": hashlib.sha256(source).hexdigest(),
        "generated_by": "src/cxm/text/data/make_cx_comments.py",
        "fillings_per_template": FILLINGS,
        "seed": SEED,
        "texts": rows,
    }
    OUT.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    counts = {label: sum(r["label"] == label for r in rows) for label in LABELS.values()}
    print(f"wrote {OUT}: {len(rows)} texts {counts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
