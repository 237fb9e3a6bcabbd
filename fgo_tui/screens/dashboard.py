"""The run dashboard: one live panel per subset, the merge tree, the engine's messages.

The dashboard never talks to the engine: it renders the controller's RunView when the
app says it changed (RunUpdated, at most once per drain tick) and asks the app for
pause / resume / cancel / review / export.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.text import Text
from textual import getters, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.css.query import NoMatches
from textual.message import Message
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Log, Static, TabbedContent, TabPane, Tree
from textual.widgets._toast import ToastRack

from fgo_engine.persistence import queries as q
from fgo_engine.types import is_simulated
from fgo_tui.base import StudioApp
from fgo_tui.messages import RunUpdated
from fgo_tui.model.state import NodeView, fmt_score, fmt_tokens, short
from fgo_tui.widgets.merge_tree import MergeTree
from fgo_tui.widgets.node_detail import NodeDetail
from fgo_tui.widgets.render import STATUS_STYLE
from fgo_tui.widgets.subset_panel import SubsetPanel
from fgo_tui.widgets.text_box import TextBox
from fgo_tui.widgets.token_bar import TokenBar
from fgo_tui.widgets.usage_chart import usage_chart

if TYPE_CHECKING:
    from fgo_tui.model.run import RunController

TABS = ("tab-subsets", "tab-tree", "tab-events")
PANEL_CHUNK = 12  # panels mounted at a time: a screenful first, the rest one chunk per refresh


def fmt_elapsed(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def following_note(holder: str | None, status: str) -> tuple[str, str]:
    """The bar's line for a session another process runs (and, once it stopped, what next)."""
    if holder is not None:
        return (f"following a run elsewhere ({holder}): live; its reviews open here", "cyan")
    if status == "done":
        return ("the run elsewhere has finished", "green")
    return (f"the process that ran it has stopped ({status}): r resumes the run here", "yellow")


def detail_key(item_id: str, v) -> tuple:
    """What the node detail shows moves with this, not with every token batch (a re-read then)."""
    if item_id.startswith("n"):
        n = v.nodes.get(item_id)
        return (item_id, None) if n is None else (item_id, n.status, n.decision, n.decided_by, n.module_id,
                                                  n.score_after)
    s = v.subsets.get(int(item_id[1:])) if item_id[1:].isdigit() else None
    return (item_id, None) if s is None else (item_id, s.status, s.module_id, s.best_score, s.critiques_seen)


PALETTE_KEY_FROM = 120  # columns

class SubsetGrid(VerticalScroll):
    """The panels' grid. Scrolling brings off-screen panels (whose streams were skipped) up to date."""

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if round(old_value) != round(new_value) and isinstance(self.screen, DashboardScreen):
            self.screen.call_after_refresh(self.screen.refresh_view)


