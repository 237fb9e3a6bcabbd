"""The dashboard's progress while a run waits for a person: the ETA is paused and says why
(issue 24 item 2); the share counts every call of the run, per role."""
from __future__ import annotations

from fgo_tui.screens.review import ReviewScreen

from .conftest import SIZE, toy_config, wait_for


async def test_the_eta_pauses_and_says_so_while_a_review_waits(make_app, sessions_dir):
    app = make_app(new_config=toy_config(), session_path=sessions_dir / "wait.db")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ReviewScreen), timeout=60, what="a review")
        ctl = app.ctl
        assert ctl.waiting_for_person == "a review"
        share, eta = ctl.progress()
        assert eta is None and 0 < share < 1
        assert set(ctl.progress_meter.roles) >= {"agent", "evaluator", "optimizer"}  # one rate per role
        dash = app.dashboard
        dash._render_bar()
        bar = dash.query_one("#run-bar").plain
        assert "waiting for a review" in bar and "not counted" in bar and "ETA" in bar
        ctl.cancel()
        await wait_for(pilot, lambda: not ctl.running, timeout=60, what="run stopped")


async def test_the_form_projects_without_the_key(make_app, monkeypatch):
    from .test_form import open_form

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        form = await open_form(pilot, app)
        form.query_one("#f-suite").value = "toy"
        form.query_one("#f-model-all").value = "openai/gpt-4o-mini"
        await wait_for(pilot, lambda: "OPENAI_API_KEY is not set" in form.error, timeout=60, what="missing key")
        shown = await wait_for(pilot, lambda: (t := str(form.query_one("#projection").render()))
                               and "estimated wall time" in t and t, timeout=60, what="the projection")
        assert "total" in shown and "assumed" in shown and "at once" in shown
