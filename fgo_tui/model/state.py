"""What the app shows about a run, as plain data.

A :class:`RunView` is rebuilt from store rows when a session is opened
(:func:`fgo_tui.model.data.load_run_view`) and kept current by applying drained event
batches. Every object carries a ``version`` that moves when it changes, so widgets
redraw only what changed. No Textual import: tested without an app.
"""
from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fgo_engine import events as ev
from fgo_engine import redaction
from fgo_engine.types import AUTO_APPROVE, IDENTICAL_CHILDREN, IF_NOT_WORSE, OPERATOR, NodeRef, subset_ref
from fgo_tui.model.bridge import Batch

STEP_LINES = 60  # trajectory lines kept per subset
LOG_LINES = 2000  # Events lines kept (as many as the Events tab's log shows)
DECIDED = {"approve": "approved", "edit": "edited", "rollback": "rolled back"}


def clock_time() -> str:
    """The local wall-clock time an Events line carries (the time the app received it)."""
    return time.strftime("%H:%M:%S")


@dataclass(frozen=True)
class StepLine:
    task_id: str
    kind: str  # observation | action | answer | tool_call | tool_result | note
    text: str


@dataclass
class EpochView:
    epoch: int
    score: float
    best_score: float
    adopted: bool | None  # None: no candidate was judged at this epoch


@dataclass
class CritiqueView:
    epoch: int
    task_id: str
    failure: str
    suggestion: str


@dataclass
class SubsetView:
    id: int
    name: str = ""
    n_tasks: int = 0
    categories: tuple[str, ...] = ()
    node: str = ""  # the Ray node its rollouts run on ("" in this process)
    status: str = "pending"  # pending | queued | running | done | failed
    error: str | None = None
    queued: str | None = None  # why it waits: "4/4 workers busy", "8/8 slots busy"
    pass_epoch: int | None = None  # the epoch whose tasks are being explored now
    pass_done: int = 0  # tasks explored in that epoch (best and candidate)
    epochs: dict[int, EpochView] = field(default_factory=dict)
    best_score: float | None = None
    module_id: str | None = None  # the best module so far
    prev_module_id: str | None = None  # the best module before it (for "latest change")
    proposed_id: str | None = None  # the latest candidate
    proposed_epoch: int | None = None
    critique: CritiqueView | None = None
    critiques_seen: int = 0
    steps: deque[StepLine] = field(default_factory=lambda: deque(maxlen=STEP_LINES))
    steps_seen: int = 0  # lines ever appended (so a widget knows how many are new)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0
    cache_hits: int = 0
    version: int = 0  # moves with status, scores, module and critique (not with steps or tokens)

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def add_lines(self, lines: list[StepLine]) -> None:
        self.steps.extend(lines)
        self.steps_seen += len(lines)


@dataclass
class NodeView:
    id: str
    child_ids: tuple[str, ...] = ()
    parent_id: str | None = None
    status: str = "planned"  # planned | merging | pending_review | backtesting | done | failed
    n_tasks: int = 0
    score_before: float | None = None
    score_after: float | None = None
    decision: str | None = None  # approve | edit | rollback
    decided_by: str | None = None
    reviewed: str | None = None  # the review's own decision (before an if-not-worse roll back)
    module_id: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0
    backtest_done: int = 0  # backtest tasks finished (the merge, then the best child under if-not-worse)
    backtest_mode: str | None = None  # full | adaptive, once backtested
    backtest_tasks: int | None = None  # the tasks the backtest ran on (adaptive: the sample)
    interval: tuple[float, float] | None = None  # adaptive: 95% bound of merged − best child
    planned: bool = False  # a skeleton node: the merges still to come
    version: int = 0

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def rolled_back_by_backtest(self) -> bool:
        """Approved, then rolled back by if-not-worse because the backtest scored it below its best child."""
        return self.decision == "rollback" and self.decided_by == IF_NOT_WORSE

    @property
    def display_status(self) -> str:
        """One short word for the tree: what took effect."""
        if self.status == "done":
            return DECIDED.get(self.decision or "", "done")
        return self.status.replace("_", " ")

    @property
    def decision_text(self) -> str:
        """The node's state in words, decision and who made it included (the detail's header)."""
        if self.status != "done":
            if self.decision and self.status in ("backtesting", "stopped"):
                return f"{DECIDED.get(self.decision, self.decision)} · backtest " + (
                    "running" if self.status == "backtesting" else "not finished (stopped; r resumes)")
            return self.display_status
        if self.rolled_back_by_backtest:
            first = DECIDED.get(self.reviewed or "approve", "approved")
            return f"{first} · rolled back by backtest (worse than best child)"
        who = {OPERATOR: "by you", AUTO_APPROVE: "by auto-approve", IF_NOT_WORSE: "not worse than its best child",
               IDENTICAL_CHILDREN: "children identical"}.get(self.decided_by or "", self.decided_by)
        return self.display_status + (f" ({who})" if who else "")


