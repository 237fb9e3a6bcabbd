"""The bench's evidence: if-not-worse judged on fresh draws, baselines timed fairly
(independent evaluations side by side, batch-wise's N×E steps), training time apart
from the test phase, and the bench's conditions (window, review, models) as settings."""
from __future__ import annotations

import json
import random
import sqlite3

import pytest

from fgo_engine.config import BENCH_DEFAULTS, RunConfig
from fgo_engine.method import runtime as runtime_mod
from fgo_engine.method.methods import BatchWise
from fgo_engine.run import bench
from fgo_engine.run.session import Session
from fgo_engine.types import Task


def _run(tmp_path, cfg, name="s"):
    s = Session.create(tmp_path / f"{name}.db", cfg)
    try:
        res = s.run()
        s.store.flush()
    finally:
        s.close()
    return res, sqlite3.connect(tmp_path / f"{name}.db")


@pytest.mark.parametrize("backtest", ["full", "adaptive"])
def test_if_not_worse_judges_merge_and_best_child_on_the_same_fresh_draws(tmp_path, toy_config, backtest):
    res, con = _run(tmp_path, toy_config(subsets=4, threshold=2, review="if-not-worse", backtest=backtest))
    assert res.status == "done", res.message
    compared = con.execute("select id from merge_nodes where child_score is not null and "
                           "module_id is not null").fetchall()
    assert compared, "no merge was compared with its best child"
    rows = con.execute("select scope_id, sample, cache_hit from ledger where role = 'agent' and "
                       "phase = 'backtest'").fetchall()
    con.close()
    assert rows
    # neither module is served the runs it was selected on: the child's runs on its own subset
    # (sample 0, explore phase) used to come back from the cache
    assert [r for r in rows if r[2]] == []
    assert {(node, sample) for node, sample, _ in rows} == {(node, int(node[1:])) for node, _, _ in rows}


def test_auto_review_backtests_keep_the_first_draw(tmp_path, toy_config):
    res, con = _run(tmp_path, toy_config(subsets=4, threshold=2, review="auto"))
    assert res.status == "done"
    samples = {r[0] for r in con.execute("select sample from ledger where role = 'agent' and phase = 'backtest'")}
    con.close()
    assert samples == {0}


def _tasks(n):
    return [Task(f"t{i}", f"task {i}", None, category=f"c{i % 3}") for i in range(n)]


@pytest.mark.parametrize(("n_train", "subsets", "epochs"), [(9, 4, 2), (10, 4, 3), (8, 4, 2), (5, 5, 1), (24, 7, 2)])
def test_batch_wise_always_makes_n_times_e_steps(n_train, subsets, epochs):
    cfg = RunConfig.from_dict({"suite": "toy", "subsets": subsets, "epochs": epochs})
    train = _tasks(n_train)
    batches = BatchWise().batches(cfg, train, random.Random(0))
    assert len(batches) == subsets * epochs  # T=9, N=4 gave 6 steps with ⌈T/N⌉-sized chunks
    for e in range(epochs):
        epoch = batches[e * subsets:(e + 1) * subsets]
        assert [t.id for b in epoch for t in b] == [t.id for t in train]  # every task once per epoch, in order
        sizes = [len(b) for b in epoch]
        assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 1


def test_batch_wise_run_makes_n_times_e_steps(tmp_path, toy_config):
    res, con = _run(tmp_path, toy_config(method="batch-wise", subsets=4, epochs=2,
                                         suite_options={"n_train": 9, "n_test": 4}))
    steps = con.execute("select count(*) from epochs").fetchone()[0]
    con.close()
    assert res.status == "done" and res.optimizer_steps == 8 and steps == 9  # + the judging pass


@pytest.mark.parametrize("method", ["batch-wise", "bootstrapping", "all-at-once", "fgo"])
def test_best_module_and_candidate_are_evaluated_side_by_side(tmp_path, toy_config, monkeypatch, method):
    passes: list[list[str]] = []
    real = runtime_mod.Runtime.explore_together

    def spy(self, batch, **kw):
        if batch[0][3].phase == "explore":
            passes.append([module_id for _, module_id, _, _, _ in batch])
        return real(self, batch, **kw)

    monkeypatch.setattr(runtime_mod.Runtime, "explore_together", spy)
    res, con = _run(tmp_path, toy_config(method=method, subsets=3, epochs=2))
    candidates = con.execute("select count(*) from epochs where candidate_module_id is not null").fetchone()[0]
    con.close()
    assert res.status == "done" and candidates > 0
    # every step that judges a candidate submits it together with the best module
    assert sum(1 for p in passes if len(p) == 2) == candidates
    assert all(len(p) in (1, 2) for p in passes)


def test_training_time_leaves_the_test_phase_out(tmp_path):
    report = bench.run_bench("toy", methods=["all-at-once", "fgo"], subsets=3, epochs=1, latency=0.02,
                             progress=lambda s: None, out_dir=tmp_path)
    for m in ("all-at-once", "fgo"):
        run = report["methods"][m]["runs"][0]
        crit = run["critical_path"]
        assert crit["test"] > 0
        assert 0 < run["train_wall_seconds"] < run["wall_seconds"]
        assert run["train_critical_path_seconds"] == pytest.approx(crit["loops"] + crit["merge_tree"])
        assert run["train_critical_path_seconds"] < crit["seconds"]
    aao, fgo = report["methods"]["all-at-once"], report["methods"]["fgo"]
    ratio = report["fgo_vs_all_at_once"]["wall_time_ratio"]
    assert ratio == pytest.approx(aao["train_wall_seconds"][0] / fgo["train_wall_seconds"][0])
    md = bench.to_markdown(report)
    assert "| train s | train critical path s | wall s (with test) |" in md
    assert f"{fgo['train_wall_seconds'][0]:.1f}" in md and "training wall time" in md


