"""Suites from plugin packages (the ``fgo.suites`` entry point): the example package in
examples/plugin_suite is installed by ``make install`` and runs like a built-in suite; a
plugin whose entry point fails to import is one clear line."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest

from fgo_cli.main import main
from fgo_engine.errors import ConfigError
from fgo_engine.suites import base

ROOT = Path(__file__).resolve().parents[2]


def test_the_example_plugin_is_installed():
    try:
        dist = distribution("fgo-lighthouse")
    except PackageNotFoundError:
        pytest.fail("the example plugin is not installed: `make install` (pip install -e examples/plugin_suite)")
    assert [ep.name for ep in dist.entry_points if ep.group == "fgo.suites"] == ["lighthouse"]


def test_its_suite_is_listed_and_runs_from_the_command_line(tmp_path, capsys):
    assert "lighthouse" in base.suite_names()
    assert "user_agent" not in base.suite_names()  # loadable by name, but it needs your code
    session = tmp_path / "lh.db"
    code = main(["run", "--suite", "lighthouse", "--option", "n_train=12", "--option", "n_test=6",
                 "--model", "fgo-sim/medium", "--subsets", "2", "--epochs", "2", "--headless",
                 "--session", str(session)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "finished: done" in out
    import sqlite3

    con = sqlite3.connect(session)
    final = con.execute("select m.text from session s join modules m on m.id = s.final_module_id").fetchone()[0]
    con.close()
    from fgo_lighthouse import DUTIES

    assert "lighthouse keeper" in final
    assert any(rule in final for _, rule, _ in DUTIES.values())  # it learned a keeper's duty


def _broken_dist(folder: Path, value: str = "fgo_no_such_module:Suite") -> Path:
    info = folder / "fgo_broken-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fgo-broken\nVersion: 0.1\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(f"[fgo.suites]\nbroken = {value}\n", encoding="utf-8")
    return folder


def test_a_plugin_that_fails_to_import_is_one_line_and_the_others_still_load(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(_broken_dist(tmp_path)))
    monkeypatch.setattr(base, "_plugins_loaded", False)
    monkeypatch.setattr(base, "_BROKEN", {})
    names = base.suite_names()
    assert "lighthouse" in names and "broken" not in names
    with pytest.raises(ConfigError) as info:
        base.load_suite("broken")
    msg = str(info.value)
    assert "\n" not in msg
    assert ("suite 'broken' from plugin package fgo-broken (fgo.suites entry point fgo_no_such_module:Suite) "
            "cannot be imported: ModuleNotFoundError: No module named 'fgo_no_such_module'") == msg
    assert base.broken_plugins() == {"broken": msg}


def test_fgo_run_with_a_broken_plugin_suite_exits_2_with_one_line(tmp_path):
    folder = _broken_dist(tmp_path / "site")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), str(ROOT)])}
    p = subprocess.run([sys.executable, "-m", "fgo_cli", "run", "--suite", "broken", "--headless",
                        "--session", str(tmp_path / "s.db")], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 2, p.stdout + p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fgo: error: suite 'broken' from plugin package fgo-broken")
    assert not (tmp_path / "s.db").exists()
    doctor = subprocess.run([sys.executable, "-m", "fgo_cli", "doctor"], capture_output=True, text=True, env=env,
                            timeout=120)
    assert "lighthouse (fgo-lighthouse)" in doctor.stdout
    assert re.search(r"BROKEN plugin broken +suite 'broken' from plugin package fgo-broken", doctor.stdout)
    # another suite is not held up by the broken plugin
    p = subprocess.run([sys.executable, "-m", "fgo_cli", "run", "--suite", "invoices", "--model", "fgo-sim/medium",
                        "--option", "n_train=8", "--option", "n_test=4", "--subsets", "2", "--epochs", "1",
                        "--headless", "--session", str(tmp_path / "ok.db")], capture_output=True, text=True,
                       env=env, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr


def test_an_entry_point_that_is_not_a_factory_is_named(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(_broken_dist(tmp_path, "fgo_engine.errors:__doc__")))
    monkeypatch.setattr(base, "_plugins_loaded", False)
    monkeypatch.setattr(base, "_BROKEN", {})
    with pytest.raises(ConfigError, match=r"entry point fgo_engine.errors:__doc__ is not a suite factory \(got str\)"):
        base.load_suite("broken")
