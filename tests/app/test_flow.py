"""The operator's whole flow through the app, on the simulated LLM and the toy suite:
new session → live run → review (edit, roll back) → tree → quit → reopen."""
from __future__ import annotations

import sqlite3
from pathlib import Path

from textual.widgets import TextArea

from fgo_engine.types import subset_ref
from fgo_tui.screens.dashboard import DashboardScreen
from fgo_tui.screens.dialogs import ConfirmModal
from fgo_tui.screens.new_session import NewSessionScreen
from fgo_tui.screens.review import ReviewScreen
from fgo_tui.screens.sessions import SessionsScreen
from fgo_tui.widgets.merge_tree import MergeTree
from fgo_tui.widgets.node_detail import NodeDetail
from fgo_tui.widgets.token_bar import TokenBar

from .conftest import LIVE_MODEL, SIZE, StartPaused, settled, wait_for

MY_EDIT = "You answer questions about glorps.\n- Answer briefly.\n- [/x] operator rule: [bold]glorps[/] are teal."


def tree_state(app) -> dict[str, tuple]:
    v = app.ctl.view
    return {nid: (n.child_ids, n.display_status, n.score_before, n.score_after, n.module_id)
            for nid, n in v.nodes.items()}


def tree_labels(app) -> list[str]:
    tree = app.screen.query_one(MergeTree)
    out = []

    def walk(node, depth):
        for c in node.children:
            out.append("  " * depth + str(c.label.plain))
            walk(c, depth + 1)

    walk(tree.root, 0)
    return out


async def fill_form(pilot, screen, **values):
    for wid, value in values.items():
        w = screen.query_one(f"#{wid}")
        w.value = value
    await pilot.pause()


