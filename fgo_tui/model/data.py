"""Reads from a session store for the app: rebuild a run view, explain a module.

Everything here takes a store (``rows``/``get``/``query``) and returns plain data;
no Textual import. Reads go through the store's per-thread read-only connections,
so they are safe from the UI thread and from workers alike.
"""
from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from typing import Any

from fgo_tui.model.state import CritiqueView, EpochView, NodeView, RunView, StepLine, SubsetView

HISTORY_TRAJECTORIES = 12  # at most this many trajectories replayed into a subset's stream on open
HISTORY_LINES = 40


# -- session view -------------------------------------------------------------------------


def load_run_view(store: Any) -> RunView:
    """Everything the dashboard and the tree show, from the rows alone."""
    info = store.session_info()
    cfg = info.get("config_json") or {}
    roles = cfg.get("roles") or {}
    view = RunView(
        path=str(store.path), name=info.get("name") or "", suite=info.get("suite") or cfg.get("suite", ""),
        method=cfg.get("method", "fgo"), status=info.get("status") or "new", message=info.get("error") or "",
        models={r: (v or {}).get("model", "?") for r, v in roles.items()},
        review_policy=cfg.get("review", "auto"), n_subsets=int(cfg.get("subsets") or 0),
        epochs=int(cfg.get("epochs") or 0), threshold=int(cfg.get("threshold") or 2),
        budget_tokens=cfg.get("budget_tokens"), train_score=info.get("best_score"),
        final_module_id=info.get("final_module_id"), updated_at=info.get("updated_at"),
    )
    view.n_train = store.count("tasks", "split = 'train'")
    view.n_test = store.count("tasks", "split = 'test'") or view.n_train
    cats = {r["id"]: r["category"] for r in store.query("select id, category from tasks")}

    for r in store.rows("subsets", order_by="id"):
        ids = r.get("task_ids_json") or []
        s = view.subset(int(r["id"]))
        s.name, s.n_tasks = r["name"] or s.name, len(ids)
        s.categories = tuple(sorted({cats.get(t, "?") for t in ids}))
        s.status = r["status"] or "pending"
        s.best_score, s.module_id = r["best_score"], r["best_module_id"]
    for r in store.rows("epochs", "subset_id is not null", order_by="subset_id, epoch"):
        s = view.subset(int(r["subset_id"]))
        score = r["candidate_score"] if r["candidate_score"] is not None else r["score"]
        adopted = None if r["adopted"] is None else bool(r["adopted"])
        s.epochs[r["epoch"]] = EpochView(r["epoch"], score, r["score"], adopted)
        if s.status != "done":
            s.best_score, s.module_id = r["score"], r["module_id"]
    for s in view.subsets.values():
        crit = store.query(
            "select epoch, task_id, failure, suggestion from critiques where subset_id = ? and correct = 0 "
            "order by epoch desc, rowid desc limit 1", (s.id,))
        if crit:
            c = crit[0]
            s.critique = CritiqueView(c["epoch"], c["task_id"], c["failure"] or "", c["suggestion"] or "")
        s.add_lines(subset_history(store, s.id))
        if s.status != "done":
            last = store.query("select id, epoch from modules where subset_id = ? and origin = 'optimize' "
                               "order by epoch desc, rowid desc limit 1", (s.id,))
            if last and (last[0]["epoch"] or 0) > max(s.epochs, default=-1):
                s.proposed_id, s.proposed_epoch = last[0]["id"], last[0]["epoch"]

    reviews: dict[str, list[dict]] = {}
    for r in store.rows("reviews", order_by="id"):
        reviews.setdefault(r["node_id"], []).append(r)
    for r in store.rows("merge_nodes", order_by="rowid"):
        n = view.node(r["id"])
        n.child_ids = tuple(r.get("child_ids_json") or ())
        n.parent_id, n.status = r["parent_id"], r["status"] or "planned"
        n.n_tasks = len(r.get("task_ids_json") or [])
        n.score_before, n.score_after, n.module_id = r["score_before"], r["score_after"], r["module_id"]
        n.decision, n.decided_by = node_decision(reviews.get(n.id, []))
        if n.status == "pending_review":
            view.pending_review = n.id
    for r in store.query(
            "select scope_kind, scope_id, sum(case when cache_hit = 0 then prompt_tokens else 0 end) p, "
            "sum(case when cache_hit = 0 then completion_tokens else 0 end) c, count(*) calls, "
            "sum(cache_hit) hits from ledger group by scope_kind, scope_id"):
        p, c = int(r["p"] or 0), int(r["c"] or 0)
        view.prompt_tokens += p
        view.completion_tokens += c
        view.calls += int(r["calls"] or 0)
        view.cache_hits += int(r["hits"] or 0)
        target: SubsetView | NodeView | None = None
        if r["scope_kind"] == "subset" and str(r["scope_id"]).isdigit():
            target = view.subset(int(r["scope_id"]))
            target.cache_hits += int(r["hits"] or 0)
        elif r["scope_kind"] == "node":
            target = view.node(r["scope_id"])
        if target is not None:
            target.prompt_tokens, target.completion_tokens, target.calls = p, c, int(r["calls"] or 0)
    for r in store.query("select role, sum(prompt_tokens + completion_tokens) n from ledger "
                         "where cache_hit = 0 group by role"):
        view.role_tokens[r["role"]] = int(r["n"] or 0)
    view.n_subsets = max(view.n_subsets, len(view.subsets))
    if view.status == "done" and view.final_module_id:
        test = store.query("select avg(score) s from trajectories where phase = 'test' and module_id = ?",
                           (view.final_module_id,))
        view.test_score = test[0]["s"] if test else None
    view.version += 1
    view.tree_version += 1
    return view


