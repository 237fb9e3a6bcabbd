"""The sandbox runs LLM-written tool code in a child process; these tests make the
tool misbehave in every way the sandbox claims to contain. No network is needed:
network attempts target 127.0.0.1:9 and are refused before any packet is sent."""
from __future__ import annotations

import os
import statistics
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from fgo_engine.tools.sandbox import ToolResult, run_tool

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX sandbox")

APP_STATE = {"counter": 1}

TOOLS = '''
import os
import sys


def add(a: int, b: int = 2) -> int:
    """Add two numbers."""
    print("adding", a, b)
    return a + b


def info() -> dict:
    return {"pid": os.getpid(), "cwd": os.getcwd(), "env": sorted(os.environ)}


def _private():
    return "hidden"


def read_task_file(name: str) -> str:
    with open(os.path.join("files", name), encoding="utf-8") as f:
        via_rel = f.read()
    with open(os.path.join(os.environ["TASK_FILES"], name), encoding="utf-8") as f:
        assert f.read() == via_rel
    return via_rel


def write_file(path: str, text: str = "x") -> str:
    with open(path, "w") as f:
        f.write(text)
    return "written"


def write_and_read_back() -> str:
    os.makedirs("out", exist_ok=True)
    with open("out/note.txt", "w") as f:
        f.write("scratch works")
    with open("out/note.txt") as f:
        return f.read() + "|" + os.getcwd()


def read_path(path: str) -> str:
    return open(path).read()


def spin():
    while True:
        pass


def sleep_forever():
    import time
    time.sleep(1000)


def allocate():
    block = bytearray(1024 ** 3)
    return len(block)


def connect_socket():
    import socket
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.connect(("127.0.0.1", 9))


def fetch_url():
    import urllib.request
    return urllib.request.urlopen("http://127.0.0.1:9", timeout=1).read()


def fetch_url_quietly():
    import urllib.request
    try:
        urllib.request.urlopen("http://127.0.0.1:9", timeout=1)
    except Exception as e:
        return "swallowed " + type(e).__name__
    return "fetched"


def print_flood():
    print("x" * 50_000_000)
    return "done"


def print_many_lines():
    for _ in range(100_000):
        print("y" * 500)
    return "done"


def fd_flood():
    os.write(1, b"z" * 50_000_000)
    return "done"


def crash():
    raise ValueError("bad input")


def run_shell():
    return os.system("echo hi")


def run_subprocess():
    import subprocess
    return subprocess.run(["echo", "hi"], capture_output=True).stdout


def kill_parent():
    import signal
    os.kill(os.getppid(), signal.SIGTERM)


def mutate_state():
    os.environ["FGO_SANDBOX_MARK"] = "changed"
    sys.modules[__name__] = None
    globals()["APP_STATE"] = {"counter": 999}
    return "mutated"


def returns_object():
    class Thing:
        def __repr__(self):
            return "<Thing>"
    return Thing()


def exits():
    sys.exit(3)


def escape_by_symlink(target: str) -> str:
    os.symlink(target, "link")
    with open("link/escaped.txt", "w") as f:
        f.write("x")
    return "escaped"


def use_ctypes():
    import ctypes
    return ctypes.CDLL(None).fork()


def fork():
    return os.fork()


def ordinary_library_use() -> str:
    import shutil
    import tempfile
    import threading
    from pathlib import Path
    with tempfile.TemporaryDirectory() as d:
        Path(d, "a").mkdir()
        Path(d, "a", "f.txt").write_text("temp ok")
        shutil.copy(Path(d, "a", "f.txt"), "copy.txt")
    seen = []
    t = threading.Thread(target=lambda: seen.append(Path("copy.txt").read_text()))
    t.start()
    t.join()
    return seen[0]


def close_result_channel_and_hang():
    import time
    for fd in range(3, 20):
        try:
            os.close(fd)
        except OSError:
            pass
    time.sleep(1000)
'''


def call(tool: str, /, timeout: float = 5.0, **kw) -> ToolResult:
    files_dir = kw.pop("files_dir", None)
    return run_tool(TOOLS, tool, kw, files_dir=files_dir, timeout=timeout)


def test_normal_tool_returns_value_and_output():
    r = call("add", a=3)
    assert r.ok and r.error is None
    assert r.value == "5"
    assert r.stdout == "adding 3 2\n"
    assert r.duration_ms > 0
    assert "5" in r.for_agent() and "adding" in r.for_agent()


def test_runs_in_another_process_with_clean_env_and_scratch_cwd():
    r = call("info")
    assert r.ok
    import json
    info = json.loads(r.value)
    assert info["pid"] != os.getpid()
    assert not any(k.endswith("_API_KEY") for k in info["env"])
    assert not os.path.exists(info["cwd"])  # scratch removed afterwards


def test_private_helpers_and_unknown_names_are_not_callable():
    assert call("_private").error == "no tool named '_private' in the toolbox"
    assert call("nope").error == "no tool named 'nope' in the toolbox"
    assert call("os").error == "no tool named 'os' in the toolbox"


def test_bad_arguments_and_syntax_errors_are_tool_errors():
    r = call("add", c=1)
    assert not r.ok and r.error.startswith("TypeError: add() got an unexpected keyword")
    r = run_tool("def f(:\n  pass\n", "f", {}, files_dir=None)
    assert not r.ok and r.error.startswith("SyntaxError") and "line 1" in r.error


