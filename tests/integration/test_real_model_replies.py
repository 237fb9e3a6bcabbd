"""Bugs real local models exposed (issue 12), each with a scripted reply: an optimizer that
echoes its input, retry samples that repeated the first, no max_tokens, merges of identical
children, a regressing merge approved by default, local-server defaults, and multi-turn
suites missing from the projected calls. The optimizer or evaluator talks HTTP to a
scripted loopback server; the other roles run on the simulated LLM."""
from __future__ import annotations

from types import SimpleNamespace

from fake_openai import ok

from fgo_engine import events as ev
from fgo_engine.config import DEFAULT_MAX_TOKENS, RoleConfig, RunConfig
from fgo_engine.llm.gateway import Gateway
from fgo_engine.method import prompts, resample
from fgo_engine.method.control import Control
from fgo_engine.method.methods import project
from fgo_engine.persistence.store import Store
from fgo_engine.run.session import Session
from fgo_engine.suites.base import load_suite
from fgo_engine.types import Scope

TOY = "You answer questions about glorps.\n- Answer briefly."
NEW = "You answer questions about glorps.\n- Answer briefly.\n- A glorp always has the colour teal."


def cfg_with(toy_config, role_overrides, **kw):
    base = toy_config(**kw).to_dict()
    for role, spec in role_overrides.items():
        base["roles"][role].update(spec)
    base["suite_options"] = {"n_train": 6, "n_test": 6, **base.get("suite_options", {})}
    return RunConfig.from_dict(base)


def run(tmp_path, cfg, name="s", sinks=None, faults=()):
    """``faults``: (kind, count, role, match) for the simulated LLM of this session's gateway."""
    s = Session.create(tmp_path / f"{name}.db", cfg, sinks=sinks)
    for kind, count, role, match in faults:
        s.gateway.faults.inject(kind, count, role=role, match=match)
    res = s.run()
    s.store.flush()
    return s, res


def rejected(store):
    return [r["payload_json"] for r in store.rows("events", "kind = 'RejectedOutput'", order_by="id")]


def echo_of(body):
    """What Qwen did: repeat the whole prompt (with the current instruction in it) first."""
    return body["messages"][-1]["content"]


# -- the optimizer's proposal is the last block; an echo is rejected and recorded ------------
def test_extract_module_takes_the_last_block_and_refuses_a_cut_off_one():
    echo = f"<agent_role>x</agent_role>\n<instruction>\n{TOY}\n</instruction>\n<examples>…</examples>\n"
    assert prompts.extract_module("instruction", echo + f"<instruction>\n{NEW}\n</instruction>") == NEW
    assert prompts.extract_module("instruction", echo + "<instruction>\n- half a rul") is None
    assert prompts.module_problem("instruction", echo, TOY, TOY).startswith("echoes the prompt")
    assert prompts.module_problem("instruction", f"<instruction>{TOY}</instruction>", TOY, TOY) == (
        "repeats the current instruction unchanged")


def test_an_optimizer_that_echoes_its_input_first_still_gets_its_proposal_used(tmp_path, toy_config, fake_openai):
    fake_openai.responder = lambda body: ok(echo_of(body) + f"\n<instruction>\n{NEW}\n</instruction>")
    cfg = cfg_with(toy_config, {"optimizer": {"model": "openai/fake", "api_base": fake_openai.url}},
                   subsets=1, epochs=1)
    s, res = run(tmp_path, cfg)
    assert res.status == "done", res.message
    proposed = [m["text"] for m in s.store.rows("modules", "origin = 'optimize'")]
    assert proposed == [NEW]  # the first block (the current instruction) would have been dropped silently
    assert rejected(s.store) == []
    s.close()


