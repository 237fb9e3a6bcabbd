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
    assert "added at the optimizer step after s" in r.summary() and "kept by merge n3" in r.summary()
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


class AddALookAlike(EditTheRoot):
    """At the root the operator adds a rule written on the template of one already there."""

    def review(self, request):
        self.seen[request.node_id] = request.proposed.text
        if request.node_id != self.root:
            return ReviewDecision("approve", by="operator")
        twin = next(ln for ln in request.proposed.text.splitlines() if ln.startswith("- For "))
        self.added = twin.rstrip(".").rsplit(" ", 1)[0] + " moons, never in years."
        self.twin = twin
        return ReviewDecision("edit", request.proposed.text + "\n" + self.added, by="operator")


def test_a_rule_the_operator_adds_beside_a_look_alike_is_the_operators(tmp_path, toy_config):
    """Issue 24 item 3: "added … → rewritten by the operator at n2; before: <the heat rule>" while the
    heat rule was still there, unchanged. A rule a person wrote says so."""
    gate = AddALookAlike("n3")
    s = Session.create(tmp_path / "p.db", toy_config(subsets=4, cluster="none", model="fgo-sim/null"), gate=gate)
    try:
        assert s.run().status == "done"
        s.store.flush()
        final = {n["id"]: n for n in s.store.rows("merge_nodes")}["n3"]["module_id"]
        b = provenance.blame(s.store, final)
    finally:
        s.close()
    u = provenance.Unit(provenance._norm(gate.added), gate.added, provenance._norm(gate.added))
    twin = provenance.Unit(provenance._norm(gate.twin), gate.twin, provenance._norm(gate.twin))
    assert provenance._similar(u, twin) >= provenance.REWRITE_RATIO  # alike enough to be taken for a rewrite
    mine = b.for_text(gate.added)
    assert mine is not None and mine.history[0].action == "edited-in" and mine.history[0].before is None
    assert "added by the operator at n3" in mine.summary()
    kept = b.for_text(gate.twin)
    assert kept is not None and all(st.action != "edited" for st in kept.history)


HEAT = [
    {"task_id": "t1", "failure": "It never warmed the potato.", "suggestion": "Say to heat food in the microwave."},
    {"task_id": "t2", "failure": "The mug stayed cold.", "suggestion": "Heat things with the microwave first."},
    {"task_id": "t3", "failure": "Egg not heated.", "suggestion": "Use the microwave to heat an egg."},
    {"task_id": "t4", "failure": "Bread left on the counter.", "suggestion": "A microwave is where to heat bread."},
]


def test_words_every_critique_uses_are_the_request_not_boilerplate():
    """Issue 24 item 4: all four critiques asked for heat/microwave guidance, and provenance said
    "(no critique of that step names it)"."""
    rule = "- For heat tasks, put the object in the microwave and toggle it."
    linked = provenance._asked_for(rule, HEAT, known="Your task: put things where they belong.")
    assert {c["task_id"] for c in linked} == {"t1", "t2", "t3", "t4"}
    # the words they all share are the domain's (the module has them already): no request
    assert provenance._asked_for(rule, HEAT, known="Heat things in the microwave.") == []
    other = "- For cool tasks, put the object in the fridge."
    assert provenance._asked_for(other, HEAT, known="Your task: put things where they belong.") == []


def test_one_epoch_numbering_on_the_audit_page(tmp_path, toy_config):
    """Issue 24 item 5: module s2.e1 "rewrote initial after epoch 0", critiques "s2 e0", the rule
    "added at s2 epoch 1" on one page. Every label is now the pass it names: s2.e1 is written
    after s2 epoch 0 (from that epoch's critiques) and first runs at s2 epoch 1."""
    from fgo_engine.persistence import queries
    s = Session.create(tmp_path / "e.db", toy_config(subsets=2, epochs=1, model="fgo-sim/null"))
    try:
        assert s.run().status == "done"
        s.store.flush()
        m = next(r for r in s.store.rows("modules", "origin = 'optimize'") if r["epoch"] == 1)
        sub = m["subset_id"]
        a = queries.audit(s.store, m["id"])
        b = provenance.blame(s.store, m["id"])
    finally:
        s.close()
    why = " ".join(a.why)
    assert f"after s{sub} epoch 0" in why and f"first ran at s{sub} epoch 1" in why
    added = [r for r in b.rules if r.origin and r.origin.action == "added" and r.origin.module_id == m["id"]]
    assert added and all(f"after s{sub} epoch 0" in r.summary() for r in added)
    assert a.critiques  # the audit labels them with epoch_label(sub, 0) as well (fgo_tui.widgets.render)
