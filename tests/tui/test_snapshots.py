"""Screenshots of the four main views on a finished toy session (fixed size, frozen
timestamps, no clock in view). Update with `pytest tests/tui --snapshot-update`."""
from __future__ import annotations

from .conftest import SIZE, dashboard_drawn, open_first, sessions_ready, wait_for


def test_sessions_screen(snap_compare, make_app, finished_session):
    async def run_before(pilot):
        await sessions_ready(pilot, pilot.app)

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


def test_dashboard(snap_compare, make_app, finished_session):
    async def run_before(pilot):
        await dashboard_drawn(pilot, await open_first(pilot, pilot.app))

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


def test_merge_tree(snap_compare, make_app, finished_session):
    async def run_before(pilot):
        dash = await dashboard_drawn(pilot, await open_first(pilot, pilot.app))
        await pilot.press("2")
        await wait_for(pilot, lambda: dash.select_tree_node("n1"), what="tree node n1")
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


def test_review_modal(snap_compare, make_app, finished_session):
    from fgo_engine.queries import child_categories, review_request
    from fgo_tui.screens.review import ReviewScreen

    async def run_before(pilot):
        app = pilot.app
        await dashboard_drawn(pilot, await open_first(pilot, app))
        store = app.ctl.store
        request = review_request(store, "n2")
        app.push_screen(ReviewScreen(request, categories=child_categories(store, request), auto=False,
                                     score_before=app.ctl.view.nodes["n2"].score_before))
        # mounted, the diff drawn and the first button focused: the state the screenshot shows
        await wait_for(pilot, lambda: isinstance(app.screen, ReviewScreen) and app.screen.is_mounted
                       and app.screen.diff_plain and app.focused is not None and app.focused.id == "approve",
                       what="review")

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)
