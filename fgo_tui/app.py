"""FGO Studio, the app: sessions, new session, run dashboard, merge tree, review, audit.

The app owns the one open session (a :class:`RunController`): it runs ``session.run()``
in a thread worker, drains the engine's events from a thread-safe buffer on a timer,
passes review decisions to the gate, and pauses / resumes / cancels through the
session. Screens only render and ask.

Importing this module stays cheap (no litellm, no engine session): the first screen
shows in well under a second.
"""
from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.timer import Timer
from textual.worker import Worker, WorkerState

from fgo_tui.base import StudioApp
from fgo_tui.messages import DeleteSession, Exported, OpenSession, RunUpdated, SessionsChanged, StartSession
from fgo_tui.model.run import EngineSessions, RunController, SessionFactory
from fgo_tui.screens.dashboard import DashboardScreen
from fgo_tui.screens.dialogs import BudgetModal, ConfirmModal, MessageModal
from fgo_tui.screens.review import ReviewScreen
from fgo_tui.screens.sessions import SessionsScreen

if TYPE_CHECKING:
    from fgo_engine.types import ReviewRequest

DEMO_NAME = "demo.db"
QUIT_DURING_RUN = 130  # the documented exit code of a cancelled run
DEMO_MODEL = "fgo-sim/medium:latency=0.02"


def default_sessions_dir() -> Path:
    from fgo_engine._env import sessions_dir

    return sessions_dir()


def demo_config() -> Any:
    """A run on the simulated LLM that is pleasant to watch: small, six subsets, ask to review."""
    from fgo_engine.config import RunConfig
    from fgo_engine.suites.base import suite_names

    names = suite_names()
    suite = "household" if "household" in names else "invoices"
    # every subset streams at once: enough task workers and per-model concurrency for 6 × 4 tasks
    roles = {r: {"model": DEMO_MODEL, "max_concurrency": 24} for r in ("agent", "evaluator", "optimizer", "merger")}
    return RunConfig.from_dict({
        "suite": suite, "suite_options": {"n_train": 24, "n_test": 24}, "roles": roles,
        "subsets": 6, "epochs": 2, "threshold": 2, "review": "ask", "workers": 6, "task_workers": 24, "seed": 0,
    })


