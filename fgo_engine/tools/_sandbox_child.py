"""The program a tool call runs in: started by :func:`fgo_engine.tools.sandbox.run_tool` as
``python -I -S -B -X utf8 <this file>``, never imported by the engine itself.

It reads its settings, the toolbox source, the tool name and the arguments as one JSON
document on stdin, puts up the in-process guards, calls the tool and writes one result
record (``nonce`` + JSON) on the result pipe. Only the standard library: inside the OS
layer the engine is not importable. The functions above :func:`main` are pure and are
tested in the app's own process.
"""
from __future__ import annotations

import builtins
import io
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

NET = "network access is not allowed"
PROC = "running other programs is not allowed"
WRITE = "write outside the scratch directory is not allowed"
READ = "reading outside the scratch directory is not allowed"
FILES = "the task files are read-only"

_WFLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
# event -> (indexes of the paths written, indexes of the matching dir_fd arguments)
PATH_EVENTS: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "os.remove": ((0,), (1,)), "os.rmdir": ((0,), (1,)), "os.mkdir": ((0,), (2,)),
    "os.rename": ((0, 1), (2, 3)), "os.link": ((1,), (3,)), "os.symlink": ((1,), (2,)),
    "os.chmod": ((0,), (2,)), "os.chown": ((0,), (3,)), "os.utime": ((0,), (3,)),
    "os.truncate": ((0,), ()), "os.mkfifo": ((0,), (2,)), "os.mknod": ((0,), (3,)),
    "os.setxattr": ((0,), ()), "os.removexattr": ((0,), ()), "shutil.rmtree": ((0,), ()),
    "os.chflags": ((0,), ()), "os.lchflags": ((0,), ()),
}
NET_EVENTS = frozenset({"urllib.Request", "http.client.connect", "ftplib.connect", "smtplib.connect",
                        "poplib.connect", "imaplib.open", "nntplib.connect", "telnetlib.Telnet.open",
                        "webbrowser.open"})
PROC_EVENTS = frozenset({"os.system", "os.exec", "os.fork", "os.forkpty", "os.posix_spawn",
                         "os.spawn", "subprocess.Popen", "pty.spawn", "os.startfile"})
BLOCKED_IMPORTS = frozenset({"ctypes", "_ctypes", "_posixsubprocess"})
OPEN_FILES = 256
_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2
_KEYCTL_JOIN_SESSION_KEYRING = 1
# landlock: the same numbers on every architecture
_NR_LANDLOCK_CREATE_RULESET, _NR_LANDLOCK_ADD_RULE, _NR_LANDLOCK_RESTRICT_SELF = 444, 445, 446
_LL_EXECUTE, _LL_WRITE_FILE, _LL_READ_FILE, _LL_READ_DIR = 1, 2, 4, 8
_LL_REFER, _LL_TRUNCATE, _LL_IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
_LL_SCOPE_ABSTRACT_UNIX, _LL_SCOPE_SIGNAL = 1, 2


def truncate(s: str, n: int) -> str:
    if len(s) <= n:
        return s
    mark = f"\n... [truncated: {len(s)} chars in all]"
    return s[: max(0, n - len(mark))] + mark


def one_line(s: object) -> str:
    return truncate(" ".join(str(s).split()), 300)


def inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


class Capture(io.TextIOBase):
    """``sys.stdout`` and ``sys.stderr`` of the tool: keeps the first ``limit`` characters
    and counts the rest, so a flood costs no memory."""

    encoding = "utf-8"
    errors = "replace"

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[str] = []
        self.kept = 0
        self.total = 0
        self.buffer = self

    def write(self, s: Any) -> int:
        if isinstance(s, bytes | bytearray):
            s = bytes(s).decode("utf-8", "replace")
        if not isinstance(s, str):
            raise TypeError(f"write() argument must be str, not {type(s).__name__}")
        self.total += len(s)
        if self.kept < self.limit:
            piece = s[: self.limit - self.kept]
            self.parts.append(piece)
            self.kept += len(piece)
        return len(s)

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def text(self) -> str:
        s = "".join(self.parts)
        if self.total > self.kept:
            mark = f"\n... [truncated: {self.total} chars in all]"
            s = s[: max(0, self.limit - len(mark))] + mark
        return s


