"""Two or more runtime variants on the standard workload, measured in turn (bench/alternate.py):
flags, environment, or another checkout's code through PYTHONPATH. For a before/after of a change:

    git worktree add /tmp/before HEAD~1
    python bench/ab.py --concurrency 1 32 --runs 3 \\
        --variants '{"before": {"env": {"PYTHONPATH": "/tmp/before/runtime"}}, "after": {}}'
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from alternate import Load, Variant, alternate, medians
from run import OUTPUT, PROMPT, requests_for


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", required=True, help='JSON: {"name": {"args": [...], "env": {...}}, ...}')
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    variants = {name: Variant(**spec) for name, spec in json.loads(args.variants).items()}
    report = {"command": " ".join(["python", *sys.argv]), "by_concurrency": {}}
    for concurrency in args.concurrency:
        load = Load(concurrency, requests_for(concurrency), PROMPT, OUTPUT)
        results = alternate(variants, load, args.runs, max(args.concurrency))
        report["by_concurrency"][concurrency] = {"medians": medians(results), "runs": results}
        print(f"concurrency {concurrency}: {json.dumps(medians(results))}")
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
