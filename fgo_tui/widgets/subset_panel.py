"""One subset's live panel: status and scores, token bar, current module, latest
critique and the trajectory stream (LLM text is shown literally, never as markup)."""
from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Sparkline

from fgo_tui.model.state import RunView, SubsetView, fmt_score, short
from fgo_tui.widgets.render import STATUS_STYLE, step_line, task_label
from fgo_tui.widgets.text_box import StreamTail, TextBox
from fgo_tui.widgets.token_bar import TokenBar

STATUS_ICON = {"pending": "○", "running": "●", "done": "✔", "failed": "✖"}


def pass_progress(s: SubsetView, epochs: int) -> str:
    """'baseline · 3/8 tasks', 'epoch 1/2 · 12/16 rollouts' while a pass runs, 'epoch 2/2' once
    judged, '' before anything. Pass 0 runs the starting module once per task; a later pass runs the
    best module and the candidate on every task: two rollouts a task, counted as such (an 8-task
    subset never reads '8/16 tasks')."""
    if s.status in ("running", "queued") and s.pass_epoch is not None and s.n_tasks:
        if s.pass_epoch == 0:
            return f"baseline · {min(s.pass_done, s.n_tasks)}/{s.n_tasks} tasks"
        expected = 2 * s.n_tasks
        return f"epoch {s.pass_epoch}/{epochs or s.pass_epoch} · {min(s.pass_done, expected)}/{expected} rollouts"
    last = max(s.epochs, default=None)
    return f"epoch {last}/{epochs or last}" if last is not None else ""


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
    SubsetPanel .sp-score-row { height: 1; }
    SubsetPanel .sp-score-row Sparkline { width: 8; height: 1; margin-right: 1; }
    SubsetPanel .sp-score-row TextBox { width: 1fr; }
    SubsetPanel .sp-module { height: 3; color: $text-muted; }
    SubsetPanel .sp-critique { height: 2; }
    SubsetPanel StreamTail { height: 1fr; min-height: 2; background: $surface; }
    """

    def __init__(self, subset_id: int, *, module_text: Callable[[str], str | None], status: str = ""):
        # the status class from the start: toggling a class later restyles the panel and all its children
        classes = "subset-panel" + {"done": " -done", "failed": " -failed"}.get(status, "")
        super().__init__(id=f"subset-{subset_id}", classes=classes)
        self.subset_id = subset_id
        self._module_text = module_text
        self._version = -1
        self._lines_seen = 0
        self._bar_key: tuple = ()
        self._titles: tuple = ()

    def compose(self) -> ComposeResult:
        yield TextBox(classes="sp-status")
        with Horizontal(classes="sp-score-row"):
            yield Sparkline([], summary_function=max, classes="sp-spark")  # score per epoch
            yield TextBox(classes="sp-scores")
        yield TokenBar(classes="sp-tokens")
        yield TextBox(classes="sp-module")
        yield TextBox(classes="sp-critique")
        yield StreamTail(keep=200, classes="sp-log")

    def on_mount(self) -> None:
        # looked up once: update_from runs for every panel on every drain tick
        self._status, self._scores, self._module, self._critique = (
            self.query_one(f".sp-{k}", TextBox) for k in ("status", "scores", "module", "critique"))
        self._bar = self.query_one(TokenBar)
        self._spark = self.query_one(Sparkline)
        self._log = self.query_one(StreamTail)

    def update_node_styles(self, animate: bool = True) -> None:
        """Only the panel's own rules depend on its classes and focus (-done, -failed, :focus): restyle the
        panel alone. Textual restyles every descendant too, ~10 ms a panel on a busy machine, and 32
        subsets finishing in one tick stalled the UI for a third of a second."""
        from textual._context import NoActiveAppError

        try:
            self.app.stylesheet.update_nodes([self], animate=animate)
        except NoActiveAppError:
            pass

    @property
    def shown(self) -> bool:
        """The panel has drawn its subset's state (not just been mounted)."""
        return self._version >= 0

    @property
    def lines_seen(self) -> int:
        return self._lines_seen

    @property
    def log_widget(self) -> StreamTail:
        return self._log

    def update_from(self, s: SubsetView, view: RunView, scale: int, budget: bool, *, visible: bool = True) -> None:
        """Redraw what changed. Off-screen panels skip their stream; they catch up with the
        latest lines when scrolled into view."""
        bar_key = (s.prompt_tokens, s.completion_tokens, scale, budget)
        if bar_key != self._bar_key:
            self._bar_key = bar_key
            self._bar.set_values(s.prompt_tokens, s.completion_tokens, scale, budget=budget,
                                 caption="share" if budget else "")
        if s.version != self._version:
            self._version = s.version
            self._render_state(s, view)
        if visible:
            self._render_steps(s)

    def _render_state(self, s: SubsetView, view: RunView) -> None:
        label = ", ".join(s.categories) if s.categories else s.name
        titles = (f"s{s.id} · {short(label, 40)}", f"{s.n_tasks} tasks" + (f" · on {s.node}" if s.node else ""))
        if titles != self._titles:  # a new title repaints the whole panel: only when it changes
            self._titles = titles
            self.border_title, self.border_subtitle = Text(titles[0]), Text(titles[1])
        self.set_class(s.status == "done", "-done")
        self.set_class(s.status == "failed", "-failed")
        self._status.set(self._status_line(s, view))
        self._render_scores(s)
        self._module.set(self._module_lines(s))
        self._critique.set(self._critique_lines(s))

    def _status_line(self, s: SubsetView, view: RunView) -> Text:
        status = Text()
        status.append(f"{STATUS_ICON.get(s.status, '·')} {s.status}", style=STATUS_STYLE.get(s.status, ""))
        if s.status == "queued" and s.queued:
            status.append(f" ({s.queued})", style="yellow")
        progress = pass_progress(s, view.epochs)
        if progress:
            status.append(f"  {progress}")
        status.append("  best ", style="dim")
        status.append(fmt_score(s.best_score), style="bold")
        if s.error:
            status.append(f"  {short(s.error, 60)}", style="red")
        return status

    def _render_scores(self, s: SubsetView) -> None:
        """The scores per epoch (✓ adopted, ✗ kept the best) and their sparkline."""
        scores = Text("scores ", style="dim")
        for i, e in enumerate(sorted(s.epochs.values(), key=lambda e: e.epoch)):
            if i:
                scores.append(" → ", style="dim")
            scores.append(f"e{e.epoch} ", style="dim")
            scores.append(f"{e.score:.2f}")
            if e.adopted is not None:
                scores.append("✓" if e.adopted else "✗", style="green" if e.adopted else "red")
        if not s.epochs:
            scores.append("—", style="dim")
        self._scores.set(scores)
        data = [e.score for e in sorted(s.epochs.values(), key=lambda e: e.epoch)]
        if data != list(self._spark.data or []):
            self._spark.data = data
            self._spark.styles.width = max(2, min(8, 2 * len(data)))
        self._spark.display = bool(data)

    def _module_lines(self, s: SubsetView) -> Text:
        """The module in use and its latest change (or the candidate under test)."""
        mod = Text()
        if s.module_id:
            mod.append("module ", style="dim")
            mod.append(s.module_id, style="bold")
            if s.proposed_id:
                mod.append(f" · testing e{s.proposed_epoch}", style="yellow")
            text = self._module_text(s.module_id)
            if text is None:
                self._version = -1  # not readable yet: try again next tick
            if s.proposed_id:
                old, new, label = text, self._module_text(s.proposed_id), "candidate: "
            else:
                old, new, label = self._module_text(s.prev_module_id or "initial"), text, ""
            for ln in self._change(old, new):
                mod.append("\n" + label, style="yellow")
                mod.append(short(ln, 200), style="green" if ln.startswith("+") else "red" if ln.startswith("−")
                           else "yellow")
        else:
            mod.append("starting module (no epoch judged yet)", style="dim")
            initial = self._module_text("initial")
            if initial is None:
                self._version = -1  # not readable yet: try again next tick
            for ln in [ln for ln in (initial or "").splitlines() if ln.strip()][-2:]:
                mod.append("\n" + short(ln, 200), style="dim")
        return mod

    @staticmethod
    def _critique_lines(s: SubsetView) -> Text:
        crit = Text()
        if s.critique:
            c = s.critique
            crit.append(f"critique e{c.epoch} {task_label(c.task_id)} ✗ ", style="red")
            crit.append(short(c.failure, 200))
            if c.suggestion:
                crit.append("\n→ ", style="dim")
                crit.append(short(c.suggestion, 200), style="italic")
        else:
            crit.append("critique: none yet", style="dim")
        return crit

    def _change(self, old: str | None, new: str | None) -> list[str]:
        """The latest change as rules ('+ added rule …', '− dropped …'), at most two lines."""
        from fgo_engine.report.provenance import latest_change
        from fgo_tui.widgets.render import toolbox_tools

        if not new or old is None or old == new:
            return []
        kind = "toolbox" if toolbox_tools(new) is not None else "instruction"
        return latest_change(kind, old, new, limit=2)

    def _render_steps(self, s: SubsetView) -> None:
        new = s.steps_seen - self._lines_seen
        if new <= 0:
            return
        if new >= len(s.steps):
            lines = list(s.steps)
            if self._lines_seen:
                self._log.write_line(f"… {new - len(lines)} more steps" if new > len(lines) else "…")
        else:
            lines = list(s.steps)[-new:]
        self._log.write_lines([step_line(ln) for ln in lines])
        self._lines_seen = s.steps_seen
