"""The user's own agent as a suite: ``fgo_engine.optimize(tasks=, agent=, scorer=, ...)``.

The agent is a callable ``agent(module: str, task: dict, llm) -> str | Trajectory``: it runs
one task with the module (the instruction being optimized) and gives the final answer.
``llm(messages, tools=None)`` returns a :class:`~fgo_engine.types.Completion` through the
engine's gateway (ledger, cache, budgets, resume); every call is also a step of the
trajectory the evaluator reads. The scorer is ``scorer(answer: str, task: dict) -> float``
in [0, 1], or the name of a built-in scorer (``normalized``, ``exact``, ``numeric``, ...).

The user's code is never trusted to be right: a wrong signature is refused before anything
is written; an agent or scorer that raises stops the run (``on_error="stop"``, the default:
later tasks fail at once) or marks that task failed (``on_error="skip"``), with the task id
and the user's traceback in the session log; a scorer value that is not a number in [0, 1]
always stops the run. Never a silent zero.

A session stores the import path (``module:qualname``) of the agent and scorer when they
can be imported, so ``fgo resume`` can rebuild the suite; else it says how to resume.
"""
from __future__ import annotations

import importlib
import inspect
import json
import logging
import math
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fgo_engine.errors import (
    BudgetExceededError,
    CancelledError,
    ConfigError,
    FGOError,
    MalformedOutputError,
    UserCodeError,
)
from fgo_engine.suites.base import AgentLLM, SuiteBase, register_suite
from fgo_engine.suites.jsonl_tasks import read_task_file, rows_from_objects, split_rows
from fgo_engine.suites.scoring import SCORER_NAMES, extract_answer, get_scorer, parse_spec
from fgo_engine.types import Completion, Module, ModuleKind, Step, Task, Trajectory

NAME = "user_agent"
ON_ERROR = ("stop", "skip")
DEFAULT_INSTRUCTION = "You solve the task you are given and state one final answer."
_fallback_log = logging.getLogger("fgo.user_agent")


def import_path(obj: Any) -> str | None:
    """``module:qualname`` when ``obj`` can be imported back by that name in another process
    (not a lambda, a closure, a method of an instance, or anything defined in ``__main__``)."""
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not module or not qualname or module == "__main__" or "<" in qualname:
        return None
    try:
        found: Any = importlib.import_module(module)
        for part in qualname.split("."):
            found = getattr(found, part)
    except Exception:  # noqa: BLE001 - anything that does not resolve is "not importable"
        return None
    return f"{module}:{qualname}" if found is obj else None


def load_ref(ref: str, what: str) -> Callable[..., Any]:
    """The callable named by ``module:qualname``, or a one-line :class:`ConfigError`."""
    module, sep, qualname = ref.partition(":")
    if not sep or not module or not qualname:
        raise ConfigError(f"{what}: write module:name (got {ref!r})")
    try:
        found: Any = importlib.import_module(module)
        for part in qualname.split("."):
            found = getattr(found, part)
    except ImportError as exc:
        raise ConfigError(f"{what} {ref}: cannot import {module!r} ({exc}); is it on PYTHONPATH?") from None
    except AttributeError:
        raise ConfigError(f"{what} {ref}: {module!r} has no {qualname!r}") from None
    if not callable(found):
        raise ConfigError(f"{what} {ref} is not callable")
    return found


def describe_callable(obj: Any) -> str:
    name = getattr(obj, "__qualname__", None) or type(obj).__name__
    return f"{getattr(obj, '__module__', '?')}.{name}"


def check_signature(fn: Any, n: int, what: str, shape: str) -> None:
    """``fn`` must be callable with ``n`` positional arguments (a typed error before any file)."""
    if not callable(fn):
        raise ConfigError(f"{what} must be a callable {shape} (got {type(fn).__name__})")
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return  # a builtin without a signature: found out on the first call
    try:
        sig.bind(*([None] * n))
    except TypeError as exc:
        raise ConfigError(f"{what} {describe_callable(fn)}{sig} cannot be called as {shape}: {exc}") from None


def task_dict(task: Task) -> dict[str, Any]:
    """What the user's agent and scorer see: the task's fields, its meta keys beside them."""
    out: dict[str, Any] = {k: v for k, v in task.meta.items() if k not in ("id", "input", "expected", "category")}
    out.update(id=task.id, input=task.input, expected=task.expected, category=task.category, meta=dict(task.meta))
    return out


