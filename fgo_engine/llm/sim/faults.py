"""Faults the simulated LLM raises on purpose (tests, demos of resilience), one plan per gateway.

Each :class:`~fgo_engine.llm.gateway.Gateway` owns a :class:`Faults` plan (``gateway.faults``)
and binds it while one of its calls runs in the simulator, so faults injected for one run
are only ever taken by that run's calls: never by another session's, nor by a thread some
earlier test left running (the module-global queue this replaces made a test flaky so).
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["KINDS", "Faults", "bound", "current"]

RAISED = ("rate_limit", "timeout", "connection", "server")  # raised as the provider's error
REPLIED = ("garbage", "empty")  # a malformed reply instead of the model's
KINDS = RAISED + REPLIED


class Faults:
    """The faults one gateway's next simulated calls meet, first injected first taken."""

    def __init__(self) -> None:
        self._queue: list[tuple[str, str | None, str | None]] = []
        self._lock = threading.Lock()

    def inject(self, kind: str, count: int = 1, *, role: str | None = None, match: str | None = None) -> None:
        """Make the next ``count`` calls (of ``role``, whose prompt contains ``match``, if
        given) fail with ``kind``: rate_limit | timeout | connection | server | garbage | empty."""
        if kind not in KINDS:
            raise ValueError(f"unknown fault {kind!r}; choose one of: {', '.join(KINDS)}")
        with self._lock:
            self._queue.extend([(kind, role, match)] * count)

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._queue)

    def take(self, role: str, text: str) -> str | None:
        """The first fault that applies to a call of ``role`` with this prompt, removed; or None."""
        with self._lock:
            for i, (kind, r, match) in enumerate(self._queue):
                if (r is None or r == role) and (match is None or match in text):
                    self._queue.pop(i)
                    return kind
        return None


_current: ContextVar[Faults | None] = ContextVar("fgo_sim_faults", default=None)


@contextmanager
def bound(faults: Faults | None) -> Iterator[None]:
    """While the block runs (one call, in this thread), the simulator takes its faults from ``faults``."""
    token = _current.set(faults)
    try:
        yield
    finally:
        _current.reset(token)


def current() -> Faults | None:
    """The fault plan of the call running in this thread, if any."""
    return _current.get()
