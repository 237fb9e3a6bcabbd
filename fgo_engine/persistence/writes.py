"""The write repository: every change the engine makes to a session, as one typed operation.

Callers say what happened ("a merge node backtested", "a subset finished"), never which
table or column it lands in; only this module and the store know the schema. Every row
goes through :func:`~fgo_engine.persistence.writer.encode_row`, which masks every secret the
process knows (:mod:`fgo_engine.redaction`) — the response cache included.

Ids are deterministic (a replay after a crash re-creates the same rows, written with
``replace``), and every row that records when it was made gets the one timestamp format.
Writes are queued and return at once unless they say otherwise; reads are in
:mod:`fgo_engine.persistence.queries`.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlite_utils import Database

from fgo_engine import redaction
from fgo_engine.errors import SessionError
from fgo_engine.persistence.schema import SESSION_STATUSES
from fgo_engine.persistence.writer import encode_row, scrub_secrets
from fgo_engine.timeutil import now
from fgo_engine.types import (
    IF_NOT_WORSE,
    Critique,
    LedgerEntry,
    Module,
    ReviewDecision,
    Scope,
    Task,
    Trajectory,
)

if TYPE_CHECKING:
    from fgo_engine.persistence.store import Store

__all__ = [
    "candidate_scored", "critiques", "epoch", "event", "ledger_entry", "llm_call", "meta_value",
    "merge_node_backtested", "merge_node_identical", "merge_node_parent", "merge_node_proposed",
    "merge_node_started", "merge_node_status", "merge_rolled_back", "module", "module_scored", "new_session",
    "rejected_reply", "review", "run_finished", "run_error", "session_config", "session_result", "session_status",
    "subset_failed", "subset_finished", "subset_started", "subsets", "trajectories",
]


def _flag(value: bool | None) -> int | None:
    return None if value is None else int(value)


# ------------------------------------------------------------------ the session


def _task_row(t: Task, split: str) -> dict[str, Any]:
    return {"id": t.id, "split": split, "category": t.category, "input": t.input, "expected": t.expected,
            "meta_json": t.meta}


def _storable(t: Task, row: dict[str, Any]) -> dict[str, Any]:
    """The row of a task the file can hold; a lone surrogate (``"\\udcff"`` in JSON) is not text."""
    for key, value in row.items():
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise SessionError(f"task {t.id!r} cannot be stored: its {key.removesuffix('_json')} holds "
                                   f"{exc.object[exc.start:exc.end]!r}, a lone surrogate, which is not text"
                                   ) from None
    return row


def new_session(path: str | Path, *, name: str, config: dict[str, Any], suite: str | None,
                train: Sequence[Task], test: Sequence[Task]) -> Store:
    """A new session file with its tasks, written in the transaction that creates it: a task
    the file cannot hold (a lone surrogate, say) leaves no file behind."""
    from fgo_engine.persistence.store import Store

    train_ids = {t.id for t in train}
    rows = [_storable(t, encode_row(_task_row(t, "train"))) for t in train]
    rows += [_storable(t, encode_row(_task_row(t, "test"))) for t in test if t.id not in train_ids]

    def fill(db: Database) -> None:
        db.table("session").update(1, encode_row({"suite": suite}))
        if rows:
            db.table("tasks").insert_all(rows, replace=True)

    return Store.create(path, name=name, config=config, fill=fill)


def session_config(store: Store, config: dict[str, Any]) -> None:
    """The run's configuration changed (a resume with overrides)."""
    store._writes().update("session", 1, {"config_json": scrub_secrets(config)})


def session_status(store: Store, status: str) -> None:
    """The run's state; updated_at moves with it."""
    if status not in SESSION_STATUSES:
        raise ValueError(f"unknown session status {status!r}; expected one of {sorted(SESSION_STATUSES)}")
    store._writes().update("session", 1, {"status": status, "updated_at": now()})


def session_result(store: Store, *, train_score: float | None, final_module_id: str) -> None:
    """The run ended with a final module."""
    store._writes().update("session", 1, {"best_score": train_score, "final_module_id": final_module_id,
                                          "error": None, "updated_at": now()})


def run_error(store: Store, message: str | None) -> None:
    """Why the run stopped."""
    store._writes().update("session", 1, {"error": message, "updated_at": now()})


