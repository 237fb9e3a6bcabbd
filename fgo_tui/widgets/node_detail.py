"""What a selected merge node (or subset leaf) stands for: its module, its children's
modules and scores, the reviews and the critique trail below it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.console import Group
from rich.text import Text
from textual import on, work
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Static

from fgo_engine.persistence import queries as q
from fgo_engine.types import subset_ref
from fgo_tui.model.state import DECIDED, NodeView, SubsetView, backtest_summary, fmt_score, fmt_tokens
from fgo_tui.widgets.provenance_view import blame_lines, category_table
from fgo_tui.widgets.render import (
    categories_text,
    critique_line,
    diff_text,
    heading,
    kv,
    module_block,
    review_lines,
    status_text,
)
from fgo_tui.widgets.usage_chart import score_bars

if TYPE_CHECKING:
    from fgo_engine.persistence.store import Store




def node_state(n: NodeView) -> Text:
    """The node's status word, then its decision in words ("backtesting · rolled back · backtest
    running"): a separator wherever the decision does not simply go on from the status."""
    out = status_text(n.display_status)
    rest = n.decision_text.removeprefix(n.display_status)
    if rest and rest == n.decision_text:
        rest = " · " + rest
    if rest:
        out.append(rest, style="dim")
    return out

def module_heading(module_id: str, n: NodeView | None) -> str:
    """The heading over a merge node's module, saying whose it is: after a roll back it is the best
    child's (the merge did not make it worse: it was never kept)."""
    if n is not None and n.decision == "rollback":
        why = "the backtest scored the merge below its best child" if n.rolled_back_by_backtest else "you rolled back"
        return f"Module kept: {module_id}, the best child's ({why}; the merge was not kept)"
    if n is not None and n.decision == "edit":
        return f"Module {module_id} (your edit: what was backtested and kept)"
    return f"Module {module_id} (what was backtested and kept)"

def test_lines(store: Store, labelled: list[tuple[str, str | None]]) -> list[Text]:
    """The test split's scores of these modules, scored after the run: [] until they are."""
    scores = q.module_test_scores(store, [m for _, m in labelled if m])
    shown = [(label, scores[m]) for label, m in labelled if m in scores]
    if not shown:
        return []
    line = Text("test split ", style="bold magenta")
    line.append("(after the run; reported only, no decision read it): ", style="dim")
    line.append(" · ".join(f"{label} {fmt_score(s)}" for label, s in shown))
    return [line]


