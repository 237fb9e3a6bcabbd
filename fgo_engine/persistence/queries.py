"""The read side of a session file: every question the app, the CLI and the export ask.

Functions take a :class:`~fgo_engine.persistence.store.Store` (its per-thread read-only connections
make them safe from any thread) and return rows as dicts or small dataclasses. SQL on
table names lives here and in the store; writes go through :mod:`fgo_engine.persistence.writes`.
"""
from __future__ import annotations

import difflib
import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fgo_engine.errors import FGOError
from fgo_engine.types import IF_NOT_WORSE, ChildInfo, Module, ReviewRequest, Task, Totals, epoch_label, subset_ref

if TYPE_CHECKING:
    from fgo_engine.persistence.store import Store

HISTORY_TRAJECTORIES = 12  # at most this many trajectories replayed into a subset's stream on open
HISTORY_LINES = 40


def open_readonly(path: str | Path) -> Store:
    """A read-only store for a session file (refuses what is not one)."""
    from fgo_engine.persistence.store import Store

    return Store.open(path, readonly=True)


def session_holder(path: str | Path) -> str | None:
    """Which process is writing the session now ("pid 12 on host h"), or None."""
    from fgo_engine.persistence.store import session_holder as holder

    return holder(path)


# -- ledger totals --------------------------------------------------------------------------


@dataclass
class LedgerTotals:
    """Spent tokens and cost (cache hits excluded), calls, cache hits and errors, by key."""

    total: Totals = field(default_factory=Totals)
    by_role: dict[str, Totals] = field(default_factory=lambda: defaultdict(Totals))
    by_scope: dict[tuple[str, str], Totals] = field(default_factory=lambda: defaultdict(Totals))
    by_phase: dict[str, Totals] = field(default_factory=lambda: defaultdict(Totals))


def ledger_totals(store: Store) -> LedgerTotals:
    """The one grouped query over the ledger every total is summed from."""
    out = LedgerTotals()
    rows = store.query(
        "select role, scope_kind, scope_id, phase, count(*) calls, coalesce(sum(cache_hit), 0) hits, "
        "coalesce(sum(error is not null), 0) errors, "
        "coalesce(sum(case when cache_hit = 0 then prompt_tokens else 0 end), 0) p, "
        "coalesce(sum(case when cache_hit = 0 then completion_tokens else 0 end), 0) c, "
        "coalesce(sum(case when cache_hit = 0 then cost else 0 end), 0) cost, "
        "coalesce(sum(case when cache_hit = 1 then prompt_tokens else 0 end), 0) cp, "
        "coalesce(sum(case when cache_hit = 1 then completion_tokens else 0 end), 0) cc "
        "from ledger group by role, scope_kind, scope_id, phase")
    for r in rows:
        for agg in (out.total, out.by_role[r["role"]], out.by_scope[(r["scope_kind"], r["scope_id"])],
                    out.by_phase[r["phase"]]):
            agg.calls += r["calls"]
            agg.cache_hits += r["hits"]
            agg.errors += r["errors"]
            agg.prompt_tokens += r["p"]
            agg.completion_tokens += r["c"]
            agg.cost += r["cost"]
            agg.cached_prompt_tokens += r["cp"]
            agg.cached_completion_tokens += r["cc"]
    return out


PROGRESS_KEY = "calls_done"  # meta: per role, the calls of the session's work done so far (JSON)


def calls_done(store: Store) -> dict[str, dict[str, Any]]:
    """Per role, the calls of the session's work done by its earlier runs (as each run counted
    them: a call a resume replays from the cache is not done twice) and the latency of the ones
    an LLM answered: where progress and the ETA of a resumed run start from."""
    rows = store.query(
        "select role, count(distinct case when cache_key != '' then cache_key end) "
        "+ coalesce(sum(cache_key = '' or cache_key is null), 0) calls, "
        "coalesce(sum(cache_hit = 0 and error is null), 0) timed, "
        "coalesce(sum(case when cache_hit = 0 and error is null then latency_ms else 0 end), 0) ms "
        "from ledger group by role")
    out = {r["role"]: {"calls": r["calls"], "timed": r["timed"], "seconds": r["ms"] / 1000.0} for r in rows}
    try:
        counted = json.loads(store.meta_get(PROGRESS_KEY) or "{}")
    except (TypeError, ValueError):
        counted = {}
    for role, n in counted.items():  # a session written before runs counted: distinct calls
        out.setdefault(role, {"calls": 0, "timed": 0, "seconds": 0.0})["calls"] = int(n)
    return out


