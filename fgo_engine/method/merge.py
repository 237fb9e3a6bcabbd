"""Merge: Algorithm 2 — progressive merging through a clustered tree.

Small groups (≤ threshold t) are merged by one LLM call; larger ones are clustered by
similarity into k = ⌊√n⌋ clusters, merged recursively, and the results merged again. Every
merge node goes through the same steps: propose (the merger LLM), review (the gate:
approve, edit or roll back), backtest on the union of its children's tasks, and, under the
if-not-worse policy, a comparison with the best child on the same tasks.
"""
from __future__ import annotations

import logging
import threading
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass

from fgo_engine import events as ev
from fgo_engine.errors import ContextOverflowError, SessionError
from fgo_engine.method import backtest, prompts, resample
from fgo_engine.method.cluster import balanced_sizes, groups_for, litellm_embedder, merge_node_count, split_count, tfidf
from fgo_engine.method.runtime import Item, Runtime, by_category, short_hash
from fgo_engine.persistence import queries, writes
from fgo_engine.types import (
    AUTO_APPROVE,
    IDENTICAL_CHILDREN,
    IF_NOT_WORSE,
    ChildInfo,
    Module,
    ReviewDecision,
    ReviewRequest,
    Scope,
    Task,
)

log = logging.getLogger("fgo.method")
IDENTICAL = IDENTICAL_CHILDREN  # the reviews.by of a node whose children were one module


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

    @property
    def depth(self) -> int:
        """Height above the subsets: a merge of subsets is 1, its parent 2, …"""
        return 1 + max(it.depth for it in self.items)


