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

from fgo_engine.config import (
    BENCH_DEFAULTS,
    BENCH_METHODS,
    BENCH_VARIANTS,
    BENCH_VARY_KEYS,
    DEFAULT_MAX_TOKENS,
    METHODS,
    ROLES,
    RunConfig,
)
from fgo_engine.errors import ConfigError
from fgo_engine.method.prompts import REPLY_RESERVE
from fgo_engine.persistence import queries
from fgo_engine.report.critical_path import critical_path_of
from fgo_engine.run.logs import delete_session_files
from fgo_engine.run.session import RunResult, Session
from fgo_engine.types import is_simulated

DEFAULT_METHODS = BENCH_METHODS
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


# The paper's FGO adopts every merged module (review "auto"): that is the row called `fgo`;
# if-not-worse is the named variant row `fgo-if-not-worse`.
DEFAULTS = BENCH_DEFAULTS
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {"fgo-if-not-worse": ("fgo", {"review": "if-not-worse"})}
assert set(VARIANTS) == set(BENCH_VARIANTS)
VARY_KEYS = BENCH_VARY_KEYS
WINDOW_ROLES = ("optimizer", "merger")  # --window: the roles whose prompts the budget shapes


def _rows(methods: list[str], vary: dict[str, list[Any]] | None) -> list[tuple[str, str, dict[str, Any]]]:
    """(label, method, config override) per table row."""
    bad = [m for m in methods if m not in METHODS and m not in VARIANTS]
    if bad:
        raise ConfigError(f"unknown method {bad[0]!r}; choose from {', '.join([*METHODS, *VARIANTS])}")
    rows = [(m, *VARIANTS[m]) if m in VARIANTS else (m, m, {}) for m in methods]
    for key, values in (vary or {}).items():
        if key not in VARY_KEYS:
            raise ConfigError(f"--vary {key}: only {', '.join(sorted(VARY_KEYS))} can be varied")
        rows += [(f"fgo[{key}={v}]", "fgo", {key: v}) for v in values]
    return rows


def _with_sim_settings(model: str, settings: dict[str, Any]) -> str:
    """A simulated model's name with profile settings appended (a real model's unchanged)."""
    if not is_simulated(model):
        return model
    for key, value in settings.items():
        if value:
            model = f"{model}{',' if ':' in model else ':'}{key}={value}"
    return model


