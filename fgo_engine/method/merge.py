"""Merge: Algorithm 2 — progressive merging through a clustered tree.

Small groups (≤ threshold t) are merged by one LLM call; larger ones are clustered by
similarity into k = ⌊√n⌋ clusters, merged recursively, and the results merged again. Every
merge node goes through the same steps: propose (the merger LLM), review (the gate:
approve, edit or roll back), backtest on the union of its children's tasks, and, under the
if-not-worse policy, a comparison with the best child on the same tasks.
"""
from __future__ import annotations

from dataclasses import dataclass

from fgo_engine import events as ev
from fgo_engine import prompts, rows
from fgo_engine.errors import ContextOverflowError
from fgo_engine.llm.gateway import Scope
from fgo_engine.method.cluster import groups_for, litellm_embedder, tfidf
from fgo_engine.method.runtime import Item, Runtime, by_category, mean, short_hash
from fgo_engine.review import ChildInfo, ReviewDecision, ReviewRequest
from fgo_engine.timeutil import now
from fgo_engine.types import Module, Task, Trajectory


@dataclass
class _Node:
    """The facts of one merge node while it is being built."""

    node_id: str
    items: list[Item]
    tasks: list[Task]
    task_ids: list[str]
    score_before: float
    best_child: Item

    @property
    def child_ids(self) -> tuple[str, ...]:
        return tuple(it.node_id for it in self.items)

    @property
    def subset_ids(self) -> list[int]:
        return sorted(s for it in self.items for s in it.subset_ids)


