"""Logging: the standard ``logging`` module, one log file beside each session.

A running session writes ``x.log`` beside ``x.db``: what it started with, the warnings and
errors it met (the run's ``Log`` events among them), failing event sinks and the traceback
of any internal error. Records carry the session's path, so two sessions in one process
keep their files apart. The command line adds a console handler with ``-v``.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

LOGGER = "fgo"  # every engine logger is "fgo.<area>", so `-v` shows them all
logging.getLogger(LOGGER).addHandler(logging.NullHandler())  # a library: no output unless asked

_session_log = logging.getLogger(f"{LOGGER}.session")
if _session_log.level == logging.NOTSET:
    _session_log.setLevel(logging.INFO)

FORMAT = "%(asctime)s %(levelname)-7s %(threadName)s %(name)s: %(message)s"


def log_path(db_path: str | Path) -> Path:
    """``sessions/x.db`` → ``sessions/x.log``, beside the real file (a session reached through
    a link keeps one log, like its lock and its reserve)."""
    from fgo_engine.persistence.files import real_file

    return real_file(db_path).with_suffix(".log")


def delete_session_files(db_path: str | Path) -> None:
    """A session file with its SQLite side files and its log (the app and the CLI delete alike)."""
    from fgo_engine.persistence.files import SQLITE_SIDES
    from fgo_engine.persistence.store import lock_file, reserve_file

    for suffix in ("", *SQLITE_SIDES):
        Path(str(db_path) + suffix).unlink(missing_ok=True)
    for side in (log_path(db_path), lock_file(db_path), reserve_file(db_path)):
        side.unlink(missing_ok=True)
    from fgo_engine.persistence import inbox

    inbox.clear(db_path)


class SessionLog:
    """The log of one session file; :meth:`open` attaches the file for a run, :meth:`close` detaches it."""

    def __init__(self, db_path: str | Path):
        self.path = log_path(db_path)
        self.key = str(Path(db_path).resolve())
        self.log = logging.LoggerAdapter(_session_log, {"session": self.key})
        self._handler: logging.Handler | None = None

    def open(self) -> None:
        if self._handler is not None:
            return
        handler = logging.FileHandler(self.path, encoding="utf-8", delay=True)
        handler.setFormatter(logging.Formatter(FORMAT))
        handler.addFilter(lambda record: getattr(record, "session", None) == self.key)
        _session_log.addHandler(handler)
        self._handler = handler

    def close(self) -> None:
        handler, self._handler = self._handler, None
        if handler is not None:
            _session_log.removeHandler(handler)
            handler.close()


def console_handler(stream: Any = None) -> logging.Handler:
    """Engine log records on the console (the command line's ``-v``); events the console
    printer already shows are left out."""
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("fgo: %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(lambda record: not getattr(record, "event", False))
    return handler
