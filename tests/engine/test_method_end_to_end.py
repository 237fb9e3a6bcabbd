"""FGO end to end on the simulated LLM: merge tree, backtests, review decisions,
determinism, baselines with equal step budgets, and the all-at-once overflow path."""
from __future__ import annotations

import math

import pytest

from fgo_engine import events as ev
from fgo_engine.method import merge as merge_phase
from fgo_engine.method.cluster import groups_for
from fgo_engine.method.review import IfNotWorse
from fgo_engine.run.session import Session
from fgo_engine.types import ReviewDecision, ReviewRequest, subset_ref


def run(tmp_path, cfg, name="s", gate=None, sinks=None):
    s = Session.create(tmp_path / f"{name}.db", cfg, gate=gate, sinks=sinks)
    try:
        res = s.run()
        s.store.flush()
        nodes = {n["id"]: n for n in s.store.rows("merge_nodes")}
        subsets = {r["id"]: r for r in s.store.rows("subsets")}
        return s, res, nodes, subsets
    finally:
        s.close()


def leaf_tasks(node_id, nodes, subsets):
    sid = subset_ref(node_id)
    if sid is not None:
        return set(subsets[sid]["task_ids_json"])
    out = set()
    for c in nodes[node_id]["child_ids_json"]:
        out |= leaf_tasks(c, nodes, subsets)
    return out


def test_fgo_improves_and_builds_a_valid_merge_tree(tmp_path, toy_config):
    s, res, nodes, subsets = run(tmp_path, toy_config(subsets=9, threshold=2, epochs=2))
    _, vanilla, _, _ = run(tmp_path, toy_config(subsets=9, threshold=2, epochs=2, method="vanilla"), name="vanilla")
    assert res.status == "done", res.message
    assert vanilla.status == "done", vanilla.message
    # the same test tasks (same suite and seed), scored before and after optimization
    assert res.test_score is not None and vanilla.test_score is not None
    assert res.test_score >= vanilla.test_score + 0.2, (vanilla.test_score, res.test_score)
    assert res.test_score > 0.55  # seeds 0-5 on this config: 0.58-0.83, mean 0.71
    assert len(subsets) == 9
    # every internal node merges at most t modules; the root covers every training task
    assert all(2 <= len(n["child_ids_json"]) <= 2 for n in nodes.values())
    roots = [n for n in nodes.values() if n["parent_id"] is None]
    assert len(roots) == 1
    assert leaf_tasks(roots[0]["id"], nodes, subsets) == {t for r in subsets.values() for t in r["task_ids_json"]}


def test_every_merge_is_backtested_on_exactly_the_union_of_its_leaves(tmp_path, toy_config):
    s, res, nodes, subsets = run(tmp_path, toy_config(subsets=6, threshold=3))
    st = Session.open(tmp_path / "s.db").store
    try:
        for nid, n in nodes.items():
            assert n["status"] == "done"
            rows = st.rows("trajectories", "phase = 'backtest' and node_id = ? and module_id = ?", (nid, n["module_id"]))
            assert {r["task_id"] for r in rows} == leaf_tasks(nid, nodes, subsets)
            assert len(rows) == len(leaf_tasks(nid, nodes, subsets))
            assert len(n["child_ids_json"]) <= 3
            leaves = {subset_ref(c) for c in n["child_ids_json"]} - {None}
            assert leaves <= set(n["subset_ids_json"])
            assert sum(len(subsets[i]["task_ids_json"]) for i in n["subset_ids_json"]) == len(leaf_tasks(nid, nodes, subsets))
        # every merged module carries its own backtest score (kept or rolled back)
        merged = st.rows("modules", "origin = 'merge'")
        assert merged and all(m["score"] is not None for m in merged)
        for m in merged:
            n = nodes[m["node_id"]]
            if n["module_id"] == m["id"]:
                assert m["score"] == n["score_after"]
    finally:
        st.close()


