"""The audit: for any module version, why it changed — the critiques and trajectories
the optimizer saw (or the merge and its review) — and the diff to its parent."""
from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Group
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option

from fgo_engine import queries as q
from fgo_tui.model.state import fmt_score, short
from fgo_tui.widgets.render import categories_text, critique_line, diff_text, heading, kv, module_block

if TYPE_CHECKING:
    from fgo_engine.store import Store


def module_option_label(m: dict) -> Text:
    t = Text()
    t.append(m["id"], style="bold" if m["origin"] in ("merge", "edit") else "")
    t.append(f"  {m['origin']}", style="dim")
    if m.get("score") is not None:
        t.append(f"  {m['score']:.3f}")
    if m.get("adopted") is not None:
        t.append(" ✓" if m["adopted"] else " ✗", style="green" if m["adopted"] else "red")
    return t


class AuditScreen(Screen):
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("x", "export", "Export report"),
        Binding("p", "parent", "Go to parent"),
    ]

    def __init__(self, store: Store, module_id: str | None = None):
        super().__init__()
        self.store = store
        self.module_id = module_id
        self.modules: list[dict] = []
        self.shown: q.Audit | None = None
        self.plain = ""

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
        try:
            a = q.audit(self.store, module_id)
        except Exception as exc:  # noqa: BLE001
            self.query_one("#audit-text", Static).update(Text(f"cannot read {module_id}: {exc}", style="red"))
            return
        if a is None:
            return
        self.module_id, self.shown = module_id, a
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
        for r in a.reviews:
            parts.append(kv(("review", r["decision"]), ("by", r["by"]), ("at", r["created_at"])))
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
            for c in a.critiques:
                if c["correct"]:
                    parts.append(Text(f"{c['task_id']} ✓ correct", style="green"))
                else:
                    parts.append(critique_line(m.get("subset_id"), (m.get("epoch") or 1) - 1, c["task_id"],
                                               c["failure"] or "", c["suggestion"] or ""))
                    if c.get("pattern"):
                        parts.append(Text("    pattern: " + short(c["pattern"], 200), style="dim"))
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

    def action_back(self) -> None:
        self.app.pop_screen()
