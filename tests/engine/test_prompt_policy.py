"""One prompt policy for every method: whole examples, packed by one fixed rule into the
optimizer's budget; what does not fit is dropped the same way and marks the call overflowed."""
from __future__ import annotations

import random

import pytest

from fgo_engine.config import RunConfig
from fgo_engine.llm import tokens
from fgo_engine.method import prompts
from fgo_engine.method.divide import partition
from fgo_engine.method.methods import METHODS
from fgo_engine.suites.base import load_suite
from fgo_engine.types import Critique, Module, Step, Trajectory


def count(msgs):
    return tokens.count_messages(msgs, "fgo-sim/medium")


def batches_of_every_method(train, cfg):
    """The optimizer's batches for each method, as its loop builds them."""
    out = {"fgo": partition(train, cfg.subsets, cfg.partition, cfg.seed)}
    for name in ("all-at-once", "batch-wise", "bootstrapping"):
        out[name] = METHODS[name].batches(cfg, train, random.Random(cfg.seed))
    return out


def examples_for(batch, fail_every=1):
    ex = []
    for i, t in enumerate(batch):
        ok = i % (fail_every + 1) == fail_every
        traj = Trajectory(t.id, [Step("action", "read the document"), Step("answer", t.expected)],
                          t.expected if ok else "WRONG-1", ok, float(ok))
        ex.append((t, traj, Critique(t.id, ok, "f", "p", "s")))
    return ex


@pytest.mark.parametrize("budget", [12_000, 60_000])
def test_every_methods_prompt_follows_the_same_packing_rule(budget):
    suite = load_suite("invoices", seed=0)
    train = suite.train_tasks()
    cfg = RunConfig.from_dict({"suite": "invoices", "subsets": 4, "epochs": 2})
    module = Module("instruction", "Extract the transport reference number.\n- Look in the delivery block.")
    overflowed = {}
    for method, batches in batches_of_every_method(train, cfg).items():
        for batch in batches:
            ex = examples_for(batch)
            msgs, pk = prompts.pack_optimizer_prompt("d", module, ex, ["step 0: 0.1"], [],
                                                     budget=budget, count=count)
            user = msgs[1]["content"]
            assert pk.prompt_tokens == count(msgs) <= budget
            order, n_fail = prompts.example_order(ex)
            kept = [ex[i] for i in order[:pk.kept]]
            # whole tasks and answers, in the fixed order; the dropped ones are absent
            for t, tr, _ in kept:
                assert f"<task>\n{t.input}\n</task>" in user and f"<answer>{tr.answer}</answer>" in user
            for i in order[pk.kept:]:
                assert ex[i][0].input not in user
            assert user.count("<example>") == pk.kept
            # the longest prefix that fits: one more example would not
            if pk.kept < len(order):
                more = prompts.optimizer_messages("d", module, [ex[i] for i in order[:pk.kept + 1]],
                                                  ["step 0: 0.1"], [])
                assert count(more) > budget
            assert pk.overflowed == (pk.kept < n_fail)
            overflowed[method] = overflowed.get(method, False) or pk.overflowed
    if budget == 12_000:  # ~3.3k-token invoices: nobody fits a whole batch
        assert all(overflowed.values())
    else:  # a 12-task subset fits; the whole training set does not
        assert overflowed["all-at-once"] and not overflowed["fgo"]


def test_failures_come_first_round_robin_over_categories_then_two_successes():
    suite = load_suite("invoices", seed=0)
    batch = suite.train_tasks()[:16]
    ex = examples_for(batch, fail_every=1)  # every other task fails
    order, n_fail = prompts.example_order(ex)
    fails = order[:n_fail]
    assert all(not ex[i][2].correct for i in fails) and all(ex[i][2].correct for i in order[n_fail:])
    assert len(order) == n_fail + prompts.SUCCESS_EXAMPLES
    cats = [ex[i][0].category for i in fails]
    first_round = cats[:len(set(cats))]
    assert len(set(first_round)) == len(first_round)  # one of each category before any repeats


def test_long_react_trajectories_are_summarized_by_whole_steps():
    steps = [Step("action" if i % 2 == 0 else "observation", f"step number {i} " + "x" * 50) for i in range(90)]
    text = prompts.render_trajectory(Trajectory("t", steps, "a", False, 0.0))
    lines = text.splitlines()
    assert len(lines) == prompts.SUMMARY_HEAD + 1 + prompts.SUMMARY_TAIL
    assert lines[0] == f"action: {steps[0].text}" and lines[-1] == f"observation: {steps[-1].text}"
    assert "54 steps left out: 27 action, 27 observation" in lines[prompts.SUMMARY_HEAD]
    short = Trajectory("t", steps[:prompts.SUMMARY_STEPS], "a", False, 0.0)
    assert prompts.render_trajectory(short).count("\n") == prompts.SUMMARY_STEPS - 1  # nothing left out
