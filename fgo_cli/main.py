"""``fgo``: the command line. Headless commands never import Textual; the app is
imported only when a command opens it."""
from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fgo_engine  # noqa: F401  (environment defaults first)
from fgo_engine._env import sessions_dir
from fgo_engine.config import (
    BENCH_DEFAULTS,
    BENCH_METHODS,
    BENCH_VARIANTS,
    BENCH_VARY_KEYS,
    CLUSTERS,
    EXECUTORS,
    METHODS,
    PARTITIONS,
    REVIEWS,
    ROLES,
    RunConfig,
    parse_key_values,
)
from fgo_engine.errors import ConfigError, FGOError, SessionError
from fgo_tui.numbers import token_count

SESSIONS_DIR = sessions_dir()
EXIT = {"done": 0, "failed": 1, "budget": 3, "cancelled": 130, "paused": 0}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fgo", description="FGO Studio: divide, optimize, merge LLM agent modules.")
    sub = p.add_subparsers(dest="command")

    d = sub.add_parser("demo", help="open the app on a demo session (simulated LLM)")
    d.add_argument("--fresh", action="store_true", help="start a new demo (replaces sessions/demo.db)")

    r = sub.add_parser("run", help="start a new optimization session")
    src = r.add_mutually_exclusive_group()
    src.add_argument("--suite", help="a built-in suite (household, invoices, tools, bbh, alfworld) or an installed "
                                     "plugin's")
    src.add_argument("--tasks", metavar="FILE",
                     help="your own tasks: a .jsonl file (one JSON object per line) or a .csv file (a header row)")
    r.add_argument("--config", metavar="FILE", help="a TOML or JSON config file; flags override it")
    r.add_argument("--model", help="model for every role (litellm name, or fgo-sim/<profile>)")
    for role in ROLES:
        r.add_argument(f"--{role}-model", dest=f"{role}_model", help=f"model for the {role} role")
    r.add_argument("--api-base", help="API base URL for every role (a local server, say)")
    r.add_argument("--api-key-env", help="name of the environment variable holding the API key")
    r.add_argument("--method", choices=METHODS, help="fgo (default) or a baseline")
    r.add_argument("--subsets", type=int, help="N: number of subsets (default 4)")
    r.add_argument("--epochs", type=int, help="E: optimization epochs per subset (default 2)")
    r.add_argument("--threshold", type=int, help="t: merge groups of at most t modules in one call (default 2)")
    r.add_argument("--cluster", choices=CLUSTERS, help="clustering for progressive merging (default kmeans)")
    r.add_argument("--partition", choices=PARTITIONS, help="how to divide tasks (default category)")
    r.add_argument("--seed", type=int, help="seed for every random choice (default 0)")
    r.add_argument("--workers", type=int, help="subsets optimized in parallel (default 4)")
    r.add_argument("--executor", choices=EXECUTORS,
                   help="where rollouts run: threads (this process, default) or ray (needs the ray extra)")
    r.add_argument("--ray-address", metavar="ADDR",
                   help="join a Ray cluster (ray://host:10001, host:6379 or auto); default: a local instance")
    r.add_argument("--session", metavar="PATH", help="session file to create (default sessions/<suite>-<time>.db)")
    r.add_argument("--headless", action="store_true", help="run in the terminal without the app")
    r.add_argument("--dry-run", action="store_true",
                   help="print the projection (calls, tokens, cost, estimated wall time) and stop; "
                        "no session file, no LLM call, no API key needed")
    r.add_argument("--review", choices=REVIEWS, help="merge review: if-not-worse (default), auto, ask")
    r.add_argument("--backtest", choices=("full", "adaptive"),
                   help="backtest merges on the whole union (full, default) or a stratified sample (adaptive)")
    r.add_argument("--budget-tokens", type=token_count, metavar="N",
                   help="stop cleanly after this many tokens (500k, 1.2M and 12,000 work too)")
    r.add_argument("--budget-cost", type=float, help="stop cleanly after this cost in USD")
    r.add_argument("--scorer", help="scorer for --tasks: exact, normalized, regex, contains, numeric, "
                                    "final_answer, llm_judge")
    r.add_argument("--map", action="append", default=[], metavar="FIELD=COLUMN",
                   help="for --tasks: the column (or JSON key) holding a field, e.g. input=question (repeatable)")
    r.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="suite option, e.g. n_train=24 (repeatable)")
    _module_flags(r)
    r.add_argument("--track", choices=("mlflow",),
                   help="log params, scores, tokens and modules to MLflow (MLFLOW_TRACKING_URI, else ./mlruns)")
    r.add_argument("--no-cache", action="store_true", help="bypass the response cache")
    r.add_argument("--test-modules", action="store_true",
                   help="after the run, score every module of the merge tree on the test split too, not only the "
                        "result and the starting module (config test_modules = true; the projection shows the cost)")
    r.add_argument("--verbose", "-v", action="store_true")

    rs = sub.add_parser("resume", help="continue a saved session")
    rs.add_argument("session")
    rs.add_argument("--headless", action="store_true")
    rs.add_argument("--budget-tokens", type=token_count, metavar="N", help="a new (larger) token budget (e.g. 2M)")
    rs.add_argument("--budget-cost", type=float, help="a new (larger) cost budget")
    rs.add_argument("--review", choices=REVIEWS)
    rs.add_argument("--executor", choices=EXECUTORS, help="run the rest on threads or on ray")
    rs.add_argument("--ray-address", metavar="ADDR", help="the Ray cluster to join (with --executor ray)")
    rs.add_argument("--track", choices=("mlflow", "none"), help="log the rest of the run to MLflow, or stop logging")
    rs.add_argument("--verbose", "-v", action="store_true")

    s = sub.add_parser("sessions", help="list, show or delete sessions")
    s.add_argument("action", nargs="?", default="list", choices=("list", "show", "delete"))
    s.add_argument("session", nargs="?")
    s.add_argument("--dir", default=str(SESSIONS_DIR), help="sessions folder (default sessions/)")
    s.add_argument("--yes", action="store_true", help="delete without asking")

    e = sub.add_parser("export", help="export a session as Markdown or JSON")
    e.add_argument("session")
    e.add_argument("--format", choices=("md", "json"), default="md")
    e.add_argument("--out", help="file to write (default: print)")

    sub.add_parser("doctor", help="check this machine: the tool sandbox's OS layer, Python, SQLite, keys set")

    b = sub.add_parser("bench", help="compare FGO with the baselines (paper-style table)",
                       description="Run each method on the same training and test tasks "
                                   "and print a table of test scores, tokens, cost and wall times (training apart "
                                   "from the final test), saved as Markdown and JSON under --out.")
    bsrc = b.add_mutually_exclusive_group(required=True)
    bsrc.add_argument("--suite", help="built-in suite: household, invoices, tools, bbh, alfworld (or a plugin's)")
    bsrc.add_argument("--tasks", metavar="FILE", help="your own tasks (JSONL), as `fgo run --tasks`")
    b.add_argument("--scorer", help="scorer for --tasks: exact, normalized, regex, contains, numeric, "
                                    "final_answer, llm_judge")
    b.add_argument("--methods", default=",".join(BENCH_METHODS),
                   help="comma-separated, in table order; choose from " + ", ".join((*METHODS, *BENCH_VARIANTS))
                        + " (default %(default)s)")
    b.add_argument("--seeds", type=int, default=1, help="runs per method, seeds 0..K-1 (default 1)")
    b.add_argument("--config", metavar="FILE", help="a TOML or JSON config file the bench's settings override")
    b.add_argument("--model", help="model for every role (default fgo-sim/medium, or the --config file's)")
    for role in ROLES:
        b.add_argument(f"--{role}-model", dest=f"{role}_model", help=f"model for the {role} role")
    b.add_argument("--api-base", help="API base URL for every role (a local server, say)")
    b.add_argument("--window", type=int, metavar="TOKENS",
                   help="the optimizer's and merger's context window, hence their prompt budget (any model)")
    b.add_argument("--subsets", type=int, default=BENCH_DEFAULTS["subsets"],
                   help="N: subsets for FGO and no-merge, batches for batch-wise (default %(default)s)")
    b.add_argument("--epochs", type=int, default=BENCH_DEFAULTS["epochs"],
                   help="E: optimization epochs (default %(default)s)")
    b.add_argument("--threshold", type=int, default=BENCH_DEFAULTS["threshold"],
                   help="t: FGO merges groups of at most t modules in one call (default %(default)s)")
    b.add_argument("--latency", type=float, default=0.0, help="simulated seconds per LLM call")
    b.add_argument("--prefill-rate", type=float, default=0.0,
                   help="simulated prompt tokens per second (adds prompt_tokens / rate to each call)")
    b.add_argument("--decode-rate", type=float, default=0.0,
                   help="simulated completion tokens per second (adds completion_tokens / rate)")
    b.add_argument("--workers", type=int, default=BENCH_DEFAULTS["workers"], help="subsets optimized in parallel")
    b.add_argument("--task-workers", type=int, default=None, help="task workers shared by the subsets")
    b.add_argument("--max-concurrency", type=int, default=None, help="LLM calls in flight per model")
    b.add_argument("--backtest", choices=("full", "adaptive"), default=BENCH_DEFAULTS["backtest"],
                   help="FGO's merge backtests")
    b.add_argument("--review", choices=REVIEWS, default=BENCH_DEFAULTS["review"],
                   help="the fgo row's merge review (auto: the paper's, every merge adopted); the row "
                        "fgo-if-not-worse in --methods is the if-not-worse variant")
    b.add_argument("--jobs", type=int, default=1,
                   help="runs (seed x method) in that many processes at once; wall times then share the cores")
    b.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="suite option, e.g. n_train=24 (repeatable)")
    b.add_argument("--vary", action="append", default=[], metavar="KEY=V1,V2",
                   help="an FGO row per value with one setting changed; KEY is one of "
                        + ", ".join(BENCH_VARY_KEYS) + " (repeatable)")
    b.add_argument("--out", default="bench-out", help="folder for the table (Markdown + JSON) and sessions")
    _module_flags(b)
    return p


