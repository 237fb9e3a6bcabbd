"""What every phase of the method shares: collaborators, rollouts, module rows, the test.

Everything here is deterministic for a seed: LLM prompts depend only on data, rows get
deterministic ids and are written with ``replace``, so replaying a run through the
response cache (after a crash) re-creates the same rows and spends no tokens twice.
"""
from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from fgo_engine import events as ev
from fgo_engine import redaction
from fgo_engine.config import RunConfig
from fgo_engine.errors import BudgetExceededError, CancelledError, LLMError, MalformedOutputError, UserCodeError
from fgo_engine.llm import tokens
from fgo_engine.llm.gateway import Gateway
from fgo_engine.llm.scheduling import FairPool
from fgo_engine.method import prompts
from fgo_engine.method.control import Control
from fgo_engine.method.executor import Executor, ThreadExecutor
from fgo_engine.method.review import ReviewGate
from fgo_engine.persistence import writes
from fgo_engine.suites.base import Suite
from fgo_engine.types import Completion, Module, Scope, Task, Trajectory

if TYPE_CHECKING:
    from fgo_engine.persistence.store import Store


def mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else 0.0


def by_category(tasks: list[Task], trajs: list[Trajectory]) -> dict[str, float]:
    acc: dict[str, list[float]] = defaultdict(list)
    for t, tr in zip(tasks, trajs):
        acc[t.category].append(tr.score)
    return {c: mean(v) for c, v in sorted(acc.items())}


def short_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:8]


@dataclass
class Item:
    """A module entering the merge tree: a subset's result or a merge node's."""

    node_id: str  # "s3" for subset 3, "n2" for merge node 2
    module: Module
    module_id: str
    score: float
    task_ids: list[str]
    scores_by_category: dict[str, float] = field(default_factory=dict)
    subset_ids: list[int] = field(default_factory=list)
    depth: int = 0  # height in the merge tree: 0 for a subset, 1 + the deepest child for a node


def run_rollout(suite: Suite, task: Task, module: Module, llm: Callable[..., Completion]) -> Trajectory:
    """One rollout: the suite's agent on one task under one module (in this process or on a worker)."""
    try:
        return suite.run_agent(task, module, llm)
    except (LLMError, MalformedOutputError, CancelledError, BudgetExceededError, UserCodeError):
        raise  # a cancel, a budget stop or the user's own agent failing is not a suite bug
    except Exception as exc:  # a suite bug must not kill the run silently either
        raise LLMError(f"agent run failed on task {task.id}: {type(exc).__name__}: {exc}") from exc


