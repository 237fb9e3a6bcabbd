"""The Ray executor on a local Ray instance (2 CPUs, loopback only, started and stopped here).

The same seed gives the same session with ``executor = ray`` as with threads; a worker
killed mid-rollout loses nothing and repeats no paid call; cancel and budget stops are
clean (resumable to the same result); a missing Ray or an unreachable address is one line
before anything is written.
"""
from __future__ import annotations

import os
import signal
import socket
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from fgo_cli.main import main
from fgo_engine import events as ev
from fgo_engine.config import RunConfig
from fgo_engine.run.session import Session

pytestmark = pytest.mark.xdist_group("ray")  # one Ray instance: every test here on one xdist worker

TOOLS = {"suite": "tools", "suite_options": {"n_train": 8, "n_test": 4}, "subsets": 2, "epochs": 1,
         "model": "fgo-sim/medium", "seed": 3}
HOUSEHOLD = {"suite": "household", "suite_options": {"n_train": 8, "n_test": 4, "step_limit": 8}, "subsets": 3,
             "epochs": 1, "model": "fgo-sim/medium", "seed": 1}
PATIENCE = 300.0  # generous: Ray on a loaded 2-core machine is slow; a guard, never a synchronisation


def wait_for(cond, what: str, timeout: float = PATIENCE) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def ray_local():
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # loopback only (read when ray is imported)
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        assert {n["NodeManagerAddress"] for n in ray.nodes()} == {"127.0.0.1"}
        yield ray
    finally:
        ray.shutdown()


def cpus_free(ray) -> bool:
    return ray.available_resources().get("CPU", 0) == 2.0


def run(path: Path, spec: dict, **over) -> tuple[Session, object]:
    s = Session.create(path, RunConfig.from_dict({**spec, **over}))
    try:
        return s, s.run()
    finally:
        s.close()


def digest(path: Path) -> dict:
    """What must not depend on the executor: the final module, every score, the merge tree."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        q = lambda sql: db.execute(sql).fetchall()
        return {
            "final": q("select m.id, m.text, s.best_score from session s join modules m on m.id = s.final_module_id"),
            "subsets": q("select id, best_score, best_module_id from subsets order by id"),
            "tree": q("select id, child_ids_json, status, score_before, score_after, module_id, depth "
                      "from merge_nodes order by id"),
            "trajectories": q("select id, score from trajectories order by id"),
            "paid": q("select count(*), sum(prompt_tokens), sum(completion_tokens) from ledger "
                      "where cache_hit = 0 and error is null"),
        }
    finally:
        db.close()


def repeated_paid_calls(path: Path) -> list:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return db.execute("select cache_key, count(*) from ledger where cache_hit = 0 and error is null "
                          "group by cache_key having count(*) > 1").fetchall()
    finally:
        db.close()


def resume_to_the_same_result(path: Path, overrides: dict, want: dict) -> RunConfig:
    again = Session.open(path, config_overrides=overrides)
    try:
        res = again.run()
    finally:
        again.close()
    assert res.status == "done", res.message
    assert repeated_paid_calls(path) == []
    assert digest(path) == want
    return again.config


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Thread-executor runs, once per spec."""
    out: dict[str, dict] = {}

    def get(name: str, spec: dict) -> dict:
        if name not in out:
            path = tmp_path_factory.mktemp("ref") / f"{name}.db"
            _, res = run(path, spec)
            assert res.status == "done", res.message
            out[name] = digest(path)
        return out[name]

    return get


