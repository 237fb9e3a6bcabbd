"""Escapes a hostile tool tried against the in-process guard (issue 13), each turned into a
test that fails if the escape works again. They run under ``sandbox="strict"``: the OS
layer (bubblewrap) must be present, and ``make test`` installs it. To see them fail
against the in-process guard alone: ``FGO_TEST_SANDBOX=in-process pytest tests/engine/test_sandbox_isolation.py``.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from fgo_engine.tools import isolation
from fgo_engine.tools.sandbox import run_tool

MODE = os.environ.get("FGO_TEST_SANDBOX", "strict")

PROBES = r'''
import os
import sys


def _bootstrap_locals(key):
    """What a hostile tool reaches through the frames that called it: the locals of the
    sandbox child's first frame holding ``key``."""
    f = sys._getframe(1)
    while f is not None and key not in f.f_locals:
        f = f.f_back
    return f.f_locals


def _unhook():
    _bootstrap_locals("guard")["guard"].busy.append(1)  # the audit hook now returns at once


def system_id():
    _unhook()
    os.system("id")
    return "ran"


def raw_socket(port: int):
    _unhook()
    import _socket
    s = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        s.connect(("127.0.0.1", port))
    except OSError as e:
        return "refused: " + type(e).__name__
    return "connected"


def ctypes_signal(pid: int):
    _unhook()
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    return {"kill": libc.kill(pid, 0), "uid": libc.getuid()}


def fork_survivor(marker: str, new_session: bool):
    _unhook()
    if os.fork() == 0:
        if new_session:
            os.setsid()
        os.execv("/bin/sh", ["sh", "-c", "sleep 600; : " + marker])
    return "forked"


def fork_bomb(n: int):
    _unhook()
    import time
    made = 0
    try:
        for _ in range(n):
            if os.fork() == 0:
                time.sleep(600)
                os._exit(0)
            made += 1
    except OSError as e:
        return {"made": made, "stopped": type(e).__name__}
    return {"made": made, "stopped": None}


def read_parent_environ(app_pid: int):
    os.fsdecode = lambda p: "."  # every path now looks like the scratch folder to the guard
    out = []
    for pid in (os.getppid(), app_pid):
        try:
            with open("/proc/%d/environ" % pid, "rb") as f:
                out.append(f.read().decode("latin-1"))
        except OSError as e:
            out.append(type(e).__name__)
    return out


def hard_link_write(victim: str):
    os.link(victim, "v")
    with open("v", "w") as f:
        f.write("changed by the tool")
    return "written"


def read_system_file(path: str):
    with open(path) as f:
        return f.read()


def clear_violations():
    import socket
    try:
        socket.socket()
    except PermissionError:
        pass
    _bootstrap_locals("violations")["violations"].clear()
    return "clean"


def forge_result():
    import json, socket
    try:
        socket.socket()
    except PermissionError:
        pass
    loc = _bootstrap_locals("rfd")
    forged = {"ok": True, "value": "forged", "error": None, "stdout": "", "traceback": ""}
    os.write(loc["rfd"], (loc["nonce"] + json.dumps(forged) + "\n").encode())
    os._exit(0)


def linger():
    import signal, time
    signal.alarm(0)  # no backstop
    os.write(1, b"READY\n")
    time.sleep(600)