def test_reads_task_files_read_only(tmp_path):
    files = tmp_path / "files"
    (files / "sub").mkdir(parents=True)
    (files / "data.txt").write_text("hello task", encoding="utf-8")
    r = call("read_task_file", name="data.txt", files_dir=files)
    assert r.ok and r.value == "hello task"
    r = call("write_file", path="files/data.txt", text="tampered", files_dir=files)
    assert not r.ok and r.error == "the task files are read-only"
    assert (files / "data.txt").read_text(encoding="utf-8") == "hello task"


def test_infinite_loop_times_out_promptly():
    t0 = time.monotonic()
    r = call("spin", timeout=1)
    assert not r.ok and r.error == "timed out after 1.0 s"
    assert time.monotonic() - t0 < 3
    t0 = time.monotonic()
    r = call("sleep_forever", timeout=0.5)  # wall clock, not CPU time
    assert r.error == "timed out after 0.5 s" and time.monotonic() - t0 < 3


def test_allocating_a_gigabyte_hits_the_memory_limit():
    r = call("allocate")
    assert not r.ok and r.error == "memory limit exceeded"


@pytest.mark.parametrize("tool", ["connect_socket", "fetch_url", "fetch_url_quietly"])
def test_network_is_refused(tool):
    r = call(tool)
    assert not r.ok
    assert r.error == "network access is not allowed"  # even when the tool swallowed it


def test_writes_outside_the_scratch_dir_are_refused(tmp_path):
    outside = [f"/tmp/outside-{uuid.uuid4().hex}.txt", str(tmp_path / "outside.txt")]
    for path in outside:
        r = call("write_file", path=path)
        assert not r.ok and r.error == "write outside the scratch directory is not allowed"
        assert not os.path.exists(path)
    r = call("write_file", path="../x")
    assert r.error == "write outside the scratch directory is not allowed"


def test_reads_outside_are_refused():
    r = call("read_path", path=str(Path(__file__).resolve()))  # the project's own files
    assert not r.ok and r.error == "reading outside the scratch directory is not allowed"
    r = call("read_path", path=os.__file__)  # the Python installation is readable
    assert r.ok


def test_writing_inside_the_scratch_dir_works():
    r = call("write_and_read_back")
    assert r.ok
    text, scratch = r.value.split("|")
    assert text == "scratch works"
    assert not os.path.exists(scratch)


@pytest.mark.parametrize("tool", ["print_flood", "print_many_lines", "fd_flood"])
def test_output_flood_is_cut_and_fast(tool):
    t0 = time.monotonic()
    r = call(tool)
    elapsed = time.monotonic() - t0
    assert elapsed < 5
    assert r.ok and r.value == "done"
    assert len(r.stdout) <= 4000 and "truncated" in r.stdout


def test_crash_reports_exception_type_and_message():
    r = call("crash")
    assert not r.ok and r.value == ""
    assert r.error == "ValueError: bad input"
    assert 'raise ValueError("bad input")' in r.traceback and "in crash" in r.traceback


@pytest.mark.parametrize("tool", ["run_shell", "run_subprocess"])
def test_running_programs_is_refused(tool):
    r = call(tool)
    assert not r.ok and r.error == "running other programs is not allowed"


def test_app_process_state_is_unaffected():
    before = dict(os.environ)
    r = call("mutate_state")
    assert r.ok and r.value == "mutated"
    assert APP_STATE == {"counter": 1}
    assert "FGO_SANDBOX_MARK" not in os.environ and dict(os.environ) == before
    r = call("kill_parent")
    assert not r.ok and r.error == "sending signals is not allowed"


def test_return_values_and_exit():
    assert call("returns_object").value == "<Thing>"  # not JSON: repr
    assert call("info").value.startswith('{"pid": ')  # JSON when serializable
    r = call("exits")
    assert not r.ok and r.error == "SystemExit: 3"


def test_caller_mistakes_raise():
    with pytest.raises(TypeError):
        run_tool(TOOLS, "add", [1, 2], files_dir=None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="JSON"):
        run_tool(TOOLS, "add", {"a": object()}, files_dir=None)
    with pytest.raises(FileNotFoundError):
        run_tool(TOOLS, "add", {"a": 1}, files_dir=Path("/nonexistent/dir"))


def test_concurrent_calls_and_per_call_overhead():
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda i: call("add", a=i, b=i), range(8)))
    assert [r.value for r in results] == [str(2 * i) for i in range(8)]
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        assert call("add", a=1).ok
        times.append((time.perf_counter() - t0) * 1000)
    median = statistics.median(times)
    print(f"\nsandbox per-call overhead: median {median:.1f} ms over {len(times)} calls")
    assert median < 1000


def test_symlink_escape_is_refused(tmp_path):
    r = call("escape_by_symlink", target=str(tmp_path))
    assert not r.ok and r.error == "write outside the scratch directory is not allowed"
    assert not (tmp_path / "escaped.txt").exists()


def test_ctypes_and_fork_are_refused():
    assert call("use_ctypes").error == "ImportError: importing ctypes is not allowed in a tool"
    assert call("fork").error == "running other programs is not allowed"


def test_ordinary_library_use_still_works():
    r = call("ordinary_library_use")
    assert r.ok, r.error
    assert r.value == "temp ok"


def test_closing_the_result_channel_cannot_outlive_the_timeout():
    t0 = time.monotonic()
    r = call("close_result_channel_and_hang", timeout=0.5)
    assert r.error == "timed out after 0.5 s"
    assert time.monotonic() - t0 < 2
