"""The tool sandbox's system-call filter (seccomp), built with libseccomp (``pyseccomp``).

Tool code has no business with the kernel's shared objects or with rebuilding its own
sandbox, so these calls fail with ``EPERM`` (the process goes on, the tool sees an
error): new namespaces (``unshare``, ``setns``, ``clone`` with a ``CLONE_NEW*`` flag;
``clone3``, whose flags the filter cannot read, fails with ``ENOSYS`` so that the C
library falls back to ``clone``), mounts of any kind, the kernel keyrings except joining
a fresh anonymous session keyring, ``ptrace`` and reading other processes' memory, eBPF,
perf events, ``userfaultfd``, ``io_uring``, memory that is not heap and outlives a mapping
(``memfd_create``, System V shared memory), the other System V and POSIX IPC objects,
sockets of every family (the network, abstract unix sockets), inotify (a per-user quota),
calls that act on another process (limits, priority, scheduling, memory policy, pidfds),
growing pipe buffers, typing into a terminal (``TIOCSTI``), kernel modules, reboot, swap,
clocks, and the like.

The program is exported as raw BPF: bwrap installs it with ``--seccomp FD``; without
bwrap the sandbox's child installs the same bytes itself (``prctl``).
"""
from __future__ import annotations

import errno
import functools
import os
import platform
import tempfile
from dataclasses import dataclass

__all__ = ["Filter", "REFUSED", "build"]

# Refused outright.
REFUSED = (
    # namespaces, mounts, the root
    "unshare", "setns", "mount", "umount", "umount2", "pivot_root", "chroot", "move_mount",
    "open_tree", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
    # keys (keyctl is refused below, but for joining a fresh session keyring)
    "add_key", "request_key",
    # other processes, the kernel's debugging and tracing interfaces
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd", "bpf",
    "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register",
    "fanotify_init", "lookup_dcookie", "open_by_handle_at", "name_to_handle_at",
    # memory that is not heap
    "memfd_create", "memfd_secret", "shmget", "shmat", "shmctl", "shmdt",
    # other kernel objects shared beyond the call: System V and POSIX IPC, sockets
    "msgget", "msgsnd", "msgrcv", "msgctl", "semget", "semop", "semtimedop", "semctl",
    "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive", "mq_notify", "mq_getsetattr",
    "socket", "socketpair",
    # watches on the user's files (a per-user quota the app shares)
    "inotify_init", "inotify_init1",
    # the machine itself
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "reboot",
    "swapon", "swapoff", "acct", "quotactl", "quotactl_fd", "syslog", "sethostname",
    "setdomainname", "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "vhangup",
    "iopl", "ioperm", "modify_ldt", "uselib", "nfsservctl", "personality",
)
CLONE_NEW_FLAGS = {
    "CLONE_NEWNS": 0x00020000, "CLONE_NEWCGROUP": 0x02000000, "CLONE_NEWUTS": 0x04000000,
    "CLONE_NEWIPC": 0x08000000, "CLONE_NEWUSER": 0x10000000, "CLONE_NEWPID": 0x20000000,
    "CLONE_NEWNET": 0x40000000, "CLONE_NEWTIME": 0x00000080,
}
KEYCTL_JOIN_SESSION_KEYRING = 1
CLONE_THREAD = 0x00010000
# keyctl's number where libseccomp cannot tell it: the child still joins a fresh keyring
_KEYCTL_BY_MACHINE = {"x86_64": 250, "aarch64": 219, "riscv64": 219}
# Calls that name a process (argument 0): refused for any process but the caller itself (0),
# so that code running as the app's uid cannot read or lower the app's limits, renice or
# rebind it. A thread's own id is not 0 either; no tool needs to pass it.
SELF_ONLY = ("prlimit64", "sched_setaffinity", "sched_setscheduler", "sched_setparam", "sched_setattr",
             "migrate_pages", "move_pages", "process_madvise", "pidfd_open")
F_SETPIPE_SZ = 1031  # pipe buffers are kernel memory outside RLIMIT_AS: they keep their default size
TIOCSTI, TIOCLINUX = 0x5412, 0x541C  # typing into a terminal
PRIO_PROCESS = 0


@dataclass(frozen=True)
class Filter:
    """The BPF program (``bpf``, empty when it cannot be built, then ``reason`` says why)
    and the number of ``keyctl`` on this machine (the child joins a fresh keyring)."""

    bpf: bytes = b""
    keyctl_nr: int = -1
    reason: str = ""

    @property
    def available(self) -> bool:
        return bool(self.bpf)


