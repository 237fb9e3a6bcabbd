"""A one-line token bar: prompt vs completion tokens against a scale (a budget share,
or the largest peer when there is no budget)."""
from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from fgo_tui.model.state import fmt_tokens

PROMPT_STYLE = "#4c9be8"
COMPLETION_STYLE = "#e8a33c"


class TokenBar(Widget):
    DEFAULT_CSS = """
    TokenBar { height: 1; width: 1fr; }
    """

    prompt: reactive[int] = reactive(0)
    completion: reactive[int] = reactive(0)
    scale: reactive[int] = reactive(0)  # 0: nothing to compare with
    budget: reactive[bool] = reactive(False)  # scale is a budget (say so in the label)
    caption: reactive[str] = reactive("")

    def set_values(self, prompt: int, completion: int, scale: int, *, budget: bool = False,
                   caption: str = "") -> None:
        self.prompt, self.completion = int(prompt), int(completion)
        self.scale, self.budget, self.caption = int(scale), budget, caption

    @property
    def label(self) -> str:
        return self.labels()[0]

    def labels(self) -> list[str]:
        """The label from most to least detailed; render picks the longest that leaves room for a bar."""
        total, p, c = fmt_tokens(self.prompt + self.completion), fmt_tokens(self.prompt), fmt_tokens(self.completion)
        of = ""
        if self.budget and self.scale:
            of = f" of {fmt_tokens(self.scale)}" + (f" {self.caption}" if self.caption else "")
        elif self.caption:
            of = f" {self.caption}"
        return [f" {total} tok ({p} prompt · {c} compl){of}", f" {total} ({p} p · {c} c){of}", f" {total}{of}",
                f" {total}"]

    def render(self) -> Text:
        labels = self.labels()
        label = next((lb for lb in labels if self.size.width - len(lb) >= 8), labels[-1])
        width = max(0, self.size.width - len(label))
        total = self.prompt + self.completion
        scale = max(self.scale, total, 1) if not self.budget else max(self.scale, 1)
        over = self.budget and total > self.scale > 0
        p_cells = min(width, round(width * self.prompt / scale)) if width else 0
        c_cells = min(width - p_cells, round(width * self.completion / scale)) if width else 0
        bar = Text()
        bar.append("█" * p_cells, style="red" if over else PROMPT_STYLE)
        bar.append("█" * c_cells, style="red" if over else COMPLETION_STYLE)
        bar.append("░" * (width - p_cells - c_cells), style="grey30")
        bar.append(label, style="bold red" if over else "")
        return bar
