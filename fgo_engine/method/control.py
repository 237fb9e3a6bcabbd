"""Pause, resume and cancel, checked by the engine between LLM calls."""
from __future__ import annotations

import threading

from fgo_engine.errors import BudgetExceededError, CancelledError


class Control:
    def __init__(self) -> None:
        self._running = threading.Event()
        self._running.set()
        self._cancelled = threading.Event()
        self._stop_reason: BaseException | None = None
        self._lock = threading.Lock()
        self._parked = 0

    @property
    def parked(self) -> int:
        """Workers held at a checkpoint right now (while paused)."""
        with self._lock:
            return self._parked

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def cancel(self) -> None:
        self._cancelled.set()
        self._running.set()

    def stop(self, reason: BaseException) -> None:
        """Stop every worker at its next checkpoint (a budget, or a fatal error)."""
        if self._stop_reason is None:
            self._stop_reason = reason
        self._cancelled.set()
        self._running.set()

    def checkpoint(self) -> None:
        """Block while paused; raise when cancelled or stopped."""
        if not self._running.is_set():
            with self._lock:
                self._parked += 1
            try:
                while not self._running.wait(timeout=0.25):
                    pass
            finally:
                with self._lock:
                    self._parked -= 1
        if self._cancelled.is_set():
            reason = self._stop_reason
            if isinstance(reason, BudgetExceededError):
                raise BudgetExceededError(str(reason))
            raise CancelledError("run cancelled")
