"""Progress people can trust: "starting…" before the first call, queued subsets that are not
called running, per-pass task counters, backtest counters, an overall bar, a heartbeat
line headless, and elapsed time that survives a resume."""
from __future__ import annotations

import io

from fgo_engine import events as ev
from fgo_tui.model.bridge import EventBuffer
from fgo_tui.model.state import RunView
from fgo_tui.widgets.subset_panel import pass_progress

from .conftest import LIVE_MODEL, SIZE, StartPaused, toy_config, wait_for


def test_pass_and_backtest_counters():
    buf, view = EventBuffer(), RunView(epochs=2, workers=1)
    buf(ev.RunStarted("fgo", 2, 8, 8, {"agent": 10}, {"total": {"calls": 100}}, has_merge_tree=True,
                      max_merge_nodes=1))
    buf(ev.SubsetStarted(0, "subset 0 (a)", 4, ("a",)))
    for i in range(4):
        buf(ev.TaskFinished("subset", "0", "explore", 0, f"t{i}"))
    for i in range(3):
        buf(ev.TaskFinished("subset", "0", "explore", 1, f"t{i}"))
    buf(ev.SubsetStarted(2, "subset 2 (b)", 4, ("b",)))
    buf(ev.TaskFinished("subset", "2", "explore", 0, "t9"))
    view.apply(buf.drain())
    s0, s1 = view.subsets[0], view.subsets[1]
    # a 4-task subset: best and candidate on each task are 8 rollouts, never "3/8 tasks"
    assert pass_progress(s0, 2) == "epoch 1/2 · 3/8 rollouts"
    assert pass_progress(view.subsets[2], 2) == "baseline · 1/4 tasks"
    assert s1.status == "queued" and s1.queued == "1/1 workers busy"
    assert view.expected_calls == 100
    buf(ev.MergeNodeUpdated("n1", None, ("s0", "s1"), "backtesting", 8, 0.5))
    for i in range(5):
        buf(ev.TaskFinished("node", "n1", "backtest", 0, f"t{i}"))
    buf(ev.ScopeQueued("subset", "0", "m", True, 8, 8))
    view.apply(buf.drain())
    assert view.nodes["n1"].backtest_done == 5
    assert s0.status == "queued" and s0.queued == "8/8 slots busy"
    buf(ev.ScopeQueued("subset", "0", "m", False, 8, 8))
    buf(ev.ScopeQueued("subset", "0", "m", True, 8, 8))  # flips between two drains: the latest counts
    buf(ev.ScopeQueued("subset", "0", "m", False, 7, 8))
    view.apply(buf.drain())
    assert s0.status == "running" and s0.queued is None
    buf(ev.RunFinished("cancelled", None, None, None))
    view.apply(buf.drain())
    assert {s.status for s in view.subsets.values()} == {"stopped"}  # nothing left "running"


class HoldAllCalls(StartPaused):
    """Starts paused; once resumed, every TokensUsed waits (in its engine thread) until ``release``."""

    def __init__(self):
        super().__init__(hold=ev.TokensUsed)

    def _holder(self, event) -> None:
        if isinstance(event, ev.TokensUsed) and not self.release.is_set():
            self.reached.set()
            self.release.wait(timeout=60)


async def test_queued_starting_progress_and_elapsed(make_app, sessions_dir):
    from fgo_tui.screens.dashboard import DashboardScreen

    cfg = toy_config(model=LIVE_MODEL, subsets=3, epochs=1, workers=1, review="auto")
    factory = HoldAllCalls()  # every call's ledger event waits: the app has seen no call yet
    app = make_app(new_config=cfg, session_path=sessions_dir / "prog.db", session_factory=factory)
    async with app.run_test(size=SIZE) as pilot:
        ctl = await wait_for(pilot, lambda: app.ctl if app.ctl is not None and app.ctl.running and app.ctl.paused
                             and app.ctl.view.run_started else None, what="run held at its start")
        dash = await wait_for(pilot, lambda: app.screen if isinstance(app.screen, DashboardScreen)
                              and len(app.screen.panels) == 3 else None, what="three panels")
        await wait_for(pilot, lambda: dash.panels[2].is_mounted and hasattr(dash.panels[2], "_status")
                       and "queued (1/1 workers busy)" in dash.panels[2]._status.plain, what="queued subset")
        assert "running" not in dash.panels[2]._status.plain
        ctl.resume()
        await wait_for(pilot, lambda: factory.reached.is_set() and "starting…" in dash.query_one("#run-bar").plain,
                       what="starting… before the first call")
        factory.release.set()
        await wait_for(pilot, lambda: not ctl.running and ctl.view.status == "done", timeout=120, what="run done")
        await wait_for(pilot, lambda: "100%" in dash.query_one("#run-bar").plain, what="full progress bar")
        # charts: score per epoch in each panel, tokens per role and phase on one scale
        assert list(dash.panels[0]._spark.data) == [e.score for _, e in sorted(ctl.view.subsets[0].epochs.items())]
        await pilot.press("3")
        await wait_for(pilot, lambda: dash._usage, what="usage chart")
        roles, phases = (dict(x) for x in dash._usage)
        assert {"agent", "evaluator", "optimizer", "merger"} <= set(roles) and "explore" in phases
        from rich.console import Console

        console = Console(width=100, record=True, file=io.StringIO())
        from fgo_tui.widgets.usage_chart import usage_chart

        console.print(usage_chart(ctl.view))
        shown = console.export_text()
        assert "Tokens spent per role" in shown and "one scale" in shown and "explore" in shown
        elapsed = ctl.elapsed
        assert elapsed and elapsed > 0
        stored = float(ctl.store.meta_get("elapsed_seconds"))
        assert abs(stored - elapsed) < 0.5


