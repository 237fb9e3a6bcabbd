"""Fair scheduling: each subset gets its share of model slots and task workers; a subset
waiting with no slot is reported as queued. Synchronised on conditions, never on time."""
from __future__ import annotations

import threading

import pytest

from fgo_engine import events as ev
from fgo_engine.llm.scheduling import FairPool, FairSlots

TIMEOUT = 30  # failsafe only; every wait below ends on a condition


class Recorder:
    def __init__(self):
        self.cond = threading.Condition()
        self.order: list[str] = []
        self.queued: list[tuple[str, bool]] = []
        self.numbers: list[tuple[int, int]] = []  # (slots busy, capacity) on each change

    def add(self, who):
        with self.cond:
            self.order.append(who)
            self.cond.notify_all()

    def on_queue(self, key, queued, busy, capacity):
        with self.cond:
            self.queued.append((key, queued))
            self.numbers.append((busy, capacity))
            self.cond.notify_all()

    def until(self, pred):
        with self.cond:
            assert self.cond.wait_for(pred, timeout=TIMEOUT), "condition never came true"


@pytest.mark.parametrize("fair,expect_b", [(True, True), (False, False)])
def test_a_freed_model_slot_goes_to_the_subset_holding_none(fair, expect_b):
    rec = Recorder()
    slots = FairSlots(2, fair=fair, on_queue=rec.on_queue)
    release = {f"A{i}": threading.Event() for i in range(6)} | {f"B{i}": threading.Event() for i in range(6)}

    def call(who):
        slots.acquire(who[0])
        rec.add(who)
        release[who].wait(TIMEOUT)
        slots.release(who[0])

    threads = [threading.Thread(target=call, args=(f"A{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    rec.until(lambda: len(rec.order) == 2)  # A holds both slots, four more A calls wait
    b = [threading.Thread(target=call, args=(f"B{i}",)) for i in range(6)]
    for t in b:
        t.start()
    rec.until(lambda: ("B", True) in rec.queued)  # B is reported queued: waiting, holding nothing
    assert rec.numbers[rec.queued.index(("B", True))] == (2, 2)  # with the limiter's numbers: 2/2 slots busy
    release[rec.order[0]].set()
    rec.until(lambda: len(rec.order) == 3)
    assert rec.order[2].startswith("B") is expect_b
    for e in release.values():
        e.set()
    for t in threads + b:
        t.join(TIMEOUT)
    assert sorted(rec.order) == sorted(release)
    if fair:
        assert ("B", False) in rec.queued  # and running again once it had a slot


@pytest.mark.parametrize("fair", [True, False])
def test_two_subsets_progress_concurrently_in_a_pool_smaller_than_one_subset(fair):
    rec = Recorder()
    pool = FairPool(2, fair=fair)
    b_submitted = threading.Event()

    def job(who):
        rec.add(who)
        if who in ("A0", "A1"):
            b_submitted.wait(TIMEOUT)  # A fills both workers until B has work queued too
        return who

    try:
        fa = [pool.submit("A", job, f"A{i}") for i in range(6)]
        rec.until(lambda: len(rec.order) == 2)
        fb = [pool.submit("B", job, f"B{i}") for i in range(6)]
        b_submitted.set()
        assert [f.result(TIMEOUT) for f in fa + fb] == [f"A{i}" for i in range(6)] + [f"B{i}" for i in range(6)]
        # fair: B's first task runs next, before A's backlog of four; first in, first out: after it
        assert rec.order[2].startswith("B") is fair
    finally:
        b_submitted.set()
        pool.shutdown()


def test_a_run_reports_queued_subsets_and_ledgers_queue_wait(tmp_path, toy_config):
    from fgo_engine.run.session import Session

    events = []
    cfg = toy_config(subsets=2, epochs=1, roles={"agent": {"max_concurrency": 1}}, task_workers=4)
    s = Session.create(tmp_path / "q.db", cfg, sinks=[events.append])
    try:
        res = s.run()
        assert res.status == "done", res.message
        queued = [e for e in events if isinstance(e, ev.ScopeQueued)]
        assert any(e.queued and e.scope_kind == "subset" for e in queued)
        assert all(1 <= e.in_flight <= e.limit for e in queued if e.queued)  # the limiter's "n/m slots busy"
        rows = s.store.query("select started_at, ended_at, queue_ms, task_id, epoch from ledger "
                             "where role = 'agent' and cache_hit = 0 and scope_kind = 'subset'")
        assert rows and all(r["ended_at"] >= r["started_at"] and r["queue_ms"] >= 0 for r in rows)
        assert all(r["task_id"] and r["epoch"] is not None for r in rows)
        assert any(r["queue_ms"] > 0 for r in rows)
    finally:
        s.close()
