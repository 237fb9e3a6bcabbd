"""The bridge between engine threads and the UI thread.

The engine calls sinks from its worker threads, often hundreds of times a second.
Posting one Textual message per event would drown the UI, so :class:`EventBuffer`
only records events under a lock, coalescing the high-rate ones as they arrive:
agent steps keep the last few per scope, token usage is summed per scope, a scope's
queued/running flips keep only the latest (they flip on every slot hand-over). The UI
drains the buffer on a timer and applies one :class:`Batch` at a time.

No Textual import here: the buffer is plain Python and tested on its own.
"""
from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from fgo_engine import events as ev

STEP_KEEP = 24  # agent steps kept per scope between two drains


@dataclass
class TokenDelta:
    prompt: int = 0
    completion: int = 0
    calls: int = 0
    cache_hits: int = 0
    errors: int = 0
    seconds: float = 0.0  # latency of the calls an LLM answered (the ETA's per-role rates)


@dataclass
class Batch:
    """Everything that happened since the previous drain."""

    events: list[ev.Event] = field(default_factory=list)  # ordered, low-rate events
    steps: dict[tuple[str, str], list[ev.AgentStep]] = field(default_factory=dict)
    step_counts: dict[tuple[str, str], int] = field(default_factory=dict)  # incl. dropped ones
    tokens: dict[tuple[str, str], TokenDelta] = field(default_factory=dict)
    roles: dict[str, TokenDelta] = field(default_factory=dict)
    phases: dict[str, TokenDelta] = field(default_factory=dict)  # explore | evaluate | optimize | merge | …
    role_phases: dict[tuple[str, str], TokenDelta] = field(default_factory=dict)  # (role, phase): the ETA's
    total_tokens: int | None = None
    reviews: list[Any] = field(default_factory=list)  # ReviewRequest objects, in order
    queued: dict[tuple[str, str], ev.ScopeQueued] = field(default_factory=dict)  # the latest per scope
    received: int = 0

    def __bool__(self) -> bool:
        return bool(self.events or self.steps or self.tokens or self.reviews or self.queued)


class EventBuffer:
    """A thread-safe event sink that the UI drains on a timer."""

    def __init__(self, keep_steps: int = STEP_KEEP):
        self.keep_steps = keep_steps
        self._lock = threading.Lock()
        self._batch = Batch()
        self._step_q: dict[tuple[str, str], deque[ev.AgentStep]] = {}
        self.received = 0  # every event ever seen (for diagnostics and tests)

    def __call__(self, event: ev.Event) -> None:
        with self._lock:
            self.received += 1
            b = self._batch
            b.received += 1
            if isinstance(event, ev.AgentStep):
                key = (event.scope_kind, event.scope_id)
                q = self._step_q.get(key)
                if q is None:
                    q = self._step_q[key] = deque(maxlen=self.keep_steps)
                q.append(event)
                b.step_counts[key] = b.step_counts.get(key, 0) + 1
            elif isinstance(event, ev.TokensUsed):
                key = (event.scope_kind, event.scope_id)
                for bucket in (b.tokens.setdefault(key, TokenDelta()), b.roles.setdefault(event.role, TokenDelta()),
                               b.phases.setdefault(event.phase or "other", TokenDelta()),
                               b.role_phases.setdefault((event.role, event.phase or "other"), TokenDelta())):
                    bucket.calls += 1
                    if event.error:
                        bucket.errors += 1
                    if event.cache_hit:
                        bucket.cache_hits += 1
                    else:
                        bucket.prompt += event.prompt_tokens
                        bucket.completion += event.completion_tokens
                        bucket.seconds += event.latency_ms / 1000.0
                b.total_tokens = event.total_tokens
            elif isinstance(event, ev.ScopeQueued):
                b.queued[(event.scope_kind, event.scope_id)] = event
            else:
                b.events.append(event)

    def on_review(self, request: Any) -> None:
        """QueueGate's ``on_request`` hook: called once the request is really pending."""
        with self._lock:
            self._batch.reviews.append(request)

    def drain(self) -> Batch:
        with self._lock:
            batch, self._batch = self._batch, Batch()
            if self._step_q:
                batch.steps = {k: list(q) for k, q in self._step_q.items() if q}
                self._step_q = {}
        return batch
