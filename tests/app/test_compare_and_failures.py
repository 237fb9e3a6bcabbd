"""Comparing sessions side by side, and the failure drill-down (per task: every attempt, its
critique and its score), from the Sessions screen, the dashboard, the audit and the comparison."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from fgo_engine.persistence import queries as q
from fgo_engine.report.compare import compare, to_markdown

from .conftest import build_finished, dashboard_drawn, open_first, sessions_ready, wait_for

SIZES = pytest.mark.parametrize("size", [(100, 30), (160, 50)], ids=["100x30", "160x50"])


@pytest.fixture(scope="session")
def two_subset_template(tmp_path_factory) -> Path:
    """A second finished toy session on the same tasks, with two subsets and one epoch."""
    return build_finished(tmp_path_factory.mktemp("template2") / "toy-two.db", subsets=2, epochs=1)


@pytest.fixture
def two_sessions(sessions_dir, finished_template, two_subset_template) -> list[Path]:
    a, b = sessions_dir / "toy-finished.db", sessions_dir / "toy-two.db"
    shutil.copy(finished_template, a)
    shutil.copy(two_subset_template, b)
    os.utime(a, (1_700_000_200, 1_700_000_200))  # the list is newest first: a, then b
    os.utime(b, (1_700_000_100, 1_700_000_100))
    return [a, b]


# -- the read side ---------------------------------------------------------------------------


def test_task_outcomes_count_runs_failures_and_the_final_modules_score(finished_session):
    store = q.open_readonly(finished_session)
    try:
        rows = q.task_outcomes(store)
        final = q.final_module_id(store)
        tasks = store.rows("tasks")
        trajs = store.rows("trajectories")
    finally:
        store.close()
    assert {r["id"] for r in rows} == {t["id"] for t in tasks}
    for r in rows:
        mine = [t for t in trajs if t["task_id"] == r["id"]]
        assert r["runs"] == len(mine)
        assert r["failed"] == sum(1 for t in mine if not t["success"])
        with_final = [t["score"] for t in mine if t["module_id"] == final]
        assert r["final_score"] == (pytest.approx(sum(with_final) / len(with_final)) if with_final else None)
    assert any(r["final_score"] is not None for r in rows)


def test_a_task_history_lists_every_attempt_with_its_critique(finished_session):
    store = q.open_readonly(finished_session)
    try:
        failed = next(r for r in q.task_outcomes(store) if r["split"] == "train" and r["failed"])
        h = q.task_history(store, failed["id"])
        crits = store.rows("critiques", "task_id = ?", (failed["id"],))
    finally:
        store.close()
    assert h is not None and h.task.id == failed["id"] and h.split == "train"
    assert len(h.attempts) == failed["runs"]
    explore = [a for a in h.attempts if a.phase == "explore"]
    assert explore and all(a.where.startswith("s") and " epoch " in a.where for a in explore)
    assert sum(1 for a in explore if a.critique is not None) == len(crits)
    assert any(a.steps for a in h.attempts)
    assert sum(1 for a in h.attempts if not a.success) == failed["failed"]


def test_comparison_of_two_sessions_on_the_same_tasks(two_sessions):
    c = compare(two_sessions)
    assert [col.name for col in c.columns] == ["toy-finished", "toy-two"]
    assert c.same_tasks and not c.errors
    assert [(col.subsets, col.epochs) for col in c.columns] == [(3, 2), (2, 1)]
    assert all(col.tokens > 0 and col.final_text for col in c.columns)
    assert c.categories and all(col.by_category for col in c.columns)
    md = to_markdown(c)
    assert "| test score |" in md and "3 × 2" in md and "2 × 1" in md
    assert "not comparable" not in md
    assert ("--- toy-finished" in md) == (c.columns[0].final_text != c.columns[1].final_text)


def test_comparison_warns_when_the_tasks_differ(two_sessions, tmp_path):
    import sqlite3

    other = tmp_path / "other.db"
    shutil.copy(two_sessions[1], other)
    con = sqlite3.connect(other)
    with con:
        con.execute("update tasks set id = id || '-x' where rowid = (select min(rowid) from tasks)")
    con.close()
    c = compare([two_sessions[0], other, tmp_path / "missing.db"])
    assert not c.same_tasks
    assert str(tmp_path / "missing.db") in c.errors
    assert "not comparable" in to_markdown(c)


# -- the app ---------------------------------------------------------------------------------


async def test_mark_two_sessions_compare_them_and_drill_into_failures(make_app, two_sessions):
    from fgo_tui.screens.compare import CompareScreen
    from fgo_tui.screens.failures import FailuresScreen

    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await sessions_ready(pilot, app)
        await pilot.press("c")  # nothing marked yet: it says how
        await wait_for(pilot, lambda: any("Mark two or more" in n.message for n in app._notifications),
                       what="how-to note")
        assert not isinstance(app.screen, CompareScreen)
        await pilot.press("space", "down", "space")
        assert [p.name for p in screen.marked] == ["toy-finished.db", "toy-two.db"]
        await pilot.press("c")
        cmp = await wait_for(pilot, lambda: app.screen if isinstance(app.screen, CompareScreen)
                             and app.screen.loaded else None, what="comparison")
        assert cmp.query_one("#compare-sessions").row_count == 2
        assert cmp.query_one("#compare-categories").row_count == len(cmp.comparison.categories) > 0
        assert "Final module: toy-finished → toy-two" in cmp.plain  # the second row is highlighted
        await pilot.press("f")
        fail = await wait_for(pilot, lambda: app.screen if isinstance(app.screen, FailuresScreen)
                              and app.screen.loaded else None, what="failures")
        assert fail.path.name == "toy-two.db" and fail.failed_only
        assert all(r["final_score"] is not None and r["final_score"] < 1 for r in fail.shown)
        everything = len(fail.rows)
        await pilot.press("f")  # show every task
        await wait_for(pilot, lambda: len(fail.shown) == everything, what="all tasks shown")
        await wait_for(pilot, lambda: fail.task_id is not None and fail.task_id in fail.plain, what="history")
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is cmp, what="back to the comparison")


async def test_failures_filter_by_category(make_app, finished_session):
    from textual.widgets import Select

    from fgo_tui.screens.failures import FailuresScreen

    app = make_app()
    async with app.run_test(size=(160, 50)) as pilot:
        await sessions_ready(pilot, app)
        app.push_screen(FailuresScreen(finished_session))
        fail = await wait_for(pilot, lambda: app.screen if isinstance(app.screen, FailuresScreen)
                              and app.screen.loaded else None, what="failures")
        cats = sorted({r["category"] for r in fail.rows})
        assert len(cats) >= 2 and len(fail.shown) == len(fail.rows)
        fail.query_one("#failures-category", Select).value = cats[0]
        await wait_for(pilot, lambda: fail.shown and all(r["category"] == cats[0] for r in fail.shown),
                       what="one category")
        first = fail.shown[0]["id"]
        await wait_for(pilot, lambda: fail.task_id == first and "Attempts (" in fail.plain, what="its history")


async def test_failures_from_the_dashboard_and_the_audit(make_app, finished_session):
    from fgo_tui.screens.audit import AuditScreen
    from fgo_tui.screens.failures import FailuresScreen

    app = make_app()
    async with app.run_test(size=(160, 50)) as pilot:
        dash = await dashboard_drawn(pilot, await open_first(pilot, app))
        await pilot.press("f")
        fail = await wait_for(pilot, lambda: app.screen if isinstance(app.screen, FailuresScreen)
                              and app.screen.loaded else None, what="failures from the dashboard")
        assert fail.failed_only  # a finished run opens on what the final module failed
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is dash, what="dashboard again")
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, AuditScreen) and app.screen.loaded, what="audit")
        await pilot.press("f")
        await wait_for(pilot, lambda: isinstance(app.screen, FailuresScreen) and app.screen.loaded,
                       what="failures from the audit")


# -- screenshots -----------------------------------------------------------------------------


@SIZES
def test_compare_screen(snap_compare, make_app, two_sessions, size):
    from fgo_tui.screens.compare import CompareScreen

    async def run_before(pilot):
        app = pilot.app
        await sessions_ready(pilot, app)
        await pilot.press("space", "down", "space", "c")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.loaded, what="comparison")
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=size, run_before=run_before)


@SIZES
def test_failures_screen(snap_compare, make_app, finished_session, size):
    from fgo_tui.screens.failures import FailuresScreen

    async def run_before(pilot):
        app = pilot.app
        await sessions_ready(pilot, app)
        app.push_screen(FailuresScreen(finished_session, failed_only=True))
        await wait_for(pilot, lambda: isinstance(app.screen, FailuresScreen) and app.screen.loaded
                       and app.screen.task_id is not None and app.screen.task_id in app.screen.plain,
                       what="failures with a history")
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=size, run_before=run_before)
