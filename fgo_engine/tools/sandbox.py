"""Run one tool call of an LLM-written toolbox in a fresh, limited child process.

Tool code never runs in the app's process. Each call starts ``python -I -S -B
_sandbox_child.py`` (:mod:`fgo_engine.tools._sandbox_child`, run by path) in its own
session, with a minimal environment (no API keys), a temporary scratch directory as cwd and the task's files copied into
``scratch/files`` (also in ``$TASK_FILES``). The source, tool name and arguments go
in on stdin as JSON; the result comes back on a dedicated pipe, prefixed with a
per-call nonce, so nothing the tool prints can be mistaken for it.

Limits, in layers:

- OS: bubblewrap namespaces (:mod:`.isolation`) and a system-call filter (:mod:`.syscalls`);
  without bubblewrap (``auto``) the child still installs the filter, joins a fresh
  session keyring and, when the app is root, runs under a uid of its own.
- kernel: ``RLIMIT_AS`` (memory), ``RLIMIT_CPU``, ``RLIMIT_FSIZE`` (file and
  stdout size), ``RLIMIT_CORE`` = 0, and ``alarm()`` as a backstop should the app
  die; the parent enforces the wall-clock timeout and kills the process group.
- in the child, before tool code runs: ``socket`` entry points replaced by functions
  raising ``PermissionError``, ``_posixsubprocess.fork_exec`` disabled, ``sys.stdout``
  and ``sys.stderr`` replaced by a capped buffer, and an audit hook (which tool
  code cannot remove) refusing network events, process creation (``os.system``,
  ``subprocess.Popen``, ``os.exec*``, ``os.fork``, ``os.posix_spawn``), signals to
  other processes, ``ctypes``, raising resource limits, writes outside the
  scratch directory or into the task files, and reads outside the scratch
  directory, the Python installation and system directories (so a tool cannot
  read the project's ``.env`` or a home directory).

A blocked action fails the call with a one-line reason even when the tool catches
the ``PermissionError``. This guards against mistaken or careless LLM code; it is
not a boundary against deliberately adversarial code (in-process hooks can be
subverted), for which the OS layer is the boundary (see docs/sandbox.md). POSIX only.
"""
from __future__ import annotations

import json
import logging
import math
import os
import secrets
import select
import shutil
import signal
import site
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fgo_engine import redaction
from fgo_engine.tools import isolation, syscalls

__all__ = ["ToolResult", "run_tool", "safe_text", "status"]

_CHILD = Path(__file__).resolve().with_name("_sandbox_child.py")
_log = logging.getLogger("fgo.sandbox")
_warned_filter = False


safe_text = redaction.storable  # a tool's text as the run can store it (lone surrogates escaped)


@dataclass(frozen=True)
class ToolResult:
    """Outcome of one tool call. ``value`` is the return value as text (a str as is,
    else JSON if serializable, else ``repr``), ``error`` a one-line reason when
    ``ok`` is False, ``traceback`` the tool's own frames of a crash."""

    ok: bool
    value: str
    error: str | None
    stdout: str
    duration_ms: float
    traceback: str = ""

    def for_agent(self) -> str:
        """What to send back to the agent as the tool message."""
        text = self.value if self.ok else f"Error: {self.error}"
        if self.stdout.strip():
            text += f"\n[printed output]\n{self.stdout}"
        return text


# Not /etc as a whole: /etc/passwd, /etc/shadow and friends are none of a tool's business.
_SYSTEM_READ_ROOTS = ("/usr", "/lib", "/lib32", "/lib64", "/bin", "/sbin", "/etc/localtime",
                      "/etc/timezone", "/etc/mime.types", "/etc/ld.so.cache",
                      "/dev/null", "/dev/zero", "/dev/urandom", "/dev/random")


def _site_dirs() -> list[str]:
    dirs = []
    try:
        dirs.extend(site.getsitepackages())
    except AttributeError:  # pragma: no cover - very old virtualenv
        pass
    return [d for d in dirs if os.path.isdir(d)]


