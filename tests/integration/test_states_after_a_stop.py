"""A decided merge never shows as waiting for review again (issue 14's stale states)."""
from __future__ import annotations

import threading

from fgo_engine import events as ev
from fgo_engine.run.session import Session
from fgo_engine.types import ReviewDecision


class Gate:
    policy = "ask"
    post_check = False

    def __init__(self):
        self.asked: list[str] = []

    def review(self, request):
        self.asked.append(request.node_id)
        return ReviewDecision("edit", request.proposed.text + "\n- Check twice.", by="operator")


def test_a_merge_decided_before_a_resume_is_not_pending_review_again(tmp_path, toy_config):
    """Cancelled during the backtest of an edited merge, then resumed: the stored edit is
    used and the node goes merging → backtesting, never "pending review" (whose detail
    would then show the operator's edit beside a review that is not pending)."""
    path = tmp_path / "s.db"
    gate = Gate()
    s = Session.create(path, toy_config(review="ask"), gate=gate)
    fired = threading.Event()

    def cancel_in_backtest(e):
        if isinstance(e, ev.MergeNodeUpdated) and e.status == "backtesting" and not fired.is_set():
            fired.set()
            s.cancel()

    s.bus.add(cancel_in_backtest)
    assert s.run().status == "cancelled" and fired.is_set()
    node = s.store.rows("reviews")[0]["node_id"]
    s.close()

    gate2 = Gate()
    seen: list[tuple[str, str]] = []
    s = Session.open(path, gate=gate2, sinks=[lambda e: seen.append((e.node_id, e.status))
                                              if isinstance(e, ev.MergeNodeUpdated) else None])
    try:
        assert s.run().status == "done"
        assert s.store.get("merge_nodes", node)["status"] == "done"
    finally:
        s.close()
    assert node not in gate2.asked  # the stored edit was used
    statuses = [st for nid, st in seen if nid == node]
    assert "backtesting" in statuses and "pending_review" not in statuses, statuses
