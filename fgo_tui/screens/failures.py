"""Failure drill-down: per task, every attempt (each epoch's trajectory, its critique and its
score, the backtests, the test run), filterable by category and by "failed with the final module".

Reached from the dashboard, the audit and the comparison (key ``f``). Reads a session file
read-only in workers, so it works on a finished session and on one that is running.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Group
from rich.text import Text
from textual import getters, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Checkbox, DataTable, Footer, Select, Static

from fgo_engine.persistence import queries as q
from fgo_tui.base import StudioApp
from fgo_tui.model.state import fmt_score, short
from fgo_tui.widgets.render import heading

ALL = "all categories"
COLUMNS = (("Task", 19), ("Split", 5), ("Category", 8), ("Fails", 5), ("Final", 5))


def _score_text(x: float | None) -> Text:
    if x is None:
        return Text("—", style="dim", justify="right")
    return Text(fmt_score(x), style="green" if x >= 1 else ("red" if x <= 0 else "yellow"), justify="right")


def failed_with_final(row: dict[str, Any]) -> bool:
    """The final module ran this task and did not fully succeed."""
    return row.get("final_score") is not None and row["final_score"] < 1


def filter_rows(rows: list[dict[str, Any]], category: str, failed_only: bool) -> list[dict[str, Any]]:
    return [r for r in rows if (category == ALL or r["category"] == category)
            and (not failed_only or failed_with_final(r))]


def history_parts(h: q.TaskHistory) -> list[Text]:
    """A task's whole story as lines: the task, then each attempt with its steps and critique."""
    t = h.task
    head = Text(t.id, style="bold")
    head.append(f"  {h.split} · {t.category} · final module: ", style="dim")
    head.append_text(_score_text(h.final_score) if h.final_score is not None else Text("did not run it", style="dim"))
    parts = [head, heading("Task"), Text(short(t.input, 1200)), Text.assemble(("expected: ", "dim"), t.expected)]
    parts.append(heading(f"Attempts ({len(h.attempts)}, in the order they ran)"))
    if not h.attempts:
        parts.append(Text("(the agent has not run this task yet)", style="dim"))
    for a in h.attempts:
        line = Text(f"{a.where:<16}", style="bold")
        line.append("✓ " if a.success else "✗ ", style="green" if a.success else "red")
        line.append(f"score {fmt_score(a.score)}  ", style="dim")
        line.append(f"module {a.module_id}  ", style="dim")
        line.append("answer: ", style="dim")
        line.append(short(a.answer, 160))
        parts.append(line)
        if a.error:
            parts.append(Text("    error: " + short(a.error, 300), style="red"))
        for kind, text in a.steps:
            step = Text(f"    {kind:<12}", style="dim")
            step.append(short(text, 400))
            parts.append(step)
        c = a.critique
        if c is not None:
            if c.get("correct"):
                parts.append(Text("    critique: correct", style="green"))
            else:
                parts.append(Text.assemble(("    critique: ", "yellow"), short(c.get("failure") or "", 300)))
                if c.get("pattern"):
                    parts.append(Text.assemble(("      pattern: ", "dim"), short(c["pattern"], 300)))
                if c.get("suggestion"):
                    parts.append(Text.assemble(("      asks for: ", "dim"), short(c["suggestion"], 300)))
        parts.append(Text(""))
    return parts


