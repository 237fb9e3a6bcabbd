"""What runs inside the Ray cluster: the relay actor and the rollout task.

Imported on Ray's workers (and by the driver, to submit them). A rollout builds its suite
from the run's configuration (once per worker process), runs the agent, and sends every
agent LLM call through the relay to the driver, which answers only after the call is
committed to the session file.
"""
from __future__ import annotations

import asyncio
import itertools
import json
import os
from typing import Any

import ray

from fgo_engine import errors
from fgo_engine.types import Completion

_suites: dict[str, Any] = {}


@ray.remote(num_cpus=0, max_restarts=0, max_concurrency=1000)  # type: ignore[call-overload]
class Relay:
    """A mailbox between the workers and the driver's gateway (lives on the driver's node).

    A worker's ``call`` waits until the driver ``reply``s; the driver long-polls ``take``.
    Nothing is kept: an answer meant for a worker that died is dropped.
    """

    def __init__(self) -> None:
        self._queue: asyncio.Queue = asyncio.Queue()
        self._waiting: dict[int, asyncio.Future] = {}
        self._ids = itertools.count()

    async def call(self, request: dict[str, Any]) -> tuple:
        rid = next(self._ids)
        fut = asyncio.get_running_loop().create_future()
        self._waiting[rid] = fut
        await self._queue.put((rid, request))
        try:
            return await fut
        finally:
            self._waiting.pop(rid, None)

    async def take(self, wait_s: float) -> list[tuple[int, dict[str, Any]]]:
        try:
            first = await asyncio.wait_for(self._queue.get(), wait_s)
        except TimeoutError:
            return []
        out = [first]
        while not self._queue.empty():
            out.append(self._queue.get_nowait())
        return out

    async def reply(self, rid: int, answer: tuple) -> None:
        fut = self._waiting.get(rid)
        if fut is not None and not fut.done():
            fut.set_result(answer)

    async def ping(self) -> str:
        return ray.get_runtime_context().get_node_id()


def error_answer(exc: BaseException) -> tuple:
    """An engine error as plain data (class name, message, fields): rebuilt on the other side."""
    fields = {k: getattr(exc, k) for k in ("prompt_tokens", "window") if hasattr(exc, k)}
    name = type(exc).__name__ if isinstance(exc, errors.FGOError) else "LLMError"
    message = str(exc) if isinstance(exc, errors.FGOError) else f"{type(exc).__name__}: {exc}"
    return ("error", name, message, fields)


def raise_answer(answer: tuple) -> None:
    _, name, message, fields = answer
    cls = getattr(errors, name, None)
    if not (isinstance(cls, type) and issubclass(cls, errors.FGOError)):
        cls = errors.LLMError
    if cls is errors.ContextOverflowError:
        raise cls(message, **fields)
    raise cls(message)


class RelayLLM:
    """The agent role on a worker: every call goes to the driver's gateway and back."""

    def __init__(self, relay: Any, scope: Any, task_id: str):
        self.relay, self.scope, self.task_id = relay, scope, task_id
        self.where = {"pid": os.getpid(), "node": ray.get_runtime_context().get_node_id()}

    def __call__(self, messages: list[dict[str, Any]], *, tools: list[dict[str, Any]] | None = None) -> Completion:
        answer = ray.get(self.relay.call.remote({"scope": self.scope, "task_id": self.task_id,
                                                  "messages": messages, "tools": tools, **self.where}))
        if answer[0] == "ok":
            return answer[1]
        raise_answer(answer)
        raise AssertionError("unreachable")


def _suite(config: dict[str, Any]) -> Any:
    """The run's suite, built once per worker process from its (secret-free) configuration."""
    from fgo_engine.config import RunConfig
    from fgo_engine.suites.base import build_suite

    key = json.dumps(config, sort_keys=True, default=str)
    suite = _suites.get(key)
    if suite is None:
        suite = _suites[key] = build_suite(RunConfig.from_dict(config))
    return suite


@ray.remote(num_cpus=1)
def rollout_task(config: dict[str, Any], relay: Any, task: Any, module: Any, scope: Any) -> tuple:
    """One rollout on a worker; engine errors come back as data, not as Ray errors."""
    from fgo_engine import _env  # noqa: F401  (the package's import applies the environment defaults)
    from fgo_engine.method.runtime import run_rollout

    try:
        trajectory = run_rollout(_suite(config), task, module, RelayLLM(relay, scope, task.id))
    except errors.FGOError as exc:
        return error_answer(exc)
    return ("ok", trajectory, ray.get_runtime_context().get_node_id())
