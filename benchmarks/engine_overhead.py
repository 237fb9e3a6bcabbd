"""Engine overhead per LLM call and behaviour at scale, on the simulated LLM.

Measured side by side in one run and written to bench/results/engine-overhead.json:
  1. ms per call: a bare litellm call to fgo-sim; the same call through the gateway
     (ledger, cache lookup); through the gateway with a session store (ledger + cache row
     committed before the answer is returned); a cache hit; and the gateway + store with
     8 threads calling at once (their commits are grouped). Overhead = figure − bare.
  2. a session with many tasks and subsets (default 5,000 / 100): wall time, calls, peak
     RSS of the process, session file size, dashboard-style read latency.
The target is < 1 ms per real call beyond the bare litellm call and < 1 GiB peak RSS.

Run: .venv/bin/python benchmarks/engine_overhead.py [--calls 1000 --tasks 5000 --subsets 100]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

import toy_suite  # noqa: E402,F401  (a tiny suite registered for tests and benchmarks)

import fgo_engine  # noqa: E402,F401
from fgo_engine.config import ROLES, RoleConfig, RunConfig  # noqa: E402
from fgo_engine.llm.gateway import Gateway, get_litellm  # noqa: E402
from fgo_engine.persistence import queries  # noqa: E402
from fgo_engine.persistence.store import Store  # noqa: E402
from fgo_engine.run.session import Session  # noqa: E402

OUT = ROOT / "bench" / "results" / "engine-overhead.json"
MODEL = "fgo-sim/medium"


def msgs(i: int) -> list[dict]:
    return [{"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": f"TOY-QUESTION #{i} category=colour: what about the glorp's colour?"}]


def per_call(fn, start: int, n: int) -> tuple[float, float]:
    """(wall ms, CPU ms of the whole process) per call."""
    t, c = time.perf_counter(), time.process_time()
    for i in range(start, start + n):
        fn(i)
    return (time.perf_counter() - t) / n * 1000, (time.process_time() - c) / n * 1000


def threaded(fn, start: int, n: int, threads: int) -> tuple[float, float]:
    """(wall ms, process CPU ms) per call over all calls, ``threads`` callers at once."""
    per = n // threads
    go = threading.Barrier(threads + 1)

    def work(k: int) -> None:
        go.wait()
        for i in range(start + k * per, start + (k + 1) * per):
            fn(i)

    ts = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    go.wait()
    t0, c0 = time.perf_counter(), time.process_time()
    for t in ts:
        t.join()
    return ((time.perf_counter() - t0) / (per * threads) * 1000,
            (time.process_time() - c0) / (per * threads) * 1000)


def one_round(folder: str, r: int, n: int) -> dict[str, tuple[float, float]]:
    litellm = get_litellm()
    rc = RoleConfig(model=MODEL, max_concurrency=64)
    roles = {role: rc for role in ROLES}
    # the bare call sends what the gateway sends for this role (same request, no engine)
    same = {"timeout": rc.timeout, "temperature": rc.temperature, "num_retries": 0, "max_retries": 0, "seed": 0}
    base = (r + 1) * 10 * n
    out = {"bare": per_call(lambda i: litellm.completion(model=MODEL, messages=msgs(i), **same), base, n)}
    g = Gateway(roles)
    out["gateway"] = per_call(lambda i: g.complete("agent", msgs(i)), base + n, n)
    out["cache_hit"] = per_call(lambda i: g.complete("agent", msgs(i)), base + n, n)
    store = Store.create(Path(folder) / f"b{r}.db", name="b", config={})
    try:
        gs = Gateway(roles, store=store)
        out["gateway_store"] = per_call(lambda i: gs.complete("agent", msgs(i)), base + 2 * n, n)
        out["gateway_store_8_threads"] = threaded(lambda i: gs.complete("agent", msgs(i)), base + 3 * n, n, 8)
    finally:
        store.close()
    return out


def overhead(n: int, rounds: int = 3) -> dict:
    """Each figure is the median of ``rounds`` interleaved rounds (the machine may be shared).
    Wall ms is what a caller waits; CPU ms (the whole process: writer thread, litellm's own
    threads) is steadier on a loaded machine."""
    litellm = get_litellm()
    per_call(lambda i: litellm.completion(model=MODEL, messages=msgs(i)), 0, 50)  # warm up
    figures: dict[str, list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as d:
        for r in range(rounds):
            for k, v in one_round(d, r, n).items():
                figures.setdefault(k, []).append(v)
    med = {k: statistics.median(w for w, _ in v) for k, v in figures.items()}
    cpu = {k: statistics.median(c for _, c in v) for k, v in figures.items()}
    real = [k for k in med if k not in ("bare", "cache_hit")]
    out = {"calls_per_figure": n, "rounds": rounds, "ms_per_call": med, "cpu_ms_per_call": cpu,
           "overhead_ms": {k: med[k] - med["bare"] for k in real},
           "cpu_overhead_ms": {k: cpu[k] - cpu["bare"] for k in real},
           "samples_ms": figures}
    print(f"per call, {n} calls each, median of {rounds} rounds (ms wall / ms CPU of the process):")
    print(f"  bare litellm → fgo-sim          {med['bare']:7.3f} / {cpu['bare']:7.3f}")
    for k, label in (("gateway", "gateway, no store"), ("gateway_store", "gateway + session store"),
                     ("gateway_store_8_threads", "gateway + store, 8 threads")):
        print(f"  {label:<31} {med[k]:7.3f} / {cpu[k]:7.3f}   overhead {med[k] - med['bare']:+.3f} / "
              f"{cpu[k] - cpu['bare']:+.3f} ms")
    print(f"  gateway cache hit               {med['cache_hit']:7.3f} / {cpu['cache_hit']:7.3f}")
    return out


def scale(n_tasks: int, n_subsets: int) -> dict:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "scale.db"
        cfg = RunConfig.from_dict({"suite": "toy", "suite_options": {"n_train": n_tasks, "n_test": 60},
                                   "model": "fgo-sim/large", "subsets": n_subsets, "epochs": 1, "threshold": 4,
                                   "partition": "random", "workers": 4})
        s = Session.create(path, cfg)
        t = time.perf_counter()
        res = s.run()
        wall = time.perf_counter() - t
        reads = []
        for _ in range(20):
            t0 = time.perf_counter()
            queries.merge_nodes(s.store)
            queries.subset_epochs(s.store)
            reads.append((time.perf_counter() - t0) * 1000)
        nodes = len(queries.merge_nodes(s.store))
        trajs = queries.trajectory_count(s.store)
        s.close()
        size = sum(p.stat().st_size for p in Path(d).iterdir()) / 1e6
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    out = {"tasks": n_tasks, "subsets": n_subsets, "status": res.status, "calls": res.calls,
           "wall_seconds": wall, "ms_per_call_incl_engine": wall / max(1, res.calls) * 1000,
           "merge_nodes": nodes, "trajectories": trajs, "file_mb": size, "peak_rss_mib": rss,
           "read_median_ms": statistics.median(reads)}
    print(f"scale: {n_tasks} tasks, {n_subsets} subsets → {res.status}, {res.calls:,} calls in {wall:.1f} s "
          f"({out['ms_per_call_incl_engine']:.2f} ms/call incl. engine), {nodes} merge nodes, "
          f"{trajs:,} trajectories, {size:.1f} MB; peak RSS {rss:.0f} MiB (target < 1024); "
          f"dashboard-style reads median {out['read_median_ms']:.1f} ms")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=1000)
    ap.add_argument("--tasks", type=int, default=5000)
    ap.add_argument("--subsets", type=int, default=100)
    ap.add_argument("--out", default=str(OUT))
    a = ap.parse_args()
    os.environ.setdefault("PYTHONHASHSEED", "0")
    result = {"machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, "
                         f"Python {platform.python_version()}",
              "load_average": os.getloadavg(), "command": " ".join(["benchmarks/engine_overhead.py", *sys.argv[1:]]),
              "overhead": overhead(a.calls), "scale": scale(a.tasks, a.subsets),
              "targets": {"overhead_ms_per_real_call": 1.0, "peak_rss_mib": 1024}}
    result["load_average_after"] = os.getloadavg()
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
