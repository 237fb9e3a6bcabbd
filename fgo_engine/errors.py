"""Typed errors. Every one carries a one-line message fit to show a user as is."""
from __future__ import annotations


class FGOError(Exception):
    """Base class: anything the CLI and the app report as a clear one-line error."""


class ConfigError(FGOError):
    """A bad configuration value (names the field and what is allowed)."""


class TaskFileError(FGOError):
    """A malformed task file; names the file and the line number."""


class SessionError(FGOError):
    """A missing, corrupt or incompatible session file."""


class SessionLockedError(SessionError):
    """Another process has the session open for writing (names it: pid and host)."""


class NotASessionError(SessionError):
    """A file that is not an FGO session (another application's SQLite file, say); never touched."""


class IncompleteSessionError(SessionError):
    """An FGO session file whose creation was interrupted: it holds nothing; it may be deleted."""


class SchemaTooNewError(SessionError):
    """The session was written by a newer FGO Studio than this one."""


class LLMError(FGOError):
    """An LLM call failed for good (after retries) or returned unusable output."""


class ContextOverflowError(LLMError):
    """The prompt does not fit the model's context window."""

    def __init__(self, message: str, *, prompt_tokens: int = 0, window: int = 0):
        super().__init__(message)
        self.prompt_tokens = prompt_tokens
        self.window = window


class MalformedOutputError(LLMError):
    """The model answered, but not in a form we can use (empty or unparsable module)."""


class BudgetExceededError(FGOError):
    """A token or cost budget was reached; the session stops cleanly and can be resumed."""


class CancelledError(FGOError):
    """The run was cancelled by the operator."""


class UserCodeError(FGOError):
    """The user's own agent or scorer (``fgo_engine.optimize``) raised, or returned what the
    engine cannot use. ``task_id`` names the task; ``user_traceback`` is the user's traceback
    (also written to the session log)."""

    def __init__(self, message: str, *, task_id: str | None = None, user_traceback: str = ""):
        super().__init__(message)
        self.task_id = task_id
        self.user_traceback = user_traceback


def python_limit(exc: BaseException) -> str | None:
    """What went beyond one of Python's own limits on data (a whole number of more than
    4300 digits, nesting deeper than the interpreter recurses, a number too large for a
    float), said in a few words; None for any other exception."""
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    if isinstance(exc, OverflowError):
        return "a number too large"
    if isinstance(exc, ValueError) and "integer string conversion" in str(exc):
        return "a whole number of more than 4300 digits"
    return None