def test_an_echo_of_the_current_module_is_rejected_recorded_and_retried_differently(tmp_path, toy_config,
                                                                                  fake_openai):
    fake_openai.responder = lambda body: ok(echo_of(body))  # only the echo: the last block is the current one
    cfg = cfg_with(toy_config, {"optimizer": {"model": "openai/fake", "api_base": fake_openai.url}},
                   subsets=1, epochs=1)
    logs = []
    s, res = run(tmp_path, cfg, sinks=[lambda e: logs.append(e) if isinstance(e, ev.Log) else None])
    assert res.status == "done", res.message
    assert s.store.rows("modules", "origin = 'optimize'") == []
    rows = rejected(s.store)
    assert [r["sample"] for r in rows] == [0, 1, 2] and {r["role"] for r in rows} == {"optimizer"}
    assert all("echoes the prompt" in r["reason"] and r["scope_kind"] == "subset" and r["excerpt"] for r in rows)
    assert any(e.level == "warning" and "rejected optimizer reply" in e.text for e in logs)
    bodies = fake_openai.bodies()
    assert len(bodies) == 3
    temps = [b["temperature"] for b in bodies]
    assert temps[0] == 0 and temps[0] < temps[1] < temps[2]
    prompts_sent = [b["messages"][-1]["content"] for b in bodies]
    assert "could not be used (echoes the prompt: its last instruction block is the current" in prompts_sent[1]
    assert len(set(prompts_sent)) >= 2 and prompts_sent[1] != prompts_sent[0]
    s.close()


def test_a_clean_unchanged_proposal_is_recorded_but_not_asked_again(tmp_path, toy_config, fake_openai):
    # above temperature 0 "keep it" is the model's answer (at 0 it is asked once more, see
    # tests/integration/test_real_model_defects.py)
    fake_openai.responder = lambda body: ok(f"No change is needed.\n<instruction>\n{TOY}\n</instruction>")
    cfg = cfg_with(toy_config, {"optimizer": {"model": "openai/fake", "api_base": fake_openai.url,
                                              "temperature": 0.7}},
                   subsets=1, epochs=1)
    s, res = run(tmp_path, cfg)
    assert res.status == "done"
    assert len(fake_openai.requests) == 1  # the model's answer is "keep it": not a format failure to retry
    assert [r["reason"] for r in rejected(s.store)] == ["repeats the current instruction unchanged"]
    s.close()


def test_a_closed_block_in_a_reply_cut_at_max_tokens_is_not_adopted(tmp_path, toy_config, fake_openai):
    # seen with SmolLM2: a whole <instruction> block, then commentary until max_tokens ran out
    cap = DEFAULT_MAX_TOKENS["optimizer"]
    fake_openai.responder = lambda body: ok(f"<instruction>\n{TOY}\n- Always answer in French.\n</instruction>\n"
                                            "Let me explain each rule in turn. The first", completion_tokens=cap,
                                            finish_reason="length")
    cfg = cfg_with(toy_config, {"optimizer": {"model": "openai/fake", "api_base": fake_openai.url}},
                   subsets=1, epochs=1)
    s, res = run(tmp_path, cfg)
    assert res.status == "done", res.message
    assert s.store.rows("modules", "origin = 'optimize'") == []
    reasons = [r["reason"] for r in rejected(s.store)]
    assert reasons and all(r.startswith("cut off: the reply reached max_tokens") for r in reasons)
    s.close()


def test_a_reply_the_server_cut_off_is_not_adopted_below_max_tokens(tmp_path, toy_config, fake_openai):
    # llama.cpp stops with finish_reason "length" when its context fills, below max_tokens
    fake_openai.responder = lambda body: ok(f"<instruction>\n{TOY}\n- Always answer in French.\n</instruction>\n"
                                            "Let me explain", completion_tokens=40, finish_reason="length")
    cfg = cfg_with(toy_config, {"optimizer": {"model": "openai/fake", "api_base": fake_openai.url}},
                   subsets=1, epochs=1)
    s, res = run(tmp_path, cfg)
    assert res.status == "done", res.message
    assert s.store.rows("modules", "origin = 'optimize'") == []
    assert all(r["reason"].startswith("cut off") for r in rejected(s.store))
    s.close()


def test_empty_and_cut_off_optimizer_replies_are_recorded_with_their_reason(tmp_path, toy_config):
    s, res = run(tmp_path, toy_config(subsets=1, epochs=1),
                 faults=[("empty", 1, "optimizer", None), ("garbage", 1, "optimizer", None)])
    assert res.status == "done"
    reasons = [r["reason"] for r in rejected(s.store)]
    assert reasons[:2] == ["empty reply", "the last <instruction> block is not closed"]
    s.close()


