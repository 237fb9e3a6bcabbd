"""The optimization engine: Algorithm 1 (explore → evaluate → optimize), Algorithm 2
(progressive merging with backtests behind a review gate), and test evaluation.

Everything here is deterministic for a seed: LLM prompts depend only on data, rows get
deterministic ids and are written with ``replace``, so replaying a run through the
response cache (after a crash) re-creates the same rows and spends no tokens twice.
"""
from __future__ import annotations

import hashlib
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

from fgo_engine import events as ev
from fgo_engine import prompts
from fgo_engine.cluster import groups_for, litellm_embedder, tfidf
from fgo_engine.config import RunConfig
from fgo_engine.control import Control
from fgo_engine.errors import (BudgetExceededError, CancelledError, ContextOverflowError, LLMError,
                               MalformedOutputError)
from fgo_engine.llm.gateway import Gateway, Scope
from fgo_engine.review import ChildInfo, ReviewDecision, ReviewGate, ReviewRequest
from fgo_engine.suites.base import Completion, Suite
from fgo_engine.types import Critique, Module, Step, Task, Trajectory


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else 0.0


def by_category(tasks: list[Task], trajs: list[Trajectory]) -> dict[str, float]:
    acc: dict[str, list[float]] = defaultdict(list)
    for t, tr in zip(tasks, trajs):
        acc[t.category].append(tr.score)
    return {c: mean(v) for c, v in sorted(acc.items())}


def short_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:8]


@dataclass
class LoopResult:
    best: Module
    best_id: str
    best_score: float
    steps: int
    overflowed: bool = False
    history: list[str] = field(default_factory=list)


@dataclass
class Item:
    """A module entering the merge tree: a subset's result or a merge node's."""

    node_id: str  # "s3" for subset 3, "n2" for merge node 2
    module: Module
    module_id: str
    score: float
    task_ids: list[str]
    scores_by_category: dict[str, float] = field(default_factory=dict)
    subset_ids: list[int] = field(default_factory=list)


