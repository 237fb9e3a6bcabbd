"""Defects a real-model bench found (issue 22: Qwen2.5-Coder 0.5B/1.5B on llama.cpp, BBH),
each replayed through the loopback fake server or the scorer: the evaluator copying its
template's placeholder text, new guidance written after ``</instruction>``, an "unchanged"
reply at temperature 0 never asked again, a "cut off" report for a reply that ended
normally, and a trailing "… is False." scored wrong."""
from __future__ import annotations

import json
import re

from fake_openai import ok

from fgo_engine.config import RunConfig
from fgo_engine.method import prompts
from fgo_engine.run.session import Session
from fgo_engine.suites.scoring import FinalAnswerScorer

TOY = "You answer questions about glorps.\n- Answer briefly."
RULE = "- A glorp always has the colour teal."
NEW = f"{TOY}\n{RULE}"
OLD_TEMPLATE_COPY = {"correct": False, "failure": "what went wrong, one sentence",
                     "pattern": "the general mistake behind it",
                     "suggestion": "one guidance sentence to add to the instruction"}


def _cfg(toy_config, role, spec, **kw):
    base = toy_config(subsets=1, epochs=1, **kw).to_dict()
    base["roles"][role].update(spec)
    base["suite_options"] = {"n_train": 6, "n_test": 6}
    return RunConfig.from_dict(base)


def _run(tmp_path, cfg):
    s = Session.create(tmp_path / "s.db", cfg)
    res = s.run()
    s.store.flush()
    return s, res


def _rejected(store):
    return [r["payload_json"] for r in store.rows("events", "kind = 'RejectedOutput'", order_by="id")]


def _retry(body) -> bool:
    return "Note: your previous reply" in body["messages"][-1]["content"]


# -- 1. the evaluator copies its template's values ---------------------------------------
def test_the_evaluator_template_shows_no_values_a_model_can_copy():
    assert not re.search(r'"\w+"\s*:\s*"', prompts.EVALUATOR_SYSTEM)  # no "key": "value" pairs to repeat
    for phrase in OLD_TEMPLATE_COPY.values():
        if isinstance(phrase, str):
            assert phrase not in prompts.EVALUATOR_SYSTEM


def test_a_critique_that_repeats_the_template_is_rejected_and_asked_again(tmp_path, toy_config, fake_openai):
    real = {"correct": False, "failure": "The agent gave the glorp's colour as red.",
            "pattern": "Colour questions about glorps.", "suggestion": "State that a glorp is always teal."}
    fake_openai.responder = lambda body: ok(json.dumps(real if _retry(body) else OLD_TEMPLATE_COPY))
    s, res = _run(tmp_path, _cfg(toy_config, "evaluator", {"model": "openai/fake", "api_base": fake_openai.url}))
    assert res.status == "done", res.message
    crits = s.store.rows("critiques", "correct = 0")
    assert crits, "no failure was critiqued"
    assert {c["suggestion"] for c in crits} == {real["suggestion"]}
    reasons = {r["reason"] for r in _rejected(s.store) if r["role"] == "evaluator"}
    assert reasons == {"failure, pattern, suggestion repeat the reply format's description instead of saying "
                       "what happened in this task"}
    s.close()


def test_a_template_copy_never_becomes_guidance_even_when_the_retry_copies_too():
    crit = prompts.parse_critique("t1", json.dumps(OLD_TEMPLATE_COPY))
    assert not crit.parsed and crit.failure == crit.pattern == crit.suggestion == ""
    ok_crit = prompts.parse_critique("t1", json.dumps({"correct": False, "failure": "x", "pattern": "y",
                                                       "suggestion": "Say teal."}))
    assert ok_crit.parsed and ok_crit.suggestion == "Say teal."


# -- 2. guidance after </instruction> ----------------------------------------------------
def test_guidance_lines_after_the_closing_tag_belong_to_the_instruction(tmp_path, toy_config, fake_openai):
    # the 1.5B optimizer repeated the current block, closed it, then wrote its new rule below
    fake_openai.responder = lambda body: ok(f"<instruction>\n{TOY}\n</instruction>\n{RULE}\n")
    s, res = _run(tmp_path, _cfg(toy_config, "optimizer", {"model": "openai/fake", "api_base": fake_openai.url}))
    assert res.status == "done", res.message
    assert [m["text"] for m in s.store.rows("modules", "origin = 'optimize'")] == [NEW]
    s.close()


