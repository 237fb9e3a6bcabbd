"""Faults during a run: transient errors, malformed model output, a failing subset,
pause/resume, cancel and budgets — nothing is lost and results stay reproducible."""
from __future__ import annotations

import threading

from fgo_engine import events as ev
from fgo_engine.llm.sim import provider
from fgo_engine.run.session import Session


def reference(tmp_path, cfg):
    s = Session.create(tmp_path / "ref.db", cfg)
    try:
        return s.run()
    finally:
        s.close()


def spent_keys(store):
    return [r["cache_key"] for r in store.rows("ledger", "cache_hit = 0 and error is null")]


def test_transient_errors_are_retried_and_ledgered(tmp_path, toy_config):
    ref = reference(tmp_path, toy_config())
    events = []
    # eight faults and nine tries per call: however the calls running side by side share
    # them out, none runs out of tries
    s = Session.create(tmp_path / "s.db", toy_config(retries=8), sinks=[events.append], sleep=lambda _: None)
    for kind in ("rate_limit", "timeout", "connection", "server"):
        s.gateway.faults.inject(kind, 2)
    res = s.run()
    s.store.flush()
    assert res.status == "done" and res.final_module.text == ref.final_module.text
    errors = [e.error for e in events if isinstance(e, ev.TokensUsed) and e.error]
    assert len(errors) == 8 and any("RateLimitError" in e for e in errors)
    assert s.store.count("ledger", "error is not null") == 8
    s.close()


def test_optimizer_without_a_usable_module_is_not_adopted(tmp_path, toy_config):
    logs = []
    s = Session.create(tmp_path / "s.db", toy_config(), sinks=[lambda e: logs.append(e) if isinstance(e, ev.Log) else None])
    for _ in range(50):  # every optimizer sample is cut off or empty, however the subsets share them out
        s.gateway.faults.inject("garbage", 1, role="optimizer")
        s.gateway.faults.inject("empty", 1, role="optimizer")
    res = s.run()
    s.store.flush()
    assert res.status == "done"
    assert any("optimizer gave no usable instruction" in e.text for e in logs)
    assert s.store.rows("modules", "origin = 'optimize'") == []
    texts = [m["text"] for m in s.store.rows("modules")]
    assert all(t.strip() and "lorem ipsum" not in t for t in texts)
    reasons = {r["payload_json"]["reason"] for r in s.store.rows("events", "kind = 'RejectedOutput'")}
    assert "empty reply" in reasons and any("not closed" in r for r in reasons)  # both faults were met
    s.close()


def test_unparsable_evaluator_reply_is_kept_as_free_text(tmp_path, toy_config):
    from toy_suite import ToySuite

    task = ToySuite(seed=0).train_tasks()[0]
    logs = []
    s = Session.create(tmp_path / "s.db", toy_config(), sinks=[lambda e: logs.append(e) if isinstance(e, ev.Log) else None])
    s.gateway.faults.inject("garbage", 2, role="evaluator", match=task.input)  # both tries for this task
    res = s.run()
    s.store.flush()
    assert res.status == "done"
    assert any("was not JSON" in e.text for e in logs)
    rows = s.store.rows("critiques", "parsed = 0")
    assert rows and rows[0]["task_id"] == task.id and "lorem ipsum" in rows[0]["raw"]
    s.close()


def test_merger_garbage_falls_back_to_the_best_child(tmp_path, toy_config):
    s = Session.create(tmp_path / "s.db", toy_config(subsets=2))
    s.gateway.faults.inject("garbage", 3, role="merger")
    res = s.run()
    s.store.flush()
    assert res.status == "done"
    merged = s.store.get("modules", "n1.merged")
    assert "no usable module" in merged["note"]
    assert merged["text"] in [m["text"] for m in s.store.rows("modules", "origin = 'optimize'")] + [
        s.store.get("modules", "initial")["text"]]
    s.close()


def test_one_failing_subset_does_not_lose_the_others(tmp_path, toy_config):
    cfg = toy_config(subsets=6, retries=1)
    ref = reference(tmp_path, cfg)
    s = Session.create(tmp_path / "s.db", cfg, sleep=lambda _: None)
    s.gateway.faults.inject("server", 200, role="agent", match="category=colour")
    res = s.run()
    s.store.flush()
    assert res.status == "failed"
    assert "subset" in res.message and "resume" in res.message
    statuses = {r["id"]: r["status"] for r in s.store.rows("subsets")}
    assert sorted(statuses.values()).count("done") == 5 and "failed" in statuses.values()
    s.close()
    s = Session.open(tmp_path / "s.db")  # a new gateway: no faults
    res2 = s.run()
    s.store.flush()
    assert res2.status == "done" and res2.final_module.text == ref.final_module.text
    keys = spent_keys(s.store)
    assert len(keys) == len(set(keys))  # the five finished subsets were not paid for again
    s.close()


