"""The simulator's mechanisms, one prediction each, on fixed seeds.

Each test compares a mechanism switched on against the same profile with it off (the
``null`` profile plus one setting), so the test fails when the mechanism does nothing.
"""
from __future__ import annotations

import json
import statistics

from toy_suite import CATEGORIES, GENERAL, ToySuite

from fgo_engine.config import ROLES, RoleConfig
from fgo_engine.llm.gateway import Gateway
from fgo_engine.llm.sim import mechanisms as mech
from fgo_engine.llm.sim.profiles import parse_model
from fgo_engine.method import prompts
from fgo_engine.run.session import Session
from fgo_engine.suites.base import load_suite
from fgo_engine.types import Critique, Module, Scope, Step, Trajectory

SEEDS = range(30)


def gw(model):
    return Gateway({r: RoleConfig(model=model) for r in ROLES}, use_cache=False)


def rules_of(text):
    return Module("instruction", prompts.extract_module("instruction", text) or "").rule_lines()


def example(task, success=False, suggestion=None):
    traj = Trajectory(task.id, [Step("answer", "Answer: " + ("ok" if success else "unknown"))], "x", success,
                      float(success))
    crit = Critique(task.id, success, "f", "p", "" if success else (suggestion or CATEGORIES[task.category].text))
    return task, traj, crit


def optimizer_prompt(examples, module="Head."):
    return prompts.optimizer_messages("d", Module("instruction", module), examples, [], [])


def learned(g, examples, seed=0):
    return rules_of(g.complete("optimizer", optimizer_prompt(examples), sample=seed).text)


def run(tmp_path, toy_config, name, **kw):
    s = Session.create(tmp_path / f"{name}.db", toy_config(**kw))
    try:
        res = s.run()
        assert res.status == "done", res.message
        return res
    finally:
        s.close()


# -- (1) evidence-based learning ---------------------------------------------------------------
def test_evidence_on_one_failing_example_per_item_teaches_nothing_and_two_teach_it():
    tasks = ToySuite(n_train=12).train_tasks()  # two tasks per category
    once = [example(t) for t in tasks[:6]]
    twice = [example(t) for t in tasks]
    null, on = gw("fgo-sim/null"), gw("fgo-sim/null:evidence=2")
    assert len(learned(null, once)) == 6
    assert learned(on, once) == []
    assert len(learned(on, twice)) == 6


def test_evidence_on_critiques_paraphrase_and_critic_error_blames_other_items_at_its_rate():
    suite = ToySuite(n_train=60)
    null, on = gw("fgo-sim/null"), gw("fgo-sim/null:evidence=2,critic_error=0.3")

    def crit(g, task):
        traj = Trajectory(task.id, [Step("answer", "Answer: unknown")], "unknown", False, 0.0)
        return json.loads(g.complete("evaluator", prompts.evaluator_messages(
            "d", Module("instruction", "Answer."), task, traj)).text)

    tasks = suite.train_tasks()
    assert all(crit(null, t)["suggestion"] == CATEGORIES[t.category].text for t in tasks)
    blamed = [mech.item_named(crit(on, t)["suggestion"], list(CATEGORIES.values())) for t in tasks]
    assert all(crit(on, t)["suggestion"] != CATEGORIES[t.category].text for t in tasks)  # a paraphrase
    wrong = sum(b is None or b.scope != t.category for b, t in zip(blamed, tasks)) / len(tasks)
    assert 0.15 <= wrong <= 0.45


# -- (2) lost in the middle --------------------------------------------------------------------
def _noticed_at(g, slot):
    """How often one failing example, at ``slot`` among 13 examples, is learned from."""
    tasks = ToySuite(n_train=60).train_tasks()
    target = tasks[0]
    fillers = [example(t, success=True) for t in tasks[1:13]]
    hits = 0
    for seed in SEEDS:
        exs = fillers[:slot] + [example(target)] + fillers[slot:]
        hits += any("teal" in r for r in learned(g, exs, seed))
    return hits / len(SEEDS)


def test_lost_in_the_middle_on_an_example_in_the_middle_is_noticed_less_than_at_either_end():
    null, on = gw("fgo-sim/null"), gw("fgo-sim/null:middle=0.8")
    assert _noticed_at(null, 0) == _noticed_at(null, 6) == 1.0
    first, middle, last = _noticed_at(on, 0), _noticed_at(on, 6), _noticed_at(on, 12)
    assert middle < 0.5 < min(first, last)


