"""Layout at 100x30: the run bar never wraps; a compact select shows that it has focus."""
from __future__ import annotations

from textual.widgets import Select

from .conftest import open_first, sessions_ready, wait_for


async def test_run_bar_lines_fit_100_columns(make_app, finished_session):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        dash = await open_first(pilot, app)
        bar = dash.query_one("#run-bar")
        await pilot.pause()
        width = bar.content_size.width
        assert any(len(ln) > width for ln in bar.plain.split("\n"))  # the bar's text is wider than the screen
        shown = bar.render().plain.split("\n")
        assert len(shown) == bar.styles.height.value  # one row per line, nothing pushed out of view
        assert all(len(ln) <= width for ln in shown), shown
        assert "elapsed 0:42" in shown[1] and shown[1].endswith("…")  # cropped at the token split, not before
        assert shown[-1].startswith("models ")
        # a long name crops the session's shape, never its status or review policy
        app.ctl.view.name = "household-20261207-071230-a-long-one"
        dash.refresh_view()
        await wait_for(pilot, lambda: "household-2026" in bar.render().plain, what="renamed")
        head = bar.render().plain.split("\n")[0]
        assert len(head) <= width and "● done  review: ask  subsets 3/3 · merges 2/≤2" in head, head


async def test_compact_select_has_a_visible_focus_state(make_app, sessions_dir):
    from fgo_tui.screens.new_session import NewSessionScreen

    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await sessions_ready(pilot, app)
        await pilot.press("n")
        form = await wait_for(pilot, lambda: app.screen if isinstance(app.screen, NewSessionScreen) else None,
                              what="form")
        select = form.query_one("#f-suite", Select)
        current = select.query_one("SelectCurrent")
        select.blur()
        await pilot.pause()
        blurred = current.styles.background
        select.focus()
        await pilot.pause()
        assert select.has_focus and current.styles.background != blurred


async def test_a_toast_never_covers_the_review_buttons(make_app, finished_session):
    from textual.widgets import Button
    from textual.widgets._toast import Toast

    from fgo_engine.persistence.queries import review_request
    from fgo_tui.screens.review import ReviewScreen

    app = make_app()
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        await open_first(pilot, app)
        app.push_screen(ReviewScreen(review_request(app.ctl.store, "n2"), store=app.ctl.store, auto=False))
        review = await wait_for(pilot, lambda: app.screen if isinstance(app.screen, ReviewScreen)
                                and app.screen.children_loaded else None, what="review")
        app.notify("all subsets optimized; merging now: here is the merge tree (1 shows the subsets)", timeout=30)
        toast = await wait_for(pilot, lambda: next(iter(review.query(Toast)), None), what="toast")
        await pilot.pause()
        buttons = [b.region for b in review.query(Button) if b.display]
        assert toast.region.area and all(not toast.region.overlaps(b) for b in buttons), (toast.region, buttons)


async def test_a_toast_on_the_dashboard_never_covers_its_run_bar(make_app, finished_session):
    from textual.widgets._toast import Toast

    app = make_app()
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        dash = await open_first(pilot, app)
        app.notify("a long note that wraps over two lines at a hundred columns, as the review toasts do", timeout=30)
        toast = await wait_for(pilot, lambda: next(iter(dash.query(Toast)), None), what="toast")
        await pilot.pause()
        bar, tabs = dash.query_one("#run-bar").region, dash.query_one("#dash-tabs").region
        assert toast.region.area and not toast.region.overlaps(bar), (toast.region, bar)
        assert toast.region.y >= tabs.y + 2  # below the tab labels too


async def test_every_footer_key_of_a_running_session_fits_100_columns(make_app, finished_session, monkeypatch):
    from textual.widgets._footer import FooterKey

    from fgo_tui.model.run import RunController

    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        dash = await open_first(pilot, app)
        app.ctl.running = True  # what a run with a review waiting shows: pause, cancel, review, …
        from fgo_engine.persistence.queries import review_request

        request = review_request(app.ctl.store, "n2")
        monkeypatch.setattr(RunController, "pending_request", property(lambda self: request))
        dash.refresh_bindings()

        def laid_out():  # the running footer, every key laid out (a fresh footer's regions are empty)
            keys = list(dash.query(FooterKey))
            ok = any(k.key_display == "v" for k in keys) and all(k.region.width > 0 for k in keys)
            return keys if ok else None

        keys = await wait_for(pilot, laid_out, what="the running footer")
        shown = {k.key_display: k.region for k in keys}
        assert {"p", "c", "v", "?"} <= set(shown), shown
        assert all(r.right <= 100 and r.width > 0 for r in shown.values()), shown
        # nothing covers another key (the palette key, docked right, once hid "? Help")
        regions = sorted(shown.values(), key=lambda r: r.x)
        assert all(a.right <= b.x for a, b in zip(regions, regions[1:])), regions
        app.ctl.running = False
        monkeypatch.undo()
