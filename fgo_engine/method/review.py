"""The review gate: before a merged module is backtested, someone decides.

``approve`` backtests the merged module as written; ``edit`` backtests the operator's
text instead; ``rollback`` discards the merge and keeps the best child. Headless runs
use a policy; the app uses :class:`QueueGate`, which blocks the engine thread until the
operator answers (or the run is cancelled).
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

from fgo_engine.errors import CancelledError
from fgo_engine.hooks import with_defaults
from fgo_engine.types import AUTO_APPROVE, IF_NOT_WORSE, ReviewDecision, ReviewRequest


class ReviewGate(Protocol):
    def review(self, request: ReviewRequest) -> ReviewDecision: ...

    # -- optional hooks (defaults in GateBase) ----------------------------------------
    post_check: bool
    """After the backtest, roll back a merge that scored below its best child (if-not-worse)."""
    asks_person: bool
    """A person answers (the console, the app): reviews are then asked in node order, n1 before
    n2, whatever finished first, so that the questions come in the order the tree shows them."""

    def cancel(self) -> None:
        """The run is being cancelled: stop waiting for a decision."""
        ...


class GateBase:
    """Defaults of the optional :class:`ReviewGate` hooks."""

    post_check: bool = False
    asks_person: bool = False

    def cancel(self) -> None:
        return None  # a policy never waits


def with_gate_defaults(gate: Any) -> ReviewGate:
    """A gate with every optional hook (a test's or a plugin's gate may not inherit GateBase)."""
    return with_defaults(gate, GateBase)


class AutoApprove(GateBase):
    """Approve every merge (the default headless policy)."""

    policy = "auto"

    def review(self, request: ReviewRequest) -> ReviewDecision:
        return ReviewDecision("approve", by=AUTO_APPROVE)


class IfNotWorse(AutoApprove):
    """Approve, backtest, and roll back afterwards if the merge scored below its children."""

    policy = "if-not-worse"
    post_check = True

    def review(self, request: ReviewRequest) -> ReviewDecision:
        return ReviewDecision("approve", by=IF_NOT_WORSE)


class QueueGate(GateBase):
    """Blocks the engine until :meth:`decide` is called for the pending request.

    ``auto`` can be switched on mid-run: pending and later requests are approved.
    """

    policy = "ask"
    asks_person = True

    def __init__(self, *, auto: bool = False, on_request: Callable[[ReviewRequest], None] | None = None):
        self.auto = auto
        self.on_request = on_request
        self._cond = threading.Condition()
        self._pending: ReviewRequest | None = None
        self._answer: ReviewDecision | None = None
        self._cancelled = False

    @property
    def pending(self) -> ReviewRequest | None:
        with self._cond:
            return self._pending

    def review(self, request: ReviewRequest) -> ReviewDecision:
        with self._cond:
            if self.auto:
                return ReviewDecision("approve", by=AUTO_APPROVE)
            self._pending, self._answer = request, None
        if self.on_request is not None:
            self.on_request(request)
        with self._cond:
            while self._answer is None and not self._cancelled and not self.auto:
                self._cond.wait(timeout=0.5)
            self._pending = None
            if self._answer is not None:
                return self._answer
            if self.auto:
                return ReviewDecision("approve", by=AUTO_APPROVE)
            raise CancelledError("run cancelled while a review was pending")

    def decide(self, decision: ReviewDecision) -> None:
        with self._cond:
            self._answer = decision
            self._cond.notify_all()

    def set_auto(self, auto: bool) -> None:
        with self._cond:
            self.auto = auto
            self._cond.notify_all()

    def cancel(self) -> None:
        with self._cond:
            self._cancelled = True
            self._cond.notify_all()


def gate_for_policy(policy: str) -> ReviewGate:
    if policy == "auto":
        return AutoApprove()
    if policy == "if-not-worse":
        return IfNotWorse()
    return QueueGate()
