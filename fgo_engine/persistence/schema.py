"""The session file's schema: its tables, the migrations between versions, the version check.

Columns ending in ``_json`` hold JSON text; booleans are 0/1; timestamps are ISO-8601 UTC
text. Every file starts with ``PRAGMA application_id`` so a half-made file is still ours.
"""
from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from sqlite_utils import Database

from fgo_engine.errors import IncompleteSessionError, NotASessionError, SchemaTooNewError, SessionError

__all__ = ["APPLICATION_ID", "MIGRATIONS", "SCHEMA_VERSION", "SESSION_STATUSES", "TABLES", "apply_migrations",
           "read_version"]

SESSION_STATUSES = frozenset(
    {"new", "running", "paused", "cancelled", "failed", "done", "budget"}
)
# PRAGMA application_id of every session file ("FGOS"): read before anything else is.
APPLICATION_ID = 0x46474F53
# Every table of the schema: only the persistence package names them.
TABLES = frozenset({"meta", "session", "tasks", "subsets", "modules", "trajectories", "critiques", "epochs",
                    "merge_nodes", "reviews", "ledger", "cache", "events"})


def one_line(text: object) -> str:
    return " ".join(str(text).split())


def _migrate_to_v1(db: Database) -> None:
    """The first schema. Tables are explicit so a typo'd column fails loudly."""
    db.create_table("meta", {"key": str, "value": str}, pk="key")
    db.create_table(
        "session",
        {
            "id": int, "name": str, "suite": str, "config_json": str, "status": str,
            "created_at": str, "updated_at": str, "best_score": float,
            "final_module_id": str, "error": str,
        },
        pk="id",
        defaults={"status": "new"},
    )
    db.create_table(
        "tasks",
        {"id": str, "split": str, "category": str, "input": str, "expected": str,
         "meta_json": str},
        pk="id",
    )
    db.create_table(
        "subsets",
        {"id": int, "name": str, "task_ids_json": str, "status": str,
         "best_module_id": str, "best_score": float},
        pk="id",
    )
    db.create_table(
        "modules",
        {"id": str, "kind": str, "text": str, "parent_id": str, "origin": str,
         "subset_id": int, "node_id": str, "epoch": int, "score": float, "adopted": int,
         "note": str, "created_at": str},
        pk="id",
    )
    db.create_table(
        "trajectories",
        {"id": str, "task_id": str, "module_id": str, "phase": str, "subset_id": int,
         "node_id": str, "epoch": int, "steps_json": str, "answer": str, "success": int,
         "score": float, "error": str, "created_at": str},
        pk="id",
    )
    db.create_table(
        "critiques",
        {"id": str, "trajectory_id": str, "task_id": str, "module_id": str,
         "subset_id": int, "epoch": int, "correct": int, "failure": str, "pattern": str,
         "suggestion": str, "raw": str, "parsed": int, "created_at": str},
        pk="id",
    )
    db.create_table(
        "epochs",
        {"id": str, "subset_id": int, "epoch": int, "module_id": str,
         "candidate_module_id": str, "score": float, "candidate_score": float,
         "adopted": int, "note": str, "created_at": str},
        pk="id",
    )
    db.create_table(
        "merge_nodes",
        {"id": str, "parent_id": str, "depth": int, "child_ids_json": str,
         "subset_ids_json": str, "task_ids_json": str, "status": str,
         "proposed_module_id": str, "module_id": str, "score_before": float,
         "score_after": float, "scores_json": str, "prompt_tokens": int,
         "completion_tokens": int, "created_at": str, "updated_at": str},
        pk="id",
    )
    # INTEGER PRIMARY KEY aliases the rowid: SQLite assigns ids on insert.
    db.create_table(
        "reviews",
        {"id": int, "node_id": str, "decision": str, "text": str, "by": str,
         "created_at": str},
        pk="id",
    )
    db.create_table(
        "ledger",
        {"id": int, "ts": str, "role": str, "model": str, "scope_kind": str,
         "scope_id": str, "phase": str, "prompt_tokens": int, "completion_tokens": int,
         "cost": float, "latency_ms": float, "cache_hit": int, "error": str,
         "cache_key": str},
        pk="id",
    )
    db.create_table(
        "cache",
        {"key": str, "model": str, "response_json": str, "created_at": str},
        pk="key",
    )
    db.create_table(
        "events",
        {"id": int, "ts": str, "kind": str, "payload_json": str},
        pk="id",
    )
    indexes: dict[str, list[list[str]]] = {
        "tasks": [["split"], ["category"]],
        "modules": [["parent_id"], ["subset_id", "epoch"], ["node_id"]],
        "trajectories": [["task_id"], ["module_id"], ["subset_id", "epoch"], ["node_id"],
                         ["phase"]],
        "critiques": [["trajectory_id"], ["task_id"], ["module_id"], ["subset_id", "epoch"]],
        "epochs": [["subset_id", "epoch"], ["module_id"]],
        "merge_nodes": [["parent_id"], ["module_id"]],
        "reviews": [["node_id"]],
        "ledger": [["scope_kind", "scope_id"], ["role"], ["phase"], ["cache_key"]],
        "events": [["kind"]],
    }
    for table, column_sets in indexes.items():
        for columns in column_sets:
            db.table(table).create_index(columns, if_not_exists=True)


