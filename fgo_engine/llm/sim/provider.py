"""``fgo-sim``: a deterministic litellm custom provider — a test bed, not a model.

It reads only the messages it is sent and tells the roles apart by the blocks the
engine's prompts use: ``<modules>`` → merger, ``<examples>`` → optimizer,
``<trajectory>`` + ``<expected>`` → evaluator, anything else → agent. Each role applies
the mechanisms of ``fgo_engine.llm.sim.mechanisms`` (one profile setting each, null = off):

* agent: competent on a task when the module, as it applies to the task's category
  (rules scoped to other categories drop out), covers every needed item; past its
  ``capacity`` it follows each rule only capacity / rules of the time; an unscoped rule
  of another category misleads it with probability ``conflict``; slips with ``noise``,
  lucky with ``guess``;
* evaluator: names the first missing item (the wrong one with ``critic_error``, vague
  with ``critic_noise``), quoting the canonical rule in the null profile and
  paraphrasing it when ``evidence`` is on; names a misleading general rule;
* optimizer: reads the ``<example>`` blocks in order, notices each with a U-shaped
  probability in its position that falls with the prompt's length, learns an item once
  ``evidence`` noticed failing examples point at it (at most ``max_new`` per call),
  states a category's rule with its scope when the batch is that category alone and
  generally with probability ``generalize`` otherwise; drops a rule with ``drift``;
  when it learned nothing, still rewrites the text (same meaning) with ``reword``;
  raises ContextWindowExceededError past ``window``;
* merger: unions the modules' rules, resolving two statements of one item by score
  when the scores are shown, dropping a share ``merge_loss`` per module beyond two and
  reading less of a long prompt.

All randomness is seeded from the profile seed, the call's ``seed`` and the prompt.
"""
from __future__ import annotations

import hashlib
import json
import logging
import random
import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fgo_engine.llm import tokens
from fgo_engine.llm.blocks import attrs, block, blocks
from fgo_engine.llm.sim import faults
from fgo_engine.llm.sim import mechanisms as mech
from fgo_engine.llm.sim.profiles import SimProfile, parse_model
from fgo_engine.llm.sim.skills import SimSkill, find_skill
from fgo_engine.types import Knowledge, normalize_space

log = logging.getLogger("fgo.llm.sim")

VAGUE = [
    "Double-check the final answer before replying.",
    "Read the whole task carefully before acting.",
    "Be systematic and avoid repeating failed steps.",
]


def _rng(profile: SimProfile, seed: Any, *texts: str) -> random.Random:
    h = hashlib.sha256()
    h.update(f"{profile.seed}|{seed}|".encode())
    for t in texts:
        h.update(t.encode("utf-8", "replace"))
        h.update(b"\x00")
    return random.Random(int.from_bytes(h.digest()[:8], "big"))


def _content(m: dict[str, Any]) -> str:
    c = m.get("content")
    if isinstance(c, list):
        return "\n".join(p.get("text", "") for p in c if isinstance(p, dict))
    return c or ""


def role_of(messages: list[dict[str, Any]]) -> str:
    users = [m for m in messages if m.get("role") == "user"]
    if len(users) == 1 and len(messages) <= 2:
        u = _content(users[0])
        if "<modules>" in u:
            return "merger"
        if "<examples>" in u:
            return "optimizer"
        if "<trajectory>" in u and "<expected>" in u:
            return "evaluator"
    return "agent"


# -- roles ------------------------------------------------------------------------------
def _view(profile: SimProfile, skill: SimSkill, module_text: str,
          task: str) -> tuple[str | None, list[Knowledge], list[Knowledge]]:
    """(category, needed items, missing items) of one task under one module."""
    cat = skill.category(task)
    needs = skill.needs(task)
    if profile.space:
        needs = skill.refine(task, needs)
    visible = mech.visible_module(module_text, skill, cat)
    return cat, needs, [k for k in needs if not skill.covered(visible, k)]


