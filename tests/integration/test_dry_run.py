"""A projection without keys (issue 24 item 10): `fgo run --dry-run` and the form show calls,
tokens, cost and an estimated wall time whether or not the provider's key is set, stating
the latency and concurrency they assume; nothing is written."""
from __future__ import annotations

import re

from fgo_cli.main import main
from fgo_engine.config import RunConfig
from fgo_engine.method.walltime import DECODE_RATE, FIRST_TOKEN, wall_time


def test_dry_run_without_a_key_projects_and_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    code = main(["run", "--suite", "toy", "--model", "openai/gpt-4o-mini", "--dry-run", "--session",
                 str(tmp_path / "x.db")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert re.search(r"total\s+[\d,]+\s+[\d,]+\s+\S+\s+\$", out)  # calls, tokens and a cost
    assert "estimated wall time ~" in out and "calls at once" in out and "(assumed) ÷ 8 =" in out  # the concurrency it assumes
    assert f"{FIRST_TOKEN:g} s to the first token" in out and f"{DECODE_RATE:g} completion" in out
    assert "OPENAI_API_KEY is not set: needed to run, not for this projection" in out
    assert out.count("OPENAI_API_KEY") == 1  # one line for the four roles sharing the model
    assert not list(tmp_path.rglob("*.db"))


def test_a_run_without_the_key_is_still_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    code = main(["run", "--suite", "toy", "--model", "openai/gpt-4o-mini", "--headless", "--session",
                 str(tmp_path / "x.db")])
    assert code == 2 and "OPENAI_API_KEY is not set" in capsys.readouterr().err
    assert not (tmp_path / "x.db").exists()


def test_the_simulators_wall_time_is_its_profiles_latency(toy_config):
    from fgo_engine.method.methods import project
    from fgo_engine.suites.base import build_suite

    cfg: RunConfig = toy_config(model="fgo-sim/medium:latency=2", workers=2, subsets=3, task_workers=4)
    suite = build_suite(cfg)
    proj = project(cfg, suite, suite.train_tasks(), suite.test_tasks())
    wall = wall_time(proj, cfg)
    explore = wall.phases["explore"]
    assert explore.latency == 2.0 and not explore.assumed and explore.concurrency == 8  # 2 loops × 4 tasks
    assert wall.phases["optimize"].concurrency == 2 and wall.phases["merge"].concurrency == 1
    # the merge tree's backtests and the test split are one pass at a time: as wide as the task workers
    assert wall.phases["backtest"].concurrency == 4 and wall.phases["test"].concurrency == 4
    assert {p.role for k, p in wall.phases.items() if k in ("explore", "backtest", "test")} == {"agent"}
    # the phases' agent calls are the agent's
    agent_calls = sum(p.calls for k, p in wall.phases.items() if p.role == "agent")
    assert abs(agent_calls - proj.roles["agent"].calls) < 1e-6 * max(1.0, agent_calls)
    assert abs(wall.seconds - sum(p.calls * 2.0 / p.concurrency for p in wall.phases.values())) < 1e-6
