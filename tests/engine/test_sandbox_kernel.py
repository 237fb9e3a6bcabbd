"""Kernel objects a tool could share with the app, and memory outside its limit (issue 23
items 1-5 and the classes they belong to). Each probe first switches the in-process guard
off through a frame of the sandbox child, as a hostile tool would, so what holds is the
OS layer (bubblewrap + the system-call filter) or, in-process, landlock + the filter.
"""
from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pyseccomp
import pytest

from fgo_engine.tools import isolation, syscalls
from fgo_engine.tools.sandbox import run_tool

LAYERS = ["strict", "in-process"]
ROOT = Path(os.environ.get("FGO_TEST_ENGINE_ROOT") or Path(__file__).resolve().parents[2])

PROBES = r'''
import errno
import os
import sys


def _unhook():
    f = sys._getframe(1)
    while f is not None and "guard" not in f.f_locals and "busy" not in f.f_locals:
        f = f.f_back
    busy = f.f_locals["guard"].busy if "guard" in f.f_locals else f.f_locals["busy"]  # older child: a local
    busy.append(1)  # the audit hook now returns at once


def _libc():
    _unhook()
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return ctypes, libc


def _outcome(ctypes, ret):
    return "allowed" if ret >= 0 else errno.errorcode.get(ctypes.get_errno(), "?")


def raw(nr: int, args: list):
    ctypes, libc = _libc()
    args = [a.encode() if isinstance(a, str) else (os.getcwd().encode() if a is None else a) for a in args]
    ret = libc.syscall(nr, *args)
    if ret == 0 and os.getpid() != _PID:  # a clone that went through: the copy leaves at once
        os._exit(0)
    return _outcome(ctypes, ret)


_PID = os.getpid()


def seccomp_mode():
    with open("/proc/self/status") as f:
        return [ln.split(":", 1)[1].strip() for ln in f if ln.startswith("Seccomp:")][0]


def keys(nr_request: int, nr_keyctl: int, nr_add: int, description: str):
    ctypes, libc = _libc()
    serial = libc.syscall(nr_request, b"user", description.encode(), None, 0)
    found = _outcome(ctypes, serial)
    payload = ""
    if serial >= 0:
        buf = ctypes.create_string_buffer(256)
        n = libc.syscall(nr_keyctl, 11, serial, buf, 256)  # KEYCTL_READ
        payload = buf.raw[: max(n, 0)].decode("latin-1")
    planted = libc.syscall(nr_add, b"user", b"fgo-planted", b"from the tool", 13, -3)  # the session keyring
    return {"found": found, "payload": payload, "planted": _outcome(ctypes, planted)}


def memfd():
    try:
        fd = os.memfd_create("fgo-probe")  # no guard switched off: the issue's own probe
    except OSError as e:
        return type(e).__name__
    os.ftruncate(fd, 16 << 20)
    return "allowed"


def dev_shm(name: str):
    _unhook()
    try:
        with open("/dev/shm/" + name, "wb") as f:
            f.write(b"x" * 4096)
    except OSError as e:
        return type(e).__name__
    return "allowed"


def signal_parent():
    _unhook()
    try:
        os.kill(os.getppid(), 0)
    except OSError as e:
        return type(e).__name__
    return "allowed"


def write_outside(path: str):
    _unhook()
    try:
        with open(path, "w") as f:
            f.write("from the tool")
    except OSError as e:
        return type(e).__name__
    return "allowed"


def files_then_heap(limit_mb: int):
    written = 0
    try:
        for i in range(limit_mb):
            with open("f%d" % i, "wb") as f:
                f.write(b"x" * (1 << 20))
            written += 1
    except OSError:
        pass
    largest = 0
    for mb in range(limit_mb, 0, -2):
        try:
            block = bytearray(mb << 20)
        except MemoryError:
            continue
        del block
        largest = mb
        break
    return {"files_mb": written, "heap_mb": largest}


def at_the_app(nr_prlimit: int, nr_setpriority: int, nr_fcntl: int, nr_ioctl: int):
    """Calls on the process that started this one, or on kernel memory outside RLIMIT_AS."""
    ctypes, libc = _libc()
    app = os.getppid()
    old = (ctypes.c_uint64 * 2)()
    out = {"prlimit": _outcome(ctypes, libc.syscall(nr_prlimit, app, 4, None, old))}  # RLIMIT_CORE, read only
    prio = os.getpriority(os.PRIO_PROCESS, app)
    out["setpriority"] = _outcome(ctypes, libc.syscall(nr_setpriority, 0, app, prio))  # the same value
    out["setpriority_user"] = _outcome(ctypes, libc.syscall(nr_setpriority, 2, 0, prio))  # PRIO_USER
    r, w = os.pipe()
    out["pipe_size"] = _outcome(ctypes, libc.syscall(nr_fcntl, w, 1031, 1 << 20))  # F_SETPIPE_SZ
    out["tiocsti"] = _outcome(ctypes, libc.syscall(nr_ioctl, r, 0x5412, b"x"))
    fds = []
    try:
        while len(fds) < 4096:
            fds.extend(os.pipe())
        out["pipes"] = "allowed"
    except OSError as e:
        out["pipes"] = errno.errorcode.get(e.errno, "?")
    out["open_fds"] = len(fds)
    return out


def fork_unhooked():
    _unhook()
    import threading
    t = threading.Thread(target=lambda: None)
    t.start()  # threads still work
    t.join()
    try:
        pid = os.fork()
    except OSError as e:
        return type(e).__name__
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return "forked"


def parent_environ():
    _unhook()
    out = []
    for pid in (os.getppid(),):
        try:
            with open("/proc/%d/environ" % pid, "rb") as f:
                out.append(f.read().decode("latin-1"))
        except OSError as e:
            out.append(type(e).__name__)
    return out
'''

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWNET = 0x00020000, 0x10000000, 0x40000000
SIGCHLD = 17

