"""The dashboard under load: a real run with 32 subsets streaming on the simulated LLM.

Prints the event-to-screen latency (an engine event's emission to the end of the dashboard
redraw that shows it; target p95 < 250 ms with 32 subsets), how long the UI thread spends
per drain tick (draining + applying the batch + redrawing the dashboard), how fast a key
press reaches its action while the run
streams, how many events arrived vs UI updates made, and the run's wall time in the
app vs headless (the app should not slow the engine down).

Writes bench/results/tui-stream.json (figures in ms, the machine, its load average).

Run: .venv/bin/python benchmarks/tui_stream.py [--subsets 32 --latency 0.01 --out PATH]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
OUT = ROOT / "bench" / "results" / "tui-stream.json"

import toy_suite  # noqa: E402,F401

import fgo_engine  # noqa: E402,F401
from fgo_engine.config import RunConfig  # noqa: E402
from fgo_engine.run.session import Session  # noqa: E402
from fgo_tui.app import FGOApp  # noqa: E402
from fgo_tui.screens import dashboard as dash_mod  # noqa: E402


def config(subsets: int, latency: float) -> RunConfig:
    model = f"fgo-sim/medium:latency={latency}"
    roles = {r: {"model": model, "max_concurrency": 4 * subsets} for r in ("agent", "evaluator", "optimizer", "merger")}
    return RunConfig.from_dict({"suite": "toy", "suite_options": {"n_train": 3 * subsets, "n_test": 24},
                                "roles": roles, "subsets": subsets, "epochs": 2, "threshold": 2,
                                "review": "auto", "workers": subsets, "task_workers": 4 * subsets,
                                "partition": "random"})


def headless(path: Path, cfg: RunConfig) -> float:
    s = Session.create(path, cfg)
    t = time.perf_counter()
    try:
        s.run()
    finally:
        s.close()
    return time.perf_counter() - t


async def in_app(folder: Path, cfg: RunConfig) -> dict:
    ticks: list[float] = []
    redraws: list[float] = []
    keys: list[float] = []
    acted: list[float] = []
    latency: list[float] = []  # event emitted → redraw that shows it done
    emitted: list[float] = []  # stamps of events not drained yet
    drained: list[float] = []  # stamps of drained events not yet redrawn
    from fgo_tui.model.bridge import EventBuffer

    orig_call, orig_drain_buf = EventBuffer.__call__, EventBuffer.drain

    def call(self, event):
        emitted.append(time.perf_counter())
        orig_call(self, event)

    def drain_buf(self):
        with self._lock:
            stamps = emitted[:]
            del emitted[:len(stamps)]
        drained.extend(stamps)
        return orig_drain_buf(self)

    orig_drain, orig_refresh, orig_tab = FGOApp._drain, dash_mod.DashboardScreen.refresh_view, \
        dash_mod.DashboardScreen.action_tab

    def drain(self):
        t = time.perf_counter()
        orig_drain(self)
        ticks.append(time.perf_counter() - t)

    def refresh(self):
        t = time.perf_counter()
        orig_refresh(self)
        done = time.perf_counter()
        redraws.append(done - t)
        latency.extend(done - s for s in drained)
        drained.clear()

    def tab(self, name):
        acted.append(time.perf_counter())
        orig_tab(self, name)

    FGOApp._drain, dash_mod.DashboardScreen.refresh_view, dash_mod.DashboardScreen.action_tab = drain, refresh, tab
    EventBuffer.__call__, EventBuffer.drain = call, drain_buf
    app = FGOApp(sessions_dir=folder, new_config=cfg, session_path=folder / "app.db", cursor_blink=False)
    out: dict = {}
    async with app.run_test(size=(160, 50)) as pilot:
        while app.ctl is None or not app.ctl.running:
            await pilot.pause(0.01)
        t0 = time.perf_counter()
        k = 0
        while app.ctl.running:
            await pilot.pause(0.3)
            if not app.ctl.running:
                break
            acted.clear()
            sent = time.perf_counter()
            await pilot.press("2" if k % 2 == 0 else "1")
            if acted:
                keys.append(acted[0] - sent)
            k += 1
        out["wall"] = time.perf_counter() - t0
        out["events"] = app.ctl.buffer.received
        out["drains"] = app.drains
        out["status"] = app.ctl.view.status
    FGOApp._drain, dash_mod.DashboardScreen.refresh_view, dash_mod.DashboardScreen.action_tab = \
        orig_drain, orig_refresh, orig_tab
    EventBuffer.__call__, EventBuffer.drain = orig_call, orig_drain_buf
    out.update(ticks=ticks, redraws=redraws, keys=keys, latency=latency)
    return out


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else 0.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--subsets", type=int, default=32)
    ap.add_argument("--latency", type=float, default=0.01)
    ap.add_argument("--out", default=str(OUT))
    a = ap.parse_args()
    load_before = os.getloadavg()
    cfg = config(a.subsets, a.latency)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        base = headless(folder / "headless.db", config(a.subsets, a.latency))
        r = asyncio.run(in_app(folder, cfg))
    ms = lambda x: f"{x * 1000:.1f} ms"  # noqa: E731
    print(f"{a.subsets} subsets, latency {a.latency}s/call: status {r['status']}, {r['events']:,} events, "
          f"{r['drains']} drain ticks with events")
    lat = r["latency"]
    if lat:
        print(f"event → screen: median {ms(statistics.median(lat))}, p95 {ms(pct(lat, 0.95))}, "
              f"max {ms(max(lat))} ({len(lat):,} events)")
    print(f"UI per drain tick: median {ms(statistics.median(r['ticks']))}, p95 {ms(pct(r['ticks'], 0.95))}, "
          f"max {ms(max(r['ticks']))}")
    print(f"dashboard redraw: median {ms(statistics.median(r['redraws']))}, p95 {ms(pct(r['redraws'], 0.95))}, "
          f"max {ms(max(r['redraws']))}")
    if r["keys"]:
        print(f"key press → action while streaming: median {ms(statistics.median(r['keys']))}, "
              f"max {ms(max(r['keys']))} ({len(r['keys'])} presses)")
    print(f"run wall time: in the app {r['wall']:.2f}s vs headless {base:.2f}s")

    def summary(xs: list[float]) -> dict:
        return {"median_ms": statistics.median(xs) * 1000 if xs else None, "p95_ms": pct(xs, 0.95) * 1000,
                "max_ms": max(xs, default=0.0) * 1000, "n": len(xs)}

    result = {"machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, "
                         f"Python {platform.python_version()}",
              "command": " ".join(["benchmarks/tui_stream.py", *sys.argv[1:]]),
              "load_average": load_before, "load_average_after": os.getloadavg(),
              "subsets": a.subsets, "latency_s": a.latency, "status": r["status"], "events": r["events"],
              "drains": r["drains"], "event_to_screen": summary(lat), "drain_tick": summary(r["ticks"]),
              "redraw": summary(r["redraws"]), "key_to_action": summary(r["keys"]),
              "wall_app_s": r["wall"], "wall_headless_s": base, "target_p95_ms": 250}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=2), encoding="utf-8")
    e2s = result["event_to_screen"]
    print(f"tui-stream: event → screen p95 {e2s['p95_ms']:.0f} ms, median {e2s['median_ms'] or 0:.0f} ms "
          f"(target p95 < 250 ms; load {load_before[0]:.2f}); wrote {a.out}")


if __name__ == "__main__":
    main()