def test_window_sets_the_optimizer_and_merger_window_for_any_model():
    roles, budget = bench.bench_roles(model="fgo-sim/medium", window=128_000, timing={"latency": 0.1})
    assert roles["optimizer"]["model"] == "fgo-sim/medium:latency=0.1,window=128000"
    assert roles["merger"]["model"] == "fgo-sim/medium:latency=0.1,window=128000"
    assert roles["agent"]["model"] == roles["evaluator"]["model"] == "fgo-sim/medium:latency=0.1"
    assert budget is None  # the simulator reads with that window: its budget follows from it
    roles, budget = bench.bench_roles(model="openai/some-model", window=16_000, api_base="http://127.0.0.1:9")
    assert budget == 16_000 - 4_000  # a quarter of the window kept for the reply (≤ max_tokens 4096)
    assert {r["model"] for r in roles.values()} == {"openai/some-model"}
    assert {r["api_base"] for r in roles.values()} == {"http://127.0.0.1:9"}
    with pytest.raises(Exception, match="--window 10"):
        bench.bench_roles(model=None, window=10)


def test_fgo_bench_flags_reach_every_run(tmp_path):
    from fgo_cli.main import _parser, main

    b = next(a for a in _parser()._actions if a.dest == "command").choices["bench"]
    assert b.get_default("review") == BENCH_DEFAULTS["review"] == "auto"
    assert b.get_default("subsets") == BENCH_DEFAULTS["subsets"]
    conf = tmp_path / "c.json"
    conf.write_text(json.dumps({"suite": "toy", "cluster": "none", "roles": {"evaluator": "fgo-sim/small"}}))
    out = tmp_path / "out"
    assert main(["bench", "--suite", "toy", "--methods", "fgo,fgo-if-not-worse", "--subsets", "2", "--epochs", "1",
                 "--config", str(conf), "--window", "50000", "--agent-model", "fgo-sim/large",
                 "--out", str(out)]) == 0
    rep = json.loads((out / "bench-toy.json").read_text())
    assert rep["window"] == 50_000 and set(rep["methods"]) == {"fgo", "fgo-if-not-worse"}
    for label, review in (("fgo", "auto"), ("fgo-if-not-worse", "if-not-worse")):
        s = Session.open(out / "sessions" / f"toy-{label}-seed0.db")
        try:
            cfg = s.config
        finally:
            s.close()
        assert cfg.review == review and cfg.cluster == "none"
        assert cfg.roles["agent"].model == "fgo-sim/large"
        assert cfg.roles["evaluator"].model == "fgo-sim/small"
        assert cfg.roles["optimizer"].model == cfg.roles["merger"].model == "fgo-sim/medium:window=50000"


def test_every_run_keeps_its_per_task_test_scores_and_the_adopted_text(tmp_path):
    report = bench.run_bench("toy", methods=["vanilla", "fgo"], subsets=2, epochs=1, seeds=2,
                             progress=lambda s: None, out_dir=tmp_path)
    for label in ("vanilla", "fgo"):
        for run in report["methods"][label]["runs"]:
            assert run["test_by_task"] and run["final_text"]
            assert sum(run["test_by_task"].values()) / len(run["test_by_task"]) == pytest.approx(run["test_score"])
    d = bench.paired_difference(report, "fgo")
    n = sum(len(r["test_by_task"]) for r in report["methods"]["fgo"]["runs"])
    assert d is not None and d["paired_tasks"] == n
    mean = (sum(r["test_score"] * len(r["test_by_task"]) for r in report["methods"]["fgo"]["runs"])
            - sum(r["test_score"] * len(r["test_by_task"]) for r in report["methods"]["vanilla"]["runs"])) / n
    assert d["difference"] == pytest.approx(mean)
    assert d["low"] <= d["difference"] <= d["high"]
    assert "| fgo |" in bench.to_markdown(report).split("paired task by task")[1]


def test_the_paired_interval_is_the_normal_one_over_paired_tasks():
    runs = lambda scores: [{"seed": 0, "test_by_task": dict(enumerate(scores))}]  # noqa: E731
    report = {"methods": {"vanilla": {"runs": runs([0, 0, 1, 1])}, "fgo": {"runs": runs([1, 0, 1, 1])}}}
    d = bench.paired_difference(report, "fgo")
    assert d["difference"] == pytest.approx(0.25) and d["paired_tasks"] == 4
    assert d["high"] - d["difference"] == pytest.approx(1.959964 * 0.5 / 2)  # sd of [1,0,0,0] = 0.5


def test_the_critical_path_counts_side_by_side_episodes_once():
    from fgo_engine.report.critical_path import scope_chain

    def call(start, end, task="t1"):
        return {"phase": "explore", "epoch": 1, "task_id": task, "cache_hit": 0, "latency_ms": (end - start) * 1000,
                "started_at": float(start), "ended_at": float(end)}

    # the best module's episode (two turns, 0-1 and 1-3) beside the candidate's (0.5-2.5)
    rows = [call(0, 1), call(0.5, 2.5), call(1, 3)]
    assert scope_chain(rows) == pytest.approx(3.0)  # the sum of all three (5 s) was counted before
    assert scope_chain([{**r, "started_at": None} for r in rows]) == pytest.approx(5.0)  # no times: one lane


def test_a_baselines_training_critical_path_is_not_longer_than_its_wall(tmp_path):
    report = bench.run_bench("toy", methods=["batch-wise"], subsets=3, epochs=2, latency=0.05,
                             progress=lambda s: None, out_dir=None)
    run = report["methods"]["batch-wise"]["runs"][0]
    assert run["train_critical_path_seconds"] <= run["train_wall_seconds"] * 1.05
