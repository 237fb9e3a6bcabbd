"""The app's run view rebuilt from a session file, through the engine's query layer.

No SQL here and no Textual import: :mod:`fgo_engine.persistence.queries` answers, this module only
folds the answers into a :class:`RunView`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from fgo_engine.persistence import queries as q
from fgo_tui.model.state import CritiqueView, EpochView, NodeView, RunView, StepLine, SubsetView

if TYPE_CHECKING:
    from fgo_engine.persistence.store import Store


def load_run_view(store: Store, *, live: bool = False) -> RunView:
    """Everything the dashboard and the tree show, from the rows alone (``live``: the session is
    being run by another process, so what is running there stays running here)."""
    info = q.session_info(store)
    cfg = info.get("config_json") or {}
    roles = cfg.get("roles") or {}
    view = RunView(
        path=str(store.path), name=info.get("name") or "", suite=info.get("suite") or cfg.get("suite", ""),
        method=cfg.get("method", "fgo"), status=info.get("status") or "new", message=info.get("error") or "",
        models={r: (v or {}).get("model", "?") for r, v in roles.items()},
        review_policy=cfg.get("review", "auto"), backtest=cfg.get("backtest") or "full",
        n_subsets=int(cfg.get("subsets") or 0),
        epochs=int(cfg.get("epochs") or 0), threshold=int(cfg.get("threshold") or 2),
        budget_tokens=cfg.get("budget_tokens"), train_score=info.get("best_score"),
        final_module_id=info.get("final_module_id"), updated_at=info.get("updated_at"),
    )
    n_train, n_test = q.task_counts(store)
    view.n_train, view.n_test = n_train, n_test or n_train
    cats = q.task_categories(store)
    _load_subsets(store, view, cats)
    _load_nodes(store, view)
    _load_tokens(store, view)
    view.n_subsets = max(view.n_subsets, len(view.subsets))
    _method_traits(view)
    if view.status == "done" and view.final_module_id:
        view.test_score = q.mean_test_score(store, view.final_module_id)
        view.start_test_score = q.mean_test_score(store, "initial")
    if not live:
        view.settle("opened")  # nothing runs in a session just opened: a cancelled run's subsets are not "running"
    view.version += 1
    view.tree_version += 1
    return view


def _method_traits(view: RunView) -> None:
    from fgo_engine.errors import ConfigError
    from fgo_engine.method.methods import method_for

    try:
        method = method_for(view.method)
    except ConfigError:  # a method this version does not know: shown without a tree
        view.has_merge_tree, view.max_merge_nodes = False, 0
        return
    view.has_merge_tree, view.max_merge_nodes = method.has_merge_tree, method.max_merge_nodes(view.n_subsets)


def load_history(store: Store, view: RunView) -> None:
    """The Events tab of a reopened session: the lines its kept events made when they happened
    (replayed into a scratch view, so the view built from the rows is left as it is)."""
    from datetime import datetime

    from fgo_engine.events import event_from_payload

    scratch = RunView(workers=view.workers)
    at = ""

    def stamp() -> str:
        try:
            return datetime.fromisoformat(at).astimezone().strftime("%H:%M:%S")
        except ValueError:
            return "--:--:--"

    scratch.clock = stamp
    for ts, kind, payload in q.event_history(store):
        e = event_from_payload(kind, payload)
        if e is not None:
            at = ts
            scratch.apply_event(e)
    view.logs.extendleft(reversed(scratch.logs))  # before any line this view already has
    view.logs_seen += scratch.logs_seen


def _load_subsets(store: Store, view: RunView, cats: dict[str, str]) -> None:
    for r in q.subsets(store):
        ids = r.get("task_ids_json") or []
        s = view.subset(int(r["id"]))
        s.name, s.n_tasks = r["name"] or s.name, len(ids)
        s.categories = tuple(sorted({cats.get(t, "?") for t in ids}))
        s.status = r["status"] or "pending"
        s.best_score, s.module_id = r["best_score"], r["best_module_id"]
    for r in q.subset_epochs(store):
        s = view.subset(int(r["subset_id"]))
        score = r["candidate_score"] if r["candidate_score"] is not None else r["score"]
        adopted = None if r["adopted"] is None else bool(r["adopted"])
        s.epochs[r["epoch"]] = EpochView(r["epoch"], score, r["score"], adopted)
        if s.status != "done":
            s.best_score, s.module_id = r["score"], r["module_id"]
    for s in view.subsets.values():
        c = q.last_failed_critique(store, s.id)
        if c:
            s.critique = CritiqueView(c["epoch"], c["task_id"], c["failure"] or "", c["suggestion"] or "")
        s.add_lines([StepLine(*line) for line in q.subset_history(store, s.id)])
        if s.status != "done":
            last = q.latest_candidate(store, s.id)
            if last and (last["epoch"] or 0) > max(s.epochs, default=-1):
                s.proposed_id, s.proposed_epoch = last["id"], last["epoch"]


def _load_nodes(store: Store, view: RunView) -> None:
    reviews: dict[str, list[dict]] = {}
    for r in q.reviews(store):
        reviews.setdefault(r["node_id"], []).append(r)
    for r in q.merge_nodes(store):
        n = view.node(r["id"])
        n.child_ids = tuple(r.get("child_ids_json") or ())
        n.parent_id, n.status = r["parent_id"], r["status"] or "planned"
        n.n_tasks = len(r.get("task_ids_json") or [])
        n.score_before, n.score_after, n.module_id = r["score_before"], r["score_after"], r["module_id"]
        n.decision, n.decided_by = q.node_decision(reviews.get(n.id, []))
        n.reviewed = reviews[n.id][0]["decision"] if reviews.get(n.id) else None
        n.backtest_mode, n.backtest_tasks = r.get("backtest_mode"), r.get("backtest_tasks")
        if r.get("ci_low") is not None and r.get("ci_high") is not None:
            n.interval = (r["ci_low"], r["ci_high"])
        if n.status == "pending_review" and n.decision is not None:
            n.status = "stopped"  # decided, stopped before its backtest (a file from before the engine said so)
        if n.status == "pending_review":
            view.pending_review = n.id


def _load_tokens(store: Store, view: RunView) -> None:
    led = q.ledger_totals(store)
    t = led.total
    view.prompt_tokens, view.completion_tokens = t.prompt_tokens, t.completion_tokens
    view.calls, view.cache_hits = t.calls, t.cache_hits
    for (kind, sid), tot in sorted(led.by_scope.items()):  # in the order the ledger groups them
        target: SubsetView | NodeView | None = None
        if kind == "subset" and str(sid).isdigit():
            target = view.subset(int(sid))
            target.cache_hits += tot.cache_hits
        elif kind == "node":
            target = view.node(sid)
        if target is not None:
            target.prompt_tokens, target.completion_tokens, target.calls = (tot.prompt_tokens,
                                                                           tot.completion_tokens, tot.calls)
    # a role shows once it spent something (a row that was not a cache hit)
    view.role_tokens = {role: tot.tokens for role, tot in sorted(led.by_role.items()) if tot.calls > tot.cache_hits}
