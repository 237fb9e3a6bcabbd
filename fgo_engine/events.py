"""Events the engine emits while it runs. Small, frozen, observational.

Sinks are plain callables ``sink(event) -> None``; they must not block for long (the
TUI posts a message, the console printer prints, the store writer enqueues).
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Event:
    pass


@dataclass(frozen=True)
class RunStarted(Event):
    method: str
    n_subsets: int
    n_train: int
    n_test: int
    projected_calls: dict[str, int] = field(default_factory=dict)  # upper bound per role
    projection: dict[str, Any] = field(default_factory=dict)  # Projection.to_dict(): expected calls, tokens, cost
    # what earlier runs of the session did, per role: {"calls", "timed", "seconds"} (progress survives a resume)
    done_before: dict[str, dict[str, Any]] = field(default_factory=dict)
    sandbox: str = ""  # what LLM-written tool code runs under ("" when the suite runs none)
    sandbox_warning: str = ""  # set when `auto` fell back to a weaker layer: the app shows it
    # the method's traits (Method.has_merge_tree, .max_merge_nodes); None in a run recorded before them
    has_merge_tree: bool | None = None  # its subsets meet in merge nodes
    max_merge_nodes: int | None = None  # ... at most this many


@dataclass(frozen=True)
class SubsetStarted(Event):
    subset_id: int
    name: str
    n_tasks: int
    categories: tuple[str, ...] = ()
    node: str = ""  # where its rollouts run under the Ray executor ("" in this process)


@dataclass(frozen=True)
class ScopeQueued(Event):
    """A scope (subset, merge node, baseline loop) waits for a model slot holding none
    (queued=True), or got one again (queued=False): show it as queued, not running."""

    scope_kind: str
    scope_id: str
    model: str
    queued: bool
    in_flight: int = 0  # the model's slots busy when it changed (the app shows "queued (8/8 slots busy)")
    limit: int = 0  # the model's slot limit (max_concurrency)


@dataclass(frozen=True)
class AgentStep(Event):
    """One agent turn: the last observation it saw and what it answered (high rate)."""

    scope_kind: str
    scope_id: str
    task_id: str
    observation: str
    action: str


@dataclass(frozen=True)
class TrajectoryDone(Event):
    scope_kind: str
    scope_id: str
    phase: str
    epoch: int
    task_id: str
    success: bool
    score: float


@dataclass(frozen=True)
class TaskFinished(Event):
    """One task's episode ended (as it happens, for progress counters; TrajectoryDone follows
    with the scores once the whole pass is in)."""

    scope_kind: str
    scope_id: str
    phase: str
    epoch: int
    task_id: str


@dataclass(frozen=True)
class CritiqueMade(Event):
    subset_id: int
    epoch: int
    task_id: str
    correct: bool
    failure: str
    suggestion: str


@dataclass(frozen=True)
class ModuleProposed(Event):
    subset_id: int
    epoch: int
    module_id: str
    text: str


@dataclass(frozen=True)
class EpochDone(Event):
    subset_id: int
    epoch: int
    score: float
    best_score: float
    adopted: bool | None  # None: no candidate was judged at this epoch
    module_id: str


@dataclass(frozen=True)
class SubsetDone(Event):
    subset_id: int
    best_score: float
    module_id: str
    error: str | None = None


@dataclass(frozen=True)
class TokensUsed(Event):
    role: str
    scope_kind: str
    scope_id: str
    phase: str
    prompt_tokens: int
    completion_tokens: int
    cache_hit: bool
    total_tokens: int  # session total spent so far (cache hits excluded)
    error: str | None = None
    latency_ms: float = 0.0  # the call's own time (0 for a cache hit): the ETA's per-role rates


@dataclass(frozen=True)
class MergeNodeUpdated(Event):
    node_id: str
    parent_id: str | None
    child_ids: tuple[str, ...]
    status: str  # planned | merging | pending_review | backtesting | done | failed
    n_tasks: int
    score_before: float | None = None
    score_after: float | None = None
    decision: str | None = None
    module_id: str | None = None
    backtest_tasks: int | None = None  # tasks the backtest ran on (adaptive: the sample)
    interval: tuple[float, float] | None = None  # merged − best child on them, 95% bound (adaptive)
    decided_by: str | None = None  # operator | policy:auto | policy:if-not-worse | identical-children


@dataclass(frozen=True)
class ReviewRequested(Event):
    node_id: str


@dataclass(frozen=True)
class RunStatus(Event):
    """running | paused | cancelled | failed | done | budget"""

    status: str
    message: str = ""


@dataclass(frozen=True)
class RunFinished(Event):
    status: str
    train_score: float | None
    test_score: float | None
    final_module_id: str | None
    message: str = ""
    start_test_score: float | None = None  # the starting module on the same test tasks (never used to decide)


@dataclass(frozen=True)
class Log(Event):
    level: str  # info | warning | error
    text: str


class EventBus:
    """Fan-out to sinks; a failing sink is logged (its first failure with the traceback)
    and never stops the run."""

    def __init__(self, sinks: list[Callable[[Event], None]] | None = None,
                 log: logging.Logger | logging.LoggerAdapter[logging.Logger] | None = None):
        self._sinks: list[Callable[[Event], None]] = list(sinks or [])
        self._lock = threading.Lock()
        self.log = log or logging.getLogger("fgo.events")
        self._failing: set[int] = set()  # sinks whose traceback is already in the log

    def add(self, sink: Callable[[Event], None]) -> None:
        with self._lock:
            self._sinks.append(sink)

    def remove(self, sink: Callable[[Event], None]) -> None:
        with self._lock:
            if sink in self._sinks:
                self._sinks.remove(sink)

    def emit(self, event: Event) -> None:
        with self._lock:
            sinks = list(self._sinks)
        for s in sinks:
            try:
                s(event)
            except Exception as exc:  # observational: a broken sink must not break the run
                self._sink_failed(s, event, exc)

    def _sink_failed(self, sink: Callable[[Event], None], event: Event, exc: Exception) -> None:
        with self._lock:
            first = id(sink) not in self._failing
            self._failing.add(id(sink))
        if first:
            self.log.warning("event sink %r failed on %s (later failures of this sink are logged as debug)",
                             sink, type(event).__name__, exc_info=exc)
        else:
            self.log.debug("event sink %r failed on %s: %s: %s", sink, type(event).__name__,
                           type(exc).__name__, exc)

    def __call__(self, event: Event) -> None:
        self.emit(event)


def event_payload(event: Event) -> dict[str, Any]:
    from dataclasses import asdict

    return {"kind": type(event).__name__, **asdict(event)}


# what a session keeps of its events (the high-rate ones, steps and calls, are in their own tables)
HISTORY_EVENTS: tuple[type[Event], ...] = (RunStarted, RunStatus, SubsetStarted, EpochDone, SubsetDone,
                                           MergeNodeUpdated, ReviewRequested, Log)


def event_from_payload(kind: str, payload: dict[str, Any]) -> Event | None:
    """The event a stored payload was made from (None for a kind this version does not know);
    a field the row lacks is None, one it has that the class lacks is left out."""
    from dataclasses import MISSING, fields

    cls = next((c for c in (*HISTORY_EVENTS, RunFinished) if c.__name__ == kind), None)
    if cls is None:
        return None
    args: dict[str, Any] = {}
    for f in fields(cls):
        if f.name in payload:
            value = payload[f.name]
            args[f.name] = tuple(value) if isinstance(value, list) and f.name in ("child_ids", "categories",
                                                                                "interval") else value
        elif f.default is MISSING and f.default_factory is MISSING:
            args[f.name] = None
    try:
        return cls(**args)
    except TypeError:
        return None