def _module_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--instruction", metavar="FILE", help="start from your own instruction (a text file)")
    g.add_argument("--toolbox", metavar="FILE", help="start from your own toolbox (a Python file of tools)")


def _module_args(a: argparse.Namespace) -> dict[str, str]:
    """``--instruction FILE`` / ``--toolbox FILE`` as config settings holding the file's text."""
    from fgo_engine.config import read_module_file

    out = {}
    for key in ("instruction", "toolbox"):
        path = getattr(a, key, None)
        if path:
            out[key] = read_module_file(path, key)
    return out


def _parse_map(pairs: list[str]) -> dict[str, str]:
    """``--map input=question --map expected=answer`` → ``{"input": "question", "expected": "answer"}``."""
    from fgo_engine.suites.jsonl_tasks import check_mapping

    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, column = pair.partition("=")
        if not sep or not key.strip() or not column.strip():
            raise ConfigError(f"--map: write FIELD=COLUMN, e.g. input=question (got {pair!r})")
        if key.strip() in out:
            raise ConfigError(f"--map: {key.strip()} is mapped twice")
        out[key.strip()] = column.strip()
    return check_mapping(out)


def _parse_options(pairs: list[str]) -> dict[str, Any]:
    return parse_key_values(pairs, "--option")


def _source_args(a: argparse.Namespace, data: dict[str, Any]) -> None:
    """What to optimize: --suite, or --tasks FILE with its --scorer and --map."""
    if a.suite:
        data["suite"] = a.suite
    if a.tasks:
        data["suite"] = "jsonl"
        data.setdefault("suite_options", {})["path"] = str(Path(a.tasks).resolve())
        if a.scorer:
            data["suite_options"]["scorer"] = a.scorer
    if a.map:
        if data.get("suite") != "jsonl":
            raise ConfigError("--map names the columns of a task file: use it with --tasks FILE")
        data.setdefault("suite_options", {})["mapping"] = _parse_map(a.map)


