"""The one writer of a session file: a thread fed by a queue.

Why this shape: several writer connections lock each other out ("database is locked")
even in WAL mode, while one writer thread fed by a queue never does. So every write is
enqueued and returns at once; the writer thread owns the only writing connection and
commits what it finds in the queue in one transaction (at most ``MAX_BATCH`` writes).

Every row passes :func:`encode_row` when it is queued: strings are masked
(:mod:`fgo_engine.redaction`), ``_json`` columns encoded. Only the write repository
(:mod:`fgo_engine.persistence.writes`) and the store queue writes here.
"""
from __future__ import annotations

import itertools
import json
import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from fgo_engine import redaction
from fgo_engine.errors import SessionError
from fgo_engine.persistence.schema import one_line

__all__ = ["MAX_BATCH", "Writer", "encode_row", "scrub_secrets"]

# The writer commits at most this many queued writes in one transaction: large
# enough to amortise the commit, small enough that readers see progress often.
MAX_BATCH = 1000
WRITER_BUSY_MS = 30_000


def encode_row(row: dict[str, Any]) -> dict[str, Any]:
    """Copy a row, JSON-encoding `_json` columns, so later caller mutations don't leak in.
    No secret the process knows reaches the file: every string is masked, JSON included."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if key.endswith("_json") and value is not None and not isinstance(value, str):
            value = json.dumps(redaction.scrub_value(value), ensure_ascii=False)
        elif isinstance(value, str):
            value = redaction.scrub(value)
        elif isinstance(value, bool):
            value = int(value)
        out[key] = value
    return out


def scrub_secrets(value: Any) -> Any:
    """API keys are never stored, even when a caller passes a config that holds one."""
    if isinstance(value, dict):
        return {k: scrub_secrets(v) for k, v in value.items()
                if not (isinstance(k, str) and redaction.is_secret_name(k))}  # api_key_env is kept
    if isinstance(value, (list, tuple)):
        return [scrub_secrets(v) for v in value]
    return value


@dataclass
class _Op:
    """One queued write. `after` runs on the writer once the write is settled."""

    fn: Callable[[Database], object]  # its return value is ignored
    what: str
    after: Callable[[], None] | None = None
    # set for a write someone waits on (Writer.commit): once its batch is committed or lost
    done: threading.Event | None = None
    error: BaseException | None = None


class _Barrier:
    def __init__(self) -> None:
        self.done = threading.Event()


class _BatchLost(SessionError):
    """A waited-on write whose transaction was rolled back by another write in its batch."""


_STOP = object()


class Writer:
    """The writer thread of one session file and the queue that feeds it.

    ``file`` is the file it connects to; ``path`` names the session in messages."""

    def __init__(self, path: Path, file: Path) -> None:
        self.path = path
        self.file = file
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()  # guards _closed + enqueue, _pending, _errors
        self._closed = False
        self._thread: threading.Thread | None = None
        self._errors: list[tuple[str, BaseException]] = []
        # Writes enqueued but not yet committed, so a reader of them never misses one.
        self._pending: dict[tuple[str, str], tuple[int, Any]] = {}
        self._tokens = itertools.count(1)
        self._tables: set[str] = set()  # writer-thread only

    # ---------------------------------------------------------------- lifecycle

    def start(self, init: Callable[[Database], None]) -> None:
        """Start the thread; ``init`` runs first on its connection (a failure is raised here)."""
        started = threading.Event()
        failure: list[BaseException] = []
        self._thread = threading.Thread(
            target=self._main, args=(init, started, failure),
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
            raise SessionError(f"cannot open {self.path}: {one_line(exc)}") from exc

    def on_writer_thread(self) -> bool:
        return self._thread is not None and threading.current_thread() is self._thread

    def stop(self) -> bool:
        """Commit what is queued and end the thread. False when called from the writer
        thread itself (it ends once the current batch is done, nothing to join)."""
        with self._lock:
            self._closed = True
            thread, self._thread = self._thread, None
        if thread is None:
            return True
        self._queue.put(_STOP)  # after every write already queued
        if thread is threading.current_thread():
            return False
        thread.join()
        return True

    # ---------------------------------------------------------------- queueing

    def _enqueue(self, op: _Op) -> threading.Thread:
        with self._lock:
            if self._closed or self._thread is None:
                raise SessionError(f"session {self.path} is closed")
            self._queue.put(op)
            return self._thread

    def submit(self, fn: Callable[[Database], object], what: str) -> None:
        """Queue grouped writes; ``fn`` runs on the writer thread in a savepoint. Rows it
        writes must have passed :func:`encode_row`."""
        self._enqueue(_Op(fn, what))

    def insert(self, table: str, row: dict, *, replace: bool = False) -> None:
        """Queue one row; `_json` columns are encoded now so errors show at the call."""
        encoded = encode_row(row)

        def fn(db: Database) -> None:
            self.require_table(db, table)
            db.table(table).insert(encoded, replace=replace)

        self._enqueue(_Op(fn, f"insert into {table}"))

    def insert_many(self, table: str, rows: Iterable[dict], *, replace: bool = False) -> None:
        """Queue many rows as one write (committed together)."""
        encoded = [encode_row(r) for r in rows]
        if not encoded:
            return

        def fn(db: Database) -> None:
            self.require_table(db, table)
            db.table(table).insert_all(encoded, replace=replace)

        self._enqueue(_Op(fn, f"insert of {len(encoded)} rows into {table}"))

    def update(self, table: str, pk: Any, values: dict) -> None:
        """Queue an update of one row; a missing row is an error raised by flush()."""
        encoded = encode_row(values)

        def fn(db: Database) -> None:
            self.require_table(db, table)
            db.table(table).update(pk, encoded)

        self._enqueue(_Op(fn, f"update of {table} {pk!r}"))

    def put_pending(self, table: str, key: str, value: Any, fn: Callable[[Database], object], what: str, *,
                    wait: bool = False, timeout: float | None = None) -> None:
        """Queue a write that :meth:`pending` shows at once, until it is committed;
        ``wait``: block until it is, like :meth:`commit`."""
        if wait and self.on_writer_thread():
            raise SessionError("commit() called from the store's writer thread would deadlock")
        token = next(self._tokens)

        def settled() -> None:
            with self._lock:
                if self._pending.get((table, key), (None,))[0] == token:
                    del self._pending[(table, key)]

        op = _Op(fn, what, settled, done=threading.Event() if wait else None)
        with self._lock:
            if self._closed or self._thread is None:
                raise SessionError(f"session {self.path} is closed")
            self._pending[(table, key)] = (token, value)
            self._queue.put(op)
            thread = self._thread
        if op.done is not None:
            self._settle(thread, op, timeout)

    def pending(self, table: str, key: str) -> tuple[bool, Any]:
        """(True, value) for a write queued by :meth:`put_pending` and not yet committed."""
        with self._lock:
            entry = self._pending.get((table, key))
        return (False, None) if entry is None else (True, entry[1])

    def flush(self, timeout: float | None = None) -> None:
        """Block until every write queued so far is committed; raise what the writer hit."""
        if self.on_writer_thread():
            raise SessionError("flush() called from the store's writer thread would deadlock")
        barrier = _Barrier()
        with self._lock:
            thread = None if self._closed else self._thread
            if thread is not None:
                self._queue.put(barrier)
        if thread is not None:
            self._wait(thread, barrier.done, timeout)
        self.raise_errors()

    def commit(self, fn: Callable[[Database], None], what: str, timeout: float | None = None) -> None:
        """Run ``fn`` on the writer (like :meth:`submit`) and block until its own batch is
        committed; raise if that write failed or its batch was lost. Unlike :meth:`flush`
        this waits for nothing queued after it and raises no other write's error, so many
        threads waiting at once share one commit (the writer commits everything queued in
        one transaction and wakes all of them)."""
        if self.on_writer_thread():
            raise SessionError("commit() called from the store's writer thread would deadlock")
        op = _Op(fn, what, done=threading.Event())
        self._settle(self._enqueue(op), op, timeout)

    def _settle(self, thread: threading.Thread, op: _Op, timeout: float | None) -> None:
        assert op.done is not None
        self._wait(thread, op.done, timeout)
        if op.error is not None:
            raise SessionError(f"write to {self.path} failed: {op.what}: {one_line(op.error)}") from op.error

    def _wait(self, thread: threading.Thread, done: threading.Event, timeout: float | None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not done.wait(0.25 if deadline is None else
                                    max(0.0, min(0.25, deadline - time.monotonic()))):
            if not thread.is_alive():
                raise SessionError(f"the writer thread for {self.path} has stopped")
            if deadline is not None and time.monotonic() >= deadline:
                raise SessionError(f"timed out after {timeout}s waiting for writes to "
                                   f"{self.path}")

    def raise_errors(self) -> None:
        with self._lock:
            errors, self._errors = self._errors, []
        if errors:
            what, exc = errors[0]
            more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
            raise SessionError(
                f"write to {self.path} failed: {what}: {one_line(exc)}{more}"
            ) from exc

    # ---------------------------------------------------------------- writer thread

    def _main(self, init: Callable[[Database], None], started: threading.Event,
              failure: list[BaseException]) -> None:
        db: Database | None = None
        try:
            db = Database(self.file)
            db.execute(f"PRAGMA busy_timeout={WRITER_BUSY_MS}")
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
                while len(items) < MAX_BATCH:
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

    def require_table(self, db: Database, table: str) -> None:
        """sqlite-utils would create a missing table on insert; a typo must fail instead."""
        if table not in self._tables:
            self._tables = set(db.table_names())
            if table not in self._tables:
                raise SessionError(f"no table {table!r} in session {self.path}")
