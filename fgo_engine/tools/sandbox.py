"""Run one tool call of an LLM-written toolbox in a fresh, limited child process.

Tool code never runs in the app's process. Each call starts ``python -I -S -B -c
<bootstrap>`` in its own session, with a minimal environment (no API keys), a
temporary scratch directory as cwd and the task's files copied into
``scratch/files`` (also in ``$TASK_FILES``). The source, tool name and arguments go
in on stdin as JSON; the result comes back on a dedicated pipe, prefixed with a
per-call nonce, so nothing the tool prints can be mistaken for it.

Limits, in layers:

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
subverted), for which an OS sandbox (container, namespaces) is the right tool.
POSIX only.
"""
from __future__ import annotations

import json
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fgo_engine import redaction
from fgo_engine.tools import isolation

__all__ = ["ToolResult", "run_tool"]


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


_BOOTSTRAP = r'''
def _fgo_sandbox_main():
    import builtins, io, json, os, sys
    cfg = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    nonce, rfd, limit = cfg["nonce"], cfg["result_fd"], cfg["max_output"]
    sys.path.extend(p for p in cfg["site"] if p not in sys.path)
    import linecache, resource, signal, socket, _posixsubprocess
    uid = cfg["drop_to_uid"]
    if uid:  # OS layer as root: the mounts are built, now become nobody of our own
        os.chown(cfg["scratch"], uid, uid)
        os.chmod(cfg["scratch"], 0o700)
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)

    encode = json.JSONEncoder(ensure_ascii=True).encode
    out_of_memory = (nonce + encode({"ok": False, "value": "", "error": "memory limit exceeded",
                                     "stdout": "", "traceback": ""}) + "\n").encode()

    def trunc(s, n):
        if len(s) <= n:
            return s
        mark = "\n... [truncated: %d chars in all]" % len(s)
        return s[: max(0, n - len(mark))] + mark

    def one_line(s):
        return trunc(" ".join(str(s).split()), 300)

    class Cap(io.TextIOBase):
        encoding = "utf-8"
        errors = "replace"
        def __init__(self):
            self.parts, self.kept, self.total = [], 0, 0
            self.buffer = self
        def write(self, s):
            if isinstance(s, (bytes, bytearray)):
                s = bytes(s).decode("utf-8", "replace")
            if not isinstance(s, str):
                raise TypeError("write() argument must be str, not %s" % type(s).__name__)
            self.total += len(s)
            if self.kept < limit:
                piece = s[: limit - self.kept]
                self.parts.append(piece)
                self.kept += len(piece)
            return len(s)
        def writable(self):
            return True
        def isatty(self):
            return False
        def text(self):
            s = "".join(self.parts)
            if self.total > self.kept:
                mark = "\n... [truncated: %d chars in all]" % self.total
                s = s[: max(0, limit - len(mark))] + mark
            return s

    cap = Cap()
    sys.stdout = sys.stderr = sys.__stdout__ = sys.__stderr__ = cap
    sys.stdin = sys.__stdin__ = io.StringIO("")

    violations = []
    NET = "network access is not allowed"
    PROC = "running other programs is not allowed"
    WRITE = "write outside the scratch directory is not allowed"

    def deny(msg):
        violations.append(msg)
        try:  # reported at once: clearing the list or forging a result later cannot hide it
            os.write(rfd, (nonce + "!" + one_line(msg) + "\n").encode())
        except OSError:
            pass
        raise PermissionError(msg)

    def no_net(*a, **k):
        deny(NET)

    class BlockedSocket(socket.socket):
        def __init__(self, *a, **k):
            deny(NET)

    socket.socket = socket.SocketType = BlockedSocket
    for n in ("create_connection", "create_server", "getaddrinfo", "gethostbyname",
              "gethostbyname_ex", "gethostbyaddr", "getnameinfo", "socketpair", "fromfd"):
        setattr(socket, n, no_net)

    def no_proc(*a, **k):
        deny(PROC)

    _posixsubprocess.fork_exec = no_proc

    real = os.path.realpath
    scratch = real(cfg["scratch"])
    files = real(cfg["files"]) if cfg["files"] else None
    roots = tuple(real(p) for p in cfg["read_roots"]) + (scratch, "/proc/%d" % os.getpid())

    def inside(p, root):
        return p == root or p.startswith(root.rstrip("/") + "/")

    def resolve(p, dir_fd=None):
        if p is None:
            p = "."
        if isinstance(p, int):
            return None
        p = os.fsdecode(os.fspath(p))
        if not os.path.isabs(p):
            if isinstance(dir_fd, int) and not isinstance(dir_fd, bool) and dir_fd >= 0:
                try:
                    base = os.readlink("/proc/self/fd/%d" % dir_fd)
                except OSError:
                    deny(WRITE)
            else:
                base = os.getcwd()
            p = os.path.join(base, p)
        return real(p)

    def check_write(p, dir_fd=None):
        p = resolve(p, dir_fd)
        if p is None:
            return
        if files and inside(p, files):
            deny("the task files are read-only")
        if not inside(p, scratch):
            deny(WRITE)

    def check_read(p):
        p = resolve(p)
        if p is not None and not any(inside(p, r) for r in roots):
            deny("reading outside the scratch directory is not allowed")

    WFLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
    # event -> (indexes of paths written, indexes of the matching dir_fd args)
    PATH_EVENTS = {
        "os.remove": ((0,), (1,)), "os.rmdir": ((0,), (1,)), "os.mkdir": ((0,), (2,)),
        "os.rename": ((0, 1), (2, 3)), "os.link": ((1,), (3,)), "os.symlink": ((1,), (2,)),
        "os.chmod": ((0,), (2,)), "os.chown": ((0,), (3,)), "os.utime": ((0,), (3,)),
        "os.truncate": ((0,), ()), "os.mkfifo": ((0,), (2,)), "os.mknod": ((0,), (3,)),
        "os.setxattr": ((0,), ()), "os.removexattr": ((0,), ()), "shutil.rmtree": ((0,), ()),
        "os.chflags": ((0,), ()), "os.lchflags": ((0,), ()),
    }
    NET_EVENTS = {"urllib.Request", "http.client.connect", "ftplib.connect", "smtplib.connect",
                  "poplib.connect", "imaplib.open", "nntplib.connect", "telnetlib.Telnet.open",
                  "webbrowser.open"}
    PROC_EVENTS = {"os.system", "os.exec", "os.fork", "os.forkpty", "os.posix_spawn",
                   "os.spawn", "subprocess.Popen", "pty.spawn", "os.startfile"}
    BLOCKED_IMPORTS = {"ctypes", "_ctypes", "_posixsubprocess"}
    busy = []

    def hook(event, args):
        if busy:
            return
        busy.append(1)
        try:
            if event == "open":
                path, mode, flags = args
                if isinstance(path, int):
                    return
                if isinstance(mode, str):
                    writing = any(c in mode for c in "wax+")
                else:
                    writing = bool((flags or 0) & WFLAGS)
                if writing:
                    if mode is None and not os.path.isabs(os.fsdecode(os.fspath(path))):
                        deny(WRITE)  # os.open: a dir_fd we cannot see may be in play
                    check_write(path)
                else:
                    check_read(path)
            elif event.startswith("socket.") or event in NET_EVENTS:
                deny(NET)
            elif event in PROC_EVENTS:
                deny(PROC)
            elif event in ("os.kill", "os.killpg", "signal.pthread_kill"):
                deny("sending signals is not allowed")
            elif event.startswith("ctypes."):
                deny("ctypes is not allowed")
            elif event in ("resource.setrlimit", "resource.prlimit"):
                deny("changing resource limits is not allowed")
            elif event == "import":
                if str(args[0]).split(".")[0] in BLOCKED_IMPORTS:
                    raise ImportError("importing %s is not allowed in a tool" % args[0])
            elif event in PATH_EVENTS:
                paths, fds = PATH_EVENTS[event]
                for i, pi in enumerate(paths):
                    if pi < len(args):
                        dfd = args[fds[i]] if i < len(fds) and fds[i] < len(args) else None
                        check_write(args[pi], dfd)
            elif event in ("os.listdir", "os.scandir"):
                check_read(args[0] if args else None)
        finally:
            busy.pop()

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CPU, (cfg["cpu_s"], cfg["cpu_s"] + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (cfg["fsize"], cfg["fsize"]))
    if cfg["nproc"]:  # only under the OS layer: there the count is this call's alone
        resource.setrlimit(resource.RLIMIT_NPROC, (cfg["nproc"], cfg["nproc"]))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of death
    signal.alarm(cfg["cpu_s"] + 2)  # wall-clock backstop should the parent be gone
    mem = cfg["memory"]
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    sys.addaudithook(hook)

    result = {"ok": False, "value": "", "error": None, "stdout": "", "traceback": ""}
    try:
        source, name, arguments = cfg["source"], cfg["name"], cfg["arguments"]
        del cfg
        linecache.cache["<toolbox>"] = (len(source), None, source.splitlines(True), "<toolbox>")
        ns = {"__name__": "toolbox", "__builtins__": builtins}
        exec(compile(source, "<toolbox>", "exec"), ns)
        fn = ns.get(name)
        code = getattr(fn, "__code__", None)
        if name.startswith("_") or code is None or code.co_filename != "<toolbox>":
            result["error"] = "no tool named %r in the toolbox" % name
        else:
            npos = code.co_posonlyargcount
            args = [arguments.pop(v) for v in code.co_varnames[:npos] if v in arguments]
            value = fn(*args, **arguments)
            if isinstance(value, str):
                text = value
            else:
                try:
                    text = json.dumps(value, ensure_ascii=False)
                except Exception:
                    text = repr(value)
            result["value"] = trunc(text, limit)
            result["ok"] = True
    except BaseException as e:
        if isinstance(e, MemoryError):
            result["error"] = "memory limit exceeded"
        elif isinstance(e, SyntaxError) and e.filename == "<toolbox>":
            result["error"] = one_line("SyntaxError: %s (line %s)" % (e.msg, e.lineno))
        else:
            try:
                msg = str(e)
            except Exception:
                msg = "<unprintable message>"
            result["error"] = one_line(type(e).__name__ + (": " + msg if msg else ""))
            try:
                import traceback
                frames = [f for f in traceback.extract_tb(e.__traceback__)
                          if f.filename == "<toolbox>"][-5:]
                result["traceback"] = trunc("\n".join(
                    "line %s in %s: %s" % (f.lineno, f.name, (f.line or "").strip())
                    for f in frames), limit)
            except Exception:
                pass
        e = None
    if violations:
        result["ok"] = False
        result["error"] = violations[0]
    try:
        result["stdout"] = cap.text()
        data = (nonce + encode(result) + "\n").encode()
    except MemoryError:
        data = out_of_memory
    while data:
        try:
            data = data[os.write(rfd, data):]
        except InterruptedError:
            continue
        except OSError:
            break
    os._exit(0)

_fgo_sandbox_main()
'''

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
             *_site_dirs(), *_SYSTEM_READ_ROOTS, *(str(p) for p in extra)}
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
    where the OS layer cannot run. ``files_dir`` appears read-only as ``./files``
    (``$TASK_FILES``); ``allow_read`` adds directories the tool may read in place.
    """
    if not isinstance(source, str) or not isinstance(name, str):
        raise TypeError("source and name must be str")
    if not isinstance(arguments, dict):
        raise TypeError(f"arguments must be a dict, not {type(arguments).__name__}")
    if timeout <= 0 or memory_mb <= 0 or max_output < 0 or max_file_mb <= 0:
        raise ValueError("timeout, memory_mb and max_file_mb must be positive, max_output ≥ 0")
    if files_dir is not None and not Path(files_dir).is_dir():
        raise FileNotFoundError(f"files_dir {files_dir} is not a directory")
    try:
        args_json = json.loads(json.dumps(arguments))
    except (TypeError, ValueError) as e:
        raise TypeError(f"tool arguments must be JSON-serializable: {e}") from None
    layer = isolation.resolve(sandbox)

    started = time.monotonic()
    tmp: str | None = None
    fds: list[int] = []
    proc: subprocess.Popen[bytes] | None = None
    sandbox_pid: int | None = None
    info_fd = -1
    try:
        rfd, wfd = os.pipe()
        fds += [rfd, wfd]
        nonce = "\x1e" + secrets.token_hex(16) + "\x1e"
        cfg: dict[str, Any] = {
            "nonce": nonce, "result_fd": wfd, "max_output": int(max_output),
            "source": source, "name": name, "arguments": args_json,
            "site": _site_dirs(), "read_roots": _read_roots(allow_read),
            "cpu_s": int(math.ceil(timeout)) + 1, "memory": int(memory_mb) << 20,
            "fsize": int(max_file_mb) << 20, "drop_to_uid": 0, "nproc": 0,
        }
        pass_fds = [wfd]
        if layer is not None:
            scratch = f"/tmp/fgo-tool-{secrets.token_hex(6)}/scratch"
            files_path = f"{scratch}/files" if files_dir is not None else ""
            bind_files = str(Path(files_dir).resolve()) if files_dir is not None else None
            if bind_files is not None and layer.how == "root" and not _world_readable(bind_files):
                tmp = tempfile.mkdtemp(prefix="fgo-tool-")  # the unprivileged uid must read them
                os.chmod(tmp, 0o755)
                bind_files = os.path.join(tmp, "files")
                _copy_files(Path(files_dir), Path(bind_files))  # type: ignore[arg-type]
            info_r, info_w = os.pipe()
            fds += [info_r, info_w]
            info_fd = info_r
            pass_fds.append(info_w)
            argv = isolation.command(layer, scratch=scratch, files_dir=bind_files,
                                     read_paths=[str(p) for p in allow_read],
                                     tmpfs_bytes=max(64 << 20, 2 * (int(max_file_mb) << 20)), info_fd=info_w)
            argv.append(isolation.python_executable())
            cfg["drop_to_uid"] = isolation.sandbox_uid() if layer.how == "root" else 0
            cfg["nproc"] = isolation.NPROC
            cwd = None
        else:
            tmp = tempfile.mkdtemp(prefix="fgo-tool-")
            scratch = os.path.join(tmp, "scratch")
            os.mkdir(scratch)
            files_path = ""
            if files_dir is not None:
                files_path = os.path.join(scratch, "files")
                _copy_files(Path(files_dir), Path(files_path))
            argv = [sys.executable]
            cwd = scratch
        cfg["scratch"], cfg["files"] = scratch, files_path
        env = {
            "PATH": "/usr/bin:/bin", "HOME": scratch, "TMPDIR": scratch,
            "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "MALLOC_ARENA_MAX": "2",
            "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
        }
        if files_path:
            env["TASK_FILES"] = files_path
        deadline = started + timeout
        with tempfile.TemporaryFile() as out_f:  # unlinked: nothing is left should the app die
            proc = subprocess.Popen(
                [*argv, "-I", "-S", "-B", "-X", "utf8", "-c", _BOOTSTRAP],
                stdin=subprocess.PIPE, stdout=out_f, stderr=subprocess.STDOUT,
                cwd=cwd, env=env, pass_fds=pass_fds, start_new_session=True,
            )
            for fd in pass_fds:
                os.close(fd)
                fds.remove(fd)
            if layer is not None:
                sandbox_pid = _read_sandbox_pid(info_fd, proc.pid, deadline)
            try:
                assert proc.stdin is not None
                proc.stdin.write(json.dumps(cfg).encode("utf-8"))
                proc.stdin.close()
            except OSError:  # the child died before reading (e.g. memory too small)
                pass

            raw, eof, timed_out = _collect(rfd, deadline, 16 * max_output + 65536)
            res, violation = _parse_result(bytes(raw), nonce) if eof else (None, None)
            if not timed_out:
                # with a result the child is only exiting: allow it a moment past the deadline
                grace = 1.0 if res is not None else 0.0
                try:
                    proc.wait(timeout=max(0.0, deadline - time.monotonic()) + grace)
                except subprocess.TimeoutExpired:
                    timed_out = True
            if proc.returncode is None:
                _kill(proc, sandbox_pid)
            duration_ms = (time.monotonic() - started) * 1000.0
            fd_total = out_f.seek(0, os.SEEK_END)
            out_f.seek(0)  # what bypassed sys.stdout (os.write, C code), and bwrap's own messages
            fd_output = out_f.read(4 * max_output + 4096).decode("utf-8", "replace")
        if fd_total > len(fd_output):
            fd_output = _truncate(fd_output, max_output, fd_total)
        if res is not None:
            stdout = res.get("stdout", "")
            if fd_output.strip():
                stdout = (stdout + ("\n" if stdout else "") + fd_output)
            limit = max(max_output, 64)  # room for the truncation mark of a tiny limit
            ok = res["ok"] and violation is None
            error = None if ok else _one_line(violation or res.get("error") or "unknown error")
            return ToolResult(
                ok=ok, value=_truncate(res.get("value", ""), limit), error=error,
                stdout=_truncate(stdout, limit), duration_ms=duration_ms,
                traceback=_truncate(res.get("traceback", ""), limit),
            )
        if violation is not None:
            error = violation
        elif timed_out or proc.returncode in (-signal.SIGALRM, 128 + signal.SIGALRM):
            error = f"timed out after {_fmt_seconds(timeout)} s"
        else:
            error = _death_reason(proc.returncode, fd_output, isolated=layer is not None)
        return ToolResult(ok=False, value="", error=error,
                          stdout=_truncate(fd_output, max_output), duration_ms=duration_ms)
    finally:
        if proc is not None and proc.returncode is None:
            _kill(proc, sandbox_pid)
        for fd in fds:
            os.close(fd)
        if tmp is not None:
            _remove_tree(tmp)


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
