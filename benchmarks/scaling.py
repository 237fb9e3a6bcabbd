"""Growing data: every method on household and invoices at n_train 24, 48, 96, 192 (the
paper's central claim: all-at-once becomes untenable as the training set grows).

Per (suite, n_train, method): spent optimization prompt tokens, optimizer+merger prompt
tokens, training wall time, context overflow, test score. Fits each method's growth
exponent b (tokens ∝ n^b, least squares on log-log) and prints it, an in-terminal chart
(plotext, the widget library the app uses) and writes bench/results/scaling.json, .md and
scaling-<suite>.png (a small PNG written here with zlib: no plotting dependency).

FGO runs at N = the suite's categories (the paper's setting) and at twice that (the row
``fgo[subsets=…]``). The simulated LLM is a test bed, not a model. The optimizer's and
merger's window is the paper's 128k; one epoch; no emulated latency unless ``--latency``
(methods.py's API-like timing), so that the grid fits in `make bench`.
Household stops at 96 in `make bench` (``--full``: 192 too, ~15 more minutes on 2 cores);
``python benchmarks/scaling.py --quick``: sizes 12 and 24 only; ``--suites=invoices``: one suite.
"""
from __future__ import annotations

import json
import math
import os
import platform
import struct
import sys
import time
import zlib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fgo_engine.config import BENCH_DEFAULTS  # noqa: E402
from fgo_engine.run import bench  # noqa: E402

OUT = ROOT / "bench" / "results"
SIZES = (24, 48, 96, 192)
# household's episodes are long multi-turn runs: at 192 its grid alone would exceed make
# bench's 20 minutes on 2 cores, so make bench stops it at 96 (``--full``: 192 as well)
SUITE_SIZES = {"household": (24, 48, 96), "invoices": SIZES}
N_TEST = 12  # the test score is a side column here; the methods' tables use larger splits
EPOCHS = 1  # tokens grow with E by a constant factor: one epoch keeps the grid inside `make bench`
WINDOW = 128_000
# no emulated latency by default (the training wall is then the engine's and the simulator's
# own CPU time, which grows with the data too); --latency emulates methods.py's API-like calls
TIMING = {"latency": 0.0, "prefill_rate": 0.0, "decode_rate": 0.0}
API_TIMING = {"latency": 0.1, "prefill_rate": 20_000.0, "decode_rate": 200.0}
SETTINGS = {"task_workers": 64, "roles": {r: {"max_concurrency": 64} for r in
                                          ("agent", "evaluator", "optimizer", "merger")}}
SUITES = {"household": 6, "invoices": 4}  # N by category: six task types, four languages
METHODS = ("vanilla", "all-at-once", "batch-wise", "bootstrapping", "fgo")


def fit_exponent(ns: list[float], ys: list[float]) -> float | None:
    """b of y ∝ n^b: least squares on (log n, log y); None with fewer than two positive points."""
    pts = [(math.log(n), math.log(y)) for n, y in zip(ns, ys) if n > 0 and y and y > 0]
    if len(pts) < 2:
        return None
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    return sum((x - mx) * (y - my) for x, y in pts) / sxx if sxx else None


def run_suite(suite: str, subsets: int, sizes: tuple[int, ...], timing: dict[str, float]) -> dict[str, Any]:
    rows: dict[str, list[dict[str, Any]]] = {}
    for n in sizes:
        t0 = time.perf_counter()
        report = bench.run_bench(suite, methods=list(METHODS), subsets=subsets, epochs=EPOCHS,
                                 threshold=BENCH_DEFAULTS["threshold"], workers=BENCH_DEFAULTS["workers"],
                                 suite_options={"n_train": n, "n_test": N_TEST}, extra=SETTINGS,
                                 vary={"subsets": [2 * subsets]}, window=WINDOW, out_dir=None,
                                 progress=lambda s, n=n: print(f"  n={n} {s}", flush=True), **timing)
        print(f"{suite} n_train={n}: {time.perf_counter() - t0:.0f} s", flush=True)
        for label, m in report["methods"].items():
            rows.setdefault(label, []).append({
                "n_train": n, "prompt_tokens": m["prompt_tokens"][0],
                "optimizer_prompt_tokens": m["optimizer_prompt_tokens"][0],
                "train_wall_seconds": m["train_wall_seconds"][0],
                "train_critical_path_seconds": m["train_critical_path_seconds"][0],
                "overflowed": m["overflowed"], "test_score": m["overall"][0]})
    exps = {label: {"prompt_tokens": fit_exponent([r["n_train"] for r in rs], [r["prompt_tokens"] for r in rs]),
                    "optimizer_prompt_tokens": fit_exponent([r["n_train"] for r in rs],
                                                            [r["optimizer_prompt_tokens"] for r in rs]),
                    "train_wall_seconds": fit_exponent([r["n_train"] for r in rs],
                                                       [r["train_wall_seconds"] for r in rs])}
            for label, rs in rows.items()}
    return {"suite": suite, "subsets": subsets, "rows": rows, "exponents": exps}


def _b(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}"


