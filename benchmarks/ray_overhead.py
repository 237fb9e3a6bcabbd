"""The Ray executor's cost next to the thread executor's, on a local 2-CPU Ray instance.

  1. per-rollout overhead: the same rollouts (tools: sandboxed tool processes; household:
     a ReAct loop) replayed from the response cache — so the model costs nothing and what
     is left is the executor, the suite and the gateway — one at a time, on threads and on Ray;
  2. wall time of a small FGO run (tools, household) on threads and on Ray (2 CPUs);
  3. the driver's throughput bounds: relayed agent calls per second (cache hits through the
     relay actor and the gateway) and the store writer's committed rows per second (ledger +
     cache row per fresh call, committed before the answer is used), with 1..32 callers.

Run: .venv/bin/python benchmarks/ray_overhead.py [--rollouts 16]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # the local instance binds to loopback

import fgo_engine  # noqa: E402,F401
from fgo_engine.config import RunConfig  # noqa: E402
from fgo_engine.method.runtime import Runtime  # noqa: E402
from fgo_engine.run.executors import ThreadExecutor  # noqa: E402
from fgo_engine.run.executors.ray_executor import RayExecutor  # noqa: E402
from fgo_engine.run.session import Session  # noqa: E402
from fgo_engine.types import Scope  # noqa: E402

SPECS = {
    "tools": {"suite": "tools", "suite_options": {"n_train": 8, "n_test": 4}, "subsets": 2, "epochs": 1,
              "model": "fgo-sim/medium", "seed": 3},
    "household": {"suite": "household", "suite_options": {"n_train": 8, "n_test": 4, "step_limit": 8},
                  "subsets": 3, "epochs": 1, "model": "fgo-sim/medium", "seed": 1},
}


def rollouts(session: Session, executor, n: int) -> tuple[float, int]:
    """Seconds per rollout and agent calls made, one rollout at a time (no parallelism)."""
    tasks = session.tasks("train")[:n]
    rt = Runtime(session.config, session.suite, session.store, session.gateway, session.bus, session.gate,
                 session.control, {t.id: t for t in tasks}, executor=executor)
    module = session.suite.initial_module()
    calls = session.gateway.total.calls
    t = time.perf_counter()
    for task in tasks:
        executor.rollout(rt, task, module, Scope("session", "", "bench"))
    return (time.perf_counter() - t) / len(tasks), session.gateway.total.calls - calls


def overhead(n: int, ray_ex: RayExecutor, folder: Path) -> None:
    print(f"per rollout, cache replay, one at a time ({n} rollouts):")
    for name, spec in SPECS.items():
        s = Session.create(folder / f"ov-{name}.db", RunConfig.from_dict(spec), executor=ThreadExecutor())
        try:
            rollouts(s, s.executor, n)  # pays once, fills the cache
            th, calls = rollouts(s, s.executor, n)
            ray_ex._rt = None
            rollouts(s, ray_ex, n)  # warm the workers (suite built once per worker process)
            ry, _ = rollouts(s, ray_ex, n)
        finally:
            s.close()
        per_call = (ry - th) * n / max(1, calls) * 1000
        print(f"  {name:<10} threads {th * 1000:8.1f} ms   ray {ry * 1000:8.1f} ms   "
              f"overhead {(ry - th) * 1000:+7.1f} ms/rollout ({calls / n:.1f} agent calls each, "
              f"{per_call:+.2f} ms/call)")


def wall(folder: Path) -> None:
    print("wall time of a small FGO run (2 CPUs); model latency 0, then an API-like 0.1 s per call:")
    for (name, spec), model in [(kv, m) for m in ("fgo-sim/medium", "fgo-sim/medium:latency=0.1")
                                for kv in SPECS.items()]:
        out = {}
        for ex in ("threads", "ray"):
            s = Session.create(folder / f"wall-{name}-{ex}-{len(model)}.db",
                               RunConfig.from_dict({**spec, "model": model, "executor": ex}))
            try:
                t = time.perf_counter()
                res = s.run()
                out[ex] = (time.perf_counter() - t, res)
            finally:
                s.close()
        (tw, rt_), (rw, rr) = out["threads"], out["ray"]
        same = (rt_.final_module_id, rt_.train_score, rt_.test_score) == (rr.final_module_id, rr.train_score,
                                                                            rr.test_score)
        print(f"  {name:<10} {model:<27} threads {tw:6.1f} s   ray {rw:6.1f} s   ({rw / tw:.2f}×; "
              f"same result: {same})")


def relay_throughput(ray_ex: RayExecutor, folder: Path, callers: int, per: int) -> float:
    """Relayed agent calls per second, every one a cache hit: the relay + gateway bound."""
    import ray

    s = Session.create(folder / f"relay-{callers}.db", RunConfig.from_dict(SPECS["household"]),
                       executor=ThreadExecutor())
    try:
        rt = Runtime(s.config, s.suite, s.store, s.gateway, s.bus, s.gate, s.control, {}, executor=ray_ex)
        ray_ex._rt = rt
        msgs = [{"role": "user", "content": "go"}]
        scope = Scope("session", "", "bench")
        rt.agent_llm(scope, "t")(msgs)  # the one paid call; the rest are hits

        @ray.remote(num_cpus=0)
        class Caller:
            def ready(self) -> bool:
                return True

            def run(self, relay, k: int) -> None:
                for _ in range(k):
                    ray.get(relay.call.remote({"scope": scope, "task_id": "t", "messages": msgs, "tools": None,
                                               "pid": 0, "node": ""}))

        actors = [Caller.remote() for _ in range(callers)]
        ray.get([a.ready.remote() for a in actors])  # worker processes started before the clock runs
        ray.get([a.run.remote(ray_ex.relay, 5) for a in actors])  # and warm
        t = time.perf_counter()
        ray.get([a.run.remote(ray_ex.relay, per) for a in actors])
        took = time.perf_counter() - t
        for a in actors:
            ray.kill(a)
        return callers * per / took
    finally:
        s.close()


def writer_throughput(folder: Path, callers: int, per: int) -> float:
    """Rows per second the store commits when every caller waits for its commit (the
    gateway's path for a fresh answer: ledger row + cache row, then flush)."""
    from fgo_engine.persistence import writes
    from fgo_engine.persistence.store import Store
    from fgo_engine.types import LedgerEntry, Scope

    store = Store.create(folder / f"writer-{callers}.db", name="w", config={})

    def one(c: int) -> None:
        for i in range(per):
            entry = LedgerEntry("agent", "m", Scope("subset", str(c), "explore"), prompt_tokens=100,
                                completion_tokens=20, latency_ms=1.0, cache_key=f"{c}-{i}")
            writes.llm_call(store, entry, {"text": "x"})  # returns once its own rows are committed

    threads = [threading.Thread(target=one, args=(c,)) for c in range(callers)]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    took = time.perf_counter() - t
    store.close()
    return 2 * callers * per / took


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rollouts", type=int, default=8)
    p.add_argument("--only", choices=("overhead", "wall", "throughput"), help="one part only")
    a = p.parse_args()
    import ray

    t = time.perf_counter()
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    print(f"local Ray instance (2 CPUs, loopback) started in {time.perf_counter() - t:.1f} s")
    ray_ex = RayExecutor(RunConfig.from_dict({**SPECS["household"], "executor": "ray"}))
    ray_ex.start()
    try:
        with tempfile.TemporaryDirectory() as d:
            folder = Path(d)
            if a.only in (None, "overhead"):
                overhead(a.rollouts, ray_ex, folder)
            if a.only in (None, "wall"):
                wall(folder)
            if a.only not in (None, "throughput"):
                return
            print("driver throughput bounds (callers waiting for their answer):")
            for callers in (1, 8, 32):
                r = relay_throughput(ray_ex, folder, callers, 100)
                w = writer_throughput(folder, callers, 200)
                print(f"  {callers:>3} callers: relayed calls {r:8.0f}/s (cache hits)   "
                      f"store writer {w:8.0f} rows/s ({w / 2:.0f} fresh calls/s)")
    finally:
        ray_ex.close()
        ray.shutdown()


if __name__ == "__main__":
    sys.exit(main())
