"""What the screens may ask of the app, as a type the screens can import.

The screens are pushed by :class:`fgo_tui.app.FGOApp`, which imports them, so they cannot import
it back (an import circle). They declare ``app = getters.app(StudioApp)`` instead: ``self.app``
is then a ``StudioApp`` for the type checker (``self.app.pause_run()`` is checked, a misspelt
action is an error) and, at run time, an assertion that the screen lives in one. FGOApp
subclasses this and overrides every method; mypy checks that the signatures agree.
"""
from __future__ import annotations

from pathlib import Path

from textual.app import App


class StudioApp(App[int]):
    sessions_dir: Path
    cursor_blink: bool

    @property
    def auto_approve(self) -> bool:
        raise NotImplementedError

    def busy_with(self) -> str | None:
        """The file name of the session whose run is in progress here (the app runs one at a time)."""
        raise NotImplementedError

    def action_new_session(self) -> None:
        raise NotImplementedError

    def show_sessions(self) -> None:
        raise NotImplementedError

    def pause_run(self) -> None:
        raise NotImplementedError

    def resume_run(self) -> None:
        raise NotImplementedError

    def confirm_cancel_run(self) -> None:
        raise NotImplementedError

    def show_pending_review(self) -> None:
        raise NotImplementedError

    def toggle_auto(self) -> None:
        raise NotImplementedError

    def export_report(self) -> None:
        raise NotImplementedError

    def open_audit(self, module_id: str | None = None) -> None:
        raise NotImplementedError

    def open_failures(self) -> None:
        raise NotImplementedError