@dataclass
class RunView:
    path: str = ""
    name: str = ""
    suite: str = ""
    method: str = "fgo"
    has_merge_tree: bool = True  # subsets meeting in merge nodes (the engine's Method says; fgo's default)
    max_merge_nodes: int = 0
    status: str = "new"
    message: str = ""
    models: dict[str, str] = field(default_factory=dict)
    review_policy: str = "auto"
    backtest: str = "full"  # full | adaptive (the config's merge backtest)
    n_subsets: int = 0
    epochs: int = 0
    threshold: int = 2
    budget_tokens: int | None = None
    n_train: int = 0
    n_test: int = 0
    projected_calls: dict[str, int] = field(default_factory=dict)
    projection: dict[str, Any] = field(default_factory=dict)  # Projection.to_dict() of the current run
    sandbox: str = ""  # what the run's tool code runs under
    sandbox_warning: str = ""  # `auto` fell back to a weaker layer: shown on the run bar
    workers: int = 0
    calls_this_run: int = 0  # calls since the current run started ("starting…" until the first)
    run_started: bool = False
    elapsed_before: float = 0.0  # wall seconds of the session's earlier runs
    subsets: dict[int, SubsetView] = field(default_factory=dict)
    nodes: dict[str, NodeView] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0
    cache_hits: int = 0
    role_tokens: dict[str, int] = field(default_factory=dict)
    phase_tokens: dict[str, int] = field(default_factory=dict)
    train_score: float | None = None
    test_score: float | None = None
    start_test_score: float | None = None  # the starting module on the same test tasks (shown beside test_score)
    final_module_id: str | None = None
    updated_at: str | None = None
    pending_review: str | None = None
    logs: deque[tuple[str, str, str]] = field(default_factory=lambda: deque(maxlen=LOG_LINES))  # (time, level, text)
    logs_seen: int = 0
    clock: Callable[[], str] = field(default=clock_time, repr=False, compare=False)
    version: int = 0
    tree_version: int = 0  # moves when the shape of the merge tree changes
    module_texts: dict[str, str] = field(default_factory=dict)

    # -- derived ------------------------------------------------------------------------
    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def expected_calls(self) -> float:
        return float((self.projection.get("total") or {}).get("calls") or 0)

    @property
    def subsets_done(self) -> int:
        return sum(1 for s in self.subsets.values() if s.status == "done")

    @property
    def nodes_done(self) -> int:
        return sum(1 for n in self.nodes.values() if n.status == "done")

    @property
    def max_nodes(self) -> int:
        """Merge nodes a full run makes at most (the method's own count, from the engine)."""
        return self.max_merge_nodes

    def subset(self, sid: int) -> SubsetView:
        s = self.subsets.get(sid)
        if s is None:
            s = self.subsets[sid] = SubsetView(sid, name=f"subset {sid}")
        return s

    def node(self, nid: str) -> NodeView:
        n = self.nodes.get(nid)
        if n is None:
            n = self.nodes[nid] = NodeView(nid)
            self.tree_version += 1
        return n

    def item(self, ref: str) -> SubsetView | NodeView | None:
        """The subset or merge node a tree reference ("s3", "n2") names, if the view has it."""
        sid = subset_ref(ref)
        return self.subsets.get(sid) if sid is not None else self.nodes.get(ref)

    def log(self, level: str, text: str) -> None:
        self.logs.append((self.clock(), level, text))
        self.logs_seen += 1

    # -- updates ------------------------------------------------------------------------
    def apply(self, batch: Batch) -> None:
        """Fold one drained batch into the view."""
        if not batch and batch.total_tokens is None:
            return
        self.version += 1
        for e in batch.events:
            self._apply_event(e)
        for q in batch.queued.values():  # after the events: a subset started in this batch can be queued
            self._apply_queued(q)
        for (kind, sid), steps in batch.steps.items():
            if kind != "subset":
                continue
            s = self.subset(int(sid))
            lines: list[StepLine] = []
            for st in steps:
                if st.observation:
                    lines.append(StepLine(st.task_id, "observation", st.observation))
                lines.append(StepLine(st.task_id, "action", st.action))
            s.add_lines(lines)
        for (kind, sid), d in batch.tokens.items():
            self.calls_this_run += d.calls
            self.prompt_tokens += d.prompt
            self.completion_tokens += d.completion
            self.calls += d.calls
            self.cache_hits += d.cache_hits
            target: SubsetView | NodeView | None = None
            if kind == "subset":
                target = self.subset(int(sid))
                target.cache_hits += d.cache_hits
            elif kind == "node":
                target = self.node(sid)
            if target is not None:
                target.prompt_tokens += d.prompt
                target.completion_tokens += d.completion
                target.calls += d.calls
                if isinstance(target, NodeView):
                    target.version += 1
        for role, d in batch.roles.items():
            self.role_tokens[role] = self.role_tokens.get(role, 0) + d.prompt + d.completion
        for phase, d in batch.phases.items():
            self.phase_tokens[phase] = self.phase_tokens.get(phase, 0) + d.prompt + d.completion

    def apply_event(self, e: ev.Event) -> None:
        """Fold one event into the view (a drained batch does this for each of its events)."""
        handler = _HANDLERS.get(type(e))
        if handler is not None:
            handler(self, e)

    _apply_event = apply_event

    # -- one handler per event (dispatched by _HANDLERS, below the class) ----------------
    def _on_run_started(self, e: ev.RunStarted) -> None:
        self.method, self.n_subsets = e.method, e.n_subsets
        self.n_train, self.n_test = e.n_train, e.n_test
        self.projected_calls = dict(e.projected_calls)
        self.projection = dict(e.projection or {})
        if e.has_merge_tree is not None:  # a run recorded before the event said so keeps the view's
            self.has_merge_tree, self.max_merge_nodes = e.has_merge_tree, e.max_merge_nodes or 0
        self.sandbox, self.sandbox_warning = e.sandbox, e.sandbox_warning
        self.message = ""
        self.run_started, self.calls_this_run = True, 0
        if not self.has_merge_tree:
            return
        busy = bool(self.workers and self.workers < e.n_subsets)
        for sid in range(e.n_subsets):  # not started yet: waiting for a worker
            s = self.subset(sid)
            if s.status in ("pending", "running", "queued", "stopped"):
                s.status = "queued"
                s.queued = f"{self.workers}/{self.workers} workers busy" if busy else None
                s.version += 1

    def _on_run_status(self, e: ev.RunStatus) -> None:
        if e.status != self.status:
            self.log("info", f"status: {e.status}" + (f" ({e.message})" if e.message else ""))
        self.status = e.status
        if e.message:
            self.message = e.message

    def _on_subset_started(self, e: ev.SubsetStarted) -> None:
        s = self.subset(e.subset_id)
        s.name, s.n_tasks, s.categories, s.node = e.name, e.n_tasks, tuple(e.categories), e.node
        if s.status != "done":
            s.status = "running"
        s.queued = None
        s.version += 1

    def _on_task_finished(self, e: ev.TaskFinished) -> None:
        if e.scope_kind == "subset" and e.phase == "explore" and e.scope_id.isdigit():
            s = self.subset(int(e.scope_id))
            if s.pass_epoch != e.epoch:
                s.pass_epoch, s.pass_done = e.epoch, 0
            s.pass_done += 1
            s.version += 1
        elif e.scope_kind == "node":
            n = self.node(e.scope_id)
            n.backtest_done += 1
            n.version += 1

    def _on_critique(self, e: ev.CritiqueMade) -> None:
        s = self.subset(e.subset_id)
        s.critique = CritiqueView(e.epoch, e.task_id, e.failure, e.suggestion)
        s.critiques_seen += 1
        s.version += 1

    def _on_module_proposed(self, e: ev.ModuleProposed) -> None:
        s = self.subset(e.subset_id)
        s.proposed_id, s.proposed_epoch = e.module_id, e.epoch
        self.module_texts[e.module_id] = e.text
        s.version += 1

    def _on_epoch_done(self, e: ev.EpochDone) -> None:
        s = self.subset(e.subset_id)
        s.epochs[e.epoch] = EpochView(e.epoch, e.score, e.best_score, e.adopted)
        if e.module_id != s.module_id:
            s.prev_module_id = s.module_id or "initial"
        s.best_score, s.module_id = e.best_score, e.module_id
        if s.proposed_epoch is not None and s.proposed_epoch <= e.epoch:
            s.proposed_id = s.proposed_epoch = None  # judged: adopted or rejected
        s.version += 1

    def _on_subset_done(self, e: ev.SubsetDone) -> None:
        s = self.subset(e.subset_id)
        if e.error:
            s.status, s.error = "failed", e.error
            self.log("error", f"subset {e.subset_id} failed: {e.error}")
        else:
            if s.status != "done":
                self.log("info", f"subset s{e.subset_id} done: best {e.best_score:.3f} ({e.module_id})")
            s.status, s.best_score, s.module_id = "done", e.best_score, e.module_id or s.module_id
            s.proposed_id = s.proposed_epoch = None
        s.version += 1

    def _on_merge_node(self, e: ev.MergeNodeUpdated) -> None:
        n = self.node(e.node_id)
        if tuple(e.child_ids) != n.child_ids:
            n.child_ids = tuple(e.child_ids)
            self.tree_version += 1
            for c in n.child_ids:
                if c in self.nodes:
                    self.nodes[c].parent_id = n.id
        was = n.status
        n.status, n.n_tasks, n.planned = e.status, e.n_tasks, False
        if e.status == "merging" and was != "merging":
            n.backtest_done = 0
        _merge_values(n, e)
        self._log_merge(n, e, was)
        if e.status == "pending_review":
            self.pending_review = n.id
        elif self.pending_review == n.id:
            self.pending_review = None
        n.version += 1

    def _log_merge(self, n: NodeView, e: ev.MergeNodeUpdated, was: str) -> None:
        if e.status == "done" and was != "done" and e.score_after is not None:
            bt = backtest_summary(n.backtest_mode, n.backtest_tasks, n.n_tasks, n.interval)
            self.log("info", f"merge {n.id} of {', '.join(n.child_ids)} done: "
                             f"{fmt_score(n.score_before)} → {e.score_after:.3f} ({n.display_status})"
                             + (f" · {bt}" if bt else ""))
        elif e.status == "pending_review" and was != "pending_review":
            self.log("info", f"merge {n.id} of {', '.join(n.child_ids)} waits for review")

    def _on_review_requested(self, e: ev.ReviewRequested) -> None:
        self.pending_review = e.node_id

    def _on_run_finished(self, e: ev.RunFinished) -> None:
        self.settle(e.status)
        self.status = e.status
        self.message = e.message
        self.train_score, self.test_score = e.train_score, e.test_score
        self.start_test_score = e.start_test_score
        self.final_module_id = e.final_module_id or self.final_module_id
        self.pending_review = None
        self.log("info" if e.status == "done" else "warning",
                 f"run finished: {e.status}" + (f" — {e.message}" if e.message else ""))

    def _on_log(self, e: ev.Log) -> None:
        self.log(e.level, e.text)

    def _apply_queued(self, e: ev.ScopeQueued) -> None:
        """A running subset whose calls all wait for a model slot is queued, not running; it runs
        again once it holds a slot."""
        if e.scope_kind != "subset" or not e.scope_id.isdigit():
            return
        s = self.subsets.get(int(e.scope_id))
        if s is None:
            return
        if e.queued and s.status == "running":
            s.status, s.queued = "queued", f"{e.in_flight}/{e.limit} slots busy"
            s.version += 1
        elif not e.queued and s.status == "queued" and (s.queued or "").endswith("slots busy"):
            s.status, s.queued = "running", None
            s.version += 1

    def settle(self, status: str) -> None:
        """A run that is not on any more leaves nothing "running", "queued", "merging" or
        "backtesting" behind (a merge waiting for review keeps waiting: a resume asks again)."""
        if status == "running":
            return
        for s in self.subsets.values():
            if s.status in ("running", "queued"):
                s.status, s.queued = "stopped", None
                s.version += 1
        for n in self.nodes.values():
            if n.status in ("merging", "backtesting"):
                n.status = "stopped"
                n.version += 1

    def roots(self) -> list[str]:
        """Top of the merge tree: nodes no other node lists as a child, then loose subsets."""
        children = {c for n in self.nodes.values() for c in n.child_ids}
        tops = [nid for nid in self.nodes if nid not in children]
        loose = [ref for ref in (str(NodeRef.subset(sid)) for sid in sorted(self.subsets)) if ref not in children]
        return tops + loose


