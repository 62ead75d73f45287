"""Themes: how well discovery + assignment recover known themes, in one run.

    .venv/bin/python bench/themes.py [--data DIR] [--json]

Prints the machine and one table (see ``cxm.text.theme_eval``): 1,000 comments built from the
demo generator's phrase table (6 known themes) and banking77's test queries (a fixed subset of
10 intents, and all 77), each scored by AMI / ARI of "text → best theme" against the label,
coverage, assignment purity and the number of theme pairs with overlapping names.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

# One thread for numpy's BLAS before numpy is imported: comparable timings on a shared machine.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info  # noqa: E402


def main() -> int:
    from importlib.metadata import version

    from cxm.demo import generator
    from cxm.text import theme_eval, train

    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=train.default_data_dir())
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")
    args = parser.parse_args()

    machine = machine_info(None)
    print(f"{machine['cpu']}, {machine['cores']} cores, Python {machine['python']}, "
          f"scikit-learn {version('scikit-learn')}, load average "
          f"{machine['loadavg_at_start'][0]:.1f} at start, commit {machine['git_commit'][:8]}, "
          f"src digest {machine['src_digest']}")
    if not (args.data / "banking77" / "test.csv").is_file():
        print(f"banking77 not found under {args.data}: demo comments only", file=sys.stderr)

    corpora = theme_eval.standard_corpora(
        generator._COMMENT_PHRASES, openers=generator._OPENERS, closers=generator._CLOSERS,
        values=theme_eval.demo_values([p.name for p in generator._CATALOG], generator._AGENTS),
        data_dir=args.data)
    scores = [theme_eval.score(corpus) for corpus in corpora]
    print()
    print(theme_eval.format_table(scores))
    print()
    for s in scores:
        print(f"{s.corpus}: {' | '.join(s.names)}")
    if args.json:
        print(json.dumps({"machine": machine, "scores": [s.as_dict() for s in scores]},
                         indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
