"""`auto` without bubblewrap says so where the user looks (issue 23 item 4): the CLI line,
the session log, the session record, the app's run bar; `strict` refuses in one line."""
from __future__ import annotations

import sqlite3

import pytest

from fgo_cli.main import main
from fgo_engine import events as ev
from fgo_engine.tools import isolation
from fgo_tui.model.state import RunView

ARGS = ["run", "--suite", "tools", "--method", "vanilla", "--model", "fgo-sim/null", "--headless",
        "--option", "n_train=2", "--option", "n_test=0"]


def run(tmp_path, mode: str) -> tuple[int, object]:
    cfg = tmp_path / "fgo.toml"
    cfg.write_text(f'sandbox = "{mode}"\n', encoding="utf-8")
    db = tmp_path / "s.db"
    return main([*ARGS, "--config", str(cfg), "--session", str(db)]), db


@pytest.fixture
def no_bubblewrap(monkeypatch):
    monkeypatch.setattr(isolation, "probe", lambda: isolation.Layer(False, reason="no bwrap in this test"))
    monkeypatch.setattr(isolation, "_warned", False)


def test_auto_without_bubblewrap_is_said_on_the_cli_and_recorded(tmp_path, capsys, no_bubblewrap):
    code, db = run(tmp_path, "auto")
    out = capsys.readouterr().out
    assert code == 0, out
    lines = [ln for ln in out.splitlines() if "tool sandbox" in ln]
    assert len(lines) == 1 and "no bwrap in this test" in lines[0] and "in-process guard" in lines[0], out
    con = sqlite3.connect(db)
    recorded = con.execute("select value from meta where key = 'sandbox'").fetchone()[0]
    con.close()
    assert recorded.startswith("auto: in-process guard") and "system-call filter" in recorded
    assert "no bwrap in this test" in db.with_suffix(".log").read_text(encoding="utf-8")


def test_strict_without_bubblewrap_refuses_in_one_line(tmp_path, capsys, no_bubblewrap):
    code, db = run(tmp_path, "strict")
    assert code == 2
    assert not db.exists()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no bwrap in this test" in err


def test_with_bubblewrap_the_record_names_it_and_nothing_is_shown(tmp_path, capsys):
    assert isolation.probe().available
    code, db = run(tmp_path, "auto")
    out = capsys.readouterr().out
    assert code == 0 and "tool sandbox" not in out, out
    con = sqlite3.connect(db)
    recorded = con.execute("select value from meta where key = 'sandbox'").fetchone()[0]
    con.close()
    assert recorded.startswith("auto: bubblewrap")


def test_the_app_shows_the_fallback_on_the_run_bar():
    view = RunView()
    view._apply_event(ev.RunStarted("vanilla", 0, 2, 0, sandbox="auto: in-process guard",
                                    sandbox_warning="tool sandbox: OS isolation unavailable"))
    assert view.sandbox_warning == "tool sandbox: OS isolation unavailable"
    assert view.sandbox == "auto: in-process guard"


def test_doctor_names_every_layer(capsys):
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "tool sandbox filter      ok: seccomp" in out and "tool sandbox landlock" in out


def test_doctor_without_bubblewrap_exits_1(capsys, no_bubblewrap):
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "MISSING: unavailable: no bwrap in this test" in out and "in-process layer only" in out


def test_without_the_system_call_filter_strict_refuses_and_auto_says_so(monkeypatch):
    from fgo_engine.tools import sandbox, syscalls

    missing = syscalls.Filter(keyctl_nr=syscalls.build().keyctl_nr, reason="libseccomp is not usable (in this test)")
    monkeypatch.setattr(syscalls, "build", lambda *a, **k: missing)
    with pytest.raises(isolation.SandboxUnavailableError, match="in this test"):
        sandbox.run_tool("def f():\n    return 1\n", "f", {}, sandbox="strict")
    described, warning = sandbox.status("auto")
    assert "NO system-call filter" in described and "in this test" in warning
    r = sandbox.run_tool("def f():\n    return 1\n", "f", {}, sandbox="auto")  # runs, under the other layers
    assert r.ok and r.value == "1"


def test_without_libseccomp_the_child_still_knows_keyctl(monkeypatch):
    import builtins
    import platform

    from fgo_engine.tools import syscalls

    real_import = builtins.__import__

    def no_pyseccomp(name, *args, **kwargs):
        if name == "pyseccomp":
            raise ImportError("not installed (in this test)")
        return real_import(name, *args, **kwargs)

    real_nr = syscalls.build().keyctl_nr  # libseccomp's answer
    monkeypatch.setattr(builtins, "__import__", no_pyseccomp)
    filt = syscalls._build.__wrapped__(0, (), False)
    assert not filt.available and "not installed" in filt.reason
    assert filt.keyctl_nr == real_nr, platform.machine()  # the fallback table agrees
