"""The adaptive backtest's sample and interval wherever a backtest is shown; states that must
not go stale (timestamps on Events lines, a cancelled run's subsets, a roll back by the
if-not-worse backtest); reads and writes off the UI thread."""
from __future__ import annotations

import re
import shutil
import threading
from pathlib import Path

from textual.widgets import Log

from fgo_engine.method.review import IfNotWorse
from fgo_engine.persistence import queries
from fgo_engine.types import ReviewDecision
from fgo_tui.screens.audit import AuditScreen
from fgo_tui.screens.review import ReviewScreen
from fgo_tui.widgets.merge_tree import MergeTree
from fgo_tui.widgets.node_detail import NodeDetail

from .conftest import SIZE, open_first, toy_config, wait_for

TIME = re.compile(r"^\d\d:\d\d:\d\d (info|warning|error) ")
ADAPTIVE = re.compile(r"backtest: \d+/\d+ tasks \(adaptive\) · 95% CI of merged − best child [+−]\d\.\d\d…[+−]\d\.\d\d")


def off_main(monkeypatch, module, name: str) -> list[bool]:
    """Record, for each call of ``module.name``, whether it ran on the main (UI) thread."""
    threads: list[bool] = []
    real = getattr(module, name)

    def spy(*a, **kw):
        threads.append(threading.current_thread() is threading.main_thread())
        return real(*a, **kw)

    monkeypatch.setattr(module, name, spy)
    return threads


async def test_adaptive_backtest_sample_and_interval_in_review_tree_events_and_audit(make_app, sessions_dir,
                                                                                    monkeypatch):
    on_ui = off_main(monkeypatch, queries, "child_categories")
    app = make_app(new_config=toy_config(backtest="adaptive"), session_path=sessions_dir / "adaptive.db")
    async with app.run_test(size=SIZE) as pilot:
        first = await wait_for(pilot, lambda: app.screen if isinstance(app.screen, ReviewScreen)
                               and app.screen.children_loaded else None, timeout=60, what="first review")
        assert "adaptive sample of its" in str(first.query_one("#review-title").render())
        await pilot.press("a")
        # the second merge has the first one among its children: its backtest is shown there
        second = await wait_for(pilot, lambda: app.screen if isinstance(app.screen, ReviewScreen)
                                and app.screen.node_id != first.node_id and app.screen.children_loaded else None,
                                timeout=60, what="second review")
        assert first.node_id in second.backtests and ADAPTIVE.search(second.backtests[first.node_id])
        assert on_ui and not any(on_ui)  # the child-category query ran in a worker
        await pilot.press("a")
        await wait_for(pilot, lambda: app.ctl.view.status == "done" and not app.ctl.running, timeout=60,
                       what="run done")
        dash = app.dashboard
        node = app.ctl.view.nodes[first.node_id]
        assert node.backtest_mode == "adaptive" and node.interval is not None
        await pilot.press("2")
        await wait_for(pilot, lambda: dash.select_tree_node(first.node_id), what="tree node")
        detail = dash.query_one(NodeDetail)
        await wait_for(pilot, lambda: detail.loaded == first.node_id and ADAPTIVE.search(detail.plain),
                       what="adaptive backtest in the node detail")
        await pilot.press("3")
        log = dash.query_one("#events-log", Log)
        await wait_for(pilot, lambda: log.line_count > 0, what="events")
        assert any(ADAPTIVE.search(ln) for ln in log.lines)
        assert all(TIME.match(ln) for ln in log.lines), log.lines  # every Events line carries its time
        await pilot.press("2")
        await wait_for(pilot, lambda: dash.select_tree_node(first.node_id), what="tree node again")
        await pilot.press("a")
        audit = await wait_for(pilot, lambda: app.screen if isinstance(app.screen, AuditScreen)
                               and app.screen.loaded else None, what="audit")
        assert ADAPTIVE.search(audit.plain), audit.plain[:400]


async def test_export_reads_and_writes_off_the_ui_thread(make_app, finished_session, monkeypatch):
    import fgo_engine.report.export as export

    on_ui = off_main(monkeypatch, export, "session_report")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await open_first(pilot, app)
        await pilot.press("x")
        report = Path("sessions/toy-finished-report.md")
        await wait_for(pilot, lambda: report.exists() and any("exported to" in n.message
                                                               for n in app._notifications), what="report")
        assert on_ui == [False]


async def test_a_cancelled_runs_subsets_are_not_shown_running(make_app, finished_session):
    """The rows of a run stopped mid-way still say "running": opened later, nothing runs."""
    import sqlite3

    con = sqlite3.connect(finished_session)
    with con:
        con.execute("update subsets set status = 'running' where id = 1")
        con.execute("update merge_nodes set status = 'backtesting' where id = 'n2'")
        con.execute("update session set status = 'cancelled'")
    con.close()
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        dash = await open_first(pilot, app)
        v = app.ctl.view
        assert v.subsets[1].status == "stopped" and v.nodes["n2"].status == "stopped"
        await pilot.press("2")
        await wait_for(pilot, lambda: dash.select_tree_node("s1"), what="tree s1")
        detail = dash.query_one(NodeDetail)
        await wait_for(pilot, lambda: detail.loaded == "s1", what="s1 detail")
        assert "running" not in detail.plain.splitlines()[0] and "stopped" in detail.plain.splitlines()[0]
        labels = [str(n.label.plain) for n in dash.query_one(MergeTree)._by_id.values()]
        assert not any("running" in lb for lb in labels), labels