async def test_a_subset_waiting_for_a_model_slot_shows_queued_then_running(make_app, sessions_dir):
    """One agent slot for two subsets of four tasks: the fair scheduler hands the slot back and
    forth, and the subset holding none is shown "queued (1/1 slots busy)", then running again."""
    from fgo_tui.screens.dashboard import DashboardScreen

    slow = "fgo-sim/medium:latency=0.25"  # its own model string: its own slot limit, held 0.25 s per call
    cfg = toy_config(subsets=2, epochs=1, workers=2, task_workers=8, review="auto",
                     suite_options={"n_train": 8, "n_test": 4},
                     roles={"agent": {"model": slow, "max_concurrency": 1}})
    app = make_app(new_config=cfg, session_path=sessions_dir / "slots.db")
    seen: dict[int, list[str]] = {0: [], 1: []}

    def watch() -> int | None:
        """Records each panel's status line as it changes; the subset seen queued, then running, if any."""
        dash = app.screen
        if not isinstance(dash, DashboardScreen):
            return None
        for sid, panel in dash.panels.items():
            if panel.is_mounted and hasattr(panel, "_status"):
                text = panel._status.plain
                if not seen[sid] or seen[sid][-1] != text:
                    seen[sid].append(text)
        for sid, texts in seen.items():
            queued = [i for i, t in enumerate(texts) if "queued (1/1 slots busy)" in t]
            if queued and any("running" in t for t in texts[queued[0]:]):
                return sid
        return None

    async with app.run_test(size=SIZE) as pilot:
        sid = await wait_for(pilot, lambda: (s := watch()) is not None and s + 1, timeout=60,
                             what="a subset queued for a slot, then running") - 1
        assert any("queued (1/1 slots busy)" in t and "running" not in t for t in seen[sid])
        assert app.ctl.view.subsets[sid].status in ("running", "queued", "done")
        app.ctl.cancel()
        await wait_for(pilot, lambda: not app.ctl.running, timeout=60, what="run stopped")


def test_headless_heartbeat_and_starting(tmp_path):
    """A heartbeat line comes while nothing else is printed (interval shortened for the test)."""
    from fgo_engine.run.console import ConsolePrinter
    from fgo_engine.run.session import Session

    out = io.StringIO()
    printer = ConsolePrinter(out, heartbeat=0.2)
    cfg = toy_config(model="fgo-sim/medium:latency=0.05", subsets=2, epochs=1, review="auto")
    s = Session.create(tmp_path / "hb.db", cfg, sinks=[printer])
    try:
        res = s.run()
    finally:
        printer.stop()
        s.close()
    text = out.getvalue()
    assert res.status == "done"
    assert "starting…" in text
    assert "running: " in text and "expected" in text  # the heartbeat, with its share of the expected calls
    assert text.index("starting…") < text.index("running: ")


async def test_a_panel_shows_the_starting_module_once_its_text_is_read():
    """The module text is read in a worker: a panel drawn before it arrives draws it on a later
    tick, though nothing else about its subset changed (s0 of the demo showed no text)."""
    from textual.app import App

    from fgo_tui.model.state import SubsetView
    from fgo_tui.widgets.subset_panel import SubsetPanel

    texts: dict[str, str] = {}
    panel = SubsetPanel(0, module_text=texts.get)

    class One(App):
        def compose(self):
            yield panel

    view, s = RunView(epochs=2, workers=1), SubsetView(0, name="s0", status="running")
    async with One().run_test(size=(60, 20)) as pilot:
        panel.update_from(s, view, 0, False)
        assert "Visit receptacles" not in panel._module.plain and not panel.shown
        texts["initial"] = "Your task.\n- Visit receptacles to find things."
        panel.update_from(s, view, 0, False)  # the same version: only the text arrived
        await pilot.pause()
        assert "Visit receptacles" in panel._module.plain and panel.shown
