"""Opening the session that is already loaded again (esc → enter, or r) shows a live dashboard:
drawn on the terminal at once, and redrawn as the run goes on (issue 24, item 1)."""
from __future__ import annotations

import asyncio
import re

from rich.console import Console

from fgo_tui.screens.dashboard import DashboardScreen
from fgo_tui.screens.sessions import SessionsScreen
from fgo_tui.widgets.text_box import TextBox

from .conftest import SIZE, StartPaused, sessions_ready, toy_config, wait_for

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _bar(app) -> str:
    return app.screen.query_one("#run-bar", TextBox).plain


class Terminal:
    """What the app writes to the terminal (its display updates), as text."""

    def __init__(self, app):
        self.written: list[str] = []
        self._console = Console(width=SIZE[0], force_terminal=True, color_system=None)
        display = app._display

        def spy(screen, update):
            if isinstance(screen, DashboardScreen) and update is not None:
                self.written.append(ANSI.sub("", update.render_segments(self._console)))
            return display(screen, update)

        app._display = spy

    def shows(self, text: str) -> bool:
        return any(text in w for w in self.written)


async def on_terminal(terminal: Terminal, text: str, timeout: float = 10.0) -> None:
    """Wait without the Pilot: its pauses repaint the screen themselves, which would hide a
    screen that no longer repaints on its own."""
    for _ in range(int(timeout / 0.05)):
        if terminal.shows(text):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{text!r} never reached the terminal")


async def _drawn(pilot, app) -> DashboardScreen:
    def ready():
        s = app.screen
        return s if (isinstance(s, DashboardScreen) and s.is_mounted and s.panels
                     and all(p.is_mounted for p in s.panels.values()) and _bar(app).startswith("◆")) else None

    return await wait_for(pilot, ready, what="dashboard drawn")


async def test_reopening_the_loaded_session_draws_its_dashboard_and_keeps_it_live(make_app, sessions_dir):
    cfg = toy_config(model="fgo-sim/medium:latency=0.004", review="auto")
    app = make_app(new_config=cfg, session_path=sessions_dir / "again.db", session_factory=StartPaused())
    async with app.run_test(size=SIZE) as pilot:
        terminal = Terminal(app)
        await wait_for(pilot, lambda: app.ctl is not None and app.ctl.running and app.ctl.paused,
                       what="run started, held")
        ctl = app.ctl
        await _drawn(pilot, app)
        for n, key in enumerate(("enter", "r", "enter")):  # open, resume, open the session already loaded
            await pilot.press("escape")
            await sessions_ready(pilot, app)
            assert isinstance(app.screen, SessionsScreen)
            terminal.written.clear()
            await pilot.press(key)
            dash = await _drawn(pilot, app)
            assert dash.ctl is ctl
            await on_terminal(terminal, "◆ ")
            if n == 0:
                # a change while the run is held (no toast, no new screen) still reaches the terminal
                terminal.written.clear()
                ctl.view.name = "renamed-while-held"
                await on_terminal(terminal, "◆ renamed-while-held")
        # and it keeps drawing what happens next: the held run goes on and finishes on screen
        await wait_for(pilot, lambda: not ctl.paused, what="resumed by r")
        await wait_for(pilot, lambda: not ctl.running and ctl.view.status == "done", timeout=60, what="done")
        await on_terminal(terminal, "● done")
        panels = app.screen.panels
        await wait_for(pilot, lambda: all(p.lines_seen > 0 for p in panels.values()), what="streams drawn")
        await pilot.press("3")
        log = app.screen.query_one("#events-log")
        await wait_for(pilot, lambda: any("run finished" in ln for ln in log.lines), what="events drawn")