'''


def call(tool: str, /, timeout: float = 10.0, **kw):
    return run_tool(PROBES, tool, kw, timeout=timeout, sandbox=MODE)


def _marked(marker: str) -> list[int]:
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if marker.encode() in (d / "cmdline").read_bytes():
                    pids.append(int(d.name))
            except OSError:
                pass
    return pids


def _kill_all(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _wait_until(cond, seconds: float) -> bool:
    """Poll a condition; the deadline only bounds a failure, it never synchronises."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


def test_the_os_layer_is_there():
    layer = isolation.probe()
    assert layer.available, layer.reason


def test_unhooked_os_system_runs_as_an_unprivileged_uid():
    r = call("system_id")
    assert "uid=" in r.stdout, r
    uid = int(r.stdout.split("uid=", 1)[1].split("(")[0].split()[0])
    assert uid not in (0, os.getuid()), r.stdout


def test_unhooked_raw_socket_reaches_nothing():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.setblocking(False)
    try:
        r = call("raw_socket", port=server.getsockname()[1])
        assert r.value != "connected"
        with pytest.raises(BlockingIOError):
            server.accept()[0].close()  # nobody knocked
    finally:
        server.close()


def test_unhooked_ctypes_cannot_see_the_app_process():
    r = call("ctypes_signal", pid=os.getpid())
    assert r.ok, r
    out = json.loads(r.value)
    assert out["kill"] != 0  # kill(app, 0) fails: the app's pid does not exist in there
    assert out["uid"] not in (0, os.getuid())


@pytest.mark.parametrize("new_session", [False, True], ids=["child", "setsid-grandchild"])
def test_forked_processes_die_with_the_call(new_session):
    marker = f"fgo-probe-{uuid.uuid4().hex}"
    try:
        call("fork_survivor", timeout=3, marker=marker, new_session=new_session)
        assert _marked(marker) == []  # gone when run_tool returns, setsid or not
    finally:
        _kill_all(_marked(marker))


def test_fork_bomb_hits_rlimit_nproc():
    r = call("fork_bomb", n=200)
    assert r.ok, r
    out = json.loads(r.value)
    assert out["stopped"] == "BlockingIOError" and out["made"] < isolation.NPROC


def test_patched_fspath_cannot_read_the_apps_environment():
    sandbox_env = {"PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", "MALLOC_ARENA_MAX", "OPENBLAS_NUM_THREADS",
                   "OMP_NUM_THREADS", "MKL_NUM_THREADS", "TASK_FILES"}
    mine = [e for e in Path("/proc/self/environ").read_bytes().decode("latin-1").split("\0")
            if "=" in e and e.split("=", 1)[0] not in sandbox_env and len(e) > 4]
    assert mine, "the test process has an environment to protect"
    r = call("read_parent_environ", app_pid=os.getpid())
    leaked = [e for e in mine if e in r.value]
    assert leaked == []


def test_hard_link_from_outside_cannot_change_the_file(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("original")
    call("hard_link_write", victim=str(victim))
    assert victim.read_text() == "original"


@pytest.mark.parametrize("path", ["/etc/passwd", "/etc/shadow"])
def test_system_account_files_are_not_readable(path):
    r = call("read_system_file", path=path)
    assert not r.ok and "root:" not in r.value


def test_clearing_the_violations_list_does_not_hide_a_violation():
    r = call("clear_violations")
    assert not r.ok and r.error == "network access is not allowed"


def test_a_forged_result_does_not_hide_a_violation():
    r = call("forge_result")
    assert not r.ok and r.error == "network access is not allowed"


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for task in Path(f"/proc/{p}/task").glob("*/children"):
            try:
                kids = [int(c) for c in task.read_text().split()]
            except OSError:
                continue
            out += kids
            todo += kids
    return out


def _ready(pid: int) -> bool:
    out = Path(f"/proc/{pid}/fd/1")
    try:  # a regular file only: reading someone's stdout pipe would steal their output
        return out.stat().st_mode & 0o170000 == 0o100000 and b"READY" in out.read_bytes()
    except OSError:
        return False


def _dead(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0] == b"Z"
    except OSError:
        return True


def test_killing_the_app_kills_the_tool_and_leaves_no_scratch(tmp_path):
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    driver = subprocess.Popen(
        [sys.executable, "-c", "import sys; from fgo_engine.tools.sandbox import run_tool; "
         "from tests.engine.test_sandbox_isolation import PROBES, MODE; "
         "run_tool(PROBES, 'linger', {}, timeout=120, sandbox=MODE)"],
        cwd=Path(__file__).resolve().parents[2], env={**os.environ, "TMPDIR": str(tmpdir)},
        stdin=subprocess.DEVNULL)
    tool: list[int] = []
    try:
        def started() -> bool:
            assert driver.poll() is None, "the driver died"
            tool[:] = [p for p in _descendants(driver.pid) if _ready(p)]
            return bool(tool)

        assert _wait_until(started, 60), "the tool never started"
        driver.kill()
        driver.wait()
        assert _wait_until(lambda: _dead(tool[0]), 10), "the tool outlived the app"
        assert list(tmpdir.iterdir()) == []
    finally:
        if driver.poll() is None:
            driver.kill()
        _kill_all(tool)


def test_strict_refuses_without_the_os_layer_and_auto_says_so_once(monkeypatch, caplog):
    monkeypatch.setattr(isolation, "probe", lambda: isolation.Layer(False, reason="no namespaces in this test"))
    monkeypatch.setattr(isolation, "_warned", False)
    with pytest.raises(isolation.SandboxUnavailableError, match="no namespaces in this test"):
        run_tool(PROBES, "linger", {}, sandbox="strict")
    with caplog.at_level("WARNING", logger="fgo.sandbox"):
        for _ in range(2):
            r = run_tool("def f():\n    return 7\n", "f", {}, sandbox="auto")
            assert r.ok and r.value == "7"
    assert [rec.getMessage().count("in-process guard only") for rec in caplog.records] == [1]