def meta_value(store: Store, key: str, value: str) -> None:
    """A session-wide value (e.g. the elapsed time); ``store.meta_get`` sees it at once."""
    value = redaction.scrub(str(value))
    store._writes().put_pending(
        "meta", key, value,
        lambda db: db.table("meta").insert({"key": key, "value": value}, replace=True),
        f"meta value {key!r}",
    )


def event(store: Store, kind: str, payload: dict[str, Any]) -> None:
    """An event kept in the session's history."""
    store._writes().insert("events", {"ts": now(), "kind": kind, "payload_json": payload})


HISTORY_KEEP = 10_000  # events a session keeps (the oldest go first)
HISTORY_PRUNE_EVERY = 200  # rows between two prunes


def history_event(store: Store, kind: str, payload: dict[str, Any], *, keep: int = HISTORY_KEEP) -> None:
    """An event kept in the session's history, bounded to its last ``keep`` events (rejected
    replies, which the audit reads, are never pruned)."""
    row = encode_row({"ts": now(), "kind": kind, "payload_json": payload})

    def add(db: Database) -> None:
        new_id = db.table("events").insert(row).last_pk
        if isinstance(new_id, int) and new_id % HISTORY_PRUNE_EVERY == 0:
            db.execute("delete from events where kind != 'RejectedOutput' and id <= ("
                       "select id from events where kind != 'RejectedOutput' order by id desc limit 1 offset ?)",
                       [keep])

    store._writes().submit(add, f"history event {kind}")


def run_finished(store: Store, *, status: str, message: str | None, train_score: float | None,
                 test_score: float | None) -> None:
    event(store, "RunFinished", {"status": status, "message": message, "train_score": train_score,
                                 "test_score": test_score})


def rejected_reply(store: Store, payload: dict[str, Any]) -> None:
    """A model reply rejected as unusable, once per ``payload["ref"]`` (a replay through
    the cache does not add it again)."""
    row = encode_row({"ts": now(), "kind": "RejectedOutput", "payload_json": payload})
    ref = payload["ref"]

    def once(db: Database) -> None:
        seen = db.execute("select 1 from events where kind = 'RejectedOutput' and "
                          "json_extract(payload_json, '$.ref') = ? limit 1", [ref]).fetchone()
        if seen is None:
            db.table("events").insert(row)

    store._writes().submit(once, "rejected reply")


# ------------------------------------------------------------------ modules and runs


def module(store: Store, module_id: str, m: Module, *, origin: str, parent_id: str | None = None,
           subset_id: int | None = None, node_id: str | None = None, epoch: int | None = None,
           score: float | None = None, adopted: bool | None = None, note: str = "") -> None:
    """A module was written (initial, optimized, merged, edited)."""
    store._writes().insert("modules", {
        "id": module_id, "kind": m.kind, "text": m.text, "parent_id": parent_id, "origin": origin,
        "subset_id": subset_id, "node_id": node_id, "epoch": epoch, "score": score, "adopted": _flag(adopted),
        "note": note, "created_at": now()}, replace=True)


def module_scored(store: Store, module_id: str, score: float) -> None:
    """A merged or edited module got its score on its node's tasks."""
    store._writes().update("modules", module_id, {"score": score})


def candidate_scored(store: Store, module_id: str, score: float, adopted: bool) -> None:
    """An optimizer's candidate was explored and adopted or not."""
    store._writes().update("modules", module_id, {"score": score, "adopted": int(adopted)})


def trajectories(store: Store, scope: Scope, epoch: int, module_id: str,
                 runs: Iterable[tuple[Task, Trajectory]], subset_id: int | None) -> None:
    """One pass of the agent over tasks (committed together)."""
    node_id = scope.id if scope.kind == "node" else None
    store._writes().insert_many("trajectories", [
        {"id": f"{scope.phase}:{scope.kind}{scope.id}:{epoch}:{module_id}:{t.id}", "task_id": t.id,
         "module_id": module_id, "phase": scope.phase, "subset_id": subset_id, "node_id": node_id, "epoch": epoch,
         "steps_json": [[s.kind, s.text] for s in tr.steps], "answer": tr.answer, "success": int(tr.success),
         "score": tr.score, "error": tr.error, "created_at": now()}
        for t, tr in runs], replace=True)


