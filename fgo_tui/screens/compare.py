"""Sessions side by side: scores per category, tokens, cost, time, and the final modules as a diff.

Pick two or more sessions on the Sessions screen (space marks, ``c`` compares). The highlighted
session's final module is shown as a diff against the first one's; ``f`` opens its failures.
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
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from fgo_tui.base import StudioApp
from fgo_tui.model.state import fmt_score, fmt_tokens, short
from fgo_tui.widgets.render import diff_text, heading

SESSION_COLUMNS = (("Session", 20), ("Method", 12), ("N×E", 5), ("Status", 9), ("Train", 6), ("Test", 6),
                   ("Tokens", 8), ("Cost", 8), ("Time", 7), ("Models", 30))


def fmt_seconds(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class CompareScreen(Screen):
    app = getters.app(StudioApp)  # self.app is typed: see fgo_tui/base.py

    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("f", "failures", "Failures"),
    ]

    @dataclass
    class Loaded(Message):
        comparison: Any
        error: str | None = None

    def __init__(self, paths: list[Path]):
        super().__init__()
        self.paths = [Path(p) for p in paths]
        self.comparison: Any = None
        self.loaded = False
        self.plain = ""

    def compose(self) -> ComposeResult:
        yield Static(Text.assemble(("Compare", "bold"), (f"  ·  {len(self.paths)} sessions side by side", "dim")),
                     classes="screen-title")
        yield DataTable(id="compare-sessions", cursor_type="row", zebra_stripes=True)
        yield Static("", id="compare-note")
        yield DataTable(id="compare-categories", cursor_type="none", zebra_stripes=True)
        with VerticalScroll(id="compare-diff"):
            yield Static(Text("reading the sessions…", style="dim"), id="compare-diff-text")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#compare-sessions", DataTable)
        for name, width in SESSION_COLUMNS:
            table.add_column(name, key=name, width=width)
        self._load()

    @work(thread=True, exclusive=True, group="compare", exit_on_error=False)
    def _load(self) -> None:
        from fgo_engine.report.compare import compare

        try:
            self.post_message(self.Loaded(compare(self.paths)))
        except Exception as exc:  # noqa: BLE001 - shown on the screen, never a traceback
            self.post_message(self.Loaded(None, f"cannot compare: {exc}"))

    @on(Loaded)
    def _loaded(self, message: Loaded) -> None:
        if message.error or message.comparison is None:
            self.query_one("#compare-diff-text", Static).update(Text(message.error or "nothing to compare",
                                                                     style="red"))
            return
        c = self.comparison = message.comparison
        table = self.query_one("#compare-sessions", DataTable)
        for col in c.columns:
            table.add_row(
                Text(short(col.name, 20), style="bold"), Text(short(col.method, 12)),
                Text(f"{col.subsets or '?'}×{col.epochs or '?'}"), Text(col.status),
                Text(fmt_score(col.train_score), justify="right"), Text(fmt_score(col.test_score), justify="right"),
                Text(fmt_tokens(col.tokens), justify="right"), Text(f"${col.cost:.4f}", justify="right"),
                Text(fmt_seconds(col.wall_seconds), justify="right"), Text(short(", ".join(col.models), 30)),
                key=str(col.path))
        notes = []
        if not c.same_tasks:
            notes.append(Text("These sessions did not run the same tasks: their scores are not comparable.",
                              style="bold red"))
        for p, why in c.errors.items():
            notes.append(Text(f"{Path(p).name}: not read ({short(why, 120)})", style="red"))
        sources = sorted({col.category_source for col in c.columns})
        notes.append(Text(f"Scores per category below are {' and '.join(sources)} scores of each final module.",
                          style="dim"))
        self.query_one("#compare-note", Static).update(Group(*notes))
        cats = self.query_one("#compare-categories", DataTable)
        cats.add_column("Category", key="category", width=14)
        for i, col in enumerate(c.columns):
            cats.add_column(short(col.name, 12), key=f"c{i}", width=12)
        for cat in c.categories:
            values = [col.by_category.get(cat) for col in c.columns]
            best = max((v for v in values if v is not None), default=None)
            cats.add_row(Text(cat), *[Text(fmt_score(v), justify="right",
                                           style="bold green" if v is not None and v == best and len(values) > 1
                                           else "") for v in values])
        self.loaded = True
        if c.columns:
            table.move_cursor(row=min(1, len(c.columns) - 1))
            self._show_diff(table.cursor_row)
        table.focus()

    @on(DataTable.RowHighlighted, "#compare-sessions")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        if self.comparison is not None:
            self._show_diff(event.cursor_row)

    def _show_diff(self, i: int) -> None:
        c = self.comparison
        if c is None or not c.columns or not (0 <= i < len(c.columns)):
            return
        first, col = c.columns[0], c.columns[i]
        parts: list[Any] = []
        if i == 0:
            parts += [heading(f"Final module of {col.name} ({col.final_module_id or 'none'})"),
                      Text(col.final_text or "(no final module)")]
        else:
            parts += [heading(f"Final module: {first.name} → {col.name}")]
            lines = c.diff(i)
            parts.append(diff_text(lines) if lines else Text("(the same text)", style="dim"))
        self.plain = "\n".join(p.plain for p in parts if isinstance(p, Text))
        self.query_one("#compare-diff-text", Static).update(Group(*parts))

    def action_failures(self) -> None:
        from fgo_tui.screens.failures import FailuresScreen

        c = self.comparison
        row = self.query_one("#compare-sessions", DataTable).cursor_row
        if c is None or not (0 <= row < len(c.columns)):
            return
        self.app.push_screen(FailuresScreen(c.columns[row].path, failed_only=True))

    def action_back(self) -> None:
        self.app.pop_screen()
