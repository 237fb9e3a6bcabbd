"""Time to the app's first screen, in fresh processes (what a user waits for).

Prints, as the median of several runs:
  0. `fgo --help` through the installed entry point, wall time of the whole process
     (target < 0.5 s; litellm, Textual and the engine's method code stay out);
  1. `python -c 'import fgo_tui.app'`: the import cost alone (and that litellm stays out);
  2. process start → sessions screen mounted, headless (`app.run_test()`), with an empty
     sessions folder and with 20 saved sessions; also → the session list filled in.
The design target is under one second to the first screen.

Run: .venv/bin/python benchmarks/startup.py [--runs 5]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

IMPORT_CODE = """
import time, sys
t0 = time.perf_counter()
import fgo_tui.app
t1 = time.perf_counter()
print(t1 - t0, 'litellm' in sys.modules)
"""

FIRST_SCREEN_CODE = """
import time
t0 = time.perf_counter()
import asyncio, json, sys
from fgo_tui.app import FGOApp
from fgo_tui.screens.sessions import SessionsScreen

async def main():
    app = FGOApp(sessions_dir=sys.argv[1], cursor_blink=False)
    out = {}
    async with app.run_test(size=(160, 50)) as pilot:
        while not (isinstance(app.screen, SessionsScreen) and app.screen.is_mounted):
            await pilot.pause(0.005)
        out["mounted"] = time.perf_counter() - t0
        while not app.screen.loaded:
            await pilot.pause(0.005)
        out["listed"] = time.perf_counter() - t0
        out["rows"] = len(app.screen.rows)
        out["litellm"] = "litellm" in sys.modules
    print(json.dumps(out))

asyncio.run(main())
"""


HELP_MODULES_CODE = """
import runpy, sys, io, contextlib
sys.argv = ['fgo', '--help']
with contextlib.redirect_stdout(io.StringIO()):
    try:
        runpy.run_module('fgo_cli', run_name='__main__')
    except SystemExit:
        pass
heavy = [m for m in ('litellm', 'textual', 'tiktoken', 'sqlite_utils', 'fgo_engine.run.session') if m in sys.modules]
print(','.join(heavy) or '-')
"""


def fgo_help(runs: int) -> tuple[float, str]:
    """Median wall seconds of `fgo --help` in a fresh process, and the heavy modules it imported."""
    exe = Path(sys.executable).with_name("fgo")
    cmd = [str(exe), "--help"] if exe.exists() else [sys.executable, "-m", "fgo_cli", "--help"]
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True, cwd=ROOT, timeout=60)
        times.append(time.perf_counter() - t)
    return statistics.median(times), run(HELP_MODULES_CODE)


def run(code: str, *args: str) -> str:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=120,
                       cwd=ROOT)
    if p.returncode != 0:
        raise SystemExit(p.stderr)
    return p.stdout.strip().splitlines()[-1]


def make_sessions(folder: Path, n: int) -> None:
    """n copies of one small finished session (built once on the simulated LLM)."""
    sys.path.insert(0, str(ROOT / "tests"))
    import toy_suite  # noqa: F401

    import fgo_engine  # noqa: F401
    from fgo_engine.config import RunConfig
    from fgo_engine.run.session import Session

    first = folder / "s00.db"
    s = Session.create(first, RunConfig.from_dict({"suite": "toy", "model": "fgo-sim/medium", "subsets": 3,
                                                   "epochs": 1}))
    try:
        s.run()
    finally:
        s.close()
    for i in range(1, n):
        shutil.copy(first, folder / f"s{i:02d}.db")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()

    t_help, heavy = fgo_help(a.runs)
    print(f"fgo --help: {t_help * 1000:.0f} ms (process wall time, median of {a.runs}; target < 500 ms); "
          f"heavy modules imported: {heavy}")

    imports = [run(IMPORT_CODE).split() for _ in range(a.runs)]
    t_import = statistics.median(float(x[0]) for x in imports)
    print(f"import fgo_tui.app: {t_import * 1000:.0f} ms (median of {a.runs}); "
          f"litellm imported: {any(x[1] == 'True' for x in imports)}")

    with tempfile.TemporaryDirectory() as tmp:
        empty = Path(tmp) / "empty"
        empty.mkdir()
        full = Path(tmp) / "full"
        full.mkdir()
        make_sessions(full, 20)
        for label, folder in (("empty sessions folder", empty), ("20 sessions", full)):
            res = [json.loads(run(FIRST_SCREEN_CODE, str(folder))) for _ in range(a.runs)]
            mounted = statistics.median(r["mounted"] for r in res)
            listed = statistics.median(r["listed"] for r in res)
            print(f"first screen, {label}: mounted {mounted * 1000:.0f} ms, list filled {listed * 1000:.0f} ms "
                  f"(process start → screen, median of {a.runs}; {res[0]['rows']} rows; "
                  f"litellm imported: {any(r['litellm'] for r in res)})")
    print("target: first screen < 1000 ms")


if __name__ == "__main__":
    main()
