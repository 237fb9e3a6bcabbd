"""Screens one at a time: the form explains bad input, delete asks first, LLM text is
shown literally, the help and palette are there, audit and export work."""
from __future__ import annotations

from pathlib import Path

from textual.widgets import Log, OptionList

from fgo_engine import events as ev
from fgo_tui.screens.audit import AuditScreen
from fgo_tui.screens.dashboard import DashboardScreen
from fgo_tui.screens.dialogs import ConfirmModal
from fgo_tui.screens.help import HelpScreen
from fgo_tui.screens.new_session import NewSessionScreen
from fgo_tui.screens.review import ReviewScreen
from fgo_tui.widgets.merge_tree import MergeTree
from fgo_tui.widgets.node_detail import NodeDetail

from .conftest import EDITED_TEXT, SIZE, open_first, sessions_ready, wait_for


def said(form) -> str:
    """What the form says: the side's line and every message shown beside a field."""
    beside = [str(b.render()) for b in form.query(".field-error") if b.has_class("-shown")]
    return "\n".join([form.error, *beside])


async def test_bad_form_input_is_explained_inline(make_app, sessions_dir):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await sessions_ready(pilot, app)
        await pilot.press("n")
        form = await wait_for(pilot, lambda: app.screen if isinstance(app.screen, NewSessionScreen) else None)
        form.query_one("#f-suite").value = "toy"
        form.query_one("#f-subsets").value = "0"
        await wait_for(pilot, lambda: form.error, what="inline error")
        assert "Subsets N must be a whole number ≥ 1" in str(form.query_one("#err-f-subsets").render())
        assert "Subsets N" in str(form.query_one("#form-error").render())  # the side names the field
        form.query_one("#f-subsets").value = "3"
        form.query_one("#f-epochs").value = "two"
        await wait_for(pilot, lambda: "Epochs must be" in said(form), what="epochs error")
        assert "'two'" in said(form)
        form.query_one("#f-epochs").value = "2"
        form.query_one("#f-model-agent").value = "fgo-sim/huge"
        await wait_for(pilot, lambda: "unknown simulated profile" in said(form), what="model error")
        form.query_one("#f-model-agent").value = "fgo-sim/medium"
        form.query_one("#f-options").value = "n_train"
        await wait_for(pilot, lambda: "key=value" in said(form), what="options error")
        await pilot.press("ctrl+s")  # refused: still on the form, no file written
        await pilot.pause()
        assert app.screen is form and not list(sessions_dir.iterdir())
        form.query_one("#f-options").value = "n_train=0"
        await wait_for(pilot, lambda: "no training tasks" in form.error, what="suite error from the worker")
        form.query_one("#f-options").value = ""
        await wait_for(pilot, lambda: not form.error and form.projection, what="valid again")
        # a JSONL suite without a file says what is missing
        form.query_one("#f-suite").value = "jsonl"
        await wait_for(pilot, lambda: "path of a task file" in said(form), what="jsonl error")
        assert form.query_one("#f-tasks").display
        tasks = sessions_dir.parent / "tasks.jsonl"
        tasks.write_text("".join(f'{{"id": "q{i}", "input": "2+{i}?", "expected": "{2 + i}"}}\n' for i in range(6)))
        form.query_one("#f-tasks").value = str(tasks)
        await wait_for(pilot, lambda: not form.error and form.projection, what="jsonl projection")
        shown = form.query_one("#projection").render().plain
        # no split in the file: a seeded quarter is held out, and the form says so (and what the simulator can't do)
        assert "4 training / 2 test" in shown
        assert "held out 2 of 6 tasks" in shown and "simulated LLM cannot answer" in shown
        csv = sessions_dir.parent / "tasks.csv"  # a CSV file through the same field
        csv.write_text("id,input,expected\n" + "".join(f"c{i},3+{i}?,{3 + i}\n" for i in range(8)))
        form.query_one("#f-tasks").value = str(csv)
        await wait_for(pilot, lambda: not form.error and "6 training / 2 test" in
                       form.query_one("#projection").render().plain, what="csv projection")
        form.query_one("#f-tasks").value = str(tasks)
        tasks.write_text('{"id": "q1", "input": "x"}\n')
        form.query_one("#f-scorer").value = "exact"  # any change re-validates
        await wait_for(pilot, lambda: "line 1" in form.error and "expected" in form.error, what="bad jsonl line")
        await pilot.press("escape")
        await sessions_ready(pilot, app)