def test_text_after_the_closing_tag_that_is_not_guidance_stays_out():
    reply = f"<instruction>\n{NEW}\n</instruction>\nThis adds one rule.\n- not part of it"
    assert prompts.extract_module("instruction", reply) == NEW


# -- 3. "unchanged" at temperature 0 -----------------------------------------------------
def test_an_unchanged_reply_at_temperature_0_is_asked_once_more(tmp_path, toy_config, fake_openai):
    def reply(body):
        if body["temperature"] > 0 and _retry(body):
            return ok(f"<instruction>\n{NEW}\n</instruction>")
        return ok(f"<instruction>\n{TOY}\n</instruction>")

    fake_openai.responder = reply
    s, res = _run(tmp_path, _cfg(toy_config, "optimizer", {"model": "openai/fake", "api_base": fake_openai.url}))
    assert res.status == "done", res.message
    bodies = fake_openai.bodies()
    assert [b["temperature"] > 0 for b in bodies] == [False, True]
    assert "repeated the current instruction unchanged" in bodies[1]["messages"][-1]["content"]
    assert [m["text"] for m in s.store.rows("modules", "origin = 'optimize'")] == [NEW]
    s.close()


def test_an_unchanged_reply_at_temperature_0_is_asked_only_once_more(tmp_path, toy_config, fake_openai):
    fake_openai.responder = lambda body: ok(f"<instruction>\n{TOY}\n</instruction>")
    s, res = _run(tmp_path, _cfg(toy_config, "optimizer", {"model": "openai/fake", "api_base": fake_openai.url}))
    assert res.status == "done", res.message
    assert len(fake_openai.requests) == 2  # then "keep it" is the model's answer
    s.close()


# -- 4. "cut off" for a reply that ended normally ----------------------------------------
def test_an_unclosed_block_in_a_finished_reply_is_not_reported_as_cut_off(tmp_path, toy_config, fake_openai):
    # 272 of 1,024 tokens, finish_reason "stop", after echoing the prompt's examples
    echo = "<examples>\n<example index=\"1\">\n<instruction>\n" + TOY + "\n<task>\nWhat colour?\n</task>\n</example>"
    fake_openai.responder = lambda body: ok(echo, completion_tokens=272, finish_reason="stop")
    s, res = _run(tmp_path, _cfg(toy_config, "optimizer", {"model": "openai/fake", "api_base": fake_openai.url}))
    assert res.status == "done", res.message
    reasons = [r["reason"] for r in _rejected(s.store) if r["role"] == "optimizer"]
    assert reasons and not any("cut off" in r for r in reasons)
    assert all("not closed" in r for r in reasons)
    s.close()


def test_an_unclosed_block_at_max_tokens_says_so(tmp_path, toy_config, fake_openai):
    fake_openai.responder = lambda body: ok(f"<instruction>\n{TOY}\n- half a ru", completion_tokens=4096,
                                            finish_reason="length")
    s, res = _run(tmp_path, _cfg(toy_config, "optimizer", {"model": "openai/fake", "api_base": fake_openai.url}))
    assert res.status == "done", res.message
    reasons = [r["reason"] for r in _rejected(s.store) if r["role"] == "optimizer"]
    assert reasons and all("reached max_tokens" in r for r in reasons)
    s.close()


# -- 5. the scorer and a trailing "… is False." ------------------------------------------
def test_a_line_that_ends_on_its_value_scores_that_value():
    score = FinalAnswerScorer()
    line = "False and not True and False and True is False."
    assert score(line, "False") == 1.0  # 4 of 24 boolean_expressions replies were counted wrong
    assert score(line, "True") == 0.0
    assert score("not ( True ) and ( True ) evaluates to False", "False") == 1.0
    assert score("It is True and False", "True") == 0.0  # no conclusion: naming both is no answer
    assert score("True or False", "False") == 0.0