def _merge_values(n: NodeView, e: ev.MergeNodeUpdated) -> None:
    """The node's scores, decision (and who made it), module and backtest, as the event says."""
    if e.score_before is not None:
        n.score_before = e.score_before
    if e.status in ("merging", "pending_review"):
        n.score_after = n.decision = n.decided_by = n.reviewed = None
    if e.score_after is not None:
        n.score_after = e.score_after
    if e.decision is not None:
        if e.status == "backtesting" or (e.decided_by is not None and e.decided_by != IF_NOT_WORSE):
            n.reviewed = e.decision  # the review's own decision (an if-not-worse roll back comes after it)
        n.decision = e.decision
    if e.decided_by is not None:
        n.decided_by = e.decided_by
    if e.module_id is not None:
        n.module_id = e.module_id
    if e.backtest_tasks is not None:
        n.backtest_tasks, n.interval = e.backtest_tasks, e.interval
        n.backtest_mode = "adaptive" if e.interval is not None else "full"


_HANDLERS: dict[type, Callable[[RunView, Any], None]] = {
    ev.RunStarted: RunView._on_run_started,
    ev.RunStatus: RunView._on_run_status,
    ev.SubsetStarted: RunView._on_subset_started,
    ev.TaskFinished: RunView._on_task_finished,
    ev.CritiqueMade: RunView._on_critique,
    ev.ModuleProposed: RunView._on_module_proposed,
    ev.EpochDone: RunView._on_epoch_done,
    ev.SubsetDone: RunView._on_subset_done,
    ev.MergeNodeUpdated: RunView._on_merge_node,
    ev.ReviewRequested: RunView._on_review_requested,
    ev.RunFinished: RunView._on_run_finished,
    ev.Log: RunView._on_log,
}


