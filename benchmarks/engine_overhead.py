"""Engine overhead per LLM call and behaviour at scale, on the simulated LLM.

Prints figures and ratios measured side by side in one run:
  1. a bare litellm call to fgo-sim vs the same call through the gateway (ledger, cache
     lookup) vs the gateway with a session store (ledger + cache row committed per call);
  2. a session with many tasks and subsets: wall time, calls, store size, read latency.

Run: .venv/bin/python benchmarks/engine_overhead.py [--tasks 2000 --subsets 100]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import toy_suite  # noqa: E402,F401  (a tiny suite registered for tests and benchmarks)

import fgo_engine  # noqa: E402,F401
from fgo_engine.config import ROLES, RoleConfig, RunConfig  # noqa: E402
from fgo_engine.llm.gateway import Gateway, get_litellm  # noqa: E402
from fgo_engine.session import Session  # noqa: E402
from fgo_engine.store import Store  # noqa: E402


def per_call(fn, n: int) -> float:
    t = time.perf_counter()
    for i in range(n):
        fn(i)
    return (time.perf_counter() - t) / n * 1000


def overhead(n: int) -> None:
    litellm = get_litellm()
    msgs = lambda i: [{"role": "system", "content": "Answer briefly."},  # noqa: E731
                      {"role": "user", "content": f"TOY-QUESTION #{i} category=colour: what about the glorp's colour?"}]
    roles = {r: RoleConfig(model="fgo-sim/medium") for r in ROLES}
    per_call(lambda i: litellm.completion(model="fgo-sim/medium", messages=msgs(i)), 50)  # warm up
    bare = per_call(lambda i: litellm.completion(model="fgo-sim/medium", messages=msgs(i), seed=0), n)
    g = Gateway(roles)
    gw = per_call(lambda i: g.complete("agent", msgs(i + n)), n)
    hit = per_call(lambda i: g.complete("agent", msgs(i + n)), n)
    with tempfile.TemporaryDirectory() as d:
        store = Store.create(Path(d) / "b.db", name="b", config={})
        gs = Gateway(roles, store=store)
        stored = per_call(lambda i: gs.complete("agent", msgs(i + 2 * n)), n)
        store.close()
    print(f"per call, {n} calls each (ms):")
    print(f"  bare litellm → fgo-sim          {bare:7.3f}")
    print(f"  gateway, no store               {gw:7.3f}   overhead {gw - bare:+.3f} ms ({gw / bare:.2f}×)")
    print(f"  gateway + session store         {stored:7.3f}   overhead {stored - bare:+.3f} ms ({stored / bare:.2f}×)")
    print(f"  gateway cache hit               {hit:7.3f}   ({hit / bare:.2f}× of a bare call)")


def scale(n_tasks: int, n_subsets: int) -> None:
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
            s.store.rows("merge_nodes")
            s.store.query("select subset_id, max(score) from epochs group by subset_id")
            reads.append((time.perf_counter() - t0) * 1000)
        nodes = s.store.count("merge_nodes")
        trajs = s.store.count("trajectories")
        s.close()
        size = sum(p.stat().st_size for p in Path(d).iterdir()) / 1e6
    print(f"scale: {n_tasks} tasks, {n_subsets} subsets → {res.status}, {res.calls:,} calls in {wall:.1f} s "
          f"({wall / max(1, res.calls) * 1000:.2f} ms/call incl. engine), {nodes} merge nodes, "
          f"{trajs:,} trajectories, {size:.1f} MB; dashboard-style reads median "
          f"{statistics.median(reads):.1f} ms")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=1000)
    ap.add_argument("--tasks", type=int, default=2000)
    ap.add_argument("--subsets", type=int, default=100)
    a = ap.parse_args()
    os.environ.setdefault("PYTHONHASHSEED", "0")
    overhead(a.calls)
    scale(a.tasks, a.subsets)
