"""Per-call cost of the tool sandbox: the in-process guard alone vs. with the OS layer
(bubblewrap namespaces). `python benchmarks/sandbox_overhead.py [calls]`."""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fgo_engine.tools import isolation  # noqa: E402
from fgo_engine.tools.sandbox import run_tool  # noqa: E402

SOURCE = "def add(a: int, b: int = 2) -> int:\n    return a + b\n"


def measure(mode: str, calls: int) -> list[float]:
    run_tool(SOURCE, "add", {"a": 1}, sandbox=mode)  # warm: probe, page cache
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        r = run_tool(SOURCE, "add", {"a": 1}, sandbox=mode)
        times.append((time.perf_counter() - t0) * 1000)
        assert r.ok and r.value == "3", r
    return times


def main() -> None:
    calls = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    layer = isolation.probe()
    print(f"OS layer: {layer.describe()}")
    modes = ["in-process"] + (["strict"] if layer.available else [])
    for mode in modes:
        t = measure(mode, calls)
        print(f"{mode:>10}: median {statistics.median(t):6.1f} ms, p90 {sorted(t)[int(0.9 * len(t))]:6.1f} ms "
              f"per call over {calls} calls")


if __name__ == "__main__":
    main()
