"""A console event sink for headless runs: concise progress lines, not a flood."""
from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

from fgo_engine import events as ev
from fgo_engine import redaction
from fgo_engine.run.progress import Progress, fmt_duration

HEARTBEAT = 10.0  # a progress line at least this often while nothing else is printed


class ConsolePrinter:
    """Prints events as lines; while a run is on, a heartbeat line (calls, share of the
    expected calls, ETA) whenever nothing was printed for ``heartbeat`` seconds."""

    def __init__(self, out: TextIO | None = None, *, verbose: bool = False, heartbeat: float = HEARTBEAT):
        self.out = out or sys.stdout
        self.verbose = verbose
        self.heartbeat = heartbeat
        self._lock = threading.Lock()
        self._start = time.perf_counter()
        self._last_line = self._start
        self._done = 0
        self._tokens = 0
        self._calls = 0
        self._progress = Progress()
        self._waiting_on: set[str] = set()  # merge nodes waiting for a review, "paused" while paused
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def _say(self, text: str) -> None:
        with self._lock:
            now = time.perf_counter()
            self._last_line = now
            print(f"[{now - self._start:7.1f}s] {redaction.scrub(text)}", file=self.out, flush=True)

    # -- heartbeat --------------------------------------------------------------------
    def _start_heartbeat(self) -> None:
        if self._beat is not None or self.heartbeat <= 0:
            return
        self._stop.clear()
        self._beat = threading.Thread(target=self._beat_loop, name="fgo-heartbeat", daemon=True)
        self._beat.start()

    def stop(self) -> None:
        self._stop.set()
        beat, self._beat = self._beat, None
        if beat is not None and beat is not threading.current_thread():
            beat.join(timeout=2)

    def _beat_loop(self) -> None:
        tick = min(1.0, self.heartbeat / 2)
        while not self._stop.wait(tick):
            if time.perf_counter() - self._last_line >= self.heartbeat:
                self._say(self.progress_line())

    def progress_line(self) -> str:
        p = self._progress
        if not self._calls and not p.done:
            return "starting… (waiting for the first LLM answer)"
        parts = [f"running: {self._calls:,} calls"]
        if p.expected:
            parts.append(f"{p.fraction():.0%} of ~{round(p.expected):,} expected")
            if p.waiting:
                parts.append("waiting for " + ("a review" if self._waiting_on - {"paused"} else "resume")
                             + " (ETA paused: time waiting for a person is not counted)")
            else:
                eta = p.eta()
                if eta is not None:
                    parts.append(f"ETA {fmt_duration(eta)}")
        parts.append(f"{self._tokens:,} tokens")
        return " · ".join(parts)

    def _wait(self, key: str, on: bool) -> None:
        (self._waiting_on.add if on else self._waiting_on.discard)(key)
        self._progress.wait(time.perf_counter(), bool(self._waiting_on))

    def __call__(self, e: ev.Event) -> None:
        handler = _HANDLERS.get(type(e))
        if handler is not None:
            handler(self, e)

    # -- one line (or none) per kind of event, dispatched by _HANDLERS ----------------------
    def _run_started(self, e: ev.RunStarted) -> None:
        roles = (e.projection or {}).get("roles", {})
        self._progress.start(e.projection, e.done_before)
        self._waiting_on.clear()
        calls = ", ".join(f"{k} ≤{v:,}" + (f" (~{roles[k]['calls']:,})" if k in roles else "")
                          for k, v in e.projected_calls.items())
        shape = f"{e.n_subsets} subsets, {e.n_train} train" if e.n_subsets else "no training"
        self._say(f"run: {e.method}, {shape} / {e.n_test} test tasks; projected LLM calls: {calls}")
        self._say("starting…")
        self._start_heartbeat()

    def _subset_started(self, e: ev.SubsetStarted) -> None:
        self._say(f"{e.name}: {e.n_tasks} tasks" + (f" (rollouts on {e.node})" if e.node else ""))

    def _epoch_done(self, e: ev.EpochDone) -> None:
        verdict = "starting point" if e.adopted is None else "adopted" if e.adopted else "kept best"
        self._say(f"subset {e.subset_id} epoch {e.epoch}: score {e.score:.3f} ({verdict}; "
                  f"best {e.best_score:.3f})")

    def _subset_done(self, e: ev.SubsetDone) -> None:
        if e.error:
            self._say(f"subset {e.subset_id} FAILED: {e.error}")
        else:
            self._say(f"subset {e.subset_id} done: best {e.best_score:.3f} ({e.module_id})")

    def _merge_node(self, e: ev.MergeNodeUpdated) -> None:
        self._wait(e.node_id, e.status == "pending_review")
        if e.status == "done":
            self._say(f"merge {e.node_id} ← {', '.join(e.child_ids)}: {e.n_tasks} tasks, "
                      f"{e.score_before:.3f} → {e.score_after:.3f}" + (f" ({e.decision})" if e.decision else ""))
        elif self.verbose:
            self._say(f"merge {e.node_id}: {e.status}")

    def _log(self, e: ev.Log) -> None:
        if e.level != "info" or self.verbose:
            self._say(f"{e.level}: {e.text}")

    def _task_finished(self, e: ev.TaskFinished) -> None:
        self._progress.episode(e.phase)

    def _tokens_used(self, e: ev.TokensUsed) -> None:
        self._tokens = e.total_tokens
        self._calls += 1
        self._progress.add(time.perf_counter(), e.role, cached=int(e.cache_hit), seconds=e.latency_ms / 1000.0,
                           phase=e.phase)
        if e.error and self.verbose:
            self._say(f"llm {e.role}: {e.error}")

    def _review_requested(self, e: ev.ReviewRequested) -> None:
        self._wait(e.node_id, True)

    def _run_status(self, e: ev.RunStatus) -> None:
        self._wait("paused", e.status == "paused")
        if e.status == "paused":
            self._say(f"status: {e.status} {e.message}")

    def _run_finished(self, e: ev.RunFinished) -> None:
        self.stop()
        parts = [f"finished: {e.status}"]
        if e.train_score is not None:
            parts.append(f"train {e.train_score:.3f}")
        if e.test_score is not None and e.start_test_score is not None:
            parts.append(f"test {e.start_test_score:.3f} → {e.test_score:.3f} (starting module → result)")
        elif e.test_score is not None:
            parts.append(f"test {e.test_score:.3f}")
        parts.append(f"{self._tokens:,} tokens spent")
        if e.message:
            parts.append(e.message)
        self._say(" · ".join(parts))

    def _agent_step(self, e: ev.AgentStep) -> None:
        if self.verbose:  # masked before it is cut: never half a key
            self._say(f"  {e.scope_kind}{e.scope_id} {e.task_id}: {redaction.clip(e.action, 80)}")


_HANDLERS: dict[type, Callable[[ConsolePrinter, Any], None]] = {
    ev.RunStarted: ConsolePrinter._run_started,
    ev.SubsetStarted: ConsolePrinter._subset_started,
    ev.EpochDone: ConsolePrinter._epoch_done,
    ev.SubsetDone: ConsolePrinter._subset_done,
    ev.MergeNodeUpdated: ConsolePrinter._merge_node,
    ev.Log: ConsolePrinter._log,
    ev.TokensUsed: ConsolePrinter._tokens_used,
    ev.ReviewRequested: ConsolePrinter._review_requested,
    ev.RunStatus: ConsolePrinter._run_status,
    ev.RunFinished: ConsolePrinter._run_finished,
    ev.AgentStep: ConsolePrinter._agent_step,
    ev.TaskFinished: ConsolePrinter._task_finished,
}
