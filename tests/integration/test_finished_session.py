"""A finished session is finished: running it again writes nothing and says so; a resume that
loads merges decided earlier reports the decisions recorded, not "approve"."""
from __future__ import annotations

import io

from fgo_engine import events as ev
from fgo_engine.method.review import GateBase
from fgo_engine.persistence import writes
from fgo_engine.run.console import ConsolePrinter
from fgo_engine.run.session import Session
from fgo_engine.types import ReviewDecision


class Scripted(GateBase):
    """Roll back n1, edit every other merge (adds one line)."""

    policy = "scripted"

    def review(self, request):
        if request.node_id == "n1":
            return ReviewDecision("rollback", by="person")
        return ReviewDecision("edit", request.proposed.text + "\n- checked by a person", by="person")


def _finish(path, cfg):
    s = Session.create(path, cfg, gate=Scripted())
    try:
        assert s.run().status == "done"
        s.store.flush()
    finally:
        s.close()


def test_running_a_finished_session_changes_nothing(tmp_path, toy_config):
    path = tmp_path / "s.db"
    _finish(path, toy_config(subsets=4))
    before = Session.open(path)
    try:
        ledger, info = before.store.count("ledger"), before.store.session_info()
        events = before.store.count("events")
    finally:
        before.close()
    seen: list[ev.Event] = []
    s = Session.open(path, config_overrides={"budget_tokens": 10**9}, sinks=[seen.append])
    try:
        res = s.run()
        s.store.flush()
        assert res.status == "done" and "finished" in res.message
        assert res.final_module_id == info["final_module_id"] and res.train_score == info["best_score"]
        assert s.store.count("ledger") == ledger  # nothing replayed from the cache
        assert s.store.count("events") == events
        after = s.store.session_info()
        assert after["updated_at"] == info["updated_at"] and after["config_json"] == info["config_json"]
    finally:
        s.close()
    assert [type(e).__name__ for e in seen] == ["RunFinished"]
    assert not any(isinstance(e, ev.TokensUsed) for e in seen)


def test_loaded_merges_report_their_recorded_decisions(tmp_path, toy_config):
    path = tmp_path / "s.db"
    _finish(path, toy_config(subsets=4, review="auto"))
    s = Session.open(path)
    writes.session_status(s.store, "cancelled")  # as if it stopped during the test phase: the merges are all done
    s.store.flush()
    s.close()
    out = io.StringIO()
    s = Session.open(path, sinks=[ConsolePrinter(out, heartbeat=0)])
    s.gate = Scripted()
    try:
        assert s.run().status == "done"
    finally:
        s.close()
    lines = [ln for ln in out.getvalue().splitlines() if "merge n" in ln]
    assert lines, out.getvalue()
    assert any("n1 " in ln and "(rollback)" in ln for ln in lines), lines
    assert any("(edit)" in ln for ln in lines), lines
    assert not any("(approve)" in ln for ln in lines), lines