def test_lost_in_the_middle_on_all_at_once_train_score_drops_vs_null(tmp_path, toy_config):
    # The issue also predicts that FGO's score drops less. Measured here (this setup, written
    # before the run): all-at-once −5.6 points, FGO −16.7 (one step per subset, while
    # all-at-once's long prompt holds six failing examples per rule), so that half is not
    # asserted; see the mechanism table in docs/simulator.md.
    off, on = "fgo-sim/null", "fgo-sim/null:middle=0.9,attention=600"
    kw = dict(subsets=6, epochs=1, suite_options={"n_train": 36, "n_test": 6})
    base = run(tmp_path, toy_config, "aao-off", method="all-at-once", model=off, **kw).train_score
    hit = run(tmp_path, toy_config, "aao-on", method="all-at-once", model=on, **kw).train_score
    assert hit < base


# -- (3) hard window ---------------------------------------------------------------------------
def test_hard_window_on_all_at_once_overflows_while_fgo_subsets_fit(tmp_path, toy_config):
    kw = dict(subsets=6, epochs=1, suite_options={"n_train": 40, "n_test": 6})
    assert not run(tmp_path, toy_config, "aao-off", method="all-at-once", model="fgo-sim/null", **kw).overflowed
    assert run(tmp_path, toy_config, "aao-on", method="all-at-once", model="fgo-sim/null:window=1500",
               **kw).overflowed
    assert not run(tmp_path, toy_config, "fgo-on", method="fgo", model="fgo-sim/null:window=1500", **kw).overflowed


# -- (4) conflicting, category-scoped rules ----------------------------------------------------
def _success(g, module_text, tasks, samples=4):
    suite = ToySuite()
    wins = sum(suite.run_agent(t, Module("instruction", module_text), g.bind("agent", scope=Scope(), sample=s)).success
               for t in tasks for s in range(samples))
    return wins / (len(tasks) * samples)


def test_conflict_on_a_general_rule_misleads_other_categories_and_a_scoped_one_does_not():
    tasks = ToySuite(n_train=60).train_tasks()
    scoped = "Head.\n" + "\n".join(f"- {k.text}" for k in CATEGORIES.values())
    general = "Head.\n" + "\n".join(f"- {text}" for _, text in GENERAL.values())
    null, on = gw("fgo-sim/null"), gw("fgo-sim/null:conflict=0.5")
    assert abs(_success(null, scoped, tasks) - _success(null, general, tasks)) < 0.05
    assert _success(on, scoped, tasks) > _success(on, general, tasks) + 0.4


def test_conflict_on_a_mixed_batch_yields_general_rules_and_a_one_category_batch_scoped_ones():
    tasks = ToySuite(n_train=24).train_tasks()
    g = gw("fgo-sim/null:conflict=0.5,generalize=1")
    mixed = learned(g, [example(t) for t in tasks[:6]])
    colour = learned(g, [example(t) for t in tasks if t.category == "colour"])
    assert len(mixed) == 6 and all(r in [text for _, text in GENERAL.values()] for r in mixed)
    assert colour == [CATEGORIES["colour"].text]


def test_conflict_on_random_partition_scores_below_category_partition(tmp_path, toy_config):
    def score(model, how):
        return statistics.fmean(
            run(tmp_path, toy_config, f"{how}-{seed}-{model[-3:]}", method="fgo", model=model, partition=how,
                subsets=6, epochs=2, seed=seed, suite_options={"n_train": 36, "n_test": 36}).test_score
            for seed in range(2))

    on = "fgo-sim/null:conflict=0.5,generalize=0.8"
    assert score(on, "random") < score(on, "category") - 0.05
    off = "fgo-sim/null"
    assert abs(score(off, "random") - score(off, "category")) <= 0.05


# -- (5) instruction capacity ------------------------------------------------------------------
def test_capacity_on_many_rules_make_the_agent_follow_each_less_reliably():
    tasks = ToySuite(n_train=60).train_tasks()
    filler = "\n".join(f"- Note number {i}: stay polite." for i in range(24))
    module = "Head.\n" + "\n".join(f"- {k.text}" for k in CATEGORIES.values()) + "\n" + filler
    null, on = gw("fgo-sim/null"), gw("fgo-sim/null:capacity=10")
    assert _success(null, module, tasks) > 0.9
    assert _success(on, module, tasks) < 0.5


def test_max_new_on_one_optimizer_call_adds_at_most_that_many_rules():
    tasks = ToySuite(n_train=12).train_tasks()
    exs = [example(t) for t in tasks]
    assert len(learned(gw("fgo-sim/null"), exs)) == 6
    assert len(learned(gw("fgo-sim/null:max_new=2"), exs)) == 2