def display_path(path: Path) -> str:
    """A path as the operator would type it: relative to the working folder when inside it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _one_line(exc: BaseException) -> str:
    from fgo_engine.errors import FGOError
    from fgo_engine.redaction import scrub

    text = scrub(" ".join(str(exc).split()))
    return text if isinstance(exc, FGOError) else f"{type(exc).__name__}: {text}"


class FGOApp(StudioApp):
    CSS_PATH = "app.tcss"
    TITLE = "FGO Studio"
    BINDINGS = [
        Binding("question_mark", "help", "Help"),
        Binding("ctrl+q", "quit", "Quit", priority=True, show=False),
    ]

    def __init__(self, *, sessions_dir: Path | str | None = None, session_factory: SessionFactory | None = None,
                 demo: bool = False, new_config: Any = None, session_path: Path | str | None = None,
                 resume_path: Path | str | None = None, overrides: dict[str, Any] | None = None,
                 cursor_blink: bool = True, tick: float = 0.1, clock: Callable[[], float] = time.monotonic,
                 fresh: bool = False):
        super().__init__()
        self.sessions_dir = Path(sessions_dir) if sessions_dir is not None else default_sessions_dir()
        self.factory: SessionFactory = session_factory or EngineSessions()
        self.fresh = fresh  # `fgo demo --fresh`: a new demo session, not the saved one
        self.startup = {"demo": demo, "new_config": new_config, "session_path": session_path,
                        "resume_path": resume_path, "overrides": overrides}
        self.cursor_blink = cursor_blink
        self.tick = tick
        self.clock = clock
        self.ctl: RunController | None = None
        self.dashboard: DashboardScreen | None = None
        self.sessions_screen: SessionsScreen | None = None
        self._drain_timer: Timer | None = None
        self._quitting = False
        self.exit_note: str | None = None  # printed once the app is gone ("saved: fgo resume …")
        self._live_review: ReviewScreen | None = None
        self._review_deferred: ReviewRequest | None = None  # a review that arrived while the command palette was open
        self._offered: Any = None  # the last review of a followed run shown by itself
        self.warmed = threading.Event()  # the engine's modules are imported (see _warm_up)
        self.ticks = 0  # drain timer ticks
        self.drains = 0  # ticks that carried events (diagnostics, tests)

    # -- startup ------------------------------------------------------------------------
    def on_mount(self) -> None:
        self.sessions_screen = SessionsScreen(self.sessions_dir)
        self.push_screen(self.sessions_screen)
        self._drain_timer = self.set_interval(self.tick, self._drain, name="drain")
        self.call_after_refresh(self._warm_up)
        s = self.startup
        if s["demo"]:
            self.open_demo()
        elif s["new_config"] is not None:
            path = Path(s["session_path"]) if s["session_path"] else \
                self.sessions_dir / f"{s['new_config'].suite}-{time.strftime('%Y%m%d-%H%M%S')}.db"
            self.start_new(s["new_config"], path)
        elif s["resume_path"] is not None:
            self.open_session(Path(s["resume_path"]), resume=True, overrides=s["overrides"])

    @property
    def auto_approve(self) -> bool:
        return bool(self.ctl is not None and self.ctl.auto)

    def busy_with(self) -> str | None:
        return self.ctl.path.name if self.ctl is not None and self.ctl.running else None

    # -- opening and creating sessions --------------------------------------------------
    def open_demo(self) -> None:
        path = self.sessions_dir / DEMO_NAME
        if self.fresh:
            self.fresh = False
            for suffix in ("", "-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
        if path.exists():
            if self.sessions_screen is not None:
                self.sessions_screen.select(path)
            self.open_session(path, resume=False)
        else:
            self.start_new(None, path)

    @on(OpenSession)
    def _on_open(self, event: OpenSession) -> None:
        self.open_session(event.path, resume=event.resume)

    def open_session(self, path: Path, *, resume: bool = False, overrides: dict[str, Any] | None = None) -> None:
        path = Path(path)
        if self.ctl is not None and self.ctl.path.resolve() == path.resolve() and not self._run_elsewhere_ended():
            self._show_dashboard()
            if resume:
                self.resume_run()
            return
        if not self._can_switch():
            return
        if not path.exists():
            self.push_screen(MessageModal("Cannot open the session", f"no session file at {path}"))
            return
        ctl = RunController(path, self.factory, clock=self.clock)
        self._open_worker(ctl, resume, overrides)

    @work(exclusive=True, group="open", exit_on_error=False)
    async def _open_worker(self, ctl: RunController, resume: bool, overrides: dict[str, Any] | None) -> None:
        try:
            await asyncio.to_thread(ctl.open, overrides)
        except Exception as exc:  # noqa: BLE001 - shown, never a traceback
            self.push_screen(MessageModal(f"Cannot open {ctl.path.name}", _one_line(exc)))
            return
        self._activate(ctl)
        if ctl.cannot_run and not ctl.following:  # (following: the dashboard's bar says so)
            self.notify(f"view only: {ctl.cannot_run}", severity="warning", timeout=8, markup=False)
        if resume and not ctl.following:  # `fgo resume` of a session that runs elsewhere: follow it
            self.resume_run()

    @on(StartSession)
    def _on_start(self, event: StartSession) -> None:
        self.start_new(event.config, event.path)

    def start_new(self, config: Any, path: Path) -> None:
        """Create the session (config None: the demo's) and start its run."""
        if not self._can_switch():
            self._form_failed("another run is in progress")
            return
        ctl = RunController(Path(path), self.factory, clock=self.clock)
        self._create_worker(ctl, config)

    @work(exclusive=True, group="create", exit_on_error=False)
    async def _create_worker(self, ctl: RunController, config: Any) -> None:
        try:
            if config is None:
                config = await asyncio.to_thread(demo_config)
            await asyncio.to_thread(ctl.create, config)
        except Exception as exc:  # noqa: BLE001
            self._form_failed(_one_line(exc))
            return
        from fgo_tui.screens.new_session import NewSessionScreen

        if isinstance(self.screen, NewSessionScreen):
            self.pop_screen()
        mounted = self._activate(ctl)
        if mounted is not None:
            await mounted  # the panels are up before the run's first events arrive
            if self.dashboard is not None:
                try:
                    await asyncio.wait_for(self.dashboard.panels_ready.wait(), 10)
                except TimeoutError:  # never hold a run back for a panel
                    pass
        if self.sessions_screen is not None:  # the list learns of the new session (posted to the app, it was lost)
            self.sessions_screen.post_message(SessionsChanged(select=ctl.path))
        self.resume_run()

    def _form_failed(self, message: str) -> None:
        from fgo_tui.screens.new_session import NewSessionScreen

        if isinstance(self.screen, NewSessionScreen):
            self.screen.start_failed(message)
        else:
            self.push_screen(MessageModal("Cannot start the session", message))

    def _can_switch(self) -> bool:
        if self.ctl is not None and self.ctl.running:
            self.notify(f"{self.ctl.path.name} is running: cancel it (c on its dashboard) or let it finish first; "
                        "it stays resumable.", severity="warning", timeout=6, markup=False)
            return False
        return True

    def _activate(self, ctl: RunController) -> Any:
        """Shows the session's dashboard; returns what to await for it to be mounted (or None)."""
        old = self.ctl
        self._drop_dashboard()
        if old is not None and old is not ctl:
            old.close()
        self.ctl = ctl
        return self._show_dashboard()

    def _drop_dashboard(self) -> None:
        if self.dashboard is not None and self.dashboard in self.screen_stack:
            while self.screen is not self.dashboard:
                self.pop_screen()
            self.pop_screen()
        self.dashboard = None

    def _show_dashboard(self) -> Any:
        if self.ctl is None:
            return None
        if self.dashboard is not None and self.dashboard in self.screen_stack:
            while self.screen is not self.dashboard and not isinstance(self.screen, ReviewScreen):
                self.pop_screen()
            return None
        # a new screen each time it comes back: Textual removes a popped screen, and one pushed
        # again keeps its stopped update timer (it would never repaint until a resize)
        self.dashboard = DashboardScreen(self.ctl)
        return self.push_screen(self.dashboard)

    def show_sessions(self) -> None:
        while len(self.screen_stack) > 2 and not isinstance(self.screen, SessionsScreen):
            self.pop_screen()

    def action_new_session(self) -> None:
        from fgo_engine.suites.base import suite_names
        from fgo_tui.screens.new_session import NewSessionScreen

        if isinstance(self.screen, NewSessionScreen):
            return
        try:
            names = suite_names()
        except Exception as exc:  # noqa: BLE001 - a broken plugin should not block the form
            self.notify(f"suites: {_one_line(exc)}", severity="error", markup=False)
            names = []
        self.push_screen(NewSessionScreen(self.sessions_dir, names))

    @on(DeleteSession)
    def _on_delete(self, event: DeleteSession) -> None:
        path = event.path
        if self.ctl is not None and self.ctl.path.resolve() == path.resolve():
            if self.ctl.running:
                self.notify("that session is running; cancel it first", severity="warning")
                return
            self._drop_dashboard()
            self.ctl.close()
            self.ctl = None
        from fgo_engine.run.logs import delete_session_files

        delete_session_files(path)
        report = path.with_name(f"{path.stem}-report.md")
        self.notify(f"deleted {path.name}" + (f" (its report {report.name} is kept)" if report.exists() else ""),
                    markup=False)
        if self.sessions_screen is not None:
            self.sessions_screen.post_message(SessionsChanged())

    # -- the run ------------------------------------------------------------------------
    def resume_run(self) -> None:
        ctl = self.ctl
        if ctl is None:
            return
        if ctl.running:
            if ctl.paused:
                ctl.resume()
                self.notify("resumed")
            self._refresh_dashboard()
            return
        if ctl.following:
            if not self._run_elsewhere_ended():
                self.notify("another process runs this session; it can be resumed here once that one stops",
                            severity="warning", timeout=6)
                return
            self._open_worker(RunController(ctl.path, self.factory, clock=self.clock), True, None)  # take it over
            return
        if not ctl.can_run:
            self.notify(f"this session cannot run here: {ctl.cannot_run}", severity="error", markup=False)
            return
        if ctl.view.status == "done":
            self.notify("this session is finished; nothing to resume", timeout=4)
            return
        if ctl.view.status == "budget":
            def answered(budget: int | None) -> None:
                if budget is None:
                    return
                ctl.set_budget(budget or None)
                self._start_run(ctl)

            self.push_screen(BudgetModal(ctl.view.budget_tokens, ctl.view.tokens), answered)
            return
        self._start_run(ctl)

    def _run_elsewhere_ended(self) -> bool:
        """Following a session whose other process has let it go (finished, stopped, killed)."""
        ctl = self.ctl
        return bool(ctl is not None and ctl.follower is not None and not ctl.follower.running_elsewhere)

    def _start_run(self, ctl: RunController) -> None:
        ctl.mark_started()
        self._run_worker(ctl)
        self._refresh_dashboard()

    @work(thread=True, exclusive=True, exit_on_error=False, group="run")
    def _run_worker(self, ctl: RunController) -> Any:
        return ctl.run(on_ui=self.call_from_thread)

    @on(Worker.StateChanged)
    def _worker_changed(self, event: Worker.StateChanged) -> None:
        w = event.worker
        if w.group != "run" or event.state not in (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED):
            return
        ctl = self.ctl
        if ctl is None:
            return
        ctl.mark_stopped()
        self._drain()
        if event.state == WorkerState.ERROR and w.error is not None:
            ctl.mark_failed(_one_line(w.error))
            self.push_screen(MessageModal("The run stopped with an error", ctl.view.message))
        self._refresh_dashboard()
        if self.sessions_screen is not None:
            self.sessions_screen.post_message(SessionsChanged())

    def pause_run(self) -> None:
        if self.ctl is not None and self.ctl.running and not self.ctl.paused:
            self.ctl.pause()
            self.notify("paused: work in flight finishes, nothing new starts · r resumes")
            self._refresh_dashboard()

    def confirm_cancel_run(self) -> None:
        ctl = self.ctl
        if ctl is None or not ctl.running:
            return

        def answered(yes: bool | None) -> None:
            if yes and ctl.running:
                ctl.cancel()
                self.notify("cancelling… the session stays resumable (r)")

        self.push_screen(ConfirmModal("Cancel the run?", "Work in flight stops at the next step; everything done "
                                      "so far is saved and a resume continues from there.",
                                      yes="Cancel run", no="Keep running"), answered)

    def toggle_auto(self) -> None:
        ctl = self.ctl
        if ctl is None or ctl.auto is None:
            self.notify("auto-approve switches only for review policies ask and auto", severity="warning")
            return
        on_ = not ctl.auto
        ctl.set_auto(on_)
        ctl.view.log("info", f"auto-approve {'on' if on_ else 'off'}")
        self.notify("auto-approve ON: the pending merge and later ones are approved" if on_ else
                    "auto-approve OFF: each merge waits for your review")
        self._refresh_dashboard()

    def _warm_up(self) -> None:
        """Once the first screen is drawn, import what opening a session needs (the store and
        sqlite-utils, the queries, the built-in suites and numpy: ~0.4 s) on a thread, while the
        operator reads the list; opening a session then starts at once."""
        from fgo_engine.heap import import_in_background

        def load() -> None:
            import fgo_engine.persistence.queries  # noqa: F401
            import fgo_engine.run.session  # noqa: F401
            import fgo_tui.model.data  # noqa: F401
            from fgo_engine.suites.base import suite_names

            suite_names()  # registers the built-in suites

        import_in_background("fgo-warm-up", load, self.warmed)

    # -- draining events (UI thread, on a timer) ----------------------------------------
    def _drain(self) -> None:
        self.ticks += 1
        ctl = self.ctl
        if ctl is None or not self.screen_stack:
            return  # nothing open, or the app is closing (its screens are gone before its timers)
        batch = ctl.buffer.drain()
        from fgo_engine import events as ev

        ctl.observe_progress(batch)
        followed = ctl.follow_tick()  # a run elsewhere: the view read from its file

        if batch or batch.total_tokens is not None:
            self.drains += 1
            ctl.view.apply(batch)
            for e in batch.events:
                if isinstance(e, ev.RunFinished):
                    self._finished(e)
        offered = ctl.pending_request if ctl.following else None
        if batch.reviews:
            self._show_review(batch.reviews[-1])
        elif offered is not None and offered is not self._offered:
            self._offered = offered  # offered once: escape leaves it for v
            self._show_review(offered)
        elif self._review_deferred is not None:
            from textual.command import CommandPalette

            if not isinstance(self.screen, CommandPalette):
                request, self._review_deferred = self._review_deferred, None
                self._show_review(request)
        self._close_stale_review()
        if batch or followed or ctl.running or (self.dashboard is not None and self.screen is self.dashboard
                                    and self.dashboard.behind):
            if self.dashboard is not None and self.screen is self.dashboard:
                self.dashboard.refresh_view()  # in this tick: a message would wait behind the dashboard's queue
            else:
                self._refresh_dashboard()

    def _refresh_dashboard(self) -> None:
        if self.dashboard is not None and self.dashboard.is_mounted:
            self.dashboard.post_message(RunUpdated())

    def _finished(self, e: Any) -> None:
        if e.status == "done":
            parts = ["run finished"]
            if e.train_score is not None:
                parts.append(f"train {e.train_score:.3f}")
            if e.test_score is not None:
                parts.append(f"test {e.test_score:.3f}")
            self.notify(" · ".join(parts), title="Done", timeout=8)
        elif e.status == "failed":
            self.push_screen(MessageModal("The run failed", (e.message or "no message") +
                                          "\n\nEverything done so far is saved; r on the dashboard resumes."))
        elif e.status == "cancelled":
            if not self._quitting:
                self.notify("run cancelled; r resumes it", severity="warning", timeout=6)
        else:
            self.notify(f"run stopped: {e.status}: {e.message}", severity="warning", timeout=10, markup=False)

    # -- reviews ------------------------------------------------------------------------
    def _show_review(self, request: ReviewRequest) -> None:
        ctl = self.ctl
        if ctl is None or ctl.pending_request is not request:
            return
        if isinstance(self.screen, ReviewScreen) and self.screen.node_id == request.node_id:
            return
        from textual.command import CommandPalette

        if isinstance(self.screen, CommandPalette):
            self._review_deferred = request  # shown once the palette closes, never under the operator's typing
            return
        node = ctl.view.nodes.get(request.node_id)
        # the children's categories and backtests are read by the modal's worker, not here
        self._live_review = ReviewScreen(request, store=ctl.store, auto=ctl.auto,
                                         score_before=node.score_before if node else None,
                                         backtest=ctl.view.backtest)
        self.push_screen(self._live_review, self._review_done)

    def show_pending_review(self) -> None:
        ctl = self.ctl
        if ctl is None or ctl.pending_request is None:
            self.notify("no merge is waiting for review")
            return
        self._show_review(ctl.pending_request)

    def _review_done(self, decision: Any) -> None:
        self._live_review = None
        ctl = self.ctl
        if decision is None:
            if ctl is not None and ctl.pending_request is not None and not ctl.auto:
                self.notify(f"merge {ctl.pending_request.node_id} waits for review: v opens it", timeout=5)
            return
        if ctl is None or ctl.pending_request is None:
            self.notify("that review is no longer pending", severity="warning")
            return
        node = ctl.pending_request.node_id
        if not ctl.decide(decision):
            self.notify(f"merge {node} was decided already (in another window); its decision stands",
                        severity="warning", timeout=6)
            return
        verb = {"approve": "approved", "edit": "edited", "rollback": "rolled back"}[decision.decision]
        ctl.view.log("info", f"review of merge {node}: {verb} by you")
        elsewhere = " (sent to the process running it)" if ctl.following else ""
        # no state in the toast: it outlives a short backtest, and the tree says where it is
        self.notify(f"merge {node} {verb}{elsewhere}; the merge tree (2) shows its backtest", timeout=4)

    def _close_stale_review(self) -> None:
        """Close the review the app opened once its merge is no longer pending (auto-approve,
        cancel, another front end)."""
        if self._live_review is None or self.screen is not self._live_review:
            return
        pending = self.ctl.pending_request if self.ctl is not None else None
        if pending is None or pending.node_id != self.screen.node_id:
            self._live_review = None
            self.pop_screen()

    # -- audit and export ---------------------------------------------------------------
    def open_audit(self, module_id: str | None = None) -> None:
        from fgo_tui.screens.audit import AuditScreen

        if self.ctl is None or self.ctl.store is None:
            self.notify("open a session first")
            return
        self.push_screen(AuditScreen(self.ctl.store, module_id))

    def open_failures(self) -> None:
        """The failure drill-down of the open session (failed with the final module first)."""
        from fgo_tui.screens.failures import FailuresScreen

        if self.ctl is None or self.ctl.store is None:
            self.notify("open a session first")
            return
        self.push_screen(FailuresScreen(Path(self.ctl.store.path), failed_only=self.ctl.view.status == "done"))

    def export_report(self) -> None:
        """Write the Markdown report in a worker (reading the session and writing the file are
        never on the UI thread); a toast says where it went."""
        ctl = self.ctl
        if ctl is None or ctl.store is None:
            self.notify("open a session first")
            return
        self._export_worker(ctl.store, self.sessions_dir / f"{ctl.path.stem}-report.md")

    @work(thread=True, exclusive=True, group="export", exit_on_error=False)
    def _export_worker(self, store: Any, out: Path) -> None:
        from fgo_engine.report.export import session_report, to_markdown

        try:
            text = to_markdown(session_report(store))
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(text, encoding="utf-8")
        except Exception as exc:  # noqa: BLE001 - one line on screen, never a traceback
            self.post_message(Exported(out, _one_line(exc)))
            return
        self.post_message(Exported(out))

    @on(Exported)
    def _exported(self, event: Exported) -> None:
        if event.error:
            self.notify(f"export failed: {event.error}", severity="error", markup=False)
        else:
            self.notify(f"exported to {event.path}", title="Export", timeout=8, markup=False)

    # -- app-wide -----------------------------------------------------------------------
    def deliver_screenshot(self, filename: str | None = None, path: str | None = None,
                           time_format: str | None = None) -> str | None:
        """The palette's Screenshot saves into the sessions folder, beside the exports: Textual's
        default, the user's Downloads folder, is often missing (then it only said "Failed")."""
        if path is None:
            self.sessions_dir.mkdir(parents=True, exist_ok=True)
            path = str(self.sessions_dir)
        return super().deliver_screenshot(filename, path, time_format)

    def action_help(self) -> None:
        from fgo_tui.screens.help import HelpScreen  # Markdown costs ~40 ms of startup: load on demand

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(type(self.screen).__name__))

    async def action_quit(self) -> None:
        """Quit; during a run, ask first, then cancel it (resumable) and say how to resume."""
        if self._quitting:
            return
        ctl = self.ctl
        if ctl is not None and ctl.running:
            if isinstance(self.screen, ConfirmModal):
                return
            self.push_screen(ConfirmModal(
                "Quit while the run is on?",
                f"The run stops at its next step; everything done so far is saved in {ctl.path} and "
                f"`fgo resume {ctl.path}` continues it.", yes="Quit", no="Keep running"), self._quit_answered)
            return
        self._quit_now(0)

    def _quit_answered(self, yes: bool | None) -> None:
        if yes:
            self._quit_during_run()

    @work(exclusive=True, group="quit", exit_on_error=False)
    async def _quit_during_run(self) -> None:
        ctl = self.ctl
        self._quitting = True
        if ctl is None:
            self._quit_now(0)
            return
        self.notify("stopping the run so it stays resumable…", timeout=10)
        ctl.cancel()
        runs = [w for w in self.workers if w.group == "run"]
        await self.workers.wait_for_complete(runs)
        ctl.mark_stopped()
        self._quit_now(QUIT_DURING_RUN, f"saved: fgo resume {display_path(ctl.path)}")

    def _quit_now(self, code: int, message: str | None = None) -> None:
        self._quitting = True
        ctl = self.ctl
        if ctl is not None:
            ctl.close()
            self.ctl = None
        self.exit_note = message
        self.exit(code, return_code=code)

    def on_unmount(self) -> None:
        """However the app ends, never leave the engine blocked on a review or running on."""
        ctl = self.ctl
        if ctl is not None and ctl.running:
            ctl.cancel()

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Sessions", "Show the saved sessions", self.show_sessions)
        yield SystemCommand("New session", "Configure and start an optimization run", self.action_new_session)
        yield SystemCommand("Demo session", "Open (or create) sessions/demo.db on the simulated LLM", self.open_demo)
        yield SystemCommand("Help", "What FGO does and every key", self.action_help)
        ctl = self.ctl
        if ctl is None:
            return
        name = ctl.path.stem
        yield SystemCommand(f"Dashboard: {name}", "The run dashboard of the open session", self._show_dashboard)
        yield SystemCommand("Merge tree", "The merge tree of the open session", self._goto_tree)
        yield SystemCommand("Audit modules", "Why each module version changed", self.open_audit)
        yield SystemCommand("Export report", "Write a Markdown report into the sessions folder", self.export_report)
        if ctl.running:
            yield SystemCommand("Pause run", "Stop starting new work", self.pause_run)
            yield SystemCommand("Resume run", "Continue a paused run", self.resume_run)
            yield SystemCommand("Cancel run", "Stop the run; it stays resumable", self.confirm_cancel_run)
        elif ctl.can_run and ctl.view.status != "done":
            yield SystemCommand("Resume run", "Continue this session's run", self.resume_run)
        if ctl.auto is not None:
            yield SystemCommand("Toggle auto-approve", "Approve merges without asking (on/off)", self.toggle_auto)
        if ctl.pending_request is not None:
            yield SystemCommand("Review pending merge", "Approve, edit or roll back", self.show_pending_review)

    def _goto_tree(self) -> None:
        self._show_dashboard()
        if self.dashboard is not None:
            self.dashboard.action_tab("tab-tree")


def run_app(demo: bool = False, new_config: Any = None, session_path: Path | str | None = None,
            resume_path: Path | str | None = None, overrides: dict[str, Any] | None = None,
            fresh: bool = False) -> int:
    app = FGOApp(demo=demo, new_config=new_config, session_path=session_path, resume_path=resume_path,
                 overrides=overrides, fresh=fresh)
    code = app.run()
    result = int(app.return_code or code or 0)
    if app.exit_note:
        print(app.exit_note, flush=True)
    if result == QUIT_DURING_RUN:
        # the run has stopped and the session file is closed: skip the interpreter's slow teardown
        # of litellm's modules (seconds on a busy machine) so the prompt comes back at once
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(result)
    return result