def to_markdown(result: dict[str, Any]) -> str:
    lines = [f"### {result['suite']} (N={result['subsets']}, and FGO at N={2 * result['subsets']})", "",
             "| method | n_train | opt. prompt tok (spent) | optimizer+merger prompt tok | train s | "
             "train critical path s | overflow | test % |", "|---|---|---|---|---|---|---|---|"]
    for label, rs in result["rows"].items():
        for r in rs:
            score = "—" if r["test_score"] is None else f"{100 * r['test_score']:.1f}"
            lines.append(f"| {label} | {r['n_train']} | {r['prompt_tokens'] or 0:,.0f} | "
                         f"{r['optimizer_prompt_tokens'] or 0:,.0f} | {r['train_wall_seconds'] or 0:.1f} | "
                         f"{r['train_critical_path_seconds'] or 0:.1f} | {'yes' if r['overflowed'] else 'no'} | "
                         f"{score} |")
    lines += ["", "Growth exponent b (∝ n^b, least squares on log-log):", "",
              "| method | spent prompt tokens | optimizer+merger prompt tokens | training wall |", "|---|---|---|---|"]
    for label, e in result["exponents"].items():
        lines.append(f"| {label} | {_b(e['prompt_tokens'])} | {_b(e['optimizer_prompt_tokens'])} | "
                     f"{_b(e['train_wall_seconds'])} |")
    return "\n".join(lines) + "\n"


def terminal_chart(result: dict[str, Any]) -> str:
    """Spent prompt tokens against n_train, log-log, as text (plotext)."""
    import plotext as plt

    plt.clear_figure()
    plt.plotsize(90, 22)
    for label, rs in result["rows"].items():
        pts = [(r["n_train"], r["prompt_tokens"]) for r in rs if r["prompt_tokens"]]
        if pts:
            plt.plot([math.log2(n) for n, _ in pts], [math.log10(y) for _, y in pts], label=label, marker="dot")
    sizes = sorted({r["n_train"] for rs in result["rows"].values() for r in rs})
    plt.xticks([math.log2(n) for n in sizes], [str(n) for n in sizes])
    plt.title(f"{result['suite']}: spent optimization prompt tokens (log10) vs n_train")
    plt.theme("clear")
    return str(plt.build())


# -- a small PNG, written here ------------------------------------------------------------
COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
           (227, 119, 194)]
# a 3×5 font for the few characters the chart's labels use
FONT = {
    "0": "111101101101111", "1": "010110010010111", "2": "111001111100111", "3": "111001111001111",
    "4": "101101111001001", "5": "111100111001111", "6": "111100111101111", "7": "111001001001001",
    "8": "111101111101111", "9": "111101111001111", "a": "010101111101101", "b": "110101110101110",
    "c": "011100100100011", "d": "110101101101110", "e": "111100110100111", "f": "111100110100100",
    "g": "011100101101011", "h": "101101111101101", "i": "111010010010111", "k": "101101110101101",
    "l": "100100100100111", "m": "101111111101101", "n": "110101101101101", "o": "010101101101010",
    "p": "110101110100100", "r": "110101110101101", "s": "011100010001110", "t": "111010010010010",
    "u": "101101101101111", "v": "101101101101010", "w": "101101111111101", "x": "101101010101101",
    "y": "101101010010010", "z": "111001010100111", "-": "000000111000000", "=": "000111000111000",
    "[": "110100100100110", "]": "011001001001011", " ": "000000000000000", ".": "000000000000010",
    "^": "010101000000000", ",": "000000000010100", "/": "001001010100100", "(": "010100100100010",
    ")": "010001001001010", "_": "000000000000111", ":": "000010000010000", "*": "000101010101000",
}


