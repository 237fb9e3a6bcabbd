"""``fgo bench``: FGO against vanilla and the baselines, in the paper's table shape.

Every number comes from the runs: scores from the test-split evaluations, tokens from
each run's own ledger (each run gets a fresh session, so nothing is served from another
run's cache), wall time measured around the run.
"""
from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fgo_engine.config import METHODS, RunConfig
from fgo_engine.errors import ConfigError
from fgo_engine.report.critical_path import critical_path_of
from fgo_engine.run.session import RunResult, Session
from fgo_engine.types import is_simulated

DEFAULT_METHODS = ("vanilla", "all-at-once", "batch-wise", "bootstrapping", "fgo")
PHASES = ("explore", "evaluate", "optimize", "merge", "backtest")


@dataclass
class MethodSummary:
    method: str
    runs: list[dict[str, Any]] = field(default_factory=list)

    def _vals(self, key: str) -> list[float]:
        return [r[key] for r in self.runs if r.get(key) is not None]

    def stat(self, key: str) -> tuple[float | None, float | None]:
        v = self._vals(key)
        if not v:
            return None, None
        return statistics.fmean(v), (statistics.stdev(v) if len(v) > 1 else 0.0)

    def category_stat(self, cat: str) -> tuple[float | None, float | None]:
        v = [r["test_by_category"].get(cat) for r in self.runs if r["test_by_category"].get(cat) is not None]
        if not v:
            return None, None
        return statistics.fmean(v), (statistics.stdev(v) if len(v) > 1 else 0.0)

    def stat_path(self, key: str) -> tuple[float | None, float | None]:
        v = [r["critical_path"][key] for r in self.runs]
        return (statistics.fmean(v), statistics.stdev(v) if len(v) > 1 else 0.0) if v else (None, None)

    def stat_phase(self, phase: str, key: str) -> tuple[float | None, float | None]:
        v = [r["phases"][phase][key] for r in self.runs]
        return (statistics.fmean(v), statistics.stdev(v) if len(v) > 1 else 0.0) if v else (None, None)

    @property
    def overflowed(self) -> bool:
        return any(r["overflowed"] for r in self.runs)


