"""The review shows the merge rule by rule against each child (kept, rewritten, added, lost),
the children's category scores, and says what a roll back throws away before it happens."""
from __future__ import annotations

from fgo_engine.types import ChildInfo, Module, ReviewRequest

from .conftest import SIZE, wait_for

S0 = "You answer.\n- Heat things with the microwave.\n- Cool things in the fridge."
S1 = "You answer.\n- Look under the sink.\n- Cool things in the fridge."
MERGED = "You answer.\n- Heat things with the microwave 1.\n- Cool things in the fridge.\n- Open every drawer."


def request() -> ReviewRequest:
    return ReviewRequest("n1", Module("instruction", MERGED), (
        ChildInfo("s0", Module("instruction", S0), 0.75, 4, {"heat": 1.0, "look": 0.0}),
        ChildInfo("s1", Module("instruction", S1), 0.5, 4, {"heat": 0.0, "look": 1.0, "clean": 0.5}),
    ), 8)


async def test_rule_level_view_and_rollback_cost(make_app):
    from fgo_tui.screens.dialogs import ConfirmModal
    from fgo_tui.screens.review import ReviewScreen

    app = make_app()
    decisions = []
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        review = ReviewScreen(request())
        app.push_screen(review, decisions.append)
        await wait_for(pilot, lambda: app.screen is review and review.rules_plain, what="review")
        plain = review.rules_plain
        assert "vs s0: 2 kept · 1 rewritten · 1 added · 0 lost" in plain
        assert "vs s1: 2 kept · 0 rewritten · 2 added · 1 lost" in plain
        assert "− lost - Look under the sink." in plain
        assert "~ - Heat things with the microwave. → - Heat things with the microwave 1." in plain
        assert "- Open every drawer.  (new)" in plain
        assert "(lost)" in plain  # the matrix row of the rule no child passes on
        # focus is in the modal: the approve button
        assert app.focused is not None and app.focused.id == "approve"
        # a roll back says what it throws away, then asks
        await pilot.press("r")
        confirm = await wait_for(pilot, lambda: app.screen if isinstance(app.screen, ConfirmModal) else None,
                                 what="confirmation")
        assert "keeps s0's module" in review.rollback_plain
        assert "− - Heat things with the microwave 1." in review.rollback_plain
        assert "− - Open every drawer." in review.rollback_plain
        assert "look: s1 scores 1.000, s0 0.000" in review.rollback_plain
        # a category the kept child never ran is said so, not shown as "s0 —"
        assert "Categories s0 was never trained or scored on" in review.rollback_plain
        assert "  clean: s1 scores 0.500" in review.rollback_plain
        assert "—" not in review.rollback_plain
        await pilot.press("n")
        await wait_for(pilot, lambda: app.screen is review, what="back to the review")
        assert decisions == [] and confirm is not None
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), what="confirmation again")
        await pilot.press("y")
        await wait_for(pilot, lambda: decisions, what="decision")
        assert decisions[0].decision == "rollback"


async def test_the_editor_says_how_to_select_all(make_app):
    from textual.widgets import Static, TextArea

    from fgo_tui.screens.review import ReviewScreen

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        review = ReviewScreen(request())
        app.push_screen(review)
        await wait_for(pilot, lambda: app.screen is review and review.rules_plain, what="review")
        assert "f7" not in review.active_bindings  # only while editing
        await pilot.press("e")
        editor = review.query_one("#review-editor", TextArea)
        await wait_for(pilot, lambda: editor.has_focus, what="editor focused")
        hint = str(review.query_one("#review-error", Static).render())
        assert "F7 selects all" in hint and "ctrl+a goes to the line start" in hint
        assert "f7" in review.active_bindings  # and the footer shows it
        await pilot.press("f7")
        await wait_for(pilot, lambda: editor.selected_text == editor.text, what="everything selected")


async def test_rule_rows_use_the_width_of_a_wide_screen(make_app):
    from fgo_tui.screens.review import ReviewScreen

    rule = "- When the goal names a receptacle, go there first and look inside it before you search anywhere else."
    req = ReviewRequest("n1", Module("instruction", MERGED + "\n" + rule), request().children, 8)
    app = make_app()
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()
        review = ReviewScreen(req)
        app.push_screen(review)
        await wait_for(pilot, lambda: app.screen is review and review.rules_plain, what="review")
        await pilot.pause()
        diff = review.query_one("#review-diff")
        shown = [ln.text for ln in diff.render_lines(diff.region.reset_offset)]
        row = next(ln for ln in shown if "When the goal names a receptacle" in ln)
        # the row goes on to the right edge of its column, cut there (if at all), not at 60 characters
        assert len(row.rstrip()) > 80, row