class Canvas:
    def __init__(self, w: int, h: int) -> None:
        self.w, self.h = w, h
        self.px = bytearray(b"\xff" * (w * h * 3))

    def dot(self, x: int, y: int, c: tuple[int, int, int], r: int = 0) -> None:
        for dx in range(-r, r + 1):
            for dy in range(-r, r + 1):
                if 0 <= x + dx < self.w and 0 <= y + dy < self.h:
                    i = ((y + dy) * self.w + x + dx) * 3
                    self.px[i:i + 3] = bytes(c)

    def line(self, x0: float, y0: float, x1: float, y1: float, c: tuple[int, int, int], r: int = 0) -> None:
        steps = int(max(abs(x1 - x0), abs(y1 - y0))) + 1
        for k in range(steps + 1):
            t = k / steps
            self.dot(round(x0 + (x1 - x0) * t), round(y0 + (y1 - y0) * t), c, r)

    def text(self, x: int, y: int, s: str, c: tuple[int, int, int] = (0, 0, 0), scale: int = 2) -> None:
        for ch in s.lower().replace("—", "-").replace("×", "*"):
            glyph = FONT.get(ch, FONT[" "])
            for i, bit in enumerate(glyph):
                if bit == "1":
                    for sx in range(scale):
                        for sy in range(scale):
                            self.dot(x + (i % 3) * scale + sx, y + (i // 3) * scale + sy, c)
            x += 4 * scale

    def png(self) -> bytes:
        raw = b"".join(b"\x00" + bytes(self.px[y * self.w * 3:(y + 1) * self.w * 3]) for y in range(self.h))

        def chunk(kind: bytes, data: bytes) -> bytes:
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

        return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", self.w, self.h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def png_chart(result: dict[str, Any]) -> bytes:
    """Spent optimization prompt tokens against n_train, log-log, one line per method."""
    w, h, left, right, top, bottom = 760, 460, 90, 230, 40, 60
    cv = Canvas(w, h)
    series = {label: [(r["n_train"], r["prompt_tokens"]) for r in rs if r["prompt_tokens"]]
              for label, rs in result["rows"].items()}
    pts = [p for s in series.values() for p in s]
    if not pts:
        return cv.png()
    xs = [math.log(n) for n, _ in pts]
    ys = [math.log10(y) for _, y in pts]
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y0, y1 = math.floor(min(ys)), math.ceil(max(ys)) if math.ceil(max(ys)) > math.floor(min(ys)) else math.floor(
        min(ys)) + 1

    def at(n: float, y: float) -> tuple[float, float]:
        return (left + (math.log(n) - x0) / (x1 - x0) * (w - left - right),
                h - bottom - (math.log10(y) - y0) / (y1 - y0) * (h - top - bottom))

    grey, black = (200, 200, 200), (0, 0, 0)
    for e in range(y0, y1 + 1):  # decades
        yy = h - bottom - (e - y0) / (y1 - y0) * (h - top - bottom)
        cv.line(left, yy, w - right, yy, grey)
        cv.text(left - 50, round(yy) - 5, f"10^{e}")
    for n in sorted({n for n, _ in pts}):
        xx, _ = at(n, 10 ** y0)
        cv.line(xx, top, xx, h - bottom, grey)
        cv.text(round(xx) - 10, h - bottom + 10, str(n))
    cv.line(left, h - bottom, w - right, h - bottom, black)
    cv.line(left, top, left, h - bottom, black)
    cv.text(left, 12, f"{result['suite']}: spent prompt tokens vs n_train (log-log)")
    cv.text(left + 150, h - 25, "n_train (training tasks)")
    cv.text(8, top - 20, "tokens")
    for k, (label, s) in enumerate(series.items()):
        c = COLOURS[k % len(COLOURS)]
        for (na, ya), (nb, yb) in zip(s, s[1:]):
            cv.line(*at(na, ya), *at(nb, yb), c, r=1)
        for n, y in s:
            xx, yy = at(n, y)
            cv.dot(round(xx), round(yy), c, r=3)
        if not s:
            continue
        b = result["exponents"][label]["prompt_tokens"]
        cv.line(w - right + 15, top + 10 + 22 * k, w - right + 35, top + 10 + 22 * k, c, r=1)
        cv.text(w - right + 42, top + 5 + 22 * k, f"{label} b={_b(b)}")
    return cv.png()


def main() -> None:
    quick = "--quick" in sys.argv
    timing = API_TIMING if "--latency" in sys.argv else TIMING
    OUT.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    def sizes_of(suite: str) -> tuple[int, ...]:
        return (12, 24) if quick else SIZES if "--full" in sys.argv else SUITE_SIZES[suite]

    only = next((a.split("=", 1)[1].split(",") for a in sys.argv if a.startswith("--suites=")), list(SUITES))
    results = [run_suite(suite, n, sizes_of(suite), timing) for suite, n in SUITES.items() if suite in only]
    machine = f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    elapsed = time.perf_counter() - t0
    md = ["# Growing data (`benchmarks/scaling.py`, in `make bench`)", "",
          f"Machine: {machine}; {elapsed:.0f} s. Simulated LLM `{BENCH_DEFAULTS['model']}` (a test bed, not a "
          f"model), optimizer/merger window {WINDOW:,}, E={EPOCHS}, n_test {N_TEST}, "
          + (f"emulated latency {timing['latency']} s + prompt / {timing['prefill_rate']:,.0f} tok/s + completion / "
             f"{timing['decode_rate']:,.0f} tok/s per call" if timing["latency"] else
             "no emulated latency (training wall = the engine's and the simulator's CPU time, one run at a time "
             "on a shared machine: noisy)")
          + ". Token columns count the optimization only (the final test evaluation left out); *train s* is "
          "training wall time.", ""]
    for res in results:
        md.append(to_markdown(res))
        md.append(f"![{res['suite']}](scaling-{res['suite']}.png)\n")
        (OUT / f"scaling-{res['suite']}.png").write_bytes(png_chart(res))
        print(terminal_chart(res), flush=True)
        print(to_markdown(res), flush=True)
    (OUT / "scaling.md").write_text("\n".join(md), encoding="utf-8")
    (OUT / "scaling.json").write_text(json.dumps({"machine": machine, "elapsed_seconds": elapsed, "window": WINDOW,
                                                  "timing": timing, "epochs": EPOCHS, "n_test": N_TEST,
                                                  "suites": results}, indent=2), encoding="utf-8")
    print(f"wrote {OUT / 'scaling.md'} ({elapsed:.0f} s)")


if __name__ == "__main__":
    main()