def critiques(store: Store, scope: Scope, epoch: int, module_id: str,
              found: Iterable[tuple[Task, Critique]], subset_id: int | None) -> None:
    """The evaluator's critiques of one pass (committed together)."""
    store._writes().insert_many("critiques", [
        {"id": f"{scope.kind}{scope.id}:{epoch}:{module_id}:{t.id}", "trajectory_id": None, "task_id": t.id,
         "module_id": module_id, "subset_id": subset_id, "epoch": epoch, "correct": int(c.correct),
         "failure": c.failure, "pattern": c.pattern, "suggestion": c.suggestion, "raw": c.raw,
         "parsed": int(c.parsed), "created_at": now()}
        for t, c in found], replace=True)


def epoch(store: Store, scope_kind: str, scope_id: str, step: int, *, subset_id: int | None, module_id: str,
          candidate_id: str | None, score: float, candidate_score: float | None, adopted: bool | None,
          label: str) -> None:
    """One optimization step finished."""
    store._writes().insert("epochs", {
        "id": f"{scope_kind}{scope_id}:{step}", "subset_id": subset_id, "epoch": step, "module_id": module_id,
        "candidate_module_id": candidate_id, "score": score, "candidate_score": candidate_score,
        "adopted": _flag(adopted), "note": label, "created_at": now()}, replace=True)


# ------------------------------------------------------------------ subsets


def subsets(store: Store, found: Iterable[tuple[int, str, list[str]]]) -> None:
    """The division: (id, name, task ids) of each new subset, pending."""
    store._writes().insert_many("subsets", [
        {"id": i, "name": name, "task_ids_json": task_ids, "status": "pending", "best_module_id": None,
         "best_score": None} for i, name, task_ids in found], replace=True)


def subset_started(store: Store, subset_id: int) -> None:
    store._writes().update("subsets", subset_id, {"status": "running"})


def subset_finished(store: Store, subset_id: int, best_module_id: str, best_score: float) -> None:
    """A subset's loop ended: its best module is adopted."""
    w = store._writes()
    w.update("subsets", subset_id, {"status": "done", "best_module_id": best_module_id, "best_score": best_score})
    w.update("modules", best_module_id, {"adopted": 1})


def subset_failed(store: Store, subset_id: int) -> None:
    store._writes().update("subsets", subset_id, {"status": "failed"})


# ------------------------------------------------------------------ merge nodes


def _node_row(node_id: str, child_ids: list[str], subset_ids: list[int], task_ids: list[str],
              score_before: float, depth: int) -> dict[str, Any]:
    return {"id": node_id, "parent_id": None, "depth": depth, "child_ids_json": list(child_ids),
            "subset_ids_json": list(subset_ids), "task_ids_json": list(task_ids), "score_before": score_before,
            "status": "merging", "created_at": now(), "updated_at": now()}


def merge_node_parent(store: Store, node_id: str, parent_id: str) -> None:
    """A node became a child of a larger merge."""
    store._writes().update("merge_nodes", node_id, {"parent_id": parent_id})


def merge_node_started(store: Store, node_id: str, *, child_ids: list[str], subset_ids: list[int],
                       task_ids: list[str], score_before: float, depth: int) -> None:
    """A merge node starts: merging, no parent yet."""
    store._writes().insert("merge_nodes", _node_row(node_id, child_ids, subset_ids, task_ids, score_before, depth),
                           replace=True)


def merge_node_proposed(store: Store, node_id: str, proposed_module_id: str, *, awaits_review: bool) -> None:
    """The merger proposed a module; the node waits for its review unless it was decided before."""
    store._writes().update("merge_nodes", node_id, {
        "status": "pending_review" if awaits_review else "merging", "proposed_module_id": proposed_module_id,
        "updated_at": now()})


def merge_node_status(store: Store, node_id: str, status: str) -> None:
    store._writes().update("merge_nodes", node_id, {"status": status, "updated_at": now()})


def merge_node_backtested(store: Store, node_id: str, *, module_id: str, score: float,
                          scores_by_category: dict[str, float], mode: str, n_tasks: int,
                          child_score: float | None, interval: tuple[float, float] | None) -> None:
    """The node is done: the module it kept and how the backtest found it."""
    store._writes().update("merge_nodes", node_id, {
        "status": "done", "module_id": module_id, "score_after": score, "scores_json": scores_by_category,
        "backtest_mode": mode, "backtest_tasks": n_tasks, "child_score": child_score,
        "ci_low": interval[0] if interval else None, "ci_high": interval[1] if interval else None,
        "updated_at": now()})