def _run_with_action(tmp_path, cfg, action):
    """Run in a thread; ``action(session)`` is called from the engine at the first finished epoch."""
    fired = threading.Event()
    s = Session.create(tmp_path / "s.db", cfg)

    def sink(e):
        if isinstance(e, ev.EpochDone) and not fired.is_set():
            fired.set()
            action(s)

    s.bus.add(sink)
    return s, s.run()


def test_cancel_leaves_a_resumable_session(tmp_path, toy_config):
    cfg = toy_config(subsets=4)
    ref = reference(tmp_path, cfg)
    s, res = _run_with_action(tmp_path, cfg, lambda s: s.cancel())
    assert res.status == "cancelled"
    assert s.store.session_info()["status"] == "cancelled"
    s.close()
    s = Session.open(tmp_path / "s.db")
    res = s.run()
    assert res.status == "done" and res.final_module.text == ref.final_module.text
    s.close()


def test_pause_blocks_progress_until_resume(tmp_path, toy_config):
    cfg = toy_config(subsets=3)
    ref = reference(tmp_path, cfg)
    s = Session.create(tmp_path / "s.db", cfg)
    paused = threading.Event()
    steps = []

    def sink(e):
        if isinstance(e, ev.AgentStep):
            steps.append(e)
        if isinstance(e, ev.EpochDone) and not paused.is_set():
            s.pause()
            paused.set()

    s.bus.add(sink)
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("res", s.run()))
    t.start()
    assert paused.wait(60)
    t.join(0.5)
    n = len(steps)
    t.join(0.5)
    assert t.is_alive() and len(steps) == n  # nothing moved while paused
    assert s.store.session_info()["status"] == "paused"
    s.resume()
    t.join(120)
    assert not t.is_alive()
    assert out["res"].status == "done" and out["res"].final_module.text == ref.final_module.text
    s.close()


def test_budget_stops_cleanly_and_resumes_with_a_bigger_one(tmp_path, toy_config):
    ref = reference(tmp_path, toy_config())
    s = Session.create(tmp_path / "s.db", toy_config(budget_tokens=4000))
    res = s.run()
    assert res.status == "budget" and "token budget reached" in res.message and "resume" in res.message
    assert s.store.session_info()["status"] == "budget"
    s.close()
    s = Session.open(tmp_path / "s.db", config_overrides={"budget_tokens": 10_000_000})
    res = s.run()
    assert res.status == "done" and res.final_module.text == ref.final_module.text
    assert res.prompt_tokens + res.completion_tokens == ref.prompt_tokens + ref.completion_tokens
    s.close()


def test_cancel_inside_the_agent_loop_is_a_cancel_not_a_failure(tmp_path, toy_config):
    """A cancel raised by the agent's own LLM call (inside suite.run_agent) must end the run
    as 'cancelled', not be re-wrapped as an agent failure."""
    s = Session.create(tmp_path / "s.db", toy_config(subsets=2, task_workers=2))
    fired = threading.Event()

    def sink(e):
        if isinstance(e, ev.AgentStep) and not fired.is_set():
            fired.set()
            s.cancel()

    s.bus.add(sink)
    res = s.run()
    assert fired.is_set()
    assert res.status == "cancelled", res.message
    s.close()


def test_a_bug_inside_the_simulator_fails_once_with_its_own_words_not_as_a_network_error(tmp_path, toy_config,
                                                                                          monkeypatch):
    def broken(*a, **k):
        raise AttributeError("no attribute 'glorp'")

    monkeypatch.setattr(provider, "merger_reply", broken)
    s = Session.create(tmp_path / "s.db", toy_config(), sleep=lambda _: None)
    try:
        res = s.run()
        s.store.flush()
        assert res.status == "failed"
        assert "simulated LLM failed inside its merger (AttributeError: no attribute 'glorp')" in res.message
        assert "network" not in res.message and "tries" not in res.message
        assert s.store.count("ledger", "role = 'merger' and error is not null") == 1  # not retried
    finally:
        s.close()
    assert "AttributeError" in (tmp_path / "s.log").read_text(encoding="utf-8")  # the traceback is kept
