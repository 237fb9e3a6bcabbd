"""``--track mlflow`` / ``track="mlflow"``: params, per-subset epoch scores, per-node backtest
scores, tokens and cost as metrics, the modules and the merge tree as artifacts, to MLflow's
file store (offline)."""
from __future__ import annotations

import importlib.util
import json

import pytest
import user_agents

import fgo_engine
from fgo_cli.main import main
from fgo_engine.config import RunConfig


@pytest.fixture
def mlruns(tmp_path, monkeypatch):
    folder = tmp_path / "mlruns"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", folder.as_uri())
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "fgo-tests")
    return folder


def the_run(folder):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=folder.as_uri())
    exp = client.get_experiment_by_name("fgo-tests")
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 1
    return client, runs[0]


def artifacts(client, run_id, path=None):
    out = []
    for f in client.list_artifacts(run_id, path):
        out += artifacts(client, run_id, f.path) if f.is_dir else [f.path]
    return sorted(out)


def test_fgo_run_track_mlflow_logs_params_metrics_and_artifacts(tmp_path, mlruns, capsys):
    session = tmp_path / "s.db"
    assert main(["run", "--suite", "toy", "--model", "fgo-sim/medium", "--subsets", "3", "--epochs", "2",
                 "--review", "auto", "--track", "mlflow", "--headless", "--session", str(session)]) == 0
    client, run = the_run(mlruns)
    assert run.info.status == "FINISHED"
    p = run.data.params
    assert (p["suite"], p["method"], p["subsets"], p["epochs"], p["model.optimizer"]) == (
        "toy", "fgo", "3", "2", "fgo-sim/medium")
    m = run.data.metrics
    for i in range(3):
        history = client.get_metric_history(run.info.run_id, f"subset.{i}.epoch_score")
        assert sorted(h.step for h in history) == [0, 1, 2]  # the starting module, then each epoch
    assert {"node.n1.backtest_score", "node.n2.backtest_score", "train_score", "test_score", "prompt_tokens",
            "completion_tokens", "cost", "calls", "tokens.agent", "tokens.optimizer"} <= set(m)
    assert m["prompt_tokens"] > 0 and 0.0 <= m["test_score"] <= 1.0
    files = artifacts(client, run.info.run_id)
    assert files == ["final_module.txt", "merge_tree.json", "merged/n1.txt", "merged/n2.txt", "session.json"]
    tree = json.loads((mlruns / run.info.experiment_id / run.info.run_id / "artifacts" / "merge_tree.json")
                      .read_text(encoding="utf-8"))
    assert {n["id"] for n in tree} == {"n1", "n2"}
    import sqlite3

    con = sqlite3.connect(session)
    final = con.execute("select m.text from session s join modules m on m.id = s.final_module_id").fetchone()[0]
    assert con.execute("select value from meta where key = 'mlflow_run_id'").fetchone()[0] == run.info.run_id
    con.close()
    assert (mlruns / run.info.experiment_id / run.info.run_id / "artifacts" / "final_module.txt").read_text(
        encoding="utf-8") == final


def test_the_api_tracks_and_a_resumed_run_logs_to_the_same_mlflow_run(tmp_path, mlruns):
    kw = dict(instruction="You answer questions about glorps.", model="fgo-sim/medium", subsets=2, epochs=1,
              session=tmp_path / "s.db", track="mlflow")
    first = fgo_engine.optimize(user_agents.toy_tasks(), user_agents.toy_agent, user_agents.exact_scorer,
                                budget_tokens=2000, **kw)
    assert first.status == "budget"
    _, run = the_run(mlruns)
    assert run.info.status == "SCHEDULED"  # stopped, to be resumed
    again = fgo_engine.optimize(user_agents.toy_tasks(), user_agents.toy_agent, user_agents.exact_scorer, **kw)
    assert again.status == "done"
    client, run = the_run(mlruns)  # still one run
    assert run.info.status == "FINISHED" and "final_module.txt" in artifacts(client, run.info.run_id)
    assert run.data.params["suite"] == "user_agent"


def test_track_mlflow_without_mlflow_is_one_line_and_writes_nothing(tmp_path, monkeypatch, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a))
    assert main(["run", "--suite", "toy", "--model", "fgo-sim/medium", "--track", "mlflow", "--headless",
                 "--session", str(tmp_path / "s.db")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["fgo: error: --track mlflow needs MLflow: pip install 'fgo-studio[track]' (or mlflow-skinny)"]
    assert not (tmp_path / "s.db").exists()


def test_track_is_a_config_key():
    assert RunConfig.from_dict({"suite": "toy", "track": "mlflow"}).track == "mlflow"
    with pytest.raises(Exception, match="track must be mlflow or unset"):
        RunConfig.from_dict({"suite": "toy", "track": "wandb"})


def test_an_mlflow_store_that_cannot_be_used_stops_the_run_with_one_line(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the store's folder should be", encoding="utf-8")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", blocker.as_uri())
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    session = tmp_path / "s.db"
    code = main(["run", "--suite", "toy", "--model", "fgo-sim/medium", "--subsets", "2", "--epochs", "1",
                 "--track", "mlflow", "--headless", "--session", str(session)])
    out = capsys.readouterr().out
    assert code == 1
    line = next(ln for ln in out.splitlines() if "finished: failed" in ln)
    assert "--track mlflow: cannot start an MLflow run at" in line
    import sqlite3

    con = sqlite3.connect(session)
    assert con.execute("select status from session").fetchone()[0] == "failed"  # kept, resumable
    assert con.execute("select count(*) from ledger").fetchone()[0] == 0  # nothing spent before the stop
    con.close()
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.chdir(tmp_path)  # where a default ./mlruns would appear
    assert main(["resume", str(session), "--headless", "--track", "none"]) == 0  # go on without tracking
    con = sqlite3.connect(session)
    assert con.execute("select status from session").fetchone()[0] == "done"
    con.close()
    assert not (tmp_path / "mlruns").exists()