def config_from_args(a: argparse.Namespace, *, keys: bool = True) -> RunConfig:
    data: dict[str, Any] = {}
    if a.config:
        # as written, not resolved: a flag laid over them has the same consequences as
        # without a file (--api-base on loopback: a local server's defaults)
        data = RunConfig.settings(a.config)
    _source_args(a, data)
    opts = _parse_options(a.option)
    if opts:
        data.setdefault("suite_options", {}).update(opts)
    start = _module_args(a)
    if start:
        data.pop("instruction", None)
        data.pop("toolbox", None)
        data.update(start)
    for flag in ("method", "subsets", "epochs", "threshold", "cluster", "partition", "seed", "workers", "review",
                 "budget_tokens", "budget_cost", "backtest", "executor", "ray_address", "track"):
        v = getattr(a, flag)
        if v is not None:
            data[flag] = v
    if a.ray_address and not a.executor:
        data["executor"] = "ray"  # an address says where
    if a.no_cache:
        data["cache"] = False
    if getattr(a, "test_modules", False):
        data["test_modules"] = True
    roles = data.setdefault("roles", {})
    for role in ROLES:
        spec = roles.setdefault(role, {})
        model = getattr(a, f"{role}_model") or a.model
        if model:
            spec["model"] = model
        if a.api_base:
            spec["api_base"] = a.api_base
        if a.api_key_env:
            spec["api_key_env"] = a.api_key_env
    cfg = RunConfig.from_dict(data)
    _check_models(cfg, keys=keys)
    return cfg