class MergeTree:
    """Builds the merge tree of one run; node ids n1, n2, … follow the order of the merges."""

    def __init__(self, rt: Runtime):
        self.rt = rt
        self._node_counter = 0

    # -- Algorithm 2 ------------------------------------------------------------------
    def progressive_merge(self, items: list[Item]) -> Item:
        """Merge small groups directly, cluster large ones (k = ⌊√n⌋) and recurse."""
        cfg = self.rt.cfg
        if len(items) == 1:
            return items[0]
        if len(items) <= cfg.threshold:
            return self.merge_node(items)
        vectorize = litellm_embedder(cfg.embedding_model) if cfg.embedding_model else tfidf
        texts = [self.rt.suite.similarity_text(it.module) for it in items]
        groups = groups_for(texts, cfg.cluster, cfg.seed, vectorize)
        results = [self.progressive_merge([items[i] for i in g]) for g in groups]
        return self.progressive_merge(results)

    def merge_all_at_once(self, items: list[Item]) -> Item:
        """The no-progressive-merge ablation: one merge call over every module."""
        return self.merge_node(items)

    def _next_node_id(self) -> str:
        self._node_counter += 1
        return f"n{self._node_counter}"

    # -- one node ---------------------------------------------------------------------
    def merge_node(self, items: list[Item]) -> Item:
        rt = self.rt
        task_ids = [tid for it in items for tid in it.task_ids]
        node = _Node(self._next_node_id(), items, [rt.tasks[t] for t in task_ids], task_ids,
                     sum(it.score * len(it.task_ids) for it in items) / max(1, len(task_ids)),
                     max(items, key=lambda it: (it.score, -items.index(it))))
        for it in items:
            if it.node_id.startswith("n"):
                rt.store.update("merge_nodes", it.node_id, {"parent_id": node.node_id})
        done = self._load_done(node)
        if done is not None:
            return done
        rt.store.insert("merge_nodes", rows.merge_node(node.node_id, list(node.child_ids), node.subset_ids, task_ids,
                                                       node.score_before), replace=True)
        self._emit(node, "merging", None)
        proposed, proposed_id = self._propose(node)
        decision = self._review(node, proposed)
        module, module_id = self._apply(node, decision, proposed, proposed_id)
        self._status(node, "backtesting")
        self._emit(node, "backtesting", None, decision.decision)
        trajs = rt.explore(module, module_id, node.tasks, scope=Scope("node", node.node_id, "backtest"), epoch=0)
        score = mean([t.score for t in trajs])
        final_decision = decision.decision
        if rt.gate.post_check and decision.decision != "rollback":
            kept = self._if_not_worse(node, score)
            if kept is not None:
                module, module_id, trajs, score = kept
                final_decision = "rollback"
        cats = by_category(node.tasks, trajs)
        rt.store.update("merge_nodes", node.node_id, {
            "status": "done", "module_id": module_id, "score_after": score, "scores_json": cats,
            "updated_at": now(),
        })
        self._emit(node, "done", score, final_decision, module_id)
        return Item(node.node_id, module, module_id, score, task_ids, cats, node.subset_ids)

    def _load_done(self, node: _Node) -> Item | None:
        """A node finished before a resume is loaded as it was, not merged again."""
        rt = self.rt
        existing = rt.store.get("merge_nodes", node.node_id)
        if not (existing and existing["status"] == "done" and existing.get("module_id")):
            return None
        row = rt.store.get("modules", existing["module_id"])
        assert row is not None  # written before the node was marked done
        self._emit(node, "done", existing["score_after"], None, existing["module_id"])
        return Item(node.node_id, Module(row["kind"], row["text"]), existing["module_id"], existing["score_after"],
                    node.task_ids, existing.get("scores_json") or {}, node.subset_ids)

    def _propose(self, node: _Node) -> tuple[Module, str]:
        """Ask the merger for one module; fall back to the best child if it gives nothing usable."""
        rt = self.rt
        kind = node.items[0].module.kind
        msgs = prompts.merger_messages(rt.suite.describe(), kind,
                                       [(it.module, it.score, len(it.task_ids)) for it in node.items])
        proposed_text = None
        try:
            for sample in range(3):
                rt.control.checkpoint()
                comp = rt.gw.complete("merger", msgs, scope=Scope("node", node.node_id, "merge"), sample=sample)
                proposed_text = prompts.extract_module(kind, comp.text)
                if proposed_text is not None and rt.usable(node.items[0].module, proposed_text):
                    break
                proposed_text = None
        except ContextOverflowError as exc:
            rt.bus.emit(ev.Log("warning", f"merge {node.node_id}: {exc}; proposing the best child instead"))
        note = ""
        if proposed_text is None:
            proposed_text = node.best_child.module.text
            note = "the merger gave no usable module; proposing the best child"
            rt.bus.emit(ev.Log("warning", f"merge {node.node_id}: {note}"))
        proposed = Module(kind, proposed_text)
        proposed_id = rt.save_module(f"{node.node_id}.merged", proposed, origin="merge", node_id=node.node_id,
                                     note=note, parent_id=node.best_child.module_id)
        rt.store.update("merge_nodes", node.node_id, {"status": "pending_review", "proposed_module_id": proposed_id,
                                                      "updated_at": now()})
        self._emit(node, "pending_review", None)
        return proposed, proposed_id

    def _review(self, node: _Node, proposed: Module) -> ReviewDecision:
        """The stored decision on a resume; otherwise ask the gate (and store its answer)."""
        rt = self.rt
        decision = self._stored_decision(node.node_id)
        if decision is not None:
            return decision
        request = ReviewRequest(node.node_id, proposed, tuple(
            ChildInfo(it.node_id, it.module, it.score, len(it.task_ids), it.scores_by_category)
            for it in node.items), len(node.tasks))
        rt.store.flush()  # the pending review is on disk before anyone is asked
        rt.bus.emit(ev.ReviewRequested(node.node_id))
        decision = rt.gate.review(request)
        rt.store.insert("reviews", rows.review(node.node_id, decision))
        return decision

    def _apply(self, node: _Node, decision: ReviewDecision, proposed: Module,
               proposed_id: str) -> tuple[Module, str]:
        if decision.decision == "edit":
            module = Module(proposed.kind, decision.text or "")
            module_id = self.rt.save_module(f"{node.node_id}.edited.{short_hash(module.text)}", module,
                                            origin="edit", parent_id=proposed_id, node_id=node.node_id)
            return module, module_id
        if decision.decision == "rollback":
            return node.best_child.module, node.best_child.module_id
        return proposed, proposed_id

    def _if_not_worse(self, node: _Node, score: float) -> tuple[Module, str, list[Trajectory], float] | None:
        """Keep the merge only if it is not worse than the best child on the same tasks."""
        rt = self.rt
        child = node.best_child
        child_trajs = rt.explore(child.module, child.module_id, node.tasks,
                                 scope=Scope("node", node.node_id, "backtest"), epoch=1)
        child_score = mean([t.score for t in child_trajs])
        if child_score <= score:
            return None
        rt.bus.emit(ev.Log("info", f"merge {node.node_id} scored {score:.3f} on its tasks, below its best "
                                   f"child's {child_score:.3f}; rolled back"))
        if not rt.store.count("reviews", "node_id = ? and by = ?", (node.node_id, rows.IF_NOT_WORSE)):
            rt.store.insert("reviews", rows.review(node.node_id, ReviewDecision("rollback", by=rows.IF_NOT_WORSE)))
        return child.module, child.module_id, child_trajs, child_score

    def _stored_decision(self, node_id: str) -> ReviewDecision | None:
        rows = self.rt.store.rows("reviews", "node_id = ?", (node_id,), order_by="id")
        if not rows:
            return None
        r = rows[0]
        return ReviewDecision(r["decision"], r["text"], r["by"] or "stored")

    def _status(self, node: _Node, status: str) -> None:
        self.rt.store.update("merge_nodes", node.node_id, {"status": status, "updated_at": now()})

    def _emit(self, node: _Node, status: str, after: float | None, decision: str | None = None,
              module_id: str | None = None) -> None:
        self.rt.bus.emit(ev.MergeNodeUpdated(node.node_id, None, node.child_ids, status, len(node.tasks),
                                             node.score_before, after, decision, module_id))