def _migrate_to_v2(db: Database) -> None:
    """Timing and provenance for the critical path; adaptive backtest figures per merge node.

    ledger: started_at/ended_at (unix seconds, sub-millisecond), queue_ms (waiting for a
    model slot, apart from latency_ms), and the task/epoch/sample the call served.
    merge_nodes: how the node was backtested (full | adaptive), on how many tasks, and the
    confidence interval of merged minus best child on the sample."""
    for col, typ in (("started_at", float), ("ended_at", float), ("queue_ms", float), ("task_id", str),
                     ("epoch", int), ("sample", int)):
        db.table("ledger").add_column(col, typ)
    for col, typ in (("backtest_mode", str), ("backtest_tasks", int), ("ci_low", float), ("ci_high", float),
                     ("child_score", float)):
        db.table("merge_nodes").add_column(col, typ)
    db.table("ledger").create_index(["started_at"], if_not_exists=True)


# MIGRATIONS[i] takes a schema at version i to version i + 1. To add v3, append a
# function; SCHEMA_VERSION follows, and older files are upgraded on open.
MIGRATIONS: list[Callable[[Database], None]] = [_migrate_to_v1, _migrate_to_v2]
SCHEMA_VERSION: int = len(MIGRATIONS)


def apply_migrations(db: Database, from_version: int) -> None:
    """One atomic block per step, so a crash leaves a file at a whole version."""
    for version in range(from_version, SCHEMA_VERSION):
        with db.atomic():
            MIGRATIONS[version](db)
            db.table("meta").insert({"key": "schema_version", "value": str(version + 1)},
                                    replace=True)



def read_version(conn: sqlite3.Connection, path: Path) -> int:
    """meta.schema_version, or SessionError if this is not an FGO session file.

    The application id decides first: another application's id means not ours; ours
    without a schema means an interrupted creation; 0 is accepted only for a complete
    session written before application ids (meta with schema_version and app_version,
    and a session table)."""
    try:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        if app_id not in (0, APPLICATION_ID):
            raise NotASessionError(f"{path} is not an FGO session (another application's SQLite file, "
                                   f"application_id {app_id:#x}); it was left unchanged")
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        row = keys = None
        if "meta" in tables:
            keys = {r[0]: r[1] for r in conn.execute(
                "SELECT key, value FROM meta WHERE key IN ('schema_version', 'app_version')")}
            row = (keys["schema_version"],) if "schema_version" in keys else None
    except sqlite3.DatabaseError as exc:
        raise SessionError(f"{path} is not a readable SQLite file: {one_line(exc)}") from exc
    if app_id == APPLICATION_ID and row is None:
        raise IncompleteSessionError(f"{path} is an incomplete session file (its creation was interrupted); "
                                     f"`fgo sessions delete {path}` removes it")
    if app_id == 0 and (row is None or "app_version" not in (keys or {}) or "session" not in tables):
        raise NotASessionError(f"{path} is not an FGO session; it was left unchanged")
    assert row is not None
    try:
        version = int(row[0])
    except (TypeError, ValueError):
        raise SessionError(f"{path} has a corrupt schema_version {row[0]!r}") from None
    if version > SCHEMA_VERSION:
        raise SchemaTooNewError(
            f"{path} uses session schema v{version}, newer than this FGO Studio "
            f"(v{SCHEMA_VERSION}); upgrade FGO Studio to open it"
        )
    return version

