"""Headless ``--review ask``: show the merge and its children, read the decision from stdin,
or take it from the app following the run (:mod:`fgo_engine.persistence.inbox`)."""
from __future__ import annotations

import difflib
import os
import queue
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import TextIO

from fgo_engine.errors import CancelledError
from fgo_engine.method.review import GateBase
from fgo_engine.persistence import inbox
from fgo_engine.types import OPERATOR, ReviewDecision, ReviewRequest

POLL_SECONDS = 0.2  # how often a waiting gate looks for a decision posted by the app


class InboxGate(GateBase):
    """Waits for the decision the app posts beside the session file (a run with no console:
    the Python API, or ``fgo run --headless`` whose input is closed)."""

    policy = "ask"
    asks_person = True

    def __init__(self, session: str | Path, *, poll: float = POLL_SECONDS):
        self.session = Path(session)
        self.poll = poll
        self._cancelled = threading.Event()

    def take(self, request: ReviewRequest) -> ReviewDecision | None:
        return inbox.take(self.session, request.node_id, request.proposed.text)

    def review(self, request: ReviewRequest) -> ReviewDecision:
        while not self._cancelled.is_set():
            decision = self.take(request)
            if decision is not None:
                return decision
            self._cancelled.wait(self.poll)
        raise CancelledError(f"run cancelled while the review of {request.node_id} was pending")

    def cancel(self) -> None:
        self._cancelled.set()


class ConsoleGate(GateBase):
    """Asks on the console. Given the session file, it also takes a decision the app posts for
    the same review (whichever comes first applies; the other is ignored)."""

    policy = "ask"
    asks_person = True

    def __init__(self, inp: TextIO | None = None, out: TextIO | None = None, *, session: str | Path | None = None,
                 poll: float = POLL_SECONDS):
        self.inp = inp or sys.stdin
        self.out = out or sys.stdout
        self.remote = InboxGate(session, poll=poll) if session is not None else None
        self._lines: queue.Queue[str] | None = None
        self._closed = False

    def cancel(self) -> None:
        if self.remote is not None:
            self.remote.cancel()

    def _readline(self, request: ReviewRequest) -> str | ReviewDecision:
        """The next console line ("" when input is closed), or the app's decision if it comes first."""
        if self.remote is None:
            return self.inp.readline()
        if self._lines is None:
            lines: queue.Queue[str] = queue.Queue()

            def pump() -> None:
                while True:
                    line = self.inp.readline()
                    lines.put(line)
                    if not line:
                        return

            threading.Thread(target=pump, name="fgo-console-input", daemon=True).start()
            self._lines = lines
        while True:
            decision = self.remote.take(request)
            if decision is not None:
                return decision
            if self.remote._cancelled.is_set():
                raise CancelledError(f"run cancelled while the review of {request.node_id} was pending")
            if self._closed:
                self.remote._cancelled.wait(self.remote.poll)
                continue
            try:
                line = self._lines.get(timeout=self.remote.poll)
            except queue.Empty:
                continue
            if line:
                return line
            self._closed = True
            print(f"input closed: waiting for the decision on {request.node_id} from the app "
                  f"(fgo, open {self.remote.session.name}, v)", file=self.out, flush=True)

    def review(self, request: ReviewRequest) -> ReviewDecision:
        best = max(request.children, key=lambda c: c.score)
        say = lambda s="": print(s, file=self.out, flush=True)  # noqa: E731
        say(f"\n=== review {request.node_id}: merge of {', '.join(c.node_id for c in request.children)} "
            f"({request.task_count} tasks) ===")
        for c in request.children:
            say(f"  child {c.node_id}: score {c.score:.3f} on {c.n_tasks} tasks")
        say("--- proposed (diff against the best child, " + best.node_id + ")")
        for line in difflib.unified_diff(best.module.text.splitlines(), request.proposed.text.splitlines(),
                                         best.node_id, "merged", lineterm="", n=1000):
            say("  " + line)
        while True:
            say(f"review {request.node_id}: [a]pprove, [e]dit, [r]ollback to {best.node_id}? ")
            got = self._readline(request)
            if isinstance(got, ReviewDecision):
                say(f"review {request.node_id}: {got.decision}, decided in the app")
                return got
            line = got
            if not line:
                raise CancelledError(f"no answer for the review of {request.node_id} (input closed); "
                                     "the review is asked again on resume")
            choice = line.strip().lower()[:1]
            if choice == "a":
                return ReviewDecision("approve", by=OPERATOR)
            if choice == "r":
                return ReviewDecision("rollback", by=OPERATOR)
            if choice == "e":
                text = self._edit(request.proposed.text)
                if text.strip():
                    return ReviewDecision("edit", text, by=OPERATOR)
                say("the edited text is empty; nothing changed")

    def _typed_lines(self):
        """The console's lines, from the input reader when one pumps them (never two readers)."""
        if self._lines is None:
            yield from self.inp
            return
        while True:
            line = self._lines.get()
            if not line:
                self._closed = True
                return
            yield line

    def _edit(self, text: str) -> str:
        editor = os.environ.get("VISUAL") or os.environ.get("EDITOR")
        if not editor or not self.inp.isatty():
            print("enter the new module, end with a line holding only '.':", file=self.out, flush=True)
            lines = []
            for line in self._typed_lines():
                if line.rstrip("\n") == ".":
                    break
                lines.append(line.rstrip("\n"))
            return "\n".join(lines)
        with tempfile.NamedTemporaryFile("w+", suffix=".txt", delete=False, encoding="utf-8") as f:
            f.write(text)
            name = f.name
        try:
            subprocess.call([*editor.split(), name])
            with open(name, encoding="utf-8") as f:
                return f.read()
        finally:
            os.unlink(name)