def _read_roots(extra: Sequence[str | Path]) -> list[str]:
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
             *_site_dirs(), *_SYSTEM_READ_ROOTS, str(_CHILD), *(str(p) for p in extra)}
    return sorted(roots)


def _fmt_seconds(t: float) -> str:
    return f"{t:.1f}" if round(t, 1) == t else f"{t:g}"


def _one_line(s: str, n: int = 300) -> str:
    s = redaction.scrub(" ".join(s.split()))  # before cutting: never half a key
    return s if len(s) <= n else s[: n - 1] + "…"


def _truncate(s: str, n: int, total: int | None = None) -> str:
    s = redaction.scrub(s)  # before cutting: never half a key
    if len(s) <= n and (total is None or total <= len(s)):
        return s
    mark = f"\n... [truncated: {max(len(s), total or 0)} chars in all]"
    return s[: max(0, n - len(mark))] + mark


def _copy_files(src: Path, dst: Path) -> None:
    """Copy the task files and make the copy read-only (the audit hook enforces it
    too, which matters when the app runs as root)."""
    shutil.copytree(src, dst, symlinks=False)
    for dirpath, _dirnames, filenames in os.walk(dst):
        for f in filenames:
            os.chmod(os.path.join(dirpath, f), 0o444)
    for dirpath, dirnames, _ in os.walk(dst, topdown=False):
        for d in dirnames:
            os.chmod(os.path.join(dirpath, d), 0o555)
    os.chmod(dst, 0o555)


def _remove_tree(root: str) -> None:
    """rmtree that first restores write permission on directories (read-only task
    files, or a tool's chmod 000), without following symlinks out of the tree."""
    def fix(path: str) -> None:
        try:
            if not os.path.islink(path):
                os.chmod(path, stat.S_IRWXU)
        except OSError:
            pass

    fix(root)
    for dirpath, dirnames, _ in os.walk(root):
        for d in dirnames:
            fix(os.path.join(dirpath, d))
    shutil.rmtree(root, ignore_errors=True)


def _parse_result(raw: bytes, nonce: str) -> tuple[dict[str, Any] | None, str | None]:
    """The last result record and the first violation record on the result pipe.

    The child writes ``nonce!reason`` the moment a guard refuses something, and
    ``nonce{json}`` once at the end; a violation already written cannot be taken back.
    """
    text = raw.decode("utf-8", "replace")
    violation: str | None = None
    result: dict[str, Any] | None = None
    for record in text.split(nonce)[1:]:
        line = record.split("\n", 1)[0]
        if line.startswith("!"):
            violation = violation or (line[1:].strip() or "a sandbox guard refused an action")
            continue
        try:
            res = json.loads(line)
        except ValueError:
            continue
        if not isinstance(res, dict) or not isinstance(res.get("ok"), bool):
            continue
        if any(not isinstance(res.get(key, ""), str) for key in ("value", "stdout", "traceback")):
            continue
        if res.get("error") is not None and not isinstance(res["error"], str):
            continue
        result = res
    return result, violation


def _death_reason(returncode: int, output: str, *, isolated: bool) -> str:
    if "MemoryError" in output or "Cannot allocate memory" in output:
        return "memory limit exceeded"
    if isolated and returncode > 128:  # bwrap reports a signal death as 128 + signal
        returncode = -(returncode - 128)
    if returncode < 0:
        sig = -returncode
        if sig == signal.SIGXCPU:
            return "CPU time limit exceeded"
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        return f"the tool process crashed ({name})"
    last = next((ln for ln in reversed(output.splitlines()) if ln.strip()), "")
    msg = f"the tool process exited with code {returncode} without a result"
    return _one_line(f"{msg}: {last}" if last else msg)