async def test_new_session_run_review_edit_rollback_and_reopen(make_app, sessions_dir):
    app = make_app(session_factory=StartPaused())
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, SessionsScreen) and app.screen.loaded, what="sessions")
        await pilot.press("n")
        form = await wait_for(pilot, lambda: app.screen if isinstance(app.screen, NewSessionScreen) else None,
                              what="new-session form")
        await fill_form(pilot, form, **{"f-suite": "toy", "f-subsets": "3", "f-epochs": "2", "f-threshold": "2",
                                        "f-review": "ask", "f-workers": "3", "f-name": "flow",
                                        **{f"f-model-{r}": LIVE_MODEL for r in
                                           ("agent", "evaluator", "optimizer", "merger")}})
        # the projection appears before anything starts
        await wait_for(pilot, lambda: form.projection is not None and not form.error, what="projection")
        assert form.projection.roles["agent"].calls_max > 0 and "merger" in form.projection.roles
        assert not (sessions_dir / "flow.db").exists()
        await pilot.press("ctrl+s")

        # the run starts held at its first LLM call (the factory pauses it): nothing streamed yet
        await wait_for(pilot, lambda: app.dashboard is not None and app.dashboard.is_mounted
                       and app.ctl.running and app.ctl.paused, what="dashboard of a paused run")
        dash, ctl = app.dashboard, app.ctl
        assert ctl.path == Path("sessions/flow.db")
        assert isinstance(app.screen, DashboardScreen)
        await wait_for(pilot, lambda: len(dash.panels) == 3 and all(p.is_mounted for p in dash.panels.values()),
                       what="three panels")
        assert all(p.log_widget.line_count == 0 and p.query_one(TokenBar).prompt == 0 for p in dash.panels.values())
        assert dash.check_action("resume", ()) and not dash.check_action("pause", ())
        await pilot.press("r")
        # trajectories stream into the subset panels and the token bars move
        await wait_for(pilot, lambda: all(p.log_widget.line_count > 0 for p in dash.panels.values()),
                       what="trajectory lines")
        await wait_for(pilot, lambda: all(p.query_one(TokenBar).prompt > 0 for p in dash.panels.values()),
                       what="token bars")
        panel = dash.panels[0]
        assert "▸ Answer:" in "\n".join(panel.log_widget.lines)
        bar = panel.query_one(TokenBar)
        assert bar.completion > 0 and "prompt" in bar.label

        # first merge: edit the module, backtest the edit
        review = await wait_for(pilot, lambda: app.screen if isinstance(app.screen, ReviewScreen)
                                and app.screen.diff_plain else None, timeout=60, what="first review")
        first_node = review.node_id
        assert "best child" in review.diff_plain and review.request.proposed.text.splitlines()[-1] in review.diff_plain
        await pilot.press("e")
        editor = review.query_one(TextArea)
        assert editor.has_focus and editor.text == review.request.proposed.text
        editor.text = MY_EDIT
        await pilot.press("ctrl+s")

        # second merge: roll back to the best child
        review2 = await wait_for(pilot, lambda: app.screen if isinstance(app.screen, ReviewScreen)
                                 and app.screen.node_id != first_node and app.screen.diff_plain else None,
                                 timeout=60, what="second review")
        second_node = review2.node_id
        best = max(review2.request.children, key=lambda c: c.score)
        await pilot.press("r")
        confirm = await wait_for(pilot, lambda: app.screen if isinstance(app.screen, ConfirmModal) else None,
                                 what="roll back confirmation")
        assert f"keeps {best.node_id}'s module" in review2.rollback_plain
        await pilot.press("y")
        assert confirm is not None

        await wait_for(pilot, lambda: not ctl.running and ctl.view.status == "done", timeout=60, what="run done")

        # the store says what the operator decided
        con = sqlite3.connect(sessions_dir / "flow.db")
        con.row_factory = sqlite3.Row
        assert con.execute("select status from session").fetchone()[0] == "done"  # the run flushed before it ended
        n1 = con.execute("select * from merge_nodes where id = ?", (first_node,)).fetchone()
        edited = con.execute("select * from modules where id = ?", (n1["module_id"],)).fetchone()
        assert edited["origin"] == "edit" and edited["text"] == MY_EDIT
        backtests = con.execute("select count(*) from trajectories where phase = 'backtest' and module_id = ?",
                                (edited["id"],)).fetchone()[0]
        assert backtests == len(n1["task_ids_json"].split(","))
        n2 = con.execute("select * from merge_nodes where id = ?", (second_node,)).fetchone()
        best_subset = subset_ref(best.node_id)
        best_module = con.execute("select best_module_id from subsets where id = ?", (best_subset,)
                                  ).fetchone()[0] if best_subset is not None else \
            con.execute("select module_id from merge_nodes where id = ?", (best.node_id,)).fetchone()[0]
        assert n2["module_id"] == best_module
        decisions = [tuple(r) for r in con.execute("select node_id, decision, by from reviews order by id")]
        assert decisions == [(first_node, "edit", "operator"), (second_node, "rollback", "operator")]
        con.close()

        # the tree shows both decisions; the node detail shows the edited text, literally
        await pilot.press("2")
        tree = dash.query_one(MergeTree)
        await wait_for(pilot, lambda: tree.node_for(first_node) is not None, what="tree node")
        labels = "\n".join(tree_labels(app))
        assert f"{first_node} edited" in labels and f"{second_node} rolled back" in labels
        assert dash.select_tree_node(first_node)
        detail = dash.query_one(NodeDetail)
        await wait_for(pilot, lambda: detail.loaded == first_node, what="node detail")
        assert "[/x] operator rule: [bold]glorps[/] are teal." in detail.plain
        assert "(your edit: what was backtested and kept)" in detail.plain
        # after a roll back, the module shown is the best child's, and says so
        assert dash.select_tree_node(second_node)
        await wait_for(pilot, lambda: detail.loaded == second_node, what="rolled back node detail")
        assert f"Module kept: {n2['module_id']}, the best child's (you rolled back; the merge was not kept)" \
            in detail.plain
        assert "(what was backtested" not in detail.plain
        assert dash.select_tree_node(first_node)
        await wait_for(pilot, lambda: detail.loaded == first_node, what="node detail again")
        before = tree_state(app)
        before_labels = tree_labels(app)
        await pilot.press("ctrl+q")
    assert app.return_code == 0

    # reopen from the sessions screen: everything as it was
    app2 = make_app()
    async with app2.run_test(size=SIZE) as pilot:
        screen = await wait_for(pilot, lambda: app2.screen if isinstance(app2.screen, SessionsScreen)
                                and app2.screen.loaded else None, what="sessions")
        assert [Path(r["path"]).name for r in screen.rows] == ["flow.db"]
        assert screen.rows[0]["status"] == "done"
        await pilot.press("enter")
        dash = await wait_for(pilot, lambda: app2.screen if isinstance(app2.screen, DashboardScreen) else None,
                              what="dashboard")
        await pilot.press("2")
        tree = dash.query_one(MergeTree)
        await wait_for(pilot, lambda: tree.node_for(first_node) is not None and tree_labels(app2) == before_labels,
                       what="the tree as it was")
        assert tree_state(app2) == before
        assert dash.select_tree_node(first_node)
        await wait_for(pilot, lambda: dash.query_one(NodeDetail).loaded == first_node, what="node detail")
        assert MY_EDIT.splitlines()[-1] in dash.query_one(NodeDetail).plain
        # the subset panels are rebuilt from the rows too (on their tab: hidden panels skip the stream)
        await pilot.press("1")
        await wait_for(pilot, lambda: dash.panels and all(p.is_mounted and p.log_widget.line_count > 0
                                                          for p in dash.panels.values()), what="panel history")
        await pilot.press("ctrl+q")