class DashboardScreen(Screen):
    app = getters.app(StudioApp)  # self.app is typed: see fgo_tui/base.py

    BINDINGS = [
        # the tabs show 1/2/3 themselves; short descriptions keep the footer whole at 100 columns
        Binding("1", "tab('tab-subsets')", "Subsets", show=False),
        Binding("2", "tab('tab-tree')", "Tree", show=False),
        Binding("3", "tab('tab-events')", "Events", show=False),
        Binding("p", "pause", "Pause"),
        Binding("r", "resume", "Resume"),
        Binding("c", "cancel", "Cancel"),
        Binding("v", "review", "Review"),
        Binding("u", "toggle_auto", "Auto"),
        Binding("a", "audit", "Audit"),
        Binding("f", "failures", "Failures"),
        Binding("x", "export", "Export"),
        Binding("escape", "back", "Sessions"),
    ]

    def __init__(self, ctl: RunController):
        super().__init__()
        self.ctl = ctl
        self._panels: dict[int, SubsetPanel] = {}
        self._unmounted: list[int] = []  # subsets the run will fill whose panels are not mounted yet
        self.panels_ready = asyncio.Event()  # every panel mounted (a new run starts after it)
        self._logs_seen = 0
        self._binding_state: tuple = ()
        self._detail_version: tuple = ()
        self._takeover = False
        self._module_misses: dict[str, int] = {}
        self._module_reads: set[str] = set()  # module texts being read in a worker
        self._bar_lines = 0
        self._toast_top = -1  # where the toasts start (see _toasts_below)
        self._chose_tab = False  # the operator picked a tab: no automatic switching any more
        self._usage: tuple = ()

    # -- layout -------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield TextBox(id="run-bar", crop=True)
        yield TokenBar(id="budget-bar")
        with TabbedContent(initial="tab-subsets", id="dash-tabs"):
            with TabPane("1 Subsets", id="tab-subsets"):
                with SubsetGrid(id="subset-grid"):
                    # the panels the run will fill, mounted with the screen: not in the first ticks of the run
                    v = self.view
                    sids = sorted(set(v.subsets) | (set(range(v.n_subsets)) if v.has_merge_tree
                                                    else set()))
                    self._unmounted = sids[PANEL_CHUNK:]  # mounted by _render_panels, a chunk per refresh
                    for sid in sids[:PANEL_CHUNK]:
                        s = v.subsets.get(sid)
                        self._panels[sid] = SubsetPanel(sid, module_text=self.module_text,
                                                        status=s.status if s is not None else "")
                        yield self._panels[sid]
            with TabPane("2 Merge tree", id="tab-tree"):
                with Horizontal(id="tree-body"):
                    yield MergeTree(id="merge-tree")
                    yield NodeDetail(id="node-detail")
            with TabPane("3 Events", id="tab-events"):
                yield Static("", id="usage-chart")
                yield Log(id="events-log", max_lines=2000)
        yield Footer()

    def on_mount(self) -> None:
        self._fit_grid()
        self._fit_footer()
        self.refresh_view()

    def on_screen_resume(self) -> None:
        self.refresh_view()

    @on(RunUpdated)
    def _updated(self, event: RunUpdated) -> None:
        event.stop()
        self.refresh_view()

    # -- rendering ----------------------------------------------------------------------
    @property
    def view(self):
        return self.ctl.view

    def module_text(self, module_id: str) -> str | None:
        """The text if known; otherwise None now, read in a worker (a panel asking again redraws with it)."""
        texts = self.view.module_texts
        if module_id in texts:
            return texts[module_id]
        if self._module_misses.get(module_id, 0) > 20:
            return ""  # gave up: show the id alone
        store = self.ctl.store
        if store is not None and module_id not in self._module_reads:
            self._module_reads.add(module_id)
            self._read_module(store, module_id)
        return None

    @dataclass
    class ModuleRead(Message):
        module_id: str
        text: str | None

    @work(thread=True, group="module-text", exit_on_error=False)
    def _read_module(self, store, module_id: str) -> None:
        try:
            text = q.module_text(store, module_id)
        except Exception:  # noqa: BLE001 - a store swapped or closing under us: asked again later
            text = None
        self.post_message(self.ModuleRead(module_id, text))

    @on(ModuleRead)
    def _module_read(self, message: ModuleRead) -> None:
        message.stop()
        self._module_reads.discard(message.module_id)
        if message.text is None:
            self._module_misses[message.module_id] = self._module_misses.get(message.module_id, 0) + 1
        else:
            self.view.module_texts[message.module_id] = message.text
        self.refresh_view()

    def refresh_view(self) -> None:
        if not self.is_mounted:
            return
        try:
            self._refresh_view()
        except NoMatches:  # a redraw racing the screen's teardown: nothing left to draw
            pass

    def _refresh_view(self) -> None:
        v = self.view
        takeover = self.ctl.follower is not None and not self.ctl.follower.running_elsewhere
        if takeover != self._takeover:  # the footer shows r once the run elsewhere has stopped
            self._takeover = takeover
            self.refresh_bindings()
        self._render_bar()
        budget = v.budget_tokens
        bar = self.query_one("#budget-bar", TokenBar)
        bar.display = bool(budget)
        if budget:
            bar.set_values(v.prompt_tokens, v.completion_tokens, budget, budget=True, caption="budget")
        self._toasts_below(self._bar_lines + (1 if budget else 0) + 2)
        tab = self.query_one(TabbedContent).active
        if (not self._chose_tab and tab == "tab-subsets" and self.ctl.running and v.nodes
                and v.subsets_done == len(v.subsets)):
            # the subsets are done and merging has begun: show the tree as it grows (once)
            self._chose_tab = True
            self.query_one(TabbedContent).active = tab = "tab-tree"
            self.query_one(MergeTree).focus()
            self.notify("all subsets optimized; merging now: here is the merge tree (1 shows the subsets)",
                        timeout=5)
        if tab == "tab-subsets":
            self._render_panels()
        elif tab == "tab-tree":
            self.query_one(MergeTree).sync(v)
        detail = self.query_one(NodeDetail)
        shown = detail.shown
        if shown and tab == "tab-tree":
            key = detail_key(shown, v)
            if key != self._detail_version:
                self._detail_version = key
                detail.show(self.ctl.store, shown, v.item(shown))
        if tab == "tab-events":
            usage = (tuple(v.role_tokens.items()), tuple(v.phase_tokens.items()))
            if usage != self._usage:
                self._usage = usage
                self.query_one("#usage-chart", Static).update(usage_chart(v))
        if v.logs_seen > self._logs_seen:
            log = self.query_one("#events-log", Log)
            new = list(v.logs)[-min(len(v.logs), v.logs_seen - self._logs_seen):]
            log.write_lines([f"{at} {lvl:<7} {text}" for at, lvl, text in new])
            self._logs_seen = v.logs_seen
        state = (self.ctl.running, self.ctl.paused, self.ctl.pending_request is not None, self.ctl.auto,
                 v.status, self.ctl.can_run)
        if state != self._binding_state:
            self._binding_state = state
            self.refresh_bindings()

    def _render_bar(self) -> None:
        t = Text()
        self._bar_head(t)
        self._bar_progress(t)
        self._bar_usage(t)
        for text, style in self._bar_notes():
            t.append("\n")
            t.append(text, style=style)
        bar = self.query_one("#run-bar", TextBox)
        bar.set(t)
        lines = t.plain.count("\n") + 1
        if lines != self._bar_lines:  # a height change needs a layout: only then
            self._bar_lines = lines
            bar.styles.height = lines

    def _toasts_below(self, top: int) -> None:
        """Toasts (docked at the top, clear of a modal's buttons) start ``top`` lines down: under
        the run bar, the budget bar and the tabs, never over the status they may be talking about."""
        if top == self._toast_top:
            return
        try:
            rack = self.query_one(ToastRack)
        except NoMatches:
            return
        self._toast_top = top
        rack.styles.margin = (top, 0, 0, 0)

    def _bar_head(self, t: Text) -> None:
        """Name, status, the review policy as it stands, subsets and merges done, then the shape:
        what the operator acts on first, so at 100 columns a long name crops the shape (it never
        changes during a run) and not the status or the review policy."""
        v, ctl = self.view, self.ctl
        t.append(f"◆ {short(v.name, 32)}", style="bold")
        status = "paused" if ctl.paused else v.status
        if status == "running" and ctl.running and not v.calls_this_run:
            status = "starting…"  # importing litellm, building the suite, waiting for the first answer
        t.append("  ● ", style=STATUS_STYLE.get(status, ""))
        t.append(status, style=STATUS_STYLE.get(status, ""))
        auto, review = ctl.auto, v.review_policy
        if auto is not None and review == "ask" and auto:
            review = "auto-approving"
        elif auto is not None and review == "auto" and not auto:
            review = "ask (was auto)"
        t.append(f"  review: {review}", style="dim")
        t.append(f"  subsets {v.subsets_done}/{v.n_subsets or len(v.subsets)}")
        if v.has_merge_tree:
            t.append(f" · merges {v.nodes_done}/≤{v.max_nodes}")
        t.append(f"  {v.suite} · {v.method} · N={v.n_subsets} E={v.epochs} t={v.threshold}", style="dim")
        t.append("\n")

    def _bar_progress(self, t: Text) -> None:
        v, ctl = self.view, self.ctl
        if v.expected_calls and (ctl.running or v.status == "done"):
            share, eta = ctl.progress()
            cells = 20
            full = round(cells * share)
            t.append("█" * full, style="green")
            t.append("░" * (cells - full), style="grey30")
            t.append(f" {share:.0%}", style="bold")
            t.append(f" of ~{round(v.expected_calls):,} calls", style="dim")
            waiting = ctl.waiting_for_person
            if waiting and v.status != "done":
                t.append(f" · waiting for {waiting}: ETA paused (time waiting for a person is not counted)",
                         style="yellow")
            elif eta is not None:
                t.append(f" · ETA {fmt_elapsed(eta)}")
            t.append("\n")

    def _bar_usage(self, t: Text) -> None:
        """Tokens, calls, elapsed time, scores, the models."""
        v, ctl = self.view, self.ctl
        t.append(f"tokens {fmt_tokens(v.tokens)}", style="bold")
        t.append(f" · {v.calls:,} calls, {v.cache_hits:,} cached", style="dim")
        if ctl.elapsed is not None:
            t.append(f" · elapsed {fmt_elapsed(ctl.elapsed)}")
        if v.train_score is not None or v.test_score is not None:
            t.append(f" · train {fmt_score(v.train_score)} · test ", style="bold")
            if v.start_test_score is not None and v.test_score is not None:
                t.append(f"{fmt_score(v.start_test_score)} → ", style="")  # the starting module's, beside it
            t.append(fmt_score(v.test_score), style="bold")
        # the split last: at 100 columns the bar crops it, not the elapsed time or the scores
        t.append(f" · {fmt_tokens(v.prompt_tokens)} prompt, {fmt_tokens(v.completion_tokens)} completion",
                 style="dim")
        models = sorted(set(v.models.values()))
        if models:
            t.append("\nmodels " + ", ".join(models), style="dim")
            if all(is_simulated(m) for m in models):
                t.append(" (simulated LLM: a test bed, not evidence of real-model quality)", style="dim italic")

    def _bar_notes(self) -> list[tuple[str, str]]:
        """What needs the operator: a review, a pause, why it stopped or cannot run here."""
        v, ctl = self.view, self.ctl
        notes: list[tuple[str, str]] = []
        if v.sandbox_warning:
            notes.append((f"⚠ {v.sandbox_warning}", "yellow"))
        if ctl.pending_request is not None:
            notes.append((f"⚠ merge {ctl.pending_request.node_id} waits for your review: press v", "bold yellow"))
        if ctl.paused:
            notes.append(("paused: work in flight finishes, nothing new starts · r resumes", "yellow"))
        if ctl.follower is not None:
            notes.append(following_note(ctl.follower.holder, v.status))
        elif ctl.cannot_run:
            notes.append((f"view only: {ctl.cannot_run}", "red"))
        elif not ctl.running and v.status in ("cancelled", "paused", "failed", "budget", "running", "new"):
            if v.pending_review:
                notes.append((f"stopped while merge {v.pending_review} waited for review: r resumes the run and "
                              "asks again", "yellow"))
            else:
                notes.append((f"stopped ({v.status}): r resumes the run; finished work comes from the cache",
                              "yellow"))
            if v.message and v.status in ("failed", "budget"):
                notes.append((v.message, "red" if v.status == "failed" else "yellow"))
        return notes

    def _render_panels(self) -> None:
        v = self.view
        grid = self.query_one("#subset-grid", SubsetGrid)
        new = sorted({sid for sid in v.subsets if sid not in self._panels} | set(self._unmounted))[:PANEL_CHUNK]
        if new:
            # a chunk at a time: the first screenful shows at once, a hundred panels never block a tick
            self._unmounted = [sid for sid in self._unmounted if sid not in new]
            panels = [SubsetPanel(sid, module_text=self.module_text,
                                  status=v.subsets[sid].status if sid in v.subsets else "") for sid in new]
            for sid, p in zip(new, panels):
                self._panels[sid] = p
            grid.mount(*panels)
            self._fit_grid()
            self.call_after_refresh(self._render_panels)  # the next chunk, and the new panels' first draw
        elif not self._unmounted:
            self.panels_ready.set()
        budget = bool(v.budget_tokens)
        if budget:
            scale = int(v.budget_tokens / max(1, v.n_subsets or len(v.subsets)))
        else:
            scale = max((s.tokens for s in v.subsets.values()), default=0)
        top, height = grid.scroll_offset.y, grid.size.height
        for sid, panel in self._panels.items():
            if panel.is_mounted and sid in v.subsets:
                region = panel.virtual_region
                visible = not height or (region.y < top + height and region.bottom > top)
                panel.update_from(v.subsets[sid], v, scale, budget, visible=visible)

    def _fit_grid(self) -> None:
        """Columns by count; rows share the height when few, scroll at a readable minimum when many."""
        grid = self.query_one("#subset-grid", SubsetGrid)
        n = len(self._panels)
        if not n:
            return
        width = self.size.width
        cols = 1 if n == 1 else 2 if n in (2, 4) or width < 130 else 3 if width < 200 else 4
        rows = -(-n // cols)
        height = grid.size.height or max(17, self.size.height - 9)
        grid.styles.grid_size_columns = cols
        grid.styles.grid_rows = str(max(17, height // rows))

    def on_resize(self) -> None:
        self.call_after_refresh(self._fit_grid)
        self.call_after_refresh(self._fit_footer)

    def _fit_footer(self) -> None:
        """Below 120 columns the footer leaves out the palette key (ctrl+p still opens it; Help lists
        it), so every key of a running session fits: p Pause … ? Help is 90 columns, 101 with it."""
        self.query_one(Footer).show_command_palette = self.size.width >= PALETTE_KEY_FROM

    # -- tree ---------------------------------------------------------------------------
    @on(TabbedContent.TabActivated)
    def _tab_changed(self, event: TabbedContent.TabActivated) -> None:
        self.call_after_refresh(self._after_tab_change)

    def _after_tab_change(self) -> None:
        self.refresh_view()  # after the pane is laid out
        if self.tab_of() == "tab-tree" and self.query_one(NodeDetail).shown is None:
            node = self.query_one(MergeTree).cursor_node
            if node is not None and node.data:
                self.query_one(NodeDetail).show(self.ctl.store, node.data, self.view.item(node.data))

    @property
    def behind(self) -> bool:
        """Some panel has stream lines it has not drawn (it was off-screen or hidden)."""
        try:
            if not self.is_mounted or self.query_one(TabbedContent).active != "tab-subsets":
                return False
        except NoMatches:  # being torn down
            return False
        subsets = self.view.subsets
        return any(sid in subsets and subsets[sid].steps_seen > p.lines_seen for sid, p in self._panels.items())

    @on(Tree.NodeHighlighted, "#merge-tree")
    def _highlighted(self, event: Tree.NodeHighlighted) -> None:
        nid = event.node.data
        if nid:
            v = self.view
            self._detail_version = detail_key(nid, v)
            self.query_one(NodeDetail).show(self.ctl.store, nid, v.item(nid))

    def select_tree_node(self, nid: str) -> bool:
        tree = self.query_one(MergeTree)
        node = tree.node_for(nid)
        if node is None:
            return False
        tree.move_cursor(node)
        self.query_one(NodeDetail).show(self.ctl.store, nid, self.view.item(nid))
        return True

    # -- actions ------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        ctl = self.ctl
        if action == "pause":
            return ctl.running and not ctl.paused
        if action == "resume":
            if ctl.follower is not None:  # a run elsewhere: taken over here once its process stopped
                return not ctl.follower.running_elsewhere and self.view.status != "done"
            return (ctl.running and ctl.paused) or (not ctl.running and ctl.can_run and self.view.status != "done")
        if action == "cancel":
            return ctl.running
        if action == "review":
            return ctl.pending_request is not None
        if action == "toggle_auto":
            return ctl.auto is not None
        return True

    def action_tab(self, tab: str) -> None:
        self._chose_tab = True
        self.query_one(TabbedContent).active = tab
        # move focus into the new pane: focus left in a hidden pane would switch back to it
        if tab == "tab-tree":
            self.query_one(MergeTree).focus()
        elif tab == "tab-events":
            self.query_one("#events-log", Log).focus()
        elif self._panels:
            next(iter(self._panels.values())).focus()
        else:
            self.query_one(SubsetGrid).focus()

    def action_pause(self) -> None:
        self.app.pause_run()

    def action_resume(self) -> None:
        self.app.resume_run()

    def action_cancel(self) -> None:
        self.app.confirm_cancel_run()

    def action_review(self) -> None:
        self.app.show_pending_review()

    def action_toggle_auto(self) -> None:
        self.app.toggle_auto()

    def action_export(self) -> None:
        self.app.export_report()

    def action_back(self) -> None:
        self.app.show_sessions()

    def selected_module_id(self) -> str | None:
        """The module the operator is looking at: tree selection, focused panel, or the final one."""
        v = self.view
        if self.query_one(TabbedContent).active == "tab-tree":
            node = self.query_one(MergeTree).cursor_node
            nid = node.data if node is not None else None
            item = v.item(nid) if nid else None
            if isinstance(item, NodeView):
                return item.module_id or f"{nid}.merged"
            if item is not None:
                return item.module_id
        w = self.focused
        while w is not None and not isinstance(w, SubsetPanel):
            w = w.parent if isinstance(w.parent, Widget) else None
        if isinstance(w, SubsetPanel):
            s = v.subsets.get(w.subset_id)
            if s is not None:
                return s.proposed_id or s.module_id
        return v.final_module_id

    def action_audit(self) -> None:
        self.app.open_audit(self.selected_module_id())

    def action_failures(self) -> None:
        self.app.open_failures()

    def tab_of(self) -> str:
        return self.query_one(TabbedContent).active

    @property
    def panels(self) -> dict[int, SubsetPanel]:
        return self._panels

