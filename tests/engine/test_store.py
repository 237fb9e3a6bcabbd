"""The session store: schema, one writer thread, per-thread readers, safe opening."""
from __future__ import annotations

import hashlib
import re
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from fgo_engine.errors import SchemaTooNewError, SessionError
from fgo_engine.persistence import schema, writes
from fgo_engine.persistence.store import SCHEMA_VERSION, Store
from fgo_engine.timeutil import now
from fgo_engine.types import LedgerEntry, Scope

TABLES = {
    "meta", "session", "tasks", "subsets", "modules", "trajectories", "critiques",
    "epochs", "merge_nodes", "reviews", "ledger", "cache", "events",
}


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "sessions" / "s1.fgo.db"


@pytest.fixture
def store(db_path: Path):
    s = Store.create(db_path, name="demo", config={"suite": "household", "epochs": 3})
    yield s
    s.close()


def _cache_put(s: Store, key: str, model: str, response: dict, scope_id: str = "0") -> None:
    """A fresh answer recorded the way the gateway records it: its ledger row and its cache
    row, committed before this returns."""
    writes.llm_call(s, LedgerEntry("agent", model, Scope("subset", scope_id), cache_key=key, ts=now()), response)


def _cache_put_queued(s: Store, key: str, model: str, response: dict) -> threading.Thread:
    """`_cache_put` on a thread of its own, returned once the answer is queued (the writer
    may be parked: the put returns only once it is committed)."""
    w = s._writes()
    inner = w._queue
    watched = w._queue = _WatchedQueue(inner)
    t = threading.Thread(target=_cache_put, args=(s, key, model, response))
    t.start()
    try:
        assert watched.put_one.wait(10)  # queued (and so pending) under the writer's lock
    finally:
        w._queue = inner
    return t


def _hold_writer(s: Store) -> threading.Event:
    """Park the writer thread inside a write; the returned event lets it go.

    Gives tests a deterministic window in which queued writes are not committed.
    """
    entered, release = threading.Event(), threading.Event()

    def hold(db) -> None:
        entered.set()
        assert release.wait(10)

    s._writes().submit(hold, "write hold")
    assert entered.wait(10)
    return release


def _digest(*paths: Path) -> dict[str, str | None]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() if p.exists() else None
        for p in paths
    }


# --------------------------------------------------------------------------- lifecycle


def test_create_close_open_keeps_session_meta_and_tables(db_path: Path) -> None:
    s = Store.create(db_path, name="demo", config={"suite": "invoices", "subsets": 4})
    assert s.path == db_path
    s.close()

    s = Store.open(db_path)
    try:
        info = s.session_info()
        assert info["id"] == 1
        assert info["name"] == "demo"
        assert info["suite"] == "invoices"
        assert info["config_json"] == {"suite": "invoices", "subsets": 4}
        assert info["status"] == "new"
        assert info["created_at"] == info["updated_at"]
        assert info["created_at"].endswith("+00:00")
        assert s.meta_get("schema_version") == str(SCHEMA_VERSION)
        assert s.meta_get("created_at") == info["created_at"]
        assert s.meta_get("app_version")
        names = {r["name"] for r in s.query("SELECT name FROM sqlite_master WHERE type='table'")}
        assert TABLES <= names
    finally:
        s.close()

    # A plain SQLite file in WAL mode that any SQLite tool can read.
    assert db_path.read_bytes()[:16] == b"SQLite format 3\x00"
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT count(*) FROM session").fetchone()[0] == 1
        indexed = {r[0] for r in conn.execute(
            "SELECT tbl_name FROM sqlite_master WHERE type='index' AND sql IS NOT NULL")}
        assert {"trajectories", "critiques", "ledger", "modules"} <= indexed
    finally:
        conn.close()


def test_create_refuses_existing_path(db_path: Path) -> None:
    Store.create(db_path, name="a", config={}).close()
    before = _digest(db_path)
    with pytest.raises(SessionError, match="already exists"):
        Store.create(db_path, name="b", config={})
    assert _digest(db_path) == before