# name -> arguments chosen so that, unfiltered, the call would succeed or fail with
# another errno than EPERM (bad pointer, bad fd): only the filter answers EPERM.
# None stands for the scratch folder (the tool's cwd).
REFUSED_CALLS = {
    "unshare": [CLONE_NEWUSER | CLONE_NEWNS],
    "clone": [CLONE_NEWUSER | CLONE_NEWNET | SIGCHLD, 0, 0, 0, 0],
    "setns": [-1, 0],
    "mount": ["none", None, "tmpfs", 0, 0],
    "umount2": [None, 0],
    "pivot_root": [None, None],
    "keyctl": [0, -3, 0],  # KEYCTL_GET_KEYRING_ID of the session keyring
    "add_key": ["user", "fgo-planted", "x", 1, -3],
    "request_key": ["user", "fgo-anything", 0, 0],
    "ptrace": [0, 0, 0, 0],  # PTRACE_TRACEME
    "process_vm_readv": [0x3FFFFFFF, 0, 0, 0, 0, 0],  # no such pid: ESRCH unfiltered
    "bpf": [0, 0, 0],
    "perf_event_open": [0, 0, -1, -1, 0],
    "userfaultfd": [0],
    "io_uring_setup": [1, 0],
    "memfd_create": ["fgo-probe", 0],
    "shmget": [0, 1 << 20, 0o1600],  # IPC_PRIVATE, IPC_CREAT | 0600
    "msgget": [0, 0o1600],
    "semget": [0, 1, 0o1600],
    "mq_open": ["fgo-probe", 0o102, 0o600, 0],  # O_CREAT | O_RDWR
    "socket": [1, 1, 0],  # AF_UNIX, SOCK_STREAM: abstract unix sockets reach the host's
    "socketpair": [1, 1, 0, 0],
    "init_module": [0, 0, ""],
    "inotify_init1": [0],
}


def nr(name: str) -> int:
    return int(pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, name))


def call(tool: str, sandbox: str, /, **kw):
    return run_tool(PROBES, tool, kw, timeout=10.0, sandbox=sandbox)


def test_the_filter_builds_here():
    filt = syscalls.build()
    assert filt.available, filt.reason
    assert filt.keyctl_nr == nr("keyctl")


@pytest.mark.parametrize("sandbox", LAYERS)
def test_tool_code_runs_under_a_system_call_filter(sandbox):
    r = call("seccomp_mode", sandbox)
    assert r.ok and r.value == "2", r  # 2: SECCOMP_MODE_FILTER


@pytest.mark.parametrize("sandbox", LAYERS)
@pytest.mark.parametrize("name", sorted(REFUSED_CALLS))
def test_refused_system_call(name, sandbox):
    r = call("raw", sandbox, nr=nr(name), args=REFUSED_CALLS[name])
    assert r.ok and r.value == "EPERM", (name, r)