class NodeDetail(VerticalScroll):
    DEFAULT_CSS = """
    NodeDetail { width: 1fr; border-left: vkey $primary 30%; padding: 0 1; }
    NodeDetail > Static { width: 1fr; }
    """

    @dataclass
    class Loaded(Message):
        """The detail of ``item_id``, read and laid out in a worker."""

        seq: int
        item_id: str
        parts: list[Text]

    def __init__(self, **kw):
        super().__init__(**kw)
        self.shown: str | None = None
        self.plain = ""  # the shown text, for tests and screen readers
        self.loaded: str | None = None  # the item whose detail is on screen
        self._seq = 0

    def compose(self):
        yield Static(Text("Select a node to see its module, its children and the critique trail.", style="dim"),
                      id="detail-body")

    def _set(self, parts: list) -> None:
        self.plain = "\n".join(p.plain for p in parts if isinstance(p, Text))
        self.query_one("#detail-body", Static).update(Group(*parts))

    def show(self, store: Store | None, item_id: str | None, view_node: NodeView | SubsetView | None = None) -> None:
        """Read the item's rows in a worker; the detail changes when they arrive (never on the UI thread)."""
        self.shown = item_id
        if not item_id or store is None:
            return
        self._seq += 1
        self._load(self._seq, store, item_id, view_node)

    @work(thread=True, exclusive=True, group="node-detail", exit_on_error=False)
    def _load(self, seq: int, store: Any, item_id: str, view_node: NodeView | SubsetView | None) -> None:
        try:
            sid = subset_ref(item_id)
            if sid is not None:
                parts = self._subset(store, sid, view_node.status if isinstance(view_node, SubsetView) else None)
            else:
                parts = self._node(store, item_id, view_node if isinstance(view_node, NodeView) else None)
        except Exception as exc:  # a read racing a closing store: say so, never crash
            parts = [Text(f"cannot read {item_id} right now: {exc}", style="red")]
        self.post_message(self.Loaded(seq, item_id, parts))

    @on(Loaded)
    def _loaded(self, message: Loaded) -> None:
        message.stop()
        if message.seq == self._seq:
            self._set(message.parts)
            self.loaded = message.item_id

    def _provenance(self, store: Any, module_id: str | None) -> list[Text]:
        from fgo_engine.report.provenance import blame

        if not module_id:
            return []
        return [heading("Where its rules came from")] + blame_lines(blame(store, module_id), width=120)

    def _node(self, store: Store, nid: str, view_node: NodeView | None) -> list[Text]:
        d = q.node_detail(store, nid)
        if d is None:
            return [Text(f"{nid}: planned, not in the session file yet", style="dim")]
        row = d.row
        head = Text(f"merge node {nid}  ", style="bold")
        if view_node is not None:
            head.append_text(node_state(view_node))
        else:
            head.append_text(status_text(row["status"].replace("_", " ")))
        n_tasks = len(row["task_ids_json"] or [])
        parts: list[Any] = [head, kv(("children", ", ".join(c.id for c in d.children)), ("tasks", n_tasks),
                          ("before", fmt_score(row["score_before"])), ("after backtest", fmt_score(row["score_after"])),
                          ("tokens", fmt_tokens(view_node.tokens if view_node else 0)))]
        bt = backtest_summary(row.get("backtest_mode"), row.get("backtest_tasks"), n_tasks,
                              (row["ci_low"], row["ci_high"]) if row.get("ci_low") is not None else None)
        if bt:
            parts.append(Text(bt, style="cyan"))
        parts += review_lines(d.reviews)
        parts += [heading("Scores up the tree (0–1)"),
                  score_bars([(f"{c.id} train", c.score) for c in d.children]
                             + [(f"{nid} children", row["score_before"]), (f"{nid} backtest", row["score_after"])])]
        own = [(f"{nid}", d.module_id)] if d.proposed_id == d.module_id else \
            [(f"{nid} merged", d.proposed_id), (f"{nid} kept", d.module_id)]
        parts += test_lines(store, own + [(c.id, c.module_id) for c in d.children])
        if row.get("scores_json") or any(c.categories for c in d.children):
            columns = [(c.id, c.categories) for c in d.children]
            if row.get("scores_json"):
                columns.append((f"{nid} after", row["scores_json"]))
            parts += [heading("Scores per category (children, then the merge after its backtest)"),
                      category_table(columns)]
        if d.module_id:
            parts += [heading(module_heading(d.module_id, view_node)), module_block(d.module_text)]
            parts += self._provenance(store, d.module_id)
            if d.proposed_id and d.proposed_id != d.module_id:
                title = "Merger's proposal (replaced by the operator's edit)" if "edited" in d.module_id \
                    else "Merger's proposal (rolled back)"
                parts += [heading(f"{title}: {d.proposed_id}"),
                          diff_text(q.unified_diff(d.proposed_text, d.module_text, d.proposed_id, d.module_id))]
        elif d.proposed_id:
            decided = view_node.decision if view_node is not None else None
            title = DECIDED.get(decided, "decided") if decided else "waiting for review"
            parts += [heading(f"Proposed module {d.proposed_id} ({title})"), module_block(d.proposed_text)]
        for c in d.children:
            parts += [heading(f"Child {c.id} · score {fmt_score(c.score)} · {c.n_tasks} tasks · {c.module_id}"),
                      categories_text(c.categories), module_block(c.text, style="grey70")]
        parts.append(heading("Critique trail (failures the optimizers saw below this node)"))
        parts += [critique_line(r["subset_id"], r["epoch"], r["task_id"], r["failure"] or "", r["suggestion"] or "")
                  for r in d.trail] or [Text("(no failed critiques)", style="dim")]
        return parts

    def _subset(self, store: Store, sid: int, view_status: str | None = None) -> list[Text]:
        d = q.subset_detail(store, sid)
        if d is None:
            return [Text(f"s{sid}: not started yet", style="dim")]
        head = Text(f"subset s{sid}: {d.row['name']}  ", style="bold")
        # the view's status: a stopped run's subsets are "stopped" though their rows still say running
        head.append_text(status_text(view_status or d.row["status"] or "pending"))
        parts = [head, kv(("tasks", len(d.row["task_ids_json"] or [])), ("best", fmt_score(d.row["best_score"])),
                          ("module", d.module_id or "—"))]
        parts += test_lines(store, [(f"s{sid} best", d.module_id)])
        if d.epochs:
            line = Text("epochs ", style="dim")
            for e in d.epochs:
                sc = e["candidate_score"] if e["candidate_score"] is not None else e["score"]
                line.append(f" e{e['epoch']} {sc:.3f}")
                if e["adopted"] is not None:
                    line.append("✓" if e["adopted"] else "✗", style="green" if e["adopted"] else "red")
            parts.append(line)
        parts += [heading(f"Best module {d.module_id or ''}"), module_block(d.module_text)]
        parts += self._provenance(store, d.module_id)
        parts.append(heading("Critique trail"))
        parts += [critique_line(r["subset_id"], r["epoch"], r["task_id"], r["failure"] or "", r["suggestion"] or "")
                  for r in d.trail] or [Text("(no failed critiques)", style="dim")]
        return parts