def test_ray_gives_the_thread_executors_result_on_tools(ray_local, reference, tmp_path, capsys):
    # through the command line, as `fgo run --suite tools --executor ray --headless` would
    path = tmp_path / "ray.db"
    code = main(["run", "--suite", "tools", "--executor", "ray", "--headless", "--session", str(path),
                 "--subsets", "2", "--epochs", "1", "--seed", "3", "--model", "fgo-sim/medium",
                 "--option", "n_train=8", "--option", "n_test=4"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "rollouts on 127.0.0.1" in out.out  # where each subset runs
    got, want = digest(path), reference("tools", TOOLS)
    assert got["final"] and got["tree"]
    assert got == want
    wait_for(lambda: cpus_free(ray_local), "the rollouts to give Ray's CPUs back")


def test_ray_gives_the_thread_executors_result_on_household(ray_local, reference, tmp_path):
    placed: list[ev.SubsetStarted] = []
    s = Session.create(tmp_path / "ray.db", RunConfig.from_dict({**HOUSEHOLD, "executor": "ray"}),
                       sinks=[lambda e: placed.append(e) if isinstance(e, ev.SubsetStarted) else None])
    try:
        res = s.run()
    finally:
        s.close()
    assert res.status == "done", res.message
    assert digest(tmp_path / "ray.db") == reference("household", HOUSEHOLD)
    assert sorted(e.subset_id for e in placed) == [0, 1, 2]
    assert all(e.node.startswith("127.0.0.1 (") for e in placed)


def test_a_worker_killed_mid_rollout_loses_nothing_and_repeats_no_paid_call(ray_local, reference, tmp_path):
    path = tmp_path / "ray.db"
    s = Session.create(path, RunConfig.from_dict({**HOUSEHOLD, "executor": "ray"}))
    seen: list[tuple[int, str]] = []  # (worker pid, task id) of every relayed agent call
    killed: list[tuple[int, str]] = []
    lock = threading.Lock()

    def on_request(req: dict) -> None:
        with lock:
            seen.append((req["pid"], req["task_id"]))
            if not killed and len(req["messages"]) > 3:  # a rollout some turns in: earlier calls are committed
                killed.append((req["pid"], req["task_id"]))
                os.kill(req["pid"], signal.SIGKILL)  # this call is still served and committed; nobody reads it

    s.executor.on_request = on_request
    try:
        res = s.run()
    finally:
        s.close()
    assert res.status == "done", res.message
    assert killed
    pid, task_id = killed[0]
    after = seen[seen.index((pid, task_id)) + 1:]
    assert any(t == task_id and p != pid for p, t in after)  # retried on another worker
    assert repeated_paid_calls(path) == []
    assert digest(path) == reference("household", HOUSEHOLD)  # same paid calls, same rows, same result


def test_cancel_stops_the_rollouts_in_flight_and_resumes_to_the_same_result(ray_local, reference, tmp_path):
    path = tmp_path / "ray.db"
    s = Session.create(path, RunConfig.from_dict({**HOUSEHOLD, "executor": "ray"}))
    s.bus.add(lambda e: s.cancel() if isinstance(e, ev.TrajectoryDone) else None)
    try:
        res = s.run()
    finally:
        s.close()
    assert res.status == "cancelled"
    wait_for(lambda: cpus_free(ray_local), "the cancelled rollouts to give their CPUs back")
    resume_to_the_same_result(path, {"executor": "threads"}, reference("household", HOUSEHOLD))


def test_a_budget_stop_on_ray_is_clean_and_resumes_on_ray(ray_local, reference, tmp_path):
    want = reference("household", HOUSEHOLD)
    budget = (want["paid"][0][1] + want["paid"][0][2]) // 3
    path = tmp_path / "ray.db"
    _, res = run(path, HOUSEHOLD, executor="ray", budget_tokens=budget)
    assert res.status == "budget", res.message
    wait_for(lambda: cpus_free(ray_local), "the stopped rollouts to give their CPUs back")
    assert resume_to_the_same_result(path, {"budget_tokens": None}, want).executor == "ray"


def test_credentials_reach_workers_through_the_runtime_env_only(ray_local, tmp_path, monkeypatch):
    from fgo_engine.run.executors.ray_executor import RayExecutor, secret_env

    monkeypatch.setenv("FGO_RAY_TEST_KEY", "sk-ray-test-0123456789")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-test-0123456789")
    monkeypatch.setenv("UNRELATED_TOKEN", "tok-unrelated-0123456789")
    cfg = RunConfig.from_dict({**HOUSEHOLD, "executor": "ray",
                               "roles": {"agent": {"model": "openai/gpt-4o-mini", "api_key_env": "FGO_RAY_TEST_KEY"}}})
    env = secret_env(cfg)
    assert env == {"FGO_RAY_TEST_KEY": "sk-ray-test-0123456789", "OPENAI_API_KEY": "sk-openai-test-0123456789"}
    ex = RayExecutor(cfg)
    ex.start()
    try:
        @ray_local.remote(num_cpus=0)
        def read_env() -> str | None:
            return os.environ.get("FGO_RAY_TEST_KEY")

        monkeypatch.delenv("FGO_RAY_TEST_KEY")  # the worker must get it from the runtime env, not inherit it
        assert ray_local.get(read_env.options(runtime_env=ex._task_env).remote()) == "sk-ray-test-0123456789"
        assert "sk-ray-test" not in repr(cfg.to_dict())  # what every rollout task carries as its argument
    finally:
        ex.close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_address_is_one_line_before_anything_is_written(tmp_path, capsys):
    path = tmp_path / "s.db"
    code = main(["run", "--suite", "household", "--executor", "ray", "--ray-address", f"127.0.0.1:{_closed_port()}",
                 "--headless", "--session", str(path)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("fgo: error: cannot reach the Ray cluster at 127.0.0.1:")
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not path.exists()


def test_ray_not_installed_is_one_line_before_anything_is_written(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "ray", None)  # import ray → ImportError
    path = tmp_path / "s.db"
    code = main(["run", "--suite", "household", "--executor", "ray", "--headless", "--session", str(path)])
    err = capsys.readouterr().err
    assert code == 2
    assert err == "fgo: error: --executor ray needs Ray: install the extra with  pip install 'fgo-studio[ray]'\n"
    assert not path.exists()


def test_executor_settings_are_checked():
    from fgo_engine.errors import ConfigError

    with pytest.raises(ConfigError, match="executor must be one of threads, ray"):
        RunConfig.from_dict({"executor": "dask"})
    with pytest.raises(ConfigError, match="ray_address is only used with executor = ray"):
        RunConfig.from_dict({"ray_address": "auto"})
    assert RunConfig.from_dict({"executor": "ray", "ray_address": "auto"}).to_dict()["ray_address"] == "auto"
