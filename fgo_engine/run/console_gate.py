"""Headless ``--review ask``: show the merge and its children, read the decision from stdin."""
from __future__ import annotations

import difflib
import os
import subprocess
import sys
import tempfile
from typing import TextIO

from fgo_engine.errors import CancelledError
from fgo_engine.method.review import GateBase
from fgo_engine.types import ReviewDecision, ReviewRequest


class ConsoleGate(GateBase):
    policy = "ask"

    def __init__(self, inp: TextIO | None = None, out: TextIO | None = None):
        self.inp = inp or sys.stdin
        self.out = out or sys.stdout

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
            line = self.inp.readline()
            if not line:
                raise CancelledError(f"no answer for the review of {request.node_id} (input closed); "
                                     "the review is asked again on resume")
            choice = line.strip().lower()[:1]
            if choice == "a":
                return ReviewDecision("approve", by="operator")
            if choice == "r":
                return ReviewDecision("rollback", by="operator")
            if choice == "e":
                text = self._edit(request.proposed.text)
                if text.strip():
                    return ReviewDecision("edit", text, by="operator")
                say("the edited text is empty; nothing changed")

    def _edit(self, text: str) -> str:
        editor = os.environ.get("VISUAL") or os.environ.get("EDITOR")
        if not editor or not self.inp.isatty():
            print("enter the new module, end with a line holding only '.':", file=self.out, flush=True)
            lines = []
            for line in self.inp:
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
