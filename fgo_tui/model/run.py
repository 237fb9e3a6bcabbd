"""One open session in the app: the engine Session (if it can run here), its store,
the review gate, the event buffer and the view built from both.

Sessions are made through a factory so tests (and other front ends) can inject
their own. No Textual import: the app drives this from its workers and timers.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from fgo_engine.method.review import QueueGate, ReviewGate, gate_for_policy
from fgo_engine.types import ReviewRequest
from fgo_tui.model.bridge import Batch, EventBuffer
from fgo_tui.model.follow import Follower, carry_over
from fgo_tui.model.state import RunView

if TYPE_CHECKING:
    from fgo_engine.config import RunConfig
    from fgo_engine.persistence.store import Store
    from fgo_engine.run.session import Session


class SessionFactory(Protocol):
    def create(self, path: Path, config: RunConfig, *, gate: ReviewGate, sinks: list[Callable]) -> Session: ...

    def open(self, path: Path, *, overrides: dict[str, Any] | None, gate: ReviewGate,
             sinks: list[Callable]) -> Session: ...


class EngineSessions:
    """The real thing: :class:`fgo_engine.run.session.Session`."""

    def create(self, path: Path, config: RunConfig, *, gate: ReviewGate, sinks: list[Callable]) -> Session:
        from fgo_engine.run.session import Session

        return Session.create(path, config, gate=gate, sinks=sinks)

    def open(self, path: Path, *, overrides: dict[str, Any] | None, gate: ReviewGate,
             sinks: list[Callable]) -> Session:
        from fgo_engine.run.session import Session

        return Session.open(path, config_overrides=overrides, gate=gate, sinks=sinks)


def make_gate(policy: str, buffer: EventBuffer) -> ReviewGate:
    """``ask`` and ``auto`` get a QueueGate (so auto-approve can be switched mid-run);
    ``if-not-worse`` keeps the engine's policy gate."""
    if policy in ("ask", "auto"):
        return QueueGate(auto=policy == "auto", on_request=buffer.on_review)
    return gate_for_policy(policy)


