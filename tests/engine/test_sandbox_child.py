"""The sandbox child's pure parts, in the test's own process (the child itself runs by path in
every test of test_sandbox*.py): the capped output, the guard's rules, the result record."""
from __future__ import annotations

import os

import pytest

from fgo_engine.tools import _sandbox_child as child


def test_capture_keeps_the_first_characters_and_counts_the_rest():
    cap = child.Capture(10)
    cap.write("0123456789abcdef")
    cap.write(b"\xffbytes")  # bytes are decoded, never refused
    assert cap.total == 22 and cap.kept == 10
    assert cap.text().endswith("[truncated: 22 chars in all]")
    with pytest.raises(TypeError, match="must be str"):
        cap.write(5)
    small = child.Capture(100)
    small.write("short")
    assert small.text() == "short" and small.writable() and not small.isatty()


def _guard(tmp_path, refusals):
    scratch = tmp_path / "scratch"
    files = scratch / "files"
    files.mkdir(parents=True)
    return child.Guard(scratch=str(scratch), files=str(files), read_roots=[str(tmp_path / "lib")],
                       report=refusals.append), scratch


def test_guard_writes_only_into_the_scratch_folder_and_never_into_the_task_files(tmp_path):
    refusals: list[str] = []
    g, scratch = _guard(tmp_path, refusals)
    g.check("open", (str(scratch / "out.txt"), "w", 0))  # allowed
    for path, reason in ((tmp_path / "elsewhere.txt", child.WRITE), (scratch / "files" / "x", child.FILES)):
        with pytest.raises(PermissionError):
            g.check("open", (str(path), "w", 0))
        assert refusals[-1] == reason
    with pytest.raises(PermissionError):
        g.check("os.rename", (str(scratch / "a"), str(tmp_path / "b"), None, None))
    assert refusals[-1] == child.WRITE


def test_guard_reads_only_its_roots(tmp_path):
    refusals: list[str] = []
    g, scratch = _guard(tmp_path, refusals)
    (tmp_path / "lib").mkdir()
    g.check("open", (str(tmp_path / "lib" / "mod.py"), "r", 0))
    g.check("os.listdir", (str(scratch),))
    with pytest.raises(PermissionError):
        g.check("open", (str(tmp_path / "secret"), "r", 0))
    assert refusals == [child.READ]


@pytest.mark.parametrize("event, args, reason", [
    ("socket.connect", (None, ("127.0.0.1", 80)), child.NET),
    ("urllib.Request", ("http://x",), child.NET),
    ("subprocess.Popen", ("ls",), child.PROC),
    ("os.kill", (1, 9), "sending signals is not allowed"),
    ("ctypes.dlopen", ("libc.so.6",), "ctypes is not allowed"),
    ("resource.setrlimit", (9, (1, 1)), "changing resource limits is not allowed"),
])
def test_guard_refuses_events(tmp_path, event, args, reason):
    refusals: list[str] = []
    g, _ = _guard(tmp_path, refusals)
    with pytest.raises(PermissionError):
        g.hook(event, args)
    assert refusals == [reason]


def test_guard_refuses_the_blocked_imports_and_is_not_reentered(tmp_path):
    refusals: list[str] = []
    g, _ = _guard(tmp_path, refusals)
    with pytest.raises(ImportError, match="ctypes"):
        g.hook("import", ("ctypes", None, None, None, None))
    g.busy.append(1)
    g.hook("subprocess.Popen", ("ls",))  # the guard's own calls pass
    assert refusals == []


def test_run_calls_a_toolbox_function_and_reports_its_errors():
    source = ("def add(a, b, /, scale=1):\n    return (a + b) * scale\n"
              "def boom():\n    raise ValueError('no')\n"
              "import json\n")
    ok = child.run(source, "add", {"a": 1, "b": 2, "scale": 3}, 100)
    assert ok["ok"] and ok["value"] == "9"
    bad = child.run(source, "boom", {}, 100)
    assert not bad["ok"] and bad["error"] == "ValueError: no" and "line 4 in boom" in bad["traceback"]
    assert child.run(source, "json", {}, 100)["error"] == "no tool named 'json' in the toolbox"  # an import
    assert child.run(source, "_private", {}, 100)["error"] == "no tool named '_private' in the toolbox"
    syntax = child.run("def f(:\n", "f", {}, 100)
    assert syntax["error"].startswith("SyntaxError:") and "(line 1)" in syntax["error"]
    assert child.error_of(MemoryError(), 100) == ("memory limit exceeded", "")


def test_values_become_text():
    assert child.text_of("plain") == "plain"
    assert child.text_of({"a": [1, 2]}) == '{"a": [1, 2]}'
    assert child.text_of({1, 2}).startswith("{1")  # not JSON: repr
    assert child.truncate("x" * 100, 40).endswith("[truncated: 100 chars in all]")
    assert child.one_line("a\n  b\tc") == "a b c"


def test_landlock_rights_by_abi():
    every1, file1 = child.landlock_rights(1)
    every5, file5 = child.landlock_rights(5)
    assert every1 == (1 << 13) - 1 and file1 == 0b111  # execute, write, read
    assert every5 & (1 << 15) and file5 & (1 << 15) and file5 & (1 << 14)  # ioctl_dev, truncate


def test_write_all_survives_a_closed_pipe():
    r, w = os.pipe()
    os.close(r)
    child._write_all(w, b"x" * 10)  # EPIPE: given up, no exception
    os.close(w)