def event_history(store: Store, limit: int = 10_000) -> list[tuple[str, str, dict[str, Any]]]:
    """The session's kept events, oldest first: (ts, kind, payload)."""
    rows = store.query("select ts, kind, payload_json from events where kind != 'RejectedOutput' "
                       "order by id desc limit ?", (limit,))
    out = []
    for r in reversed(rows):
        payload = r["payload_json"]
        if isinstance(payload, str):
            try:
                payload = json.loads(payload)
            except ValueError:
                continue
        out.append((r["ts"] or "", r["kind"] or "", payload if isinstance(payload, dict) else {}))
    return out


# -- sessions -------------------------------------------------------------------------------


def session_info(store: Store) -> dict[str, Any]:
    """The session row: name, suite, status, scores, ``config_json`` decoded."""
    return store.session_info()


def review_policy(store: Store) -> str:
    return ((session_info(store).get("config_json") or {}).get("review")) or "auto"


def session_summary(path: Path, store: Store) -> dict[str, Any]:
    info = session_info(store)
    cfg = info.get("config_json") or {}
    models = sorted({r.get("model", "?") for r in (cfg.get("roles") or {}).values()})
    return {"path": str(path), "name": info["name"], "suite": info["suite"], "status": info["status"],
            "best_score": info["best_score"], "tokens": ledger_totals(store).total.tokens, "models": models,
            "test_score": mean_test_score(store, info["final_module_id"]) if info.get("final_module_id") else None,
            "method": cfg.get("method", "fgo"), "updated_at": info["updated_at"],
            "pending_reviews": pending_reviews(store)}


def list_sessions(folder: Path) -> list[dict[str, Any]]:
    """Every ``*.db`` in a folder, newest first; a file that is not a readable session carries
    ``error`` and a ``label`` (not a session, incomplete, unreadable)."""
    from fgo_engine.errors import IncompleteSessionError, NotASessionError

    out = []
    for p in sorted(folder.glob("*.db"), key=lambda p: p.stat().st_mtime, reverse=True):
        try:
            st = open_readonly(p)
        except NotASessionError as exc:
            out.append({"path": str(p), "error": str(exc), "label": "not a session"})
            continue
        except IncompleteSessionError as exc:
            out.append({"path": str(p), "error": str(exc), "label": "incomplete"})
            continue
        except FGOError as exc:
            out.append({"path": str(p), "error": str(exc), "label": "unreadable"})
            continue
        try:
            out.append(session_summary(p, st))
        except Exception as exc:  # noqa: BLE001 - one odd file must not hide the others
            out.append({"path": str(p), "error": " ".join(str(exc).split()), "label": "unreadable"})
        finally:
            st.close()
    return out


# -- run view -------------------------------------------------------------------------------


def task_counts(store: Store) -> tuple[int, int]:
    """(train, test) task counts."""
    return store.count("tasks", "split = 'train'"), store.count("tasks", "split = 'test'")


def tasks(store: Store, split: str) -> list[Task]:
    """The stored tasks of a split, in the order they were written; a session without test
    tasks is tested on its training tasks."""
    rows = store.rows("tasks", "split = ?", (split,), order_by="rowid")
    if split == "test" and not rows:
        return tasks(store, "train")
    return [Task(r["id"], r["input"], r["expected"], r["category"] or "default", r["meta_json"] or {})
            for r in rows]


def task_categories(store: Store) -> dict[str, str]:
    return {r["id"]: r["category"] for r in store.query("select id, category from tasks")}


def subsets(store: Store) -> list[dict]:
    return store.rows("subsets", order_by="id")


def subset_epochs(store: Store) -> list[dict]:
    """The epochs of every subset, in subset and epoch order."""
    return store.rows("epochs", "subset_id is not null", order_by="subset_id, epoch")


def trajectory_count(store: Store) -> int:
    """How many agent runs the session holds."""
    return store.count("trajectories")


def last_failed_critique(store: Store, subset_id: int) -> dict | None:
    rows = store.query(
        "select epoch, task_id, failure, suggestion from critiques where subset_id = ? and correct = 0 "
        "order by epoch desc, rowid desc limit 1", (subset_id,))
    return rows[0] if rows else None