SIGNAL_CALLS = ("kill", "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo")  # argument 0: the target


def host_processes() -> tuple[int, ...]:
    """What the in-process layer's filter keeps tool code from signalling, having no PID
    namespace: the app, its parent, the app's process group and every process at once (-1)."""
    return tuple(sorted({os.getpid(), os.getppid(), -os.getpgrp(), -1}))


def build(protect: tuple[int, ...] = (), *, no_processes: bool = False) -> Filter:
    """The filter for this machine's architecture (built once per process and arguments);
    ``protect`` names processes no signal may reach (see :func:`host_processes`);
    ``no_processes`` refuses new processes, threads still allowed (the in-process layer has
    no process-count limit of its own: a fork bomb would be the app user's)."""
    return _build(os.getpid(), tuple(protect), no_processes)


@functools.cache
def _build(_pid: int, protect: tuple[int, ...], no_processes: bool) -> Filter:  # _pid: a forked worker's own
    try:
        import pyseccomp as sc
    except (ImportError, OSError) as exc:  # OSError: the package is there, libseccomp is not
        return Filter(keyctl_nr=_KEYCTL_BY_MACHINE.get(platform.machine(), -1),
                      reason=f"libseccomp is not usable ({exc}); Debian/Ubuntu: apt-get install libseccomp2, "
                             "pip install pyseccomp")
    try:
        f = sc.SyscallFilter(sc.ALLOW)
        refuse = sc.ERRNO(errno.EPERM)
        for name in REFUSED:
            try:
                f.add_rule(refuse, name)
            except (OSError, ValueError):  # a call this architecture does not have
                continue
        for flag in CLONE_NEW_FLAGS.values():
            f.add_rule(refuse, "clone", sc.Arg(0, sc.MASKED_EQ, flag, flag))
        f.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
        for name in SELF_ONLY:
            _add_if_known(f, refuse, name, sc.Arg(0, sc.NE, 0))
        f.add_rule(refuse, "setpriority", sc.Arg(0, sc.NE, PRIO_PROCESS))  # a group, or all the user's
        f.add_rule(refuse, "setpriority", sc.Arg(1, sc.NE, 0))  # (which, who, prio): another than us
        f.add_rule(refuse, "fcntl", sc.Arg(1, sc.EQ, F_SETPIPE_SZ))
        for request in (TIOCSTI, TIOCLINUX):
            f.add_rule(refuse, "ioctl", sc.Arg(1, sc.MASKED_EQ, 0xFFFFFFFF, request))
        if no_processes:
            for name in ("fork", "vfork"):
                _add_if_known(f, refuse, name)
            f.add_rule(refuse, "clone", sc.Arg(0, sc.MASKED_EQ, CLONE_THREAD, 0))
        for target in protect:  # pid_t is 32 bits: compare the low half only
            for name in SIGNAL_CALLS:
                _add_if_known(f, refuse, name, sc.Arg(0, sc.MASKED_EQ, 0xFFFFFFFF, target & 0xFFFFFFFF))
        f.add_rule(refuse, "keyctl", sc.Arg(0, sc.NE, KEYCTL_JOIN_SESSION_KEYRING))
        f.add_rule(refuse, "keyctl", sc.Arg(0, sc.EQ, KEYCTL_JOIN_SESSION_KEYRING), sc.Arg(1, sc.NE, 0))
        with tempfile.TemporaryFile() as out:
            f.export_bpf(out)
            out.seek(0)
            bpf = out.read()
        keyctl_nr = int(sc.resolve_syscall(sc.Arch.NATIVE, "keyctl"))
    except (OSError, ValueError, RuntimeError) as exc:
        return Filter(reason=f"the system-call filter cannot be built here ({exc})")
    return Filter(bpf=bpf, keyctl_nr=keyctl_nr)


def _add_if_known(f: object, action: object, name: str, *args: object) -> None:
    try:
        f.add_rule(action, name, *args)  # type: ignore[attr-defined]
    except (OSError, ValueError):  # a call this architecture does not have
        pass


def bpf_fd(program: bytes) -> int:
    """A file descriptor positioned at the start of ``program`` (for bwrap's ``--seccomp``);
    the caller passes it to the child and closes it."""
    fd, path = tempfile.mkstemp(prefix="fgo-seccomp-")
    try:
        os.unlink(path)
        os.write(fd, program)
        os.lseek(fd, 0, os.SEEK_SET)
    except BaseException:
        os.close(fd)
        raise
    return fd