def test_create_drops_credentials_from_config(store: Store) -> None:
    s = Store.create(store.path.with_name("keys.db"), name="k", config={
        "suite": "tools", "api_key": "sk-1", "models": {"agent": {"model": "m",
                                                                  "OPENAI_API_KEY": "x"}},
        "budget_tokens": 1000,
    })
    try:
        assert s.session_info()["config_json"] == {
            "suite": "tools", "models": {"agent": {"model": "m"}}, "budget_tokens": 1000}
        s.flush()
    finally:
        s.close()
    assert b"sk-1" not in s.path.read_bytes()


def _not_sqlite(p: Path) -> None:
    p.write_text("this is not a database\n" * 50)


def _sqlite_without_meta(p: Path) -> None:
    conn = sqlite3.connect(p)
    conn.execute("CREATE TABLE other (x)")
    conn.commit()
    conn.close()


def _meta_without_version(p: Path) -> None:
    conn = sqlite3.connect(p)
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    conn.commit()
    conn.close()


@pytest.mark.parametrize("make", [
    None,
    _not_sqlite,
    lambda p: p.write_bytes(b""),
    _sqlite_without_meta,
    _meta_without_version,
], ids=["missing", "text-file", "empty-file", "no-meta", "no-version"])
@pytest.mark.parametrize("readonly", [False, True])
def test_open_rejects_non_sessions_with_one_line_naming_path(
        tmp_path: Path, make, readonly: bool) -> None:
    path = tmp_path / "x.db"
    if make is not None:
        make(path)
    before = _digest(path)
    with pytest.raises(SessionError) as info:
        Store.open(path, readonly=readonly)
    message = str(info.value)
    assert str(path) in message
    assert "\n" not in message
    assert _digest(path) == before
    assert not Path(f"{path}-wal").exists()


def _set_version(path: Path, version: int) -> None:
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(version),))
    conn.commit()
    conn.close()


@pytest.mark.parametrize("readonly", [False, True])
def test_schema_too_new_is_refused_and_file_untouched(db_path: Path, readonly: bool) -> None:
    Store.create(db_path, name="new", config={}).close()
    _set_version(db_path, 999)
    files = [db_path, Path(f"{db_path}-wal")]
    before = _digest(*files)
    mtime = db_path.stat().st_mtime_ns

    with pytest.raises(SchemaTooNewError) as info:
        Store.open(db_path, readonly=readonly)
    assert "999" in str(info.value) and str(db_path) in str(info.value)
    assert _digest(*files) == before
    assert db_path.stat().st_mtime_ns == mtime


def test_schema_too_new_while_another_process_holds_the_wal(db_path: Path) -> None:
    Store.create(db_path, name="new", config={}).close()
    other = sqlite3.connect(db_path)  # stands in for a newer app with the file open
    try:
        other.execute("PRAGMA wal_autocheckpoint=0")
        other.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
        other.commit()
        files = [db_path, Path(f"{db_path}-wal")]
        before = _digest(*files)
        assert before[f"{db_path.name}-wal"] is not None
        with pytest.raises(SchemaTooNewError):
            Store.open(db_path)
        assert _digest(*files) == before
    finally:
        other.close()


def test_older_schema_is_migrated_on_open(db_path: Path, monkeypatch) -> None:
    Store.create(db_path, name="old", config={}).close()
    old = schema.SCHEMA_VERSION

    def to_next(db) -> None:
        db["modules"].add_column("tokens", int)

    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, to_next])
    monkeypatch.setattr(schema, "SCHEMA_VERSION", old + 1)

    ro = Store.open(db_path, readonly=True)  # readonly reads the old schema as is
    assert ro.meta_get("schema_version") == str(old)
    ro.close()

    s = Store.open(db_path)
    try:
        assert s.meta_get("schema_version") == str(old + 1)
        s._writes().insert("modules", {"id": "m1", "kind": "instruction", "text": "t", "tokens": 7})
        s.flush()
        assert s.get("modules", "m1")["tokens"] == 7
    finally:
        s.close()