def run_bench(suite: str, *, methods: list[str], seeds: int = 1, model: str = "fgo-sim/medium",
              subsets: int = 4, epochs: int = 2, threshold: int = 2, latency: float = 0.0,
              prefill_rate: float = 0.0, decode_rate: float = 0.0,
              suite_options: dict[str, Any] | None = None, out_dir: str | Path | None = None,
              workers: int = 4, progress: Callable[[str], None] = print,
              extra: dict[str, Any] | None = None, vary: dict[str, list[Any]] | None = None,
              jobs: int = 1) -> dict[str, Any]:
    """``vary`` adds FGO ablation rows, e.g. ``{"cluster": ["spectral", "none"], "subsets": [2, 8]}``.
    ``jobs`` > 1 runs the (seed, method) runs in that many processes at once: the tables come
    out the same (every run is seeded), but the runs then share the cores, so their wall times
    are not a timing."""
    if jobs < 1:
        raise ConfigError(f"--jobs {jobs}: give 1 or more processes")
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise ConfigError(f"unknown method {bad[0]!r}; choose from {', '.join(METHODS)}")
    allowed = {"cluster", "partition", "subsets", "threshold", "epochs", "backtest", "review"}
    runs: list[tuple[str, str, dict[str, Any]]] = [(m, m, {}) for m in methods]
    for key, values in (vary or {}).items():
        if key not in allowed:
            raise ConfigError(f"--vary {key}: only {', '.join(sorted(allowed))} can be varied")
        runs += [(f"fgo[{key}={v}]", "fgo", {key: v}) for v in values]
    timing = {"latency": latency, "prefill_rate": prefill_rate, "decode_rate": decode_rate}
    if is_simulated(model):
        for key, value in timing.items():
            if value:
                model = f"{model}{',' if ':' in model else ':'}{key}={value}"
    summaries = {label: MethodSummary(label) for label, _, _ in runs}
    tmp = None
    if out_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="fgo-bench-")
        sess_dir = Path(tmp.name)
    else:
        sess_dir = Path(out_dir) / "sessions"
        sess_dir.mkdir(parents=True, exist_ok=True)
    plan: list[dict[str, Any]] = []
    for seed in range(seeds):
        for label, method, override in runs:
            config = {"suite": suite, "suite_options": dict(suite_options or {}), "model": model, "method": method,
                      "subsets": subsets, "epochs": epochs, "threshold": threshold, "seed": seed,
                      "workers": workers, **(extra or {}), **override}
            plan.append({"suite": suite, "label": label, "seed": seed, "sess_dir": str(sess_dir), "config": config})
    pool = None
    try:
        if jobs > 1 and len(plan) > 1:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            # spawned, not forked: a fork of a process with threads can inherit a lock held mid-update
            pool = ProcessPoolExecutor(max_workers=min(jobs, len(plan)),
                                       mp_context=multiprocessing.get_context("spawn"))
            rows = pool.map(_run_one, plan)
        else:
            rows = map(_run_one, plan)
        for job, row in zip(plan, rows):
            summaries[job["label"]].runs.append(row)
            progress(f"{job['label']:>14} seed {job['seed']}: {row['status']}, test {_pct(row['test_score'])}, "
                     f"{row['opt_prompt_tokens']:,} optimization prompt tokens spent "
                     f"({row['opt_cached_prompt_tokens']:,} cached), {row['wall_seconds']:.1f} s "
                     f"(critical path {row['critical_path']['seconds']:.1f} s)"
                     + (" (context overflow)" if row["overflowed"] else "")
                     + (f" — {row['message']}" if row["message"] else ""))
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        if tmp is not None:
            tmp.cleanup()
    cats = sorted({c for s in summaries.values() for r in s.runs for c in r["test_by_category"]})
    report: dict[str, Any] = {
        "suite": suite, "model": model, "seeds": seeds, "subsets": subsets, "epochs": epochs,
        "threshold": threshold, "latency": latency, "prefill_rate": prefill_rate, "decode_rate": decode_rate,
        "config": dict(extra or {}), "workers": workers, "categories": cats,
        "simulated": is_simulated(model),
        "methods": {m: {"runs": s.runs, "overall": s.stat("test_score"),
                        "prompt_tokens": s.stat("opt_prompt_tokens"),
                        "completion_tokens": s.stat("opt_completion_tokens"),
                        "optimizer_prompt_tokens": s.stat("optimizer_prompt_tokens"),
                        "test_prompt_tokens": s.stat("test_prompt_tokens"),
                        "wall_seconds": s.stat("wall_seconds"),
                        "cached_prompt_tokens": s.stat("opt_cached_prompt_tokens"),
                        "critical_path_seconds": s.stat_path("seconds"),
                        "wall_over_critical_path": s.stat("wall_over_critical_path"),
                        "phases": {ph: {k: s.stat_phase(ph, k)[0] for k in ("spent", "cached")} for ph in PHASES},
                        "overflowed": s.overflowed, "optimizer_steps": s.stat("optimizer_steps"),
                        "by_category": {c: s.category_stat(c) for c in cats}}
                    for m, s in summaries.items()},
    }
    fgo = report["methods"].get("fgo")
    aao = report["methods"].get("all-at-once")
    if fgo and aao and aao["prompt_tokens"][0]:
        report["fgo_vs_all_at_once"] = {
            "prompt_token_ratio": fgo["prompt_tokens"][0] / aao["prompt_tokens"][0],
            "optimizer_prompt_token_ratio": (fgo["optimizer_prompt_tokens"][0] / aao["optimizer_prompt_tokens"][0]
                                             if aao["optimizer_prompt_tokens"][0] else None),
            "wall_time_ratio": (aao["wall_seconds"][0] / fgo["wall_seconds"][0]) if fgo["wall_seconds"][0] else None,
            "fgo_backtest_share": (fgo["phases"]["backtest"]["spent"] / fgo["prompt_tokens"][0]
                                   if fgo["prompt_tokens"][0] else None),
            "fgo_wall_over_critical_path": fgo["wall_over_critical_path"][0],
        }
    return report


