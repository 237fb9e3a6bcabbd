"""Which mechanism explains the simulated ordering: the default profile with one
mechanism switched off at a time, on one suite, a few seeds.

Writes ``bench/results/diagnosis-<suite>.json`` and ``.md`` (docs/simulator.md's "Mechanism
diagnosis" table). A diagnosis, not used to choose any setting. The variants run in
separate processes, one per core.

    python benchmarks/sim_diagnosis.py [suite] [seeds]
"""
from __future__ import annotations

import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

OUT = ROOT / "bench" / "results"
METHODS = ["all-at-once", "batch-wise", "fgo"]
VARIANTS = ["", "evidence=0", "critic_error=0,critic_noise=0", "middle=0,attention=0", "window=1000000",
            "conflict=0", "capacity=0,max_new=0", "merge_loss=0", "space=0", "reword=0"]


def one(suite: str, variant: str, seeds: int) -> tuple[str, dict[str, tuple[float, float]]]:
    from fgo_engine.run.bench import run_bench

    model = "fgo-sim/medium" + (f":{variant}" if variant else "")
    report = run_bench(suite, methods=METHODS, seeds=seeds, model=model, progress=lambda s: None)
    out = {}
    for method, m in report["methods"].items():
        out[method] = (m["overall"][0], m["prompt_tokens"][0])  # (mean, sd) over seeds: the means
    return variant, out


def main(suite: str = "invoices", seeds: int = 2) -> None:
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as pool:
        results = list(pool.map(one, [suite] * len(VARIANTS), VARIANTS, [seeds] * len(VARIANTS)))
    lines = [f"`fgo-sim/medium` on {suite} with one mechanism switched off at a time, seeds 0–{seeds - 1}, "
             "test-split success % (mean over seeds):", "",
             "| medium with … | " + " | ".join(METHODS) + " |", "|---|" + "---|" * len(METHODS)]
    for variant, rows in results:
        cells = [f"{100 * rows[m][0]:.1f}" if m in rows and rows[m][0] is not None else "—" for m in METHODS]
        lines.append(f"| {('`' + variant + '`') if variant else 'every mechanism on'} | " + " | ".join(cells) + " |")
    md = "\n".join(lines) + "\n"
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"diagnosis-{suite}.md").write_text(md, encoding="utf-8")
    (OUT / f"diagnosis-{suite}.json").write_text(json.dumps(
        {"suite": suite, "seeds": seeds, "methods": METHODS, "elapsed_seconds": time.perf_counter() - t0,
         "variants": {v: r for v, r in results}}, indent=2), encoding="utf-8")
    print(md + f"sim_diagnosis: {len(VARIANTS)} variants in {time.perf_counter() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "invoices", int(sys.argv[2]) if len(sys.argv) > 2 else 2)
