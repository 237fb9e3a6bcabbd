"""`make bench`: every benchmark script, one after the other (each times itself alone on the
machine), then how long each took. Writes bench/results/make-bench.json."""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

here = Path(__file__).parent
out = here.parent / "bench" / "results" / "make-bench.json"
took: dict[str, dict] = {}
start = time.perf_counter()
SKIP = {"run_all.py", "bench_real.py", "gguf.py"}  # a real model (`make bench-real`) and its download
for script in sorted(here.glob("*.py")):
    if script.name in SKIP:
        continue
    print(f"== {script.name}", flush=True)
    t = time.perf_counter()
    code = subprocess.run([sys.executable, str(script)], check=False).returncode
    took[script.name] = {"seconds": round(time.perf_counter() - t, 1), "exit_code": code}
total = time.perf_counter() - start
print("\nmake bench, seconds per script:")
for name, r in took.items():
    print(f"  {name:<22} {r['seconds']:>7.1f}" + ("" if r["exit_code"] == 0 else f"   FAILED (exit {r['exit_code']})"))
print(f"  {'total':<22} {total:>7.1f}  ({total / 60:.1f} min)")
out.parent.mkdir(parents=True, exist_ok=True)
out.write_text(json.dumps({"machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, "
                                      f"Python {platform.python_version()}",
                           "scripts": took, "total_seconds": round(total, 1)}, indent=2), encoding="utf-8")
sys.exit(1 if any(r["exit_code"] for r in took.values()) else 0)
