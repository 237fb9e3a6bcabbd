"""Opening a large finished session in the app: 5,000 JSONL tasks, N=100 subsets.

Builds the session once (the engine on the simulated LLM with zero latency, from a JSONL
file generated here) and keeps it under bench/cache/ (gitignored; rebuilt when missing or
when --rebuild is given). Then, in fresh processes (imports included, as a user waits),
opens it in the app headless (``App.run_test``) from the sessions screen and times:

  1. open → the panels in view are drawn, and → every subset's panel is mounted and drawn
     (panels mount a screenful at a time), wall and process CPU seconds; "open" is pressed
     once the app's warm-up (its engine imports, on a thread after the first screen; timed
     as warm_up_s) is done, as it is before a person has read the list and picked one;
  2. open → the merge tree shows every merge node (after pressing 2).

Target (issue 10): the dashboard in < 1.5 s. Writes bench/results/open-large.json.

Run: .venv/bin/python benchmarks/open_large.py [--tasks 5000 --subsets 100 --runs 3 --rebuild]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "bench" / "cache"
OUT = ROOT / "bench" / "results" / "open-large.json"
CATEGORIES = ("billing", "shipping", "returns", "accounts", "warranty", "payments", "orders", "coupons")


def write_tasks(path: Path, n: int) -> None:
    rng = random.Random(0)
    lines = []
    for i in range(n):
        cat = CATEGORIES[i % len(CATEGORIES)]
        a, b = rng.randrange(100), rng.randrange(100)
        lines.append(json.dumps({"id": f"t{i:05d}", "category": cat, "split": "test" if i % 10 == 9 else "train",
                                 "input": f"[{cat}] What is {a} plus {b}?", "expected": str(a + b)}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def build(db: Path, n_tasks: int, n_subsets: int) -> float:
    sys.path.insert(0, str(ROOT))
    import fgo_engine  # noqa: F401
    from fgo_engine.config import RunConfig
    from fgo_engine.run.session import Session

    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    tasks = db.with_suffix(".jsonl")
    write_tasks(tasks, n_tasks)
    cfg = RunConfig.from_dict({"suite": "jsonl", "suite_options": {"path": str(tasks)}, "model": "fgo-sim/large",
                               "subsets": n_subsets, "epochs": 1, "threshold": 4, "partition": "random",
                               "workers": 4, "review": "auto"})
    t = time.perf_counter()
    s = Session.create(db, cfg)
    try:
        res = s.run()
    finally:
        s.close()
    if res.status != "done":
        raise SystemExit(f"open_large: building the session ended {res.status}: {res.message}")
    return time.perf_counter() - t


OPEN_CODE = """
import asyncio, json, sys, time
from pathlib import Path
from fgo_tui.app import FGOApp
from fgo_tui.screens.dashboard import DashboardScreen
from fgo_tui.screens.sessions import SessionsScreen

async def main():
    path = Path(sys.argv[1])
    app = FGOApp(sessions_dir=path.parent, cursor_blink=False)
    out = {}
    async with app.run_test(size=(160, 50)) as pilot:
        while not (isinstance(app.screen, SessionsScreen) and app.screen.is_mounted):
            await pilot.pause(0.005)
        listed = time.perf_counter()
        while not app.warmed.is_set():  # as a person reads the list before picking a session
            await pilot.pause(0.005)
        out["warm_up_s"] = time.perf_counter() - listed
        t0, c0 = time.perf_counter(), time.process_time()
        app.open_session(path)

        def first_screen():
            # the panels in view are drawn (the rest mount a chunk per refresh)
            d = app.screen
            if not isinstance(d, DashboardScreen) or not d.is_mounted or not d.panels:
                return False
            grid = d.query_one("#subset-grid")
            top, height = grid.scroll_offset.y, grid.size.height
            seen = [p for p in d.panels.values() if p.is_mounted and p.virtual_region.y < top + height]
            return height and seen and all(p.shown for p in seen)

        def dashboard_drawn():
            d = app.screen
            n = d.view.n_subsets
            return n and len(d.panels) == n and all(p.is_mounted and p.shown for p in d.panels.values())

        while not first_screen():
            await pilot.pause(0.005)
        out["first_screen_s"] = time.perf_counter() - t0
        while not dashboard_drawn():
            await pilot.pause(0.005)
        out["dashboard_s"] = time.perf_counter() - t0
        out["dashboard_cpu_s"] = time.process_time() - c0
        out["subsets"] = len(app.screen.panels)
        t1 = time.perf_counter()
        await pilot.press("2")
        tree = app.screen.query_one("#merge-tree")
        nodes = len(app.ctl.view.nodes)
        while not (tree.is_mounted and tree.size.height
                   and len([k for k in tree._by_id if k.startswith("n")]) == nodes):
            await pilot.pause(0.005)
        await pilot.pause()
        out["tree_s"] = time.perf_counter() - t0
        out["tree_after_dashboard_s"] = time.perf_counter() - t1
        out["nodes"] = nodes
    print(json.dumps(out))

asyncio.run(main())
"""


def open_once(db: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.run([sys.executable, "-c", OPEN_CODE, str(db)], capture_output=True, text=True, env=env,
                       timeout=600, cwd=ROOT)
    if p.returncode != 0:
        raise SystemExit(p.stderr[-3000:])
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=5000)
    ap.add_argument("--subsets", type=int, default=100)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rebuild", action="store_true")
    ap.add_argument("--out", default=str(OUT))
    a = ap.parse_args()
    CACHE.mkdir(parents=True, exist_ok=True)
    db = CACHE / f"large-{a.tasks}-{a.subsets}.db"
    built = None
    if a.rebuild or not db.exists():
        built = build(db, a.tasks, a.subsets)
        print(f"built {db} in {built:.1f} s")
    load = os.getloadavg()
    runs = [open_once(db) for _ in range(a.runs)]
    dash = statistics.median(r["dashboard_s"] for r in runs)
    first = statistics.median(r["first_screen_s"] for r in runs)
    cpu = statistics.median(r["dashboard_cpu_s"] for r in runs)
    tree = statistics.median(r["tree_s"] for r in runs)
    warm = statistics.median(r["warm_up_s"] for r in runs)
    result = {"machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, "
                         f"Python {platform.python_version()}",
              "command": " ".join(["benchmarks/open_large.py", *sys.argv[1:]]),
              "load_average": load, "load_average_after": os.getloadavg(), "tasks": a.tasks,
              "subsets": a.subsets, "session_mb": db.stat().st_size / 1e6, "build_s": built,
              "first_screen_s_median": first, "dashboard_s_median": dash, "dashboard_cpu_s_median": cpu,
              "tree_s_median": tree, "warm_up_s_median": warm, "runs": runs, "target_dashboard_s": 1.5}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(f"open-large: {a.tasks} tasks / {a.subsets} subsets ({runs[0]['nodes']} merge nodes): panels in view "
          f"{first:.2f} s, every subset's panel {dash:.2f} s ({cpu:.2f} s CPU), merge tree {tree:.2f} s (median of "
          f"{a.runs}, open → drawn, after the app's {warm:.2f} s warm-up; target dashboard < 1.5 s; "
          f"load {load[0]:.2f}); wrote {a.out}")


if __name__ == "__main__":
    main()