@pytest.mark.parametrize("sandbox", LAYERS)
def test_ordinary_processes_and_threads_still_work(sandbox):
    src = ("import os, threading\n"
           "def f():\n"
           "    t = threading.Thread(target=lambda: None); t.start(); t.join()\n"
           "    return os.cpu_count() is not None\n")
    r = run_tool(src, "f", {}, sandbox=sandbox)
    assert r.ok and r.value == "true", r


_KEY_SCRIPT = textwrap.dedent('''
    import ctypes, json, sys
    from fgo_engine.tools.sandbox import run_tool
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    nr_keyctl, nr_add, nr_request, sandbox, description, probes = json.loads(sys.stdin.read())
    assert libc.syscall(nr_keyctl, 1, None) > 0  # this script's own fresh session keyring
    assert libc.syscall(nr_add, b"user", description.encode(), b"app-secret-payload", 18, -3) > 0
    r = run_tool(probes, "keys", {"nr_request": nr_request, "nr_keyctl": nr_keyctl, "nr_add": nr_add,
                                  "description": description}, sandbox=sandbox)
    planted = libc.syscall(nr_request, b"user", b"fgo-planted", None, 0)
    print(json.dumps({"ok": r.ok, "value": r.value, "error": r.error, "planted_in_app": planted >= 0}))
''')


