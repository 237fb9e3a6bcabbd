"""Screenshots of the main views (sessions, dashboard, merge tree, review, audit, the
new-session form, help) on a finished toy session at 100x30 and 160x50 (fixed size, cursor blink off, frozen timestamps and elapsed time, no clock in view).
Update with `pytest tests/app/test_snapshots.py --snapshot-update`."""
from __future__ import annotations

import pytest

from .conftest import dashboard_drawn, open_first, sessions_ready, wait_for

SIZES = pytest.mark.parametrize("size", [(100, 30), (160, 50)], ids=["100x30", "160x50"])


@SIZES
def test_sessions_screen(snap_compare, make_app, finished_session, size):
    async def run_before(pilot):
        await sessions_ready(pilot, pilot.app)

    assert snap_compare(make_app(), terminal_size=size, run_before=run_before)


@SIZES
def test_dashboard(snap_compare, make_app, finished_session, size):
    async def run_before(pilot):
        await dashboard_drawn(pilot, await open_first(pilot, pilot.app))

    assert snap_compare(make_app(), terminal_size=size, run_before=run_before)


@SIZES
def test_merge_tree(snap_compare, make_app, finished_session, size):
    from fgo_tui.widgets.node_detail import NodeDetail

    async def run_before(pilot):
        dash = await dashboard_drawn(pilot, await open_first(pilot, pilot.app))
        await pilot.press("2")
        await wait_for(pilot, lambda: dash.select_tree_node("n1"), what="tree node n1")
        await wait_for(pilot, lambda: dash.query_one(NodeDetail).loaded == "n1", what="n1 detail")
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=size, run_before=run_before)


@SIZES
def test_review_modal(snap_compare, make_app, finished_session, size):
    from fgo_engine.persistence.queries import review_request
    from fgo_tui.screens.review import ReviewScreen

    async def run_before(pilot):
        app = pilot.app
        await dashboard_drawn(pilot, await open_first(pilot, app))
        store = app.ctl.store
        request = review_request(store, "n2")
        app.push_screen(ReviewScreen(request, store=store, auto=False,
                                     score_before=app.ctl.view.nodes["n2"].score_before))
        # mounted, the diff drawn, the children's figures read and the first button focused:
        # the state the screenshot shows
        await wait_for(pilot, lambda: isinstance(app.screen, ReviewScreen) and app.screen.is_mounted
                       and app.screen.diff_plain and app.screen.children_loaded and app.focused is not None
                       and app.focused.id == "approve", what="review")
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=size, run_before=run_before)


@SIZES
def test_audit(snap_compare, make_app, finished_session, size):
    from fgo_tui.screens.audit import AuditScreen

    async def run_before(pilot):
        app = pilot.app
        dash = await open_first(pilot, app)
        await pilot.press("2")
        await wait_for(pilot, lambda: dash.select_tree_node("n1"), what="tree node n1")
        await pilot.press("a")
        audit = await wait_for(pilot, lambda: app.screen if isinstance(app.screen, AuditScreen) else None,
                               what="audit")
        await wait_for(pilot, lambda: audit.loaded == audit.module_id, what="audit loaded")
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=size, run_before=run_before)


@SIZES
def test_new_session_form(snap_compare, make_app, finished_session, size):
    from fgo_tui.screens.new_session import NewSessionScreen

    async def run_before(pilot):
        app = pilot.app
        await sessions_ready(pilot, app)
        await pilot.press("n")
        form = await wait_for(pilot, lambda: app.screen if isinstance(app.screen, NewSessionScreen) else None,
                              what="the form")
        await wait_for(pilot, lambda: form.projection is not None, what="the projection")
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=size, run_before=run_before)


@SIZES
def test_help_on_the_dashboard(snap_compare, make_app, finished_session, size):
    from fgo_tui.screens.help import HelpScreen

    async def run_before(pilot):
        app = pilot.app
        await dashboard_drawn(pilot, await open_first(pilot, app))
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen) and app.screen.is_mounted, what="help")
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=size, run_before=run_before)


class _LockedElsewhere:
    """A session factory for a session another process holds: opening it for writing is refused."""

    def create(self, path, config, *, gate, sinks):
        raise AssertionError("not used")

    def open(self, path, *, overrides, gate, sinks):
        from fgo_engine.errors import SessionLockedError

        raise SessionLockedError(f"{path} is in use by pid 4242 on host studio")


@SIZES
def test_following_a_run_elsewhere(snap_compare, make_app, finished_session, size, monkeypatch):
    from fgo_engine.persistence import queries

    monkeypatch.setattr(queries, "session_holder", lambda path: "pid 4242 on host studio")

    async def run_before(pilot):
        app = pilot.app
        dash = await dashboard_drawn(pilot, await open_first(pilot, app))
        await wait_for(pilot, lambda: app.ctl.following and "following a run elsewhere"
                       in dash.query_one("#run-bar").plain, what="the follow note")
        await pilot.pause()

    assert snap_compare(make_app(session_factory=_LockedElsewhere()), terminal_size=size, run_before=run_before)