class Guard:
    """The audit hook's rules: which reads, writes and events a tool may do.

    ``report`` is called with the reason of each refusal before ``PermissionError`` is
    raised, so that a tool catching the exception still fails the call."""

    def __init__(self, *, scratch: str, files: str | None, read_roots: Sequence[str],
                 report: Callable[[str], None], realpath: Callable[[str], str] = os.path.realpath) -> None:
        self.real = realpath
        self.scratch = realpath(scratch)
        self.files = realpath(files) if files else None
        self.roots = tuple(realpath(p) for p in read_roots) + (self.scratch, f"/proc/{os.getpid()}")
        self.report = report
        self.busy: list[int] = []

    def deny(self, msg: str) -> None:
        self.report(msg)
        raise PermissionError(msg)

    def resolve(self, p: Any, dir_fd: Any = None) -> str | None:
        if p is None:
            p = "."
        if isinstance(p, int):
            return None
        p = os.fsdecode(os.fspath(p))
        if not os.path.isabs(p):
            if isinstance(dir_fd, int) and not isinstance(dir_fd, bool) and dir_fd >= 0:
                try:
                    base = os.readlink(f"/proc/self/fd/{dir_fd}")
                except OSError:
                    self.deny(WRITE)
            else:
                base = os.getcwd()
            p = os.path.join(base, p)
        return self.real(p)

    def check_write(self, p: Any, dir_fd: Any = None) -> None:
        path = self.resolve(p, dir_fd)
        if path is None:
            return
        if self.files and inside(path, self.files):
            self.deny(FILES)
        if not inside(path, self.scratch):
            self.deny(WRITE)

    def check_read(self, p: Any) -> None:
        path = self.resolve(p)
        if path is not None and not any(inside(path, r) for r in self.roots):
            self.deny(READ)

    def _open(self, args: tuple[Any, ...]) -> None:
        path, mode, flags = args
        if isinstance(path, int):
            return
        writing = any(c in mode for c in "wax+") if isinstance(mode, str) else bool((flags or 0) & _WFLAGS)
        if not writing:
            self.check_read(path)
            return
        if mode is None and not os.path.isabs(os.fsdecode(os.fspath(path))):
            self.deny(WRITE)  # os.open: a dir_fd we cannot see may be in play
        self.check_write(path)

    def _paths(self, event: str, args: tuple[Any, ...]) -> None:
        paths, fds = PATH_EVENTS[event]
        for i, pi in enumerate(paths):
            if pi < len(args):
                dfd = args[fds[i]] if i < len(fds) and fds[i] < len(args) else None
                self.check_write(args[pi], dfd)

    def check(self, event: str, args: tuple[Any, ...]) -> None:
        if event == "open":
            self._open(args)
        elif event.startswith("socket.") or event in NET_EVENTS:
            self.deny(NET)
        elif event in PROC_EVENTS:
            self.deny(PROC)
        elif event in ("os.kill", "os.killpg", "signal.pthread_kill"):
            self.deny("sending signals is not allowed")
        elif event.startswith("ctypes."):
            self.deny("ctypes is not allowed")
        elif event in ("resource.setrlimit", "resource.prlimit"):
            self.deny("changing resource limits is not allowed")
        elif event == "import":
            if str(args[0]).split(".")[0] in BLOCKED_IMPORTS:
                raise ImportError(f"importing {args[0]} is not allowed in a tool")
        elif event in PATH_EVENTS:
            self._paths(event, args)
        elif event in ("os.listdir", "os.scandir"):
            self.check_read(args[0] if args else None)

    def hook(self, event: str, args: tuple[Any, ...]) -> None:
        if self.busy:  # the guard's own os calls raise audit events too
            return
        self.busy.append(1)
        try:
            self.check(event, args)
        finally:
            self.busy.pop()