@pytest.mark.parametrize("sandbox", LAYERS)
def test_the_apps_session_keyring_is_out_of_reach(sandbox):
    description = f"fgo-test-{uuid.uuid4().hex[:8]}"
    args = [nr("keyctl"), nr("add_key"), nr("request_key"), sandbox, description, PROBES]
    out = subprocess.run([sys.executable, "-c", _KEY_SCRIPT], input=json.dumps(args), capture_output=True,
                         text=True, timeout=60, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert res["ok"], res
    seen = json.loads(res["value"])
    assert seen["found"] != "allowed" and seen["payload"] == ""  # the app's key is not found, not read
    assert seen["planted"] != "allowed"
    assert res["planted_in_app"] is False  # and nothing the tool adds lands in the app's keyring


@pytest.mark.parametrize("sandbox", LAYERS)
def test_memfd_is_refused_without_any_bypass(sandbox):
    r = call("memfd", sandbox)
    assert r.ok and r.value == "PermissionError", r


@pytest.mark.parametrize("sandbox", LAYERS)
def test_dev_shm_takes_no_file(sandbox):
    name = f"fgo-probe-{uuid.uuid4().hex[:8]}"
    try:
        r = call("dev_shm", sandbox, name=name)
        assert r.ok and r.value in ("PermissionError", "OSError"), r  # EACCES (landlock) / EROFS (read-only /dev)
        assert not Path("/dev/shm", name).exists()
    finally:
        Path("/dev/shm", name).unlink(missing_ok=True)


_ENV_SCRIPT = textwrap.dedent('''
    import json, os, sys
    from fgo_engine.tools.sandbox import run_tool
    probes, sandbox = json.loads(sys.stdin.read())
    r = run_tool(probes, "parent_environ", {}, sandbox=sandbox)
    print(json.dumps({"ok": r.ok, "value": r.value, "error": r.error}))
''')


@pytest.mark.parametrize("sandbox", LAYERS)
def test_no_layer_hands_the_apps_environment_to_tool_code(sandbox):
    secret = f"sk-test-{uuid.uuid4().hex}"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENAI_API_KEY": secret}
    out = subprocess.run([sys.executable, "-c", _ENV_SCRIPT], input=json.dumps([PROBES, sandbox]),
                         capture_output=True, text=True, timeout=60, cwd=ROOT, env=env)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert secret not in out.stdout, res
    assert res["ok"], res


def test_a_virtualenv_under_tmp_is_importable_in_the_sandbox():
    venv = Path(f"/tmp/fgo-test-venv-{uuid.uuid4().hex[:8]}")
    try:
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
        site = next(venv.glob("lib/python*/site-packages"))
        (site / "fgo_probe_mod.py").write_text("VALUE = 'from the venv under /tmp'\n")
        import site as host_site  # the engine's own dependencies, seen through a .pth file

        (site / "host.pth").write_text("\n".join(host_site.getsitepackages()) + "\n")
        script = ("import json; from fgo_engine.tools.sandbox import run_tool\n"
                  "src = 'def f():\\n    import fgo_probe_mod\\n    return fgo_probe_mod.VALUE\\n'\n"
                  "r = run_tool(src, 'f', {}, sandbox='strict'); print(json.dumps([r.ok, r.value, r.error]))\n")
        out = subprocess.run([str(venv / "bin" / "python"), "-c", script], capture_output=True, text=True,
                             timeout=60, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout) == [True, "from the venv under /tmp", None]
    finally:
        subprocess.run(["rm", "-rf", str(venv)], check=False)


def test_the_in_process_layer_uses_landlock_where_the_kernel_has_it():
    abi = isolation.landlock_abi()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    assert abi == max(0, libc.syscall(444, None, ctypes.c_size_t(0), 1))
    if abi:
        r = call("parent_environ", "in-process")
        assert r.ok and all(x == "PermissionError" for x in json.loads(r.value)), r


def test_guard_free_code_in_process_cannot_write_outside_its_scratch_folder(tmp_path):
    assert isolation.landlock_abi(), "this kernel has no landlock: the in-process layer has only the guard"
    target = tmp_path / "planted.txt"
    os.chmod(tmp_path, 0o777)  # the tool's uid (root: one of its own) could write here
    r = call("write_outside", "in-process", path=str(target))
    assert r.ok and r.value == "PermissionError", r
    assert not target.exists()


def test_guard_free_code_in_process_cannot_signal_the_app():
    r = call("signal_parent", "in-process")
    assert r.ok and r.value == "PermissionError", r


_SIGNAL_SCRIPT = textwrap.dedent('''
    import ctypes, json, os, signal, sys
    from fgo_engine.tools import _sandbox_child as child, syscalls
    protect = syscalls.host_processes()  # as the app would: its pid, its parent, its group, -1
    kid = os.fork()
    if kid == 0:
        signal.pause()
        os._exit(0)
    libc = ctypes.CDLL(None, use_errno=True)
    child.load_seccomp(libc, syscalls.build(protect).bpf)  # the filter alone: no landlock here
    out = {}
    for label, pid in (("self", os.getpid()), ("parent", os.getppid()), ("all", -1),
                       ("group", -os.getpgrp()), ("own child", kid)):
        try:
            os.kill(pid, 0)
            out[label] = "allowed"
        except OSError as e:
            out[label] = type(e).__name__
    os.kill(kid, signal.SIGKILL)
    os.waitpid(kid, 0)
    print(json.dumps(out))
''')


def test_the_in_process_filter_alone_keeps_signals_off_the_app():
    out = subprocess.run([sys.executable, "-c", _SIGNAL_SCRIPT], capture_output=True, text=True, timeout=60,
                         cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"self": "PermissionError", "parent": "PermissionError",
                                      "all": "PermissionError", "group": "PermissionError",
                                      "own child": "allowed"}


def test_files_in_the_memory_backed_tmp_count_against_the_memory_limit():
    r = run_tool(PROBES, "files_then_heap", {"limit_mb": 64}, memory_mb=64, timeout=20.0, sandbox="strict")
    assert r.ok, r
    got = json.loads(r.value)
    assert got["files_mb"] > 0 and got["heap_mb"] > 0, got  # both work, within one budget
    assert got["files_mb"] + got["heap_mb"] <= 64, got


@pytest.mark.parametrize("sandbox", LAYERS)
def test_calls_on_the_app_process_and_kernel_memory_are_refused(sandbox):
    r = call("at_the_app", sandbox, nr_prlimit=nr("prlimit64"), nr_setpriority=nr("setpriority"),
             nr_fcntl=nr("fcntl"), nr_ioctl=nr("ioctl"))
    assert r.ok, r
    got = json.loads(r.value)
    assert {k: got[k] for k in ("prlimit", "setpriority", "setpriority_user", "pipe_size", "tiocsti")} == {
        "prlimit": "EPERM", "setpriority": "EPERM", "setpriority_user": "EPERM", "pipe_size": "EPERM",
        "tiocsti": "EPERM"}, got
    assert got["pipes"] == "EMFILE" and got["open_fds"] < 256, got  # pipe buffers: a bounded number


@pytest.mark.parametrize("sandbox", LAYERS)
def test_a_tool_may_still_set_its_own_limits_and_priority(sandbox):
    src = ("import os, resource\n"
           "def f():\n"
           "    os.setpriority(os.PRIO_PROCESS, 0, 5)\n"
           "    return os.getpriority(os.PRIO_PROCESS, 0)\n")
    r = run_tool(src, "f", {}, sandbox=sandbox)
    assert r.ok and r.value == "5", r


def test_guard_free_code_in_process_cannot_start_processes():
    r = call("fork_unhooked", "in-process")
    assert r.ok and r.value == "PermissionError", r  # no fork bomb as the app's user
