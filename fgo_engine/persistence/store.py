"""One SQLite file per session, written by a single writer thread.

Why this shape: several writer connections lock each other out ("database is
locked") even in WAL mode, while one writer thread fed by a queue never does. So
every write is enqueued and returns at once; the writer thread owns the only
writing connection and commits what it finds in the queue in one transaction.
Reads go through a per-thread read-only connection and see committed data only.

Rows, not pickles: a session can be rebuilt, resumed, queried with any SQLite
tool and exported. Columns ending in ``_json`` hold JSON text; booleans are 0/1;
timestamps are ISO-8601 UTC text.
"""
from __future__ import annotations

import atexit
import fcntl
import itertools
import json
import os
import queue
import socket
import sqlite3
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils
from sqlite_utils import Database
from sqlite_utils.db import NotFoundError

from fgo_engine import __version__ as APP_VERSION
from fgo_engine import redaction
from fgo_engine.errors import (
    IncompleteSessionError,
    NotASessionError,
    SchemaTooNewError,
    SessionError,
    SessionLockedError,
)
from fgo_engine.timeutil import now

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "SESSION_STATUSES",
    "Store",
    "utc_now",
]

SESSION_STATUSES = frozenset(
    {"new", "running", "paused", "cancelled", "failed", "done", "budget"}
)

# The writer commits at most this many queued writes in one transaction: large
# enough to amortise the commit, small enough that readers see progress often.
_MAX_BATCH = 1000
_WRITER_BUSY_MS = 30_000
_READER_BUSY_MS = 5_000


utc_now = now  # the one timestamp helper (fgo_engine.timeutil)
# PRAGMA application_id of every session file ("FGOS"): read before anything else is.
APPLICATION_ID = 0x46474F53


# --------------------------------------------------------------------------- schema


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


def _apply_migrations(db: Database, from_version: int) -> None:
    """One atomic block per step, so a crash leaves a file at a whole version."""
    for version in range(from_version, SCHEMA_VERSION):
        with db.atomic():
            MIGRATIONS[version](db)
            db.table("meta").insert({"key": "schema_version", "value": str(version + 1)},
                                    replace=True)


