"""The one timestamp format of a session file: ISO-8601 UTC with milliseconds (``…+00:00``).

It sorts as text and ``datetime.fromisoformat`` parses it.
"""
from __future__ import annotations

from datetime import UTC, datetime


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