class SabotageN1(IfNotWorse):
    """if-not-worse, with an operator edit on n1 that throws away all guidance (the backtest
    must roll it back)."""

    def review(self, request):
        if request.node_id == "n1":
            return ReviewDecision("edit", "You know nothing about glorps.", by="operator")
        return super().review(request)


async def test_roll_back_by_the_backtest_reads_as_one_coherent_state(make_app, sessions_dir):
    """if-not-worse backtests the operator's edit, then rolls it back (below its best child):
    the node says so, not "rolled back" beside a bare "review edit"."""
    from fgo_engine.run.session import Session

    path = sessions_dir / "inw.db"
    s = Session.create(path, toy_config(review="if-not-worse"), gate=SabotageN1())
    try:
        assert s.run().status == "done"
        rows = queries.reviews(s.store, "n1")
    finally:
        s.close()
    assert [(r["decision"], r["by"]) for r in rows] == [("edit", "operator"), ("rollback", "policy:if-not-worse")]
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        dash = await open_first(pilot, app)
        n = app.ctl.view.nodes["n1"]
        assert n.decision_text == "edited · rolled back by backtest (worse than best child)"
        await pilot.press("2")
        await wait_for(pilot, lambda: dash.select_tree_node("n1"), what="tree node")
        detail = dash.query_one(NodeDetail)
        await wait_for(pilot, lambda: detail.loaded == "n1", what="detail")
        head = detail.plain.splitlines()[0]
        assert "edited · rolled back by backtest (worse than best child)" in head, head
        assert "review edited by you" in detail.plain
        assert "then rolled back by backtest (worse than best child)" in detail.plain
        label = str(dash.query_one(MergeTree).node_for("n1").label.plain)
        assert "rolled back" in label and "by backtest" in label and "policy:if-not-worse" not in label


def test_approved_then_rolled_back_by_the_backtest():
    from fgo_tui.model.state import NodeView

    n = NodeView("n1", status="done", decision="rollback", decided_by="policy:if-not-worse", reviewed="approve")
    assert n.display_status == "rolled back"
    assert n.decision_text == "approved · rolled back by backtest (worse than best child)"
    kept = NodeView("n2", status="done", decision="approve", decided_by="policy:if-not-worse", reviewed="approve")
    assert kept.decision_text == "approved (not worse than its best child)"


def test_review_rows_in_words():
    from fgo_tui.widgets.render import review_lines

    rows = [{"decision": "approve", "by": "policy:if-not-worse", "created_at": "t1"},
            {"decision": "rollback", "by": "policy:if-not-worse", "created_at": "t2"}]
    assert [t.plain for t in review_lines(rows)] == [
        "review approved by the if-not-worse policy · at t1",
        "then rolled back by backtest (worse than best child) · at t2"]
    assert [t.plain for t in review_lines([{"decision": "edit", "by": "operator", "created_at": "t"}])] == [
        "review edited by you · at t"]


def test_a_decided_node_stopped_before_its_backtest_is_not_pending(tmp_path, finished_template):
    """A file written before the engine stopped marking a decided node pending review: the
    view shows it decided and stopped, and nothing waits for review."""
    import sqlite3

    from fgo_engine.persistence.queries import open_readonly
    from fgo_tui.model.data import load_run_view

    path = tmp_path / "s.db"
    shutil.copy(finished_template, path)
    con = sqlite3.connect(path)
    with con:
        con.execute("update merge_nodes set status = 'pending_review' where id = 'n1'")  # n1: edited
        con.execute("update session set status = 'cancelled'")
    con.close()
    st = open_readonly(path)
    try:
        v = load_run_view(st)
    finally:
        st.close()
    n = v.nodes["n1"]
    assert v.pending_review is None and n.status == "stopped"
    assert n.decision_text == "edited · backtest not finished (stopped; r resumes)"



def test_a_decided_node_under_backtest_reads_with_separators():
    from fgo_tui.model.state import NodeView
    from fgo_tui.widgets.node_detail import node_state

    n = NodeView("n1", status="backtesting", decision="rollback", decided_by="operator")
    assert node_state(n).plain == "backtesting · rolled back · backtest running"
    n = NodeView("n1", status="backtesting", decision="approve", decided_by="operator")
    assert node_state(n).plain == "backtesting · approved · backtest running"
    done = NodeView("n1", status="done", decision="approve", decided_by="operator")
    assert node_state(done).plain == "approved (by you)"