def text_of(value: Any) -> str:
    """A tool's return value as text: a str as is, else JSON, else ``repr``."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False)
    except Exception:
        return repr(value)


def find_tool(ns: dict[str, Any], name: str) -> Callable[..., Any] | None:
    """The public function ``name`` defined by the toolbox itself (not an import)."""
    fn = ns.get(name)
    code = getattr(fn, "__code__", None)
    if name.startswith("_") or code is None or code.co_filename != "<toolbox>":
        return None
    return fn


def call_tool(fn: Callable[..., Any], arguments: dict[str, Any]) -> Any:
    """Positional-only parameters are passed by position, the rest by keyword."""
    code = fn.__code__
    args = [arguments.pop(v) for v in code.co_varnames[: code.co_posonlyargcount] if v in arguments]
    return fn(*args, **arguments)


def error_of(e: BaseException, limit: int) -> tuple[str, str]:
    """(one-line error, the toolbox's own frames) of an exception the tool raised."""
    if isinstance(e, MemoryError):
        return "memory limit exceeded", ""
    if isinstance(e, SyntaxError) and e.filename == "<toolbox>":
        return one_line(f"SyntaxError: {e.msg} (line {e.lineno})"), ""
    try:
        msg = str(e)
    except Exception:
        msg = "<unprintable message>"
    error = one_line(type(e).__name__ + (": " + msg if msg else ""))
    try:
        import traceback

        # only the toolbox's own lines are looked up (the others are the sandbox's files)
        walked = traceback.walk_tb(e.__traceback__)
        frames = [f for f in traceback.StackSummary.extract(walked, lookup_lines=False)
                  if f.filename == "<toolbox>"][-5:]
        tb = truncate("\n".join(f"line {f.lineno} in {f.name}: {(f.line or '').strip()}"
                                for f in frames), limit)
    except Exception:
        tb = ""
    return error, tb


def run(source: str, name: str, arguments: dict[str, Any], limit: int) -> dict[str, Any]:
    """Execute the toolbox and call one tool: the result record (without ``stdout``)."""
    import linecache

    result: dict[str, Any] = {"ok": False, "value": "", "error": None, "stdout": "", "traceback": ""}
    try:
        linecache.cache["<toolbox>"] = (len(source), None, source.splitlines(True), "<toolbox>")
        ns: dict[str, Any] = {"__name__": "toolbox", "__builtins__": builtins}
        exec(compile(source, "<toolbox>", "exec"), ns)
        fn = find_tool(ns, name)
        if fn is None:
            result["error"] = f"no tool named {name!r} in the toolbox"
        else:
            result["value"] = truncate(text_of(call_tool(fn, arguments)), limit)
            result["ok"] = True
    except BaseException as e:  # noqa: B036 - whatever the tool raises is its result
        result["error"], result["traceback"] = error_of(e, limit)
    return result


def fresh_session_keyring(libc: Any, keyctl_nr: int) -> None:
    """Leave the caller's session keyring for a new, empty, anonymous one. Should keyctl
    be refused here (a container's own filter), the caller's keyring is out of reach too."""
    libc.syscall(keyctl_nr, _KEYCTL_JOIN_SESSION_KEYRING, None)


def landlock_rights(abi: int) -> tuple[int, int]:
    """(every file-system right this ABI knows, the subset that applies to a file)."""
    every = (1 << 13) - 1  # ABI 1: execute ... make_sym
    if abi >= 2:
        every |= _LL_REFER
    if abi >= 3:
        every |= _LL_TRUNCATE
    if abi >= 5:
        every |= _LL_IOCTL_DEV
    return every, every & (_LL_EXECUTE | _LL_WRITE_FILE | _LL_READ_FILE | _LL_TRUNCATE | _LL_IOCTL_DEV)


def restrict_paths(libc: Any, abi: int, read: Sequence[str], write: Sequence[str]) -> None:
    """Landlock (the in-process layer, no bwrap): from now on this process and its children
    open only what is under ``read`` (read and execute) or ``write`` (anything), whatever
    the uid may do; with ABI 6 also no abstract unix socket or signal outside the call.
    Paths that do not exist are left out."""
    import ctypes

    every, file_rights = landlock_rights(abi)
    read_rights = _LL_EXECUTE | _LL_READ_FILE | _LL_READ_DIR

    class RulesetAttr(ctypes.Structure):
        _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]

    class PathBeneath(ctypes.Structure):
        _pack_ = 1
        _fields_ = [("allowed", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]

    attr = RulesetAttr(every, 0, _LL_SCOPE_ABSTRACT_UNIX | _LL_SCOPE_SIGNAL if abi >= 6 else 0)
    size = ctypes.sizeof(attr) if abi >= 6 else 8
    ruleset = libc.syscall(_NR_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), 0)
    if ruleset < 0:
        raise OSError(f"cannot create a landlock ruleset: errno {ctypes.get_errno()}")
    try:
        for rights, paths in ((read_rights, read), (every, write)):
            for path in paths:
                try:
                    fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
                except OSError:
                    continue
                try:
                    allowed = rights if os.path.isdir(path) else rights & file_rights
                    rule = PathBeneath(allowed, fd)
                    if libc.syscall(_NR_LANDLOCK_ADD_RULE, ruleset, 1, ctypes.byref(rule), 0) < 0:
                        raise OSError(f"cannot add a landlock rule for {path}: errno {ctypes.get_errno()}")
                finally:
                    os.close(fd)
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 or \
                libc.syscall(_NR_LANDLOCK_RESTRICT_SELF, ruleset, 0) < 0:
            raise OSError(f"cannot restrict this process with landlock: errno {ctypes.get_errno()}")
    finally:
        os.close(ruleset)


