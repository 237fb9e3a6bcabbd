"""Where a run's work happens: rollouts (one task under one module) and subset loops.

``threads`` (the default) runs every rollout in this process's task pool. ``ray`` runs
each rollout as a Ray task on a cluster (or a local instance) while everything that
writes — the gateway's ledger and cache, trajectories, modules — stays in this process,
the driver, behind the one store writer (see :mod:`fgo_engine.executors.ray_executor`).
Both run the subset loops as coordinating threads on the driver; under Ray each subset
is placed on a node, where its rollouts run.
"""
from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Protocol

from fgo_engine.config import RunConfig

if TYPE_CHECKING:
    from fgo_engine.llm.gateway import Scope
    from fgo_engine.method.runtime import Runtime
    from fgo_engine.types import Module, Task, Trajectory

__all__ = ["Executor", "ThreadExecutor", "make_executor"]


class Executor(Protocol):
    name: str

    def start(self) -> None:
        """Connect (idempotent). A ConfigError here comes before anything is written."""
        ...

    def rollout(self, rt: Runtime, task: Task, module: Module, scope: Scope) -> Trajectory:
        """One rollout, called on a task-pool thread; returns when its rows can be written."""
        ...

    def place(self, subset_id: int) -> str:
        """Where a subset's rollouts run: a node label, or "" for this process."""
        ...

    def submit_subsets(self, work: Callable[[int, Any], Any], groups: list[Any], workers: int) -> dict[Future, int]:
        """Run ``work(i, group)`` for every subset, at most ``workers`` at once."""
        ...

    def close(self) -> None: ...


class _SubsetThreads:
    """Subset loops as coordinating threads on the driver (both executors)."""

    def submit_subsets(self, work: Callable[[int, Any], Any], groups: list[Any], workers: int) -> dict[Future, int]:
        pool = ThreadPoolExecutor(max_workers=max(1, min(workers, len(groups))), thread_name_prefix="fgo-subset")
        try:
            return {pool.submit(work, i, g): i for i, g in enumerate(groups)}
        finally:
            pool.shutdown(wait=False)  # the futures keep running; the threads end with them


class ThreadExecutor(_SubsetThreads):
    """Today's behaviour: rollouts run in this process, on the task pool's threads."""

    name = "threads"

    def start(self) -> None:
        pass

    def rollout(self, rt: Runtime, task: Task, module: Module, scope: Scope) -> Trajectory:
        return rt._run_one(task, module, scope)

    def place(self, subset_id: int) -> str:
        return ""

    def close(self) -> None:
        pass


def make_executor(config: RunConfig) -> Executor:
    """The executor a configuration names (not started yet)."""
    if config.executor == "ray":
        from fgo_engine.executors.ray_executor import RayExecutor

        return RayExecutor(config)
    return ThreadExecutor()