def agent_reply(profile: SimProfile, messages: list[dict[str, Any]], seed: Any,
                tools: list[dict[str, Any]] | None = None) -> str | dict[str, Any]:
    module = "\n".join(_content(m) for m in messages if m.get("role") == "system")
    system = module
    if tools:  # a toolbox reaches the model as function schemas; coverage may look at them
        system += "\n<tools>\n" + json.dumps(tools, ensure_ascii=False, sort_keys=True) + "\n</tools>"
    first_user = next((_content(m) for m in messages if m.get("role") == "user"), "")
    skill = find_skill(first_user)
    rng = _rng(profile, seed, "agent", system, first_user)
    if skill is None:
        return "I could not work this out. Answer: unknown"
    cat, needs, missing = _view(profile, skill, system, first_user)
    roll = rng.random()
    # (5) past its capacity the agent follows each rule it has only capacity / rules of the time
    p_follow = mech.follow_prob(profile, mech.rule_count(module, tools))
    if p_follow < 1:
        missing = missing + [k for k in needs if k not in missing and rng.random() >= p_follow]
    # (4) an unscoped rule of another category misleads now and then
    misled = [k for k, _ in mech.misleading(profile, system, skill, cat, skill.space(bool(profile.space)))
              if rng.random() < profile.conflict]
    competent = roll >= profile.noise if not (missing or misled) else roll < profile.guess
    return skill.act(messages, first_user, competent=competent,
                     missing=missing or (needs[:1] if misled else []), rng=rng)


def _vague(rng: random.Random, pattern: str) -> str:
    return json.dumps({"correct": False, "failure": "The agent did not reach the expected result.",
                       "pattern": pattern, "suggestion": rng.choice(VAGUE)})


def evaluator_reply(profile: SimProfile, prompt: str, seed: Any) -> str:
    task = block(prompt, "task") or ""
    module = block(prompt, "instruction") or block(prompt, "toolbox") or ""
    outcome = (block(prompt, "outcome") or "").strip()
    rng = _rng(profile, seed, "evaluator", prompt)
    if outcome.startswith("success"):
        return json.dumps({"correct": True, "failure": "", "pattern": "", "suggestion": ""})
    skill = find_skill(task)
    if skill is None:
        return _vague(rng, "Unclear from this trajectory.")
    space = skill.space(bool(profile.space))
    cat, _, missing = _view(profile, skill, module, task)
    if rng.random() < profile.critic_noise:
        return _vague(rng, "Unclear from this trajectory.")
    if missing:
        item = missing[0]
        if profile.critic_error and rng.random() < profile.critic_error:
            item = mech.pick_wrong(item, space, rng)  # (1) the evaluator blames the wrong item
        if not profile.evidence:  # null: quotes the canonical rule
            return json.dumps({"correct": False, "failure": f"The agent lacked this knowledge: {item.key}.",
                               "pattern": f"Tasks like this need guidance on {', '.join(item.cue)}.",
                               "suggestion": item.text})
        return json.dumps({"correct": False, "failure": "The agent went wrong at a step this task depends on.",
                           "pattern": f"Tasks like this need guidance on {', '.join(item.cue)}.",
                           "suggestion": mech.paraphrase(item)})
    wrong = mech.misleading(profile, module, skill, cat, space)
    if wrong:  # (4) a rule of another category, stated generally, misled the agent
        item, line = wrong[0]
        label = skill.scope_labels().get(item.scope or "", item.scope or "")
        return json.dumps({
            "correct": False, "failure": "The agent followed guidance that does not apply to this task.",
            "pattern": f"The guidance '{line.strip().lstrip('- ')}' holds only for {label}; here it misled the agent.",
            "suggestion": mech.scoped_text(item, skill) if not profile.evidence
            else f"Restrict that guidance to {label}."})
    return _vague(rng, "A slip rather than a missing rule.")