def node_decision(rows: list[dict]) -> tuple[str | None, str | None]:
    """The decision that took effect: the review, unless if-not-worse rolled it back later."""
    if not rows:
        return None, None
    post = [r for r in rows if r["by"] == "policy:if-not-worse" and r["decision"] == "rollback"]
    r = post[-1] if post else rows[0]
    return r["decision"], r["by"]


def step_lines(task_id: str, steps: list[Any]) -> list[StepLine]:
    out = []
    for st in steps or []:
        if isinstance(st, (list, tuple)) and len(st) == 2:
            out.append(StepLine(task_id, str(st[0]), str(st[1])))
    return out


def subset_history(store: Any, subset_id: int, n: int = HISTORY_TRAJECTORIES,
                   max_lines: int = HISTORY_LINES) -> list[StepLine]:
    """The end of the subset's latest trajectories, as the stream showed them."""
    rows = store.query("select task_id, steps_json from trajectories where subset_id = ? and phase = 'explore' "
                       "order by epoch desc, rowid desc limit ?", (subset_id, n))
    lines: list[StepLine] = []
    for r in rows:  # newest first, until there are enough lines
        lines = step_lines(r["task_id"], r["steps_json"]) + lines
        if len(lines) >= max_lines:
            break
    return lines[-max_lines:]


# -- modules ------------------------------------------------------------------------------


def module(store: Any, module_id: str | None) -> dict | None:
    return store.get("modules", module_id) if module_id else None


def child_module_id(store: Any, child: str) -> str | None:
    """The module a merge-tree child stands for: a subset's best, or a node's result."""
    if child.startswith("s") and child[1:].isdigit():
        row = store.get("subsets", int(child[1:]))
        return row["best_module_id"] if row else None
    row = store.get("merge_nodes", child)
    return (row["module_id"] or row["proposed_module_id"]) if row else None


def child_score(store: Any, child: str) -> float | None:
    if child.startswith("s") and child[1:].isdigit():
        row = store.get("subsets", int(child[1:]))
        return row["best_score"] if row else None
    row = store.get("merge_nodes", child)
    return row["score_after"] if row else None


def category_scores(store: Any, module_id: str, task_ids: list[str] | None = None) -> dict[str, float]:
    """Mean score per category of a module's latest pass over its tasks."""
    rows = store.query(
        "select t.category, avg(tr.score) s from trajectories tr join tasks t on t.id = tr.task_id "
        "where tr.module_id = ? and tr.phase in ('explore', 'backtest') and tr.epoch = "
        "(select max(epoch) from trajectories where module_id = ? and phase in ('explore', 'backtest')) "
        + ("and tr.task_id in (select value from json_each(?)) " if task_ids is not None else "")
        + "group by t.category order by t.category",
        (module_id, module_id) + ((json.dumps(task_ids),) if task_ids is not None else ()))
    return {r["category"]: r["s"] for r in rows}


