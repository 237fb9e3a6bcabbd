"""The operating-system layer of the tool sandbox: bubblewrap namespaces.

Each tool call runs under ``bwrap`` in new PID, network, IPC, UTS (and cgroup)
namespaces with a private mount namespace built from scratch: ``/usr`` (and the
``/bin``, ``/lib*`` links into it), the Python installation and its site-packages,
all read-only; a fresh ``/proc`` that shows only the sandbox's own processes; a
minimal, read-only ``/dev``; a size-limited tmpfs ``/tmp`` holding the scratch folder (the
only writable place); the task's files bound read-only into it. Nothing else of
the host is visible: no ``/etc``, no home, no project, no session files.

The tool runs under a uid of its own: when the app runs as root, bwrap keeps the
real root only to build the mounts and the bootstrap then switches to a fresh
unprivileged uid (no capabilities, ``no_new_privs``); otherwise bwrap maps the
user to uid 65534 in a new user namespace. ``--die-with-parent`` and the PID
namespace make every process of the call die with it: when the tool's process
exits, is killed at the time limit, or the app itself dies.

bwrap also installs the system-call filter of :mod:`.syscalls` (``--seccomp``).

This module decides whether that layer is available (:func:`probe`), builds the
command line (:func:`command`) and applies the ``sandbox`` setting
(``strict`` / ``auto`` / ``in-process``) via :func:`resolve`.
"""
from __future__ import annotations

import functools
import logging
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from fgo_engine import redaction
from fgo_engine.errors import FGOError

__all__ = ["MODES", "Layer", "SandboxUnavailableError", "command", "probe", "resolve"]

MODES = ("strict", "auto", "in-process")
DEFAULT_MODE = "auto"
NPROC = 32  # processes and threads one tool call may have at once
_UNSANDBOXED_UID_BASE = 1_000_000  # root mode: each call gets its own uid above this
_SYSTEM_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_log = logging.getLogger("fgo.sandbox")


class SandboxUnavailableError(FGOError):
    """``sandbox = "strict"`` and the OS isolation layer cannot run here."""


@dataclass(frozen=True)
class Layer:
    """What the probe found. ``available`` with ``how`` (``root`` = real root builds the
    mounts and drops to an unprivileged uid; ``userns`` = a user namespace); else
    ``reason`` says why not."""

    available: bool
    how: str = ""
    bwrap: str = ""
    version: str = ""
    reason: str = ""

    def describe(self) -> str:
        if not self.available:
            return f"unavailable: {self.reason}"
        who = ("real root drops to an unprivileged uid of its own" if self.how == "root"
               else "user namespace, uid 65534")
        return f"bubblewrap {self.version} ({who}; no network, own PID and mount namespaces)"


def _python_paths() -> list[str]:
    """Directories the tool's Python needs, resolved (the venv's bin is a symlink)."""
    import site

    paths = {os.path.realpath(p) for p in (sys.base_prefix, sys.base_exec_prefix)}
    try:
        paths.update(os.path.realpath(p) for p in site.getsitepackages())
    except AttributeError:  # pragma: no cover - very old virtualenv
        pass
    paths.add(os.path.dirname(os.path.realpath(sys.executable)))
    return sorted(p for p in paths if os.path.isdir(p))


def python_readable_by_others() -> bool:
    """Whether an unprivileged uid can use this Python in place: every folder on the way
    to the installation and its site-packages searchable by others (a pyenv under a 0700
    ``/root`` is not). The in-process layer drops root only then."""
    for p in _python_paths():
        parts = p.strip("/").split("/")
        for n in range(len(parts) + 1):
            try:
                mode = os.stat("/" + "/".join(parts[:n])).st_mode
            except OSError:
                return False
            if mode & 0o001 == 0:
                return False
        if os.stat(p).st_mode & 0o004 == 0:
            return False
    return True


@functools.cache
def landlock_abi() -> int:
    """The kernel's landlock ABI version (0: none): the in-process layer restricts the
    tool's file access with it, whatever its uid may read (e.g. ``/proc/<app>/environ``)."""
    if not sys.platform.startswith("linux"):
        return 0
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    version = libc.syscall(444, None, ctypes.c_size_t(0), 1)  # LANDLOCK_CREATE_RULESET_VERSION
    return max(0, int(version))


def python_executable() -> str:
    """The real interpreter (a venv's ``bin/python`` is a link to it)."""
    return os.path.realpath(sys.executable)


