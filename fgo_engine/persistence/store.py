"""One SQLite file per session: the Store opens or creates it and reads it.

Writes are queued to the session's single writer thread (:mod:`.writer`) by the write
repository (:mod:`.writes`); reads go through a per-thread read-only connection and see
committed data only (plus the pending meta values and cached responses, which readers
must never miss). The schema is in :mod:`.schema`, the lock, the disk reserve and the
read-only probe in :mod:`.files`.

Rows, not pickles: a session can be rebuilt, resumed, queried with any SQLite tool and
exported.
"""
from __future__ import annotations

import atexit
import json
import sqlite3
import sys
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlite_utils
from sqlite_utils import Database
from sqlite_utils.db import NotFoundError

from fgo_engine.errors import SessionError
from fgo_engine.persistence.files import (
    RESERVE_BYTES,
    SQLITE_SIDES,
    SessionLock,
    connect_readonly,
    hold_reserve,
    is_disk_full,
    lock_file,
    probe,
    real_file,
    reserve_file,
    session_holder,
)
from fgo_engine.persistence.schema import (
    APPLICATION_ID,
    MIGRATIONS,
    SCHEMA_VERSION,
    SESSION_STATUSES,
    apply_migrations,
    one_line,
    read_version,
)
from fgo_engine.persistence.writer import Writer, encode_row, scrub_secrets
from fgo_engine.timeutil import now
from fgo_engine.types import VERSION as APP_VERSION

__all__ = [
    "APPLICATION_ID",
    "MIGRATIONS",
    "RESERVE_BYTES",
    "SCHEMA_VERSION",
    "SESSION_STATUSES",
    "Store",
    "is_disk_full",
    "lock_file",
    "reserve_file",
    "session_holder",
    "utc_now",
]

utc_now = now  # the one timestamp helper (fgo_engine.timeutil)


def _decode_row(row: dict[str, Any]) -> dict[str, Any]:
    for key, value in row.items():
        if key.endswith("_json") and isinstance(value, str):
            try:
                row[key] = json.loads(value)
            except ValueError:
                pass  # not JSON after all: hand back the text rather than fail a read
    return row


_live_stores: weakref.WeakSet[Store] = weakref.WeakSet()


@atexit.register
def _close_live_stores() -> None:
    """The writer is a daemon thread: flush what is queued when the interpreter exits."""
    for store in list(_live_stores):
        try:
            store.close()
        except Exception as exc:  # noqa: BLE001 - nowhere left to raise to
            print(f"fgo: {one_line(exc)}", file=sys.stderr)