async def test_pause_holds_the_engine_and_resume_continues(make_app, sessions_dir):
    from fgo_engine import events as ev

    from .conftest import toy_config

    cfg = toy_config(model="fgo-sim/medium:latency=0.01", review="auto")
    factory = StartPaused(hold=ev.EpochDone)  # one subset thread waits at its first epoch: the run is mid-way
    app = make_app(new_config=cfg, session_path=sessions_dir / "pause.db", session_factory=factory)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.ctl is not None and app.ctl.running and app.ctl.paused,
                       what="run started, held")
        ctl = app.ctl
        await pilot.press("r")
        await wait_for(pilot, factory.reached.is_set, what="run going")
        await pilot.press("p")
        await wait_for(pilot, lambda: ctl.view.status == "paused", what="paused status")
        assert ctl.paused and ctl.running
        factory.release.set()
        # work in flight drains into a checkpoint, then nothing new happens while paused
        control = ctl.session.control
        await wait_for(pilot, lambda: control.parked >= 1, what="a worker held at a checkpoint")
        frozen = await settled(pilot, lambda: ctl.buffer.received, what="events while paused")
        assert control.paused and control.parked >= 1 and ctl.running
        con = sqlite3.connect(sessions_dir / "pause.db")
        assert con.execute("select status from session").fetchone()[0] == "paused"
        con.close()
        await pilot.press("r")
        await wait_for(pilot, lambda: ctl.view.status in ("running", "done") and ctl.buffer.received > frozen,
                       what="resumed")
        await wait_for(pilot, lambda: not ctl.running and ctl.view.status == "done", timeout=60, what="done")