class RunController:
    """Owns one session for the app. ``session`` is None when it can only be viewed."""

    def __init__(self, path: Path, factory: SessionFactory, *, clock: Callable[[], float] = time.monotonic):
        self.path = Path(path)
        self.factory = factory
        self.clock = clock
        self.buffer = EventBuffer()
        self.session: Session | None = None
        self.store: Store | None = None
        self.gate: ReviewGate | None = None
        self.view = RunView(path=str(path))
        self.cannot_run: str | None = None  # why this session can only be viewed
        self.follower: Follower | None = None  # another process runs it: followed live, reviews answered here
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.running = False  # a run() is in progress (mark_started / mark_stopped, around the app's worker)
        self.spent = False  # session.run() has returned once: a new run needs a fresh Session
        self.result: Any = None
        self.next_overrides: dict[str, Any] | None = None  # config changes for the next run (a new budget)
        from fgo_engine.run.progress import Progress

        self.progress_meter = Progress()

    # -- building (worker threads) ------------------------------------------------------
    def create(self, config: RunConfig) -> None:
        self.gate = make_gate(config.review, self.buffer)
        self.session = self.factory.create(self.path, config, gate=self.gate, sinks=[self.buffer])
        self.store = self.session.store
        self._load_view()

    def open(self, overrides: dict[str, Any] | None = None) -> None:
        from fgo_engine.errors import FGOError, SessionLockedError
        from fgo_engine.persistence import queries as q

        policy = "auto"
        try:
            probe = q.open_readonly(self.path)
            try:
                policy = q.review_policy(probe)
            finally:
                probe.close()
            policy = (overrides or {}).get("review", policy)
            self.gate = make_gate(policy, self.buffer)
            self.session = self.factory.open(self.path, overrides=overrides, gate=self.gate, sinks=[self.buffer])
            self.store = self.session.store
        except SessionLockedError as exc:
            # another process runs it: follow it live, answer the reviews it asks for
            self.cannot_run = str(exc)
            self.session = None
            self.store = q.open_readonly(self.path)
            self.follower = Follower(self.path, lambda store: self.read_view(store, live=True))
        except FGOError as exc:
            # e.g. a suite that is not installed here: still show everything, read-only
            self.cannot_run = str(exc)
            self.session = None
            self.store = q.open_readonly(self.path)
        self._load_view()
        if self.follower is not None:
            self.follower.start()

    def _load_view(self) -> None:
        from fgo_tui.model.data import load_history

        assert self.store is not None
        self.view = self.read_view(self.store, live=self.follower is not None)
        load_history(self.store, self.view)  # once: a followed run's later views carry the log over

    def read_view(self, store: Store, *, live: bool = False) -> RunView:
        """The view of everything the session file holds (``live``: a run elsewhere is under
        way, so what it has running stays running)."""
        from fgo_engine.run.session import elapsed_seconds
        from fgo_tui.model.data import load_run_view

        view = load_run_view(store, live=live)
        view.path = str(self.path)
        view.elapsed_before = elapsed_seconds(store)
        from fgo_engine.persistence import queries as q

        cfg = q.session_info(store).get("config_json") or {}
        view.workers = int(cfg.get("workers") or 0)
        if not live:
            view.settle(view.status)  # subsets a stopped run left "running" are not running
        for phase, t in q.ledger_totals(store).by_phase.items():
            view.phase_tokens[phase or "other"] = t.tokens
        # what the panels show (module and latest change), read here rather than on the UI thread
        ids = ["initial"] + [i for s in view.subsets.values() for i in (s.module_id, s.prev_module_id, s.proposed_id)
                             if i]
        view.module_texts.update(q.module_texts(store, ids))
        return view

    # -- following a run elsewhere (UI thread) ------------------------------------------
    @property
    def following(self) -> bool:
        return self.follower is not None

    def follow_tick(self) -> bool:
        """Swap in the view the follower read since the last tick; True when it changed."""
        if self.follower is None:
            return False
        fresh = self.follower.take_view()
        if fresh is None:
            return False
        self.view = carry_over(self.view, fresh)
        return True

    def prepare(self) -> tuple[Any, Any] | None:
        """A cancelled or finished Session keeps its stop flag: open a new one (worker thread).
        Returns (session, gate) without touching the controller; :meth:`adopt` swaps them in."""
        if self.session is not None and not self.spent and not self.next_overrides:
            return None
        old = self.session
        policy = old.config.review if old is not None else self.view.review_policy
        auto = self.auto
        gate = make_gate(policy, self.buffer)
        if auto is not None and hasattr(gate, "set_auto"):
            gate.set_auto(auto)
        session = self.factory.open(self.path, overrides=self.next_overrides, gate=gate, sinks=[self.buffer])
        return session, gate

    def adopt(self, prepared: tuple[Any, Any] | None) -> None:
        """Swap in a prepared session (UI thread: screens read session, store and gate there)."""
        if prepared is None:
            return
        old = self.session
        self.session, self.gate = prepared
        self.store = self.session.store
        self.spent, self.next_overrides = False, None
        if old is not None:
            old.close()

    def run(self, on_ui: Callable[..., Any] | None = None) -> Any:
        """Blocking: the app calls this in a thread worker. ``on_ui(fn, *args)`` runs ``fn`` on the
        UI thread (the app's ``call_from_thread``): every change of the controller's state goes
        through it, so the UI never sees a half-swapped session."""
        ui = on_ui or (lambda fn, *args: fn(*args))
        ui(self.adopt, self.prepare())
        ui(self._started)
        result = None
        assert self.session is not None  # adopt() put one in place
        try:
            result = self.session.run()
            return result
        finally:
            stored = self._stored_elapsed()  # read here, in the worker: the UI thread reads nothing
            try:
                ui(self._finished, result, stored)
            except RuntimeError:  # the app is gone (quit): nothing left to show
                self._finished(result, stored)

    def _stored_elapsed(self) -> float | None:
        """The session's wall time as the store now has it (this run included), if it can be read."""
        from fgo_engine.run.session import elapsed_seconds

        try:
            return elapsed_seconds(self.session.store) if self.session is not None else None
        except Exception:  # noqa: BLE001 - a closed store: the app's own measure stands
            return None

    def _started(self) -> None:
        self.started_at, self.finished_at = self.clock(), None

    def _finished(self, result: Any, stored: float | None = None) -> None:
        self.result = result
        self.finished_at = self.clock()
        self.spent = True
        # the store now holds this run's wall time too: count it once, as the store counts it (a
        # reopened session shows the same figure)
        if stored:
            self.view.elapsed_before = stored
        elif self.started_at is not None:
            self.view.elapsed_before += max(0.0, self.finished_at - self.started_at)
        self.started_at = self.finished_at = None

    # -- state transitions (UI thread) --------------------------------------------------
    def mark_started(self) -> None:
        """The app is about to run :meth:`run` in its worker."""
        self.running = True
        self.view.status, self.view.message = "running", ""

    def mark_stopped(self) -> None:
        """The run's worker has ended (finished, failed, cancelled)."""
        self.running = False

    def mark_failed(self, message: str) -> None:
        """The run's worker raised: the session shows as failed, with why."""
        self.running = False
        self.view.status, self.view.message = "failed", message

    def set_budget(self, budget_tokens: int | None) -> None:
        """A new token budget (None: none) for the next run."""
        self.next_overrides = {"budget_tokens": budget_tokens}
        self.view.budget_tokens = budget_tokens

    # -- control (UI thread) ------------------------------------------------------------
    @property
    def can_run(self) -> bool:
        return self.cannot_run is None and self.session is not None

    @property
    def paused(self) -> bool:
        return bool(self.session is not None and self.session.control.paused and self.running)

    @property
    def elapsed(self) -> float | None:
        """Wall time of the whole session: earlier runs (kept in the file) plus this one."""
        before = self.view.elapsed_before
        if self.started_at is None:
            return before or None
        end = self.finished_at if self.finished_at is not None else self.clock()
        return before + max(0.0, end - self.started_at)

    def observe_progress(self, batch: Batch | None = None) -> None:
        """Feed the progress meter with a drained batch (UI thread, once per drain, before the
        view applies it): a run's start, the calls per role, and whether it waits for a person."""
        from fgo_engine import events as ev

        now, meter = self.clock(), self.progress_meter
        if batch is not None:
            for e in batch.events:
                if isinstance(e, ev.RunStarted):
                    meter.start(e.projection, e.done_before)
                elif isinstance(e, ev.TaskFinished):
                    meter.episode(e.phase)
            for (role, phase), d in batch.role_phases.items():
                meter.add(now, role, calls=d.calls, cached=d.cache_hits, seconds=d.seconds, phase=phase)
        meter.wait(now, self.waiting_for_person is not None)

    @property
    def waiting_for_person(self) -> str | None:
        """What the run waits for from a person ("a review", "resume"), if it waits."""
        if not self.running:
            return None
        if self.pending_request is not None or self.view.pending_review:
            return "a review"
        return "resume" if self.paused else None

    def progress(self) -> tuple[float, float | None]:
        """(share of the expected calls done across resumes, seconds left; None while waiting
        for a person or before there is a rate)."""
        from fgo_engine.run.progress import fraction

        v, meter = self.view, self.progress_meter
        done = v.status == "done"
        if not meter.expected:  # nothing observed yet in this app (a view of a stopped run)
            return fraction(v.calls_this_run, v.expected_calls, finished=done), None
        share = meter.fraction(finished=done)
        eta = None if done or not self.running else meter.eta()
        return share, eta

    def pause(self) -> None:
        if self.session is not None and self.running:
            self.session.pause()

    def resume(self) -> None:
        if self.session is not None and self.running:
            self.session.resume()

    def cancel(self) -> None:
        if self.session is not None and self.running:
            self.session.cancel()

    @property
    def auto(self) -> bool | None:
        """Whether merges are auto-approved; None when the gate cannot switch."""
        return self.gate.auto if isinstance(self.gate, QueueGate) else None

    def set_auto(self, on: bool) -> bool:
        if not isinstance(self.gate, QueueGate):
            return False
        self.gate.set_auto(on)
        return True

    def decide(self, decision: Any) -> bool:
        """Hand the decision to the run; False when it was decided already (following a run
        elsewhere, another app answered first)."""
        if self.follower is not None:
            request = self.follower.pending
            return request is not None and self.follower.decide(request, decision)
        if isinstance(self.gate, QueueGate):
            self.gate.decide(decision)
        return True

    @property
    def pending_request(self) -> ReviewRequest | None:
        if self.follower is not None:
            return self.follower.pending
        return self.gate.pending if isinstance(self.gate, QueueGate) else None

    def close(self) -> None:
        if self.follower is not None:
            self.follower.stop()
            self.follower = None
        try:
            if self.session is not None:
                self.session.close()
            elif self.store is not None:
                self.store.close()
        finally:
            self.session = None
            self.store = None
