"""The one timestamp format of a session file: ISO-8601 UTC with milliseconds (``…+00:00``).

It sorts as text and ``datetime.fromisoformat`` parses it.
"""
from __future__ import annotations

from datetime import UTC, datetime


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def fmt_duration(seconds: float | None) -> str:
    """The one duration format: ``m:ss``, ``h:mm:ss`` from an hour; ``—`` when unknown."""
    if seconds is None:
        return "—"
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
