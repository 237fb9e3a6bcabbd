"""A reopened session's Events tab shows what happened (issue 24 item 8): the session keeps its
event history (bounded), and the app replays it into the log when the session is opened."""
from __future__ import annotations

import sqlite3

from textual.widgets import Log

from fgo_engine import events as ev
from fgo_engine.persistence import queries, writes
from fgo_engine.run.session import Session

from .conftest import SIZE, open_first, toy_config, wait_for


def test_a_run_keeps_its_events_and_the_history_is_bounded(tmp_path):
    s = Session.create(tmp_path / "h.db", toy_config(review="auto", subsets=3, epochs=1))
    try:
        assert s.run().status == "done"
        s.store.flush()
        kinds = [k for _, k, _ in queries.event_history(s.store)]
        assert kinds[0] == "RunStarted" and kinds[-1] == "RunFinished"
        assert {"SubsetDone", "MergeNodeUpdated", "EpochDone"} <= set(kinds)
        e = ev.event_from_payload(*queries.event_history(s.store)[1][1:])
        assert e is not None and type(e).__name__ == kinds[1]
        n = len(kinds)
        for i in range(3 * writes.HISTORY_PRUNE_EVERY):
            writes.history_event(s.store, "Log", {"level": "info", "text": f"line {i}"}, keep=50)
        s.store.flush()
        kept = queries.event_history(s.store)
        assert 50 <= len(kept) < 50 + writes.HISTORY_PRUNE_EVERY and len(kept) < n + 600
        assert kept[-1][2]["text"] == f"line {3 * writes.HISTORY_PRUNE_EVERY - 1}"  # the newest stay
    finally:
        s.close()


async def test_a_reopened_session_shows_its_event_history(make_app, finished_session):
    con = sqlite3.connect(finished_session)
    stored = con.execute("select count(*) from events where kind = 'MergeNodeUpdated'").fetchone()[0]
    con.close()
    assert stored > 0  # today: the events table keeps only RunFinished
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        dash = await open_first(pilot, app)
        await pilot.press("3")
        log = dash.query_one("#events-log", Log)
        await wait_for(pilot, lambda: any("run finished: done" in ln for ln in log.lines), what="history drawn")
        lines = list(log.lines)
        assert any("subset s0 done" in ln for ln in lines)
        assert any("merge n1 of" in ln and "done" in ln for ln in lines)
        first_merge = next(i for i, ln in enumerate(lines) if "merge n1 of" in ln)
        assert first_merge < next(i for i, ln in enumerate(lines) if "run finished" in ln)  # in order


async def test_the_sessions_list_has_a_test_column(make_app, finished_session):
    from textual.widgets import DataTable

    from .conftest import sessions_ready

    st = queries.open_readonly(finished_session)
    try:
        score = queries.mean_test_score(st, queries.session_info(st)["final_module_id"])
    finally:
        st.close()
    assert score is not None
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await sessions_ready(pilot, app)
        table = screen.query_one(DataTable)
        assert "Test" in [str(c.label) for c in table.columns.values()]
        cells = [str(c) for c in table.get_row_at(0)]  # the one session
        assert f"{score:.3f}" in cells or f"{score:.2f}" in cells, cells
