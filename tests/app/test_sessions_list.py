"""The Sessions list: every column in view at 100 columns (the time of the last change moves under
the table there), and a stopped run that left merges waiting for review says so (issue 24, items
17 and 19)."""
from __future__ import annotations

from fgo_tui.screens.review import ReviewScreen
from fgo_tui.screens.sessions import FULL, NARROW, SessionsScreen

from .conftest import sessions_ready, toy_config, wait_for


def _fits(screen: SessionsScreen) -> bool:
    table = screen.query_one("#sessions-table")
    return table.virtual_size.width <= table.size.width


async def test_every_column_fits_at_100_and_the_time_moves_under_the_table(make_app, finished_session):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await sessions_ready(pilot, app)
        assert screen._columns == NARROW
        await wait_for(pilot, lambda: _fits(screen), what="the table within 100 columns")
        info = str(screen.query_one("#session-info").render())
        assert "last change 2025-01-01 12:00 UTC" in info
        assert "models: fgo-sim/medium (simulated)" in info
    async with make_app().run_test(size=(160, 50)) as pilot:
        screen = await sessions_ready(pilot, pilot.app)
        assert screen._columns == FULL
        await wait_for(pilot, lambda: _fits(screen), what="the table within 160 columns")
        assert "last change" not in str(screen.query_one("#session-info").render())


async def test_a_cancelled_session_with_a_pending_review_says_so(make_app, sessions_dir):
    app = make_app(new_config=toy_config(review="ask"), session_path=sessions_dir / "waiting.db")
    async with app.run_test(size=(100, 30)) as pilot:
        review = await wait_for(pilot, lambda: app.screen if isinstance(app.screen, ReviewScreen) else None,
                                timeout=60, what="a review")
        node = review.node_id
        # the list under the dashboard already knows the new session (before it is shown again)
        assert any(r["path"].endswith("waiting.db") for r in app.sessions_screen.rows)
        await pilot.press("escape")  # later
        app.ctl.cancel()
        await wait_for(pilot, lambda: not app.ctl.running, timeout=60, what="run stopped")
        await pilot.press("escape")
        screen = await wait_for(pilot, lambda: app.screen if isinstance(app.screen, SessionsScreen)
                                and app.screen.loaded and app.screen.rows
                                and app.screen.rows[0].get("status") == "cancelled" else None,
                                timeout=30, what="the list, cancelled")
        assert screen.rows[0]["pending_reviews"] == [node]
        table = screen.query_one("#sessions-table")
        assert table.get_cell_at((0, 1)).plain == "cancelled ⚠1"
        info = str(screen.query_one("#session-info").render())
        assert f"⚠ merge {node} waits for review: r resumes the run and asks" in info
        # and it is in view: the line under the table grows to hold it
        box = screen.query_one("#session-info")
        assert box.size.height >= len(info.splitlines()) == 3, (box.size, info)