class FailuresScreen(Screen):
    """Tasks on the left (filterable), the highlighted task's history on the right."""

    app = getters.app(StudioApp)  # self.app is typed: see fgo_tui/base.py

    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("f", "toggle_failed", "Failed with final"),
        Binding("f5", "refresh", "Refresh"),
    ]

    @dataclass
    class Outcomes(Message):
        rows: list[dict[str, Any]]
        error: str | None = None

    @dataclass
    class History(Message):
        task_id: str
        history: Any
        error: str | None = None

    def __init__(self, path: Path, *, failed_only: bool = False, category: str | None = None):
        super().__init__()
        self.path = Path(path)
        self.failed_only = failed_only
        self.category = category or ALL
        self.rows: list[dict[str, Any]] = []
        self.shown: list[dict[str, Any]] = []
        self.task_id: str | None = None
        self.loaded = False
        self.plain = ""

    def compose(self) -> ComposeResult:
        yield Static(Text.assemble(("Failures", "bold"), (f"  ·  {self.path.stem}: every attempt at each task, "
                                                          "its critique and its score", "dim")),
                     classes="screen-title")
        with Horizontal(id="failures-filters"):
            yield Select([(ALL, ALL)], value=ALL, allow_blank=False, id="failures-category")
            yield Checkbox("failed with the final module", self.failed_only, id="failures-failed")
            yield Static("", id="failures-count")
        with Horizontal(id="failures-body"):
            yield DataTable(id="failures-tasks", cursor_type="row", zebra_stripes=True)
            with VerticalScroll(id="failures-detail"):
                yield Static(Text("reading the session…", style="dim"), id="failures-text")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for name, width in COLUMNS:
            table.add_column(name, key=name, width=width)
        self.action_refresh()

    # -- reading ------------------------------------------------------------------------
    def action_refresh(self) -> None:
        self._load_outcomes()

    @work(thread=True, exclusive=True, group="failures-list", exit_on_error=False)
    def _load_outcomes(self) -> None:
        try:
            store = q.open_readonly(self.path)
            try:
                self.post_message(self.Outcomes(q.task_outcomes(store)))
            finally:
                store.close()
        except Exception as exc:  # noqa: BLE001 - shown on the screen, never a traceback
            self.post_message(self.Outcomes([], f"cannot read {self.path.name}: {exc}"))

    @on(Outcomes)
    def _outcomes(self, message: Outcomes) -> None:
        if message.error:
            self.query_one("#failures-text", Static).update(Text(message.error, style="red"))
            return
        self.rows = message.rows
        cats = sorted({r["category"] for r in self.rows})
        select = self.query_one("#failures-category", Select)
        with select.prevent(Select.Changed):
            select.set_options([(ALL, ALL)] + [(c, c) for c in cats])
            select.value = self.category if self.category in cats else ALL
        self._fill()
        self.loaded = True

    def _fill(self) -> None:
        table = self.query_one(DataTable)
        keep = self.task_id
        table.clear()
        self.shown = filter_rows(self.rows, self.category, self.failed_only)
        for r in self.shown:
            table.add_row(Text(short(r["id"], 19)), Text(r["split"]), Text(short(r["category"], 8)),
                          Text(f"{r['failed']}/{r['runs']}", style="red" if r["failed"] else "dim", justify="right"),
                          _score_text(r["final_score"]), key=r["id"])
        n_fail = sum(1 for r in self.rows if failed_with_final(r))
        self.query_one("#failures-count", Static).update(
            Text(f"{len(self.shown)}/{len(self.rows)} shown · {n_fail} failed at the end",
                 style="dim"))
        ids = [r["id"] for r in self.shown]
        if not ids:
            self.task_id = None
            self.query_one("#failures-text", Static).update(Text("No task matches the filters.", style="dim"))
            return
        row = ids.index(keep) if keep in ids else 0
        table.move_cursor(row=row)
        self._show(ids[row])
        table.focus()

    def _show(self, task_id: str) -> None:
        if task_id == self.task_id and self.plain:
            return
        self.task_id = task_id
        self._load_history(task_id)

    @work(thread=True, exclusive=True, group="failures-task", exit_on_error=False)
    def _load_history(self, task_id: str) -> None:
        try:
            store = q.open_readonly(self.path)
            try:
                self.post_message(self.History(task_id, q.task_history(store, task_id)))
            finally:
                store.close()
        except Exception as exc:  # noqa: BLE001
            self.post_message(self.History(task_id, None, f"cannot read {task_id}: {exc}"))

    @on(History)
    def _history(self, message: History) -> None:
        if message.task_id != self.task_id:
            return  # the operator moved on
        text = self.query_one("#failures-text", Static)
        if message.error or message.history is None:
            text.update(Text(message.error or f"no task {message.task_id}", style="red"))
            return
        parts = history_parts(message.history)
        self.plain = "\n".join(p.plain for p in parts)
        text.update(Group(*parts))

    # -- the operator -------------------------------------------------------------------
    @on(DataTable.RowHighlighted, "#failures-tasks")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key is not None and event.row_key.value:
            self.plain = "" if event.row_key.value != self.task_id else self.plain
            self._show(str(event.row_key.value))

    @on(Select.Changed, "#failures-category")
    def _category(self, event: Select.Changed) -> None:
        self.category = str(event.value) if isinstance(event.value, str) else ALL
        self._fill()

    @on(Checkbox.Changed, "#failures-failed")
    def _failed(self, event: Checkbox.Changed) -> None:
        self.failed_only = event.value
        self._fill()

    def action_toggle_failed(self) -> None:
        self.query_one("#failures-failed", Checkbox).toggle()

    def action_back(self) -> None:
        self.app.pop_screen()
