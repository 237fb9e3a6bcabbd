"""Rule provenance: a rule's story through two merges and an operator edit, dropped rules,
rule-level diffs and the Markdown/JSON export."""
from __future__ import annotations

import json

from fgo_engine.report import provenance
from fgo_engine.run.session import Session
from fgo_engine.types import ReviewDecision

OPERATOR_RULE = "- Operator rule: never guess a glorp fact."


class EditTheRoot:
    """Approve every merge except the root: there the operator rewrites one rule, adds one."""

    policy = "ask"
    post_check = False

    def __init__(self, root: str):
        self.root = root
        self.seen: dict[str, str] = {}

    def review(self, request):
        self.seen[request.node_id] = request.proposed.text
        if request.node_id != self.root:
            return ReviewDecision("approve", by="operator")
        lines = request.proposed.text.splitlines()
        lines = [ln.replace("Answer briefly.", "Answer briefly, in one word.") for ln in lines] + [OPERATOR_RULE]
        return ReviewDecision("edit", "\n".join(lines), by="operator")


def test_rule_through_two_merges_and_an_edit(tmp_path, toy_config):
    gate = EditTheRoot("n3")
    # the null profile's critiques name the rule in its own words, so the link from rule to
    # critique is certain; paraphrasing critiques (medium) are matched by word overlap only
    s = Session.create(tmp_path / "p.db", toy_config(subsets=4, cluster="none", model="fgo-sim/null"), gate=gate)
    try:
        res = s.run()
        assert res.status == "done"
        s.store.flush()
        nodes = {n["id"]: n for n in s.store.rows("merge_nodes")}
        assert set(nodes) == {"n1", "n2", "n3"} and nodes["n3"]["child_ids_json"] == ["n1", "n2"]
        final = nodes["n3"]["module_id"]
        b = provenance.blame(s.store, final)
    finally:
        s.close()
    assert b is not None and b.module_id == final
    # a rule an optimizer step added in a subset, kept by n1 (or n2) and by n3
    learned = [r for r in b.rules if r.origin and r.origin.action == "added" and r.origin.subset_id is not None]
    assert learned, [r.summary() for r in b.rules]
    r = learned[0]
    actions = [(st.action, st.where) for st in r.history]
    merges = [w for a, w in actions if a == "kept" and w.startswith("merge")]
    assert merges[0] == "merge n3" and merges[-1] in ("merge n1", "merge n2") and len(merges) == 2
    assert r.origin.critiques, "the critiques that asked for it"
    rule_words = provenance._words(r.text)
    assert all(len(rule_words & provenance._words(c["suggestion"] + " " + c["failure"])) * 2 >= len(rule_words)
               for c in r.origin.critiques)
    assert "added at s" in r.summary() and "kept by merge n3" in r.summary()
    # the operator's own rule, and the one the operator rewrote
    mine = b.for_text(OPERATOR_RULE)
    assert mine is not None and mine.history[0].action == "edited-in" and mine.history[0].node_id == "n3"
    rewritten = b.for_text("- Answer briefly, in one word.")
    assert rewritten is not None and rewritten.history[0].action == "edited"
    assert rewritten.history[0].before == "- Answer briefly."
    assert rewritten.origin.action == "initial"
    # export
    md = provenance.to_markdown(b)
    assert "added by the operator at n3" in md and "kept by merge n3" in md
    data = json.loads(provenance.to_json(b))
    assert {x["text"] for x in data["rules"]} == {r.text for r in b.rules}


def test_rule_diff_kept_rewritten_added_dropped():
    old = "Intro line.\n- Heat things with the microwave.\n- Cool things in the fridge.\n- Look under the sink."
    new = "Intro line.\n- Heat things with the microwave 1.\n- Cool things in the fridge.\n- Open every drawer."
    d = provenance.rule_diff("instruction", old, new)
    assert [u.text for u in d.kept] == ["Intro line.", "- Cool things in the fridge."]
    assert [(o.text, n.text) for o, n in d.rewritten] == [("- Heat things with the microwave.",
                                                           "- Heat things with the microwave 1.")]
    assert [u.text for u in d.added] == ["- Open every drawer."]
    assert [u.text for u in d.dropped] == ["- Look under the sink."]
    assert provenance.latest_change("instruction", old, new) == [
        "+ added rule - Open every drawer.", "~ rewrote rule - Heat things with the microwave 1.",
        "− dropped rule - Look under the sink."]


def test_toolbox_units_are_tools():
    old = "def a(x: int) -> int:\n    return x\n\n\ndef b() -> str:\n    return 'b'\n"
    new = "def a(x: int) -> int:\n    return x + 1\n\n\ndef c() -> str:\n    return 'c'\n"
    d = provenance.rule_diff("toolbox", old, new)
    assert [(o.key, n.key) for o, n in d.rewritten] == [("a", "a")]
    assert [u.key for u in d.added] == ["c"] and [u.key for u in d.dropped] == ["b"]


def test_a_node_whose_children_are_one_module_adopts_it_and_is_not_called_a_roll_back(tmp_path, toy_config):
    s = Session.create(tmp_path / "same.db", toy_config(subsets=2, epochs=1))
    s.gateway.faults.inject("garbage", 10_000, role="optimizer")  # no subset improves on the start
    try:
        res = s.run()
        assert res.status == "done"
        root = s.store.rows("merge_nodes", "parent_id is null")[0]
        b = provenance.blame(s.store, root["module_id"])
    finally:
        s.close()
    assert b is not None and b.rules
    texts = [provenance.step_text(st) for r in b.rules for st in r.history]
    assert any(f"adopted as it is at {root['id']}" in t for t in texts), texts
    assert not any("roll back" in t for t in texts), texts


def test_paraphrasing_critiques_are_linked_to_the_rule_they_asked_for_and_no_other(tmp_path, toy_config):
    from toy_suite import CATEGORIES

    # evidence on: critiques paraphrase the gap ("…what to do about colour / glorp…")
    # instead of quoting the rule; the evaluator never blames a wrong item here
    s = Session.create(tmp_path / "para.db", toy_config(subsets=2, epochs=2, model="fgo-sim/null:evidence=2",
                                                        suite_options={"n_train": 24, "n_test": 6}))
    try:
        assert s.run().status == "done"
        s.store.flush()
        category = {t["id"]: t["category"] for t in s.store.rows("tasks")}
        added = []
        for m in s.store.rows("modules", "origin = 'optimize'"):
            b = provenance.blame(s.store, m["id"])
            added += [r for r in b.rules if r.origin and r.origin.action == "added"
                      and r.origin.module_id == m["id"]]
    finally:
        s.close()
    scoped = {f"- {k.text}": c for c, k in CATEGORIES.items()}
    learned = [r for r in added if r.text in scoped]
    assert len(learned) >= 3, [r.text for r in added]
    for r in learned:
        assert r.origin.critiques, f"no critique linked to {r.text!r}"
        assert "about" in r.origin.critiques[0]["suggestion"]  # a paraphrase, not the rule's words
        assert {category[c["task_id"]] for c in r.origin.critiques} == {scoped[r.text]}, r.text