def _check_models(cfg: RunConfig, *, keys: bool = True) -> None:
    """Catch a mistyped model name or a missing API key before any file is written."""
    from fgo_engine.run.preflight import check_models

    check_models(cfg, keys=keys)


def _default_session_path(cfg: RunConfig) -> Path:
    return SESSIONS_DIR / f"{cfg.suite}-{time.strftime('%Y%m%d-%H%M%S')}.db"


def _headless_gate(review: str, path: Path):
    """``ask``: the console asks, and the app following the run may answer instead."""
    if review == "ask":
        from fgo_engine.run.console_gate import ConsoleGate

        return ConsoleGate(session=path)
    return None


def _run_headless(session, verbose: bool) -> int:
    from fgo_engine.run.console import ConsolePrinter

    printer = ConsolePrinter(verbose=verbose)
    session.bus.add(printer)
    with _console_log(verbose):
        return _run_with_sigint(session, printer)


@contextlib.contextmanager
def _console_log(verbose: bool) -> Iterator[None]:
    """``-v``: the engine's log records on stderr too (the session log file gets them anyway)."""
    if not verbose:
        yield
        return
    from fgo_engine.run.logs import LOGGER, console_handler

    logger = logging.getLogger(LOGGER)
    handler, level = console_handler(sys.stderr), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _run_with_sigint(session, printer) -> int:
    previous = signal.getsignal(signal.SIGINT)

    def on_sigint(signum, frame):
        print("\ncancelling… no new LLM call starts (the session is saved; `fgo resume` continues it)",
              file=sys.stderr)
        # not in the handler itself: it may have interrupted this thread inside a lock cancel() takes
        threading.Thread(target=session.cancel, name="fgo-cancel", daemon=True).start()

    signal.signal(signal.SIGINT, on_sigint)
    try:
        result = session.run()
    except SessionError as exc:  # the session file could not be written (disk full, say): the run stopped
        from fgo_engine.redaction import scrub

        print(f"fgo: error: the run stopped: {scrub(str(exc))}", file=sys.stderr)
        return EXIT["failed"]
    finally:
        printer.stop()
        signal.signal(signal.SIGINT, previous)
        session.close()
    print(f"session: {session.store.path}")
    if session.session_log.path.exists():
        print(f"log: {session.session_log.path}")
    return EXIT.get(result.status, 1)


def cmd_run(a: argparse.Namespace) -> int:
    from fgo_engine.run.session import Session

    if not a.suite and not a.tasks and not a.config:
        raise ConfigError("say what to optimize: --suite NAME or --tasks FILE (.jsonl or .csv)")
    if a.dry_run:
        return dry_run(config_from_args(a, keys=False))
    cfg = config_from_args(a)
    path = Path(a.session) if a.session else _default_session_path(cfg)
    if path.exists():
        raise SessionError(f"{path} already exists; choose another --session or `fgo resume {path}`")
    if not a.headless:
        from fgo_tui.app import run_app

        return run_app(new_config=cfg, session_path=path)
    session = Session.create(path, cfg, gate=_headless_gate(cfg.review, path))
    for role, rc in cfg.roles.items():
        print(f"{role}: {rc.summary()}")
    print(f"review: {cfg.review}")
    print_projection(session)
    return _run_headless(session, a.verbose)


