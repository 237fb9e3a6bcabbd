"""The merge review: the merged module beside its children, then approve, edit or
roll back. The engine thread waits on the QueueGate until the app passes the answer on.

Dismisses with a ``ReviewDecision``, or None to decide later (the run keeps waiting).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from rich.console import Group
from rich.text import Text
from textual import getters, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Static, TextArea

from fgo_engine.persistence.queries import unified_diff
from fgo_engine.types import OPERATOR, subset_ref
from fgo_tui.base import StudioApp
from fgo_tui.model.state import backtest_summary, fmt_score
from fgo_tui.widgets.provenance_view import rollback_cost, rule_diff_lines, rule_matrix
from fgo_tui.widgets.render import categories_text, diff_text, heading, module_block

log = logging.getLogger(__name__)


def best_child(request: Any) -> Any:
    """The child a rollback keeps: highest score, the first one on ties (as the engine does)."""
    return max(request.children, key=lambda c: c.score)


class ReviewScreen(ModalScreen):
    app = getters.app(StudioApp)  # self.app is typed: see fgo_tui/base.py

    BINDINGS = [
        Binding("a", "approve", "Approve"),
        Binding("e", "edit", "Edit"),
        Binding("r", "rollback", "Roll back"),
        Binding("u", "toggle_auto", "Auto-approve"),
        Binding("ctrl+s", "submit_edit", "Backtest edit", priority=True),
        # the editor's own select-all key (ctrl+a moves to the line start there): in the footer while editing
        Binding("f7", "select_all", "Select all"),
        Binding("escape", "escape", "Later / leave editor", priority=True),
    ]

    @dataclass
    class ChildrenLoaded(Message):
        """The children's per-category scores and backtests, read in a worker."""

        categories: dict[str, dict[str, float]]
        backtests: dict[str, str]

    def __init__(self, request: Any, *, store: Any = None, categories: dict[str, dict[str, float]] | None = None,
                 auto: bool | None = None, score_before: float | None = None, backtest: str = "full"):
        """``store``: read the children's categories and backtests in a worker (never on the UI
        thread); ``categories`` given: shown as they are."""
        super().__init__()
        self.request = request
        self.store = store
        self.categories = categories or {}
        self.backtests: dict[str, str] = {}
        self.children_loaded = store is None
        self.auto = auto
        self.score_before = score_before
        self.backtest = backtest
        self.editing = False
        self.best = best_child(request)
        self.diff_plain = ""
        self.rules_plain = ""

    @property
    def node_id(self) -> str:
        return self.request.node_id

    def compose(self) -> ComposeResult:
        r = self.request
        with Vertical(id="review-box"):
            yield Static(self._title(), id="review-title")
            with Horizontal(id="review-body"):
                with VerticalScroll(id="review-left"):
                    yield Static(self._proposed(), id="review-diff")
                    yield TextArea(r.proposed.text, id="review-editor", soft_wrap=True, show_line_numbers=True)
                with VerticalScroll(id="review-right"):
                    yield Static(self._children(), id="review-children")
            yield Static("", id="review-error")
            with Horizontal(id="review-actions"):
                yield Button("Approve (a)", id="approve", variant="success")
                yield Button("Edit (e)", id="edit", variant="primary")
                yield Button(f"Roll back to {self.best.node_id} (r)", id="rollback", variant="error")
                yield Button("Later (esc)", id="later")
                yield Button("Backtest my edit (ctrl+s)", id="submit", variant="success", classes="edit-only")
                yield Button("Leave the editor (esc)", id="leave", classes="edit-only")
                yield Static(self._auto_label(), id="review-auto")
        yield Footer()

    def on_mount(self) -> None:
        from textual.css.query import NoMatches

        try:
            editor = self.query_one("#review-editor", TextArea)
        except NoMatches:  # closed before it was laid out (the merge stopped being pending): nothing to set up
            return
        editor.display = False
        editor.cursor_blink = self.app.cursor_blink
        self._show_mode()
        self.query_one("#approve", Button).focus()
        if self.store is not None:
            self._load_children(self.store)

    @work(thread=True, exclusive=True, group="review-children", exit_on_error=False)
    def _load_children(self, store: Any) -> None:
        from fgo_engine.persistence import queries as q

        try:
            cats = q.child_categories(store, self.request)
            backtests = {}
            for c in self.request.children:
                row = q.merge_node(store, c.node_id) if subset_ref(c.node_id) is None else None
                if row:
                    ci = (row["ci_low"], row["ci_high"]) if row.get("ci_low") is not None else None
                    backtests[c.node_id] = backtest_summary(row.get("backtest_mode"), row.get("backtest_tasks"),
                                                            len(row.get("task_ids_json") or []), ci)
        except Exception:  # noqa: BLE001 - a read racing a closing store: the request's own figures stay
            log.warning("review %s: cannot read its children's figures", self.node_id, exc_info=True)
            cats, backtests = {}, {}
        self.post_message(self.ChildrenLoaded(cats, backtests))

    @on(ChildrenLoaded)
    def _children_loaded(self, message: ChildrenLoaded) -> None:
        message.stop()
        self.categories = {**self.categories, **message.categories}
        self.backtests = message.backtests
        self.children_loaded = True
        self.query_one("#review-children", Static).update(self._children())

    def _show_mode(self) -> None:
        for b in self.query("#review-actions Button"):
            b.display = b.has_class("edit-only") == self.editing

    # -- content ------------------------------------------------------------------------
    def _title(self) -> Text:
        r = self.request
        t = Text(f"Review merge {r.node_id}", style="bold")
        t.append(f"   merge of {', '.join(c.node_id for c in r.children)} · ")
        t.append(f"{r.task_count} tasks to backtest" if self.backtest != "adaptive" else
                 f"backtest: an adaptive sample of its {r.task_count} tasks")
        if self.score_before is not None:
            t.append(f" · children's weighted score {fmt_score(self.score_before)}", style="dim")
        return t

    def _proposed(self) -> Group:
        r, best = self.request, self.best
        kind = r.proposed.kind
        rules = [Text("Rules: the merge against each child", style="bold")]
        rules += rule_matrix(kind, [(c.node_id, c.module.text) for c in r.children], r.proposed.text)
        for c in r.children:
            rules += rule_diff_lines(kind, c.node_id, c.module.text, r.proposed.text)
        self.rules_plain = "\n".join(t.plain for t in rules)
        lines = unified_diff(best.module.text, r.proposed.text, f"{best.node_id} (best child)", "merged")
        legend = Text(f"Text: the merged module vs the best child {best.node_id}", style="bold")
        legend.append("   + new in the merge   − only in the child", style="dim")
        body = diff_text(lines)
        self.diff_plain = legend.plain + "\n" + body.plain
        return Group(*rules, Text(""), legend, Text(""), body)

    def _children(self) -> Group:
        from fgo_tui.widgets.provenance_view import category_table

        parts: list[Text] = [Text("Scores per category", style="bold"),
                             category_table([(c.node_id, self.categories.get(c.node_id) or c.scores_by_category)
                                             for c in self.request.children]),
                             Text("(the merge's own scores come with its backtest, in the merge tree)",
                                  style="dim"),
                             heading("Children")]
        for c in self.request.children:
            mark = "  ← best (kept on roll back)" if c is self.best else ""
            head = Text(f"{c.node_id} · score {fmt_score(c.score)} · {c.n_tasks} tasks", style="bold")
            head.append(mark, style="green")
            parts += [Text(""), head]
            if self.backtests.get(c.node_id):
                parts.append(Text(self.backtests[c.node_id], style="cyan"))
            parts += [ categories_text(self.categories.get(c.node_id) or c.scores_by_category),
                      module_block(c.module.text, style="grey70")]
        return Group(*parts)

    def _auto_label(self) -> Text:
        if self.auto is None:
            return Text("")
        return Text("  auto-approve: " + ("on" if self.auto else "off") + " (u)", style="dim")

    # -- actions ------------------------------------------------------------------------
    def _decide(self, decision: str, text: str | None = None) -> None:
        from fgo_engine.types import ReviewDecision

        self.dismiss(ReviewDecision(decision, text, by=OPERATOR))

    def action_approve(self) -> None:
        if not self.editing:
            self._decide("approve")

    def action_rollback(self) -> None:
        """Say what a roll back throws away, then ask."""
        if self.editing:
            return
        from fgo_tui.screens.dialogs import ConfirmModal

        body = rollback_cost(self.request.proposed.kind, self.request, self.best, self.categories)
        self.rollback_plain = body

        def answered(yes: bool | None) -> None:
            if yes:
                self._decide("rollback")

        self.app.push_screen(ConfirmModal(f"Roll back merge {self.node_id} to {self.best.node_id}?", body,
                                          yes="Roll back", no="Keep reviewing"), answered)

    def action_edit(self) -> None:
        if self.editing:
            return
        self.editing = True
        self.query_one("#review-diff").display = False
        editor = self.query_one("#review-editor", TextArea)
        editor.display = True
        self._show_mode()
        editor.focus()
        editor.move_cursor(editor.document.end)  # ready to add a rule at the end
        self.query_one("#review-error", Static).update(
            Text("Editing: ctrl+s backtests your text · F7 selects all (ctrl+a goes to the line start) · "
                 "escape leaves the editor", style="bold"))
        self.refresh_bindings()

    def action_select_all(self) -> None:
        if self.editing:
            self.query_one("#review-editor", TextArea).select_all()

    def action_submit_edit(self) -> None:
        if not self.editing:
            return
        text = self.query_one("#review-editor", TextArea).text
        if not text.strip():
            self.query_one("#review-error", Static).update(Text("The edited module is empty; write something "
                                                                "or leave the editor with escape.", style="red"))
            return
        self._decide("edit", text)

    def action_escape(self) -> None:
        if self.editing:
            self.editing = False
            self.query_one("#review-editor").display = False
            self.query_one("#review-diff").display = True
            self.query_one("#review-error", Static).update("")
            self._show_mode()
            self.query_one("#edit", Button).focus()
            self.refresh_bindings()
            return
        self.dismiss(None)

    def action_toggle_auto(self) -> None:
        if self.editing or self.auto is None:
            return
        self.app.toggle_auto()
        self.auto = self.app.auto_approve
        self.query_one("#review-auto", Static).update(self._auto_label())
        if self.auto:
            self.dismiss(None)  # the gate approves this merge itself now

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("approve", "edit", "rollback", "toggle_auto"):
            return not self.editing and (action != "toggle_auto" or self.auto is not None)
        if action in ("submit_edit", "select_all"):
            return self.editing
        return True

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        {"approve": self.action_approve, "edit": self.action_edit, "rollback": self.action_rollback,
         "later": self.action_escape, "submit": self.action_submit_edit,
         "leave": self.action_escape}.get(event.button.id or "", lambda: None)()
