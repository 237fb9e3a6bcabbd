"""``fgo``: the command line. Headless commands never import Textual; the app is
imported only when a command opens it."""
from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fgo_engine  # noqa: F401  (environment defaults first)
from fgo_engine.config import CLUSTERS, METHODS, PARTITIONS, REVIEWS, ROLES, RunConfig, parse_key_values
from fgo_engine.errors import ConfigError, FGOError, SessionError

SESSIONS_DIR = Path(os.environ.get("FGO_SESSIONS_DIR", "sessions"))
EXIT = {"done": 0, "failed": 1, "budget": 3, "cancelled": 130, "paused": 0}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fgo", description="FGO Studio: divide, optimize, merge LLM agent modules.")
    sub = p.add_subparsers(dest="command")

    sub.add_parser("demo", help="open the app on a demo session (simulated LLM)")

    r = sub.add_parser("run", help="start a new optimization session")
    src = r.add_mutually_exclusive_group()
    src.add_argument("--suite", help="built-in suite: household, invoices, tools")
    src.add_argument("--tasks", metavar="FILE.jsonl", help="your own tasks, one JSON object per line")
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
    r.add_argument("--session", metavar="PATH", help="session file to create (default sessions/<suite>-<time>.db)")
    r.add_argument("--headless", action="store_true", help="run in the terminal without the app")
    r.add_argument("--review", choices=REVIEWS, help="merge review: auto (default), if-not-worse, ask")
    r.add_argument("--budget-tokens", type=int, help="stop cleanly after this many tokens")
    r.add_argument("--budget-cost", type=float, help="stop cleanly after this cost in USD")
    r.add_argument("--scorer", help="scorer for --tasks: exact, normalized, regex, contains, numeric, llm_judge")
    r.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="suite option, e.g. n_train=24 (repeatable)")
    r.add_argument("--no-cache", action="store_true", help="bypass the response cache")
    r.add_argument("--verbose", "-v", action="store_true")

    rs = sub.add_parser("resume", help="continue a saved session")
    rs.add_argument("session")
    rs.add_argument("--headless", action="store_true")
    rs.add_argument("--budget-tokens", type=int, help="a new (larger) token budget")
    rs.add_argument("--budget-cost", type=float, help="a new (larger) cost budget")
    rs.add_argument("--review", choices=REVIEWS)
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

    b = sub.add_parser("bench", help="compare FGO with the baselines (paper-style table)")
    b.add_argument("--suite", required=True)
    b.add_argument("--methods", default="vanilla,all-at-once,batch-wise,bootstrapping,fgo")
    b.add_argument("--seeds", type=int, default=1)
    b.add_argument("--model", default="fgo-sim/medium")
    b.add_argument("--subsets", type=int, default=4)
    b.add_argument("--epochs", type=int, default=2)
    b.add_argument("--threshold", type=int, default=2)
    b.add_argument("--latency", type=float, default=0.0, help="simulated seconds per LLM call")
    b.add_argument("--option", action="append", default=[], metavar="KEY=VALUE")
    b.add_argument("--vary", action="append", default=[], metavar="KEY=V1,V2",
                   help="FGO ablation rows: cluster, partition, subsets, threshold or epochs (repeatable)")
    b.add_argument("--out", default="bench-out", help="folder for the table (Markdown + JSON) and sessions")
    return p


def _parse_options(pairs: list[str]) -> dict[str, Any]:
    return parse_key_values(pairs, "--option")


def config_from_args(a: argparse.Namespace) -> RunConfig:
    data: dict[str, Any] = {}
    if a.config:
        data = RunConfig.load(a.config).to_dict()
    if a.suite:
        data["suite"] = a.suite
    if a.tasks:
        data["suite"] = "jsonl"
        data.setdefault("suite_options", {})["path"] = str(Path(a.tasks).resolve())
        if a.scorer:
            data["suite_options"]["scorer"] = a.scorer
    opts = _parse_options(a.option)
    if opts:
        data.setdefault("suite_options", {}).update(opts)
    for flag in ("method", "subsets", "epochs", "threshold", "cluster", "partition", "seed", "workers", "review",
                 "budget_tokens", "budget_cost"):
        v = getattr(a, flag)
        if v is not None:
            data[flag] = v
    if a.no_cache:
        data["cache"] = False
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
    _check_models(cfg)
    return cfg


def _check_models(cfg: RunConfig) -> None:
    """Catch a mistyped model name before any file is written."""
    from fgo_engine.sim.profiles import parse_model

    for role, rc in cfg.roles.items():
        if rc.model.startswith("fgo-sim/"):
            parse_model(rc.model)
        elif "/" not in rc.model and not rc.api_base:
            from fgo_engine.llm.gateway import get_litellm

            try:
                get_litellm().get_llm_provider(rc.model)
            except Exception:
                raise ConfigError(f"unknown model {rc.model!r} for role {role}: use a litellm name like "
                                  "'openai/gpt-4o-mini' or 'fgo-sim/medium'") from None


def _default_session_path(cfg: RunConfig) -> Path:
    return SESSIONS_DIR / f"{cfg.suite}-{time.strftime('%Y%m%d-%H%M%S')}.db"


def _headless_gate(review: str):
    if review == "ask":
        from fgo_engine.console_gate import ConsoleGate

        return ConsoleGate()
    return None


def _run_headless(session, verbose: bool) -> int:
    from fgo_engine.console import ConsolePrinter

    session.bus.add(ConsolePrinter(verbose=verbose))
    with _console_log(verbose):
        return _run_with_sigint(session)