class MergeTree:
    """Builds the merge tree of one run. Node ids n1, n2, … are fixed by the tree's shape
    (depth first, children before parents), so sibling merges can run in parallel and a
    resumed run still finds every node under the same id."""

    def __init__(self, rt: Runtime):
        self.rt = rt
        self._review_lock = threading.Condition()
        self._reviewed: set[int] = set()  # node numbers whose review is settled
        self._failed: BaseException | None = None  # a merge that failed releases the ones waiting in line

    # -- Algorithm 2 ------------------------------------------------------------------
    def progressive_merge(self, items: list[Item]) -> Item:
        """Merge small groups directly, split large ones into k = ⌊√n⌋ balanced clusters
        (sizes differ by at most one), merge the clusters in parallel, then merge the results."""
        return self._merge(items, 0, by_size=False)

    def _merge(self, items: list[Item], base: int, *, by_size: bool) -> Item:
        cfg = self.rt.cfg
        if len(items) == 1:
            return items[0]
        if len(items) <= cfg.threshold:
            return self.merge_node(items, f"n{base + 1}")
        groups = self._split_by_size(items) if by_size else self._split_by_similarity(items)
        bases, offset = [], base
        for g in groups:
            bases.append(offset)
            offset += merge_node_count(len(g), cfg.threshold)
        if len(groups) == 1:
            results = [self._merge(groups[0], bases[0], by_size=by_size)]
        else:
            with ThreadPoolExecutor(max_workers=len(groups), thread_name_prefix="fgo-merge") as pool:
                futures = [pool.submit(self._merge, g, b, by_size=by_size) for g, b in zip(groups, bases)]
                wait(futures, return_when=FIRST_EXCEPTION)
                results = [f.result() for f in futures]
        return self._merge(results, offset, by_size=True)

    def _split_by_similarity(self, items: list[Item]) -> list[list[Item]]:
        cfg = self.rt.cfg
        vectorize = litellm_embedder(cfg.embedding_model) if cfg.embedding_model else tfidf
        texts = [self.rt.suite.similarity_text(it.module) for it in items]
        return [[items[i] for i in g] for g in groups_for(texts, cfg.cluster, cfg.seed, vectorize)]

    @staticmethod
    def _split_by_size(results: list[Item]) -> list[list[Item]]:
        """Merged clusters are combined by size: the biggest subtrees go to the smallest
        groups, so every subset ends up at (nearly) the same depth."""
        sizes = sorted(balanced_sizes(len(results), split_count(len(results))))
        order = sorted(results, key=lambda it: (-len(it.subset_ids), -it.depth, results.index(it)))
        groups, i = [], 0
        for sz in sizes:
            groups.append(sorted(order[i:i + sz], key=results.index))
            i += sz
        return sorted(groups, key=lambda g: results.index(g[0]))

    def merge_all_at_once(self, items: list[Item]) -> Item:
        """The no-progressive-merge ablation: one merge call over every module."""
        return self.merge_node(items, "n1")


    # -- one node ---------------------------------------------------------------------
    def merge_node(self, items: list[Item], node_id: str) -> Item:
        try:
            return self._merge_node(items, node_id)
        except BaseException as exc:
            with self._review_lock:
                self._failed = self._failed or exc
                self._review_lock.notify_all()
            raise

    def _merge_node(self, items: list[Item], node_id: str) -> Item:
        rt = self.rt
        task_ids = [tid for it in items for tid in it.task_ids]
        node = _Node(node_id, items, [rt.tasks[t] for t in task_ids], task_ids,
                     sum(it.score * len(it.task_ids) for it in items) / max(1, len(task_ids)),
                     max(items, key=lambda it: (it.score, -items.index(it))))
        for it in items:
            if it.node_id.startswith("n"):
                writes.merge_node_parent(rt.store, it.node_id, node.node_id)
        done = self._load_done(node)
        if done is not None:
            return done
        if len({it.module.text.strip() for it in items}) == 1:
            return self._adopt_identical(node)
        writes.merge_node_started(rt.store, node.node_id, child_ids=list(node.child_ids), subset_ids=node.subset_ids,
                                  task_ids=task_ids, score_before=node.score_before, depth=node.depth)
        self._emit(node, "merging", None)
        # a decision stored before a resume is not asked again: the node never waits for review
        proposed, proposed_id = self._propose(node, ask=self._stored_decision(node.node_id) is None)
        decision = self._review(node, proposed)
        module, module_id = self._apply(node, decision, proposed, proposed_id)
        self._status(node, "backtesting")
        self._emit(node, "backtesting", None, decision.decision, decided_by=decision.by)
        differs = module_id != node.best_child.module_id
        check = rt.gate.post_check and decision.decision != "rollback" and differs
        # a comparison that can roll back runs both modules on fresh draws, one per node: neither
        # is judged on the runs it was selected on (its subset's, or a child node's backtest)
        draw = int(node.node_id[1:]) if check else 0
        if rt.cfg.backtest == "adaptive" and differs:
            bt = backtest.adaptive(rt, node.node_id, self._strata(node), module, module_id, node.best_child,
                                   draw=draw)
        else:  # if-not-worse compares with the best child: both run side by side
            bt = backtest.full(rt, node.node_id, node.tasks, module, module_id, node.best_child if check else None,
                               draw=draw)
        trajs, score, child_score = bt.trajs, bt.score, bt.child_score
        if module_id not in {it.module_id for it in items}:  # a merged or edited module: its own score
            writes.module_scored(rt.store, module_id, score)
        final_decision = decision.decision
        if rt.gate.post_check and decision.decision != "rollback":
            if bt.child_trajs is None:  # the backtested module is the best child itself
                child_score = score
            elif child_score is not None and child_score > score:
                self._roll_back(node, score, child_score)
                module, module_id, trajs, score = (node.best_child.module, node.best_child.module_id,
                                                   bt.child_trajs, child_score)
                final_decision = "rollback"
        elif decision.by == AUTO_APPROVE and score < node.score_before:
            text = (f"merge {node.node_id} scored {score:.3f} on its {len(node.tasks)} tasks, below its children's "
                    f"{node.score_before:.3f}, and auto-approve kept it; --review if-not-worse keeps only merges "
                    "that are not worse than their best child")
            rt.bus.emit(ev.Log("warning", text))
            log.warning(text)
        cats = by_category(bt.tasks, trajs)
        writes.merge_node_backtested(rt.store, node.node_id, module_id=module_id, score=score, scores_by_category=cats,
                                     mode=bt.mode, n_tasks=len(bt.tasks), child_score=child_score,
                                     interval=bt.interval)
        self._emit(node, "done", score, final_decision, module_id, len(bt.tasks), bt.interval,
                   decided_by=IF_NOT_WORSE if final_decision != decision.decision else decision.by)
        return Item(node.node_id, module, module_id, score, task_ids, cats, node.subset_ids, node.depth)

    def _adopt_identical(self, node: _Node) -> Item:
        """All children are one module: merging it with itself and backtesting it again would
        pay for nothing. Adopted as it is; its score on the union is its children's."""
        rt, child = self.rt, node.best_child
        cats: dict[str, float] = {}
        for it in node.items:
            cats.update(it.scores_by_category)
        writes.merge_node_identical(rt.store, node.node_id, child_ids=list(node.child_ids),
                                    subset_ids=node.subset_ids, task_ids=node.task_ids,
                                    score_before=node.score_before, depth=node.depth, module_id=child.module_id,
                                    scores_by_category=cats, by=IDENTICAL)
        self._settle_review(node)  # reviews asked in node order must not wait for this one
        rt.bus.emit(ev.Log("info", f"merge {node.node_id}: its {len(node.items)} children are the same module; "
                                   "adopted it without a merge call or backtest"))
        self._emit(node, "done", node.score_before, "approve", child.module_id, decided_by=IDENTICAL)
        return Item(node.node_id, child.module, child.module_id, node.score_before, node.task_ids, cats,
                    node.subset_ids, node.depth)

    def _load_done(self, node: _Node) -> Item | None:
        """A node finished before a resume is loaded as it was, not merged again."""
        rt = self.rt
        existing = queries.merge_node(rt.store, node.node_id)
        if not (existing and existing["status"] == "done" and existing.get("module_id")):
            return None
        self._settle_review(node)
        row = queries.module(rt.store, existing["module_id"])
        assert row is not None  # written before the node was marked done
        decision, _ = queries.node_decision(queries.reviews(rt.store, node.node_id))  # as recorded, not "approve"
        self._emit(node, "done", existing["score_after"], decision, existing["module_id"],
                   existing.get("backtest_tasks"))
        return Item(node.node_id, Module(row["kind"], row["text"]), existing["module_id"], existing["score_after"],
                    node.task_ids, existing.get("scores_json") or {}, node.subset_ids, node.depth)

    def _propose(self, node: _Node, *, ask: bool = True) -> tuple[Module, str]:
        """Ask the merger for one module; fall back to the best child if it gives nothing usable.
        ``ask``: the proposal waits for a review (else it was decided before a resume)."""
        rt = self.rt
        kind = node.items[0].module.kind
        msgs = prompts.merger_messages(rt.suite.describe(), kind,
                                       [(it.module, it.score, len(it.task_ids)) for it in node.items])
        proposed_text = None
        try:
            comp, problem = resample.ask(
                rt, "merger", msgs, scope=Scope("node", node.node_id, "merge"), samples=3, note_kind=kind,
                judge=lambda c: resample.proposal_problem(rt, kind, c.text, None), whole=True)
            if problem is None:
                proposed_text = prompts.extract_module(kind, comp.text)
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
        writes.merge_node_proposed(rt.store, node.node_id, proposed_id, awaits_review=ask)
        self._emit(node, "pending_review" if ask else "merging", None)
        return proposed, proposed_id

    def _review(self, node: _Node, proposed: Module) -> ReviewDecision:
        """The stored decision on a resume; otherwise ask the gate (and store its answer).

        One review at a time (sibling merges run in parallel). A person's gate (policy
        ``ask``) is asked in node order, n1 before n2, whatever finished first."""
        rt = self.rt
        decision = self._stored_decision(node.node_id)
        if decision is not None:
            self._settle_review(node)
            return decision
        number = int(node.node_id[1:])
        ordered = rt.gate.asks_person  # a person is asked in node order
        with self._review_lock:
            while ordered and any(i not in self._reviewed for i in range(1, number)):
                if self._failed is not None:
                    raise SessionError(f"merge {node.node_id} not reviewed: an earlier merge failed "
                                       f"({self._failed})")
                self._review_lock.wait()
            try:
                request = ReviewRequest(node.node_id, proposed, tuple(
                    ChildInfo(it.node_id, it.module, it.score, len(it.task_ids), it.scores_by_category)
                    for it in node.items), len(node.tasks))
                rt.store.flush()  # the pending review is on disk before anyone is asked
                rt.bus.emit(ev.ReviewRequested(node.node_id))
                decision = rt.gate.review(request)
                writes.review(rt.store, node.node_id, decision)
            finally:
                self._reviewed.add(number)
                self._review_lock.notify_all()
        return decision

    def _settle_review(self, node: _Node) -> None:
        with self._review_lock:
            self._reviewed.add(int(node.node_id[1:]))
            self._review_lock.notify_all()

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

    def _strata(self, node: _Node) -> list[list[Task]]:
        """The node's tasks grouped by subset (the adaptive backtest's strata)."""
        mine = set(node.task_ids)
        out = []
        for sid in node.subset_ids:
            row = queries.subset(self.rt.store, sid)
            ids = [t for t in (row or {}).get("task_ids_json") or [] if t in mine]
            out.append([self.rt.tasks[t] for t in ids])
        covered = {t.id for s in out for t in s}
        rest = [self.rt.tasks[t] for t in node.task_ids if t not in covered]
        return [s for s in out if s] + ([rest] if rest else [])

    def _roll_back(self, node: _Node, score: float, child_score: float) -> None:
        """If not worse: the merge scored below its best child on the same tasks; keep the child."""
        rt = self.rt
        rt.bus.emit(ev.Log("info", f"merge {node.node_id} scored {score:.3f} on its tasks, below its best "
                                   f"child's {child_score:.3f}; rolled back"))
        writes.merge_rolled_back(rt.store, node.node_id, IF_NOT_WORSE)  # after the review that let it be backtested

    def _stored_decision(self, node_id: str) -> ReviewDecision | None:
        rows = queries.reviews(self.rt.store, node_id)
        if not rows:
            return None
        r = rows[0]
        return ReviewDecision(r["decision"], r["text"], r["by"] or "stored")

    def _status(self, node: _Node, status: str) -> None:
        writes.merge_node_status(self.rt.store, node.node_id, status)

    def _emit(self, node: _Node, status: str, after: float | None, decision: str | None = None,
              module_id: str | None = None, backtest_tasks: int | None = None,
              interval: tuple[float, float] | None = None, decided_by: str | None = None) -> None:
        self.rt.bus.emit(ev.MergeNodeUpdated(node.node_id, None, node.child_ids, status, len(node.tasks),
                                             node.score_before, after, decision, module_id, backtest_tasks,
                                             interval, decided_by))