class Engine:
    def __init__(self, config: RunConfig, suite: Suite, store: Any, gateway: Gateway,
                 bus: ev.EventBus, gate: ReviewGate, control: Control, tasks: dict[str, Task]):
        self.cfg = config
        self.suite = suite
        self.store = store
        self.gw = gateway
        self.bus = bus
        self.gate = gate
        self.control = control
        self.tasks = tasks
        self.pool = ThreadPoolExecutor(max_workers=max(2, config.task_workers), thread_name_prefix="fgo-task")
        self.overflowed = False
        self._node_counter = 0

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    # -- modules ----------------------------------------------------------------------
    def save_module(self, module_id: str, module: Module, *, origin: str, parent_id: str | None = None,
                    subset_id: int | None = None, node_id: str | None = None, epoch: int | None = None,
                    score: float | None = None, adopted: bool | None = None, note: str = "") -> str:
        self.store.insert("modules", {
            "id": module_id, "kind": module.kind, "text": module.text, "parent_id": parent_id,
            "origin": origin, "subset_id": subset_id, "node_id": node_id, "epoch": epoch, "score": score,
            "adopted": None if adopted is None else int(adopted), "note": note, "created_at": now(),
        }, replace=True)
        return module_id

    # -- explore ----------------------------------------------------------------------
    def _agent_llm(self, scope: Scope, task_id: str) -> Callable[..., Completion]:
        inner = self.gw.bind("agent", scope)
        bus, control = self.bus, self.control

        def call(messages: list[dict[str, Any]], *, tools: list[dict[str, Any]] | None = None) -> Completion:
            control.checkpoint()
            comp = inner(messages, tools=tools)
            last = next((m.get("content") or "" for m in reversed(messages) if m.get("role") in ("user", "tool")), "")
            action = comp.text or ", ".join(f"{c['name']}({c['arguments']})" for c in comp.tool_calls)
            bus.emit(ev.AgentStep(scope.kind, scope.id, task_id, str(last)[-400:], action[:400]))
            return comp

        return call

    def _run_one(self, task: Task, module: Module, scope: Scope) -> Trajectory:
        try:
            return self.suite.run_agent(task, module, self._agent_llm(scope, task.id))
        except (LLMError, MalformedOutputError, CancelledError, BudgetExceededError):
            raise  # a cancel or a budget stop inside the agent loop is not a suite bug
        except Exception as exc:  # a suite bug must not kill the run silently either
            raise LLMError(f"agent run failed on task {task.id}: {type(exc).__name__}: {exc}") from exc

    def explore(self, module: Module, module_id: str, tasks: list[Task], *, scope: Scope, epoch: int,
                subset_id: int | None = None) -> list[Trajectory]:
        """Run the agent on every task (in the task pool); results in task order."""
        self.control.checkpoint()
        futures = [self.pool.submit(self._run_one, t, module, scope) for t in tasks]
        trajs = [f.result() for f in futures]
        rows = []
        for t, tr in zip(tasks, trajs):
            rows.append({
                "id": f"{scope.phase}:{scope.kind}{scope.id}:{epoch}:{module_id}:{t.id}", "task_id": t.id,
                "module_id": module_id, "phase": scope.phase, "subset_id": subset_id,
                "node_id": scope.id if scope.kind == "node" else None, "epoch": epoch,
                "steps_json": [[s.kind, s.text] for s in tr.steps], "answer": tr.answer,
                "success": int(tr.success), "score": tr.score, "error": tr.error, "created_at": now(),
            })
            self.bus.emit(ev.TrajectoryDone(scope.kind, scope.id, scope.phase, epoch, t.id, tr.success, tr.score))
        self.store.insert_many("trajectories", rows, replace=True)
        return trajs

    # -- evaluate ---------------------------------------------------------------------
    def evaluate(self, module: Module, module_id: str, tasks: list[Task], trajs: list[Trajectory], *,
                 scope: Scope, epoch: int, subset_id: int | None) -> list[Critique]:
        """Critique failures with the evaluator; successes are marked correct without a call."""
        describe = self.suite.describe()

        def one(task: Task, tr: Trajectory) -> Critique:
            if tr.success:
                return Critique(task.id, True, raw="(success: not sent to the evaluator)")
            crit = None
            for sample in range(2):
                self.control.checkpoint()
                comp = self.gw.complete("evaluator", prompts.evaluator_messages(describe, module, task, tr),
                                        scope=scope, sample=sample)
                crit = prompts.parse_critique(task.id, comp.text)
                if crit.parsed:
                    break
            if not crit.parsed:
                self.bus.emit(ev.Log("warning", f"evaluator reply for task {task.id} was not JSON; kept as free text"))
            return crit

        futures = [self.pool.submit(one, t, tr) for t, tr in zip(tasks, trajs)]
        crits = [f.result() for f in futures]
        rows = []
        for t, c in zip(tasks, crits):
            rows.append({
                "id": f"{scope.kind}{scope.id}:{epoch}:{module_id}:{t.id}", "trajectory_id": None,
                "task_id": t.id, "module_id": module_id, "subset_id": subset_id, "epoch": epoch,
                "correct": int(c.correct), "failure": c.failure, "pattern": c.pattern,
                "suggestion": c.suggestion, "raw": c.raw, "parsed": int(c.parsed), "created_at": now(),
            })
            if not c.correct and subset_id is not None:
                self.bus.emit(ev.CritiqueMade(subset_id, epoch, t.id, c.correct, c.failure, c.suggestion))
        self.store.insert_many("critiques", rows, replace=True)
        return crits

    # -- optimize ---------------------------------------------------------------------
    def propose(self, module: Module, tasks: list[Task], trajs: list[Trajectory], crits: list[Critique],
                history: list[str], rejected: list[str], *, scope: Scope) -> Module | None:
        """One optimizer step. On a context overflow, retry with fewer examples (and say so)."""
        failures = [(t, tr, c) for t, tr, c in zip(tasks, trajs, crits) if not c.correct]
        successes = [(t, tr, c) for t, tr, c in zip(tasks, trajs, crits) if c.correct][:2]
        examples = failures + successes
        if not failures:
            return None  # nothing to fix on this batch
        describe = self.suite.describe()
        keep = len(examples)
        while True:
            msgs = prompts.optimizer_messages(describe, module, examples[:keep], history[-8:], rejected[-3:])
            try:
                for sample in range(3):
                    self.control.checkpoint()
                    comp = self.gw.complete("optimizer", msgs, scope=scope, sample=sample)
                    text = prompts.extract_module(module.kind, comp.text)
                    if text is not None and self._usable(module, text):
                        return Module(module.kind, text)
                self.bus.emit(ev.Log("warning", f"optimizer gave no usable {module.kind} ({scope.kind} {scope.id}); "
                                                "kept the current one"))
                return None
            except ContextOverflowError as exc:
                self.overflowed = True
                if keep <= 1:
                    self.bus.emit(ev.Log("error", f"context overflow even with one example: {exc}"))
                    return None
                keep = max(1, keep // 2)
                self.bus.emit(ev.Log("warning", f"context overflow ({exc.prompt_tokens} > {exc.window} tokens); "
                                                f"retrying with {keep} examples"))

    def _usable(self, old: Module, text: str) -> bool:
        if module_kind_check := getattr(self.suite, "validate_module", None):
            try:
                module_kind_check(text)
            except MalformedOutputError as exc:
                self.bus.emit(ev.Log("warning", f"rejected a malformed {old.kind}: {exc}"))
                return False
        return bool(text.strip())

    def optimize_loop(self, start: Module, start_id: str, batches: list[list[Task]], *, scope_kind: str,
                      scope_id: str, subset_id: int | None, label: str) -> LoopResult:
        """Algorithm 1 generalised over batches: one optimizer step per batch.

        FGO's subset loop passes the subset as every batch; batch-wise and bootstrapping
        pass their batches; all-at-once passes the whole training set. A candidate is
        adopted only if it scores at least as well as the best so far on the same batch.
        """
        best, best_id = start, start_id
        candidate: Module | None = None
        candidate_id: str | None = None
        history: list[str] = []
        rejected: list[str] = []
        best_score = 0.0
        for step, batch in enumerate(batches + [batches[-1]]):  # the last pass only judges the last candidate
            final = step == len(batches)
            explore_scope = Scope(scope_kind, scope_id, "explore")
            best_trajs = self.explore(best, best_id, batch, scope=explore_scope, epoch=step, subset_id=subset_id)
            best_score = mean([t.score for t in best_trajs])
            adopted = None
            cand_score = None
            if candidate is not None:
                cand_trajs = self.explore(candidate, candidate_id, batch, scope=explore_scope, epoch=step,
                                          subset_id=subset_id)
                cand_score = mean([t.score for t in cand_trajs])
                adopted = cand_score >= best_score
                self.store.update("modules", candidate_id, {"score": cand_score, "adopted": int(adopted)})
                if adopted:
                    history.append(f"step {step}: {cand_score:.3f} (adopted; previous best {best_score:.3f})")
                    best, best_id, best_score, best_trajs = candidate, candidate_id, cand_score, cand_trajs
                else:
                    history.append(f"step {step}: {cand_score:.3f} (rejected; best stays {best_score:.3f})")
                    rejected.append(candidate.text)
            else:
                history.append(f"step {step}: {best_score:.3f} (starting point)")
            self.store.insert("epochs", {
                "id": f"{scope_kind}{scope_id}:{step}", "subset_id": subset_id, "epoch": step, "module_id": best_id,
                "candidate_module_id": candidate_id, "score": best_score, "candidate_score": cand_score,
                "adopted": None if adopted is None else int(adopted), "note": label, "created_at": now(),
            }, replace=True)
            if subset_id is not None:
                self.bus.emit(ev.EpochDone(subset_id, step, cand_score if cand_score is not None else best_score,
                                           best_score, bool(adopted), best_id))
            candidate = candidate_id = None
            if final:
                break
            crits = self.evaluate(best, best_id, batch, best_trajs, scope=Scope(scope_kind, scope_id, "evaluate"),
                                  epoch=step, subset_id=subset_id)
            proposal = self.propose(best, batch, best_trajs, crits, history, rejected,
                                    scope=Scope(scope_kind, scope_id, "optimize"))
            if proposal is not None and proposal.text.strip() != best.text.strip():
                candidate = proposal
                candidate_id = f"{label}.e{step + 1}.{short_hash(proposal.text)}"
                self.save_module(candidate_id, proposal, origin="optimize", parent_id=best_id, subset_id=subset_id,
                                 epoch=step + 1)
                if subset_id is not None:
                    self.bus.emit(ev.ModuleProposed(subset_id, step + 1, candidate_id, proposal.text))
        return LoopResult(best, best_id, best_score, len(batches), self.overflowed, history)

    # -- merge ------------------------------------------------------------------------
    def progressive_merge(self, items: list[Item]) -> Item:
        """Algorithm 2: merge small groups directly, cluster large ones (k = ⌊√n⌋) and recurse."""
        if len(items) == 1:
            return items[0]
        if len(items) <= self.cfg.threshold:
            return self.merge_node(items)
        vectorize = litellm_embedder(self.cfg.embedding_model) if self.cfg.embedding_model else tfidf
        texts = [self._similarity_text(it.module) for it in items]
        groups = groups_for(texts, self.cfg.cluster, self.cfg.seed, vectorize)
        results = [self.progressive_merge([items[i] for i in g]) for g in groups]
        return self.progressive_merge(results)

    def _similarity_text(self, module: Module) -> str:
        fn = getattr(self.suite, "similarity_text", None)
        return fn(module) if fn else module.text

    def merge_all_at_once(self, items: list[Item]) -> Item:
        """The no-progressive-merge ablation: one merge call over every module."""
        return self.merge_node(items)

    def _next_node_id(self) -> str:
        self._node_counter += 1
        return f"n{self._node_counter}"

    def merge_node(self, items: list[Item]) -> Item:
        node_id = self._next_node_id()
        kind = items[0].module.kind
        task_ids = [tid for it in items for tid in it.task_ids]
        tasks = [self.tasks[t] for t in task_ids]
        child_ids = tuple(it.node_id for it in items)
        score_before = sum(it.score * len(it.task_ids) for it in items) / max(1, len(task_ids))
        for it in items:
            if it.node_id.startswith("n"):
                self.store.update("merge_nodes", it.node_id, {"parent_id": node_id})
        existing = self.store.get("merge_nodes", node_id)
        if existing and existing["status"] == "done" and existing.get("module_id"):
            row = self.store.get("modules", existing["module_id"])
            self._emit_node(node_id, child_ids, "done", len(tasks), score_before, existing["score_after"],
                            None, existing["module_id"])
            return Item(node_id, Module(row["kind"], row["text"]), existing["module_id"], existing["score_after"],
                        task_ids, existing.get("scores_json") or {}, sorted(s for it in items for s in it.subset_ids))
        base = {
            "id": node_id, "parent_id": None, "depth": 0, "child_ids_json": list(child_ids),
            "subset_ids_json": sorted(sid for it in items for sid in it.subset_ids), "task_ids_json": task_ids,
            "score_before": score_before, "created_at": now(), "updated_at": now(),
        }
        self.store.insert("merge_nodes", {**base, "status": "merging"}, replace=True)
        self._emit_node(node_id, child_ids, "merging", len(tasks), score_before, None)

        best_child = max(items, key=lambda it: (it.score, -items.index(it)))
        scope = Scope("node", node_id, "merge")
        msgs = prompts.merger_messages(self.suite.describe(), kind,
                                       [(it.module, it.score, len(it.task_ids)) for it in items])
        proposed_text = None
        try:
            for sample in range(3):
                self.control.checkpoint()
                comp = self.gw.complete("merger", msgs, scope=scope, sample=sample)
                proposed_text = prompts.extract_module(kind, comp.text)
                if proposed_text is not None and self._usable(items[0].module, proposed_text):
                    break
                proposed_text = None
        except ContextOverflowError as exc:
            self.bus.emit(ev.Log("warning", f"merge {node_id}: {exc}; proposing the best child instead"))
        note = ""
        if proposed_text is None:
            proposed_text = best_child.module.text
            note = "the merger gave no usable module; proposing the best child"
            self.bus.emit(ev.Log("warning", f"merge {node_id}: {note}"))
        proposed = Module(kind, proposed_text)
        proposed_id = self.save_module(f"{node_id}.merged", proposed, origin="merge", node_id=node_id, note=note,
                                       parent_id=best_child.module_id)
        self.store.update("merge_nodes", node_id, {"status": "pending_review", "proposed_module_id": proposed_id,
                                                   "updated_at": now()})
        self._emit_node(node_id, child_ids, "pending_review", len(tasks), score_before, None)

        decision = self._stored_decision(node_id)
        if decision is None:
            request = ReviewRequest(node_id, proposed, tuple(
                ChildInfo(it.node_id, it.module, it.score, len(it.task_ids), it.scores_by_category) for it in items),
                len(tasks))
            self.store.flush()  # the pending review is on disk before anyone is asked
            self.bus.emit(ev.ReviewRequested(node_id))
            decision = self.gate.review(request)
            self.store.insert("reviews", {"node_id": node_id, "decision": decision.decision,
                                          "text": decision.text, "by": decision.by, "created_at": now()})
        if decision.decision == "edit":
            module = Module(kind, decision.text or "")
            module_id = self.save_module(f"{node_id}.edited.{short_hash(module.text)}", module, origin="edit",
                                         parent_id=proposed_id, node_id=node_id)
        elif decision.decision == "rollback":
            module, module_id = best_child.module, best_child.module_id
        else:
            module, module_id = proposed, proposed_id
        self.store.update("merge_nodes", node_id, {"status": "backtesting", "updated_at": now()})
        self._emit_node(node_id, child_ids, "backtesting", len(tasks), score_before, None, decision.decision)
        trajs = self.explore(module, module_id, tasks, scope=Scope("node", node_id, "backtest"), epoch=0)
        score = mean([t.score for t in trajs])
        final_decision = decision.decision
        if getattr(self.gate, "post_check", False) and decision.decision != "rollback":
            # keep the merge only if it is not worse than the best child on the same tasks
            child_trajs = self.explore(best_child.module, best_child.module_id, tasks,
                                       scope=Scope("node", node_id, "backtest"), epoch=1)
            child_score = mean([t.score for t in child_trajs])
            if child_score > score:
                self.bus.emit(ev.Log("info", f"merge {node_id} scored {score:.3f} on its tasks, below its best "
                                             f"child's {child_score:.3f}; rolled back"))
                module, module_id, trajs, score = best_child.module, best_child.module_id, child_trajs, child_score
                final_decision = "rollback"
                if not self.store.count("reviews", "node_id = ? and by = 'policy:if-not-worse'", (node_id,)):
                    self.store.insert("reviews", {"node_id": node_id, "decision": "rollback", "text": None,
                                                  "by": "policy:if-not-worse", "created_at": now()})
        cats = by_category(tasks, trajs)
        self.store.update("merge_nodes", node_id, {
            "status": "done", "module_id": module_id, "score_after": score, "scores_json": cats,
            "updated_at": now(),
        })
        self._emit_node(node_id, child_ids, "done", len(tasks), score_before, score, final_decision, module_id)
        return Item(node_id, module, module_id, score, task_ids, cats, sorted(s for it in items for s in it.subset_ids))

    def _stored_decision(self, node_id: str) -> ReviewDecision | None:
        rows = self.store.rows("reviews", "node_id = ?", (node_id,), order_by="id")
        if not rows:
            return None
        r = rows[0]
        return ReviewDecision(r["decision"], r["text"], r["by"] or "stored")

    def _emit_node(self, node_id, child_ids, status, n_tasks, before, after, decision=None, module_id=None):
        self.bus.emit(ev.MergeNodeUpdated(node_id, None, tuple(child_ids), status, n_tasks, before, after,
                                          decision, module_id))

    # -- test -------------------------------------------------------------------------
    def test(self, module: Module, module_id: str, tasks: list[Task]) -> tuple[float, dict[str, float]]:
        trajs = self.explore(module, module_id, tasks, scope=Scope("session", "", "test"), epoch=0)
        return mean([t.score for t in trajs]), by_category(tasks, trajs)