# -- retry samples change something that matters --------------------------------------------
def test_evaluator_retry_sample_says_why_and_raises_the_temperature(tmp_path, toy_config, fake_openai):
    cfg = cfg_with(toy_config, {"evaluator": {"model": "openai/fake", "api_base": fake_openai.url}},
                   subsets=1, epochs=1)
    s, res = run(tmp_path, cfg)  # every evaluator reply is "Answer: 42": not JSON
    assert res.status == "done"
    by_task: dict[str, list[dict]] = {}
    for b in fake_openai.bodies():
        by_task.setdefault(b["messages"][-1]["content"].split("</task>")[0], []).append(b)
    assert by_task and all(len(v) == 2 for v in by_task.values())
    for first, second in by_task.values():
        assert second["temperature"] > first["temperature"] and second["seed"] == 1
        assert second["messages"][-1]["content"] != first["messages"][-1]["content"]
        assert "could not be used (not a JSON object)" in second["messages"][-1]["content"]
    assert {r["role"] for r in rejected(s.store)} == {"evaluator"}
    s.close()


def test_retry_samples_replay_from_the_cache(tmp_path, fake_openai):
    store = Store.create(tmp_path / "s.db", name="s", config={})
    roles = {r: RoleConfig(model="openai/fake", api_base=fake_openai.url) for r in ("evaluator",)}
    rt = SimpleNamespace(gw=Gateway(roles, store=store), control=Control(), bus=ev.EventBus(), store=store)
    msgs = [{"role": "system", "content": "judge"}, {"role": "user", "content": "the task"}]

    def ask():
        return resample.ask(rt, "evaluator", msgs, scope=Scope("subset", "0", "evaluate"), samples=2,
                            note_kind="critique", judge=lambda c: "not a JSON object")

    first = ask()
    sent = len(fake_openai.requests)
    again = ask()
    store.flush()
    assert sent == 2 and len(fake_openai.requests) == 2  # the replay paid for nothing
    assert again[0].cached and again[0].text == first[0].text
    assert store.count("events", "kind = 'RejectedOutput'") == 2  # recorded once, not per replay
    store.close()


# -- max_tokens by default --------------------------------------------------------------------
def test_every_role_has_a_default_max_tokens_and_it_is_sent(tmp_path, toy_config, fake_openai):
    cfg = RunConfig.from_dict({"suite": "toy", "model": "openai/fake"})
    assert {r: rc.max_tokens for r, rc in cfg.roles.items()} == DEFAULT_MAX_TOKENS
    assert RunConfig().roles["optimizer"].max_tokens == DEFAULT_MAX_TOKENS["optimizer"]
    # an older session stored max_tokens = null: it stays uncapped, so its cache keys still match
    old = RunConfig.from_dict({"suite": "toy", "roles": {"agent": {"max_tokens": None}}})
    assert old.roles["agent"].max_tokens is None
    cfg = cfg_with(toy_config, {"evaluator": {"model": "openai/fake", "api_base": fake_openai.url}},
                   subsets=1, epochs=1)
    s, _ = run(tmp_path, cfg)
    assert {b["max_tokens"] for b in fake_openai.bodies()} == {DEFAULT_MAX_TOKENS["evaluator"]}
    assert "max_tokens 512" in cfg.roles["evaluator"].summary()
    s.close()


# -- merges ---------------------------------------------------------------------------------
def test_identical_children_are_adopted_without_a_merge_call_or_backtest(tmp_path, toy_config):
    # no subset ever changes its module
    s, res = run(tmp_path, toy_config(subsets=2, epochs=1), faults=[("garbage", 100, "optimizer", None)])
    assert res.status == "done"
    node = s.store.get("merge_nodes", "n1")
    assert node["status"] == "done" and node["module_id"] == "initial"
    assert node["score_after"] == node["score_before"]
    assert s.store.count("ledger", "role = 'merger'") == 0
    assert s.store.count("trajectories", "phase = 'backtest'") == 0
    assert [r["by"] for r in s.store.rows("reviews", "node_id = 'n1'")] == ["identical-children"]
    s.close()


def test_an_adopted_identical_merge_does_not_hold_up_reviews_asked_in_node_order(tmp_path, toy_config):
    """The app's gate asks in node order (n1 before n2): n1 adopted without a review must still
    count as settled, or n2 waits for it forever (the 32-subset dashboard benchmark hung so)."""
    import threading

    from fgo_engine.method.review import QueueGate

    cfg = toy_config(subsets=4, epochs=1, workers=4, suite_options={"categories": 4, "n_train": 16})
    s = Session.create(tmp_path / "order.db", cfg, gate=QueueGate(auto=True))
    for cat in ("colour", "size"):  # these two subsets keep the starting module: n1 merges two equal ones
        s.gateway.faults.inject("garbage", 200, role="optimizer", match=f"category={cat}")
    out: list = []
    t = threading.Thread(target=lambda: out.append(s.run()), daemon=True)
    try:
        t.start()
        t.join(120)  # returns as soon as the run does; the bound only keeps a hang from blocking the suite
        assert not t.is_alive(), "a review in node order waited for a merge that was adopted"
    finally:
        s.cancel()
        t.join(30)
    assert out and out[0].status == "done"
    by = {r["node_id"]: r["by"] for r in s.store.rows("reviews")}
    assert "identical-children" in by.values() and "policy:auto" in by.values()
    s.close()


