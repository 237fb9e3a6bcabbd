"""Cancel is prompt: once it is asked no new LLM call starts (calls waiting for a model slot
never start), and a reply under way from a server is abandoned, visibly."""
from __future__ import annotations

import threading

from fake_openai import trickle

from fgo_engine import events as ev
from fgo_engine.config import ROLES, RoleConfig, RunConfig
from fgo_engine.errors import CancelledError
from fgo_engine.llm.gateway import Gateway
from fgo_engine.run.session import Session
from fgo_engine.types import Scope


def test_no_call_starts_after_cancel(tmp_path):
    roles = {r: {"model": "fgo-sim/medium:latency=0.01", "max_concurrency": 1} for r in ROLES}
    cfg = RunConfig.from_dict({"suite": "toy", "roles": roles, "subsets": 3, "epochs": 2, "threshold": 2,
                               "seed": 0, "workers": 3})
    seen: list[ev.Event] = []
    state: dict = {}
    s = Session.create(tmp_path / "c.db", cfg)

    def sink(e: ev.Event) -> None:
        seen.append(e)
        if isinstance(e, ev.TokensUsed):
            state["calls"] = state.get("calls", 0) + 1
            if state["calls"] == 8:  # three workers: the other two wait for the one slot
                state["under_way"] = s.cancel()
                state["at_cancel"] = state["calls"]

    s.bus.add(sink)
    try:
        res = s.run()
    finally:
        s.close()
    assert res.status == "cancelled", res.message
    assert state["calls"] - state["at_cancel"] <= state["under_way"] <= 1, state
    notes = [e.text for e in seen if isinstance(e, ev.Log) and "cancel asked" in e.text]
    assert len(notes) == 1 and "no new LLM call starts" in notes[0], notes


def test_a_reply_under_way_is_abandoned(fake_openai):
    fake_openai.push(trickle(seconds=60))
    g = Gateway({r: RoleConfig(model="openai/fake", api_base=fake_openai.url) for r in ROLES}, use_cache=False)
    out: dict = {}

    def call() -> None:
        try:
            g.complete("optimizer", [{"role": "user", "content": "hi"}], scope=Scope("subset", "0", "optimize"))
        except CancelledError as exc:
            out["exc"] = exc

    t = threading.Thread(target=call)
    t.start()
    while g.in_flight == 0 and t.is_alive():  # wait for the request to be under way
        t.join(0.01)
    g.abandon()
    t.join(10)  # far below the 60 s the reply would take
    assert not t.is_alive() and isinstance(out.get("exc"), CancelledError)
    assert g.total.calls == 1 and g.by_role["optimizer"].calls == 1  # ledgered, as abandoned