def unified_diff(old: str, new: str, old_name: str, new_name: str) -> list[str]:
    """A readable diff: whole text as context when short, three lines of context otherwise."""
    a, b = old.splitlines(), new.splitlines()
    context = 1000 if max(len(a), len(b)) <= 80 else 3
    return list(difflib.unified_diff(a, b, old_name, new_name, lineterm="", n=context))


def descendant_subsets(store: Any, node_id: str) -> list[int]:
    out: list[int] = []
    stack = [node_id]
    seen = set()
    while stack:
        cur = stack.pop()
        if cur in seen:
            continue
        seen.add(cur)
        if cur.startswith("s") and cur[1:].isdigit():
            out.append(int(cur[1:]))
            continue
        row = store.get("merge_nodes", cur)
        stack.extend(reversed((row or {}).get("child_ids_json") or []))
    return sorted(out)


@dataclass
class ChildDetail:
    id: str
    module_id: str | None
    text: str
    score: float | None
    n_tasks: int
    categories: dict[str, float] = field(default_factory=dict)


@dataclass
class NodeDetail:
    id: str
    row: dict
    module_id: str | None
    module_text: str
    proposed_id: str | None
    proposed_text: str
    reviews: list[dict]
    children: list[ChildDetail]
    trail: list[dict]  # failed critiques of the subsets below, with subset and epoch


def node_detail(store: Any, node_id: str, trail_limit: int = 30) -> NodeDetail | None:
    row = store.get("merge_nodes", node_id)
    if row is None:
        return None
    final = module(store, row["module_id"])
    proposed = module(store, row["proposed_module_id"])
    children = [child_detail(store, c) for c in row.get("child_ids_json") or []]
    subs = descendant_subsets(store, node_id)
    trail = store.query(
        "select subset_id, epoch, task_id, failure, suggestion from critiques where correct = 0 and subset_id in "
        f"({','.join('?' * len(subs)) or 'null'}) order by subset_id, epoch, task_id limit ?", (*subs, trail_limit))
    return NodeDetail(node_id, row, row["module_id"], (final or {}).get("text", ""), row["proposed_module_id"],
                      (proposed or {}).get("text", ""),
                      store.rows("reviews", "node_id = ?", (node_id,), order_by="id"), children, trail)


def child_detail(store: Any, child: str) -> ChildDetail:
    mid = child_module_id(store, child)
    m = module(store, mid) or {}
    if child.startswith("s") and child[1:].isdigit():
        row = store.get("subsets", int(child[1:])) or {}
        ids = row.get("task_ids_json") or []
        cats = category_scores(store, mid, ids) if mid else {}
    else:
        row = store.get("merge_nodes", child) or {}
        ids = row.get("task_ids_json") or []
        cats = row.get("scores_json") or {}
    return ChildDetail(child, mid, m.get("text", ""), child_score(store, child), len(ids), dict(cats))


@dataclass
class SubsetDetail:
    id: int
    row: dict
    module_id: str | None
    module_text: str
    epochs: list[dict]
    trail: list[dict]


def subset_detail(store: Any, subset_id: int, trail_limit: int = 30) -> SubsetDetail | None:
    row = store.get("subsets", subset_id)
    if row is None:
        return None
    m = module(store, row["best_module_id"]) or {}
    return SubsetDetail(
        subset_id, row, row["best_module_id"], m.get("text", ""),
        store.rows("epochs", "subset_id = ?", (subset_id,), order_by="epoch"),
        store.query("select subset_id, epoch, task_id, failure, suggestion from critiques where correct = 0 "
                    "and subset_id = ? order by epoch, task_id limit ?", (subset_id, trail_limit)))


# -- audit --------------------------------------------------------------------------------


@dataclass
class Audit:
    module: dict
    parent: dict | None
    diff: list[str]
    why: list[str]  # plain sentences
    critiques: list[dict]
    trajectories: list[dict]
    merged_from: list[ChildDetail]
    reviews: list[dict]
    lineage: list[str]  # ids from this module back to the initial one


