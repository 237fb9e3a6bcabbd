"""How far the ETA is from the time a run really took, per role against per phase.

One FGO run on the simulator with emulated latency (the calls' structure sets the wall time),
every TokensUsed event recorded with its time. The events are then replayed into two progress
meters side by side: one given the projection's phases (each phase's calls left divided by its
own width), one without them (every call left divided by the concurrency observed). At each
tenth of the run's wall time: each meter's ETA against the time that was really left.

Writes bench/results/eta-accuracy.json and .md.

Run: .venv/bin/python benchmarks/eta_accuracy.py [--suite household] [--latency 0.05]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fgo_engine import events as ev  # noqa: E402
from fgo_engine.config import RunConfig  # noqa: E402
from fgo_engine.run.progress import Progress  # noqa: E402
from fgo_engine.run.session import Session  # noqa: E402

OUT = ROOT / "bench" / "results"


def record(suite: str, latency: float, subsets: int, options: dict) -> tuple[list[tuple[float, ev.Event]], float]:
    seen: list[tuple[float, ev.Event]] = []

    def sink(e: ev.Event) -> None:
        if isinstance(e, (ev.RunStarted, ev.TokensUsed, ev.TaskFinished)):
            seen.append((time.perf_counter(), e))

    cfg = RunConfig.from_dict({"suite": suite, "model": f"fgo-sim/medium:latency={latency}", "subsets": subsets,
                               "epochs": 2, "review": "auto", "suite_options": options})
    with tempfile.TemporaryDirectory() as tmp:
        s = Session.create(Path(tmp) / "eta.db", cfg, sinks=[sink])
        try:
            t0 = time.perf_counter()
            res = s.run()
            end = time.perf_counter()
        finally:
            s.close()
    if res.status != "done":
        raise SystemExit(f"eta_accuracy: the run ended {res.status}: {res.message}")
    return [(t - t0, e) for t, e in seen], end - t0


def replay(events: list[tuple[float, ev.Event]], wall: float, phases: bool) -> list[dict]:
    meter = Progress()
    marks = [wall * k / 10 for k in range(1, 10)]
    out: list[dict] = []
    for t, e in events:
        while marks and t >= marks[0]:
            m = marks.pop(0)
            eta = meter.eta()
            out.append({"at": m, "share": m / wall, "eta": eta, "left": wall - m})
        if isinstance(e, ev.RunStarted):
            projection = dict(e.projection or {})
            if not phases:
                projection.pop("phases", None)
            meter.start(projection, e.done_before)
        elif isinstance(e, ev.TaskFinished):
            if phases:
                meter.episode(e.phase)
        elif isinstance(e, ev.TokensUsed):
            meter.add(t, e.role, cached=int(e.cache_hit), seconds=e.latency_ms / 1000.0,
                      phase=e.phase if phases else None)
    return out


def error(rows: list[dict]) -> float | None:
    errs = [abs(r["eta"] - r["left"]) / r["left"] for r in rows if r["eta"] is not None and r["left"] > 0]
    return statistics.median(errs) if errs else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--suite", default="household")
    ap.add_argument("--latency", type=float, default=0.05, help="emulated seconds per call")
    ap.add_argument("--subsets", type=int, default=4)
    a = ap.parse_args()
    options = {"n_train": 24, "n_test": 24} if a.suite == "household" else {}
    events, wall = record(a.suite, a.latency, a.subsets, options)
    per_phase, per_role = replay(events, wall, True), replay(events, wall, False)
    report = {
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, Python "
                   f"{platform.python_version()}",
        "command": "benchmarks/eta_accuracy.py " + " ".join(sys.argv[1:]), "suite": a.suite,
        "latency_s": a.latency, "subsets": a.subsets, "epochs": 2, "wall_s": wall,
        "calls": sum(isinstance(e, ev.TokensUsed) for _, e in events),
        "per_phase": per_phase, "per_role": per_role,
        "median_relative_error": {"per_phase": error(per_phase), "per_role": error(per_role)},
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "eta-accuracy.json").write_text(json.dumps(report, indent=2), encoding="utf-8")

    def f(x: float | None) -> str:
        return "—" if x is None else f"{x:.1f}"

    md = ["# ETA against the time really left (`benchmarks/eta_accuracy.py`)", "",
          f"{report['machine']}. One FGO run on `{a.suite}` (N={a.subsets}, E=2, review auto) with "
          f"`fgo-sim/medium:latency={a.latency}`: {report['calls']:,} calls in {wall:.1f} s. The run's "
          "events replayed into two meters: per phase (the projection's phases, each divided by its own "
          "width) and per role (every call left divided by the observed concurrency).", "",
          "| share of the run | time left s | ETA per phase s | ETA per role s |", "|---|---|---|---|"]
    for p, r in zip(per_phase, per_role):
        md.append(f"| {p['share']:.0%} | {p['left']:.1f} | {f(p['eta'])} | {f(r['eta'])} |")
    e = report["median_relative_error"]
    md += ["", f"Median relative error: per phase {f((e['per_phase'] or 0) * 100)}%, "
               f"per role {f((e['per_role'] or 0) * 100)}%."]
    (OUT / "eta-accuracy.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
