"""The simulated LLM's rules: coverage, critiques, attention, window, merge loss, determinism."""
from __future__ import annotations

import json

import pytest
from toy_suite import CATEGORIES, ToySuite

from fgo_engine.config import ROLES, RoleConfig
from fgo_engine.errors import ConfigError, ContextOverflowError
from fgo_engine.llm.gateway import Gateway, get_litellm
from fgo_engine.llm.sim.profiles import parse_model
from fgo_engine.method import prompts
from fgo_engine.types import Critique, Module, Step, Trajectory


def gw(model="fgo-sim/medium"):
    return Gateway({r: RoleConfig(model=model) for r in ROLES}, use_cache=False)


def success_rate(g, module, tasks, samples=1):
    suite = ToySuite()
    wins = 0
    for t in tasks:
        for s in range(samples):
            wins += suite.run_agent(t, module, g.bind("agent", scope=__import__("fgo_engine.llm.gateway", fromlist=["Scope"]).Scope(), sample=s)).success
    return wins / (len(tasks) * samples)


def test_agent_succeeds_when_the_module_covers_the_knowledge():
    g = gw()
    tasks = ToySuite(n_train=60).train_tasks()
    bare = Module("instruction", "You answer questions about glorps.")
    full = Module("instruction", "You answer questions.\n" + "\n".join(f"- {k.text}" for k in CATEGORIES.values()))
    lo, hi = success_rate(g, bare, tasks), success_rate(g, full, tasks)
    prof = parse_model("fgo-sim/medium")
    assert hi >= 1 - 3 * prof.noise - 0.05
    assert lo <= prof.guess + 0.1
    assert hi - lo > 0.7


def test_profiles_parse_and_reject_unknown():
    p = parse_model("fgo-sim/small:latency=0.2,noise=0.1")
    assert p.latency == 0.2 and p.noise == 0.1 and p.window == parse_model("fgo-sim/small").window
    with pytest.raises(ConfigError):
        parse_model("fgo-sim/huge")
    with pytest.raises(ConfigError):
        parse_model("fgo-sim/small:bogus=1")


def _eval(g, module_text, task, success):
    traj = Trajectory(task.id, [Step("answer", "Answer: unknown")], "unknown", success, float(success))
    comp = g.complete("evaluator", prompts.evaluator_messages("d", Module("instruction", module_text), task, traj))
    return json.loads(comp.text)


def test_evaluator_names_the_missing_knowledge():
    g = gw("fgo-sim/null")  # the null profile: the evaluator quotes the canonical rule
    task = ToySuite().train_tasks()[0]
    crit = _eval(g, "Answer questions.", task, False)
    assert crit["correct"] is False
    assert crit["suggestion"] == CATEGORIES[task.category].text
    assert _eval(g, "Answer questions.", task, True)["correct"] is True


def _optimizer_prompt(n_examples, filler=0):
    suite = ToySuite(n_train=max(6, n_examples))
    tasks = suite.train_tasks()[:n_examples]
    ex = []
    for t in tasks:
        traj = Trajectory(t.id, [Step("answer", "x " * filler)], "x", False, 0.0)
        ex.append((t, traj, Critique(t.id, False, "f", "p", CATEGORIES[t.category].text)))
    return prompts.optimizer_messages("d", Module("instruction", "Head."), ex, [], [])


def _noticed(text):
    return len(Module("instruction", prompts.extract_module("instruction", text)).rule_lines())


def test_optimizer_turns_critiques_into_guidance():
    g = gw("fgo-sim/null")  # every critique read is copied, as in the null profile
    comp = g.complete("optimizer", _optimizer_prompt(6))
    new = prompts.extract_module("instruction", comp.text)
    assert new is not None
    assert sorted(Module("instruction", new).rule_lines()) == sorted(k.text for k in CATEGORIES.values())


def test_optimizer_attends_to_less_of_a_long_prompt():
    g = gw("fgo-sim/null:attention=2000")
    short_total, long_total = 0, 0
    for seed in range(6):
        short_total += _noticed(g.complete("optimizer", _optimizer_prompt(6), sample=seed).text)
        long_total += _noticed(g.complete("optimizer", _optimizer_prompt(6, filler=2000), sample=seed).text)
    assert short_total == 36
    assert long_total < short_total * 0.6


def test_optimizer_past_its_window_raises_litellm_context_error():
    litellm = get_litellm()
    with pytest.raises(litellm.ContextWindowExceededError):
        litellm.completion(model="fgo-sim/small:window=500", messages=_optimizer_prompt(6, filler=400))
    with pytest.raises(ContextOverflowError):  # the gateway's typed error
        gw("fgo-sim/small:window=500").complete("optimizer", _optimizer_prompt(6, filler=400))


def test_merger_loses_more_guidance_when_merging_more_modules_at_once():
    g = gw("fgo-sim/large")
    rules = [f"Rule number {i} about glorp topic {i}." for i in range(48)]

    def kept(n_modules):
        per = len(rules) // n_modules
        mods = [(Module("instruction", "Head.\n" + "\n".join(f"- {r}" for r in rules[i * per:(i + 1) * per])), 0.5, 4)
                for i in range(n_modules)]
        total = 0
        for s in range(4):
            out = g.complete("merger", prompts.merger_messages("d", "instruction", mods), sample=s).text
            total += len(Module("instruction", prompts.extract_module("instruction", out)).rule_lines())
        return total / (4 * len(rules))

    two, eight = kept(2), kept(8)
    assert two == 1.0
    assert eight < 0.8


def test_deterministic_for_the_same_prompt_and_seed():
    g = gw()
    task = ToySuite().train_tasks()[3]
    m = [{"role": "system", "content": "Answer."}, {"role": "user", "content": task.input}]
    outs = {g.complete("agent", m, sample=s).text for s in range(40)}
    again = {g.complete("agent", m, sample=s).text for s in range(40)}
    assert outs == again
    assert len(outs) == 2  # the 'lucky guess' noise shows up across samples


def test_malformed_output_fault_is_not_a_module():
    g = gw()
    g.faults.inject("garbage", 1, role="optimizer")
    text = g.complete("optimizer", _optimizer_prompt(2)).text
    assert prompts.extract_module("instruction", text) is None
    assert prompts.extract_module("instruction", g.complete("optimizer", _optimizer_prompt(2)).text)