def _covered(path: str, roots: Sequence[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def _bind_in_place(argv: list[str], paths: Sequence[str], bound: list[str]) -> None:
    """``--ro-bind p p`` for each host path not already visible, with the folders above
    it made 0755 (bwrap would copy the host's modes onto them: /root is 0700)."""
    made: set[str] = set()
    for p in paths:
        if _covered(p, bound) or not os.path.exists(p):
            continue
        parts = p.strip("/").split("/")[:-1]
        for n in range(1, len(parts) + 1):
            parent = "/" + "/".join(parts[:n])
            if parent not in made and not _covered(parent, bound):
                argv += ["--perms", "0755", "--dir", parent]
                made.add(parent)
        argv += ["--ro-bind", p, p]
        bound.append(p)


def command(layer: Layer, *, scratch: str, files_dir: str | None, read_paths: Sequence[str],
            tmpfs_bytes: int, info_fd: int, programs: Sequence[str] = (), seccomp_fd: int | None = None) -> list[str]:
    """The bwrap argument list (up to and excluding the command to run). ``scratch`` is
    the path inside the sandbox; ``files_dir`` (host) is bound read-only at
    ``scratch/files``; ``read_paths`` and ``programs`` (host) are bound read-only at the
    same path; ``seccomp_fd`` is a BPF program bwrap installs before starting the command.

    ``/tmp`` is mounted before the binds, so that a virtualenv (or a readable folder)
    under the host's ``/tmp`` stays visible on top of it; ``/dev`` is read-only (its
    ``shm`` would be memory outside every limit)."""
    argv = [layer.bwrap, "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
            "--unshare-cgroup-try", "--die-with-parent", "--new-session", "--info-fd", str(info_fd)]
    if layer.how == "userns":
        argv += ["--unshare-user", "--uid", "65534", "--gid", "65534", "--cap-drop", "ALL"]
    if seccomp_fd is not None:
        argv += ["--seccomp", str(seccomp_fd)]
    argv += ["--ro-bind", "/usr", "/usr"]
    for link in _SYSTEM_LINKS:
        if os.path.islink(link):
            argv += ["--symlink", os.readlink(link), link]
        elif os.path.isdir(link):
            argv += ["--ro-bind", link, link]
    argv += ["--proc", "/proc", "--dev", "/dev", "--remount-ro", "/dev",
             "--size", str(int(tmpfs_bytes)), "--tmpfs", "/tmp"]
    bound = ["/usr", *_SYSTEM_LINKS]
    _bind_in_place(argv, [*_python_paths(), *(os.path.realpath(p) for p in [*read_paths, *programs])], bound)
    if os.path.exists("/etc/ld.so.cache"):  # a Python outside /usr finds its libraries
        argv += ["--ro-bind", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    argv += ["--perms", "0777", "--dir", scratch]
    if files_dir is not None:
        argv += ["--ro-bind", files_dir, f"{scratch}/files"]
    argv += ["--chdir", scratch, "--"]
    return argv


def sandbox_uid() -> int:
    """A fresh uid for one call in root mode, so that RLIMIT_NPROC counts this call only."""
    return _UNSANDBOXED_UID_BASE + secrets.randbelow(1_000_000_000)


@functools.cache
def probe() -> Layer:
    """Find bwrap and check that it really builds a sandbox here (containers and some
    distributions forbid namespaces). Cached for the process."""
    if not sys.platform.startswith("linux"):
        return Layer(False, reason=f"bubblewrap needs Linux namespaces; this is {sys.platform}")
    bwrap = shutil.which("bwrap") or next((p for p in ("/usr/bin/bwrap", "/bin/bwrap") if os.path.exists(p)), None)
    if bwrap is None:
        return Layer(False, reason="bwrap is not installed (Debian/Ubuntu: apt-get install bubblewrap)")
    try:
        out = subprocess.run([bwrap, "--version"], capture_output=True, text=True, timeout=10)
        version = out.stdout.split()[-1] if out.stdout.split() else "?"
    except (OSError, subprocess.SubprocessError) as exc:
        return Layer(False, bwrap=bwrap, reason=f"{bwrap} does not run: {exc}")
    how = "root" if os.geteuid() == 0 else "userns"
    layer = Layer(True, how=how, bwrap=bwrap, version=version)
    scratch = "/tmp/fgo-probe/scratch"
    rfd, wfd = os.pipe()
    try:
        argv = command(layer, scratch=scratch, files_dir=None, read_paths=(), tmpfs_bytes=1 << 20, info_fd=wfd)
        check = (f"import os,socket;assert os.getcwd()=={scratch!r};assert not os.path.exists('/proc/{os.getpid()}');"
                 "print(len(socket.if_nameindex()))")
        res = subprocess.run([*argv, python_executable(), "-I", "-S", "-c", check], capture_output=True,
                             text=True, timeout=30, pass_fds=(wfd,), env={"PATH": "/usr/bin:/bin"})
    except (OSError, subprocess.SubprocessError) as exc:
        return Layer(False, bwrap=bwrap, version=version, reason=f"bwrap failed to start: {exc}")
    finally:
        os.close(rfd)
        os.close(wfd)
    if res.returncode != 0:
        msg = redaction.clip(" ".join((res.stderr or res.stdout).split()), 200) or f"exit code {res.returncode}"
        return Layer(False, bwrap=bwrap, version=version,
                     reason=f"bwrap cannot create namespaces here ({msg})")
    if res.stdout.strip() not in ("0", "1"):
        # loopback at most: no interface to the outside
        return Layer(False, bwrap=bwrap, version=version,
                     reason=f"the sandbox still sees network interfaces ({redaction.clip(res.stdout.strip(), 80)!r})")
    return layer


_warned = False


def resolve(mode: str) -> Layer | None:
    """The layer to use under ``mode``: a Layer, or None for the in-process guard only.
    ``strict`` raises when the OS layer is missing; ``auto`` says so once (logging)."""
    global _warned
    if mode not in MODES:
        raise SandboxUnavailableError(f"sandbox must be one of {', '.join(MODES)} (got {mode!r})")
    if mode == "in-process":
        return None
    layer = probe()
    if layer.available:
        return layer
    if mode == "strict":
        raise SandboxUnavailableError(f"sandbox = \"strict\" but the OS isolation layer is {layer.describe()}; "
                                      "install bubblewrap or set sandbox = \"auto\"")
    if not _warned:
        _warned = True
        _log.warning("fgo: tool sandbox: OS isolation %s; tool code runs under the in-process guard only "
                     "(set sandbox = \"strict\" to refuse)", layer.describe())
    return None