async def test_delete_asks_for_confirmation(make_app, finished_session):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await sessions_ready(pilot, app)
        assert [Path(r["path"]).name for r in screen.rows] == ["toy-finished.db"]
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), what="confirm")
        await pilot.press("n")
        await pilot.pause()
        assert finished_session.exists() and app.screen is screen
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), what="confirm")
        await pilot.press("y")
        await wait_for(pilot, lambda: not finished_session.exists() and screen.loaded and not screen.rows,
                       what="deleted")


async def test_finished_session_opens_as_it_was(make_app, finished_session):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        dash = await open_first(pilot, app)
        v = app.ctl.view
        assert v.status == "done" and v.subsets_done == 3 and v.nodes_done == 2
        assert {n.id: n.display_status for n in v.nodes.values()} == {"n1": "edited", "n2": "rolled back"}
        assert v.tokens > 0 and v.train_score is not None
        # nothing to resume: the binding is hidden
        assert dash.check_action("resume", ()) is False
        await pilot.press("2")
        await wait_for(pilot, lambda: dash.select_tree_node("n1"), what="tree node n1")
        await wait_for(pilot, lambda: dash.query_one(NodeDetail).loaded == "n1", what="n1 detail")
        assert "[/x] literal [b]brackets[/b] stay text." in dash.query_one(NodeDetail).plain
        assert dash.select_tree_node("s0")
        await wait_for(pilot, lambda: dash.query_one(NodeDetail).loaded == "s0", what="s0 detail")
        assert "subset s0" in dash.query_one(NodeDetail).plain
        # audit the edited module: why it changed and the diff to the merger's proposal
        assert dash.select_tree_node("n1")
        await wait_for(pilot, lambda: dash.selected_module_id() == v.nodes["n1"].module_id, what="n1 selected")
        await pilot.press("a")
        audit = await wait_for(pilot, lambda: app.screen if isinstance(app.screen, AuditScreen)
                               and app.screen.module_id and app.screen.plain else None, what="audit")
        assert audit.module_id.startswith("n1.edited")
        await wait_for(pilot, lambda: audit.loaded == audit.module_id, what="audit loaded")
        assert "An operator edited the merged module of node n1" in audit.plain
        assert "+- [/x] literal [b]brackets[/b] stay text." in audit.plain
        # an optimizer step: the critiques and trajectories it saw
        ids = [m["id"] for m in audit.modules]
        step = next(i for i in ids if i.startswith("s0.e1."))
        audit.query_one(OptionList).highlighted = ids.index(step)
        await wait_for(pilot, lambda: audit.loaded == step, what="step audit loaded")
        assert audit.module_id == step
        assert "Critiques the optimizer saw" in audit.plain and "✗" in audit.plain
        assert "Trajectories the optimizer saw" in audit.plain
        assert "--- initial" in audit.plain
        await pilot.press("x")
        report = Path("sessions/toy-finished-report.md")
        await wait_for(pilot, report.exists, what="report")
        assert "## Merge tree" in report.read_text()
        await pilot.press("escape")
        assert app.screen is dash