def bench_roles(*, model: str | None, roles: dict[str, str] | None = None, api_base: str | None = None,
                window: int | None = None, timing: dict[str, float] | None = None,
                base: dict[str, Any] | None = None) -> tuple[dict[str, Any], int | None]:
    """The per-role settings of every bench run, and the optimizer's prompt budget.

    ``base``: a config's roles (``--config``); ``model`` then replaces every role's model.
    ``window``: the optimizer's and merger's context window. A simulated model reads with
    that window; for a real one it sets the optimizer's prompt budget (window minus its
    reply's room), since a provider's window cannot be changed from here."""
    if window is not None and window < 1024:
        raise ConfigError(f"--window {window}: give a context window of 1024 tokens or more")
    out: dict[str, Any] = {}
    budget = None
    for role in ROLES:
        spec = dict((base or {}).get(role) or {})
        name = (roles or {}).get(role) or model or spec.get("model") or DEFAULTS["model"]
        settings = dict(timing or {})
        if window is not None and role in WINDOW_ROLES:
            settings["window"] = window
            if role == "optimizer" and not is_simulated(name):
                reserve = spec.get("max_tokens") or DEFAULT_MAX_TOKENS.get(role) or REPLY_RESERVE
                budget = max(1, window - min(reserve, window // 4))
        spec["model"] = _with_sim_settings(name, settings)
        if api_base:
            spec["api_base"] = api_base
        out[role] = spec
    return out, budget


def _merge_roles(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    return {r: {**(a.get(r) or {}), **(b.get(r) or {})} for r in set(a) | set(b)}


def _plan(suite: str, rows: list[tuple[str, str, dict[str, Any]]], seeds: int, sess_dir: Path,
          common: dict[str, Any]) -> list[dict[str, Any]]:
    plan = []
    for seed in range(seeds):
        for label, method, override in rows:
            config = {**common, "method": method, "seed": seed, **override}
            plan.append({"suite": suite, "label": label, "seed": seed, "sess_dir": str(sess_dir), "config": config})
    return plan


def _progress_line(label: str, seed: int, row: dict[str, Any]) -> str:
    return (f"{label:>16} seed {seed}: {row['status']}, test {_pct(row['test_score'])}, "
            f"{row['opt_prompt_tokens']:,} optimization prompt tokens spent "
            f"({row['opt_cached_prompt_tokens']:,} cached), training {row['train_wall_seconds']:.1f} s "
            f"(critical path {row['train_critical_path_seconds']:.1f} s), {row['wall_seconds']:.1f} s with the test"
            + (" (context overflow)" if row["overflowed"] else "")
            + (f" — {row['message']}" if row["message"] else ""))


def _execute(plan: list[dict[str, Any]], jobs: int, on_row: Callable[[dict[str, Any], dict[str, Any]], None]) -> None:
    pool = None
    try:
        if jobs > 1 and len(plan) > 1:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            # spawned, not forked: a fork of a process with threads can inherit a lock held mid-update
            pool = ProcessPoolExecutor(max_workers=min(jobs, len(plan)),
                                       mp_context=multiprocessing.get_context("spawn"))
            results = pool.map(_run_one, plan)
        else:
            results = map(_run_one, plan)
        for job, row in zip(plan, results):
            on_row(job, row)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)


def _summary(s: MethodSummary, cats: list[str]) -> dict[str, Any]:
    return {"runs": s.runs, "overall": s.stat("test_score"),
            "prompt_tokens": s.stat("opt_prompt_tokens"),
            "completion_tokens": s.stat("opt_completion_tokens"),
            "optimizer_prompt_tokens": s.stat("optimizer_prompt_tokens"),
            "test_prompt_tokens": s.stat("test_prompt_tokens"),
            "wall_seconds": s.stat("wall_seconds"),
            "train_wall_seconds": s.stat("train_wall_seconds"),
            "train_critical_path_seconds": s.stat("train_critical_path_seconds"),
            "cached_prompt_tokens": s.stat("opt_cached_prompt_tokens"),
            "critical_path_seconds": s.stat_path("seconds"),
            "wall_over_critical_path": s.stat("wall_over_critical_path"),
            "train_wall_over_critical_path": s.stat("train_wall_over_critical_path"),
            "phases": {ph: {k: s.stat_phase(ph, k)[0] for k in ("spent", "cached")} for ph in PHASES},
            "overflowed": s.overflowed, "optimizer_steps": s.stat("optimizer_steps"),
            "by_category": {c: s.category_stat(c) for c in cats}}


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def compare(fgo: dict[str, Any], aao: dict[str, Any]) -> dict[str, Any]:
    """FGO against all-at-once, on training time as the paper reports it."""
    return {
        "prompt_token_ratio": _ratio(fgo["prompt_tokens"][0], aao["prompt_tokens"][0]),
        "optimizer_prompt_token_ratio": _ratio(fgo["optimizer_prompt_tokens"][0], aao["optimizer_prompt_tokens"][0]),
        "wall_time_ratio": _ratio(aao["train_wall_seconds"][0], fgo["train_wall_seconds"][0]),
        "critical_path_ratio": _ratio(aao["train_critical_path_seconds"][0], fgo["train_critical_path_seconds"][0]),
        "fgo_backtest_share": _ratio(fgo["phases"]["backtest"]["spent"], fgo["prompt_tokens"][0]),
        "fgo_wall_over_critical_path": fgo["train_wall_over_critical_path"][0],
    }


def run_bench(suite: str, *, methods: list[str], seeds: int = 1, model: str | None = None,
              subsets: int = DEFAULTS["subsets"], epochs: int = DEFAULTS["epochs"],
              threshold: int = DEFAULTS["threshold"], latency: float = 0.0,
              prefill_rate: float = 0.0, decode_rate: float = 0.0,
              suite_options: dict[str, Any] | None = None, out_dir: str | Path | None = None,
              workers: int = DEFAULTS["workers"], progress: Callable[[str], None] = print,
              extra: dict[str, Any] | None = None, vary: dict[str, list[Any]] | None = None,
              jobs: int = 1, window: int | None = DEFAULTS["window"], review: str | None = None,
              roles: dict[str, str] | None = None, api_base: str | None = None,
              base_config: dict[str, Any] | None = None) -> dict[str, Any]:
    """``vary`` adds FGO ablation rows, e.g. ``{"cluster": ["spectral", "none"], "subsets": [2, 8]}``.
    ``jobs`` > 1 runs the (seed, method) runs in that many processes at once: the tables come
    out the same (every run is seeded), but the runs then share the cores, so their wall times
    are not a timing. ``base_config`` (a config file's settings) is what the bench's own
    settings override; ``roles`` names a model per role; ``window`` is the optimizer's and
    merger's context window (see :func:`bench_roles`)."""
    if jobs < 1:
        raise ConfigError(f"--jobs {jobs}: give 1 or more processes")
    rows = _rows(methods, vary)
    timing = {"latency": latency, "prefill_rate": prefill_rate, "decode_rate": decode_rate}
    base = {k: v for k, v in (base_config or {}).items() if k not in ("method", "seed", "model")}
    role_specs, budget = bench_roles(model=model, roles=roles, api_base=api_base, window=window, timing=timing,
                                     base=base.pop("roles", None))
    settings = dict(extra or {})
    if review is not None:
        settings["review"] = review
    settings.setdefault("review", DEFAULTS["review"])
    # each method's result (and the starting module) on the test split; the merge tree's other
    # modules are not scored here: the same test work for every method
    settings.setdefault("test_modules", False)
    settings["roles"] = _merge_roles(role_specs, settings.get("roles") or {})
    if budget is not None:
        settings.setdefault("prompt_budget", budget)
    common = {**base, "suite": suite, "suite_options": {**base.get("suite_options", {}), **(suite_options or {})},
              "subsets": subsets, "epochs": epochs, "threshold": threshold, "workers": workers, **settings}
    summaries = {label: MethodSummary(label) for label, _, _ in rows}

    def on_row(job: dict[str, Any], row: dict[str, Any]) -> None:
        summaries[job["label"]].runs.append(row)
        progress(_progress_line(job["label"], job["seed"], row))

    with tempfile.TemporaryDirectory(prefix="fgo-bench-") as tmp:
        sess_dir = Path(tmp) if out_dir is None else Path(out_dir) / "sessions"
        sess_dir.mkdir(parents=True, exist_ok=True)
        _execute(_plan(suite, rows, seeds, sess_dir, common), jobs, on_row)
    cats = sorted({c for s in summaries.values() for r in s.runs for c in r["test_by_category"]})
    models = {r: spec["model"] for r, spec in settings["roles"].items()}
    shown = {k: v for k, v in settings.items() if k != "roles"}
    unread = _unread_prompts(rows, models)
    report: dict[str, Any] = {
        "suite": suite, "model": models["agent"] if len(set(models.values())) == 1 else models, "roles": models,
        "seeds": seeds, "subsets": subsets, "epochs": epochs, "window": window, "review": settings["review"],
        "threshold": threshold, "latency": latency, "prefill_rate": prefill_rate, "decode_rate": decode_rate,
        "config": shown, "workers": workers, "categories": cats, "api_base": api_base,
        "simulated": all(is_simulated(m) for m in models.values()),
        "methods": {m: {**_summary(s, cats), "unread_prompts": m in unread} for m, s in summaries.items()},
    }
    fgo = report["methods"].get("fgo")
    aao = report["methods"].get("all-at-once")
    if fgo and aao and aao["prompt_tokens"][0]:
        report["fgo_vs_all_at_once"] = compare(fgo, aao)
    return report


# GEPA writes its own reflection prompt, which the simulated optimizer cannot read (it only
# knows this project's prompt tags and answers such a prompt as an agent would)
UNREAD = "the simulated optimizer cannot read GEPA's reflection prompt: its proposals and score say nothing about GEPA"


def _unread_prompts(rows: list[tuple[str, str, dict[str, Any]]], models: dict[str, str]) -> set[str]:
    """The rows whose optimizer prompts the simulated optimizer cannot read."""
    if not is_simulated(models.get("optimizer", "")):
        return set()
    return {label for label, method, _ in rows if method == "gepa"}


def _run_one(job: dict[str, Any]) -> dict[str, Any]:
    """One method on one seed, in a session file of its own: the row the summary is built from."""
    path = Path(job["sess_dir"]) / "{}-{}-seed{}.db".format(
        job["suite"], job["label"].replace("[", "-").replace("]", "").replace("=", "-"), job["seed"])
    delete_session_files(path)  # a previous bench's session of the same name
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
    row["final_text"] = res.final_module.text if res.final_module else None
    row["test_by_task"] = _test_by_task(path, res.final_module_id)
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
    # training time apart, as the paper reports it: the final test evaluation left out
    row["train_wall_seconds"] = res.train_wall_seconds if res.train_wall_seconds is not None else wall
    row["train_critical_path_seconds"] = crit["loops"] + crit["merge_tree"]
    row["train_wall_over_critical_path"] = _ratio(row["train_wall_seconds"], row["train_critical_path_seconds"])
    return row


def _test_by_task(path: Path, module_id: str | None) -> dict[str, float]:
    if not module_id:
        return {}
    store = queries.open_readonly(path)
    try:
        return queries.test_task_scores(store, module_id)
    finally:
        store.close()


Z95 = 1.959964  # the normal quantile of a two-sided 95% interval


def paired_difference(report: dict[str, Any], label: str, base: str = "vanilla") -> dict[str, Any] | None:
    """``label``'s test score minus ``base``'s, paired task by task within each seed (the same
    test tasks for every method): the mean difference and a 95% interval (normal
    approximation over the paired tasks). None when either row has no per-task scores."""
    runs = {r["seed"]: r for r in report["methods"].get(label, {}).get("runs", [])}
    base_runs = {r["seed"]: r for r in report["methods"].get(base, {}).get("runs", [])}
    diffs = []
    for seed, r in runs.items():
        b = base_runs.get(seed)
        if b is None:
            continue
        ours, theirs = r.get("test_by_task") or {}, b.get("test_by_task") or {}
        diffs += [ours[t] - theirs[t] for t in ours.keys() & theirs.keys()]
    if not diffs:
        return None
    mean = statistics.fmean(diffs)
    half = Z95 * statistics.stdev(diffs) / len(diffs) ** 0.5 if len(diffs) > 1 else float("inf")
    return {"difference": mean, "low": mean - half, "high": mean + half, "paired_tasks": len(diffs)}


def _difference_lines(report: dict[str, Any]) -> list[str]:
    rows = []
    for label in report["methods"]:
        d = None if label == "vanilla" else paired_difference(report, label)
        if d is not None:
            rows.append(f"| {label} | {100 * d['difference']:+.1f} | [{100 * d['low']:+.1f}, {100 * d['high']:+.1f}] "
                        f"| {d['paired_tasks']} |")
    if not rows:
        return []
    return ["", "Test score minus vanilla's, paired task by task within each seed (points; 95% interval, "
                "normal approximation):", "", "| method | difference | 95% interval | paired tasks |",
            "|---|---|---|---|", *rows]


def _pct(x: float | None, sd: float | None = None) -> str:
    if x is None:
        return "—"
    return f"{100 * x:.1f}" + (f" ± {100 * sd:.1f}" if sd else "")


def _num(x: float | None, fmt: str = ",.0f") -> str:
    return "—" if x is None else format(x, fmt)


def _models(report: dict[str, Any]) -> str:
    model = report["model"]
    return model if isinstance(model, str) else ", ".join(f"{r} {m}" for r, m in sorted(model.items()))


def to_markdown(report: dict[str, Any]) -> str:
    cats = report["categories"]
    head = ["method"] + cats + ["overall", "opt. prompt tok (spent)", "cached", "opt. completion tok",
                                "optimizer+merger prompt tok", "train s", "train critical path s",
                                "wall s (with test)"]
    lines = []
    if report["simulated"]:
        lines.append(f"Simulated LLM ({_models(report)}): a test bed, not evidence of real-model quality.")
    else:
        lines.append(f"Models: {_models(report)}" + (f" at {report['api_base']}" if report.get("api_base") else "")
                     + ".")
    lines.append("")
    lines.append(f"Suite {report['suite']}, {report['seeds']} seed(s), N={report['subsets']}, "
                 f"E={report['epochs']}, t={report['threshold']}, workers {report.get('workers')}, "
                 f"review {report.get('review')}, optimizer/merger window "
                 f"{_num(report.get('window')) if report.get('window') else 'the model’s own'}, "
                 f"settings {json.dumps(report.get('config') or {}, sort_keys=True)}. Success % on the test split "
                 "(mean ± sd over seeds); * = context overflow during optimization (an optimizer prompt left out "
                 "failures that did not fit its budget). Token columns count the optimization only (the final "
                 "test-split evaluation is the same work for every method and is left out); *spent* excludes "
                 "calls served by the response cache, which are shown apart as *cached*. *train s* is the "
                 "training wall time (the final test evaluation left out, as in the paper) and *train critical "
                 "path s* the longest chain of dependent calls in it; the ratios below use training time.")
    lines.append("")
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    unread = [m for m, s in report["methods"].items() if s.get("unread_prompts")]
    for m, s in report["methods"].items():
        mark = "*" if s["overflowed"] else ""
        scores = ([_pct(*s["by_category"][c]) for c in cats] + [f"**{_pct(*s['overall'])}**"]
                  if m not in unread else ["n/a†"] * (len(cats) + 1))
        cells = [m + mark] + scores + [
            _num(s["prompt_tokens"][0]), _num(s["cached_prompt_tokens"][0]),
            _num(s["completion_tokens"][0]), _num(s["optimizer_prompt_tokens"][0]),
            _num(s["train_wall_seconds"][0], ".1f"), _num(s["train_critical_path_seconds"][0], ".1f"),
            _num(s["wall_seconds"][0], ".1f"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    if unread:
        lines.append("")
        lines.append(f"† {', '.join(unread)}: {UNREAD}; its tokens and times are as measured (its metric-call "
                     "budget is FGO's training rollouts). Give a real optimizer model (--optimizer-model) to "
                     "compare scores.")
    lines += _difference_lines(report)
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
                     + (f"all-at-once / FGO training wall time: {r['wall_time_ratio']:.2f}× · "
                        if r.get("wall_time_ratio") is not None else "")
                     + (f"FGO training wall / its critical path: {woc:.2f}× · " if woc is not None else "")
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