# --------------------------------------------------------------------------- rows


def test_json_columns_and_booleans_round_trip(store: Store) -> None:
    steps = [{"kind": "action", "text": "go to desk 1"}, {"kind": "answer", "text": "ç ğ ş"}]
    store._writes().insert("trajectories", {
        "id": "t1", "task_id": "k1", "module_id": "m1", "phase": "explore",
        "subset_id": 2, "epoch": 0, "steps_json": steps, "success": True, "score": 1.0,
    })
    store._writes().insert_many("merge_nodes", [
        {"id": "n1", "depth": 1, "child_ids_json": ["a", "b"], "scores_json": {"a": 0.5},
         "subset_ids_json": None},
        {"id": "n2", "depth": 0, "child_ids_json": "[\"n1\"]"},  # already JSON text
    ])
    store._writes().insert("tasks", {"id": "k1", "split": "train", "meta_json": {"lang": "tr"}})
    store.flush()

    row = store.get("trajectories", "t1")
    assert row["steps_json"] == steps
    assert row["success"] == 1 and type(row["success"]) is int
    assert store.get("trajectories", "missing") is None

    nodes = store.rows("merge_nodes", order_by="id")
    assert [n["child_ids_json"] for n in nodes] == [["a", "b"], ["n1"]]
    assert nodes[0]["scores_json"] == {"a": 0.5}
    assert nodes[0]["subset_ids_json"] is None

    store._writes().update("merge_nodes", "n1", {"scores_json": {"a": 0.5, "b": 0.75},
                                       "status": "merged"})
    store.flush()
    assert store.get("merge_nodes", "n1")["scores_json"] == {"a": 0.5, "b": 0.75}

    q = store.query("SELECT id, meta_json FROM tasks WHERE split = ?", ("train",))
    assert q == [{"id": "k1", "meta_json": {"lang": "tr"}}]
    assert store.rows("trajectories", "success = :ok", {"ok": 1})[0]["id"] == "t1"
    assert store.count("trajectories", "phase = ?", ("explore",)) == 1
    assert store.count("trajectories", "phase = ?", ("test",)) == 0

    raw = sqlite3.connect(store.path)
    try:
        text = raw.execute("SELECT steps_json FROM trajectories").fetchone()[0]
    finally:
        raw.close()
    assert isinstance(text, str) and "go to desk 1" in text


def test_insert_copies_the_row_at_call_time(store: Store) -> None:
    release = _hold_writer(store)
    row = {"id": "m1", "kind": "instruction", "text": "first"}
    store._writes().insert("modules", row)
    row["text"] = "mutated later"
    release.set()
    store.flush()
    assert store.get("modules", "m1")["text"] == "first"


def test_meta_and_status(store: Store) -> None:
    created = store.session_info()["updated_at"]
    writes.meta_value(store, "seed", "7")
    assert store.meta_get("seed") == "7"
    assert store.meta_get("nope") is None
    writes.session_status(store, "running")
    store.flush()
    info = store.session_info()
    assert info["status"] == "running"
    assert info["updated_at"] >= created
    with pytest.raises(ValueError):
        writes.session_status(store, "exploded")


# --------------------------------------------------------------------------- writer


def test_reads_see_committed_data_only(store: Store) -> None:
    release = _hold_writer(store)
    store._writes().insert("events", {"ts": "t", "kind": "k", "payload_json": {"n": 1}})
    assert store.count("events") == 0
    release.set()
    store.flush()
    assert store.count("events") == 1
    assert store.rows("events")[0]["payload_json"] == {"n": 1}