def load_seccomp(libc: Any, bpf: bytes) -> None:
    """Install a system-call filter (BPF, as the parent built it for bwrap's ``--seccomp``)."""
    import ctypes

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    program = ctypes.create_string_buffer(bpf, len(bpf))
    prog = SockFprog(len(bpf) // 8, ctypes.cast(program, ctypes.c_void_p))
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 or \
            libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        raise OSError(f"cannot install the system-call filter: errno {ctypes.get_errno()}")


def kernel_setup(cfg: dict[str, Any]) -> None:
    """The steps Python has no wrapper for, through ctypes, which is then dropped from
    ``sys.modules`` again so that tool code does not find it loaded: the unprivileged
    uid (as root), a fresh session keyring, and (in-process) landlock and the system-call filter.
    ctypes is imported first: the uid of its own may not read a Python under ``/root``."""
    import ctypes

    if cfg["drop_to_uid"]:
        drop_privileges(cfg["drop_to_uid"], cfg["scratch"])
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    if cfg["keyctl_nr"] >= 0:
        fresh_session_keyring(libc, cfg["keyctl_nr"])
    if cfg["landlock"]:  # the in-process layer: no mount namespace hides the host's files
        restrict_paths(libc, cfg["landlock"], [*cfg["read_roots"], f"/proc/{os.getpid()}"],
                       [cfg["scratch"], "/dev/null"])
    if cfg["seccomp"]:  # the in-process layer: no bwrap installs it
        load_seccomp(libc, bytes.fromhex(cfg["seccomp"]))
    for mod in [m for m in sys.modules if m.split(".")[0] in ("ctypes", "_ctypes")]:
        del sys.modules[mod]


def drop_privileges(uid: int, scratch: str) -> None:
    """As root: the mounts are built, now become an unprivileged uid of our own."""
    os.chown(scratch, uid, uid)
    os.chmod(scratch, 0o700)
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)


def _set_limits(cfg: dict[str, Any]) -> None:
    import resource
    import signal

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # open files: each pipe holds kernel memory outside RLIMIT_AS
    resource.setrlimit(resource.RLIMIT_NOFILE, (OPEN_FILES, OPEN_FILES))
    resource.setrlimit(resource.RLIMIT_CPU, (cfg["cpu_s"], cfg["cpu_s"] + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (cfg["fsize"], cfg["fsize"]))
    if cfg["nproc"]:  # only under the OS layer: there the count is this call's alone
        resource.setrlimit(resource.RLIMIT_NPROC, (cfg["nproc"], cfg["nproc"]))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of death
    signal.alarm(cfg["cpu_s"] + 2)  # wall-clock backstop should the parent be gone
    resource.setrlimit(resource.RLIMIT_AS, (cfg["memory"], cfg["memory"]))


def _block_sockets_and_spawning(deny: Callable[[str], None]) -> None:
    import _posixsubprocess
    import socket

    def no_net(*a: Any, **k: Any) -> None:
        deny(NET)

    class BlockedSocket(socket.socket):
        def __init__(self, *a: Any, **k: Any) -> None:
            deny(NET)

    socket.socket = socket.SocketType = BlockedSocket  # type: ignore[misc]
    for n in ("create_connection", "create_server", "getaddrinfo", "gethostbyname",
              "gethostbyname_ex", "gethostbyaddr", "getnameinfo", "socketpair", "fromfd"):
        setattr(socket, n, no_net)

    def no_proc(*a: Any, **k: Any) -> None:
        deny(PROC)

    _posixsubprocess.fork_exec = no_proc  # type: ignore[assignment]


def _write_all(fd: int, data: bytes) -> None:
    while data:
        try:
            data = data[os.write(fd, data):]
        except InterruptedError:
            continue
        except OSError:
            break


def main() -> None:
    cfg = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    nonce, rfd, limit = cfg["nonce"], cfg["result_fd"], cfg["max_output"]
    sys.path.extend(p for p in cfg["site"] if p not in sys.path)
    kernel_setup(cfg)

    encode = json.JSONEncoder(ensure_ascii=True).encode
    out_of_memory = (nonce + encode({"ok": False, "value": "", "error": "memory limit exceeded",
                                     "stdout": "", "traceback": ""}) + "\n").encode()
    cap = Capture(limit)
    sys.stdout = sys.stderr = sys.__stdout__ = sys.__stderr__ = cap  # type: ignore[misc,assignment]
    sys.stdin = sys.__stdin__ = io.StringIO("")  # type: ignore[misc,assignment]
    violations: list[str] = []

    def report(msg: str) -> None:
        violations.append(msg)
        try:  # reported at once: clearing the list or forging a result later cannot hide it
            os.write(rfd, (nonce + "!" + one_line(msg) + "\n").encode())
        except OSError:
            pass

    guard = Guard(scratch=cfg["scratch"], files=cfg["files"], read_roots=cfg["read_roots"], report=report)
    _block_sockets_and_spawning(guard.deny)
    _set_limits(cfg)
    source, name, arguments = cfg["source"], cfg["name"], cfg["arguments"]
    del cfg
    sys.addaudithook(guard.hook)

    result = run(source, name, arguments, limit)
    if violations:
        result["ok"] = False
        result["error"] = violations[0]
    try:
        result["stdout"] = cap.text()
        data = (nonce + encode(result) + "\n").encode()
    except MemoryError:
        data = out_of_memory
    _write_all(rfd, data)
    os._exit(0)


if __name__ == "__main__":
    main()