def list_modules(store: Any) -> list[dict]:
    return store.query("select id, origin, subset_id, node_id, epoch, score, adopted, parent_id from modules "
                       "order by case origin when 'initial' then 0 when 'optimize' then 1 else 2 end, "
                       "subset_id, epoch, rowid")


def audit(store: Any, module_id: str, max_trajectories: int = 12) -> Audit | None:
    m = module(store, module_id)
    if m is None:
        return None
    parent = module(store, m.get("parent_id"))
    diff = unified_diff(parent["text"], m["text"], parent["id"], m["id"]) if parent else []
    why: list[str] = []
    crits: list[dict] = []
    trajs: list[dict] = []
    merged: list[ChildDetail] = []
    reviews: list[dict] = []
    origin = m.get("origin")
    if origin == "initial":
        why.append("The suite's starting module: nothing changed it yet.")
    elif origin == "optimize" and parent:
        ep = (m.get("epoch") or 1) - 1
        why.append(f"The optimizer rewrote {parent['id']} after epoch {ep} of subset {m.get('subset_id')}: "
                   "it saw the trajectories and critiques below.")
        if m.get("adopted") is not None:
            why.append(("Adopted" if m["adopted"] else "Rejected") + f": it scored {_f(m.get('score'))} on the "
                       "subset, compared with the best module so far on the same tasks.")
        crits = store.query(
            "select task_id, correct, failure, pattern, suggestion, parsed from critiques where module_id = ? and "
            "subset_id is ? and epoch = ? order by correct, task_id", (parent["id"], m.get("subset_id"), ep))
        trajs = store.query(
            "select task_id, steps_json, answer, success, score, error from trajectories where module_id = ? and "
            "subset_id is ? and epoch = ? and phase = 'explore' order by success, task_id limit ?",
            (parent["id"], m.get("subset_id"), ep, max_trajectories))
    elif origin == "merge":
        node = store.get("merge_nodes", m.get("node_id")) or {}
        kids = node.get("child_ids_json") or []
        why.append(f"The merger combined {', '.join(kids) or 'its children'} at node {m.get('node_id')}; "
                   "the diff is against the best child.")
        if m.get("note"):
            why.append(m["note"])
        merged = [child_detail(store, c) for c in kids]
        reviews = store.rows("reviews", "node_id = ?", (m.get("node_id"),), order_by="id")
    elif origin == "edit":
        why.append(f"An operator edited the merged module of node {m.get('node_id')} during review; "
                   "the edited text is what was backtested.")
        reviews = store.rows("reviews", "node_id = ?", (m.get("node_id"),), order_by="id")
    lineage = [m["id"]]
    cur = parent
    while cur is not None and len(lineage) < 50:
        lineage.append(cur["id"])
        cur = module(store, cur.get("parent_id"))
    return Audit(m, parent, diff, why, crits, trajs, merged, reviews, lineage)


def _f(x: float | None) -> str:
    return "—" if x is None else f"{x:.3f}"


# -- review -------------------------------------------------------------------------------


def review_request_from_store(store: Any, node_id: str) -> Any:
    """A ReviewRequest rebuilt from rows (for a node shown again, or in tests)."""
    from fgo_engine.review import ChildInfo, ReviewRequest
    from fgo_engine.types import Module

    row = store.get("merge_nodes", node_id)
    if row is None:
        return None
    prop = module(store, row["proposed_module_id"]) or {}
    kids = []
    for c in row.get("child_ids_json") or []:
        d = child_detail(store, c)
        kids.append(ChildInfo(c, Module(prop.get("kind", "instruction"), d.text), d.score or 0.0, d.n_tasks,
                              d.categories))
    return ReviewRequest(node_id, Module(prop.get("kind", "instruction"), prop.get("text", "")), tuple(kids),
                         len(row.get("task_ids_json") or []))


def fill_child_categories(store: Any, request: Any) -> dict[str, dict[str, float]]:
    """Per-category scores for each child of a live review (subset children carry none)."""
    out: dict[str, dict[str, float]] = {}
    for c in request.children:
        if c.scores_by_category:
            out[c.node_id] = dict(c.scores_by_category)
        else:
            try:
                out[c.node_id] = child_detail(store, c.node_id).categories
            except Exception:  # a read must never break the review
                out[c.node_id] = {}
    return out