# --------------------------------------------------------------------------- helpers


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _encode_row(row: dict[str, Any]) -> dict[str, Any]:
    """Copy a row, JSON-encoding `_json` columns, so later caller mutations don't leak in."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if key.endswith("_json") and value is not None and not isinstance(value, str):
            value = json.dumps(redaction.scrub_value(value), ensure_ascii=False)
        elif isinstance(value, str):
            value = redaction.scrub(value)  # no secret the process knows reaches the file
        elif isinstance(value, bool):
            value = int(value)
        out[key] = value
    return out


def _decode_row(row: dict[str, Any]) -> dict[str, Any]:
    for key, value in row.items():
        if key.endswith("_json") and isinstance(value, str):
            try:
                row[key] = json.loads(value)
            except ValueError:
                pass  # not JSON after all: hand back the text rather than fail a read
    return row


def _scrub_secrets(value: Any) -> Any:
    """API keys are never stored, even when a caller passes a config that holds one."""
    if isinstance(value, dict):
        return {k: _scrub_secrets(v) for k, v in value.items()
                if not (isinstance(k, str) and redaction.is_secret_name(k))}
    if isinstance(value, (list, tuple)):
        return [_scrub_secrets(v) for v in value]
    return value


def _ro_uri(path: Path, *, immutable: bool = False) -> str:
    return path.resolve().as_uri() + ("?immutable=1" if immutable else "?mode=ro")


def _connect_readonly(path: Path) -> sqlite3.Connection:
    """A connection that cannot write the database file.

    mode=ro may create the -wal/-shm side files of a WAL database; in a read-only
    folder that fails, and then immutable=1 is the only way in.
    """
    conn = sqlite3.connect(_ro_uri(path), uri=True, check_same_thread=False)
    try:
        conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
    except sqlite3.OperationalError:
        conn.close()
        conn = sqlite3.connect(_ro_uri(path, immutable=True), uri=True,
                               check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout={_READER_BUSY_MS}")
    return conn


def _read_version(conn: sqlite3.Connection, path: Path) -> int:
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
        raise SessionError(f"{path} is not a readable SQLite file: {_one_line(exc)}") from exc
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


def _probe(path: Path) -> int:
    """Check a file without changing it or creating anything next to it.

    With no -wal file nobody has the database open, so immutable=1 reads it
    without creating side files; with one, mode=ro shares the writer's files.
    """
    if not path.exists():
        raise SessionError(f"no session file at {path}")
    if not path.is_file():
        raise SessionError(f"{path} is not a file")
    if path.stat().st_size == 0 and not Path(f"{path}-wal").exists():
        raise IncompleteSessionError(f"{path} is an incomplete session file (empty: its creation was interrupted); "
                                     f"`fgo sessions delete {path}` removes it")
    wal = Path(f"{path}-wal")
    try:
        conn = sqlite3.connect(_ro_uri(path, immutable=not wal.exists()), uri=True)
    except sqlite3.Error as exc:
        raise SessionError(f"cannot open {path}: {_one_line(exc)}") from exc
    try:
        return _read_version(conn, path)
    finally:
        conn.close()


# --------------------------------------------------------------------------- one writer process


class _SessionLock:
    """One writing process per session file: ``fcntl.flock`` on ``<session>.lock``, which
    holds the holder's pid and host. The kernel drops the lock when its process dies,
    so a stale lock file from a killed process is simply taken over. Stores of one
    process share the lock (the app reopens a session before closing the old one)."""

    _held: dict[str, list[int]] = {}  # realpath -> [fd, users]
    _mutex = threading.Lock()

    @staticmethod
    def path_for(path: Path) -> Path:
        return Path(f"{path}.lock")

    @classmethod
    def holder(cls, path: Path) -> str | None:
        """Who holds the lock ("pid 12 on host h"), or None when nobody does."""
        lock = cls.path_for(path)
        try:
            fd = os.open(lock, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return cls._describe(fd)
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    @staticmethod
    def _describe(fd: int) -> str:
        try:
            info = json.loads(os.pread(fd, 4096, 0).decode("utf-8") or "{}")
            return f"pid {int(info['pid'])} on host {info['host']}"
        except (ValueError, KeyError, TypeError, OSError):
            return "another process"

    @classmethod
    def acquire(cls, path: Path) -> str:
        key = os.path.realpath(path)
        lock = cls.path_for(Path(key))
        with cls._mutex:
            if key in cls._held:
                cls._held[key][1] += 1
                return key
            while True:
                try:
                    fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
                except OSError as exc:
                    raise SessionError(f"cannot lock {path} for writing ({lock}): {_one_line(exc)}") from exc
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    who = cls._describe(fd)
                    os.close(fd)
                    raise SessionLockedError(
                        f"{path} is in use by {who}; wait for it to finish (the app can still view it)") from None
                try:  # the holder may have removed the file while we waited: lock the current one
                    current = os.stat(lock)
                    mine = os.fstat(fd)
                    same = (current.st_ino, current.st_dev) == (mine.st_ino, mine.st_dev)
                except FileNotFoundError:
                    same = False
                if not same:
                    os.close(fd)
                    continue
                os.ftruncate(fd, 0)
                os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                          "since": utc_now()}).encode(), 0)
                cls._held[key] = [fd, 1]
                return key

    @classmethod
    def release(cls, key: str) -> None:
        with cls._mutex:
            entry = cls._held.get(key)
            if entry is None:
                return
            entry[1] -= 1
            if entry[1] > 0:
                return
            del cls._held[key]
            try:
                os.unlink(cls.path_for(Path(key)))  # while still holding it: see acquire()
            except OSError:
                pass
            os.close(entry[0])


def session_holder(path: str | Path) -> str | None:
    """Which process is writing a session ("pid 12 on host h"), or None."""
    return _SessionLock.holder(Path(path))


def lock_file(path: str | Path) -> Path:
    return _SessionLock.path_for(Path(path))


RESERVE_BYTES = 256 * 1024


def reserve_file(path: str | Path) -> Path:
    """Space held beside a session so that, on a full disk, the stop can still be recorded."""
    p = Path(path)
    return p.with_name(p.name + ".reserve")


def _hold_reserve(path: Path) -> None:
    """Best effort: a disk already too full for it just runs without one."""
    r = reserve_file(path)
    if r.exists() and r.stat().st_size >= RESERVE_BYTES:
        return
    try:
        with open(r, "wb") as f:
            f.write(b"\0" * RESERVE_BYTES)
    except OSError:
        r.unlink(missing_ok=True)


def is_disk_full(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "disk is full" in text or "no space left" in text


# --------------------------------------------------------------------------- writer ops


@dataclass
class _Op:
    """One queued write. `after` runs on the writer once the write is settled."""

    fn: Callable[[Database], object]  # its return value is ignored
    what: str
    after: Callable[[], None] | None = None
    # set for a write someone waits on (Store.commit): once its batch is committed or lost
    done: threading.Event | None = None
    error: BaseException | None = None


class _Barrier:
    def __init__(self) -> None:
        self.done = threading.Event()


class _BatchLost(SessionError):
    """A waited-on write whose transaction was rolled back by another write in its batch."""


_STOP = object()

_live_stores: weakref.WeakSet[Store] = weakref.WeakSet()


@atexit.register
def _close_live_stores() -> None:
    """The writer is a daemon thread: flush what is queued when the interpreter exits."""
    for store in list(_live_stores):
        try:
            store.close()
        except Exception as exc:  # noqa: BLE001 - nowhere left to raise to
            print(f"fgo: {_one_line(exc)}", file=sys.stderr)


# --------------------------------------------------------------------------- store


class Store:
    """A session file. Thread-safe: writes are queued, reads use per-thread connections."""

    path: Path

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        """Use `Store.create` or `Store.open`; this only sets up the empty object."""
        self.path = Path(path)
        self.readonly = readonly
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()  # guards _closed + enqueue, _pending, _errors
        self._close_lock = threading.Lock()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._errors: list[tuple[str, BaseException]] = []
        # Writes enqueued but not yet committed, so a cache hit is never missed.
        self._pending: dict[tuple[str, str], tuple[int, str]] = {}
        self._tokens = itertools.count(1)
        self._local = threading.local()
        self._readers: list[tuple[weakref.ref[threading.Thread], Database]] = []
        self._readers_lock = threading.Lock()
        # reads in flight: close() waits for them before it closes their connections (closing
        # a connection another thread is reading from crashes the process inside sqlite)
        self._reads = threading.Condition()
        self._reads_in_flight = 0
        self._tables: set[str] = set()  # writer-thread only
        self._lock_key: str | None = None

    # ---------------------------------------------------------------- lifecycle

    @classmethod
    def create(cls, path: str | Path, *, name: str, config: dict) -> Store:
        """A new session file; refuses to overwrite one that exists."""
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SessionError(f"cannot create the folder {path.parent}: {exc.strerror or _one_line(exc)}") from None
        try:
            # "x" claims the path atomically; SQLite treats an empty file as an empty DB.
            with open(path, "x"):
                pass
        except FileExistsError:
            raise SessionError(f"a session file already exists at {path}") from None
        except OSError as exc:
            raise SessionError(f"cannot create {path}: {_one_line(exc)}") from exc
        now = utc_now()
        clean_config = _scrub_secrets(config)

        def init(db: Database) -> None:
            db.execute(f"PRAGMA application_id = {APPLICATION_ID}")  # first: a half-made file is still ours
            db.enable_wal()
            with db.atomic():
                _apply_migrations(db, 0)
                db.table("meta").insert_all(
                    [{"key": "created_at", "value": now},
                     {"key": "app_version", "value": APP_VERSION}],
                    replace=True,
                )
                db.table("session").insert(_encode_row({
                    "id": 1, "name": name, "suite": clean_config.get("suite"),
                    "config_json": clean_config, "status": "new",
                    "created_at": now, "updated_at": now,
                }))

        store = cls(path)
        try:
            store._lock_key = _SessionLock.acquire(path)
            _hold_reserve(Path(path))
            store._start_writer(init)
        except BaseException:
            store._unlock()
            for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                leftover.unlink(missing_ok=True)
            raise
        return store

    @classmethod
    def open(cls, path: str | Path, *, readonly: bool = False) -> Store:
        """An existing session, migrated to the current schema unless readonly.

        A readonly store of an older schema is not migrated: reads see the old tables.
        """
        path = Path(path)
        _probe(path)
        store = cls(path, readonly=readonly)
        if readonly:
            return store

        def init(db: Database) -> None:
            # Re-read on the writing connection: another process may have moved on.
            version = _read_version(db.conn, path)
            if db.execute("PRAGMA application_id").fetchone()[0] == 0:  # written before ids
                db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            db.enable_wal()
            _apply_migrations(db, version)

        store._lock_key = _SessionLock.acquire(path)
        _hold_reserve(Path(path))
        try:
            store._start_writer(init)
        except BaseException:
            store._unlock()
            raise
        return store

    def _unlock(self) -> None:
        key, self._lock_key = self._lock_key, None
        if key is not None:
            _SessionLock.release(key)

    def _start_writer(self, init: Callable[[Database], None]) -> None:
        started = threading.Event()
        failure: list[BaseException] = []
        self._thread = threading.Thread(
            target=self._writer_main, args=(init, started, failure),
            name=f"fgo-store-writer:{self.path.name}", daemon=True,
        )
        self._thread.start()
        started.wait()
        if failure:
            self._thread.join()
            self._thread = None
            self._closed = True
            exc = failure[0]
            if isinstance(exc, SessionError):
                raise exc
            raise SessionError(f"cannot open {self.path}: {_one_line(exc)}") from exc
        _live_stores.add(self)

    def flush(self, timeout: float | None = None) -> None:
        """Block until every write queued so far is committed; raise what the writer hit."""
        if self._thread is not None and threading.current_thread() is self._thread:
            raise SessionError("flush() called from the store's writer thread would deadlock")
        barrier = _Barrier()
        with self._lock:
            thread = None if self._closed else self._thread
            if thread is not None:
                self._queue.put(barrier)
        if thread is not None:
            self._wait(thread, barrier.done, timeout)
        self._raise_errors()

    def commit(self, fn: Callable[[Database], None], timeout: float | None = None) -> None:
        """Run ``fn`` on the writer (like :meth:`write`) and block until its own batch is
        committed; raise if that write failed or its batch was lost. Unlike :meth:`flush`
        this waits for nothing queued after it and raises no other write's error, so many
        threads waiting at once share one commit (the writer commits everything queued in
        one transaction and wakes all of them)."""
        if self._thread is not None and threading.current_thread() is self._thread:
            raise SessionError("commit() called from the store's writer thread would deadlock")
        done = threading.Event()
        op = _Op(fn, f"write {getattr(fn, '__name__', 'fn')}", done=done)
        thread = self._enqueue(op)
        self._wait(thread, done, timeout)
        if op.error is not None:
            raise SessionError(f"write to {self.path} failed: {op.what}: {_one_line(op.error)}") from op.error

    def _wait(self, thread: threading.Thread, done: threading.Event, timeout: float | None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not done.wait(0.25 if deadline is None else
                                    max(0.0, min(0.25, deadline - time.monotonic()))):
            if not thread.is_alive():
                raise SessionError(f"the writer thread for {self.path} has stopped")
            if deadline is not None and time.monotonic() >= deadline:
                raise SessionError(f"timed out after {timeout}s waiting for writes to "
                                   f"{self.path}")

    def _raise_errors(self) -> None:
        with self._lock:
            errors, self._errors = self._errors, []
        if errors:
            what, exc = errors[0]
            more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
            raise SessionError(
                f"write to {self.path} failed: {what}: {_one_line(exc)}{more}"
            ) from exc

    def close(self) -> None:
        """Flush, stop the writer, close every connection. Safe to call twice.

        Readers close before the writer so the writer's connection is the last one
        and checkpoints the WAL back into the main file.
        """
        with self._close_lock:
            with self._lock:
                first = not self._closed
                self._closed = True  # no new writes or readers from here on
                thread, self._thread = self._thread, None
            if first:
                with self._reads:  # no read starts now (closed); let those under way finish
                    self._reads.wait_for(lambda: self._reads_in_flight == 0, timeout=30)
                with self._readers_lock:
                    readers, self._readers = self._readers, []
                for _, db in readers:
                    try:
                        db.close()
                    except sqlite3.Error:
                        pass
                _live_stores.discard(self)
            if thread is not None:
                self._queue.put(_STOP)  # after every write already queued
                if thread is not threading.current_thread():
                    thread.join()
            if thread is None or thread is not threading.current_thread():
                self._unlock()
        self._raise_errors()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = "readonly" if self.readonly else "rw"
        return f"Store({str(self.path)!r}, {mode}{', closed' if self._closed else ''})"

    # ---------------------------------------------------------------- writer thread

    def _writer_main(self, init: Callable[[Database], None], started: threading.Event,
                     failure: list[BaseException]) -> None:
        db: Database | None = None
        try:
            db = Database(self.path)
            db.execute(f"PRAGMA busy_timeout={_WRITER_BUSY_MS}")
            init(db)
            # WAL + NORMAL: a commit is durable the moment it returns against a crash or kill of
            # this process (the OS holds the WAL), without an fsync per commit; only a power
            # loss or OS crash may roll back the last commits (the file stays consistent).
            db.execute("PRAGMA synchronous=NORMAL")
            self._tables = set(db.table_names())
        except BaseException as exc:  # noqa: BLE001 - handed to the opening thread
            failure.append(exc)
            if db is not None:
                db.close()
            started.set()
            return
        started.set()
        try:
            stop = False
            while not stop:
                items = [self._queue.get()]
                while len(items) < _MAX_BATCH:
                    try:
                        items.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                ops = [item for item in items if isinstance(item, _Op)]
                if ops:
                    self._apply(db, ops)
                for item in items:
                    if isinstance(item, _Barrier):
                        item.done.set()
                    elif item is _STOP:
                        stop = True
        finally:
            db.close()

    def _apply(self, db: Database, ops: list[_Op]) -> None:
        """Commit a batch at once; each op in its own savepoint so one bad write
        costs only itself. A waited-on op's error goes to its waiter, not to flush();
        waiters are woken only after the commit (or once the batch is known lost)."""
        lost: BaseException | None = None
        try:
            with db.atomic():
                for op in ops:
                    try:
                        with db.atomic():
                            op.fn(db)
                    except Exception as exc:  # noqa: BLE001 - recorded, raised by flush
                        if op.done is not None:
                            op.error = exc
                        else:
                            self._record(op.what, exc)
                        if not db.conn.in_transaction:
                            lost = _BatchLost("transaction aborted; batch lost")
                            self._record(f"{len(ops)} queued writes", lost)
                            break
        except Exception as exc:  # noqa: BLE001 - e.g. COMMIT failed: the batch is lost
            lost = exc
            self._record(f"commit of {len(ops)} writes", exc)
        finally:
            for op in ops:
                if op.after is not None:
                    op.after()
                if op.done is not None:
                    if lost is not None and op.error is None:
                        op.error = lost
                    op.done.set()

    def _record(self, what: str, exc: BaseException) -> None:
        with self._lock:
            self._errors.append((what, exc))

    def _require_table(self, db: Database, table: str) -> None:
        """sqlite-utils would create a missing table on insert; a typo must fail instead."""
        if table not in self._tables:
            self._tables = set(db.table_names())
            if table not in self._tables:
                raise SessionError(f"no table {table!r} in session {self.path}")

    def _enqueue(self, op: _Op) -> threading.Thread:
        """Queue a write; the writer thread that will commit it."""
        if self.readonly:
            raise SessionError(f"session {self.path} is open read-only")
        with self._lock:
            if self._closed or self._thread is None:
                raise SessionError(f"session {self.path} is closed")
            self._queue.put(op)
            return self._thread

    # ---------------------------------------------------------------- writes

    def insert(self, table: str, row: dict, *, replace: bool = False) -> None:
        """Queue one row; `_json` columns are encoded now so errors show at the call."""
        encoded = _encode_row(row)

        def fn(db: Database) -> None:
            self._require_table(db, table)
            db.table(table).insert(encoded, replace=replace)

        self._enqueue(_Op(fn, f"insert into {table}"))

    def insert_many(self, table: str, rows: Iterable[dict], *, replace: bool = False) -> None:
        """Queue many rows as one write (committed together)."""
        encoded = [_encode_row(r) for r in rows]
        if not encoded:
            return

        def fn(db: Database) -> None:
            self._require_table(db, table)
            db.table(table).insert_all(encoded, replace=replace)

        self._enqueue(_Op(fn, f"insert of {len(encoded)} rows into {table}"))

    def update(self, table: str, pk: Any, values: dict) -> None:
        """Queue an update of one row; a missing row is an error raised by flush()."""
        encoded = _encode_row(values)

        def fn(db: Database) -> None:
            self._require_table(db, table)
            db.table(table).update(pk, encoded)

        self._enqueue(_Op(fn, f"update of {table} {pk!r}"))

    def write(self, fn: Callable[[Database], None]) -> None:
        """Queue arbitrary grouped writes; `fn` runs on the writer thread in db.atomic()."""
        self._enqueue(_Op(fn, f"write {getattr(fn, '__name__', 'fn')}"))

    def _put_pending(self, table: str, key: str, value: str, fn: Callable[[Database], object],
                     what: str) -> None:
        token = next(self._tokens)

        def settled() -> None:
            with self._lock:
                if self._pending.get((table, key), (None,))[0] == token:
                    del self._pending[(table, key)]

        if self.readonly:
            raise SessionError(f"session {self.path} is open read-only")
        with self._lock:
            if self._closed:
                raise SessionError(f"session {self.path} is closed")
            self._pending[(table, key)] = (token, value)
            self._queue.put(_Op(fn, what, settled))

    def meta_set(self, key: str, value: str) -> None:
        """Queue a meta value; meta_get sees it at once."""
        value = str(value)
        self._put_pending(
            "meta", key, value,
            lambda db: db.table("meta").insert({"key": key, "value": value}, replace=True),
            f"meta_set {key!r}",
        )

    def cache_put(self, key: str, model: str, response: dict) -> None:
        """Queue a cached LLM response; cache_get sees it at once."""
        text = json.dumps(response, ensure_ascii=False)
        row = {"key": key, "model": model, "response_json": text, "created_at": utc_now()}
        self._put_pending(
            "cache", key, text,
            lambda db: db.table("cache").insert(row, replace=True),
            f"cache_put {key!r}",
        )

    def release_reserve(self) -> None:
        """Give the space held beside the session back to the disk (it is full)."""
        reserve_file(self.path).unlink(missing_ok=True)

    def set_status(self, status: str) -> None:
        """Record the run's state; updated_at moves with it."""
        if status not in SESSION_STATUSES:
            raise ValueError(f"unknown session status {status!r}; "
                             f"expected one of {sorted(SESSION_STATUSES)}")
        self.update("session", 1, {"status": status, "updated_at": utc_now()})

    # ---------------------------------------------------------------- reads

    def _reader(self) -> Database:
        """This thread's read-only connection; sqlite connections must not cross threads."""
        if self._closed:
            raise SessionError(f"session {self.path} is closed")
        db = getattr(self._local, "db", None)
        if db is None:
            try:
                db = Database(_connect_readonly(self.path))
            except sqlite3.Error as exc:
                raise SessionError(f"cannot read {self.path}: {_one_line(exc)}") from exc
            self._local.db = db
            with self._readers_lock:
                # Close connections of threads that have ended so pools don't leak them.
                alive = []
                for ref, other in self._readers:
                    owner = ref()
                    if owner is None or not owner.is_alive():
                        other.close()
                    else:
                        alive.append((ref, other))
                alive.append((weakref.ref(threading.current_thread()), db))
                self._readers = alive
        return db

    def _read(self, what: str, fn: Callable[[Database], Any]) -> Any:
        with self._reads:
            if self._closed:
                raise SessionError(f"session {self.path} is closed")
            self._reads_in_flight += 1
        try:
            return fn(self._reader())
        except SessionError:
            raise
        except (sqlite3.Error, sqlite_utils.db.NoTable) as exc:
            raise SessionError(f"{what} on {self.path} failed: {_one_line(exc)}") from exc
        finally:
            with self._reads:
                self._reads_in_flight -= 1
                self._reads.notify_all()

    def query(self, sql: str, params: tuple | dict = ()) -> list[dict]:
        """Any SELECT, rows as dicts with `_json` columns decoded."""
        def fn(db: Database) -> list[dict]:
            cursor = db.execute(sql, params)
            if cursor.description is None:
                return []
            names = [d[0] for d in cursor.description]
            return [_decode_row(dict(zip(names, r))) for r in cursor.fetchall()]

        return self._read("query", fn)

    def get(self, table: str, pk: Any) -> dict | None:
        """One row by primary key, or None."""
        def fn(db: Database) -> dict | None:
            try:
                return _decode_row(db.table(table).get(pk))
            except NotFoundError:
                if not db[table].exists():
                    raise SessionError(f"no table {table!r} in session {self.path}") from None
                return None

        return self._read(f"get from {table}", fn)

    def rows(self, table: str, where: str | None = None, params: tuple | dict = (),
             order_by: str | None = None) -> list[dict]:
        """Rows of a table, optionally filtered and ordered."""
        def fn(db: Database) -> list[dict]:
            if not db[table].exists():
                raise SessionError(f"no table {table!r} in session {self.path}")
            return [_decode_row(r) for r in
                    db[table].rows_where(where, params or None, order_by=order_by)]

        return self._read(f"rows of {table}", fn)

    def count(self, table: str, where: str | None = None, params: tuple | dict = ()) -> int:
        """Committed rows in a table matching `where`."""
        return self._read(f"count of {table}",
                          lambda db: db[table].count_where(where, params or None))

    def meta_get(self, key: str) -> str | None:
        """A meta value, including one set but not yet committed."""
        with self._lock:
            pending = self._pending.get(("meta", key))
        if pending is not None:
            return pending[1]
        rows = self.query("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0]["value"] if rows else None

    def cache_get(self, key: str) -> dict | None:
        """A cached response, including one put but not yet committed."""
        with self._lock:
            pending = self._pending.get(("cache", key))
        if pending is not None:
            return json.loads(pending[1])
        rows = self.query("SELECT response_json FROM cache WHERE key = ?", (key,))
        return rows[0]["response_json"] if rows else None

    def session_info(self) -> dict:
        """The session row (config decoded)."""
        row = self.get("session", 1)
        if row is None:
            raise SessionError(f"{self.path} has no session row")
        return row
