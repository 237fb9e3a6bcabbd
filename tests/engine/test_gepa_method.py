"""GEPA side by side (`--methods gepa`): GEPA's own optimize through this run's gateway, on
the same tasks, with FGO's training rollouts as its metric-call budget; with the simulated
optimizer the table says its score means nothing instead of showing it."""
from __future__ import annotations

import sqlite3
import sys

import pytest
from fake_openai import ok

from fgo_engine.config import RunConfig
from fgo_engine.errors import ConfigError
from fgo_engine.method import gepa_method
from fgo_engine.method.methods import FGO
from fgo_engine.run import bench
from fgo_engine.types import Task

NEW = "You answer questions about glorps.\n- Answer briefly.\n- A glorp always has the colour teal."


def _tasks(n):
    return [Task(f"t{i}", f"task {i}", None, category=f"c{i % 2}") for i in range(n)]


def _rollouts(path, phases):
    con = sqlite3.connect(path)
    try:
        marks = ",".join("?" * len(phases))
        return con.execute(f"select count(*) from trajectories where phase in ({marks})", phases).fetchone()[0]
    finally:
        con.close()


def test_gepa_spends_fgos_training_rollouts_through_the_same_ledger(tmp_path):
    report = bench.run_bench("toy", methods=["fgo", "gepa"], subsets=2, epochs=1, progress=lambda s: None,
                             out_dir=tmp_path, suite_options={"n_train": 6, "n_test": 4})
    sessions = tmp_path / "sessions"
    fgo = _rollouts(sessions / "toy-fgo-seed0.db", ["explore", "backtest"])
    gepa = _rollouts(sessions / "toy-gepa-seed0.db", ["explore"])
    assert fgo == gepa > 0  # GEPA's metric calls = FGO's training episodes, none served from elsewhere
    run = report["methods"]["gepa"]["runs"][0]
    assert run["status"] == "done" and run["by_role"]["optimizer"]["calls"] > 0  # reflection via the gateway
    assert run["test_score"] is not None  # the same test split as every method


def test_the_table_says_the_simulated_optimizer_cannot_read_gepas_prompts(tmp_path):
    report = bench.run_bench("toy", methods=["gepa", "fgo"], subsets=2, epochs=1, progress=lambda s: None,
                             out_dir=None, suite_options={"n_train": 4, "n_test": 2})
    md = bench.to_markdown(report)
    gepa_row = next(line for line in md.splitlines() if line.startswith("| gepa |"))
    fgo_row = next(line for line in md.splitlines() if line.startswith("| fgo |"))
    assert "n/a†" in gepa_row and "n/a" not in fgo_row
    assert bench.UNREAD in md


def test_a_real_optimizer_gets_gepas_reflection_prompt_and_its_rows_show_scores(tmp_path, fake_openai):
    fake_openai.responder = lambda body: ok(f"```\n{NEW}\n```")
    report = bench.run_bench("toy", methods=["gepa"], subsets=2, epochs=1, progress=lambda s: None, out_dir=None,
                             suite_options={"n_train": 4, "n_test": 2},
                             roles={"optimizer": "openai/fake"},
                             extra={"roles": {"optimizer": {"api_base": fake_openai.url}}})
    assert fake_openai.requests, "GEPA's reflection never reached the optimizer's server"
    assert not report["methods"]["gepa"]["unread_prompts"]
    assert "n/a†" not in bench.to_markdown(report)


def test_the_budget_counts_fgos_loops_and_backtests():
    cfg = RunConfig.from_dict({"suite": "toy", "subsets": 2, "epochs": 2, "threshold": 2})
    plan = FGO().plan(cfg, _tasks(8), [])
    # 2 subsets × 4 tasks × (3 best passes + 2 candidates), one merge backtest on all 8
    assert gepa_method.rollouts(plan, "auto") == 2 * 4 * 5 + 8
    assert gepa_method.rollouts(plan, "if-not-worse") == 2 * 4 * 5 + 16


def test_without_the_extra_gepa_is_one_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "gepa", None)
    with pytest.raises(ConfigError, match=r"pip install 'fgo-studio\[gepa\]'"):
        gepa_method._gepa()