def _rules_and_head(text: str) -> tuple[str, list[str]]:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    head = next((ln for ln in lines if not ln.startswith("- ")), "")
    rules = [ln[2:].strip() for ln in lines if ln.startswith("- ")]
    return head, rules


def _render(head: str, rules: list[str]) -> str:
    return "\n".join([head] + [f"- {r}" for r in rules]) if head else "\n".join(f"- {r}" for r in rules)


def _dedupe(rules: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for r in rules:
        k = normalize_space(r).lower().rstrip(".")
        if k and k not in seen:
            seen.add(k)
            out.append(r)
    return out


def _learn(profile: SimProfile, prompt: str, prompt_tokens: int,
           rng: random.Random) -> tuple[SimSkill | None, list[tuple[Knowledge, bool]], list[str], set[str | None]]:
    """What one optimizer call learns from its examples: (skill, [(item, must_scope)],
    suggestions copied verbatim, categories of the batch)."""
    examples = mech.parse_examples(prompt)
    skill = next((s for s in map(find_skill, (e.task for e in examples)) if s is not None), None)
    space = skill.space(bool(profile.space)) if skill is not None else []
    cats = {skill.category(e.task) for e in examples} if skill is not None else set()
    votes: dict[str, int] = {}
    items: dict[str, Knowledge] = {}
    restrict: set[str] = set()
    verbatim: list[str] = []
    for ex in examples:
        if not ex.failed or not ex.critique:
            continue
        if rng.random() >= mech.notice_prob(profile, ex.position, prompt_tokens):
            continue  # (2) not noticed
        m = re.search(r"^suggestion:\s*(.+)$", ex.critique, re.M)
        suggestion = m.group(1).strip() if m else ""
        item = mech.item_named(ex.critique, space)
        if item is None:
            if not profile.evidence and suggestion:
                verbatim.append(suggestion)
            continue
        if profile.evidence and not ex.trajectory:
            continue  # (1) no trajectory, no evidence
        votes[item.key] = votes.get(item.key, 0) + 1
        items[item.key] = item
        if "holds only for" in ex.critique:
            restrict.add(item.key)
    need = max(1, profile.evidence)
    learned = sorted((k for k in votes if votes[k] >= need), key=lambda k: -votes[k])
    if profile.max_new:
        learned = learned[:profile.max_new]
        verbatim = verbatim[:max(0, profile.max_new - len(learned))]
    return skill, [(items[k], k in restrict) for k in learned], verbatim, cats


def _form(profile: SimProfile, skill: SimSkill, item: Knowledge, must_scope: bool, cats: set[str | None],
          rng: random.Random) -> str:
    """(4) a rule learned from its own category alone is scoped; from a mixed batch it is
    stated generally with probability ``generalize``."""
    if not item.scope or profile.conflict <= 0:
        return item.text
    if must_scope or cats == {item.scope} or rng.random() >= profile.generalize:
        return mech.scoped_text(item, skill)
    return mech.general_text(item)


def optimizer_reply(profile: SimProfile, prompt: str, prompt_tokens: int, seed: Any) -> str:
    rng = _rng(profile, seed, "optimizer", prompt)
    kind = "toolbox" if block(prompt, "toolbox") is not None and "<instruction>" not in prompt else "instruction"
    current = block(prompt, kind) or ""
    skill, learned, verbatim, cats = _learn(profile, prompt, prompt_tokens, rng)
    if kind == "toolbox":
        from fgo_engine.llm.sim.skills import skills

        suggestions = [k.text for k, _ in learned] + verbatim
        for s in skills():
            writer = getattr(s, "revise_toolbox", None)
            if writer is not None:
                revised = writer(current, suggestions, rng)
                if revised.strip() == current.strip() and rng.random() < profile.reword:
                    revised = _recomment(revised)
                return f"<toolbox>\n{revised}\n</toolbox>"
        return f"<toolbox>\n{current}\n</toolbox>"
    head, rules = _rules_and_head(current)
    if rules and rng.random() < profile.drift:
        rules.pop(rng.randrange(len(rules)))
    for item, must_scope in learned:
        assert skill is not None
        text = _form(profile, skill, item, must_scope, cats, rng)
        # the new statement replaces any other statement of the same item for the same tasks
        rules = [r for r in rules if not (skill.covered(r, item)
                                          and mech.scope_of_line(r, skill) in (None, item.scope))]
        rules.append(text)
    rules = _dedupe(rules + verbatim)
    if _render(head, rules) == _render(*_rules_and_head(current)) and rng.random() < profile.reword:
        head, rules = _reword(head, rules, rng)
    return "Here is the improved instruction.\n<instruction>\n" + _render(head, rules) + "\n</instruction>"


def _recomment(source: str) -> str:
    """A toolbox rewritten without a change in behaviour: its revision comment moves on."""
    m = re.match(r"# revision (\d+)\n", source)
    n = int(m.group(1)) + 1 if m else 1
    return f"# revision {n}\n" + (source[m.end():] if m else source)


_OPENINGS = ("In short: ", "Remember: ", "Your task: ", "Above all: ", "Note: ", "Keep in mind: ")


def _reword(head: str, rules: list[str], rng: random.Random) -> tuple[str, list[str]]:
    """An optimizer asked to improve a module rewrites it even when it learned nothing:
    the opening sentence is restated and (with two rules or more) one rule moves. The
    meaning is unchanged; only the text differs, so the candidate is evaluated anew (a
    text already evaluated on the same tasks is still served by the cache)."""
    bare = head
    for o in _OPENINGS:
        bare = bare.removeprefix(o)
    if bare:
        head = rng.choice([o for o in _OPENINGS if not head.startswith(o)]) + bare
    if len(rules) >= 2:
        rules = list(rules)
        moved = rules.pop(rng.randrange(len(rules)))
        rules.insert(rng.randrange(len(rules) + 1), moved)
    return head, rules


def _merge_rules(profile: SimProfile, modules: list[tuple[float | None, str]], rng: random.Random) -> list[str]:
    """Union of the modules' rules; where two modules state one item differently, the
    better-scoring module's statement wins when the scores are shown, else either."""
    from fgo_engine.llm.sim.skills import skills

    space = [k for s in skills() for k in s.space(bool(profile.space))]
    scores = [sc for sc, _ in modules]
    ranked = all(sc is not None for sc in scores) and len(set(scores)) > 1
    order = sorted(range(len(modules)), key=lambda i: -(scores[i] or 0.0)) if ranked else list(range(len(modules)))
    versions: dict[str, list[str]] = {}
    keys: list[str] = []
    for i in order:
        for r in _rules_and_head(modules[i][1])[1]:
            item = mech.item_named(r, space)
            key = f"item:{item.key}" if item is not None else "text:" + normalize_space(r).lower().rstrip(".")
            if key not in versions:
                versions[key] = []
                keys.append(key)
            if r not in versions[key]:
                versions[key].append(r)
    out = []
    for key in keys:
        vs = versions[key]
        out.append(vs[0] if ranked or len(vs) == 1 else rng.choice(vs))
    return out


def merger_reply(profile: SimProfile, prompt: str, prompt_tokens: int, seed: Any) -> str:
    rng = _rng(profile, seed, "merger", prompt)
    mods = blocks(prompt, "module")
    parsed = []
    for i, (a, body) in enumerate(mods):
        raw = attrs(a).get("score")
        try:
            score = float(raw) if raw not in (None, "") else None
        except ValueError:
            score = None
        parsed.append((score, i, body))
    scored = sorted(parsed, key=lambda t: (-(t[0] or 0.0), t[1]))
    is_toolbox = "toolbox" in (prompt.split("<modules>")[0])
    if "def " in "".join(b for _, _, b in scored) and is_toolbox:
        from fgo_engine.llm.sim.skills import skills

        for s in skills():
            merger = getattr(s, "merge_toolboxes", None)
            if merger is not None:
                return f"<toolbox>\n{merger([(b, sc or 0.0) for sc, _, b in scored], rng)}\n</toolbox>"
    # (6) merging many modules, or long ones, in one call loses rules
    keep = max(0.3, 1.0 - profile.merge_loss * max(0, len(mods) - 2)) * mech.length_factor(profile, prompt_tokens)
    head = next((h for _, _, body in scored if (h := _rules_and_head(body)[0])), "")
    rules = _dedupe(_merge_rules(profile, [(sc, body) for sc, _, body in parsed], rng))
    kept = [r for r in rules if rng.random() < keep]
    return "<instruction>\n" + _render(head, kept) + "\n</instruction>"


# -- fault injection: per gateway (llm/sim/faults.py) ---------------------------------------
_flight_lock = threading.Lock()
_in_flight = 0
max_in_flight = 0


def reset_in_flight() -> None:
    """Forget the most simulated calls seen at once (a test measures its own)."""
    global max_in_flight
    with _flight_lock:
        max_in_flight = 0


def _raise_fault(kind: str, model: str) -> None:
    import litellm

    if kind == "rate_limit":
        raise litellm.RateLimitError("fgo-sim: injected rate limit (429)", llm_provider="fgo-sim", model=model)
    if kind == "timeout":
        raise litellm.Timeout("fgo-sim: injected timeout", model=model, llm_provider="fgo-sim")
    if kind == "connection":
        raise litellm.APIConnectionError("fgo-sim: injected connection error", llm_provider="fgo-sim", model=model)
    if kind == "server":
        raise litellm.InternalServerError("fgo-sim: injected server error (500)", llm_provider="fgo-sim", model=model)


# -- litellm glue ---------------------------------------------------------------------
def _reply(profile: SimProfile, role: str, fault: str | None, messages: list, prompt_tokens: int, seed: Any,
           optional: dict) -> tuple[str, list[dict[str, Any]] | None]:
    """The reply of one role: its text and, for an agent with tools, its tool calls."""
    prompt = _content(messages[-1]) if messages else ""
    if fault in ("garbage", "empty"):
        return ("" if fault == "empty" else "<instruction>\nlorem ipsum (cut off"), None
    if role == "merger":
        return merger_reply(profile, prompt, prompt_tokens, seed), None
    if role == "optimizer":
        return optimizer_reply(profile, prompt, prompt_tokens, seed), None
    if role == "evaluator":
        return evaluator_reply(profile, prompt, seed), None
    reply = agent_reply(profile, messages, seed, optional.get("tools"))
    if isinstance(reply, dict):
        return reply.get("content", "") or "", reply.get("tool_calls")
    return reply, None


def _lazy_base():
    from litellm import CustomLLM

    return CustomLLM


class SimLLM(_lazy_base()):  # type: ignore[misc]
    """litellm custom handler; registered by the gateway as provider ``fgo-sim``."""

    def completion(self, model: str, messages: list, *args: Any, **kwargs: Any):
        import litellm
        from litellm.types.utils import ChatCompletionMessageToolCall, Function, ModelResponse, Usage

        profile = parse_model(model)
        optional = kwargs.get("optional_params") or {}
        seed = optional.get("seed", 0)
        prompt_tokens = tokens.count_messages(messages)
        if prompt_tokens > profile.window:
            raise litellm.ContextWindowExceededError(
                message=f"fgo-sim/{profile.name}: prompt has {prompt_tokens} tokens, window is {profile.window}",
                model=model, llm_provider="fgo-sim")
        role = role_of(messages)
        plan = faults.current()  # the calling gateway's (bound by Gateway._send)
        fault = plan.take(role, "\n".join(_content(m) for m in messages)) if plan else None
        if fault in faults.RAISED:
            _raise_fault(fault, model)
        try:
            text, tool_calls = _reply(profile, role, fault, messages, prompt_tokens, seed, optional)
        except Exception as exc:  # a bug in the simulator, not a provider failure: not retried
            log.exception("the simulated LLM failed (%s)", role)
            raise litellm.BadRequestError(
                message=f"the simulated LLM failed inside its {role} ({type(exc).__name__}: {exc}); "
                        f"the traceback is in the session log", model=model, llm_provider="fgo-sim") from exc
        resp = ModelResponse()
        msg = resp.choices[0].message
        msg.content = text
        if tool_calls:
            msg.tool_calls = [
                ChatCompletionMessageToolCall(
                    id=f"call_{uuid.UUID(int=random.Random(f'{seed}{i}{text}{c}').getrandbits(128)).hex[:12]}",
                    type="function",
                    function=Function(name=c["name"], arguments=json.dumps(c.get("arguments", {}))))
                for i, c in enumerate(tool_calls)
            ]
            resp.choices[0].finish_reason = "tool_calls"
        resp.model = f"fgo-sim/{profile.name}"
        completion_tokens = tokens.count_text(text) + (tokens.count_text(json.dumps(tool_calls)) if tool_calls else 0)
        resp.usage = Usage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                           total_tokens=prompt_tokens + completion_tokens)
        # a simulated call is free; saying so spares litellm's wrapper its search of the price
        # map for a model it cannot price (~0.45 of ~2.4 ms per call, benchmarks/engine_overhead.py)
        resp._hidden_params["response_cost"] = 0.0
        _emulate_latency(profile, prompt_tokens, completion_tokens)
        return resp


