"""One subset's live panel: status and scores, token bar, current module, latest
critique and the trajectory stream (a ``Log``: LLM text is shown literally)."""
from __future__ import annotations

from typing import Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Log, Static

from fgo_tui.render import STATUS_STYLE, step_line
from fgo_tui.state import RunView, SubsetView, fmt_score, short
from fgo_tui.widgets.token_bar import TokenBar

STATUS_ICON = {"pending": "○", "running": "●", "done": "✔", "failed": "✖"}


class SubsetPanel(Vertical, can_focus=True):
    DEFAULT_CSS = """
    SubsetPanel {
        height: 100%;
        border: round $primary 40%;
        padding: 0 1;
    }
    SubsetPanel:focus { border: round $accent; }
    SubsetPanel.-done { border: round $success 50%; }
    SubsetPanel.-failed { border: round $error; }
    SubsetPanel .sp-status, SubsetPanel .sp-scores { height: 1; }
    SubsetPanel .sp-module { height: 3; color: $text-muted; }
    SubsetPanel .sp-critique { height: 2; }
    SubsetPanel Log { height: 1fr; min-height: 2; background: $surface; scrollbar-size-vertical: 1; }
    """

    def __init__(self, subset_id: int, *, module_text: Callable[[str], str | None]):
        super().__init__(id=f"subset-{subset_id}", classes="subset-panel")
        self.subset_id = subset_id
        self._module_text = module_text
        self._version = -1
        self._lines_seen = 0
        self._bar_key: tuple = ()

    def compose(self) -> ComposeResult:
        yield Static(classes="sp-status")
        yield Static(classes="sp-scores")
        yield TokenBar(classes="sp-tokens")
        yield Static(classes="sp-module")
        yield Static(classes="sp-critique")
        yield Log(max_lines=200, auto_scroll=True, classes="sp-log")

    @property
    def log_widget(self) -> Log:
        return self.query_one(Log)

    def update_from(self, s: SubsetView, view: RunView, scale: int, budget: bool) -> None:
        bar_key = (s.prompt_tokens, s.completion_tokens, scale, budget)
        if bar_key != self._bar_key:
            self._bar_key = bar_key
            self.query_one(TokenBar).set_values(s.prompt_tokens, s.completion_tokens, scale, budget=budget,
                                                caption="share" if budget else "")
        if s.version == self._version:
            return
        self._version = s.version
        self.border_title = Text(f"s{s.id} · {short(s.name, 40)}")
        self.border_subtitle = Text(f"{s.n_tasks} tasks")
        self.set_class(s.status == "done", "-done")
        self.set_class(s.status == "failed", "-failed")

        status = Text()
        status.append(f"{STATUS_ICON.get(s.status, '·')} {s.status}", style=STATUS_STYLE.get(s.status, ""))
        last = max(s.epochs, default=None)
        if last is not None:
            status.append(f"  epoch {last}/{view.epochs or last}", style="")
        status.append("  best ", style="dim")
        status.append(fmt_score(s.best_score), style="bold")
        if s.error:
            status.append(f"  {short(s.error, 60)}", style="red")
        self.query_one(".sp-status", Static).update(status)

        scores = Text("scores ", style="dim")
        for i, e in enumerate(sorted(s.epochs.values(), key=lambda e: e.epoch)):
            if i:
                scores.append(" → ", style="dim")
            scores.append(f"e{e.epoch} ", style="dim")
            scores.append(f"{e.score:.2f}")
            if e.epoch > 0:
                scores.append("✓" if e.adopted else "✗", style="green" if e.adopted else "red")
        if not s.epochs:
            scores.append("—", style="dim")
        self.query_one(".sp-scores", Static).update(scores)

        mod = Text()
        if s.module_id:
            mod.append("module ", style="dim")
            mod.append(s.module_id, style="bold")
            if s.proposed_id:
                mod.append(f"  testing e{s.proposed_epoch} candidate", style="yellow")
            text = self._module_text(s.module_id) or ""
            rules = [ln for ln in text.splitlines() if ln.strip()][-2:]
            for ln in rules:
                mod.append("\n" + short(ln, 200))
        else:
            mod.append("module: starting module (no epoch judged yet)", style="dim")
        self.query_one(".sp-module", Static).update(mod)

        crit = Text()
        if s.critique:
            c = s.critique
            crit.append(f"critique e{c.epoch} {c.task_id} ✗ ", style="red")
            crit.append(short(c.failure, 200))
            if c.suggestion:
                crit.append("\n→ ", style="dim")
                crit.append(short(c.suggestion, 200), style="italic")
        else:
            crit.append("critique: none yet", style="dim")
        self.query_one(".sp-critique", Static).update(crit)

        new = s.steps_seen - self._lines_seen
        if new > 0:
            log = self.log_widget
            if new >= len(s.steps):
                lines = list(s.steps)
                if self._lines_seen:
                    log.write_line("…")
            else:
                lines = list(s.steps)[-new:]
            log.write_lines([step_line(ln) for ln in lines])
            self._lines_seen = s.steps_seen