def test_cache_get_sees_put_before_commit(store: Store) -> None:
    assert store.cache_get("k") is None
    release = _hold_writer(store)
    first = _cache_put_queued(store, "k", "fgo-sim/agent", {"text": "hello", "usage": [1, 2]})
    assert store.count("cache") == 0  # not committed yet ...
    assert store.cache_get("k") == {"text": "hello", "usage": [1, 2]}  # ... but visible
    second = _cache_put_queued(store, "k", "fgo-sim/agent", {"text": "newer"})
    assert store.cache_get("k") == {"text": "newer"}
    release.set()
    first.join(10)
    second.join(10)
    store.flush()
    assert store.count("cache") == 1
    assert store._writes()._pending == {}
    assert store.cache_get("k") == {"text": "newer"}
    assert store.get("cache", "k")["model"] == "fgo-sim/agent"


def test_writer_error_surfaces_on_flush_and_costs_only_itself(store: Store) -> None:
    release = _hold_writer(store)
    store._writes().insert("events", {"ts": "t", "kind": "before"})
    store._writes().insert("no_such_table", {"x": 1})
    store._writes().insert("events", {"ts": "t", "kind": "after"})
    release.set()
    with pytest.raises(SessionError, match="no_such_table") as info:
        store.flush()
    assert "\n" not in str(info.value)
    assert sorted(r["kind"] for r in store.rows("events")) == ["after", "before"]
    assert "no_such_table" not in {r["name"] for r in store.query(
        "SELECT name FROM sqlite_master WHERE type='table'")}
    store.flush()  # reported once, then the store carries on

    store._writes().update("modules", "missing", {"text": "x"})
    store._writes().insert("events", {"ts": "t", "kind": "k", "bogus_column": 1})
    with pytest.raises(SessionError, match=r"and 1 more"):
        store.flush()


def test_error_in_last_writes_is_raised_by_close(db_path: Path) -> None:
    s = Store.create(db_path, name="e", config={})
    s._writes().insert("nope", {"x": 1})
    with pytest.raises(SessionError, match="nope"):
        s.close()
    s.close()  # already closed and already reported


def test_write_runs_grouped_on_the_writer_thread(store: Store) -> None:
    seen: list[str] = []

    def grouped(db) -> None:
        seen.append(threading.current_thread().name)
        db["subsets"].insert({"id": 1, "name": "a", "task_ids_json": "[]"})
        db["subsets"].insert({"id": 1, "name": "dup"})  # pk clash: whole group undone

    store._writes().submit(grouped, "write grouped")
    with pytest.raises(SessionError, match="grouped"):
        store.flush()
    assert seen and seen[0].startswith("fgo-store-writer")
    assert store.count("subsets") == 0


def test_flush_timeout(store: Store) -> None:
    release = _hold_writer(store)
    try:
        with pytest.raises(SessionError, match="timed out"):
            store.flush(timeout=0.05)
    finally:
        release.set()
    store.flush()


