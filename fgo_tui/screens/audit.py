"""The audit: for any module version, why it changed — the critiques and trajectories
the optimizer saw (or the merge and its review) — and the diff to its parent."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Group
from rich.text import Text
from textual import getters, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option

from fgo_engine.persistence import queries as q
from fgo_tui.base import StudioApp
from fgo_tui.model.state import backtest_summary, fmt_score, short
from fgo_tui.widgets.provenance_view import blame_lines
from fgo_tui.widgets.render import categories_text, critique_line, diff_text, heading, kv, module_block, review_lines

if TYPE_CHECKING:
    from fgo_engine.persistence.store import Store


def module_option_label(m: dict) -> Text:
    t = Text()
    t.append(m["id"], style="bold" if m["origin"] in ("merge", "edit") else "")
    t.append(f"  {m['origin']}", style="dim")
    if m.get("score") is not None:
        t.append(f"  {m['score']:.3f}")
    if m.get("adopted") is not None:
        t.append(" ✓" if m["adopted"] else " ✗", style="green" if m["adopted"] else "red")
    return t


def audit_backtest(a: q.Audit) -> str:
    """The node's backtest line, for the module it ran on: an edit, or a merge the operator did
    not replace (an edit or a roll back in review means the merge itself was never backtested)."""
    node = a.node or {}
    if not node or a.module["origin"] not in ("merge", "edit"):
        return ""
    if a.module["origin"] == "merge" and a.reviews and a.reviews[0]["decision"] in ("edit", "rollback"):
        return ""
    n_tasks = len(node.get("task_ids_json") or [])
    interval = (node["ci_low"], node["ci_high"]) if node.get("ci_low") is not None else None
    text = backtest_summary(node.get("backtest_mode"), node.get("backtest_tasks"), n_tasks, interval)
    return f"node {node['id']} {text}" if text else ""


class AuditScreen(Screen):
    app = getters.app(StudioApp)  # self.app is typed: see fgo_tui/base.py

    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("x", "export", "Export report"),
        Binding("b", "export_blame", "Export provenance"),
        Binding("p", "parent", "Go to parent"),
        Binding("f", "failures", "Failures"),
    ]

    @dataclass
    class Loaded(Message):
        """A module's audit and provenance, read in a worker."""

        module_id: str
        audit: Any
        blame: Any
        error: str | None = None

    @dataclass
    class Exported(Message):
        paths: list[Path]
        error: str | None = None

    def __init__(self, store: Store, module_id: str | None = None, *, out_dir: Path | None = None):
        super().__init__()
        self.store = store
        self.module_id = module_id
        self.out_dir = out_dir
        self.modules: list[dict] = []
        self.shown: q.Audit | None = None
        self.blame: Any = None
        self.plain = ""
        self.loaded: str | None = None

    def compose(self) -> ComposeResult:
        yield Static(Text("Audit: why each module version changed", style="bold"), classes="screen-title")
        with Horizontal(id="audit-body"):
            yield OptionList(id="audit-modules")
            with VerticalScroll(id="audit-detail"):
                yield Static("", id="audit-text")
        yield Footer()

    def on_mount(self) -> None:
        try:
            self.modules = q.list_modules(self.store)
        except Exception as exc:  # noqa: BLE001
            self.notify(f"cannot read modules: {exc}", severity="error", markup=False)
            self.modules = []
        ol = self.query_one(OptionList)
        ol.add_options([Option(module_option_label(m), id=m["id"]) for m in self.modules])
        ids = [m["id"] for m in self.modules]
        target = self.module_id if self.module_id in ids else (ids[-1] if ids else None)
        if target is not None:
            ol.highlighted = ids.index(target)
            self.show(target)
        ol.focus()

    @on(OptionList.OptionHighlighted, "#audit-modules")
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option.id:
            self.show(event.option.id)

    def show(self, module_id: str) -> None:
        """Read the module's audit and provenance in a worker; render when they arrive."""
        self.module_id = module_id
        self._load(module_id)

    @work(thread=True, exclusive=True, group="audit", exit_on_error=False)
    def _load(self, module_id: str) -> None:
        from fgo_engine.report.provenance import blame

        try:
            self.post_message(self.Loaded(module_id, q.audit(self.store, module_id), blame(self.store, module_id)))
        except Exception as exc:  # noqa: BLE001 - shown in the pane, never a traceback
            self.post_message(self.Loaded(module_id, None, None, f"cannot read {module_id}: {exc}"))

    @on(Loaded)
    def _loaded(self, message: Loaded) -> None:
        if message.module_id != self.module_id:
            return  # the operator moved on
        if message.error:
            self.query_one("#audit-text", Static).update(Text(message.error, style="red"))
            return
        if message.audit is None:
            return
        self.shown, self.blame = message.audit, message.blame
        self._show_audit(message.audit, message.blame)
        self.loaded = message.module_id

    def _show_audit(self, a: q.Audit, blame: Any) -> None:
        m = a.module
        parts: list[Text] = [
            Text(f"{m['id']}", style="bold"),
            kv(("origin", m["origin"]), ("kind", m["kind"]), ("subset", m.get("subset_id") if m.get("subset_id")
                                                                  is not None else "—"),
               ("epoch", m.get("epoch") if m.get("epoch") is not None else "—"), ("node", m.get("node_id") or "—"),
               ("score", fmt_score(m.get("score")))),
            kv(("lineage", " ← ".join(a.lineage))),
            heading("Why it changed"),
        ]
        parts += [Text(w) for w in a.why]
        parts += review_lines(a.reviews)
        bt = audit_backtest(a)
        if bt:
            parts.append(Text(bt, style="cyan"))
        parts += [heading("Where each rule came from (b exports it)")] + blame_lines(blame, width=160, critiques=2)
        parts.append(heading(f"Diff to parent {a.parent['id']}" if a.parent else "Diff to parent"))
        parts.append(diff_text(a.diff) if a.parent else Text("(no parent: this is where it started)", style="dim"))
        if a.merged_from:
            parts.append(heading("What the merger saw"))
            for c in a.merged_from:
                parts += [Text(f"{c.id} · score {fmt_score(c.score)} · {c.n_tasks} tasks · {c.module_id}",
                               style="bold"), categories_text(c.categories), module_block(c.text, style="grey70"),
                          Text("")]
        if a.critiques or m["origin"] == "optimize":
            parts.append(heading(f"Critiques the optimizer saw ({len(a.critiques)})"))
            for cr in a.critiques:
                if cr["correct"]:
                    parts.append(Text(f"{cr['task_id']} ✓ correct", style="green"))
                else:
                    parts.append(critique_line(m.get("subset_id"), (m.get("epoch") or 1) - 1, cr["task_id"],
                                               cr["failure"] or "", cr["suggestion"] or ""))
                    if cr.get("pattern"):
                        parts.append(Text("    pattern: " + short(cr["pattern"], 200), style="dim"))
            if not a.critiques:
                parts.append(Text("(none recorded)", style="dim"))
        if a.trajectories or m["origin"] == "optimize":
            parts.append(heading(f"Trajectories the optimizer saw ({len(a.trajectories)}, failures first)"))
            for tr in a.trajectories:
                ok = bool(tr["success"])
                head = Text(f"{tr['task_id']} ", style="bold")
                head.append("✓ success" if ok else "✗ failed", style="green" if ok else "red")
                head.append(f"  score {fmt_score(tr['score'])}  answer: ", style="dim")
                head.append(short(tr["answer"], 120))
                if tr.get("error"):
                    head.append(f"  error: {short(tr['error'], 120)}", style="red")
                parts.append(head)
                for st in (tr["steps_json"] or [])[-12:]:
                    if isinstance(st, (list, tuple)) and len(st) == 2:
                        line = Text(f"   {st[0]:<12}", style="dim")
                        line.append(short(st[1], 300))
                        parts.append(line)
        parts += [heading("Module text"), module_block(m["text"])]
        self.plain = "\n".join(p.plain for p in parts)
        self.query_one("#audit-text", Static).update(Group(*parts))

    def action_parent(self) -> None:
        if self.shown and self.shown.parent:
            pid = self.shown.parent["id"]
            ids = [m["id"] for m in self.modules]
            if pid in ids:
                self.query_one(OptionList).highlighted = ids.index(pid)
            self.show(pid)

    def action_export(self) -> None:
        self.app.export_report()

    def action_export_blame(self) -> None:
        if self.blame is None:
            self.notify("nothing to export yet")
            return
        out_dir = self.out_dir or self.app.sessions_dir
        self._write_blame(self.blame, Path(out_dir), Path(getattr(self.store, "path", "session")).stem)

    @work(thread=True, exclusive=True, group="audit-export", exit_on_error=False)
    def _write_blame(self, blame: Any, out_dir: Path, stem: str) -> None:
        from fgo_engine.report.provenance import to_json, to_markdown

        base = out_dir / f"{stem}-{blame.module_id}-provenance"
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
            md, js = base.with_suffix(".md"), base.with_suffix(".json")
            md.write_text(to_markdown(blame), encoding="utf-8")
            js.write_text(to_json(blame), encoding="utf-8")
            self.post_message(self.Exported([md, js]))
        except OSError as exc:
            self.post_message(self.Exported([], f"export failed: {exc}"))

    @on(Exported)
    def _exported(self, message: Exported) -> None:
        if message.error:
            self.notify(message.error, severity="error", markup=False)
        else:
            self.notify("wrote " + " and ".join(str(p) for p in message.paths), title="Provenance", timeout=8,
                        markup=False)

    def action_failures(self) -> None:
        from fgo_tui.screens.failures import FailuresScreen

        path = getattr(self.store, "path", None)
        if path is not None:
            self.app.push_screen(FailuresScreen(Path(path), failed_only=True))

    def action_back(self) -> None:
        self.app.pop_screen()