def dry_run(cfg: RunConfig) -> int:
    """``fgo run --dry-run``: the projection and its wall time, with or without the providers' keys."""
    from fgo_engine.method.methods import project
    from fgo_engine.method.walltime import wall_time
    from fgo_engine.run.preflight import missing_keys
    from fgo_engine.suites.base import build_suite

    suite = build_suite(cfg)
    train, test = suite.train_tasks(), suite.test_tasks()
    proj = project(cfg, suite, train, test)
    print(f"dry run: {cfg.method} on {cfg.suite}, {len(train)} train / {len(test)} test tasks; nothing is written "
          "and no LLM is called (calls ≤ is a hard bound; ~ are expected values)")
    for line in proj.lines() + wall_time(proj, cfg).lines():
        print("  " + line)
    for note in proj.notes:
        print(f"  note: {note}")
    for warning in proj.budget_warnings(cfg):
        print(f"warning: {warning}")
    for problem in missing_keys(cfg):
        print(f"note: {problem}: needed to run, not for this projection")
    return 0


def print_projection(session) -> None:
    """The projection before the run: calls (bound, expected), tokens and cost per role, budget warnings."""
    try:
        proj = session.projection()
    except Exception as exc:  # noqa: BLE001 - the run itself reports what is broken, with its traceback
        print(f"session {session.store.path}: no projection ({type(exc).__name__}: {exc})")
        return
    print(f"session {session.store.path}: projected LLM use (calls ≤ is a hard bound; ~ are expected values)")
    for line in proj.lines():
        print("  " + line)
    for note in proj.notes:
        print(f"  note: {note}")
    for warning in proj.budget_warnings(session.config):
        print(f"warning: {warning}")
    sys.stdout.flush()


def cmd_resume(a: argparse.Namespace) -> int:
    from fgo_engine.run.session import Session

    overrides = {k: v for k, v in (("budget_tokens", a.budget_tokens), ("budget_cost", a.budget_cost),
                                   ("review", a.review), ("executor", a.executor),
                                   ("ray_address", a.ray_address), ("track", a.track)) if v is not None}
    if a.track == "none":
        overrides["track"] = None
    if a.executor == "threads":
        overrides["ray_address"] = None
    elif a.ray_address:
        overrides["executor"] = "ray"
    path = resolve_session(a.session)
    if not a.headless:
        from fgo_tui.app import run_app

        return run_app(resume_path=path, overrides=overrides)
    session = Session.open(path, config_overrides=overrides)
    gate = _headless_gate(session.config.review, path)
    if gate is not None:
        session.gate = gate
    return _run_headless(session, a.verbose)


def resolve_session(name: str, folder: Path | None = None) -> Path:
    """A session file from what the operator typed: a path, or a name as `fgo sessions list` shows it
    ('demo' for sessions/demo.db, or the name stored in the file)."""
    p = Path(name)
    if p.exists():
        return p
    folder = folder or SESSIONS_DIR
    for candidate in (folder / name, folder / f"{name}.db"):
        if candidate.exists():
            return candidate
    if folder.exists() and "/" not in name:
        from fgo_engine.persistence import queries as q

        for r in q.list_sessions(folder):
            if r.get("name") == name:
                return Path(r["path"])
    raise SessionError(f"no session file at {name} (nor {folder / (name + '.db')}); `fgo sessions list` shows them")


def when(ts: str | None) -> str:
    """The one way the command line shows a stored timestamp: 'YYYY-MM-DD HH:MM' UTC."""
    return ts.replace("T", " ")[:16] if ts else "—"


