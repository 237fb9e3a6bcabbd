"""Test scores per node and per candidate (issue 24 item 9): after the run with `test_modules`
(`--test-modules`, the form's "Test every module") every subset's module and every merged module
is scored on the test split, side by side, reported in the export and the tree's detail and
counted in the projection; no decision reads them. Off, only the result and the starting module."""
from __future__ import annotations

from fgo_cli.main import _parser, config_from_args
from fgo_engine.method.methods import project
from fgo_engine.persistence import queries
from fgo_engine.report.export import session_report, to_markdown
from fgo_engine.run.session import Session


def _run(path, cfg):
    s = Session.create(path, cfg)
    try:
        res = s.run()
        s.store.flush()
        return res, s
    except BaseException:
        s.close()
        raise


def test_every_module_of_the_tree_is_scored_on_the_test_split_after_the_run(tmp_path, toy_config):
    res, s = _run(tmp_path / "t.db", toy_config(review="auto", subsets=4, epochs=1, test_modules=True))
    try:
        assert res.status == "done"
        tree = [mid for mid, _ in queries.tree_modules(s.store)]
        subsets = [r["best_module_id"] for r in queries.subsets(s.store)]
        nodes = queries.merge_nodes(s.store)
        assert len(subsets) == 4 and len(nodes) >= 2
        assert set(subsets) <= set(tree) and {n["proposed_module_id"] for n in nodes} <= set(tree)
        scores = queries.module_test_scores(s.store)
        n_test = len(s.tasks("test"))
        for mid in tree + ["initial", res.final_module_id]:
            assert mid in scores, mid
            rows = s.store.query("select count(*) n from trajectories where phase = 'test' and module_id = ?", (mid,))
            assert rows[0]["n"] == n_test  # each module once on every test task
        assert scores[res.final_module_id] == res.test_score
        # no decision read them: every decision row was written before the first test trajectory
        first_test = s.store.query("select min(ts) t from ledger where phase = 'test'")[0]["t"]
        assert all(r["created_at"] <= first_test for r in queries.reviews(s.store))
        report = session_report(s.store)
    finally:
        s.close()
    assert [x["test_score"] for x in report["subsets"]] == [scores[m] for m in subsets]
    for n, row in zip(report["merge_tree"], nodes):
        assert (n["merged_test_score"], n["test_score"]) == (scores[row["proposed_module_id"]], scores[row["module_id"]])
    md = to_markdown(report)
    assert "| test (merged) | test (kept) |" in md and "no decision of the run read them" in md


def test_by_default_only_the_result_and_the_start_are_tested(tmp_path, toy_config):
    res, s = _run(tmp_path / "n.db", toy_config(review="auto", subsets=4, epochs=1))
    try:
        scores = queries.module_test_scores(s.store)
        report = session_report(s.store)
    finally:
        s.close()
    assert set(scores) == {"initial", res.final_module_id}
    assert all(x["test_score"] is None for x in report["subsets"])


def test_the_projection_counts_the_tree_modules_test_calls(toy_config):
    from fgo_engine.suites.base import build_suite

    on, off = toy_config(subsets=4, epochs=1, test_modules=True), toy_config(subsets=4, epochs=1)
    suite = build_suite(on)
    train, test = suite.train_tasks(), suite.test_tasks()
    p_on, p_off = project(on, suite, train, test), project(off, suite, train, test)
    extra = p_on.roles["agent"].calls - p_off.roles["agent"].calls
    # at least the 4 subsets' modules and the merges, less the result: (4 + 3 - 1) passes over the test split
    assert extra >= (4 + 3 - 1) * len(test) * 0.99


def test_the_cli_flag_turns_it_on():
    a = _parser().parse_args(["run", "--suite", "toy", "--model", "fgo-sim/small", "--test-modules"])
    assert config_from_args(a).test_modules is True
    a = _parser().parse_args(["run", "--suite", "toy", "--model", "fgo-sim/small"])
    assert config_from_args(a).test_modules is False
