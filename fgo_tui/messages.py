"""Messages between screens and the app. Screens say what the operator wants; the
app owns sessions, runs and the review gate."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual.message import Message


@dataclass
class OpenSession(Message):
    """Open a saved session on its dashboard; ``resume`` continues its run at once."""

    path: Path
    resume: bool = False


@dataclass
class DeleteSession(Message):
    path: Path


@dataclass
class StartSession(Message):
    """Create a new session from the form and start it."""

    config: Any  # RunConfig
    path: Path


@dataclass
class RunUpdated(Message):
    """The run view changed (posted at most once per drain tick, newest replaces older)."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, RunUpdated)


@dataclass
class SessionsChanged(Message):
    """Files in the sessions folder changed (created, deleted, finished)."""

    select: Path | None = None


@dataclass
class Exported(Message):
    """The report was written to ``path`` (or failed with ``error``), by a worker."""

    path: Path
    error: str | None = None
