"""Balanced merge trees for every n (no chains) and sibling merges in parallel."""
from __future__ import annotations

import math
import threading
import types

import pytest

from fgo_engine.method.cluster import merge_node_count
from fgo_engine.method.merge import MergeTree
from fgo_engine.method.runtime import Item
from fgo_engine.types import Module


class RecordingTree(MergeTree):
    """The real tree logic; merge_node only records what it was asked to merge."""

    def __init__(self, t, on_merge=None):
        rt = types.SimpleNamespace(cfg=types.SimpleNamespace(threshold=t, cluster="kmeans", seed=0,
                                                             embedding_model=None),
                                   suite=types.SimpleNamespace(similarity_text=lambda m: m.text))
        super().__init__(rt)
        self.nodes: dict[str, list[str]] = {}
        self.on_merge = on_merge
        self._lock = threading.Lock()

    def _similarity_text(self, module):
        return module.text

    def merge_node(self, items, node_id):
        if self.on_merge:
            self.on_merge(node_id)
        with self._lock:
            assert node_id not in self.nodes
            self.nodes[node_id] = [it.node_id for it in items]
        return Item(node_id, Module("instruction", " ".join(it.module.text for it in items)), node_id, 0.0, [],
                    subset_ids=sorted(s for it in items for s in it.subset_ids),
                    depth=1 + max(it.depth for it in items))


def leaves(n):
    return [Item(f"s{i}", Module("instruction", f"rule {i % 3} topic{i % 5} word{i}"), f"m{i}", 0.0, [],
                 subset_ids=[i]) for i in range(n)]


@pytest.mark.parametrize("n", [3, 5, 10])
def test_merge_tree_is_balanced(n):
    tree = RecordingTree(t=2)
    root = tree.progressive_merge(leaves(n))

    def size(x):
        return 1 if x.startswith("s") else sum(size(c) for c in tree.nodes[x])

    assert size(root.node_id) == n
    # height is the minimum a binary tree can have: no chains
    assert root.depth == math.ceil(math.log2(n))
    # weight-balanced: siblings' subset counts differ at most twofold, and no node merges only one thing
    for children in tree.nodes.values():
        sizes = [size(c) for c in children]
        assert 2 <= len(children) <= 2 and max(sizes) <= 2 * min(sizes)
    # ids n1.. are fixed by the shape, children before parents
    assert sorted(int(k[1:]) for k in tree.nodes) == list(range(1, merge_node_count(n, 2) + 1)) == \
        list(range(1, n))
    for nid, children in tree.nodes.items():
        assert all(int(c[1:]) < int(nid[1:]) for c in children if c.startswith("n"))


def test_invoices_four_subsets_backtest_each_task_twice():
    tree = RecordingTree(t=2)
    tree.progressive_merge(leaves(4))

    def size(x):
        return 1 if x.startswith("s") else sum(size(c) for c in tree.nodes[x])

    # 4 subsets of 12 tasks: 24 + 24 + 48 = 96 backtest runs (a chain would need 24 + 36 + 48 = 108)
    assert sum(size(n) for n in tree.nodes) * 12 == 96


def test_sibling_merges_run_in_parallel():
    both_inside = threading.Barrier(2, timeout=10)  # failsafe only: sequential merges never meet here

    def on_merge(node_id):
        if node_id in ("n1", "n2"):
            both_inside.wait()

    tree = RecordingTree(t=2, on_merge=on_merge)
    tree.progressive_merge(leaves(4))
    assert tree.nodes["n3"] == ["n1", "n2"]