def merge_node_identical(store: Store, node_id: str, *, child_ids: list[str], subset_ids: list[int],
                         task_ids: list[str], score_before: float, depth: int, module_id: str,
                         scores_by_category: dict[str, float], by: str) -> None:
    """All children were one module: the node adopts it as it is, approved by ``by``
    (node and review committed together)."""
    row = _node_row(node_id, child_ids, subset_ids, task_ids, score_before, depth)
    row.update(status="done", module_id=module_id, score_after=score_before, scores_json=scores_by_category)
    node = encode_row(row)
    decision = encode_row({"node_id": node_id, "decision": "approve", "text": None, "by": by,
                           "created_at": now()})

    def node_and_review(db: Database) -> None:
        db.table("merge_nodes").insert(node, replace=True)
        db.table("reviews").insert(decision)

    store._writes().submit(node_and_review, f"identical merge node {node_id}")


def review(store: Store, node_id: str, decision: ReviewDecision) -> None:
    """The review gate's answer on a node (approve, edit, roll back, and who)."""
    store._writes().insert("reviews", {"node_id": node_id, "decision": decision.decision, "text": decision.text,
                                       "by": decision.by, "created_at": now()})


def merge_rolled_back(store: Store, node_id: str, by: str = IF_NOT_WORSE) -> None:
    """After its backtest, the merge scored below its best child and was rolled back by ``by``.

    Recorded as a roll back, after the review that let the merge be backtested (which may
    be the same policy's approval); once per node and reviewer, so a resume that rolls the
    same node back again adds nothing."""
    row = encode_row({"node_id": node_id, "decision": "rollback", "text": None, "by": by, "created_at": now()})

    def once(db: Database) -> None:
        seen = db.execute("select 1 from reviews where node_id = ? and by = ? and decision = 'rollback' limit 1",
                          [row["node_id"], row["by"]]).fetchone()
        if seen is None:
            db.table("reviews").insert(row)

    store._writes().submit(once, f"roll back of {node_id}")


# ------------------------------------------------------------------ the LLM ledger and cache

_LEDGER_COLUMNS = ("ts", "role", "model", "scope_kind", "scope_id", "phase", "prompt_tokens", "completion_tokens",
                   "cost", "latency_ms", "cache_hit", "error", "cache_key", "started_at", "ended_at", "queue_ms",
                   "task_id", "epoch", "sample")
_LEDGER_INSERT = (f"insert into ledger ({', '.join(_LEDGER_COLUMNS)}) "
                  f"values ({', '.join('?' * len(_LEDGER_COLUMNS))})")
_CACHE_INSERT = "insert or replace into cache (key, model, created_at, response_json) values (?, ?, ?, ?)"


def _ledger_row(e: LedgerEntry) -> dict[str, Any]:
    return encode_row({
        "ts": e.ts, "role": e.role, "model": e.model, "scope_kind": e.scope.kind, "scope_id": e.scope.id,
        "phase": e.scope.phase, "prompt_tokens": e.prompt_tokens, "completion_tokens": e.completion_tokens,
        "cost": e.cost, "latency_ms": e.latency_ms, "cache_hit": int(e.cache_hit), "error": e.error,
        "cache_key": e.cache_key, "started_at": e.started_at, "ended_at": e.ended_at, "queue_ms": e.queue_ms,
        "task_id": e.scope.task_id, "epoch": e.scope.epoch, "sample": e.sample})


def ledger_entry(store: Store, e: LedgerEntry) -> None:
    """An LLM call that brought no new answer (a cache hit, an error): queued."""
    store._writes().insert("ledger", _ledger_row(e))


def llm_call(store: Store, e: LedgerEntry, response: dict[str, Any]) -> None:
    """A fresh answer: its ledger row and its cache row, committed before this returns, so a
    call whose answer was used is never paid for twice, even if the process is killed right
    after. ``store.cache_get`` sees the answer from the moment it is queued. The cached
    answer is masked like every other write: a key a model echoes is not stored."""
    ledger = _ledger_row(e)
    text = json.dumps(redaction.scrub_value(response), ensure_ascii=False)
    cache = (e.cache_key, redaction.scrub(e.model), ledger["ts"], text)

    def ledger_and_cache(db: Database) -> None:
        # plain statements: sqlite-utils' insert inspects the table on every call
        db.execute(_LEDGER_INSERT, [ledger[c] for c in _LEDGER_COLUMNS])
        db.execute(_CACHE_INSERT, cache)

    # waits for this call's own rows only: concurrent calls share one commit
    store._writes().put_pending("cache", e.cache_key, text, ledger_and_cache, f"ledger and cache of {e.role} call",
                                wait=True)
