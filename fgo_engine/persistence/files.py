"""The files around a session: the one-writer lock, the disk reserve, the read-only probe.

Every check works on the session's real file (:func:`real_file`): SQLite names the WAL after
the path it opens, so a session reached through a link must be checked, locked and opened
under one name, or a killed session's WAL is missed and the session looks incomplete.
"""
from __future__ import annotations

import fcntl
import json
import os
import socket
import sqlite3
import threading
from pathlib import Path

from fgo_engine.errors import IncompleteSessionError, SessionError, SessionLockedError
from fgo_engine.persistence.schema import one_line, read_version
from fgo_engine.timeutil import now

__all__ = ["RESERVE_BYTES", "connect_readonly", "hold_reserve", "is_disk_full", "lock_file", "probe", "real_file",
           "reserve_file", "session_holder"]

READER_BUSY_MS = 5_000
RESERVE_BYTES = 256 * 1024
# SQLite's own files beside a database: WAL and its index, and the rollback journal a process
# killed before the session switched to WAL leaves
SQLITE_SIDES = ("-wal", "-shm", "-journal")


def real_file(path: str | Path) -> Path:
    """The one name every check and connection uses for a session file.

    A symbolic link resolves to its target. A file with several hard links has no one true
    name; the name whose SQLite side files (``-wal``, ``.lock``) exist is the one a writer
    used, so that one is taken (else the name given, made absolute)."""
    p = Path(os.path.realpath(path))
    try:
        st = p.stat()
    except OSError:
        return p
    if st.st_nlink <= 1 or Path(f"{p}-wal").exists() or Path(f"{p}.lock").exists():
        return p
    try:
        names = sorted(os.scandir(p.parent), key=lambda e: e.name)
    except OSError:
        return p
    for entry in names:
        if entry.name == p.name or not entry.is_file(follow_symlinks=False):
            continue
        try:
            other = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if (other.st_dev, other.st_ino) == (st.st_dev, st.st_ino):
            twin = Path(entry.path)
            if Path(f"{twin}-wal").exists() or Path(f"{twin}.lock").exists():
                return twin
    return p


def ro_uri(path: Path, *, immutable: bool = False) -> str:
    return path.resolve().as_uri() + ("?immutable=1" if immutable else "?mode=ro")


def connect_readonly(path: Path) -> sqlite3.Connection:
    """A connection that cannot write the database file.

    mode=ro may create the -wal/-shm side files of a WAL database; in a read-only
    folder that fails, and then immutable=1 is the only way in.
    """
    conn = sqlite3.connect(ro_uri(path), uri=True, check_same_thread=False)
    try:
        conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
    except sqlite3.OperationalError:
        conn.close()
        conn = sqlite3.connect(ro_uri(path, immutable=True), uri=True,
                               check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout={READER_BUSY_MS}")
    return conn


def probe(path: Path) -> int:
    """Check a file without changing it or creating anything next to it.

    With no -wal file nobody has the database open, so immutable=1 reads it
    without creating side files; with one, mode=ro shares the writer's files.
    Messages name the path given; the checks look at the real file.
    """
    if not path.exists():
        raise SessionError(f"no session file at {path}")
    real = real_file(path)
    if not real.is_file():
        raise SessionError(f"{path} is not a file")
    wal = Path(f"{real}-wal")
    if real.stat().st_size == 0 and not wal.exists():
        raise IncompleteSessionError(f"{path} is an incomplete session file (empty: its creation was interrupted); "
                                     f"`fgo sessions delete {path}` removes it")
    try:
        conn = sqlite3.connect(ro_uri(real, immutable=not wal.exists()), uri=True)
    except sqlite3.Error as exc:
        raise SessionError(f"cannot open {path}: {one_line(exc)}") from exc
    try:
        return read_version(conn, path)
    finally:
        conn.close()


# --------------------------------------------------------------------------- one writer process


class SessionLock:
    """One writing process per session file: ``fcntl.flock`` on ``<session>.lock``, which
    holds the holder's pid and host. The kernel drops the lock when its process dies,
    so a stale lock file from a killed process is simply taken over. Stores of one
    process share the lock (the app reopens a session before closing the old one)."""

    _held: dict[str, list[int]] = {}  # realpath -> [fd, users]
    _mutex = threading.Lock()

    @staticmethod
    def path_for(path: Path) -> Path:
        return Path(f"{real_file(path)}.lock")

    @classmethod
    def holder(cls, path: Path) -> str | None:
        """Who holds the lock ("pid 12 on host h"), or None when nobody does."""
        lock = cls.path_for(path)
        try:
            fd = os.open(lock, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return cls._describe(fd)
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    @staticmethod
    def _describe(fd: int) -> str:
        try:
            info = json.loads(os.pread(fd, 4096, 0).decode("utf-8") or "{}")
            return f"pid {int(info['pid'])} on host {info['host']}"
        except (ValueError, KeyError, TypeError, OSError):
            return "another process"

    @classmethod
    def acquire(cls, path: Path) -> str:
        key = str(real_file(path))
        lock = Path(f"{key}.lock")
        with cls._mutex:
            if key in cls._held:
                cls._held[key][1] += 1
                return key
            while True:
                try:
                    fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
                except OSError as exc:
                    raise SessionError(f"cannot lock {path} for writing ({lock}): {one_line(exc)}") from exc
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    who = cls._describe(fd)
                    os.close(fd)
                    raise SessionLockedError(
                        f"{path} is in use by {who}; wait for it to finish (the app can still view it)") from None
                try:  # the holder may have removed the file while we waited: lock the current one
                    current = os.stat(lock)
                    mine = os.fstat(fd)
                    same = (current.st_ino, current.st_dev) == (mine.st_ino, mine.st_dev)
                except FileNotFoundError:
                    same = False
                if not same:
                    os.close(fd)
                    continue
                os.ftruncate(fd, 0)
                os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                          "since": now()}).encode(), 0)
                cls._held[key] = [fd, 1]
                return key

    @classmethod
    def release(cls, key: str) -> None:
        with cls._mutex:
            entry = cls._held.get(key)
            if entry is None:
                return
            entry[1] -= 1
            if entry[1] > 0:
                return
            del cls._held[key]
            try:
                os.unlink(f"{key}.lock")  # while still holding it: see acquire()
            except OSError:
                pass
            os.close(entry[0])


def session_holder(path: str | Path) -> str | None:
    """Which process is writing a session ("pid 12 on host h"), or None."""
    return SessionLock.holder(Path(path))


def lock_file(path: str | Path) -> Path:
    return SessionLock.path_for(Path(path))


def reserve_file(path: str | Path) -> Path:
    """Space held beside a session so that, on a full disk, the stop can still be recorded."""
    p = real_file(path)
    return p.with_name(p.name + ".reserve")


def hold_reserve(path: Path) -> bool:
    """Best effort: a disk already too full for it just runs without one. True when this
    call made the file (so a refused open can take it back)."""
    r = reserve_file(path)
    if r.exists() and r.stat().st_size >= RESERVE_BYTES:
        return False
    made = not r.exists()
    try:
        with open(r, "wb") as f:
            f.write(b"\0" * RESERVE_BYTES)
    except OSError:
        r.unlink(missing_ok=True)
        return False
    return made


def is_disk_full(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "disk is full" in text or "no space left" in text