def cmd_sessions(a: argparse.Namespace) -> int:
    from fgo_engine.persistence import queries as q

    folder = Path(a.dir)
    if a.action == "list":
        rows = q.list_sessions(folder) if folder.exists() else []
        if not rows:
            print(f"no sessions in {folder}/")
            return 0
        table = [("SESSION", "SUITE", "METHOD", "STATUS", "BEST", "TEST", "TOKENS", "UPDATED (UTC)", "MODELS")]
        unreadable = []
        for r in rows:
            name = Path(r["path"]).name  # `fgo export NAME` accepts it with or without .db
            if "error" in r:
                unreadable.append(f"{name}: {r.get('label', 'unreadable')} ({r['error']})")
                continue
            score = "—" if r["best_score"] is None else f"{r['best_score']:.3f}"
            test = "—" if r.get("test_score") is None else f"{r['test_score']:.3f}"
            table.append((name, r["suite"] or "?", r["method"], r["status"] or "new", score, test,
                          f"{r['tokens']:,}", when(r["updated_at"]), ", ".join(r["models"])))
        widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
        right = {4, 5, 6}
        for row in table:
            print("  ".join(cell.rjust(w) if i in right else cell.ljust(w)
                            for i, (cell, w) in enumerate(zip(row, widths))).rstrip())
        for line in unreadable:
            print(line)
        print(f"\n{len(rows)} session{'s' if len(rows) != 1 else ''} in {folder}/")
        return 0
    if not a.session:
        raise ConfigError(f"`fgo sessions {a.action}` needs a session file")
    path = resolve_session(a.session, folder)
    if a.action == "show":
        from fgo_engine.report.export import session_report, to_markdown

        st = q.open_readonly(path)
        try:
            print(to_markdown(session_report(st)), end="")
        finally:
            st.close()
        return 0
    if not path.exists():
        raise SessionError(f"no session file at {path}")
    from fgo_engine.errors import IncompleteSessionError, SessionLockedError
    from fgo_engine.persistence.store import session_holder

    holder = session_holder(path)
    if holder:
        raise SessionLockedError(f"{path} is in use by {holder}; not deleted")
    try:
        q.open_readonly(path).close()  # refuse to delete what is not a session
    except IncompleteSessionError:
        pass  # an interrupted creation: nothing in it, deleting is what it needs
    if not a.yes:
        if not sys.stdin.isatty():
            raise ConfigError("refusing to delete without confirmation; pass --yes")
        if input(f"delete {path}? [y/N] ").strip().lower() not in ("y", "yes"):
            print("kept")
            return 0
    from fgo_engine.run.logs import delete_session_files

    delete_session_files(path)
    print(f"deleted {path}")
    return 0


def cmd_export(a: argparse.Namespace) -> int:
    from fgo_engine.persistence import queries as q
    from fgo_engine.report.export import session_report, to_json, to_markdown

    st = q.open_readonly(resolve_session(a.session))
    try:
        rep = session_report(st)
    finally:
        st.close()
    text = to_json(rep) if a.format == "json" else to_markdown(rep)
    if a.out:
        Path(a.out).write_text(text, encoding="utf-8")
        print(f"wrote {a.out}")
    else:
        print(text, end="")
    return 0


