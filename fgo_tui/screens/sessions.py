"""The sessions screen: every saved session in the sessions folder."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import getters, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static
from textual.worker import Worker, WorkerState

from fgo_engine.types import is_simulated
from fgo_tui.base import StudioApp
from fgo_tui.messages import DeleteSession, OpenSession, SessionsChanged
from fgo_tui.model.state import fmt_score, fmt_tokens, short
from fgo_tui.widgets.render import STATUS_STYLE

# (key, header, width). Fixed widths: the layout does not depend on when rows arrive, and long names
# are cut the same way. Below WIDE columns the time of the last change leaves the table for the line
# under it, so the models stay in view at 100 columns (each column also takes 2 of padding).
FULL = (("name", "Session", 26), ("status", "Status", 13), ("best", "Best", 6), ("test", "Test", 6),
        ("tokens", "Tokens", 8),
        ("suite", "Suite", 10), ("method", "Method", 13), ("updated", "Last change (UTC)", 17),
        ("models", "Models", 34))
NARROW = (("name", "Session", 20), ("status", "Status", 13), ("best", "Best", 5), ("test", "Test", 5),
          ("tokens", "Tokens", 6), ("suite", "Suite", 9), ("method", "Method", 13), ("models", "Models", 10))
WIDE = 150


def status_cell(status: str, pending: list[str]) -> Text:
    """The status, and (⚠ n) when a stopped run left merges waiting for review."""
    t = Text(status, style=STATUS_STYLE.get(status, ""))
    if pending and status != "done":
        t.append(f" ⚠{len(pending)}", style="bold yellow")
    return t


def pending_note(status: str, pending: list[str]) -> str:
    if not pending or status == "done":
        return ""
    which = ", ".join(pending[:4]) + (" …" if len(pending) > 4 else "")
    verb = "waits" if len(pending) == 1 else "wait"
    then = "enter opens its dashboard, v reviews" if status == "running" else "r resumes the run and asks"
    return f"⚠ {'merge' if len(pending) == 1 else 'merges'} {which} {verb} for review: {then}"


def models_label(models: list[str]) -> str:
    if not models:
        return "?"
    label = ", ".join(models)
    if all(is_simulated(m) for m in models):
        label += " (simulated)"
    return label


def when(ts: str | None) -> str:
    """'2025-05-01T12:03:04.123+00:00' → '2025-05-01 12:03' (UTC, as stored)."""
    if not ts:
        return "—"
    return ts.replace("T", " ")[:16]


def display_dir(folder: Path) -> str:
    try:
        rel = os.path.relpath(folder)
    except ValueError:
        rel = str(folder)
    return rel if not rel.startswith("..") else str(folder)


class SessionsTable(DataTable):
    """The list of sessions; enter opens the highlighted one (shown in the footer)."""

    BINDINGS = [Binding("enter", "select_cursor", "Open", show=True)]


class SessionsScreen(Screen):
    app = getters.app(StudioApp)  # self.app is typed: see fgo_tui/base.py

    BINDINGS = [
        Binding("r", "resume", "Resume"),
        Binding("n", "new", "New session"),
        Binding("d", "delete", "Delete"),
        Binding("space", "mark", "Mark"),
        Binding("c", "compare", "Compare"),
        Binding("f5", "refresh", "Refresh"),
        Binding("q", "app.quit", "Quit"),
    ]

    def __init__(self, sessions_dir: Path, *, select: Path | None = None):
        super().__init__()
        self.sessions_dir = Path(sessions_dir)
        self._select_path = select
        self.rows: list[dict[str, Any]] = []
        self.loaded = False
        self._shown_before = False
        self.marked: list[Path] = []  # sessions picked for a comparison, in the order they were marked
        self._columns: tuple[tuple[str, str, int], ...] = ()

    def compose(self) -> ComposeResult:
        yield Static(self._title(), id="sessions-title", classes="screen-title")
        yield SessionsTable(id="sessions-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="session-info")
        yield Footer()

    def _title(self) -> Text:
        t = Text("FGO Studio", style="bold")
        t.append("  ·  sessions in ", style="dim")
        t.append(display_dir(self.sessions_dir) + "/")
        return t

    @property
    def columns(self) -> tuple[tuple[str, str, int], ...]:
        return FULL if self.size.width >= WIDE else NARROW

    def _add_columns(self) -> None:
        table = self.query_one(DataTable)
        table.clear(columns=True)
        self._columns = self.columns
        for key, header, width in self._columns:
            table.add_column(header, key=key, width=width)

    def on_mount(self) -> None:
        self._add_columns()
        self.action_refresh()

    def on_resize(self) -> None:
        if self.is_mounted and self.columns != self._columns:
            self._add_columns()
            if self.loaded:
                self._fill(self.rows)

    def on_screen_resume(self) -> None:
        # the first resume comes with the first mount, which already loads the list
        if self._shown_before:
            self.action_refresh()
        self._shown_before = True

    # -- loading ------------------------------------------------------------------------
    def action_refresh(self) -> None:
        self._load()

    @work(thread=True, exclusive=True, group="sessions-list", exit_on_error=False)
    def _load(self) -> list[dict[str, Any]]:
        from fgo_engine.persistence.queries import list_sessions

        if not self.sessions_dir.exists():
            return []
        return list_sessions(self.sessions_dir)

    @on(Worker.StateChanged)
    def _loaded(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "sessions-list":
            return
        if event.state == WorkerState.SUCCESS:
            self._fill(event.worker.result or [])
        elif event.state == WorkerState.ERROR:
            self.notify(f"cannot list sessions: {event.worker.error}", severity="error", markup=False)

    def _fill(self, rows: list[dict[str, Any]]) -> None:
        table = self.query_one(DataTable)
        keep = self._select_path or self.selected_path
        self._select_path = None
        table.clear()
        self.rows = rows
        for r in rows:
            cells = self._cells(r)
            table.add_row(*(cells.get(key, Text("")) for key, _, _ in self._columns), key=r["path"])
        self.loaded = True
        self.refresh_bindings()
        if keep is not None:
            for i, r in enumerate(rows):
                if Path(r["path"]).resolve() == Path(keep).resolve():
                    table.move_cursor(row=i)
                    break
        self._show_info()
        if rows:
            table.focus()

    def _cells(self, r: dict[str, Any]) -> dict[str, Text]:
        name = Path(r["path"]).stem
        if "error" in r:
            return {"name": Text(name), "status": Text(r.get("label", "unreadable"), style="red"),
                    "suite": Text("?")}
        status = r["status"] or "new"
        width = dict((k, w) for k, _, w in self._columns).get("models", 34)
        models = r.get("models") or []
        return {
            "name": self._name_cell(r["path"], name), "status": status_cell(status, r.get("pending_reviews") or []),
            "best": Text(fmt_score(r["best_score"]), justify="right"),
            "test": Text(fmt_score(r.get("test_score")), justify="right"),  # held out: no decision read it
            "tokens": Text(fmt_tokens(r["tokens"]), justify="right"),
            "suite": Text(r["suite"] or "?"), "method": Text(r.get("method") or "fgo"),
            "updated": Text(when(r.get("updated_at")), style="dim"),
            # narrow: the bare names (the line under the table says they are simulated)
            "models": Text(short(models_label(models) if width >= 34 else ", ".join(models) or "?", width)),
        }

    def _name_cell(self, path: str, name: str) -> Text:
        width = self._columns[0][2] if self._columns else 24
        if self._is_marked(Path(path)):
            return Text.assemble(("● ", "bold cyan"), (short(name, width - 2), "bold"))
        return Text(short(name, width), style="bold")

    def _is_marked(self, path: Path) -> bool:
        return any(path.resolve() == m.resolve() for m in self.marked)

    # -- selection ----------------------------------------------------------------------
    def select(self, path: Path) -> None:
        """Highlight ``path`` once the list (re)loads."""
        self._select_path = Path(path)

    @property
    def selected(self) -> dict[str, Any] | None:
        table = self.query_one(DataTable)
        if not self.rows or table.cursor_row is None or not (0 <= table.cursor_row < len(self.rows)):
            return None
        return self.rows[table.cursor_row]

    @property
    def selected_path(self) -> Path | None:
        r = self.selected
        return Path(r["path"]) if r else None

    @on(DataTable.RowHighlighted)
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_info()
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("resume", "delete"):
            r = self.selected
            if r is None:
                return False
            if action == "resume":
                return r.get("status") != "done" and "error" not in r
        return True

    @on(DataTable.RowSelected)
    def _selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def _show_info(self) -> None:
        info = self.query_one("#session-info", Static)
        r = self.selected
        if r is None:
            info.update(Text.assemble(
                ("No sessions yet", "bold"), (" in " + display_dir(self.sessions_dir) + "/. ", ""),
                ("n", "bold reverse"), (" starts a new one; ", ""), ("fgo demo", "bold"),
                (" opens a demo on the simulated LLM.", "")))
            return
        t = Text()
        if self.marked:
            t.append(f"{len(self.marked)} marked for comparison (c compares, space unmarks)  ", style="cyan")
        t.append(display_dir(Path(r["path"])), style="bold")
        if "error" not in r and not any(key == "updated" for key, _, _ in self._columns):
            t.append(f" · last change {when(r.get('updated_at'))} UTC", style="dim")
        if "error" in r:
            t.append("\n" + r["error"], style="red")
        else:
            t.append(f"\nmodels: {models_label(r.get('models') or [])}")
            note = pending_note(r.get("status") or "", r.get("pending_reviews") or [])
            if note:
                t.append("\n" + note, style="bold yellow")
            t.append("   enter ", style="bold")
            if r.get("status") == "done":
                t.append("shows its dashboard, merge tree and audit (the run is finished).", style="dim")
            else:
                t.append("opens its dashboard, ", style="dim")
                t.append("r ", style="bold")
                t.append("continues its run.", style="dim")
        info.update(t)

    # -- actions ------------------------------------------------------------------------
    def action_open(self) -> None:
        if (p := self.selected_path) is not None:
            self.post_message(OpenSession(p, resume=False))

    def action_resume(self) -> None:
        if (p := self.selected_path) is not None:
            self.post_message(OpenSession(p, resume=True))

    def action_new(self) -> None:
        self.app.action_new_session()

    def action_delete(self) -> None:
        p = self.selected_path
        if p is None:
            return
        from fgo_tui.screens.dialogs import ConfirmModal

        def answered(yes: bool | None) -> None:
            if yes:
                self.post_message(DeleteSession(p))

        self.app.push_screen(ConfirmModal(f"Delete session {p.stem}?",
                                          f"{p} and its side files are removed for good: modules, "
                                          "trajectories, reviews and the response cache.",
                                          yes="Delete", no="Keep"), answered)

    def action_mark(self) -> None:
        """Mark or unmark the highlighted session for a comparison."""
        r = self.selected
        if r is None or "error" in r:
            return
        p = Path(r["path"])
        if self._is_marked(p):
            self.marked = [m for m in self.marked if m.resolve() != p.resolve()]
        else:
            self.marked.append(p)
        table = self.query_one(DataTable)
        table.update_cell(r["path"], "name", self._name_cell(r["path"], p.stem))
        self._show_info()

    def action_compare(self) -> None:
        from fgo_tui.screens.compare import CompareScreen

        present = {Path(r["path"]).resolve() for r in self.rows if "error" not in r}
        picked = [m for m in self.marked if m.resolve() in present]
        if len(picked) < 2:
            self.notify("Mark two or more sessions with space, then press c to compare them.", markup=False)
            return
        self.app.push_screen(CompareScreen(picked))

    @on(SessionsChanged)
    def _changed(self, event: SessionsChanged) -> None:
        self._select_path = event.select
        self.action_refresh()