# -- (6) merge loss ---------------------------------------------------------------------------
def test_merge_loss_on_merging_more_modules_in_one_call_keeps_fewer_rules():
    rules = [f"Rule number {i} about glorp topic {i}." for i in range(48)]

    def kept(model, n_modules):
        g = gw(model)
        per = len(rules) // n_modules
        mods = [(Module("instruction", "Head.\n" + "\n".join(f"- {r}" for r in rules[i * per:(i + 1) * per])),
                 0.5, 4) for i in range(n_modules)]
        out = [len(rules_of(g.complete("merger", prompts.merger_messages("d", "instruction", mods), sample=s).text))
               for s in range(4)]
        return sum(out) / (4 * len(rules))

    assert kept("fgo-sim/null", 8) == 1.0
    assert kept("fgo-sim/null:merge_loss=0.1", 2) == 1.0
    assert kept("fgo-sim/null:merge_loss=0.1", 8) < 0.6


def test_merger_resolves_two_statements_of_one_rule_by_score_only_when_it_sees_the_scores():
    g = gw("fgo-sim/null")
    scoped, general = CATEGORIES["colour"].text, GENERAL["colour"][1]
    mods = [(Module("instruction", f"Head.\n- {general}"), 0.4, 4), (Module("instruction", f"Head.\n- {scoped}"), 0.9, 4)]
    with_scores = prompts.merger_messages("d", "instruction", mods)
    blind = [dict(m) for m in with_scores]
    blind[-1]["content"] = blind[-1]["content"].replace(' score="0.400"', "").replace(' score="0.900"', "")

    def picks(msgs):
        return {tuple(rules_of(g.complete("merger", msgs, sample=s).text)) for s in SEEDS}

    assert picks(with_scores) == {(scoped,)}
    assert picks(blind) == {(scoped,), (general,)}


# -- (7) knowledge space -------------------------------------------------------------------------
def test_fine_space_on_household_and_invoices_need_many_more_items_some_rare():
    from fgo_engine.llm.sim.provider import _view
    from fgo_engine.llm.sim.skills import find_skill

    def needed(model, tasks, skill):
        """How many training tasks need each item, as the simulated agent sees them."""
        counts: dict[str, int] = {}
        for t in tasks:
            for k in _view(parse_model(model), skill, "", t.input)[1]:
                counts[k.key] = counts.get(k.key, 0) + 1
        return counts

    for name, base_max, fine_min in (("household", 14, 30), ("invoices", 14, 18)):
        tasks = load_suite(name).train_tasks()
        skill = find_skill(tasks[0].input)
        off, on = needed("fgo-sim/null", tasks, skill), needed("fgo-sim/null:space=1", tasks, skill)
        assert len(off) <= base_max and len(skill.space(False)) <= base_max
        assert len(skill.space(True)) >= fine_min and len(on) >= 2 * len(off) - 4, (len(on), len(off))
        assert set(on) <= {k.key for k in skill.space(True)}
        assert sum(1 for c in on.values() if c <= 2) >= 3, on  # rare items: seen in at most two tasks


# -- the null profile --------------------------------------------------------------------------
def test_null_profile_switches_every_mechanism_off_and_the_methods_tie(tmp_path, toy_config):
    p = parse_model("fgo-sim/null")
    assert (p.attention, p.middle, p.evidence, p.critic_error, p.conflict, p.capacity, p.max_new,
            p.merge_loss, p.space) == (0, 0.0, 0, 0.0, 0.0, 0, 0, 0.0, 0)
    scores = {m: run(tmp_path, toy_config, m, method=m, model="fgo-sim/null", subsets=4, epochs=2,
                     suite_options={"n_train": 24, "n_test": 48}).test_score
              for m in ("all-at-once", "batch-wise", "bootstrapping", "fgo")}
    assert max(scores.values()) - min(scores.values()) <= 0.1, scores


# -- not a mechanism: an optimizer that learned nothing still rewrites -------------------------
def test_reword_on_a_step_that_learns_nothing_returns_new_text_with_the_same_rules():
    tasks = ToySuite(n_train=12).train_tasks()
    exs = [example(t, success=True) for t in tasks]  # nothing failed: nothing to learn
    module = "Head.\n" + "\n".join(f"- {k.text}" for k in list(CATEGORIES.values())[:3])

    def reply(model, mod):
        text = gw(model).complete("optimizer", optimizer_prompt(exs, mod), sample=0).text
        return prompts.extract_module("instruction", text) or ""

    assert reply("fgo-sim/null", module) == module
    for mod in (module, "Head."):
        new = reply("fgo-sim/null:reword=1", mod)
        assert new != mod
        assert sorted(rules_of(new)) == sorted(rules_of(mod))


def test_reword_on_all_at_once_pays_for_steps_the_cache_served_before(tmp_path, toy_config):
    def explore_spent(model):
        res = run(tmp_path, toy_config, "reword" if "reword" in model else "plain", method="all-at-once",
                  model=model, subsets=3, epochs=4, suite_options={"n_train": 12, "n_test": 12})
        return res.by_phase["explore"]["prompt_tokens"]

    off, on = explore_spent("fgo-sim/null"), explore_spent("fgo-sim/null:reword=1")
    assert on > 3 * off, (on, off)