def _parse_vary(items: list[str]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not values:
            raise ConfigError(f"--vary needs KEY=V1,V2 (got {item!r})")
        out[key.strip()] = [int(v) if v.strip().isdigit() else v.strip() for v in values.split(",")]
    return out


def cmd_bench(a: argparse.Namespace) -> int:
    from fgo_engine.run import bench

    methods = [m.strip() for m in a.methods.split(",") if m.strip()]
    extra: dict[str, Any] = {"backtest": a.backtest, **_module_args(a)}
    if a.task_workers is not None:
        extra["task_workers"] = a.task_workers
    if a.max_concurrency is not None:
        extra["roles"] = {r: {"max_concurrency": a.max_concurrency} for r in ROLES}
    base = RunConfig.settings(a.config) if a.config else None
    roles = {r: getattr(a, f"{r}_model") for r in ROLES if getattr(a, f"{r}_model")}
    suite, options = a.suite, _parse_options(a.option)
    if a.tasks:
        suite = "jsonl"
        options = {"path": str(Path(a.tasks).resolve()), **({"scorer": a.scorer} if a.scorer else {}), **options}
    elif a.scorer:
        raise ConfigError("--scorer goes with --tasks FILE")
    report = bench.run_bench(suite, methods=methods, seeds=a.seeds, model=a.model, subsets=a.subsets,
                             epochs=a.epochs, threshold=a.threshold, latency=a.latency,
                             prefill_rate=a.prefill_rate, decode_rate=a.decode_rate, workers=a.workers,
                             extra=extra, suite_options=options, out_dir=a.out,
                             vary=_parse_vary(a.vary), jobs=a.jobs, window=a.window, review=a.review,
                             roles=roles, api_base=a.api_base, base_config=base)
    print()
    print(bench.to_markdown(report), end="")
    md, js = bench.save(report, a.out)
    print(f"\nsaved {md} and {js}")
    return 0


def cmd_doctor(a: argparse.Namespace) -> int:
    """Facts about this machine that decide how FGO Studio runs here. Exit 1 when the
    tool sandbox's OS layer is missing (``sandbox = "strict"`` would refuse to run tools)."""
    import platform
    import sqlite3

    from fgo_engine.redaction import is_secret_name
    from fgo_engine.tools import isolation, syscalls

    layer = isolation.probe()
    filt = syscalls.build()
    abi = isolation.landlock_abi()
    facts = [
        ("tool sandbox (OS layer)", ("ok: " if layer.available else "MISSING: ") + layer.describe()),
        ("tool sandbox filter", ("ok: seccomp" if filt.available else "MISSING: " + filt.reason)),
        ("tool sandbox landlock", f"ABI {abi} (used without the OS layer)" if abi else "none in this kernel"),
        ("tool sandbox default", "auto: " + ("OS layer + in-process guard" if layer.available
                                             else "in-process layer only (strict would refuse tools)")),
        ("python", f"{platform.python_version()} ({sys.executable})"),
        ("platform", f"{platform.system()} {platform.release()} {platform.machine()}"),
        ("running as", f"uid {os.getuid()}" + (" (root: tools run as a fresh unprivileged uid)"
                                              if os.getuid() == 0 else "")),
        ("sqlite", sqlite3.sqlite_version),
        ("sessions folder", f"{SESSIONS_DIR.resolve()}" + ("" if SESSIONS_DIR.exists() else " (created on first run)")),
        ("litellm", "installed" if _has_module("litellm") else "missing (only fgo-sim models work)"),
    ]
    from fgo_engine.suites.base import broken_plugins, plugin_suites

    try:
        plugins, broken = plugin_suites(), broken_plugins()
    except FGOError as exc:  # FGO_PLUGINS naming a module that does not import
        plugins, broken = {}, {"FGO_PLUGINS": str(exc)}
    facts.append(("plugin suites", ", ".join(f"{n} ({pkg})" for n, pkg in sorted(plugins.items())) or "none"))
    facts += [(f"BROKEN plugin {name}", why) for name, why in sorted(broken.items())]
    keys = sorted(k for k, v in os.environ.items() if is_secret_name(k) and v.strip())
    facts.append(("key variables set", ", ".join(keys) if keys else "none (values are never shown)"))
    width = max(len(k) for k, _ in facts)
    for k, v in facts:
        print(f"{k:<{width}}  {v}")
    return 0 if layer.available and filt.available else 1


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def cmd_app(a: argparse.Namespace, demo: bool) -> int:
    from fgo_tui.app import run_app

    return run_app(demo=demo, fresh=bool(getattr(a, "fresh", False)))


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command is None:
            return cmd_app(args, demo=False)
        if args.command == "demo":
            return cmd_app(args, demo=True)
        handler = {"run": cmd_run, "resume": cmd_resume, "sessions": cmd_sessions, "export": cmd_export,
                   "bench": cmd_bench, "doctor": cmd_doctor}[args.command]
        return handler(args)
    except FGOError as exc:
        from fgo_engine.redaction import scrub

        print(f"fgo: error: {scrub(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("fgo: interrupted", file=sys.stderr)
        return 130
    except (RecursionError, OverflowError, ValueError) as exc:
        from fgo_engine.errors import python_limit

        limit = python_limit(exc)  # Python's own limits reached by the user's data: not a bug here
        if limit is None:
            raise
        print(f"fgo: error: the input goes beyond Python's limits ({limit})", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
