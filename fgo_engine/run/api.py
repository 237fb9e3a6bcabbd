"""``fgo_engine.optimize``: optimize the instruction of your own agent from Python.

    import fgo_engine
    result = fgo_engine.optimize(tasks="tasks.jsonl", agent=my_agent, scorer="normalized",
                                 instruction="You are ...", model="openai/gpt-4o-mini",
                                 session="runs/mine.db")
    result.module, result.test_score, result.session

The run is an ordinary session: one SQLite file that ``fgo`` opens and ``fgo resume``
continues (when the agent and scorer can be imported by name), every LLM call of the agent in
its ledger and cache. Calling ``optimize`` again with the same ``session`` resumes it (the
agent and scorer are given again: code is not stored). See docs/python-api.md.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fgo_engine import events as ev
from fgo_engine.config import ROLES, RunConfig
from fgo_engine.errors import ConfigError, FGOError, SessionError, UserCodeError
from fgo_engine.method.review import ReviewGate
from fgo_engine.persistence import queries
from fgo_engine.run.session import RunResult, Session
from fgo_engine.suites.base import with_starting_module
from fgo_engine.suites.user_agent import NAME, UserAgentSuite

DEFAULT_DIR = Path("sessions")


@dataclass
class OptimizeResult:
    """What ``optimize`` returns. ``status`` is ``done``, or ``budget`` / ``cancelled`` for a run
    that stopped cleanly (``module`` is then ``None``; resume with a larger budget)."""

    module: str | None
    test_score: float | None  # None when there is no test split (the test set is the training set)
    train_score: float | None
    session: Path
    status: str
    message: str = ""
    skipped: list[str] = field(default_factory=list)  # tasks that raised with on_error="skip"
    run: RunResult | None = None  # tokens, calls, cost, wall time

    def __str__(self) -> str:
        score = "—" if self.test_score is None else f"{self.test_score:.3f}"
        return f"{self.status}: test score {score}, session {self.session}"


def _roles(model: str | None, models: dict[str, Any] | None, api_base: str | None,
           api_key_env: str | None) -> dict[str, Any]:
    if models is not None and not isinstance(models, dict):
        raise ConfigError("models must map roles (agent, evaluator, optimizer, merger) to model names")
    unknown = sorted(set(models or {}) - set(ROLES))
    if unknown:
        raise ConfigError(f"models: unknown role {unknown[0]!r}; roles are {', '.join(ROLES)}")
    roles: dict[str, Any] = {}
    for role in ROLES:
        spec = (models or {}).get(role, model)
        spec = {} if spec is None else ({"model": spec} if isinstance(spec, str) else dict(spec))
        if api_base and "api_base" not in spec:
            spec["api_base"] = api_base
        if api_key_env and "api_key_env" not in spec:
            spec["api_key_env"] = api_key_env
        roles[role] = spec
    return roles


def _default_path(suite: UserAgentSuite) -> Path:
    stem = (suite.agent_label.rsplit(".", 1)[-1] or NAME).replace("<", "").replace(">", "") or NAME
    return DEFAULT_DIR / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}.db"


def optimize(
    tasks: Any,
    agent: Callable[..., Any],
    scorer: Callable[..., Any] | str | dict[str, Any] = "normalized",
    *,
    instruction: str | Path | None = None,
    model: str | None = None,
    models: dict[str, Any] | None = None,
    subsets: int = 4,
    epochs: int = 2,
    review: str = "if-not-worse",
    session: str | Path | None = None,
    method: str = "fgo",
    threshold: int = 2,
    seed: int = 0,
    workers: int = 4,
    budget_tokens: int | None = None,
    budget_cost: float | None = None,
    api_base: str | None = None,
    api_key_env: str | None = None,
    test_fraction: float | None = None,
    mapping: dict[str, str] | None = None,
    on_error: str = "stop",
    describe: str | None = None,
    calls_per_task: int = 1,
    validate: Callable[[str], Any] | None = None,
    cache: bool = True,
    track: str | None = None,
    settings: dict[str, Any] | None = None,
    gate: ReviewGate | None = None,
    sinks: list[Callable[[ev.Event], None]] | None = None,
    progress: bool = False,
    check_keys: bool = True,
) -> OptimizeResult:
    """Optimize ``instruction`` for ``agent`` on ``tasks``; see the module docstring.

    ``instruction``: the starting instruction's text, or a ``Path`` to a file holding it.
    ``progress=True`` prints the run's progress on stdout, as ``fgo run --headless`` does.

    ``tasks``: a list of ``{"id", "input", "expected", "category"?, "split"?, ...}`` dicts
    (other keys reach the agent too) or the path of a JSONL / CSV file. ``agent(module, task,
    llm) -> str | Trajectory``; ``scorer(answer, task) -> float`` in [0, 1] or a built-in
    scorer's name. ``model`` for every role, or ``models={"agent": ..., "optimizer": ...}``
    (a role not named takes ``model``). ``settings``: any other run setting (``cluster``,
    ``partition``, ``backtest``, ``roles``...), as in a config file. ``track="mlflow"`` logs the run
    to MLflow (the ``track`` extra). ``review="ask"`` asks on the
    terminal unless a ``gate`` is given. ``on_error="skip"``: a task whose agent or scorer
    raises counts as failed (listed in ``result.skipped``) instead of stopping the run.
    ``validate(module_text)`` raises ``ValueError`` for a module your agent cannot use (the
    optimizer is then asked again; a starting instruction it refuses is a ConfigError).

    Called again with an existing ``session``, it continues that session (its stored settings
    and tasks; this call's budgets and review policy), the callables given again.

    Bad input raises before anything is written: :class:`ConfigError`, :class:`TaskFileError`,
    :class:`UserCodeError` (a scorer that fails on a task's own expected answer). A run that
    the user's code breaks raises :class:`UserCodeError` (task id, the user's traceback; the
    session is kept and can be resumed); another failed run raises :class:`SessionError`.
    """
    if not callable(agent):
        raise ConfigError(f"agent must be a callable agent(module, task, llm) (got {type(agent).__name__})")
    suite = UserAgentSuite(agent=agent, scorer=scorer, tasks=tasks, seed=seed, test_fraction=test_fraction,
                           mapping=mapping, on_error=on_error, describe=describe, calls_per_task=calls_per_task,
                           validate=validate)
    data: dict[str, Any] = dict(settings or {})
    for key in ("suite", "suite_options", "instruction"):
        if key in data:
            raise ConfigError(f"settings: {key!r} is given by optimize's own arguments")
    options = suite.options()  # no task source: the session stores the tasks, a resume reads them there
    data.update(suite=NAME, suite_options=options, method=method, subsets=subsets, epochs=epochs,
                threshold=threshold, seed=seed, workers=workers, review=review, cache=cache,
                budget_tokens=budget_tokens, budget_cost=budget_cost, track=track)
    if "roles" not in data or model or models:
        data["roles"] = _roles(model, models, api_base, api_key_env)
    if isinstance(instruction, Path):
        from fgo_engine.config import read_module_file

        instruction = read_module_file(instruction, "instruction")
    if instruction is not None:
        data["instruction"] = instruction
    if {t.id for t in suite.train_tasks()} == {t.id for t in suite.test_tasks()}:
        data.setdefault("evaluate_test", False)  # no test split: no test score to report
    config = RunConfig.from_dict(data)
    from fgo_engine.run.preflight import check_models

    check_models(config, keys=check_keys)
    started = with_starting_module(suite, config)
    if gate is None and config.review == "ask":
        from fgo_engine.run.console_gate import ConsoleGate

        gate = ConsoleGate()
    path = Path(session) if session is not None else _default_path(suite)
    printer = None
    if progress:
        from fgo_engine.run.console import ConsolePrinter

        printer = ConsolePrinter()
        sinks = [*(sinks or []), printer]
    if path.exists():
        run = _reopen(path, suite, started, config, gate, sinks)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        run = Session.create(path, config, suite=started, gate=gate, sinks=sinks)
    try:
        result = run.run()
    finally:
        if printer is not None:
            printer.stop()
        run.close()
    return _result(path, suite, result)


def _reopen(path: Path, suite: UserAgentSuite, started: Any, config: RunConfig, gate: ReviewGate | None,
            sinks: list[Callable[[ev.Event], None]] | None) -> Session:
    """The session at ``path`` continued with the callables given again (its own config and tasks)."""
    overrides = {"budget_tokens": config.budget_tokens, "budget_cost": config.budget_cost, "review": config.review,
                 "track": config.track}
    session = Session.open(path, config_overrides=overrides, suite=started, gate=gate, sinks=sinks)
    try:
        if session.config.suite != NAME:
            raise SessionError(f"{path} is a session of suite {session.config.suite!r}, not of an agent of "
                               "yours; choose another session path")
        stored = {t.id for t in queries.tasks(session.store, "train")} | {
            t.id for t in queries.tasks(session.store, "test")}
        given = {t.id for t in suite.train_tasks()} | {t.id for t in suite.test_tasks()}
        if stored != given:
            raise SessionError(f"{path} holds other tasks than the ones given ({len(stored)} stored, "
                               f"{len(given)} given); choose another session path to start a new run")
    except BaseException:
        session.close()
        raise
    return session


def _result(path: Path, suite: UserAgentSuite, result: RunResult) -> OptimizeResult:
    if result.status == "failed":
        if suite.failure is not None:
            err = suite.failure
            raise UserCodeError(f"{err} — session {path} (resume it once the code is fixed)",
                                task_id=err.task_id, user_traceback=err.user_traceback)
        raise SessionError(f"the run failed: {result.message} — session {path}")
    module = result.final_module.text if result.final_module is not None and result.status == "done" else None
    return OptimizeResult(module=module, test_score=result.test_score, train_score=result.train_score,
                          session=path, status=result.status, message=result.message,
                          skipped=list(suite.skipped), run=result)


__all__ = ["OptimizeResult", "optimize", "FGOError"]
