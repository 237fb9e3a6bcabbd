"""Test scores where decisions are made (issue 24 item 9): at the end of a run the starting
module's test score is shown beside the result's (console, result, export, dashboard), and the
sessions list has a test column (CLI and app). No decision reads the test split."""
from __future__ import annotations

import io

from fgo_cli.main import main
from fgo_engine.persistence import queries
from fgo_engine.report.export import session_report, to_markdown
from fgo_engine.run.console import ConsolePrinter
from fgo_engine.run.session import Session


def test_the_starting_module_and_the_result_side_by_side(tmp_path, toy_config, capsys):
    out = io.StringIO()
    path = tmp_path / "sessions" / "t.db"
    path.parent.mkdir()
    s = Session.create(path, toy_config(review="auto", subsets=2, epochs=1), sinks=[ConsolePrinter(out, heartbeat=0)])
    try:
        res = s.run()
        s.store.flush()
        assert res.status == "done" and res.test_score is not None and res.start_test_score is not None
        assert res.start_test_score == queries.mean_test_score(s.store, "initial")
        report = session_report(s.store)
        rows = s.store.query("select count(*) n from ledger where phase = 'test'")
        assert rows[0]["n"] >= 2 * len(s.tasks("test"))  # the result and the starting module, each on every test task
    finally:
        s.close()
    line = next(ln for ln in out.getvalue().splitlines() if "finished: done" in ln)
    assert f"test {res.start_test_score:.3f} → {res.test_score:.3f} (starting module → result)" in line
    md = to_markdown(report)
    assert "| category | starting module | result |" in md and "no decision of the run read them" in md
    assert f"| **overall** | **{res.start_test_score:.3f}** | **{res.test_score:.3f}** |" in md
    again = Session.open(path)  # a finished session reports both, from its rows
    try:
        done = again.run()
    finally:
        again.close()
    assert (done.start_test_score, done.test_score) == (res.start_test_score, res.test_score)
    capsys.readouterr()
    assert main(["sessions", "list", "--dir", str(path.parent)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert "TEST" in table[0].split()
    row = next(ln for ln in table if ln.startswith("t.db"))
    assert f"{res.test_score:.3f}" in row.split()


def test_vanilla_tests_once(tmp_path, toy_config):
    s = Session.create(tmp_path / "v.db", toy_config(method="vanilla"))
    try:
        res = s.run()
        s.store.flush()
        n_test = len(s.tasks("test"))
        rows = s.store.query("select count(*) n from trajectories where phase = 'test'")
    finally:
        s.close()
    assert res.start_test_score == res.test_score  # its result is the starting module: tested once
    assert rows[0]["n"] == n_test