def latest_candidate(store: Store, subset_id: int) -> dict | None:
    """The subset's newest optimizer-written module (id, epoch)."""
    rows = store.query("select id, epoch from modules where subset_id = ? and origin = 'optimize' "
                       "order by epoch desc, rowid desc limit 1", (subset_id,))
    return rows[0] if rows else None


def step_lines(task_id: str, steps: list[Any]) -> list[tuple[str, str, str]]:
    """(task id, kind, text) for each stored step."""
    out = []
    for st in steps or []:
        if isinstance(st, (list, tuple)) and len(st) == 2:
            out.append((task_id, str(st[0]), str(st[1])))
    return out


def subset_history(store: Store, subset_id: int, n: int = HISTORY_TRAJECTORIES,
                   max_lines: int = HISTORY_LINES) -> list[tuple[str, str, str]]:
    """The end of the subset's latest trajectories, as the stream showed them."""
    rows = store.query("select task_id, steps_json from trajectories where subset_id = ? and phase = 'explore' "
                       "order by epoch desc, rowid desc limit ?", (subset_id, n))
    lines: list[tuple[str, str, str]] = []
    for r in rows:  # newest first, until there are enough lines
        lines = step_lines(r["task_id"], r["steps_json"]) + lines
        if len(lines) >= max_lines:
            break
    return lines[-max_lines:]


def merge_nodes(store: Store) -> list[dict]:
    return store.rows("merge_nodes", order_by="rowid")


def reviews(store: Store, node_id: str | None = None) -> list[dict]:
    """Review rows in the order they were made, of one node or of all."""
    if node_id is None:
        return store.rows("reviews", order_by="id")
    return store.rows("reviews", "node_id = ?", (node_id,), order_by="id")


def node_decision(rows: list[dict]) -> tuple[str | None, str | None]:
    """The decision that took effect: the review, unless if-not-worse rolled it back later."""
    if not rows:
        return None, None
    post = [r for r in rows if r["by"] == IF_NOT_WORSE and r["decision"] == "rollback"]
    r = post[-1] if post else rows[0]
    return r["decision"], r["by"]


def mean_test_score(store: Store, module_id: str) -> float | None:
    return module_test_scores(store, [module_id]).get(module_id)


def module_test_scores(store: Store, module_ids: list[str] | None = None) -> dict[str, float]:
    """The modules scored on the test split (all, or these): mean test score by module id. Reported
    only; no decision reads it."""
    where = "phase = 'test'"
    args: tuple[str, ...] = ()
    if module_ids is not None:
        ids = [m for m in module_ids if m]
        if not ids:
            return {}
        where += f" and module_id in ({','.join('?' * len(ids))})"
        args = tuple(ids)
    rows = store.query(f"select module_id, avg(score) s from trajectories where {where} group by module_id", args)
    return {r["module_id"]: r["s"] for r in rows if r["module_id"] is not None}


def tree_modules(store: Store) -> list[tuple[str, Module]]:
    """The modules a merge tree stands on, each once: every subset's best, every merged module
    and every module a node kept (subsets first, then the nodes bottom-up)."""
    ids = [s["best_module_id"] for s in subsets(store)]
    for n in merge_nodes(store):
        ids += [n["proposed_module_id"], n["module_id"]]
    out: list[tuple[str, Module]] = []
    for mid in dict.fromkeys(i for i in ids if i):
        row = module(store, mid)
        if row is not None:
            out.append((mid, Module(row["kind"], row["text"])))
    return out


def category_test_scores(store: Store, module_id: str) -> list[dict]:
    """Per category: mean test score and trajectory count."""
    return store.query(
        "select t.category, avg(tr.score) score, count(*) n from trajectories tr join tasks t on t.id = tr.task_id "
        "where tr.phase = 'test' and tr.module_id = ? group by t.category order by t.category", (module_id,))


# -- modules --------------------------------------------------------------------------------


def module(store: Store, module_id: str | None) -> dict | None:
    return store.get("modules", module_id) if module_id else None


def module_text(store: Store, module_id: str) -> str | None:
    row = module(store, module_id)
    return None if row is None else row["text"]


