"""One writing process per session file (issue 13): a second writer gets one line naming
the holder; a lock left by a killed process is taken over; the app views a locked session
read-only. Real processes, synchronised on their output."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from fgo_engine.config import RunConfig
from fgo_engine.persistence.store import Store, lock_file, session_holder
from fgo_engine.run.session import Session

TESTS = Path(__file__).resolve().parents[1]  # tests/: toy_suite and the fake server
HOLD = ("import sys; from fgo_engine.persistence.store import Store; s = Store.open(sys.argv[1]); "
        "print('holding', flush=True); sys.stdin.read()")


def env():
    e = dict(os.environ)
    e["FGO_PLUGINS"] = "toy_suite"
    e["PYTHONPATH"] = str(TESTS) + os.pathsep + e.get("PYTHONPATH", "")
    return e


def make_session(path: Path) -> None:
    cfg = RunConfig.from_dict({"suite": "toy", "model": "fgo-sim/medium", "subsets": 2, "epochs": 1})
    Session.create(path, cfg).close()


def hold(path: Path) -> subprocess.Popen[str]:
    p = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env())
    assert p.stdout is not None and p.stdout.readline() == "holding\n", p.stderr.read() if p.stderr else ""
    return p


def resume(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fgo_cli", "resume", str(path), "--headless"], capture_output=True,
                          text=True, env=env(), timeout=300)


def test_a_second_writer_is_refused_naming_the_holder_and_a_stale_lock_is_taken_over(tmp_path):
    path = tmp_path / "s.db"
    make_session(path)
    holder = hold(path)
    try:
        assert session_holder(path) == f"pid {holder.pid} on host {socket.gethostname()}"
        second = resume(path)
        assert second.returncode == 2
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("fgo: error:"), second.stderr
        assert f"pid {holder.pid}" in lines[0] and socket.gethostname() in lines[0]
        assert "Traceback" not in second.stdout + second.stderr
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert lock_file(path).exists()  # killed: its lock file stays behind, unlocked
    assert session_holder(path) is None
    done = resume(path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert not lock_file(path).exists()  # released on close


def test_one_process_may_reopen_its_own_session(tmp_path):
    path = tmp_path / "s.db"
    make_session(path)
    a = Store.open(path)
    b = Store.open(path)  # the app opens the next run's store before closing the last one
    a.close()
    assert session_holder(path) == f"pid {os.getpid()} on host {socket.gethostname()}"  # still held by b
    b.close()
    assert session_holder(path) is None
    assert not lock_file(path).exists()


def test_the_app_views_a_locked_session_read_only(tmp_path):
    from fgo_tui.model.run import EngineSessions, RunController

    path = tmp_path / "s.db"
    make_session(path)
    holder = hold(path)
    try:
        ctl = RunController(path, EngineSessions())
        ctl.open()
        assert not ctl.can_run and ctl.session is None
        assert f"pid {holder.pid}" in (ctl.cannot_run or "")
        assert ctl.view.path == str(path)  # still shown
        ctl.close()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
