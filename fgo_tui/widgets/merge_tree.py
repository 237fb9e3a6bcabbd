"""The merge tree as it grows: internal nodes are merges, leaves are subsets.

Labels are ``rich.text.Text`` (plain strings would be parsed as markup). The tree is
rebuilt only when its shape changes; otherwise labels are updated in place.
"""
from __future__ import annotations

from rich.text import Text
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from fgo_engine.types import AUTO_APPROVE, IDENTICAL_CHILDREN, IF_NOT_WORSE, OPERATOR, NodeRef
from fgo_tui.model.state import NodeView, RunView, SubsetView, fmt_score, fmt_tokens, short
from fgo_tui.widgets.render import STATUS_STYLE

COMPACT = 64  # below this many columns, labels leave out the tokens
# who decided, in a word that fits the tree's row (the node detail says it in full)
WHO = {AUTO_APPROVE: "auto", IF_NOT_WORSE: "not worse", IDENTICAL_CHILDREN: "identical"}


def node_label(n: NodeView, compact: bool = False) -> Text:
    t = Text()
    t.append(f"{n.id} ", style="bold")
    status = n.display_status
    t.append(f"{status:<14}" if not compact else status, style=STATUS_STYLE.get(status, ""))
    t.append(f" {fmt_score(n.score_before)}→{fmt_score(n.score_after)}")
    if n.status == "backtesting" and n.n_tasks:
        t.append(f"  {min(n.backtest_done, n.n_tasks)}/{n.n_tasks} tasks", style="cyan")
    elif not compact:
        t.append(f"  {n.n_tasks} tasks", style="dim")
    if not compact:
        t.append(f"  {fmt_tokens(n.tokens)} tok", style="dim")
    if n.rolled_back_by_backtest and n.status == "done":
        t.append("  (by backtest)" if compact else "  (by backtest: worse than best child)", style="dim italic")
    elif n.decided_by and n.decided_by != OPERATOR and n.status == "done":
        t.append(f"  ({WHO.get(n.decided_by, n.decided_by)})", style="dim italic")
    return t


def subset_label(s: SubsetView, compact: bool = False) -> Text:
    t = Text()
    t.append(f"s{s.id} ", style="bold")
    t.append(short(", ".join(s.categories) if s.categories else s.name, 16 if compact else 36))
    t.append(f" {fmt_score(s.best_score)}" if compact else f"  best {fmt_score(s.best_score)}")
    if not compact:
        t.append(f"  {s.n_tasks} tasks", style="dim")
        t.append(f"  {fmt_tokens(s.tokens)} tok", style="dim")
    if s.status != "done":
        t.append(f" {s.status}" if compact else f"  {s.status}", style=STATUS_STYLE.get(s.status, "dim"))
    return t


class MergeTree(Tree[str]):
    """``node.data`` is the merge-tree id: ``n3`` for a merge node, ``s2`` for a subset."""

    DEFAULT_CSS = """
    MergeTree { width: 1fr; min-width: 40; }
    """

    def __init__(self, **kw):
        super().__init__(Text("merge tree"), data="", **kw)
        self.show_root = False
        self.guide_depth = 3
        self._tree_version = -1
        self._versions: dict[str, tuple] = {}
        self._by_id: dict[str, TreeNode[str]] = {}
        self._skeleton = False
        self._compact = False

    @property
    def compact(self) -> bool:
        return 0 < self.size.width < COMPACT

    def label_for(self, item: NodeView | SubsetView) -> Text:
        return node_label(item, self.compact) if isinstance(item, NodeView) else subset_label(item, self.compact)

    def sync(self, view: RunView) -> None:
        skeleton = not view.nodes and view.method == "fgo" and view.n_subsets > 1
        if view.tree_version != self._tree_version or skeleton != self._skeleton or self.compact != self._compact:
            self._rebuild(view)
            return
        for nid, tn in self._by_id.items():
            item = view.item(nid)
            if item is None:
                continue
            key = (item.version, item.tokens)
            if self._versions.get(nid) != key:
                self._versions[nid] = key
                tn.set_label(self.label_for(item))

    def _rebuild(self, view: RunView) -> None:
        self._tree_version = view.tree_version
        self._compact = self.compact
        keep = self.cursor_node.data if self.cursor_node is not None else None
        self.clear()
        self._by_id, self._versions = {}, {}
        self._skeleton = not view.nodes and view.method == "fgo" and view.n_subsets > 1
        if self._skeleton:
            self._add_skeleton(view)
            return

        def add(parent: TreeNode[str], nid: str, depth: int) -> None:
            ref = NodeRef.find(nid)
            if ref is not None and ref.is_node and nid in view.nodes and depth < 64:
                n = view.nodes[nid]
                tn = parent.add(self.label_for(n), data=nid, expand=True)
                self._versions[nid] = (n.version, n.tokens)
                for c in n.child_ids:
                    add(tn, c, depth + 1)
            elif ref is not None and ref.is_subset:
                s = view.subsets.get(ref.index)
                if s is None:
                    tn = parent.add_leaf(Text(f"{nid} (not started)", style="dim"), data=nid)
                else:
                    tn = parent.add_leaf(self.label_for(s), data=nid)
                    self._versions[nid] = (s.version, s.tokens)
            else:
                tn = parent.add_leaf(Text(nid, style="dim"), data=nid)
            self._by_id[nid] = tn

        for nid in view.roots():
            add(self.root, nid, 0)
        self.root.expand()
        target = self._by_id.get(keep) if keep else None
        if target is not None:
            self.call_after_refresh(self.move_cursor, target)
        elif self._by_id:
            self.call_after_refresh(self.move_cursor_to_line, 0)  # something is always selected

    def node_for(self, nid: str) -> TreeNode[str] | None:
        return self._by_id.get(nid)

    def _add_skeleton(self, view: RunView) -> None:
        """Before the first merge: the merges to come, as progressive merging would nest them over
        balanced groups (the clustering decides the real pairs)."""
        import math

        from fgo_engine.method.cluster import n_clusters

        counter = [0]

        def plan(items: list[object]) -> object:
            if len(items) == 1:
                return items[0]
            if len(items) <= max(2, view.threshold):
                counter[0] += 1
                return ("planned", counter[0], items)
            k = max(2, n_clusters(len(items)))
            size = math.ceil(len(items) / k)
            return plan([plan(items[i:i + size]) for i in range(0, len(items), size)])

        def add(parent: TreeNode[str], item: object) -> None:
            if isinstance(item, tuple):
                _, i, kids = item
                tn = parent.add(Text(f"merge {i} (planned)", style="dim italic"), data="", expand=True)
                for k in kids:
                    add(tn, k)
            else:
                sid = int(str(item))
                s = view.subsets.get(sid)
                tn = parent.add_leaf(self.label_for(s) if s is not None else Text(f"s{sid}", style="dim"),
                                     data=f"s{sid}")
                self._by_id[f"s{sid}"] = tn
                if s is not None:
                    self._versions[f"s{sid}"] = (s.version, s.tokens)

        add(self.root, plan(list(range(view.n_subsets))))
        self.root.add_leaf(Text("planned merges: the clustering picks the real pairs after the subsets finish",
                                style="dim"), data="")
        self.root.expand()