def module_texts(store: Store, module_ids: list[str]) -> dict[str, str]:
    """Texts of many modules in one query (the ones not found are left out)."""
    ids = sorted(set(module_ids))
    if not ids:
        return {}
    rows = store.query(f"select id, text from modules where id in ({', '.join('?' * len(ids))})", tuple(ids))
    return {r["id"]: r["text"] for r in rows}


def subset(store: Store, subset_id: int) -> dict | None:
    return store.get("subsets", subset_id)


def merge_node(store: Store, node_id: str) -> dict | None:
    return store.get("merge_nodes", node_id)


def tree_row(store: Store, ref: str) -> tuple[dict | None, bool]:
    """The row a merge-tree reference names, and whether it is a subset's (else a merge node's)."""
    sid = subset_ref(ref)
    if sid is not None:
        return subset(store, sid), True
    return merge_node(store, ref), False


def child_module_id(store: Store, child: str) -> str | None:
    """The module a merge-tree child stands for: a subset's best, or a node's result."""
    row, is_subset = tree_row(store, child)
    if row is None:
        return None
    return row["best_module_id"] if is_subset else (row["module_id"] or row["proposed_module_id"])


def child_score(store: Store, child: str) -> float | None:
    row, is_subset = tree_row(store, child)
    if row is None:
        return None
    return row["best_score"] if is_subset else row["score_after"]


def category_scores(store: Store, module_id: str, task_ids: list[str] | None = None) -> dict[str, float]:
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


def descendant_subsets(store: Store, node_id: str) -> list[int]:
    out: list[int] = []
    stack = [node_id]
    seen = set()
    while stack:
        cur = stack.pop()
        if cur in seen:
            continue
        seen.add(cur)
        sid = subset_ref(cur)
        if sid is not None:
            out.append(sid)
            continue
        row = merge_node(store, cur)
        stack.extend(reversed((row or {}).get("child_ids_json") or []))
    return sorted(out)


# -- node detail ----------------------------------------------------------------------------


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


def failed_critiques(store: Store, subset_ids: list[int], limit: int = 30) -> list[dict]:
    """The audit trail below a tree place: failed critiques of these subsets."""
    return store.query(
        "select subset_id, epoch, task_id, failure, suggestion from critiques where correct = 0 and subset_id in "
        f"({','.join('?' * len(subset_ids)) or 'null'}) order by subset_id, epoch, task_id limit ?",
        (*subset_ids, limit))


def failed_critiques_of(store: Store, module_id: str | None, epoch: int | None,
                        subset_id: int | None = None) -> list[dict]:
    """The failed critiques that led from a module (in one subset, when given), in the order made."""
    where = "module_id = ? and epoch = ? and correct = 0"
    params: tuple = (module_id, epoch)
    if subset_id is not None:
        where, params = where + " and subset_id = ?", (*params, subset_id)
    return store.rows("critiques", where, params, order_by="rowid")


def timed_calls(store: Store) -> list[dict]:
    """Every LLM call that did not fail, with its timing and place (the critical path's input)."""
    return store.query("select scope_kind, scope_id, phase, epoch, task_id, latency_ms, cache_hit, "
                       "started_at, ended_at, queue_ms from ledger where error is null")


def node_detail(store: Store, node_id: str, trail_limit: int = 30) -> NodeDetail | None:
    row = merge_node(store, node_id)
    if row is None:
        return None
    final = module(store, row["module_id"])
    proposed = module(store, row["proposed_module_id"])
    children = [child_detail(store, c) for c in row.get("child_ids_json") or []]
    trail = failed_critiques(store, descendant_subsets(store, node_id), trail_limit)
    return NodeDetail(node_id, row, row["module_id"], (final or {}).get("text", ""), row["proposed_module_id"],
                      (proposed or {}).get("text", ""), reviews(store, node_id), children, trail)


def child_detail(store: Store, child: str) -> ChildDetail:
    mid = child_module_id(store, child)
    m = module(store, mid) or {}
    found, is_subset = tree_row(store, child)
    row = found or {}
    ids = row.get("task_ids_json") or []
    if is_subset:
        cats = category_scores(store, mid, ids) if mid else {}
    else:
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


def subset_detail(store: Store, subset_id: int, trail_limit: int = 30) -> SubsetDetail | None:
    row = subset(store, subset_id)
    if row is None:
        return None
    m = module(store, row["best_module_id"]) or {}
    return SubsetDetail(subset_id, row, row["best_module_id"], m.get("text", ""),
                        store.rows("epochs", "subset_id = ?", (subset_id,), order_by="epoch"),
                        failed_critiques(store, [subset_id], trail_limit))