def call_seconds(profile: SimProfile, prompt_tokens: int, completion_tokens: int) -> float:
    """latency + prompt_tokens / prefill_rate + completion_tokens / decode_rate (0 rate: free)."""
    t = profile.latency
    if profile.prefill_rate > 0:
        t += prompt_tokens / profile.prefill_rate
    if profile.decode_rate > 0:
        t += completion_tokens / profile.decode_rate
    return t


CPU_TURNS = 2  # simulated calls running Python code at once (see cpu_turn)
_turns = threading.BoundedSemaphore(CPU_TURNS)
_turn = threading.local()


@contextmanager
def cpu_turn() -> Iterator[None]:
    """Run one simulated call (litellm's wrapper and the simulator's reply) on a CPU turn:
    at most ``CPU_TURNS`` threads at once; waiting out the emulated latency gives the turn back.

    Every thread shares one interpreter lock, handed over first come first served. With a
    hundred rollout threads busy in simulated calls, each 5 ms slice the app's UI thread got
    came after ~30 other threads' slices, and the screen fell behind the run by up to a third
    of a second (``benchmarks/tui_stream.py``, 32 subsets: event-to-screen p95 170-340 ms
    without turns, 113-215 ms with them, and the same run time: one thread runs Python at a
    time either way). A real model's calls wait on the network and hold no turn."""
    _turns.acquire()
    _turn.held = True
    try:
        yield
    finally:
        _turn.held = False
        _turns.release()


def _emulate_latency(profile: SimProfile, prompt_tokens: int, completion_tokens: int) -> None:
    global _in_flight, max_in_flight
    with _flight_lock:
        _in_flight += 1
        max_in_flight = max(max_in_flight, _in_flight)
    try:
        seconds = call_seconds(profile, prompt_tokens, completion_tokens)
        if seconds > 0:
            held = getattr(_turn, "held", False)
            if held:  # nobody needs the CPU to wait: let another call run meanwhile
                _turns.release()
            try:
                time.sleep(seconds)
            finally:
                if held:
                    _turns.acquire()
    finally:
        with _flight_lock:
            _in_flight -= 1
