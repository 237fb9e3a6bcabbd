"""Following a session that another process runs (``fgo run --headless``, the Python API).

That process holds the session's lock, so the app opens the file read-only and polls it: a
thread re-reads the view when the file changes (its size or modification time, the
write-ahead log's included) and finds the review the run waits for, if any. The app swaps the
fresh view in on its UI thread (:func:`carry_over` keeps the log and moves the versions the
widgets redraw on) and answers reviews through the decision files of
:mod:`fgo_engine.persistence.inbox`, which the other process reads. No Textual import.
"""
from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fgo_engine.persistence import inbox
from fgo_engine.persistence import queries as q
from fgo_engine.types import ReviewDecision, ReviewRequest
from fgo_tui.model.state import RunView

if TYPE_CHECKING:
    from fgo_engine.persistence.store import Store


def _stamp(path: Path) -> tuple[tuple[int, int] | None, ...]:
    """What moves when another process commits to the session file."""
    out: list[tuple[int, int] | None] = []
    for p in (path, path.with_name(path.name + "-wal")):
        try:
            st = os.stat(p)
            out.append((st.st_size, st.st_mtime_ns))
        except OSError:
            out.append(None)
    return tuple(out)


class Follower:
    """Polls a session another process writes. ``load`` builds a view from a store (the
    controller's own loader); the thread keeps the newest view and the pending review for the
    UI thread to take."""

    def __init__(self, path: Path, load: Callable[[Store], RunView], *, interval: float = 0.25):
        self.path = Path(os.path.realpath(path))
        self.load = load
        self.interval = interval
        self.holder: str | None = q.session_holder(self.path)
        self._lock = threading.Lock()
        self._view: RunView | None = None
        self._pending: ReviewRequest | None = None
        self._answered: set[str] = set()  # nodes this app posted a decision for
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.polls = 0  # reads of the file (tests wait on it)
        self.error: str | None = None  # the last read that failed (shown; the next poll retries)

    # -- the thread ---------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="fgo-follow", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(10)

    def _loop(self) -> None:
        seen: tuple | None = None
        store: Store | None = None
        try:
            while not self._stop.is_set():
                stamp = _stamp(self.path)
                if stamp != seen:
                    try:
                        if store is None:
                            store = q.open_readonly(self.path)
                        self._read(store)
                        seen, self.error = stamp, None
                    except Exception as exc:  # noqa: BLE001 - a read racing a checkpoint: retried
                        self.error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                        if store is not None:
                            store.close()
                            store = None
                self.holder = q.session_holder(self.path)
                self._wake.wait(self.interval)
                self._wake.clear()
        finally:
            if store is not None:
                store.close()

    def _read(self, store: Store) -> None:
        view = self.load(store)
        pending: ReviewRequest | None = None
        for node in q.pending_reviews(store):
            with self._lock:
                if node in self._answered:
                    continue
            if node in inbox.posted(self.path):
                continue  # answered already (by another app): the run applies it
            pending = q.review_request(store, node)
            if pending is not None:
                break
        with self._lock:
            self._view = view
            old = self._pending
            if pending is not None and old is not None and old.node_id == pending.node_id \
                    and old.proposed.text == pending.proposed.text:
                pending = old  # the same request object while it stays pending (the app compares identity)
            self._pending = pending
            self.polls += 1

    # -- the UI thread ------------------------------------------------------------------
    def take_view(self) -> RunView | None:
        """The newest view read since the last call, if any."""
        with self._lock:
            view, self._view = self._view, None
            return view

    @property
    def pending(self) -> ReviewRequest | None:
        with self._lock:
            return self._pending

    @property
    def running_elsewhere(self) -> bool:
        return self.holder is not None

    def decide(self, request: ReviewRequest, decision: ReviewDecision) -> bool:
        """Post the decision for the other process. False when one was posted already (by
        another app, or this one before a restart): the first decision stands."""
        with self._lock:
            self._answered.add(request.node_id)
            if self._pending is request:
                self._pending = None
        ok = inbox.post(self.path, request.node_id, decision, request.proposed.text)
        self._wake.set()
        return ok


def carry_over(old: RunView, new: RunView) -> RunView:
    """``new`` (read from the file) takes ``old``'s place on screen: the log goes on, each
    subset's and node's version moves only if it changed (so widgets redraw what changed), and
    what changed is logged in a line."""
    new.logs, new.logs_seen = old.logs, old.logs_seen
    new.module_texts = {**old.module_texts, **new.module_texts}
    pairs: tuple[tuple[dict[Any, Any], dict[Any, Any]], ...] = ((new.subsets, old.subsets), (new.nodes, old.nodes))
    for items_new, items_old in pairs:
        for key, item in items_new.items():
            before = items_old.get(key)
            if before is None:
                continue
            item.version = before.version
            if dataclasses.replace(item, version=before.version) != before:
                item.version += 1
                if item.status != before.status:
                    label = f"subset {key}" if isinstance(key, int) else f"merge {key}"
                    new.log("info", f"{label}: {before.status} → {item.status}")
    shape = lambda v: {n.id: n.child_ids for n in v.nodes.values()}  # noqa: E731
    new.tree_version = old.tree_version + (1 if shape(new) != shape(old) or new.subsets.keys() != old.subsets.keys()
                                           else 0)
    new.version = old.version + 1
    if new.status != old.status:
        new.log("info", f"the run elsewhere: {old.status} → {new.status}")
    return new
