"""One home for each policy literal (issue 20 item 8): whether a model is simulated, what a
method's run looks like, who decided a merge, whether a gate asks a person."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from fgo_engine import events as ev
from fgo_engine.method.methods import METHODS, method_for
from fgo_engine.method.review import AutoApprove, IfNotWorse, QueueGate, with_gate_defaults
from fgo_engine.run.console_gate import ConsoleGate, InboxGate
from fgo_engine.run.session import Session
from fgo_engine.types import AUTO_APPROVE, IF_NOT_WORSE, OPERATOR, ReviewDecision, is_simulated

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [p for pkg in ("fgo_engine", "fgo_tui", "fgo_cli") for p in (ROOT / pkg).rglob("*.py")]


def test_is_simulated():
    assert is_simulated("fgo-sim/medium") and is_simulated("fgo-sim/small:latency=0.2")
    assert not is_simulated("openai/gpt-4o-mini") and not is_simulated("fgo-simulated") and not is_simulated(None)


@pytest.mark.parametrize("pattern,home", [
    (r"""startswith\(["']fgo-sim/""", "fgo_engine/types.py"),
    (r"""["']policy:(auto|if-not-worse)["']""", "fgo_engine/types.py"),
])
def test_a_policy_literal_is_written_in_one_place(pattern, home):
    found = sorted(str(p.relative_to(ROOT)) for p in SOURCES if re.search(pattern, p.read_text(encoding="utf-8")))
    assert found in ([], [home]), found


def test_the_app_names_no_method_to_decide_what_it_shows():
    app = [p for p in SOURCES if "fgo_tui" in p.parts]
    found = [str(p.relative_to(ROOT)) for p in app if re.search(r"""["']no-merge["']""", p.read_text(encoding="utf-8"))]
    assert found == []


def test_each_method_says_whether_it_has_a_merge_tree():
    assert {n for n, m in METHODS.items() if m.has_merge_tree} == {"fgo", "no-merge"}
    assert method_for("fgo").max_merge_nodes(4) == 3 and method_for("no-merge").max_merge_nodes(4) == 1
    assert method_for("no-merge").max_merge_nodes(1) == 0 and method_for("vanilla").max_merge_nodes(4) == 0


@pytest.mark.parametrize("method,tree,nodes", [("fgo", True, 1), ("batch-wise", False, 0)])
def test_the_run_started_event_carries_the_methods_traits(tmp_path, toy_config, method, tree, nodes):
    seen = []
    s = Session.create(tmp_path / "s.db", toy_config(method=method, subsets=2, epochs=1),
                       sinks=[lambda e: seen.append(e) if isinstance(e, ev.RunStarted) else None])
    try:
        assert s.run().status == "done"
    finally:
        s.close()
    assert [(e.has_merge_tree, e.max_merge_nodes) for e in seen] == [(tree, nodes)]


def test_gates_say_whether_a_person_answers():
    assert QueueGate().asks_person and ConsoleGate(session=None).asks_person and InboxGate("x.db").asks_person
    assert not AutoApprove().asks_person and not IfNotWorse().asks_person

    class PluginGate:  # a gate that does not inherit GateBase gets the default
        def review(self, request):
            return ReviewDecision("approve", by=OPERATOR)

    assert with_gate_defaults(PluginGate()).asks_person is False
    assert AutoApprove().review(None).by == AUTO_APPROVE and IfNotWorse().review(None).by == IF_NOT_WORSE


def test_fgo_environment_variables_are_read_in_one_place(monkeypatch, tmp_path):
    reads = re.compile(r"""(environ\.get|environ\[|getenv)\(?\s*["']FGO_""")
    found = sorted(str(p.relative_to(ROOT)) for p in SOURCES if reads.search(p.read_text(encoding="utf-8")))
    assert found in ([], ["fgo_engine/_env.py"]), found
    from fgo_engine import _env

    monkeypatch.setenv(_env.SESSIONS_DIR, str(tmp_path))
    monkeypatch.setenv(_env.PLUGINS, " a.b, ,c ")
    assert _env.sessions_dir() == tmp_path and _env.plugins() == ["a.b", "c"]
    monkeypatch.delenv(_env.SESSIONS_DIR)
    assert _env.sessions_dir() == Path("sessions")
