"""Small modal dialogs: a yes/no confirmation and a message (errors included)."""
from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static


class ConfirmModal(ModalScreen[bool]):
    """Ask before doing something that cannot be undone. y/enter = yes, n/escape = no."""

    DEFAULT_CSS = """
    ConfirmModal { align: center middle; }
    ConfirmModal > Vertical {
        width: 72; height: auto; max-height: 80%;
        border: thick $warning 60%; background: $surface; padding: 1 2;
    }
    ConfirmModal .dialog-title { text-style: bold; margin-bottom: 1; }
    ConfirmModal Horizontal { height: auto; margin-top: 1; align-horizontal: right; }
    ConfirmModal Button { margin-left: 2; }
    """
    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, title: str, body: str, *, yes: str = "Yes", no: str = "No"):
        super().__init__()
        self._title, self._body, self._yes, self._no = title, body, yes, no

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text(self._title), classes="dialog-title")
            yield Static(Text(self._body))
            with Horizontal():
                yield Button(f"{self._no} (n)", id="no")
                yield Button(f"{self._yes} (y)", id="yes", variant="error")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "yes")


class MessageModal(ModalScreen[None]):
    """A message the operator should read (a failed run, say). Text is shown literally."""

    DEFAULT_CSS = """
    MessageModal { align: center middle; }
    MessageModal > Vertical {
        width: 90; height: auto; max-height: 80%;
        border: thick $error 60%; background: $surface; padding: 1 2;
    }
    MessageModal.-info > Vertical { border: thick $primary 60%; }
    MessageModal .dialog-title { text-style: bold; margin-bottom: 1; }
    MessageModal VerticalScroll { height: auto; max-height: 30; }
    MessageModal Horizontal { height: auto; margin-top: 1; align-horizontal: right; }
    """
    BINDINGS = [Binding("escape,enter,o", "close", "Close")]

    def __init__(self, title: str, body: str, *, error: bool = True):
        super().__init__(classes="" if error else "-info")
        self._title, self._body = title, body

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text(self._title), classes="dialog-title")
            with VerticalScroll():
                yield Static(Text(self._body), id="message-body")
            with Horizontal():
                yield Button("OK", id="ok", variant="primary")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(None)

    def action_close(self) -> None:
        self.dismiss(None)


class BudgetModal(ModalScreen[int | None]):
    """Ask for a new token budget (to resume a session that ran out of budget)."""

    DEFAULT_CSS = """
    BudgetModal { align: center middle; }
    BudgetModal > Vertical {
        width: 72; height: auto; border: thick $primary 60%; background: $surface; padding: 1 2;
    }
    BudgetModal #budget-error { color: $error; height: auto; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, current: int | None, spent: int):
        super().__init__()
        self.current, self.spent = current, spent

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text(f"The run stopped at its token budget ({self.current or 0:,}); "
                             f"{self.spent:,} tokens are spent. New total budget (blank: no budget):"))
            yield Input(value=str((self.current or 0) * 2 or ""), id="budget-input")
            yield Static("", id="budget-error")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        raw = event.value.strip().replace(",", "").replace("_", "")
        if not raw:
            self.dismiss(0)
            return
        if not raw.isdigit() or int(raw) <= 0:
            self.query_one("#budget-error", Static).update(Text("a positive whole number of tokens, please"))
            return
        self.dismiss(int(raw))

    def action_cancel(self) -> None:
        self.dismiss(None)
