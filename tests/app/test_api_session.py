"""A session made by ``fgo_engine.optimize`` opens in the app like any other, even when its
agent is a lambda that no other process could import; an installed plugin's suite is offered
in the New session form."""
from __future__ import annotations

from pathlib import Path

import user_agents

import fgo_engine
from fgo_tui.screens.dashboard import DashboardScreen
from fgo_tui.screens.sessions import SessionsScreen

from .conftest import SIZE, wait_for


async def test_an_api_session_opens_in_the_app(make_app, sessions_dir):
    res = fgo_engine.optimize(user_agents.toy_tasks(n_train=6, n_test=2),
                              lambda module, task, llm: user_agents.toy_agent(module, task, llm),
                              user_agents.exact_scorer, instruction="You answer questions about glorps.",
                              model="fgo-sim/medium", subsets=2, epochs=1, session=sessions_dir / "mine.db")
    assert res.status == "done"
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await wait_for(pilot, lambda: app.screen if isinstance(app.screen, SessionsScreen)
                                and app.screen.loaded else None, what="sessions")
        assert [(Path(r["path"]).name, r["suite"], r["status"]) for r in screen.rows] == [
            ("mine.db", "user_agent", "done")]
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen if isinstance(app.screen, DashboardScreen) else None,
                       what="dashboard")
        await pilot.press("ctrl+q")
    assert app.return_code == 0


async def test_an_installed_plugin_suite_is_in_the_forms_suite_list(make_app):
    from fgo_tui.screens.new_session import NewSessionScreen

    from .conftest import sessions_ready

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await sessions_ready(pilot, app)
        await pilot.press("n")
        form = await wait_for(pilot, lambda: app.screen if isinstance(app.screen, NewSessionScreen) else None,
                              what="form")
        assert "lighthouse" in form.suites and "user_agent" not in form.suites
        form.query_one("#f-suite").value = "lighthouse"
        await wait_for(pilot, lambda: form.projection is not None and not form.error, what="a projection")
        await pilot.press("escape")