def _run_one(job: dict[str, Any]) -> dict[str, Any]:
    """One method on one seed, in a session file of its own: the row the summary is built from."""
    path = Path(job["sess_dir"]) / "{}-{}-seed{}.db".format(
        job["suite"], job["label"].replace("[", "-").replace("]", "").replace("=", "-"), job["seed"])
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    cfg = RunConfig.from_dict(job["config"])
    session = Session.create(path, cfg, name=path.stem)
    t0 = time.perf_counter()
    try:
        res: RunResult = session.run()
    finally:
        session.close()
    wall = time.perf_counter() - t0
    crit = critical_path_of(path)
    row = asdict(res)
    row.pop("final_module")
    row["opt_prompt_tokens"] = res.optimization_prompt_tokens
    row["opt_completion_tokens"] = sum(v["completion_tokens"] for k, v in res.by_phase.items() if k != "test")
    row["optimizer_prompt_tokens"] = sum(res.by_role.get(r, {}).get("prompt_tokens", 0)
                                         for r in ("optimizer", "merger"))
    row["wall_seconds"] = wall
    row["seed"] = job["seed"]
    row["test_prompt_tokens"] = res.by_phase.get("test", {}).get("prompt_tokens", 0)
    row["phases"] = {ph: {"spent": res.by_phase.get(ph, {}).get("prompt_tokens", 0),
                          "cached": res.by_phase.get(ph, {}).get("cached_prompt_tokens", 0)}
                     for ph in PHASES}
    row["opt_cached_prompt_tokens"] = sum(v["cached"] for v in row["phases"].values())
    row["critical_path"] = crit
    row["wall_over_critical_path"] = wall / crit["seconds"] if crit["seconds"] else None
    return row


def _pct(x: float | None, sd: float | None = None) -> str:
    if x is None:
        return "—"
    return f"{100 * x:.1f}" + (f" ± {100 * sd:.1f}" if sd else "")


def _num(x: float | None, fmt: str = ",.0f") -> str:
    return "—" if x is None else format(x, fmt)


def to_markdown(report: dict[str, Any]) -> str:
    cats = report["categories"]
    head = ["method"] + cats + ["overall", "opt. prompt tok (spent)", "cached", "opt. completion tok",
                                "optimizer+merger prompt tok", "wall s", "critical path s"]
    lines = []
    if report["simulated"]:
        lines.append(f"Simulated LLM ({report['model']}): a test bed, not evidence of real-model quality.")
        lines.append("")
    lines.append(f"Suite {report['suite']}, {report['seeds']} seed(s), N={report['subsets']}, "
                 f"E={report['epochs']}, t={report['threshold']}, workers {report.get('workers')}, "
                 f"settings {json.dumps(report.get('config') or {}, sort_keys=True)}. Success % on the test split "
                 "(mean ± sd over seeds); * = context overflow during optimization (an optimizer prompt left out "
                 "failures that did not fit its budget). Token columns count the optimization only (the final "
                 "test-split evaluation is the same work for every method and is left out); *spent* excludes "
                 "calls served by the response cache, which are shown apart as *cached*.")
    lines.append("")
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for m, s in report["methods"].items():
        mark = "*" if s["overflowed"] else ""
        cells = [m + mark] + [_pct(*s["by_category"][c]) for c in cats] + [
            f"**{_pct(*s['overall'])}**", _num(s["prompt_tokens"][0]), _num(s["cached_prompt_tokens"][0]),
            _num(s["completion_tokens"][0]), _num(s["optimizer_prompt_tokens"][0]),
            _num(s["wall_seconds"][0], ".1f"), _num(s["critical_path_seconds"][0], ".1f"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Prompt tokens per phase, spent / cached:")
    lines.append("")
    lines.append("| method | " + " | ".join(PHASES) + " |")
    lines.append("|---|" + "---|" * len(PHASES))
    for m, s in report["methods"].items():
        cells = [f"{_num(s['phases'][ph]['spent'])} / {_num(s['phases'][ph]['cached'])}" for ph in PHASES]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    r = report.get("fgo_vs_all_at_once")
    if r:
        lines.append("")
        opt = r.get("optimizer_prompt_token_ratio")
        share = r.get("fgo_backtest_share")
        woc = r.get("fgo_wall_over_critical_path")
        lines.append(f"FGO / all-at-once optimization prompt tokens (spent): {r['prompt_token_ratio']:.2f}× · "
                     + (f"optimizer+merger prompt tokens: {opt:.2f}× · " if opt is not None else "")
                     + f"all-at-once / FGO wall time: {r['wall_time_ratio']:.2f}× · "
                     + (f"FGO wall / its critical path: {woc:.2f}× · " if woc is not None else "")
                     + (f"backtest share of FGO's spent prompt tokens: {100 * share:.0f}%" if share is not None
                        else ""))
    return "\n".join(lines) + "\n"


def save(report: dict[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    md, js = out / f"bench-{report['suite']}.md", out / f"bench-{report['suite']}.json"
    md.write_text(to_markdown(report), encoding="utf-8")
    js.write_text(json.dumps(report, indent=2), encoding="utf-8")
    return md, js
