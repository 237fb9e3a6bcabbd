"""The new-session form: every field's error at once and next to the field, numbers as the
app prints them, a cost budget, one model for every role, a missing API key before Start."""
from __future__ import annotations

from .conftest import SIZE, sessions_ready, wait_for


async def open_form(pilot, app):
    from fgo_tui.screens.new_session import NewSessionScreen

    await sessions_ready(pilot, app)
    await pilot.press("n")
    return await wait_for(pilot, lambda: app.screen if isinstance(app.screen, NewSessionScreen) else None,
                          what="form")


async def test_errors_at_once_next_to_their_fields(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        form = await open_form(pilot, app)
        form.query_one("#f-suite").value = "toy"
        form.query_one("#f-subsets").value = "0"
        form.query_one("#f-epochs").value = "two"
        form.query_one("#f-model-optimizer").value = "fgo-sim/huge"
        await wait_for(pilot, lambda: "Epochs" in form.error and "Subsets N" in form.error, what="both errors")
        shown = {b.id: str(b.render()) for b in form.query(".field-error") if b.has_class("-shown")}
        assert set(shown) == {"err-f-subsets", "err-f-epochs", "err-f-model-optimizer"}
        assert "Subsets N must be a whole number ≥ 1" in shown["err-f-subsets"]  # the form's words
        assert "unknown simulated profile" in shown["err-f-model-optimizer"]
        # beside the fields only; the side says which fields, once
        assert form.error == "fix these 3 fields (✖ beside each): Subsets N, Epochs, optimizer model"
        await pilot.press("ctrl+s")  # refused while any field is wrong
        await pilot.pause()
        assert app.screen is form


async def test_numbers_budgets_and_one_model(make_app, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        form = await open_form(pilot, app)
        form.query_one("#f-suite").value = "toy"
        form.query_one("#f-budget").value = "1.2M"
        form.query_one("#f-budget-cost").value = "$2.50"
        form.query_one("#f-model-all").value = "fgo-sim/small"
        roles = [form.query_one(f"#f-model-{r}") for r in ("agent", "evaluator", "optimizer", "merger")]
        await wait_for(pilot, lambda: all(w.value == "fgo-sim/small" for w in roles), what="every role set")
        await wait_for(pilot, lambda: not form.error and form.projection is not None, what="valid form")
        cfg = form.build_config()
        assert cfg.budget_tokens == 1_200_000 and cfg.budget_cost == 2.5
        assert {rc.model for rc in cfg.roles.values()} == {"fgo-sim/small"}
        form.query_one("#f-model-all").value = "openai/gpt-4o-mini"
        await wait_for(pilot, lambda: "OPENAI_API_KEY is not set" in form.error, timeout=60, what="missing key")


async def test_one_run_at_a_time_is_said_before_the_form_is_filled(make_app, sessions_dir):
    from fgo_tui.screens.sessions import SessionsScreen

    from .conftest import StartPaused, toy_config

    cfg = toy_config(model="fgo-sim/medium:latency=0.004", review="auto")
    app = make_app(new_config=cfg, session_path=sessions_dir / "busy.db", session_factory=StartPaused())
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.ctl is not None and app.ctl.running and app.ctl.paused,
                       what="run started, held")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, SessionsScreen), what="sessions")
        form = await open_form(pilot, app)
        # said at once, above an empty form
        await wait_for(pilot, lambda: form.busy, what="busy line")
        assert "One run at a time: busy.db is running" in form.busy
        assert form.query_one("#form-busy").display
        form.query_one("#f-suite").value = "toy"
        form.query_one("#f-name").value = "second"
        await wait_for(pilot, lambda: not form.error and form.projection is not None, what="valid form")
        await pilot.press("ctrl+s")  # refused, next to the form, nothing created
        await wait_for(pilot, lambda: "busy.db is running" in form.error, what="refused")
        assert app.screen is form and not (sessions_dir / "second.db").exists()
        # once that run ends, the line goes and the form starts
        app.ctl.cancel()
        app.ctl.resume()
        await wait_for(pilot, lambda: not app.ctl.running, timeout=60, what="first run stopped")
        await wait_for(pilot, lambda: form.busy == "" and not form.query_one("#form-busy").display,
                       what="busy line gone")


async def test_form_backtest_field_review_default_blank_threshold_and_one_model_error(make_app):
    from fgo_engine.config import RunConfig

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        form = await open_form(pilot, app)
        form.query_one("#f-suite").value = "toy"
        await wait_for(pilot, lambda: not form.error and form.projection is not None, what="valid form")
        assert form.build_config().backtest == "full"
        form.query_one("#f-backtest").value = "adaptive"
        await pilot.pause()
        assert form.build_config().backtest == "adaptive"
        # the review default differs from the command line's, and the form says so
        notes = " ".join(str(n.render()) for n in form.query(".form-note"))
        assert f"fgo run defaults to {RunConfig.review}" in notes
        # a blank merge threshold is refused, not read as the default
        form.query_one("#f-threshold").value = ""
        await wait_for(pilot, lambda: "Merge threshold t" in form.error, what="blank threshold refused")
        shown = {b.id: str(b.render()) for b in form.query(".field-error") if b.has_class("-shown")}
        assert shown == {"err-f-threshold": "✖ Merge threshold t is needed: give a whole number"}
        form.query_one("#f-threshold").value = "2"
        # one unknown model for every role: said once, beside the first role, naming all
        form.query_one("#f-model-all").value = "fgo-sim/huge"
        await wait_for(pilot, lambda: "agent model" in form.error, what="model error")
        shown = {b.id: str(b.render()) for b in form.query(".field-error") if b.has_class("-shown")}
        assert list(shown) == ["err-f-model-agent"] and "(every role)" in shown["err-f-model-agent"]
        assert form.error.count("model") == 1


async def test_testing_every_module_is_a_field_and_its_cost_is_projected(make_app):
    from fgo_engine.method.methods import project
    from fgo_engine.suites.base import build_suite

    def expected(cfg):  # the agent calls the engine projects for this form's config
        suite = build_suite(cfg)
        return round(project(cfg, suite, suite.train_tasks(), suite.test_tasks()).roles["agent"].calls)

    def shown(form):
        return round(form.projection.roles["agent"].calls) if form.projection is not None else None

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        form = await open_form(pilot, app)
        form.query_one("#f-suite").value = "toy"
        off = form.build_config()
        assert off.test_modules is False  # off unless asked: it repeats the test split
        await wait_for(pilot, lambda: not form.error and shown(form) == expected(off), what="the toy projection")
        form.query_one("#f-test-modules").value = "yes"
        on = form.build_config()
        assert on.test_modules is True
        await wait_for(pilot, lambda: shown(form) == expected(on), what="reprojected with every module tested")
        assert expected(on) > expected(off)
