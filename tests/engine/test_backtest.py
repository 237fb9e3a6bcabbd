"""Adaptive backtests: a growing stratified sample of the union, stopped when a confidence
bound separates the merge from its best child; the keep/roll-back decision must agree
with the full backtest."""
from __future__ import annotations

import pytest

from fgo_engine.method.backtest import stratified
from fgo_engine.method.review import IfNotWorse
from fgo_engine.run.session import Session
from fgo_engine.types import ReviewDecision


def test_an_exhausted_sample_is_the_exact_mean():
    est, lo, hi = stratified([(3, [1.0, 0.0, 1.0]), (1, [0.0])])
    assert est == pytest.approx(0.75 * 2 / 3) and lo == hi == est


def test_a_sample_showing_no_difference_is_not_certainty():
    est, lo, hi = stratified([(12, [0.0, 0.0, 0.0]), (12, [0.0, 0.0, 0.0])])
    assert est == 0 and lo < 0 < hi


class SabotageN1(IfNotWorse):
    """An operator edit on node n1 that throws away all guidance: the policy must roll it back."""

    def review(self, request):
        if request.node_id == "n1":
            return ReviewDecision("edit", "You know nothing about glorps.", by="test")
        return super().review(request)


def decisions(tmp_path, toy_config, mode, seed):
    cfg = toy_config(subsets=6, threshold=2, review="if-not-worse", backtest=mode, seed=seed,
                     suite_options={"n_train": 36, "n_test": 6})
    s = Session.create(tmp_path / f"{mode}-{seed}.db", cfg, gate=SabotageN1())
    try:
        res = s.run()
        assert res.status == "done", res.message
        s.store.flush()
        nodes = {n["id"]: n for n in s.store.rows("merge_nodes")}
        rolled = {r["node_id"] for r in s.store.rows("reviews", "decision = 'rollback'")}
        kept = {nid: (nid not in rolled) for nid in nodes}
        runs = s.store.count("ledger", "phase = 'backtest' and role = 'agent' and cache_hit = 0")
        return kept, nodes, runs
    finally:
        s.close()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_adaptive_and_full_backtests_agree_on_keep_or_roll_back(tmp_path, toy_config, seed):
    full_kept, full_nodes, full_runs = decisions(tmp_path, toy_config, "full", seed)
    ad_kept, ad_nodes, ad_runs = decisions(tmp_path, toy_config, "adaptive", seed)
    assert ad_kept == full_kept
    assert not full_kept["n1"]  # the sabotaged edit was caught both ways
    for n in ad_nodes.values():
        assert n["backtest_mode"] in ("adaptive", "full")
        assert 0 < n["backtest_tasks"] <= len(n["task_ids_json"])
        if n["backtest_mode"] == "adaptive":
            lo, hi = n["ci_low"], n["ci_high"]
            assert lo <= hi and (lo > 0 or hi < 0 or n["backtest_tasks"] == len(n["task_ids_json"]))
    assert all(n["backtest_mode"] == "full" and n["backtest_tasks"] == len(n["task_ids_json"])
               for n in full_nodes.values())
    assert ad_runs < full_runs
