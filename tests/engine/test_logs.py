"""Logging: a log file beside each session, failing sinks and internal errors logged with
their traceback, the one-line error saying where the log is, and ``-v`` on the console."""
from __future__ import annotations

import logging
import threading

import pytest
from toy_suite import ToySuite

from fgo_cli.main import main
from fgo_engine import events as ev
from fgo_engine.run.logs import log_path
from fgo_engine.run.session import Session


def broken_initial_module(self):
    raise RuntimeError("the suite's starting module is broken")


def test_a_run_writes_its_log_beside_the_session(tmp_path, toy_config):
    s = Session.create(tmp_path / "a.db", toy_config(subsets=2, epochs=1))
    try:
        s.bus.emit(ev.Log("info", "before the run: not in the file"))
        assert s.run().status == "done"
        s.bus.emit(ev.Log("warning", "after the run: not in the file"))
    finally:
        s.close()
    text = log_path(tmp_path / "a.db").read_text(encoding="utf-8")
    assert (tmp_path / "a.log").exists()
    assert "run started: fgo, 2 subsets" in text and "run finished: done" in text
    assert "not in the file" not in text


def test_internal_error_keeps_its_traceback_in_the_log(tmp_path, toy_config, monkeypatch):
    monkeypatch.setattr(ToySuite, "initial_module", broken_initial_module)
    s = Session.create(tmp_path / "b.db", toy_config())
    try:
        res = s.run()
    finally:
        s.close()
    log = tmp_path / "b.log"
    assert res.status == "failed"
    assert res.message == (f"internal error: RuntimeError: the suite's starting module is broken "
                           f"(traceback in {log})")
    text = log.read_text(encoding="utf-8")
    assert "Traceback (most recent call last)" in text and "in broken_initial_module" in text


def test_a_failing_sink_is_logged_once_with_its_traceback(tmp_path, toy_config):
    def bad_sink(e):
        raise ValueError("this sink is broken")

    s = Session.create(tmp_path / "c.db", toy_config(subsets=2, epochs=1), sinks=[bad_sink])
    try:
        assert s.run().status == "done"  # the run does not notice
    finally:
        s.close()
    text = (tmp_path / "c.log").read_text(encoding="utf-8")
    assert text.count("ValueError: this sink is broken") == 1
    assert "event sink" in text and "failed on RunStarted" in text and "Traceback" in text


def test_two_sessions_in_one_process_keep_their_logs_apart(tmp_path, toy_config):
    sessions = [Session.create(tmp_path / f"{n}.db", toy_config(subsets=2, epochs=1, seed=i))
                for i, n in enumerate(("one", "two"))]
    results = {}

    def run(s):
        results[s.store.path.stem] = s.run().status

    threads = [threading.Thread(target=run, args=(s,)) for s in sessions]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    for s in sessions:
        s.close()
    assert results == {"one": "done", "two": "done"}
    for n in ("one", "two"):
        assert (tmp_path / f"{n}.log").read_text(encoding="utf-8").count("run started") == 1


@pytest.mark.parametrize("verbose", [False, True])
def test_cli_names_the_log_and_shows_tracebacks_only_with_v(tmp_path, capsys, monkeypatch, verbose):
    monkeypatch.setattr(ToySuite, "initial_module", broken_initial_module)
    path = tmp_path / "d.db"
    code = main(["run", "--suite", "toy", "--headless", "--session", str(path)] + (["-v"] if verbose else []))
    out, err = capsys.readouterr()
    assert code == 1
    assert f"traceback in {tmp_path / 'd.log'}" in out and f"log: {tmp_path / 'd.log'}" in out
    assert ("Traceback (most recent call last)" in err) is verbose
    assert main(["sessions", "delete", str(path), "--yes"]) == 0
    assert not (tmp_path / "d.log").exists()


def test_every_engine_logger_is_under_fgo_so_v_shows_it():
    import pkgutil

    import fgo_engine
    for m in pkgutil.walk_packages(fgo_engine.__path__, "fgo_engine."):
        if m.name.endswith(("ray_worker", "alfworld.worker", "_child")):
            continue
        __import__(m.name)
    # (the app's and the CLI's own loggers, made by other tests in this process, are not the engine's)
    names = [n for n in logging.Logger.manager.loggerDict
             if n.startswith("fgo") and not n.startswith(("fgo_tui", "fgo_cli"))]
    assert "fgo.llm.gateway" in names and "fgo.sandbox" in names
    assert [n for n in names if not n.startswith("fgo.") and n != "fgo"] == []


def test_v_shows_the_providers_error_text(tmp_path, capsys, fake_openai):
    from fake_openai import status

    fake_openai.responder = lambda body: status(500, message="quota-of-the-upstream-is-gone")
    code = main(["run", "--suite", "toy", "--headless", "--model", "openai/fake", "--api-base", fake_openai.url,
                 "--session", str(tmp_path / "g.db"), "-v"])
    err = capsys.readouterr().err
    assert code != 0
    assert "quota-of-the-upstream-is-gone" in err and "fgo.llm.gateway" in err