# -- audit ----------------------------------------------------------------------------------


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
    node: dict | None = None  # the merge node of a merged or edited module (its backtest figures)


def list_modules(store: Store) -> list[dict]:
    return store.query("select id, origin, subset_id, node_id, epoch, score, adopted, parent_id from modules "
                       "order by case origin when 'initial' then 0 when 'optimize' then 1 else 2 end, "
                       "subset_id, epoch, rowid")


def audit(store: Store, module_id: str, max_trajectories: int = 12) -> Audit | None:
    m = module(store, module_id)
    if m is None:
        return None
    parent = module(store, m.get("parent_id"))
    diff = unified_diff(parent["text"], m["text"], parent["id"], m["id"]) if parent else []
    why: list[str] = []
    crits: list[dict] = []
    trajs: list[dict] = []
    merged: list[ChildDetail] = []
    node_reviews: list[dict] = []
    node_row: dict | None = None
    origin = m.get("origin")
    if origin == "initial":
        why.append("The suite's starting module: nothing changed it yet.")
    elif origin == "optimize" and parent:
        ep = (m.get("epoch") or 1) - 1
        why.append(f"The optimizer wrote {m['id']} from {parent['id']} after "
                   f"{epoch_label(m.get('subset_id'), ep)}: it saw that epoch's trajectories and critiques "
                   f"below; {m['id']} first ran at {epoch_label(m.get('subset_id'), m.get('epoch'))}.")
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
        node = merge_node(store, m.get("node_id") or "") or {}
        kids = node.get("child_ids_json") or []
        why.append(f"The merger combined {', '.join(kids) or 'its children'} at node {m.get('node_id')}; "
                   "the diff is against the best child.")
        if m.get("note"):
            why.append(m["note"])
        merged = [child_detail(store, c) for c in kids]
        node_reviews = reviews(store, m.get("node_id"))
        node_row = node or None
    elif origin == "edit":
        why.append(f"An operator edited the merged module of node {m.get('node_id')} during review; "
                   "the edited text is what was backtested.")
        node_reviews = reviews(store, m.get("node_id"))
        node_row = merge_node(store, m.get("node_id") or "")
    lineage = [m["id"]]
    cur = parent
    while cur is not None and len(lineage) < 50:
        lineage.append(cur["id"])
        cur = module(store, cur.get("parent_id"))
    return Audit(m, parent, diff, why, crits, trajs, merged, node_reviews, lineage, node_row)


def _f(x: float | None) -> str:
    return "—" if x is None else f"{x:.3f}"


# -- review ---------------------------------------------------------------------------------


def review_request(store: Store, node_id: str) -> ReviewRequest | None:
    """A ReviewRequest rebuilt from rows (for a node shown again, or in tests)."""
    row = merge_node(store, node_id)
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


def child_categories(store: Store, request: ReviewRequest) -> dict[str, dict[str, float]]:
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


# -- failures, task by task -----------------------------------------------------------------


@dataclass
class Attempt:
    """One run of the agent on one task: which module, where (phase, subset or node, epoch),
    what it did and how it scored, and the evaluator's critique of it when there is one."""

    phase: str  # explore | backtest | test
    where: str  # "s2 epoch 1", "n3 backtest", "test"
    module_id: str
    epoch: int | None
    steps: list[tuple[str, str]]
    answer: str
    success: bool
    score: float
    error: str | None
    critique: dict[str, Any] | None = None  # correct, failure, pattern, suggestion


@dataclass
class TaskHistory:
    task: Task
    split: str
    attempts: list[Attempt]
    final_score: float | None  # with the session's final module, when it ran on this task


def final_module_id(store: Store) -> str | None:
    return session_info(store).get("final_module_id")


def task_outcomes(store: Store) -> list[dict[str, Any]]:
    """Every task with its split and category, how many times the agent ran it, how many of those
    runs failed, and its score with the final module (None when the final module never ran it:
    a train task of a finished subset that no backtest covered, or a run without a test phase)."""
    final = final_module_id(store)
    rows = store.query(
        "select t.id, t.split, t.category, count(tr.id) runs, coalesce(sum(tr.success = 0), 0) failed, "
        "avg(case when tr.module_id = ? then tr.score end) final_score "
        "from tasks t left join trajectories tr on tr.task_id = t.id "
        "group by t.id order by t.split desc, t.category, t.id", (final or "",))
    return [dict(r) for r in rows]