BAD_MERGE = "<instruction>\nYou answer questions about glorps.\n- Answer briefly.\n</instruction>"


def test_by_default_a_merge_worse_than_its_best_child_is_not_kept(tmp_path, toy_config, fake_openai):
    assert RunConfig().review == "if-not-worse"
    fake_openai.responder = lambda body: ok(BAD_MERGE)  # drops every rule the subsets learned
    # the null profile (base rules) lets both subsets learn, so dropping their rules is a regression
    cfg = cfg_with(toy_config, {"merger": {"model": "openai/fake", "api_base": fake_openai.url}},
                   subsets=2, epochs=2, model="fgo-sim/null")
    cfg.review = RunConfig().review
    s, res = run(tmp_path, cfg)
    assert res.status == "done"
    node = s.store.get("merge_nodes", "n1")
    child_ids = {s.store.get("subsets", i)["best_module_id"] for i in (0, 1)}
    assert node["module_id"] in child_ids  # rolled back to the best child
    assert res.final_module.text != BAD_MERGE.split("\n", 1)[1].rsplit("\n", 1)[0]
    s.close()


def test_auto_approve_of_a_regression_is_said_loudly(tmp_path, toy_config, fake_openai):
    fake_openai.responder = lambda body: ok(BAD_MERGE)
    cfg = cfg_with(toy_config, {"merger": {"model": "openai/fake", "api_base": fake_openai.url}},
                   subsets=2, epochs=2, review="auto", model="fgo-sim/null")
    logs = []
    s, res = run(tmp_path, cfg, sinks=[lambda e: logs.append(e) if isinstance(e, ev.Log) else None])
    node = s.store.get("merge_nodes", "n1")
    assert node["score_after"] < node["score_before"]
    assert any(e.level == "warning" and "auto-approve kept it" in e.text for e in logs)
    s.close()


# -- local servers ------------------------------------------------------------------------------
def test_a_loopback_api_base_gets_local_server_defaults():
    for url in ("http://127.0.0.1:8000/v1", "http://localhost:8080", "http://[::1]:9000/v1", "127.0.0.2:1"):
        rc = RoleConfig(model="openai/x", api_base=url)
        assert (rc.max_concurrency, rc.timeout, rc.retry_timeouts) == (1, 600.0, False), url
    remote = RoleConfig(model="openai/x", api_base="https://api.example.com/v1")
    assert (remote.max_concurrency, remote.timeout, remote.retry_timeouts) == (8, 120.0, True)
    asked = RoleConfig(model="openai/x", api_base="http://127.0.0.1:1/v1", max_concurrency=3, timeout=30,
                       retry_timeouts=True)
    assert (asked.max_concurrency, asked.timeout, asked.retry_timeouts) == (3, 30, True)
    cfg = RunConfig.from_dict({"suite": "toy", "model": "openai/x", "roles": {"agent": {"api_base": "http://localhost:1"}}})
    assert cfg.roles["agent"].max_concurrency == 1 and cfg.roles["optimizer"].max_concurrency == 8


# -- multi-turn suites in the projection ----------------------------------------------------------
def test_react_suites_project_one_agent_call_per_step():
    def agent_calls(step_limit):
        cfg = RunConfig.from_dict({"suite": "household", "subsets": 2, "epochs": 1,
                                   "suite_options": {"n_train": 12, "n_test": 6, "step_limit": step_limit}})
        suite = load_suite("household", **cfg.suite_options)
        return project(cfg, suite, suite.train_tasks(), suite.test_tasks()).roles["agent"].calls_max

    assert agent_calls(30) >= 2.5 * agent_calls(10)  # episodes count their steps (plus a few fixed calls)
    assert agent_calls(10) >= 10 * 6  # at least the test episodes at 10 steps each