@contextlib.contextmanager
def _console_log(verbose: bool) -> Iterator[None]:
    """``-v``: the engine's log records on stderr too (the session log file gets them anyway)."""
    if not verbose:
        yield
        return
    from fgo_engine.logs import LOGGER, console_handler

    logger = logging.getLogger(LOGGER)
    handler, level = console_handler(sys.stderr), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _run_with_sigint(session) -> int:
    previous = signal.getsignal(signal.SIGINT)

    def on_sigint(signum, frame):
        print("\ncancelling… (the session is saved; `fgo resume` continues it)", file=sys.stderr)
        session.cancel()

    signal.signal(signal.SIGINT, on_sigint)
    try:
        result = session.run()
    finally:
        signal.signal(signal.SIGINT, previous)
        session.close()
    print(f"session: {session.store.path}")
    if session.session_log.path.exists():
        print(f"log: {session.session_log.path}")
    return EXIT.get(result.status, 1)


def cmd_run(a: argparse.Namespace) -> int:
    from fgo_engine.method.methods import project_calls
    from fgo_engine.session import Session

    if not a.suite and not a.tasks and not a.config:
        raise ConfigError("say what to optimize: --suite NAME or --tasks FILE.jsonl")
    cfg = config_from_args(a)
    path = Path(a.session) if a.session else _default_session_path(cfg)
    if path.exists():
        raise SessionError(f"{path} already exists; choose another --session or `fgo resume {path}`")
    if not a.headless:
        from fgo_tui.app import run_app

        return run_app(new_config=cfg, session_path=path)
    session = Session.create(path, cfg, gate=_headless_gate(cfg.review))
    n_train, n_test = len(session.tasks("train")), len(session.tasks("test"))
    proj = project_calls(cfg, session.suite, n_train, n_test)
    print(f"session {path}: projected LLM calls at most " + ", ".join(f"{k} {v:,}" for k, v in proj.items()))
    return _run_headless(session, a.verbose)


def cmd_resume(a: argparse.Namespace) -> int:
    from fgo_engine.session import Session

    overrides = {k: v for k, v in (("budget_tokens", a.budget_tokens), ("budget_cost", a.budget_cost),
                                   ("review", a.review)) if v is not None}
    if not Path(a.session).exists():
        raise SessionError(f"no session file at {a.session}")
    if not a.headless:
        from fgo_tui.app import run_app

        return run_app(resume_path=Path(a.session), overrides=overrides)
    session = Session.open(a.session, config_overrides=overrides)
    gate = _headless_gate(session.config.review)
    if gate is not None:
        session.gate = gate
    return _run_headless(session, a.verbose)


def cmd_sessions(a: argparse.Namespace) -> int:
    from fgo_engine import queries as q

    folder = Path(a.dir)
    if a.action == "list":
        rows = q.list_sessions(folder) if folder.exists() else []
        if not rows:
            print(f"no sessions in {folder}/")
            return 0
        for r in rows:
            if "error" in r:
                print(f"{r['path']}: unreadable ({r['error']})")
                continue
            score = "—" if r["best_score"] is None else f"{r['best_score']:.3f}"
            print(f"{r['path']}  {r['suite']:<9} {r['method']:<13} {r['status']:<9} best {score}  "
                  f"{r['tokens']:>10,} tok  {', '.join(r['models'])}  {r['updated_at']}")
        return 0
    if not a.session:
        raise ConfigError(f"`fgo sessions {a.action}` needs a session file")
    path = Path(a.session)
    if a.action == "show":
        from fgo_engine.export import session_report, to_markdown

        st = q.open_readonly(path)
        try:
            print(to_markdown(session_report(st)), end="")
        finally:
            st.close()
        return 0
    if not path.exists():
        raise SessionError(f"no session file at {path}")
    q.open_readonly(path).close()  # refuse to delete what is not a session
    if not a.yes:
        if not sys.stdin.isatty():
            raise ConfigError("refusing to delete without confirmation; pass --yes")
        if input(f"delete {path}? [y/N] ").strip().lower() not in ("y", "yes"):
            print("kept")
            return 0
    from fgo_engine.logs import delete_session_files

    delete_session_files(path)
    print(f"deleted {path}")
    return 0


def cmd_export(a: argparse.Namespace) -> int:
    from fgo_engine import queries as q
    from fgo_engine.export import session_report, to_json, to_markdown

    st = q.open_readonly(a.session)
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
    from fgo_engine import bench

    methods = [m.strip() for m in a.methods.split(",") if m.strip()]
    report = bench.run_bench(a.suite, methods=methods, seeds=a.seeds, model=a.model, subsets=a.subsets,
                             epochs=a.epochs, threshold=a.threshold, latency=a.latency,
                             suite_options=_parse_options(a.option), out_dir=a.out, vary=_parse_vary(a.vary))
    print()
    print(bench.to_markdown(report), end="")
    md, js = bench.save(report, a.out)
    print(f"\nsaved {md} and {js}")
    return 0


def cmd_app(a: argparse.Namespace, demo: bool) -> int:
    from fgo_tui.app import run_app

    return run_app(demo=demo)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command is None:
            return cmd_app(args, demo=False)
        if args.command == "demo":
            return cmd_app(args, demo=True)
        handler = {"run": cmd_run, "resume": cmd_resume, "sessions": cmd_sessions, "export": cmd_export,
                   "bench": cmd_bench}[args.command]
        return handler(args)
    except FGOError as exc:
        print(f"fgo: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("fgo: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