def _user_frames(exc: BaseException) -> str:
    """The user's traceback, without this module's own frame on top."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


class _Recorder:
    """The ``llm`` the user's agent calls: the gateway's agent role, each call also a step."""

    def __init__(self, llm: AgentLLM):
        self._llm = llm
        self.steps: list[Step] = []
        self._seen = 0

    def __call__(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> Completion:
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            raise TypeError("llm(messages): messages must be a list of {'role': ..., 'content': ...} dicts")
        for m in messages[self._seen if self._seen <= len(messages) else 0:]:  # what is new since the last call
            if m.get("role") in ("user", "tool"):
                self.steps.append(Step("observation" if m.get("role") == "tool" else "input",
                                       str(m.get("content") or "")))
        comp = self._llm(messages, tools=tools)
        self._seen = len(messages)
        for call in comp.tool_calls:
            self.steps.append(Step("tool_call", f"{call.get('name')}({call.get('arguments')})"))
        if comp.text:
            self.steps.append(Step("action", comp.text))
        return comp


class UserAgentSuite(SuiteBase):
    """The user's agent and scorer over the user's tasks; the module is an instruction."""

    name = NAME
    module_kind: ModuleKind = "instruction"

    def __init__(
        self,
        agent: Callable[..., Any] | str | None = None,
        scorer: Callable[..., Any] | str | dict[str, Any] | None = "normalized",
        tasks: Any = None,
        path: str | None = None,
        seed: int = 0,
        test_fraction: float | None = None,
        mapping: dict[str, str] | None = None,
        on_error: str = "stop",
        describe: str | None = None,
        calls_per_task: int = 1,
        agent_label: str | None = None,
        validate: Callable[[str], Any] | None = None,
        **options: Any,
    ):
        if options:
            raise ConfigError(f"{NAME}: unknown option {sorted(options)[0]!r} (options: agent, scorer, tasks, "
                              "path, test_fraction, mapping, on_error, describe, calls_per_task)")
        if on_error not in ON_ERROR:
            raise ConfigError(f"on_error must be 'stop' or 'skip' (got {on_error!r})")
        if isinstance(calls_per_task, bool) or not isinstance(calls_per_task, int) or calls_per_task < 1:
            raise ConfigError(f"calls_per_task must be a whole number ≥ 1 (got {calls_per_task!r})")
        if describe is not None and (not isinstance(describe, str) or not describe.strip()):
            raise ConfigError("describe must be a sentence saying what the agent does")
        if agent is None:
            label = agent_label or "the agent"
            raise ConfigError(f"this session's agent ({label}) cannot be imported by name (a lambda, a closure "
                              "or a function defined in __main__): resume it from Python with "
                              "fgo_engine.optimize(..., agent=..., session=PATH)")
        self.agent_ref = agent if isinstance(agent, str) else import_path(agent)
        self.agent = load_ref(agent, "agent") if isinstance(agent, str) else agent
        check_signature(self.agent, 3, "agent", "agent(module, task, llm)")
        self.agent_label = agent_label or describe_callable(self.agent)
        self._builtin = None
        self.scorer_ref: str | None = None
        if scorer is None:
            raise ConfigError(f"this session's scorer cannot be imported by name: resume it from Python with "
                              f"fgo_engine.optimize(..., scorer=..., session=PATH), or give one of "
                              f"{', '.join(SCORER_NAMES)}")
        if isinstance(scorer, dict) or (isinstance(scorer, str) and ":" not in scorer):
            self._builtin = get_scorer(scorer)
            self.scorer_ref = scorer if isinstance(scorer, str) else json.dumps(scorer)
            self.scorer_name = parse_spec(scorer)[0]
            self.scorer: Callable[..., Any] = self._builtin
        else:
            self.scorer = load_ref(scorer, "scorer") if isinstance(scorer, str) else scorer
            check_signature(self.scorer, 2, "scorer", "scorer(answer, task)")
            self.scorer_ref = scorer if isinstance(scorer, str) else import_path(scorer)
            self.scorer_name = describe_callable(self.scorer)
        if validate is not None and not callable(validate):
            raise ConfigError("validate must be a callable validate(module_text) that raises ValueError")
        self._validate = validate
        self.on_error = on_error
        self.calls_per_task = calls_per_task
        self._describe = describe
        self.seed = seed
        self.notes: list[str] = []
        unnamed = [what for what, ref in (("agent", self.agent_ref), ("scorer", self.scorer_ref)) if ref is None]
        if unnamed:
            self.notes.append(f"your {' and '.join(unnamed)} cannot be imported by name (a lambda, a closure or "
                              "defined in __main__): `fgo resume` cannot continue this session; call "
                              "fgo_engine.optimize again with the same session to resume it")
        self.skipped: list[str] = []  # task ids whose agent or scorer raised (on_error="skip")
        self.failure: UserCodeError | None = None  # the error that stopped the run
        self._lock = threading.Lock()
        self._log: Any = _fallback_log
        check = getattr(self._builtin, "check", None)
        if tasks is not None and path is not None:
            raise ConfigError("give tasks or path, not both")
        self.path = None if path is None else str(path)
        if tasks is None and path is None:
            self.rows = []  # reopened from a session file: the session holds the tasks
            self._train: list[Task] = []
            self._test: list[Task] = []
            return
        if path is not None or isinstance(tasks, (str, Path)):
            src = Path(path if path is not None else tasks)
            self.path = str(src)
            self.rows = read_task_file(src, check=check, mapping=mapping)
            label, where = src.name, str(src)
        else:
            self.rows = rows_from_objects(tasks, check=check, mapping=mapping)
            label = where = "tasks"
        if test_fraction is not None and (isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float))
                                          or not 0.0 <= test_fraction < 1.0):
            raise ConfigError(f"test_fraction must be a number in [0, 1), got {test_fraction!r}")
        self._train, self._test, notes = split_rows(self.rows, seed, None if test_fraction is None
                                                    else float(test_fraction), label, where)
        self.notes.extend(notes)
        self.probe_scorer(self._train[0])

    # -- the suite protocol -----------------------------------------------------------
    def train_tasks(self) -> list[Task]:
        return list(self._train)

    def test_tasks(self) -> list[Task]:
        return list(self._test)

    def initial_module(self) -> Module:
        return Module("instruction", DEFAULT_INSTRUCTION)

    def describe(self) -> str:
        if self._describe:
            return self._describe
        return (f"The agent is the user's own program ({self.agent_label}); the instruction is its system "
                f"prompt. Its answers are scored by {self.scorer_name}.")

    def set_log(self, log: Any) -> None:
        self._log = log

    def validate_module(self, text: str) -> None:
        """The user's ``validate(text)`` (a ValueError: a module the agent cannot use)."""
        if self._validate is None:
            return
        try:
            self._validate(text)
        except ValueError as exc:
            raise MalformedOutputError(str(exc)) from None

    def options(self) -> dict[str, Any]:
        """What a session stores to rebuild this suite in another process (no callables)."""
        out: dict[str, Any] = {"agent": self.agent_ref, "scorer": self.scorer_ref, "on_error": self.on_error,
                               "calls_per_task": self.calls_per_task, "agent_label": self.agent_label}
        if self._describe:
            out["describe"] = self._describe
        return out

    # -- running the user's code ------------------------------------------------------
    def probe_scorer(self, task: Task) -> None:
        """The scorer on a task's own expected answer, before anything is written: a scorer that
        raises or returns no number in [0, 1] is refused up front."""
        try:
            self.score(task, task.expected)
        except UserCodeError as exc:
            raise UserCodeError(f"the scorer fails on its first check (the expected answer of task {task.id} "
                                f"scored against itself): {exc}", task_id=task.id,
                                user_traceback=exc.user_traceback) from None

    def score(self, task: Task, answer: str) -> float:
        if self._builtin is not None:
            return float(self._builtin(answer, task.expected))
        try:
            value = self.scorer(answer, task_dict(task))
        except (CancelledError, BudgetExceededError):
            raise
        except Exception as exc:
            raise self._raised("scorer", task, exc) from None
        if isinstance(value, bool):
            value = float(value)
        if not isinstance(value, (int, float)) or not math.isfinite(value) or not 0.0 <= value <= 1.0:
            err = UserCodeError(f"the scorer returned {value!r} on task {task.id}; it must return a number "
                                "in [0, 1]", task_id=task.id)
            self._log.error("task %s: %s", task.id, err)
            raise self._stop(err)
        return float(value)

    def _raised(self, what: str, task: Task, exc: BaseException) -> UserCodeError:
        tb = _user_frames(exc)
        self._log.error("task %s: your %s raised %s: %s\n%s", task.id, what, type(exc).__name__, exc, tb.rstrip())
        return UserCodeError(f"your {what} raised on task {task.id}: {type(exc).__name__}: {exc} "
                             "(the traceback is in the session log)", task_id=task.id, user_traceback=tb)

    def _stop(self, err: UserCodeError) -> UserCodeError:
        with self._lock:
            if self.failure is None:
                self.failure = err
        return err

    def run_agent(self, task: Task, module: Module, llm: AgentLLM) -> Trajectory:
        if self.failure is not None:  # stop: the other subsets' rollouts fail at once, no call spent
            raise UserCodeError(f"stopped: {self.failure}", task_id=self.failure.task_id)
        record = _Recorder(llm)
        try:
            out = self.agent(module.text, task_dict(task), record)
            if isinstance(out, Trajectory):
                steps, answer = list(out.steps) or record.steps, out.answer
            elif isinstance(out, str):
                steps, answer = record.steps, out
            else:
                raise TypeError(f"the agent must return the answer (a str) or a Trajectory, "
                                f"not {type(out).__name__}")
            score = self.score(task, extract_answer(answer) if self._builtin is not None else answer)
        except UserCodeError as exc:
            if exc.user_traceback and self.on_error == "skip":
                return self._skipped(task, record, exc)
            raise self._stop(exc) from None
        except FGOError:
            raise  # the gateway's own errors (LLM failure, cancel, budget): not the user's bug
        except Exception as exc:
            err = self._raised("agent", task, exc)
            if self.on_error == "skip":
                return self._skipped(task, record, err)
            raise self._stop(err) from None
        return Trajectory(task_id=task.id, steps=[*steps, Step("answer", answer)], answer=answer,
                          success=score >= 0.5, score=score)

    def _skipped(self, task: Task, record: _Recorder, err: UserCodeError) -> Trajectory:
        with self._lock:
            if task.id not in self.skipped:
                self.skipped.append(task.id)
        self._log.warning("task %s counts as failed (on_error='skip'): %s", task.id, err)
        return Trajectory(task_id=task.id, steps=[*record.steps, Step("note", str(err))], answer="",
                          success=False, score=0.0, error=str(err))


register_suite(NAME, UserAgentSuite, listed=False)  # it needs your code: fgo_engine.optimize
