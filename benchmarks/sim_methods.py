"""The methods side by side on the simulated LLM's default profile, 3 seeds per suite.

Writes ``bench/results/methods-<suite>.md`` and ``.json`` (the simulated tables of the
README and docs/performance.md come from these). One suite after the other, each suite's
(seed, method) runs in separate processes, one per core (the runs are CPU-bound and their tables do not time anything;
household's 15 runs are most of the work, so splitting by suite left one core idle). A
test bed, not evidence of real-model quality.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SUITES = ("household", "invoices", "tools")
OUT = ROOT / "bench" / "results"


def one(suite: str, seeds: int) -> tuple[str, str, float]:
    from fgo_engine.run.bench import DEFAULT_METHODS, run_bench, to_markdown

    t0 = time.perf_counter()
    report = run_bench(suite, methods=list(DEFAULT_METHODS), seeds=seeds, progress=lambda s: None,
                       jobs=os.cpu_count() or 1)
    report["elapsed_seconds"] = time.perf_counter() - t0
    md = to_markdown(report)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"methods-{suite}.md").write_text(md, encoding="utf-8")
    (OUT / f"methods-{suite}.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    return suite, md, report["elapsed_seconds"]


def main(seeds: int = 3) -> None:
    t0 = time.perf_counter()
    for suite in SUITES:
        _, md, seconds = one(suite, seeds)
        print(f"-- {suite} ({seconds:.0f} s)\n{md}", flush=True)
    print(f"sim_methods: {len(SUITES)} suites x {seeds} seeds in {time.perf_counter() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