def test_concurrent_writers_and_reader(store: Store) -> None:
    threads, per_thread = 8, 500
    start = threading.Barrier(threads + 1)
    done = threading.Event()
    observed: list[int] = []

    def writer(t: int) -> None:
        start.wait()
        for i in range(per_thread):
            if i % 5 == 0:  # a fresh answer: its ledger row and its cache row
                _cache_put(store, f"{t}:{i}", "fgo-sim", {"t": t, "i": i}, scope_id=str(t))
                assert store.cache_get(f"{t}:{i}") == {"t": t, "i": i}
                continue
            store._writes().insert("ledger", {
                "ts": now(), "role": "agent", "model": "fgo-sim",
                "scope_kind": "subset", "scope_id": str(t), "prompt_tokens": i,
                "completion_tokens": 1, "cost": 0.0, "cache_hit": False,
                "cache_key": f"{t}:{i}",
            })

    def reader() -> None:
        start.wait()
        while not done.is_set():
            observed.append(store.count("ledger"))
            store.query("SELECT role, sum(prompt_tokens) FROM ledger GROUP BY role")

    with ThreadPoolExecutor(threads + 1) as pool:
        read = pool.submit(reader)
        writers = [pool.submit(writer, t) for t in range(threads)]
        for f in writers:
            f.result()
        store.flush()
        done.set()
        read.result()  # re-raises any "database is locked" the reader hit

    assert store.count("ledger") == threads * per_thread
    assert store.count("cache") == threads * (per_thread // 5)
    assert store.count("ledger", "scope_id = ?", ("3",)) == per_thread
    assert observed == sorted(observed)  # committed data only ever grows
    assert len({r["id"] for r in store.query("SELECT id FROM ledger")}) == threads * per_thread


# --------------------------------------------------------------------------- readonly, close


def test_readonly_never_writes(db_path: Path) -> None:
    s = Store.create(db_path, name="ro", config={"suite": "tools"})
    s._writes().insert("tasks", {"id": "k1", "split": "test", "input": "q", "expected": "a"})
    s.close()
    before = _digest(db_path)
    mtime = db_path.stat().st_mtime_ns

    ro = Store.open(db_path, readonly=True)
    assert ro.session_info()["name"] == "ro"
    assert ro.get("tasks", "k1")["expected"] == "a"
    for attempt in (
        lambda: ro._writes().insert("tasks", {"id": "k2"}),
        lambda: ro._writes().insert_many("tasks", [{"id": "k2"}]),
        lambda: ro._writes().update("tasks", "k1", {"expected": "b"}),
        lambda: ro._writes(),
        lambda: writes.meta_value(ro, "x", "y"),
        lambda: _cache_put(ro, "k", "m", {}),
        lambda: writes.session_status(ro, "done"),
        lambda: ro.query("DELETE FROM tasks"),
    ):
        with pytest.raises(SessionError):
            attempt()
    ro.flush()
    ro.close()
    ro.close()

    assert _digest(db_path) == before
    assert db_path.stat().st_mtime_ns == mtime


def test_readonly_reads_while_a_writer_is_live(store: Store) -> None:
    store._writes().insert("events", {"ts": "t", "kind": "a"})
    store.flush()
    ro = Store.open(store.path, readonly=True)
    try:
        assert ro.count("events") == 1
        store._writes().insert("events", {"ts": "t", "kind": "b"})
        store.flush()
        assert ro.count("events") == 2
    finally:
        ro.close()


def test_reopen_after_close_keeps_everything_and_close_is_idempotent(db_path: Path) -> None:
    s = Store.create(db_path, name="keep", config={})
    s._writes().insert_many("modules", [{"id": f"m{i}", "kind": "instruction", "text": str(i),
                               "adopted": i % 2 == 0} for i in range(50)])
    _cache_put(s, "c1", "m", {"a": 1})
    writes.meta_value(s, "phase", "merge")
    writes.session_status(s, "paused")
    s.close()  # no explicit flush: close commits what was queued
    s.close()
    with pytest.raises(SessionError, match="closed"):
        s._writes().insert("events", {"kind": "late"})
    with pytest.raises(SessionError, match="closed"):
        s.count("modules")

    s = Store.open(db_path)
    try:
        assert s.count("modules") == 50
        assert s.count("modules", "adopted = 1") == 25
        assert s.cache_get("c1") == {"a": 1}
        assert s.meta_get("phase") == "merge"
        assert s.session_info()["status"] == "paused"
    finally:
        s.close()
    assert not Path(f"{db_path}-wal").exists()  # last close checkpointed the WAL


def test_context_manager_closes(db_path: Path) -> None:
    with Store.create(db_path, name="cm", config={}) as s:
        s._writes().insert("events", {"ts": "t", "kind": "x"})
    with Store.open(db_path) as s:
        assert s.count("events") == 1


# --------------------------------------------------------------------------- commit (waited-on writes)

class _WatchedQueue:
    """The store's queue, telling the test which items were put (and when)."""

    def __init__(self, inner) -> None:
        self.inner, self.items, self.put_one = inner, [], threading.Event()

    def put(self, item) -> None:
        self.inner.put(item)
        self.items.append(item)
        self.put_one.set()

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_commit_releases_a_waiter_only_after_its_own_row_is_committed(store: Store) -> None:
    release_first = _hold_writer(store)  # batch 1 parked: what follows queues up behind it
    watched = store._writes()._queue = _WatchedQueue(store._writes()._queue)
    seen: dict[str, int] = {}
    returned = threading.Event()

    def waiter() -> None:
        def row(db) -> None:
            db["events"].insert({"ts": "t", "kind": "answer"})

        store._writes().commit(row, "row")
        seen["count"] = store.count("events", "kind = 'answer'")  # its own reader: committed rows only
        returned.set()

    t = threading.Thread(target=waiter)
    t.start()
    assert watched.put_one.wait(10)
    op = watched.items[0]
    entered, release_second = threading.Event(), threading.Event()

    def hold(db) -> None:  # same batch, after the waiter's row: written, not yet committed
        entered.set()
        assert release_second.wait(10)

    store._writes().submit(hold, "write hold")
    release_first.set()
    assert entered.wait(10)
    # the waiter's row is in the open transaction; its waiter must still be blocked
    assert not op.done.is_set() and not returned.is_set() and t.is_alive()
    release_second.set()
    assert returned.wait(10)
    t.join()
    assert seen["count"] == 1


def test_many_waiters_share_one_commit(store: Store) -> None:
    release = _hold_writer(store)
    watched = store._writes()._queue = _WatchedQueue(store._writes()._queue)
    in_transaction: list[bool] = []
    n = 5
    batches: list[int] = []
    apply = store._writes()._apply
    store._writes()._apply = lambda db, ops: (batches.append(len(ops)), apply(db, ops))[1]

    def waiter(i: int) -> None:
        def row(db) -> None:
            db["events"].insert({"ts": "t", "kind": f"w{i}"})
            in_transaction.append(db.conn.in_transaction)

        store._writes().commit(row, "row")

    threads = [threading.Thread(target=waiter, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    while len(watched.items) < n:  # every waiter has queued its row behind the parked writer
        assert watched.put_one.wait(10)
        watched.put_one.clear()
    release.set()
    for t in threads:
        t.join(10)
    assert store.count("events") == n
    assert all(op.done.is_set() and op.error is None for op in watched.items)
    assert in_transaction == [True] * n
    assert batches == [n]  # one transaction, one commit, every waiter woken by it


def test_commit_raises_its_own_error_and_leaves_flush_clean(store: Store) -> None:
    def broken(db) -> None:
        db["no_such_table_here"].insert({"x": 1})
        raise RuntimeError("boom")

    with pytest.raises(SessionError, match="boom"):
        store._writes().commit(broken, "broken")
    store.flush()  # reported to its waiter, not again to everyone else


def test_commit_reports_a_batch_lost_to_another_write(store: Store) -> None:
    release = _hold_writer(store)
    watched = store._writes()._queue = _WatchedQueue(store._writes()._queue)
    errors: list[BaseException] = []

    def waiter() -> None:
        try:
            store._writes().commit(lambda db: db["events"].insert({"ts": "t", "kind": "lost"}), "lost")
        except SessionError as exc:
            errors.append(exc)

    t = threading.Thread(target=waiter)
    t.start()
    assert watched.put_one.wait(10)
    store._writes().submit(lambda db: db.conn.execute("ROLLBACK"), "rollback")  # kills the batch's transaction
    release.set()
    t.join(10)
    assert len(errors) == 1 and re.search("batch lost|no transaction", str(errors[0]))
    assert store.count("events", "kind = 'lost'") == 0
    with pytest.raises(SessionError):
        store.flush()