class Runtime:
    """The collaborators of one run and the operations all phases use."""

    def __init__(self, config: RunConfig, suite: Suite, store: Store, gateway: Gateway,
                 bus: ev.EventBus, gate: ReviewGate, control: Control, tasks: dict[str, Task],
                 executor: Executor | None = None):
        self.cfg = config
        self.suite = suite
        self.store = store
        self.gw = gateway
        self.bus = bus
        self.gate = gate
        self.control = control
        self.tasks = tasks
        # task workers shared fairly by scope (subset, node, loop), like the gateway's model slots
        self.pool = FairPool(max(2, config.task_workers), name="fgo-task",
                             fair=config.roles["agent"].scheduling == "fair")
        self.executor: Executor = executor or ThreadExecutor()  # where rollouts and subset loops run
        self.overflowed = False

    def optimizer_budget(self) -> int | None:
        """The optimizer prompt's token budget: the configured ``prompt_budget``, else the
        optimizer model's context window minus room for its reply (the role's max_tokens, else
        REPLY_RESERVE, at most a quarter of the window); None when the window is unknown."""
        if self.cfg.prompt_budget is not None:
            return self.cfg.prompt_budget
        rc = self.cfg.roles["optimizer"]
        window = self.gw.window(rc.model)
        if window is None:
            return None
        return max(1, window - min(rc.max_tokens or prompts.REPLY_RESERVE, window // 4))

    def count_optimizer_tokens(self, messages: list[dict[str, Any]]) -> int:
        return tokens.count_messages(messages, self.cfg.roles["optimizer"].model)

    def close(self) -> None:
        self.pool.shutdown(cancel_futures=True)

    # -- modules ----------------------------------------------------------------------
    def save_module(self, module_id: str, module: Module, *, origin: str, parent_id: str | None = None,
                    subset_id: int | None = None, node_id: str | None = None, epoch: int | None = None,
                    score: float | None = None, adopted: bool | None = None, note: str = "") -> str:
        writes.module(self.store, module_id, module, origin=origin, parent_id=parent_id, subset_id=subset_id,
                      node_id=node_id, epoch=epoch, score=score, adopted=adopted, note=note)
        return module_id

    def module_problem(self, kind: str, text: str) -> str | None:
        """Why the suite cannot use this module text (None: it can)."""
        try:
            self.suite.validate_module(text)
        except MalformedOutputError as exc:
            return f"malformed {kind}: {exc}"
        return None if text.strip() else f"empty {kind}"

    # -- rollouts ---------------------------------------------------------------------
    def agent_llm(self, scope: Scope, task_id: str) -> Callable[..., Completion]:
        inner = self.gw.bind("agent", replace(scope, task_id=task_id), sample=scope.draw)
        bus, control = self.bus, self.control

        def call(messages: list[dict[str, Any]], *, tools: list[dict[str, Any]] | None = None) -> Completion:
            control.checkpoint()
            comp = inner(messages, tools=tools)
            last = next((m.get("content") or "" for m in reversed(messages) if m.get("role") in ("user", "tool")), "")
            action = comp.text or ", ".join(f"{c['name']}({c['arguments']})" for c in comp.tool_calls)
            bus.emit(ev.AgentStep(scope.kind, scope.id, task_id, redaction.clip(str(last), 400, keep="tail"),
                                  redaction.clip(action, 400)))
            return comp

        return call

    def run_one(self, task: Task, module: Module, scope: Scope) -> Trajectory:
        return run_rollout(self.suite, task, module, self.agent_llm(scope, task.id))

    def explore(self, module: Module, module_id: str, tasks: list[Task], *, scope: Scope, epoch: int,
                subset_id: int | None = None) -> list[Trajectory]:
        """Run the agent on every task (the task pool's fair share, each rollout on the executor);
        results in task order."""
        return self.explore_together([(module, module_id, tasks, scope, epoch)], subset_id=subset_id)[0]

    def explore_together(self, passes: list[tuple[Module, str, list[Task], Scope, int]], *,
                         subset_id: int | None = None) -> list[list[Trajectory]]:
        """Several passes (module, module id, tasks, scope, epoch) submitted at once, so
        they run side by side (e.g. a merged module and its best child on the same tasks)."""
        self.control.checkpoint()

        def finished(scope: Scope, epoch: int, tid: str) -> Callable[[Any], None]:
            def done(f: Any) -> None:
                if not f.cancelled() and f.exception() is None:
                    self.bus.emit(ev.TaskFinished(scope.kind, scope.id, scope.phase, epoch, tid))
            return done

        submitted = []
        for module, _, tasks, scope, epoch in passes:
            scope = replace(scope, epoch=epoch)
            futures = [self.pool.submit(scope.key, self.executor.rollout, self, t, module, scope) for t in tasks]
            for t, f in zip(tasks, futures):  # progress as each episode ends, not when the pass is in
                f.add_done_callback(finished(scope, epoch, t.id))
            submitted.append((scope, futures))
        results = []
        for (_, module_id, tasks, _, epoch), (scope, futures) in zip(passes, submitted):
            trajs = [f.result() for f in futures]
            for t, tr in zip(tasks, trajs):
                self.bus.emit(ev.TrajectoryDone(scope.kind, scope.id, scope.phase, epoch, t.id, tr.success,
                                                tr.score))
            writes.trajectories(self.store, scope, epoch, module_id, zip(tasks, trajs), subset_id)
            results.append(trajs)
        return results

    # -- test -------------------------------------------------------------------------
    def test(self, module: Module, module_id: str, tasks: list[Task]) -> tuple[float, dict[str, float]]:
        trajs = self.explore(module, module_id, tasks, scope=Scope("session", "", "test"), epoch=0)
        return mean([t.score for t in trajs]), by_category(tasks, trajs)

    def test_side_by_side(self, modules: list[tuple[Module, str]], tasks: list[Task]) -> dict[str, float]:
        """Several modules on the test split at once (reported only); their mean scores by module id."""
        if not modules or not tasks:
            return {}
        scope = Scope("session", "", "test")
        runs = self.explore_together([(m, mid, tasks, scope, 0) for m, mid in modules])
        return {mid: mean([t.score for t in trajs]) for (_, mid), trajs in zip(modules, runs)}
