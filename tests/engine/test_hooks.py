"""Optional hooks of the Suite and ReviewGate protocols have defaults, so the engine calls
them directly; an object written without the base class gets them where the engine takes it."""
from __future__ import annotations

from toy_suite import ToySuite

from fgo_engine.method.review import AutoApprove, GateBase, with_gate_defaults
from fgo_engine.run.session import Session
from fgo_engine.suites.base import SuiteBase, with_suite_defaults
from fgo_engine.types import Module, ReviewDecision


class PlainSuite:
    """A plugin suite written against the required members only."""

    name = "plain"
    module_kind = "instruction"

    def __init__(self):
        self.inner = ToySuite()

    def train_tasks(self):
        return self.inner.train_tasks()

    def test_tasks(self):
        return self.inner.test_tasks()

    def initial_module(self):
        return self.inner.initial_module()

    def describe(self):
        return self.inner.describe()

    def run_agent(self, task, module, llm):
        return self.inner.run_agent(task, module, llm)


class CountingSuite(PlainSuite):
    calls_per_task = 5

    def similarity_text(self, module):
        return module.text.upper()


class PlainGate:
    """A gate written without GateBase: no post_check, no cancel."""

    def review(self, request):
        return ReviewDecision("approve", by="plain")


def test_a_suite_without_hooks_gets_the_defaults():
    s = with_suite_defaults(PlainSuite())
    m = Module("instruction", "- rule")
    assert s.calls_per_task == 1
    assert s.similarity_text(m) == "- rule"
    assert s.validate_module("anything") is None
    assert s.name == "plain" and len(s.train_tasks()) == 24  # the rest is the suite itself
    s.extra = 3
    assert s.inner is not None and s.extra == 3


def test_a_suite_keeps_the_hooks_it_has():
    s = with_suite_defaults(CountingSuite())
    assert s.calls_per_task == 5
    assert s.similarity_text(Module("instruction", "a")) == "A"
    assert s.validate_module("x") is None


def test_a_suite_that_inherits_the_base_is_used_as_it_is():
    toy = ToySuite()
    assert isinstance(toy, SuiteBase)
    assert with_suite_defaults(toy) is toy
    assert with_suite_defaults(with_suite_defaults(PlainSuite())).calls_per_task == 1


def test_gates_get_post_check_and_cancel(tmp_path, toy_config):
    plain = with_gate_defaults(PlainGate())
    assert plain.post_check is False
    plain.cancel()  # nothing to stop
    auto = AutoApprove()
    assert isinstance(auto, GateBase) and with_gate_defaults(auto) is auto

    created = Session.create(tmp_path / "g.db", toy_config(method="vanilla"))
    s = Session(created.store, created.config, suite=PlainSuite(), gate=PlainGate())
    try:
        s.cancel()  # a gate without cancel() and a plugin suite: no AttributeError
        assert s.gate.post_check is False
        assert s.run().status == "cancelled"
    finally:
        s.close()
