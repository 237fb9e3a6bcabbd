"""The methods side by side on the simulated LLM's default profile, 3 seeds per suite.

Writes ``bench/results/methods-<suite>.md`` and ``.json`` (the README's simulated table
comes from these). A test bed, not evidence of real-model quality.
"""
from __future__ import annotations

import sys
from pathlib import Path

from fgo_engine.bench import DEFAULT_METHODS, run_bench, to_markdown
from fgo_engine.bench import save as save_report

SUITES = ("household", "invoices", "tools")
OUT = Path(__file__).resolve().parent.parent / "bench" / "results"


def main(seeds: int = 3) -> None:
    for suite in SUITES:
        report = run_bench(suite, methods=list(DEFAULT_METHODS), seeds=seeds, progress=lambda s: None)
        md, _ = save_report(report, OUT)
        target = OUT / f"methods-{suite}.md"
        md.replace(target)
        (OUT / f"bench-{suite}.json").replace(OUT / f"methods-{suite}.json")
        print(to_markdown(report), flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
