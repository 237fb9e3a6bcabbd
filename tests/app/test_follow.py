"""Following a run started elsewhere: a headless ``--review ask`` run in a subprocess opens in
the app as a live view, its reviews are answered from the app, and each side is killed once."""
from __future__ import annotations

import os
import signal

import pytest
from followed_run import BASE, finish, pending, reviews, run_cli, wait_until

from fgo_engine.persistence import inbox
from fgo_tui.screens.dashboard import DashboardScreen
from fgo_tui.screens.dialogs import ConfirmModal
from fgo_tui.screens.review import ReviewScreen

from .conftest import SIZE, sessions_ready, wait_for

pytestmark = pytest.mark.xdist_group("subprocess-runs")


def _kill(proc) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(30)


async def _dashboard(pilot, app):
    await wait_for(pilot, lambda: app.ctl is not None and app.ctl.following and app.dashboard is not None,
                   timeout=60, what="the dashboard following the run")
    return app.dashboard


async def _review(pilot, app, skip: set[str] = frozenset()):
    return await wait_for(pilot, lambda: app.screen if isinstance(app.screen, ReviewScreen)
                          and app.screen.node_id not in skip and app.screen.children_loaded else None,
                          timeout=120, what="a review of the run elsewhere")


async def test_the_app_follows_a_headless_run_and_answers_its_reviews(make_app, sessions_dir):
    db = sessions_dir / "elsewhere.db"
    proc = run_cli(db, "run", *BASE, "--session", str(db))
    try:
        # the app opens while the other process runs it and waits for a review
        wait_until(lambda: pending(db), what="a pending review", proc=proc)
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await sessions_ready(pilot, app)
            await pilot.press("enter")  # open it on the Sessions screen, as a user does
            await wait_for(pilot, lambda: app.ctl is not None and app.ctl.following, what="following")
            dash = app.dashboard
            review = await _review(pilot, app)
            first = review.node_id
            assert app.ctl.view.subsets_done >= 2, app.ctl.view.subsets  # what the other process did so far
            assert "following a run elsewhere" in dash.query_one("#run-bar").plain
            await pilot.press("r")  # roll it back, from the app
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), what="roll back confirmation")
            await pilot.press("y")
            await wait_for(pilot, lambda: (first, "rollback", "operator") in reviews(db), timeout=120,
                           what="the run elsewhere recording the app's decision")
            # the view keeps up with what the other process writes
            await wait_for(pilot, lambda: app.ctl.view.nodes[first].decision == "rollback", timeout=60,
                           what="the decision recorded elsewhere shown in the tree")
            assert any(f"merge {first}" in text for _, _, text in app.ctl.view.logs)
            # the app is "killed" right after its next decision: the decision is not lost
            second = await _review(pilot, app, skip={first})
            nxt = second.node_id
            await pilot.press("a")
            await wait_for(pilot, lambda: nxt in inbox.posted(db) or (nxt, "approve", "operator") in reviews(db),
                           what="the decision posted")
        out = finish(proc)
        assert proc.returncode == 0, out[-3000:]
        recorded = reviews(db)
        assert [r for r in recorded if r[0] == first] == [(first, "rollback", "operator")]
        assert [r for r in recorded if r[0] == nxt] == [(nxt, "approve", "operator")]
        assert "decided in the app" in out
    finally:
        _kill(proc)


async def test_a_followed_run_killed_elsewhere_is_taken_over_in_the_app(make_app, sessions_dir):
    db = sessions_dir / "taken.db"
    proc = run_cli(db, "run", *BASE, "--session", str(db))
    try:
        wait_until(lambda: pending(db), what="a pending review", proc=proc)
        app = make_app(resume_path=db)  # `fgo resume` while another process runs it: followed
        async with app.run_test(size=SIZE) as pilot:
            await _dashboard(pilot, app)
            review = await _review(pilot, app)
            os.kill(proc.pid, signal.SIGKILL)  # the runner dies with its review unanswered
            proc.wait(30)
            await wait_for(pilot, lambda: not app.ctl.follower.running_elsewhere, what="the lock released")
            await pilot.press("escape")  # later: back to the dashboard
            await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen), what="dashboard")
            await wait_for(pilot, lambda: "r resumes the run here" in app.screen.query_one("#run-bar").plain,
                           what="the note that the run can be taken over")
            await pilot.press("r")  # take it over: now this app runs it, and asks again
            again = await wait_for(pilot, lambda: app.screen if isinstance(app.screen, ReviewScreen)
                                   and app.ctl is not None and not app.ctl.following
                                   and app.screen.children_loaded else None, timeout=120,
                                   what="the review asked again by the app's own run")
            assert again.node_id == review.node_id
            await pilot.press("a")
            while app.ctl.view.status != "done":
                nxt = await wait_for(pilot, lambda: (isinstance(app.screen, ReviewScreen) and app.screen)
                                     or app.ctl.view.status == "done", timeout=120, what="next review or done")
                if isinstance(nxt, ReviewScreen):
                    await pilot.press("a")
                    await wait_for(pilot, lambda s=nxt: app.screen is not s, what="review closed")
        assert (review.node_id, "approve", "operator") in reviews(db)
    finally:
        _kill(proc)
