"""A console event sink for headless runs: concise progress lines, not a flood."""
from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

from fgo_engine import events as ev


class ConsolePrinter:
    def __init__(self, out: TextIO | None = None, *, verbose: bool = False):
        self.out = out or sys.stdout
        self.verbose = verbose
        self._lock = threading.Lock()
        self._start = time.perf_counter()
        self._done = 0
        self._tokens = 0

    def _say(self, text: str) -> None:
        with self._lock:
            t = time.perf_counter() - self._start
            print(f"[{t:7.1f}s] {text}", file=self.out, flush=True)

    def __call__(self, e: ev.Event) -> None:
        if isinstance(e, ev.RunStarted):
            roles = (e.projection or {}).get("roles", {})
            calls = ", ".join(f"{k} ≤{v:,}" + (f" (~{roles[k]['calls']:,})" if k in roles else "")
                              for k, v in e.projected_calls.items())
            self._say(f"run: {e.method}, {e.n_subsets} subsets, {e.n_train} train / {e.n_test} test tasks; "
                      f"projected LLM calls: {calls}")
        elif isinstance(e, ev.SubsetStarted):
            self._say(f"{e.name}: {e.n_tasks} tasks")
        elif isinstance(e, ev.EpochDone):
            verdict = "adopted" if e.adopted else "kept best"
            self._say(f"subset {e.subset_id} step {e.epoch}: score {e.score:.3f} ({verdict}; best {e.best_score:.3f})")
        elif isinstance(e, ev.SubsetDone):
            if e.error:
                self._say(f"subset {e.subset_id} FAILED: {e.error}")
            else:
                self._say(f"subset {e.subset_id} done: best {e.best_score:.3f} ({e.module_id})")
        elif isinstance(e, ev.MergeNodeUpdated):
            if e.status == "done":
                self._say(f"merge {e.node_id} ← {', '.join(e.child_ids)}: {e.n_tasks} tasks, "
                          f"{e.score_before:.3f} → {e.score_after:.3f} ({e.decision or 'approve'})")
            elif self.verbose:
                self._say(f"merge {e.node_id}: {e.status}")
        elif isinstance(e, ev.Log):
            if e.level != "info" or self.verbose:
                self._say(f"{e.level}: {e.text}")
        elif isinstance(e, ev.TokensUsed):
            self._tokens = e.total_tokens
            if e.error and self.verbose:
                self._say(f"llm {e.role}: {e.error}")
        elif isinstance(e, ev.RunStatus) and e.status in ("paused",):
            self._say(f"status: {e.status} {e.message}")
        elif isinstance(e, ev.RunFinished):
            parts = [f"finished: {e.status}"]
            if e.train_score is not None:
                parts.append(f"train {e.train_score:.3f}")
            if e.test_score is not None:
                parts.append(f"test {e.test_score:.3f}")
            parts.append(f"{self._tokens:,} tokens spent")
            if e.message:
                parts.append(e.message)
            self._say(" · ".join(parts))
        elif isinstance(e, ev.AgentStep) and self.verbose:
            self._say(f"  {e.scope_kind}{e.scope_id} {e.task_id}: {e.action[:80]}")