@dataclass
class _Call:
    """The resources one call holds, released by :meth:`close` whatever happens."""

    fds: list[int] = field(default_factory=list)
    tmp: str | None = None
    proc: subprocess.Popen[bytes] | None = None
    sandbox_pid: int | None = None

    def pipe(self) -> tuple[int, int]:
        r, w = os.pipe()
        self.fds += [r, w]
        return r, w

    def adopt(self, fd: int) -> int:
        self.fds.append(fd)
        return fd

    def release(self, fds: Sequence[int]) -> None:
        """Close the child's ends once it has them."""
        for fd in fds:
            os.close(fd)
            self.fds.remove(fd)

    def close(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            _kill(self.proc, self.sandbox_pid)
        for fd in self.fds:
            os.close(fd)
        self.fds.clear()
        if self.tmp is not None:
            _remove_tree(self.tmp)
            self.tmp = None


@dataclass
class _Plan:
    """How to start the child: its command line and where its scratch folder is."""

    argv: list[str]
    cwd: str | None
    scratch: str
    files: str
    pass_fds: list[int]
    info_fd: int = -1
    drop_to_uid: int = 0
    nproc: int = 0
    seccomp: str = ""  # hex BPF the child installs itself (in-process layer)
    landlock: int = 0  # the landlock ABI the child restricts its file access with (in-process layer)
    tmpfs: int = 0  # bytes of the OS layer's /tmp, which come out of the memory limit


def _checked_arguments(source: Any, name: Any, arguments: Any, files_dir: Path | None, *, timeout: float,
                       memory_mb: int, max_output: int, max_file_mb: int) -> dict[str, Any]:
    """The caller's mistakes, raised before anything starts; the arguments as plain JSON."""
    if not isinstance(source, str) or not isinstance(name, str):
        raise TypeError("source and name must be str")
    if not isinstance(arguments, dict):
        raise TypeError(f"arguments must be a dict, not {type(arguments).__name__}")
    if timeout <= 0 or memory_mb <= 0 or max_output < 0 or max_file_mb <= 0:
        raise ValueError("timeout, memory_mb and max_file_mb must be positive, max_output ≥ 0")
    if files_dir is not None and not Path(files_dir).is_dir():
        raise FileNotFoundError(f"files_dir {files_dir} is not a directory")
    try:
        return json.loads(json.dumps(arguments))
    except (TypeError, ValueError) as e:
        raise TypeError(f"tool arguments must be JSON-serializable: {e}") from None


def _system_call_filter(mode: str) -> syscalls.Filter:
    """The seccomp filter; ``strict`` refuses to run without it, ``auto`` says so once."""
    global _warned_filter
    filt = syscalls.build()
    if filt.available:
        return filt
    if mode == "strict":
        raise isolation.SandboxUnavailableError(f"sandbox = \"strict\" but {filt.reason}")
    if not _warned_filter:
        _warned_filter = True
        _log.warning("fgo: tool sandbox: no system-call filter: %s", filt.reason)
    return filt


def status(mode: str) -> tuple[str, str]:
    """(what tool code runs under with this ``sandbox`` setting, for the session record;
    a warning the run shows on the CLI line and in the app when ``auto`` fell back to the
    in-process layer or runs without the system-call filter, else ``""``). Raises like
    :func:`run_tool` under ``strict`` when a layer is missing."""
    layer = isolation.resolve(mode)
    filt = _system_call_filter(mode)
    abi = isolation.landlock_abi()
    guard = "in-process guard" + (f" + landlock (ABI {abi})" if abi else " (no landlock in this kernel)")
    filtered = "system-call filter" if filt.available else f"NO system-call filter: {filt.reason}"
    described = f"{mode}: {layer.describe() if layer else guard}; {filtered}"
    warning = ""
    if mode == "auto" and layer is None:
        warning = (f"tool sandbox: OS isolation {isolation.probe().describe()}; LLM-written tools run under the "
                   f"{guard}{' + system-call filter' if filt.available else ''} only, which is not a boundary "
                   "against hostile code (install bubblewrap, or set sandbox = \"strict\" to refuse)")
    elif mode == "auto" and not filt.available:
        warning = f"tool sandbox: {filtered} (set sandbox = \"strict\" to refuse)"
    return described, warning


def tmpfs_bytes(memory_mb: int, max_file_mb: int) -> int:
    """The size of the OS layer's ``/tmp``: files there are memory, so they come out of the
    call's memory limit (a quarter of it at most; room for two files at the size limit)."""
    return min(max(8 << 20, 2 * (int(max_file_mb) << 20)), (int(memory_mb) << 20) // 4)


def _plan_os_layer(call: _Call, layer: isolation.Layer, filt: syscalls.Filter, files_dir: Path | None,
                   allow_read: Sequence[str | Path], max_file_mb: int, memory_mb: int) -> _Plan:
    scratch = f"/tmp/fgo-tool-{secrets.token_hex(6)}/scratch"
    bind_files = str(Path(files_dir).resolve()) if files_dir is not None else None
    if files_dir is not None and layer.how == "root" and not _world_readable(str(bind_files)):
        call.tmp = tempfile.mkdtemp(prefix="fgo-tool-")  # the unprivileged uid must read them
        os.chmod(call.tmp, 0o755)
        bind_files = os.path.join(call.tmp, "files")
        _copy_files(Path(files_dir), Path(bind_files))
    info_r, info_w = call.pipe()
    pass_fds = [info_w]
    seccomp_fd = None
    if filt.available:
        seccomp_fd = call.adopt(syscalls.bpf_fd(filt.bpf))
        pass_fds.append(seccomp_fd)
    argv = isolation.command(layer, scratch=scratch, files_dir=bind_files,
                             read_paths=[str(p) for p in allow_read], programs=[str(_CHILD)],
                             tmpfs_bytes=tmpfs_bytes(memory_mb, max_file_mb), info_fd=info_w,
                             seccomp_fd=seccomp_fd)
    return _Plan(argv=[*argv, isolation.python_executable()], cwd=None, scratch=scratch,
                 files=f"{scratch}/files" if files_dir is not None else "", pass_fds=pass_fds, info_fd=info_r,
                 drop_to_uid=isolation.sandbox_uid() if layer.how == "root" else 0, nproc=isolation.NPROC,
                 tmpfs=tmpfs_bytes(memory_mb, max_file_mb))


def _plan_in_process(call: _Call, filt: syscalls.Filter, files_dir: Path | None) -> _Plan:
    call.tmp = tempfile.mkdtemp(prefix="fgo-tool-")
    scratch = os.path.join(call.tmp, "scratch")
    os.mkdir(scratch)
    files = ""
    if files_dir is not None:
        files = os.path.join(scratch, "files")
        _copy_files(Path(files_dir), Path(files))
    drop = 0
    if os.geteuid() == 0 and isolation.python_readable_by_others():
        # as root the tool still gets a uid of its own (the app's /proc is not its to read),
        # provided that uid can still import the standard library
        os.chmod(call.tmp, 0o711)
        drop = isolation.sandbox_uid()
    return _Plan(argv=[sys.executable], cwd=scratch, scratch=scratch, files=files, pass_fds=[],
                 drop_to_uid=drop, nproc=isolation.NPROC if drop else 0,
                 seccomp=syscalls.build(syscalls.host_processes(), no_processes=True).bpf.hex()
                 if filt.available else "",
                 landlock=isolation.landlock_abi())


def _environment(scratch: str, files: str) -> dict[str, str]:
    """The child's whole environment: nothing of the app's (no keys, no paths of its own)."""
    env = {
        "PATH": "/usr/bin:/bin", "HOME": scratch, "TMPDIR": scratch,
        "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "MALLOC_ARENA_MAX": "2",
        "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
    }
    if files:
        env["TASK_FILES"] = files
    return env


def _launch(call: _Call, plan: _Plan, cfg: dict[str, Any], out_f: Any, deadline: float) -> None:
    """Start the child, hand it its settings on stdin and keep none of its fds."""
    call.proc = subprocess.Popen(
        [*plan.argv, "-I", "-S", "-B", "-X", "utf8", str(_CHILD)],
        stdin=subprocess.PIPE, stdout=out_f, stderr=subprocess.STDOUT,
        cwd=plan.cwd, env=_environment(plan.scratch, plan.files), pass_fds=plan.pass_fds, start_new_session=True,
    )
    call.release(plan.pass_fds)
    if plan.info_fd >= 0:
        call.sandbox_pid = _read_sandbox_pid(plan.info_fd, call.proc.pid, deadline)
    try:
        assert call.proc.stdin is not None
        call.proc.stdin.write(json.dumps(cfg).encode("utf-8"))
        call.proc.stdin.close()
    except OSError:  # the child died before reading (e.g. memory too small)
        pass


def _await(call: _Call, rfd: int, nonce: str, deadline: float,
           max_output: int) -> tuple[dict[str, Any] | None, str | None, bool]:
    """Read the result pipe and reap the child: (result, first violation, timed out)."""
    assert call.proc is not None
    raw, eof, timed_out = _collect(rfd, deadline, 16 * max_output + 65536)
    res, violation = _parse_result(bytes(raw), nonce) if eof else (None, None)
    if not timed_out:
        # with a result the child is only exiting: allow it a moment past the deadline
        grace = 1.0 if res is not None else 0.0
        try:
            call.proc.wait(timeout=max(0.0, deadline - time.monotonic()) + grace)
        except subprocess.TimeoutExpired:
            timed_out = True
    if call.proc.returncode is None:
        _kill(call.proc, call.sandbox_pid)
    return res, violation, timed_out


def _direct_output(out_f: Any, max_output: int) -> str:
    """What bypassed ``sys.stdout`` (os.write, C code), and bwrap's own messages."""
    total = out_f.seek(0, os.SEEK_END)
    out_f.seek(0)
    text = safe_text(out_f.read(4 * max_output + 4096).decode("utf-8", "replace"))
    return _truncate(text, max_output, total) if total > len(text) else text


def _reported(res: dict[str, Any], violation: str | None, fd_output: str, max_output: int,
              duration_ms: float) -> ToolResult:
    stdout = res.get("stdout", "")
    if fd_output.strip():
        stdout = stdout + ("\n" if stdout else "") + fd_output
    limit = max(max_output, 64)  # room for the truncation mark of a tiny limit
    ok = res["ok"] and violation is None
    error = None if ok else _one_line(safe_text(violation or res.get("error") or "unknown error"))
    return ToolResult(ok=ok, value=_truncate(safe_text(res.get("value", "")), limit), error=error,
                      stdout=_truncate(safe_text(stdout), limit), duration_ms=duration_ms,
                      traceback=_truncate(safe_text(res.get("traceback", "")), limit))


def _failed(call: _Call, violation: str | None, timed_out: bool, fd_output: str, *, timeout: float,
            isolated: bool, max_output: int, duration_ms: float) -> ToolResult:
    assert call.proc is not None
    if violation is not None:
        error = safe_text(violation)
    elif timed_out or call.proc.returncode in (-signal.SIGALRM, 128 + signal.SIGALRM):
        error = f"timed out after {_fmt_seconds(timeout)} s"
    else:
        error = _death_reason(call.proc.returncode, fd_output, isolated=isolated)
    return ToolResult(ok=False, value="", error=error, stdout=_truncate(fd_output, max_output),
                      duration_ms=duration_ms)


def run_tool(
    source: str,
    name: str,
    arguments: dict[str, Any],
    *,
    files_dir: Path | None = None,
    timeout: float = 5.0,
    memory_mb: int = 256,
    max_output: int = 4000,
    max_file_mb: int = 32,
    allow_read: Sequence[str | Path] = (),
    sandbox: str = isolation.DEFAULT_MODE,
) -> ToolResult:
    """Call ``name(**arguments)`` from toolbox ``source`` in a fresh sandboxed process.

    Never raises for anything the tool does (crash, hang, flood, forbidden action):
    that comes back as ``ok=False`` with a one-line ``error``. Raises only for caller
    mistakes: wrong argument types, non-JSON arguments, a missing ``files_dir``, and
    :class:`~fgo_engine.tools.isolation.SandboxUnavailableError` under ``sandbox="strict"``
    where the OS layer or the system-call filter cannot run. ``files_dir`` appears
    read-only as ``./files`` (``$TASK_FILES``); ``allow_read`` adds directories the tool
    may read in place. Text the tool returns is made storable (:func:`safe_text`).
    """
    args_json = _checked_arguments(source, name, arguments, files_dir, timeout=timeout, memory_mb=memory_mb,
                                   max_output=max_output, max_file_mb=max_file_mb)
    layer = isolation.resolve(sandbox)
    filt = _system_call_filter(sandbox)
    started = time.monotonic()
    deadline = started + timeout
    call = _Call()
    try:
        rfd, wfd = call.pipe()
        if layer is not None:
            plan = _plan_os_layer(call, layer, filt, files_dir, allow_read, max_file_mb, memory_mb)
        else:
            plan = _plan_in_process(call, filt, files_dir)
        plan.pass_fds.append(wfd)
        nonce = "\x1e" + secrets.token_hex(16) + "\x1e"
        cfg: dict[str, Any] = {
            "nonce": nonce, "result_fd": wfd, "max_output": int(max_output),
            "source": source, "name": name, "arguments": args_json,
            "site": _site_dirs(), "read_roots": _read_roots(allow_read),
            "cpu_s": int(math.ceil(timeout)) + 1, "memory": (int(memory_mb) << 20) - plan.tmpfs,
            "fsize": min(int(max_file_mb) << 20, plan.tmpfs or 1 << 62),
            "drop_to_uid": plan.drop_to_uid, "nproc": plan.nproc,
            "scratch": plan.scratch, "files": plan.files, "seccomp": plan.seccomp, "keyctl_nr": filt.keyctl_nr,
            "landlock": plan.landlock,
        }
        with tempfile.TemporaryFile() as out_f:  # unlinked: nothing is left should the app die
            _launch(call, plan, cfg, out_f, deadline)
            res, violation, timed_out = _await(call, rfd, nonce, deadline, max_output)
            duration_ms = (time.monotonic() - started) * 1000.0
            fd_output = _direct_output(out_f, max_output)
        if res is not None:
            return _reported(res, violation, fd_output, max_output, duration_ms)
        return _failed(call, violation, timed_out, fd_output, timeout=timeout, isolated=layer is not None,
                       max_output=max_output, duration_ms=duration_ms)
    finally:
        call.close()


def _world_readable(root: str) -> bool:
    """Whether an unprivileged uid can read every file under ``root`` in place."""
    for dirpath, _dirnames, filenames in os.walk(root):
        if os.stat(dirpath).st_mode & 0o005 != 0o005:
            return False
        for f in filenames:
            if os.stat(os.path.join(dirpath, f)).st_mode & 0o004 == 0:
                return False
    return True


def _read_sandbox_pid(fd: int, outer_pid: int, deadline: float) -> int | None:
    """bwrap's --info-fd names the host pid of the sandbox's init; read it before the tool
    runs (so tool code cannot forge it) and check it is bwrap's own child."""
    data = b""
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
    while b"}" not in data:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not poller.poll(max(1, int(remaining * 1000))):
            return None
        chunk = os.read(fd, 4096)
        if not chunk:
            return None
        data += chunk
    try:
        pid = int(json.loads(data[: data.index(b"}") + 1])["child-pid"])
        with open(f"/proc/{pid}/stat", "rb") as f:
            ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
    except (ValueError, KeyError, TypeError, OSError, IndexError):
        return None
    return pid if ppid == outer_pid else None


def _collect(rfd: int, deadline: float, cap: int) -> tuple[bytearray, bool, bool]:
    """Read the result pipe until EOF or the deadline: (data, eof, timed_out)."""
    raw = bytearray()
    poller = select.poll()
    poller.register(rfd, select.POLLIN | select.POLLHUP | select.POLLERR)
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return raw, False, True
        if not poller.poll(max(1, int(remaining * 1000))):
            continue
        chunk = os.read(rfd, 65536)
        if not chunk:
            return raw, True, False
        if len(raw) < cap:
            raw += chunk


def _kill(proc: subprocess.Popen[bytes], sandbox_pid: int | None) -> None:
    """Kill the sandbox's init (the kernel then kills its whole PID namespace, setsid or
    not) and the child's process group, then reap it."""
    if sandbox_pid is not None:
        try:
            os.kill(sandbox_pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:  # pragma: no cover - unkillable child
        pass