class Store:
    """A session file. Thread-safe: writes are queued, reads use per-thread connections.

    ``path`` is the name the caller gave (used in messages and for the session's log);
    ``file`` the real file behind it, which every check and connection uses."""

    path: Path

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        """Use `Store.create` or `Store.open`; this only sets up the empty object."""
        self.path = Path(path)
        self.file = real_file(self.path)
        self.readonly = readonly
        self._writer: Writer | None = None  # None: read-only (the write repository's handle)
        self._close_lock = threading.Lock()
        self._closed = False
        self._local = threading.local()
        self._readers: list[tuple[weakref.ref[threading.Thread], Database]] = []
        self._readers_lock = threading.Lock()
        # reads in flight: close() waits for them before it closes their connections (closing
        # a connection another thread is reading from crashes the process inside sqlite)
        self._reads = threading.Condition()
        self._reads_in_flight = 0
        self._lock_key: str | None = None
        self._new_files: list[Path] = []  # the side files this open made (taken back by abandon())

    # ---------------------------------------------------------------- lifecycle

    @classmethod
    def create(cls, path: str | Path, *, name: str, config: dict,
               fill: Callable[[Database], None] | None = None) -> Store:
        """A new session file; refuses to overwrite one that exists. ``fill`` (from the
        write repository) writes the first rows in the creating transaction, so a refused
        input leaves no file behind."""
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SessionError(f"cannot create the folder {path.parent}: {exc.strerror or one_line(exc)}") from None
        try:
            # "x" claims the path atomically; SQLite treats an empty file as an empty DB.
            with open(path, "x"):
                pass
        except FileExistsError:
            raise SessionError(f"a session file already exists at {path}") from None
        except OSError as exc:
            raise SessionError(f"cannot create {path}: {one_line(exc)}") from exc
        created = utc_now()
        clean_config = scrub_secrets(config)

        def init(db: Database) -> None:
            db.execute(f"PRAGMA application_id = {APPLICATION_ID}")  # first: a half-made file is still ours
            db.enable_wal()
            with db.atomic():
                apply_migrations(db, 0)
                db.table("meta").insert_all(
                    [{"key": "created_at", "value": created},
                     {"key": "app_version", "value": APP_VERSION}],
                    replace=True,
                )
                db.table("session").insert(encode_row({
                    "id": 1, "name": name, "suite": clean_config.get("suite"),
                    "config_json": clean_config, "status": "new",
                    "created_at": created, "updated_at": created,
                }))
                if fill is not None:
                    fill(db)

        store = cls(path)
        reserve = False
        try:
            store._lock_key = SessionLock.acquire(path)
            reserve = hold_reserve(store.file)
            store._start_writer(init)
        except BaseException:
            store._unlock()
            leftovers = [store.file] + [Path(f"{store.file}{s}") for s in SQLITE_SIDES]
            for leftover in leftovers + ([reserve_file(store.file)] if reserve else []):
                leftover.unlink(missing_ok=True)
            raise
        return store

    @classmethod
    def open(cls, path: str | Path, *, readonly: bool = False) -> Store:
        """An existing session, migrated to the current schema unless readonly.

        A readonly store of an older schema is not migrated: reads see the old tables.
        A file refused here is left as it was, with nothing new beside it.
        """
        path = Path(path)
        probe(path)
        store = cls(path, readonly=readonly)
        if readonly:
            return store

        def init(db: Database) -> None:
            # Re-read on the writing connection: another process may have moved on.
            version = read_version(db.conn, path)
            if db.execute("PRAGMA application_id").fetchone()[0] == 0:  # written before ids
                db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            db.enable_wal()
            apply_migrations(db, version)

        sides = store._side_files()
        before = {p for p in sides if p.exists()}
        store._new_files = [p for p in sides if p not in before]
        store._lock_key = SessionLock.acquire(path)
        try:
            hold_reserve(store.file)
            store._start_writer(init)
        except BaseException:
            store._unlock()
            store._remove_new_files()
            raise
        return store

    def _side_files(self) -> list[Path]:
        f = self.file
        return [Path(f"{f}-wal"), Path(f"{f}-shm"), lock_file(f), reserve_file(f)]

    def _remove_new_files(self) -> None:
        for p in self._new_files:
            p.unlink(missing_ok=True)

    def abandon(self) -> None:
        """Close a session whose contents were refused after it opened (a configuration that
        does not load, a suite that is not installed, a damaged row), before anything was
        written to it: the files this open made beside it (lock, disk reserve, SQLite's side
        files when there were none) are taken back, so a refused input leaves nothing new."""
        try:
            self.close()
        except SessionError:
            pass  # refused already: the reason the caller raises is the one to show
        if self._lock_key is None:  # closed for good: nobody else holds these files through us
            self._remove_new_files()

    def _unlock(self) -> None:
        key, self._lock_key = self._lock_key, None
        if key is not None:
            SessionLock.release(key)

    def _start_writer(self, init: Callable[[Database], None]) -> None:
        writer = Writer(self.path, self.file)
        try:
            writer.start(init)
        except BaseException:
            self._closed = True
            raise
        self._writer = writer
        _live_stores.add(self)

    def _writes(self) -> Writer:
        """The writer, for the write repository; read-only and closed stores refuse."""
        if self._writer is None:
            if self.readonly:
                raise SessionError(f"session {self.path} is open read-only")
            raise SessionError(f"session {self.path} is closed")
        return self._writer

    def flush(self, timeout: float | None = None) -> None:
        """Block until every write queued so far is committed; raise what the writer hit."""
        if self._writer is not None:
            self._writer.flush(timeout)

    def close(self) -> None:
        """Flush, stop the writer, close every connection. Safe to call twice.

        Readers close before the writer so the writer's connection is the last one
        and checkpoints the WAL back into the main file.
        """
        with self._close_lock:
            first = not self._closed
            self._closed = True  # no new readers from here on
            writer = self._writer
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
            joined = writer.stop() if writer is not None else True
            if joined:
                self._unlock()
        if writer is not None:
            writer.raise_errors()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = "readonly" if self.readonly else "rw"
        return f"Store({str(self.path)!r}, {mode}{', closed' if self._closed else ''})"

    def release_reserve(self) -> None:
        """Give the space held beside the session back to the disk (it is full)."""
        reserve_file(self.file).unlink(missing_ok=True)

    # ---------------------------------------------------------------- reads

    def _reader(self) -> Database:
        """This thread's read-only connection; sqlite connections must not cross threads."""
        if self._closed:
            raise SessionError(f"session {self.path} is closed")
        db = getattr(self._local, "db", None)
        if db is None:
            try:
                db = Database(connect_readonly(self.file))
            except sqlite3.Error as exc:
                raise SessionError(f"cannot read {self.path}: {one_line(exc)}") from exc
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
            raise SessionError(f"{what} on {self.path} failed: {one_line(exc)}") from exc
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

    def _pending(self, table: str, key: str) -> tuple[bool, Any]:
        return (False, None) if self._writer is None else self._writer.pending(table, key)

    def meta_get(self, key: str) -> str | None:
        """A meta value, including one set but not yet committed."""
        queued, value = self._pending("meta", key)
        if queued:
            return value
        rows = self.query("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0]["value"] if rows else None

    def cache_get(self, key: str) -> dict | None:
        """A cached response, including one recorded but not yet committed."""
        queued, value = self._pending("cache", key)
        if queued:
            return json.loads(value)
        rows = self.query("SELECT response_json FROM cache WHERE key = ?", (key,))
        return rows[0]["response_json"] if rows else None

    def session_info(self) -> dict:
        """The session row (config decoded)."""
        row = self.get("session", 1)
        if row is None:
            raise SessionError(f"{self.path} has no session row")
        return row