def test_recursion_clusters_into_floor_sqrt_n_groups(tmp_path, toy_config, monkeypatch):
    # 9 subsets, t=2: 3 clusters at the top level, each merged recursively, then merged together
    calls: list[tuple[int, list[list[int]]]] = []

    def recording_groups_for(texts, *args, **kw):
        groups = groups_for(texts, *args, **kw)
        calls.append((len(texts), groups))
        return groups

    monkeypatch.setattr(merge_phase, "groups_for", recording_groups_for)
    s, res, nodes, subsets = run(tmp_path, toy_config(subsets=9, threshold=2))
    assert res.status == "done", res.message
    # the first clustering sees the 9 subset modules and makes ⌊√9⌋ = 3 groups; every later one
    # ⌊√n⌋ groups of its n modules (2 where ⌊√n⌋ = 1, so the recursion makes progress)
    assert calls and calls[0][0] == 9
    assert len(calls[0][1]) == 3
    for n, groups in calls:
        assert len(groups) == max(2, math.isqrt(n)), (n, groups)
        assert sorted(i for g in groups for i in g) == list(range(n))
    # each top-level group of two or more subsets became one merge node over exactly its subsets
    node_leaves = [{subset_ref(c) for c in leaf_children(nid, nodes)} for nid in nodes]
    for g in calls[0][1]:
        if len(g) >= 2:
            assert set(g) in node_leaves, (g, node_leaves)
    covered = [leaf_tasks(nid, nodes, subsets) for nid in nodes]
    # every subset appears in exactly one bottom-level merge (a node whose children include a subset)
    seen = [c for n in nodes.values() for c in n["child_ids_json"] if subset_ref(c) is not None]
    assert sorted(seen) == sorted(f"s{i}" for i in range(9))
    assert max(len(c) for c in covered) == sum(len(r["task_ids_json"]) for r in subsets.values())


def leaf_children(node_id, nodes):
    """The subset references below a tree place."""
    if subset_ref(node_id) is not None:
        return [node_id]
    return [leaf for c in nodes[node_id]["child_ids_json"] for leaf in leaf_children(c, nodes)]


class ScriptedGate:
    """Edits the first merge, rolls back the second, approves the rest; records requests."""

    policy = "ask"
    post_check = False

    def __init__(self, edit_text):
        self.requests: list[ReviewRequest] = []
        self.edit_text = edit_text

    def review(self, request):
        self.requests.append(request)
        n = len(self.requests)
        if n == 1:
            return ReviewDecision("edit", self.edit_text, by="test")
        if n == 2:
            return ReviewDecision("rollback", by="test")
        return ReviewDecision("approve", by="test")


def test_edit_and_rollback_change_what_the_parent_receives(tmp_path, toy_config):
    edited = "You answer questions about glorps.\n- EDITED BY A HUMAN: a glorp eats only moss."
    gate = ScriptedGate(edited)
    s, res, nodes, subsets = run(tmp_path, toy_config(subsets=4, threshold=2), gate=gate)
    assert res.status == "done", res.message
    first, second, root = gate.requests
    st = Session.open(tmp_path / "s.db").store
    try:
        n1 = nodes[first.node_id]
        assert st.get("modules", n1["module_id"])["text"] == edited
        assert st.get("modules", n1["module_id"])["origin"] == "edit"
        n2 = nodes[second.node_id]
        best = max(second.children, key=lambda c: c.score)
        assert st.get("modules", n2["module_id"])["text"] == best.module.text
        decisions = [(r["node_id"], r["decision"]) for r in st.rows("reviews", order_by="id")]
        assert decisions == [(first.node_id, "edit"), (second.node_id, "rollback"), (root.node_id, "approve")]
    finally:
        st.close()
    # the parent merge saw the edited text and the rolled-back child's module
    texts = {c.node_id: c.module.text for c in root.children}
    assert texts[first.node_id] == edited
    assert texts[second.node_id] == best.module.text


def test_if_not_worse_policy_keeps_the_better_of_merge_and_best_child(tmp_path, toy_config):
    class SabotageFirst(IfNotWorse):
        """An operator edit that throws away all guidance: the policy must catch it."""

        def __init__(self):
            self.n = 0

        def review(self, request):
            self.n += 1
            if self.n == 1:
                return ReviewDecision("edit", "You know nothing about glorps.", by="test")
            return super().review(request)

    s, res, nodes, subsets = run(tmp_path, toy_config(subsets=6, threshold=2), gate=SabotageFirst())
    assert res.status == "done"
    st = Session.open(tmp_path / "s.db").store
    try:
        rolled = {r["node_id"] for r in st.rows("reviews", "decision = 'rollback'")}
        assert rolled, "a lossy merger should trigger at least one rollback"
        for nid, n in nodes.items():
            by_module = {}
            for r in st.rows("trajectories", "phase = 'backtest' and node_id = ?", (nid,)):
                by_module.setdefault(r["module_id"], []).append(r["score"])
            scores = {m: sum(v) / len(v) for m, v in by_module.items()}
            assert n["score_after"] == pytest.approx(max(scores.values()))  # the kept module is the better one
            assert (nid in rolled) == (n["module_id"] != f"{nid}.merged")
    finally:
        st.close()


