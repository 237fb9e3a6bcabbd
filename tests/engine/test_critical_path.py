"""The critical path from ledger rows alone: what follows what, what runs side by side."""
from __future__ import annotations

from fgo_engine.report.critical_path import critical_path


def row(scope_kind, scope_id, phase, epoch, task, ms, hit=0):
    return {"scope_kind": scope_kind, "scope_id": scope_id, "phase": phase, "epoch": epoch, "task_id": task,
            "latency_ms": ms, "cache_hit": hit, "started_at": None, "ended_at": None, "queue_ms": 0}


def test_epochs_follow_each_other_tasks_and_subsets_run_side_by_side_and_hits_cost_nothing():
    rows = [row("subset", "0", "explore", 0, "a", 1000), row("subset", "0", "explore", 0, "b", 3000),
            row("subset", "0", "optimize", 0, None, 500), row("subset", "0", "explore", 1, "a", 2000),
            row("subset", "0", "explore", 1, "a", 1000),  # a second call of the same episode
            row("subset", "1", "explore", 0, "c", 4000), row("subset", "1", "explore", 1, "c", 9000, hit=1),
            row("session", "", "test", 0, "t", 250)]
    cp = critical_path(rows, [])
    assert cp["loops"] == 3.0 + 0.5 + 3.0  # subset 0: max(1, 3) + optimizer + (2 + 1); subset 1: 4
    assert cp["seconds"] == 6.5 + 0.25


def test_a_merge_waits_for_its_children_and_backtests_its_module_beside_its_best_child():
    rows = [row("subset", "0", "explore", 0, "a", 1000),
            row("node", "n1", "merge", None, None, 200),
            row("node", "n1", "backtest", 0, "a", 700), row("node", "n1", "backtest", 1, "a", 900),
            row("node", "n2", "merge", None, None, 300),
            row("node", "n2", "backtest", 0, "b", 400), row("node", "n2", "backtest", 1, "a", 100)]
    nodes = [{"id": "n1", "child_ids_json": ["s0", "s1"]}, {"id": "n2", "child_ids_json": ["n1", "s2"]}]
    cp = critical_path(rows, nodes)
    assert abs(cp["merge_tree"] - ((0.2 + 0.9) + (0.3 + 0.4))) < 1e-9
    assert abs(cp["seconds"] - (1.0 + 1.8)) < 1e-9
