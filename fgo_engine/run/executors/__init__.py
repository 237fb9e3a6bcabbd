"""Choosing the executor a configuration names: threads (in this process) or Ray.

The protocol and the thread executor live with the method (:mod:`fgo_engine.method.executor`);
the Ray executor here keeps every write on the driver (see :mod:`.ray_executor`).
"""
from __future__ import annotations

from fgo_engine.config import RunConfig
from fgo_engine.method.executor import Executor, ThreadExecutor

__all__ = ["make_executor"]


def make_executor(config: RunConfig) -> Executor:
    """The executor a configuration names (not started yet)."""
    if config.executor == "ray":
        from fgo_engine.run.executors.ray_executor import RayExecutor

        return RayExecutor(config)
    return ThreadExecutor()