def test_identical_seeds_give_identical_trees_and_results(tmp_path, toy_config):
    _, a, na, _ = run(tmp_path, toy_config(subsets=6), name="a")
    _, b, nb, _ = run(tmp_path, toy_config(subsets=6), name="b")
    assert a.final_module.text == b.final_module.text
    assert (a.train_score, a.test_score, a.test_by_category) == (b.train_score, b.test_score, b.test_by_category)
    assert a.prompt_tokens == b.prompt_tokens
    strip = lambda ns: {k: (v["child_ids_json"], v["score_before"], v["score_after"], v["module_id"]) for k, v in ns.items()}
    assert strip(na) == strip(nb)
    _, c, _, _ = run(tmp_path, toy_config(subsets=6, seed=5), name="c")
    assert c.final_module.text != a.final_module.text or c.test_by_category != a.test_by_category


@pytest.mark.parametrize("method", ["all-at-once", "batch-wise", "bootstrapping", "fgo", "no-merge"])
def test_methods_get_the_same_optimizer_step_budget(tmp_path, toy_config, method):
    s, res, _, _ = run(tmp_path, toy_config(method=method, subsets=3, epochs=2), name=method)
    assert res.status == "done", res.message
    assert res.optimizer_steps == 6
    st = Session.open(tmp_path / f"{method}.db").store
    try:
        assert st.count("epochs") == 6 + (3 if method in ("fgo", "no-merge") else 1)  # + one judging pass per loop
    finally:
        st.close()


def test_all_at_once_overflow_is_caught_and_reported(tmp_path, toy_config):
    logs = []
    sink = lambda e: logs.append(e) if isinstance(e, ev.Log) else None
    _, res, _, _ = run(tmp_path, toy_config(method="all-at-once", model="fgo-sim/medium:window=1500",
                                            subsets=2, epochs=1,
                                            suite_options={"n_train": 40, "n_test": 6}), sinks=[sink])
    assert res.status == "done"
    assert res.overflowed
    assert any("context overflow" in e.text for e in logs)
    _, fgo, _, _ = run(tmp_path, toy_config(method="fgo", model="fgo-sim/medium:window=1500", subsets=6, epochs=1,
                                            suite_options={"n_train": 40, "n_test": 6}), name="fgo")
    assert not fgo.overflowed


def test_vanilla_only_evaluates_the_starting_module(tmp_path, toy_config):
    _, res, nodes, _ = run(tmp_path, toy_config(method="vanilla"))
    assert res.status == "done" and res.optimizer_steps == 0 and not nodes
    assert res.final_module_id == "initial"


def test_if_not_worse_roll_backs_are_recorded_as_roll_backs(tmp_path, toy_config):
    """The policy approves a merge for its backtest, then rolls it back: both are in the
    reviews table (the roll back by the policy), so the audit and the export show it."""
    from fgo_engine.persistence import queries
    from fgo_engine.report.export import session_report, to_markdown
    from fgo_engine.types import IF_NOT_WORSE

    junk = {"model": "openai/gpt-4o-mini",
            "params": {"mock_response": "<instruction>\nYou know nothing about glorps.\n</instruction>"}}
    cfg = toy_config(subsets=4, threshold=2, review="if-not-worse", roles={"merger": junk})
    s, res, nodes, _ = run(tmp_path, cfg)
    assert res.status == "done", res.message
    st = Session.open(tmp_path / "s.db").store
    try:
        merged = [nid for nid, n in nodes.items() if n["proposed_module_id"]]
        assert merged
        for nid in merged:
            rows = queries.reviews(st, nid)
            assert [(r["decision"], r["by"]) for r in rows] == [("approve", IF_NOT_WORSE), ("rollback", IF_NOT_WORSE)]
            assert queries.node_decision(rows) == ("rollback", IF_NOT_WORSE)
            assert nodes[nid]["module_id"] != f"{nid}.merged"  # the child was kept
        report = session_report(st)
        assert {(r["node"], r["decision"], r["by"]) for r in report["reviews"]} >= {
            (nid, "rollback", IF_NOT_WORSE) for nid in merged}
        assert f"{merged[0]}: rollback ({IF_NOT_WORSE})" in to_markdown(report)
    finally:
        st.close()