def fmt_tokens(n: int | float | None) -> str:
    """12 → '12', 12_345 → '12.3k', 2_500_000 → '2.50M' (the projection's count format)."""
    from fgo_engine.method.projection import fmt_count

    return fmt_count(n)


def backtest_summary(mode: str | None, tasks: int | None, total: int | None,
                     interval: tuple[float, float] | None) -> str:
    """'backtest: 18/48 tasks (adaptive) · 95% CI of merged − best child −0.21…+0.04'; '' before one.

    The interval is the adaptive backtest's stopping rule: the sample grows until it excludes 0
    (merged and best child separated) or the union is done."""
    if tasks is None:
        return ""
    out = f"backtest: {tasks}/{total or tasks} tasks ({mode or 'full'})"
    if mode == "adaptive" and interval is not None:
        out += f" · 95% CI of merged − best child {signed(interval[0])}…{signed(interval[1])}"
    return out


def signed(x: float) -> str:
    return f"{x:+.2f}".replace("-", "−")


def fmt_score(x: float | None) -> str:
    return "—" if x is None else f"{x:.3f}"


def short(text: Any, width: int) -> str:
    """One line, at most ``width`` characters; masked before it is cut (never half a key)."""
    s = redaction.scrub(" ".join(str(text or "").split()))
    return s if len(s) <= width else s[: max(1, width - 1)] + "…"
