"""Fixtures for the app tests: the toy suite (registered by tests/conftest.py), a
sessions folder per test, finished sessions built headless, and bounded waiting."""
from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fgo_engine.types import ReviewDecision

SIZE = (160, 50)
FROZEN = "2025-01-01T12:00:00Z"
LIVE_MODEL = "fgo-sim/medium:latency=0.004"  # a little latency so streaming spans several drain ticks


def toy_dict(**kw: Any) -> dict[str, Any]:
    base = {"suite": "toy", "model": "fgo-sim/medium", "subsets": 3, "epochs": 2, "threshold": 2, "seed": 0,
            "workers": 3, "review": "ask"}
    base.update(kw)
    return base


def toy_config(**kw: Any):
    from fgo_engine.config import RunConfig

    return RunConfig.from_dict(toy_dict(**kw))


async def wait_for(pilot, cond: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll ``cond`` between short pauses of the app; fail after ``timeout`` seconds of app time."""
    steps = int(timeout / 0.05)
    for _ in range(steps):
        value = cond()
        if value:
            return value
        await pilot.pause(0.05)
    app = pilot.app
    notes = [n.message for n in app._notifications]
    ctl = getattr(app, "ctl", None)
    run = (ctl.view.status, ctl.running, ctl.paused, ctl.buffer.received) if ctl is not None else None
    raise AssertionError(f"timed out waiting for {what}; screen {app.screen!r}, notifications {notes}, "
                         f"form error {getattr(app.screen, 'error', None)!r}, run (status, running, paused, "
                         f"events) {run}")


async def settled(pilot, value: Callable[[], Any], polls: int = 10, timeout: float = 30.0, what: str = "value") -> Any:
    """Wait until ``value()`` stays the same for ``polls`` polls in a row; return it."""
    last, same = value(), 0
    for _ in range(int(timeout / 0.05)):
        await pilot.pause(0.05)
        now = value()
        same = same + 1 if now == last else 0
        last = now
        if same >= polls:
            return now
    raise AssertionError(f"{what} kept changing for {timeout} s")


async def sessions_ready(pilot, app):
    from fgo_tui.screens.sessions import SessionsScreen

    screen = await wait_for(pilot, lambda: app.screen if isinstance(app.screen, SessionsScreen)
                            and app.screen.loaded else None, what="sessions screen")
    # the table sizes its columns from the new rows on its next refresh: let pending messages run
    await pilot.pause()
    await pilot.pause()
    return screen


async def open_first(pilot, app):
    """Open the highlighted (first) session from the sessions screen; return its dashboard."""
    from fgo_tui.screens.dashboard import DashboardScreen

    await sessions_ready(pilot, app)
    await pilot.press("enter")
    return await wait_for(pilot, lambda: app.screen if isinstance(app.screen, DashboardScreen) and app.screen.panels
                          and all(p.is_mounted for p in app.screen.panels.values()) else None, what="dashboard")


async def dashboard_drawn(pilot, dash):
    """Every subset panel shows its module and its replayed stream (what a screenshot shows)."""
    def drawn() -> bool:
        return bool(dash.panels) and all(p.is_mounted and p.lines_seen > 0 and p.query_one(".sp-module").plain
                                         for p in dash.panels.values())

    await wait_for(pilot, drawn, what="dashboard drawn")
    return dash


class StartPaused:
    """A session factory whose new sessions start paused: the run begins, reaches its first
    LLM call and waits there until the operator resumes (a deterministic starting point).

    ``hold`` (an event class) also holds the engine thread that emits the first such event
    until ``release`` is set, so a test can act while the run is known to be mid-way."""

    def __init__(self, hold: type | None = None):
        import threading

        from fgo_tui.model.run import EngineSessions

        self.inner = EngineSessions()
        self.hold = hold
        self.reached = threading.Event()
        self.release = threading.Event()

    def _holder(self, event) -> None:
        if self.hold is not None and isinstance(event, self.hold) and not self.reached.is_set():
            self.reached.set()
            self.release.wait(timeout=60)

    def create(self, path, config, *, gate, sinks):
        session = self.inner.create(path, config, gate=gate, sinks=[self._holder, *sinks])
        session.control.pause()
        return session

    def open(self, path, *, overrides, gate, sinks):
        return self.inner.open(path, overrides=overrides, gate=gate, sinks=sinks)


class ScriptedGate:
    """Review decisions by node id (headless session building)."""

    policy = "ask"
    post_check = False

    def __init__(self, decisions: dict[str, ReviewDecision]):
        self.decisions = decisions

    def review(self, request):
        return self.decisions.get(request.node_id, ReviewDecision("approve", by="operator"))


EDITED_TEXT = "You answer questions about glorps.\n- Answer briefly.\n- [/x] literal [b]brackets[/b] stay text."


def freeze_timestamps(path: Path) -> None:
    """Make every stored time the same, so screenshots do not depend on the clock."""
    con = sqlite3.connect(path)
    with con:
        for table, cols in (("session", ("created_at", "updated_at")), ("modules", ("created_at",)),
                            ("reviews", ("created_at",)), ("merge_nodes", ("created_at", "updated_at")),
                            ("trajectories", ("created_at",)), ("critiques", ("created_at",)),
                            ("epochs", ("created_at",))):
            con.execute(f"update {table} set " + ", ".join(f"{c} = ?" for c in cols), (FROZEN,) * len(cols))
        con.execute("insert or replace into meta (key, value) values ('elapsed_seconds', '42')")  # no clock either
    con.execute("pragma wal_checkpoint(truncate)")
    con.close()


def build_finished(path: Path, **kw: Any) -> Path:
    """A finished toy session: n1 edited by the operator, n2 rolled back."""
    from fgo_engine.run.session import Session

    gate = ScriptedGate({"n1": ReviewDecision("edit", EDITED_TEXT, by="operator"),
                         "n2": ReviewDecision("rollback", by="operator")})
    s = Session.create(path, toy_config(**kw), gate=gate)
    try:
        r = s.run()
        assert r.status == "done", r.message
    finally:
        s.close()
    freeze_timestamps(path)
    return path


@pytest.fixture(scope="session")
def finished_template(tmp_path_factory) -> Path:
    """Built once per test process; tests copy it."""
    return build_finished(tmp_path_factory.mktemp("template") / "toy-finished.db")


@pytest.fixture
def sessions_dir(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)  # the app shows the folder relative to the working directory
    d = tmp_path / "sessions"
    d.mkdir()
    return d


@pytest.fixture
def finished_session(sessions_dir, finished_template) -> Path:
    import shutil

    dest = sessions_dir / "toy-finished.db"
    shutil.copy(finished_template, dest)
    return dest


@pytest.fixture
def make_app(sessions_dir):
    from fgo_tui.app import FGOApp

    def make(**kw: Any) -> FGOApp:
        kw.setdefault("sessions_dir", Path("sessions"))
        kw.setdefault("cursor_blink", False)
        kw.setdefault("tick", 0.05)
        return FGOApp(**kw)

    return make