async def test_quit_mid_review_then_resume_asks_again(make_app, sessions_dir):
    from .conftest import toy_config

    cfg = toy_config(model="fgo-sim/medium:latency=0.004")
    app = make_app(new_config=cfg, session_path=sessions_dir / "paused.db")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.ctl is not None and app.ctl.running, what="run started")
        ctl = app.ctl
        review = await wait_for(pilot, lambda: app.screen if isinstance(app.screen, ReviewScreen) else None,
                                timeout=60, what="review")
        pending = review.node_id
        await pilot.press("escape")  # decide later: the run keeps waiting
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen), what="back on the dashboard")
        assert ctl.pending_request is not None
        before = {k: v for k, v in tree_state(app).items() if k != pending}
        await pilot.press("ctrl+q")  # quitting during a run asks first
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), what="quit confirmation")
        await pilot.press("n")  # keep running
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen), what="back on the dashboard")
        assert ctl.running
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), what="quit confirmation again")
        await pilot.press("y")  # quitting cancels the run cleanly
        await wait_for(pilot, lambda: not ctl.running, what="run stopped")
    assert app.return_code == 130
    assert app.exit_note == "saved: fgo resume sessions/paused.db"
    con = sqlite3.connect(sessions_dir / "paused.db")
    assert con.execute("select status from session").fetchone()[0] == "cancelled"
    assert con.execute("select status from merge_nodes where id = ?", (pending,)).fetchone()[0] == "pending_review"
    con.close()

    app2 = make_app()
    async with app2.run_test(size=SIZE) as pilot:
        screen = await wait_for(pilot, lambda: app2.screen if isinstance(app2.screen, SessionsScreen)
                                and app2.screen.loaded else None, what="sessions")
        assert screen.rows[0]["status"] == "cancelled"
        await pilot.press("r")  # resume from the sessions screen
        # the pending review is asked again
        review = await wait_for(pilot, lambda: app2.screen if isinstance(app2.screen, ReviewScreen) else None,
                                timeout=60, what="review asked again")
        assert review.node_id == pending
        after = {k: v for k, v in tree_state(app2).items() if k in before}
        assert after == before
        await pilot.press("u")  # auto-approve from here on
        ctl = app2.ctl
        await wait_for(pilot, lambda: not ctl.running and ctl.view.status == "done", timeout=60, what="done")
        assert ctl.auto is True
        await pilot.press("ctrl+q")
    con = sqlite3.connect(sessions_dir / "paused.db")
    assert con.execute("select status from session").fetchone()[0] == "done"
    assert con.execute("select by from reviews where node_id = ?", (pending,)).fetchone()[0] == "policy:auto"
    con.close()


async def test_cancel_mid_subsets_then_resume(make_app, sessions_dir):
    from fgo_tui.screens.dialogs import ConfirmModal

    from .conftest import toy_config

    cfg = toy_config(model="fgo-sim/medium:latency=0.01", review="auto")
    app = make_app(new_config=cfg, session_path=sessions_dir / "cancel.db", session_factory=StartPaused())
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.ctl is not None and app.ctl.running and app.ctl.paused,
                       what="run held at its start")
        ctl = app.ctl
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), what="confirm cancel")
        await pilot.press("y")
        await wait_for(pilot, lambda: not ctl.running, what="run stopped")
        # a cancel inside an agent's loop is a cancel, not a failure
        assert ctl.view.status == "cancelled", ctl.view.message
        dash = app.screen
        assert dash.check_action("resume", ()) is True and dash.check_action("pause", ()) is False
        await pilot.press("r")
        await wait_for(pilot, lambda: not ctl.running and ctl.view.status == "done", timeout=60, what="done")
        assert ctl.view.subsets_done == 3 and ctl.view.nodes_done == 2


async def test_budget_stop_asks_for_a_new_budget(make_app, sessions_dir):
    from fgo_tui.screens.dialogs import BudgetModal

    from .conftest import toy_config

    cfg = toy_config(review="auto", budget_tokens=3000)
    app = make_app(new_config=cfg, session_path=sessions_dir / "budget.db")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.ctl is not None and app.ctl.view.status == "budget"
                       and not app.ctl.running, timeout=60, what="budget stop")
        ctl = app.ctl
        assert "budget" in ctl.view.message
        dash = app.screen
        assert dash.query_one("#budget-bar").display
        await pilot.press("r")
        modal = await wait_for(pilot, lambda: app.screen if isinstance(app.screen, BudgetModal) else None,
                               what="budget prompt")
        modal.query_one("Input").value = "abc"
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is modal and "positive whole number" in str(modal.query_one("#budget-error").render())
        modal.query_one("Input").value = "5000000"
        await pilot.press("enter")
        await wait_for(pilot, lambda: not ctl.running and ctl.view.status == "done", timeout=60, what="done")
    con = sqlite3.connect(sessions_dir / "budget.db")
    assert con.execute("select json_extract(config_json, '$.budget_tokens') from session").fetchone()[0] == 5000000
    con.close()
