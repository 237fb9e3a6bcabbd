"""Where a run's work happens: the executor protocol and the default, in-process executor.

``threads`` (the default) runs every rollout in this process's task pool. ``ray`` (see
:mod:`fgo_engine.run.executors`) runs each rollout as a Ray task while everything that
writes stays in this process, behind the one store writer. Both run the subset loops as
coordinating threads on the driver.

An executor is handed a :class:`RolloutHost` (the method's runtime) and calls its public
``run_one``; it never reaches into the runtime's internals, and this module does not import it.
"""
from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from fgo_engine.config import RunConfig
    from fgo_engine.method.control import Control
    from fgo_engine.types import Completion, Module, Scope, Task, Trajectory

__all__ = ["Executor", "RolloutHost", "SubsetThreads", "ThreadExecutor"]


class RolloutHost(Protocol):
    """What an executor may use of the run it serves."""

    cfg: RunConfig
    control: Control

    def run_one(self, task: Task, module: Module, scope: Scope) -> Trajectory:
        """One rollout in this process, its LLM calls through the run's gateway."""
        ...

    def agent_llm(self, scope: Scope, task_id: str) -> Callable[..., Completion]:
        """The agent's LLM for one task: what a remote rollout's relayed calls are answered with."""
        ...


class Executor(Protocol):
    name: str

    def start(self) -> None:
        """Connect (idempotent). A ConfigError here comes before anything is written."""
        ...

    def rollout(self, rt: RolloutHost, task: Task, module: Module, scope: Scope) -> Trajectory:
        """One rollout, called on a task-pool thread; returns when its rows can be written."""
        ...

    def place(self, subset_id: int) -> str:
        """Where a subset's rollouts run: a node label, or "" for this process."""
        ...

    def submit_subsets(self, work: Callable[[int, Any], Any], groups: list[Any], workers: int) -> dict[Future, int]:
        """Run ``work(i, group)`` for every subset, at most ``workers`` at once."""
        ...

    def close(self) -> None: ...


class SubsetThreads:
    """Subset loops as coordinating threads on the driver (both executors)."""

    def submit_subsets(self, work: Callable[[int, Any], Any], groups: list[Any], workers: int) -> dict[Future, int]:
        pool = ThreadPoolExecutor(max_workers=max(1, min(workers, len(groups))), thread_name_prefix="fgo-subset")
        try:
            return {pool.submit(work, i, g): i for i, g in enumerate(groups)}
        finally:
            pool.shutdown(wait=False)  # the futures keep running; the threads end with them


class ThreadExecutor(SubsetThreads):
    """Rollouts run in this process, on the task pool's threads."""

    name = "threads"

    def start(self) -> None:
        pass

    def rollout(self, rt: RolloutHost, task: Task, module: Module, scope: Scope) -> Trajectory:
        return rt.run_one(task, module, scope)

    def place(self, subset_id: int) -> str:
        return ""

    def close(self) -> None:
        pass