def _where(r: dict[str, Any]) -> str:
    if r["phase"] == "test":
        return "test"
    if r["phase"] == "backtest" or r.get("node_id"):
        return f"{r.get('node_id') or '?'} backtest"
    sub = r.get("subset_id")
    head = f"s{sub}" if sub is not None else "all"
    return f"{head} epoch {r['epoch']}" if r.get("epoch") is not None else head


def task_history(store: Store, task_id: str) -> TaskHistory | None:
    """Every attempt at one task in the order it was made, each with its critique."""
    row = store.get("tasks", task_id)
    if row is None:
        return None
    task = Task(id=row["id"], input=row["input"], expected=row["expected"], category=row["category"] or "default",
                meta=row.get("meta_json") or {})
    crits: dict[tuple[str, int | None], dict[str, Any]] = {}
    for c in store.rows("critiques", "task_id = ?", (task_id,), order_by="rowid"):
        crits[(c["module_id"], c["epoch"])] = {k: c[k] for k in ("correct", "failure", "pattern", "suggestion")}
    final = final_module_id(store)
    attempts, final_scores = [], []
    for r in store.rows("trajectories", "task_id = ?", (task_id,), order_by="rowid"):
        steps = [(str(s[0]), str(s[1])) for s in (r.get("steps_json") or []) if isinstance(s, list | tuple)
                 and len(s) == 2]
        crit = crits.get((r["module_id"], r["epoch"])) if r["phase"] == "explore" else None
        attempts.append(Attempt(phase=r["phase"], where=_where(r), module_id=r["module_id"], epoch=r["epoch"],
                                steps=steps, answer=r["answer"] or "", success=bool(r["success"]),
                                score=float(r["score"] or 0.0), error=r["error"], critique=crit))
        if final is not None and r["module_id"] == final:
            final_scores.append(float(r["score"] or 0.0))
    return TaskHistory(task=task, split=row["split"], attempts=attempts,
                       final_score=sum(final_scores) / len(final_scores) if final_scores else None)


# -- comparing sessions ---------------------------------------------------------------------


def task_ids(store: Store) -> tuple[frozenset[str], frozenset[str]]:
    """(train, test) task ids: two sessions compare like with like when these are equal."""
    rows = store.query("select id, split from tasks")
    return (frozenset(r["id"] for r in rows if r["split"] == "train"),
            frozenset(r["id"] for r in rows if r["split"] == "test"))


def category_train_scores(store: Store, module_id: str) -> dict[str, float]:
    """Per category, the module's mean score over every training-side run of it (backtests and epochs)."""
    rows = store.query(
        "select t.category, avg(tr.score) score from trajectories tr join tasks t on t.id = tr.task_id "
        "where tr.phase != 'test' and tr.module_id = ? group by t.category", (module_id,))
    return {r["category"]: r["score"] for r in rows}


ELAPSED_KEY = "elapsed_seconds"  # meta: wall seconds of the session's finished runs, summed


def elapsed_seconds(store: Store) -> float:
    """Wall seconds the session's finished runs took, from the store's meta table."""
    try:
        return float(store.meta_get(ELAPSED_KEY) or 0.0)
    except (TypeError, ValueError):
        return 0.0


def pending_reviews(store: Store) -> list[str]:
    """Merge nodes waiting for a person's decision (no review recorded yet), in the order the run
    asks them: what a follower of a run started elsewhere can answer."""
    rows = store.query(
        "select n.id from merge_nodes n where n.status = 'pending_review' and n.proposed_module_id is not null "
        "and not exists (select 1 from reviews r where r.node_id = n.id)")
    return sorted((r["id"] for r in rows), key=lambda i: (len(i), i))


def test_task_scores(store: Store, module_id: str) -> dict[str, float]:
    """Per test task: the module's score (the bench pairs methods task by task)."""
    rows = store.query("select task_id, avg(score) s from trajectories where phase = 'test' and module_id = ? "
                       "group by task_id order by task_id", (module_id,))
    return {r["task_id"]: r["s"] for r in rows}
