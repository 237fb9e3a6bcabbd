"""The rows the method writes, built in one place.

Ids are deterministic (a replay after a crash re-creates the same rows, written with
``replace``), and every row that records when it was made gets the one timestamp format.
Reads are in :mod:`fgo_engine.persistence.queries`.
"""
from __future__ import annotations

from typing import Any

from fgo_engine.timeutil import now
from fgo_engine.types import IF_NOT_WORSE, Critique, Module, ReviewDecision, Scope, Task, Trajectory  # noqa: F401


def _flag(value: bool | None) -> int | None:
    return None if value is None else int(value)


def task(t: Task, split: str) -> dict[str, Any]:
    return {"id": t.id, "split": split, "category": t.category, "input": t.input, "expected": t.expected,
            "meta_json": t.meta}


def module(module_id: str, m: Module, *, origin: str, parent_id: str | None = None, subset_id: int | None = None,
           node_id: str | None = None, epoch: int | None = None, score: float | None = None,
           adopted: bool | None = None, note: str = "") -> dict[str, Any]:
    return {"id": module_id, "kind": m.kind, "text": m.text, "parent_id": parent_id, "origin": origin,
            "subset_id": subset_id, "node_id": node_id, "epoch": epoch, "score": score,
            "adopted": _flag(adopted), "note": note, "created_at": now()}


def trajectory(scope: Scope, epoch: int, module_id: str, t: Task, tr: Trajectory,
               subset_id: int | None) -> dict[str, Any]:
    return {"id": f"{scope.phase}:{scope.kind}{scope.id}:{epoch}:{module_id}:{t.id}", "task_id": t.id,
            "module_id": module_id, "phase": scope.phase, "subset_id": subset_id,
            "node_id": scope.id if scope.kind == "node" else None, "epoch": epoch,
            "steps_json": [[s.kind, s.text] for s in tr.steps], "answer": tr.answer,
            "success": int(tr.success), "score": tr.score, "error": tr.error, "created_at": now()}


def critique(scope: Scope, epoch: int, module_id: str, t: Task, c: Critique,
             subset_id: int | None) -> dict[str, Any]:
    return {"id": f"{scope.kind}{scope.id}:{epoch}:{module_id}:{t.id}", "trajectory_id": None, "task_id": t.id,
            "module_id": module_id, "subset_id": subset_id, "epoch": epoch, "correct": int(c.correct),
            "failure": c.failure, "pattern": c.pattern, "suggestion": c.suggestion, "raw": c.raw,
            "parsed": int(c.parsed), "created_at": now()}


def epoch(scope_kind: str, scope_id: str, step: int, *, subset_id: int | None, module_id: str,
          candidate_id: str | None, score: float, candidate_score: float | None, adopted: bool | None,
          label: str) -> dict[str, Any]:
    return {"id": f"{scope_kind}{scope_id}:{step}", "subset_id": subset_id, "epoch": step, "module_id": module_id,
            "candidate_module_id": candidate_id, "score": score, "candidate_score": candidate_score,
            "adopted": _flag(adopted), "note": label, "created_at": now()}


def subset(subset_id: int, name: str, task_ids: list[str]) -> dict[str, Any]:
    return {"id": subset_id, "name": name, "task_ids_json": task_ids, "status": "pending", "best_module_id": None,
            "best_score": None}


def merge_node(node_id: str, child_ids: list[str], subset_ids: list[int], task_ids: list[str],
               score_before: float) -> dict[str, Any]:
    """A merge node as it starts: merging, no parent yet."""
    return {"id": node_id, "parent_id": None, "depth": 0, "child_ids_json": child_ids,
            "subset_ids_json": subset_ids, "task_ids_json": task_ids, "score_before": score_before,
            "status": "merging", "created_at": now(), "updated_at": now()}


def review(node_id: str, decision: ReviewDecision) -> dict[str, Any]:
    return {"node_id": node_id, "decision": decision.decision, "text": decision.text, "by": decision.by,
            "created_at": now()}


def event(kind: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {"ts": now(), "kind": kind, "payload_json": payload}
