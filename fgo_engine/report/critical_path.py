"""The critical path of a run, computed from its session file alone.

The critical path is the longest chain of calls that must happen one after another,
given how the engine orders its work: within one scope (a subset's loop, a baseline's
loop, a merge node) the epochs and their phases (explore → evaluate → optimize; merge →
backtest) follow each other; within a phase the tasks run in parallel, and one task's
calls (a ReAct episode, retried samples) follow each other. Subsets run in parallel;
the merge tree starts when every subset is done, and a node waits for its child nodes
(its merged module and its best child are backtested side by side);
the test evaluation comes last. Each call counts its own latency (``latency_ms``), not the
time it waited for a slot (``queue_ms``); a cache hit counts nothing.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any


def _seconds(r: dict[str, Any]) -> float:
    return 0.0 if r["cache_hit"] else (r["latency_ms"] or 0.0) / 1000.0


def _lanes(calls: list[dict[str, Any]]) -> float:
    """The longest chain of one task's calls in one step: its episodes under different
    modules (the best module and the candidate) run side by side, so calls that overlap in
    time go to different lanes; the longest lane counts. Calls without times: one lane."""
    if any(c.get("started_at") is None or c.get("ended_at") is None for c in calls):
        return sum(_seconds(c) for c in calls)
    lanes: list[list[float]] = []  # [end of the lane's last call, seconds in the lane]
    for c in sorted(calls, key=lambda c: c["started_at"]):
        free = [ln for ln in lanes if ln[0] <= c["started_at"] + 1e-6]
        lane = max(free, key=lambda ln: ln[0]) if free else None
        if lane is None:
            lane = [0.0, 0.0]
            lanes.append(lane)
        lane[0], lane[1] = c["ended_at"], lane[1] + _seconds(c)
    return max((ln[1] for ln in lanes), default=0.0)


def scope_chain(rows: list[dict[str, Any]]) -> float:
    """Seconds of the longest dependent chain inside one scope."""
    groups: dict[tuple[str, int], dict[Any, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        epoch = r["epoch"] if r["epoch"] is not None else -1
        # every (phase, epoch) group of a scope follows the one before it; inside a group
        # the tasks run side by side and one task's calls follow each other. A backtest's
        # merged module (epoch 0) and best child (epoch 1) run side by side too, and so do
        # an explore step's best module and candidate (told apart by their calls' times).
        if r["phase"] == "backtest":
            groups[("backtest", 0)][None if r["task_id"] is None else (r["task_id"], epoch)].append(r)
        else:
            groups[(r["phase"], epoch)][r["task_id"]].append(r)
    total = 0.0
    for per_task in groups.values():
        untasked = sum(_seconds(r) for r in per_task.pop(None, []))  # optimizer, merger: one after another
        total += untasked + max((_lanes(calls) for calls in per_task.values()), default=0.0)
    return total


def critical_path(rows: list[dict[str, Any]], nodes: list[dict[str, Any]]) -> dict[str, Any]:
    """``rows``: ledger rows; ``nodes``: merge_nodes rows (id, child_ids_json)."""
    by_scope: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_scope[(r["scope_kind"], r["scope_id"])].append(r)
    chains = {k: scope_chain(v) for k, v in by_scope.items()}
    loops = max((v for (kind, _), v in chains.items() if kind in ("subset", "baseline")), default=0.0)
    children = {n["id"]: [c for c in (n.get("child_ids_json") or []) if str(c).startswith("n")] for n in nodes}
    memo: dict[str, float] = {}

    def node_path(nid: str) -> float:
        if nid not in memo:
            memo[nid] = chains.get(("node", nid), 0.0) + max((node_path(c) for c in children.get(nid, [])),
                                                             default=0.0)
        return memo[nid]

    tree = max((node_path(n) for n in children), default=0.0)
    test = chains.get(("session", ""), 0.0)
    timed = [r for r in rows if r.get("started_at") is not None and r.get("ended_at") is not None]
    span = (max(r["ended_at"] for r in timed) - min(r["started_at"] - (r["queue_ms"] or 0) / 1000.0
                                                     for r in timed)) if timed else 0.0
    return {"seconds": loops + tree + test, "loops": loops, "merge_tree": tree, "test": test,
            "ledger_span": span}


def critical_path_of(path: str | Path) -> dict[str, Any]:
    """Open a session file read-only and compute its critical path."""
    from fgo_engine.persistence import queries as q

    store = q.open_readonly(path)
    try:
        rows = q.timed_calls(store)
        nodes = q.merge_nodes(store)
    finally:
        store.close()
    return critical_path(rows, nodes)