async def test_llm_text_with_markup_is_shown_literally(make_app, finished_session):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        dash = await open_first(pilot, app)
        buf = app.ctl.buffer
        nasty = "[/x] [bold]not bold[/] [link=x]y[/link] [/]"
        buf(ev.AgentStep("subset", "0", "tr0", f"obs {nasty}", f"act {nasty}"))
        buf(ev.CritiqueMade(0, 3, "tr0", False, f"fail {nasty}", f"fix {nasty}"))
        buf(ev.ModuleProposed(0, 3, "s0.e3.nasty", f"rules\n- {nasty}"))
        buf(ev.Log("warning", f"log {nasty}"))
        buf(ev.MergeNodeUpdated("n9", None, ("n1", "n2"), "merging", 24))
        panel = dash.panels[0]
        log = panel.log_widget
        await wait_for(pilot, lambda: any(nasty in ln for ln in log.lines), what="step line")
        assert any(ln.startswith("tr0 ◂ obs") and nasty in ln for ln in log.lines)
        assert any(ln.startswith("tr0 ▸ act") and nasty in ln for ln in log.lines)
        await wait_for(pilot, lambda: nasty in panel.query_one(".sp-critique").plain, what="critique")
        await pilot.press("3")
        events_log = dash.query_one("#events-log", Log)
        await wait_for(pilot, lambda: any(nasty in ln for ln in events_log.lines), what="events log")
        await pilot.press("2")
        await pilot.pause()
        assert dash.query_one(MergeTree).node_for("n9") is not None
        # a review of a module full of markup-like text
        from fgo_engine.types import ChildInfo, Module, ReviewRequest

        req = ReviewRequest("n9", Module("instruction", f"merged\n- {nasty}"), (
            ChildInfo("n1", Module("instruction", EDITED_TEXT), 0.5, 8, {"colour": 0.5}),
            ChildInfo("n2", Module("instruction", f"- {nasty}"), 0.75, 8)), 16)
        app.push_screen(ReviewScreen(req))
        await pilot.pause()
        assert nasty in app.screen.diff_plain
        await pilot.press("e")
        await pilot.pause()
        assert nasty in app.screen.query_one("TextArea").text
        await pilot.press("escape", "escape")
        await pilot.pause()
        assert app.screen is dash and app.is_running  # nothing was parsed as markup, nothing crashed


async def test_help_and_command_palette(make_app, finished_session):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await open_first(pilot, app)
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), what="help")
        await pilot.press("escape")
        await pilot.pause()
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for t in ("Sessions", "New session", "Merge tree", "Audit modules", "Export report"):
            assert t in titles
        assert "Pause run" not in titles  # nothing is running
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"merge tree")
        await wait_for(pilot, lambda: palette_highlight(app) == "Merge tree", what="palette match")
        await pilot.press("enter")
        dash = await wait_for(pilot, lambda: app.screen if isinstance(app.screen, DashboardScreen)
                              and app.screen.tab_of() == "tab-tree" else None, what="tree via palette")
        assert dash.query_one(MergeTree).has_focus


def palette_highlight(app) -> str | None:
    """The command Enter would run in the command palette once its search has finished."""
    from textual.command import CommandList, CommandPalette

    if not isinstance(app.screen, CommandPalette):
        return None
    found = app.screen.query_one(CommandList)
    if found.option_count == 0 or found.has_class("--populating"):
        return None
    option = found.get_option_at_index(found.highlighted or 0)
    return getattr(option.hit, "text", None) or str(option.prompt)


def test_warm_up_imports_what_opening_a_session_needs_but_not_litellm(tmp_path):
    """After the first screen, a thread imports the store, the queries and the suites (so that
    opening a session starts at once), and never litellm (seconds, and only a run needs it)."""
    import os
    import subprocess
    import sys

    code = """
import asyncio, sys
from pathlib import Path
from fgo_tui.app import FGOApp

async def main():
    app = FGOApp(sessions_dir=Path(sys.argv[1]), cursor_blink=False)
    async with app.run_test(size=(100, 30)) as pilot:
        while not app.warmed.is_set():
            await pilot.pause(0.01)
    print(sorted(m for m in ("fgo_engine.run.session", "fgo_engine.persistence.queries", "sqlite_utils", "litellm",
                             "fgo_engine.suites.household") if m in sys.modules))

asyncio.run(main())
"""
    root = Path(__file__).resolve().parents[2]
    p = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=300,
                       cwd=root, env={**os.environ, "PYTHONPATH": str(root)})
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.strip().splitlines()[-1] == str(
        ["fgo_engine.persistence.queries", "fgo_engine.run.session", "fgo_engine.suites.household", "sqlite_utils"])


async def test_the_palettes_screenshot_lands_in_the_sessions_folder(make_app, sessions_dir):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await sessions_ready(pilot, app)
        app.action_screenshot()  # what the palette's "Screenshot" runs
        shots = await wait_for(pilot, lambda: list(sessions_dir.glob("*.svg")), what="the screenshot file")
        assert "<svg" in shots[0].read_text()[:2000]
