"""``fgo-sim``: a deterministic litellm custom provider — a test bed, not a model.

It reads only the messages it is sent and tells the roles apart by the blocks the
engine's prompts use: ``<modules>`` → merger, ``<examples>`` → optimizer,
``<trajectory>`` + ``<expected>`` → evaluator, anything else → agent. Rules:

* agent: competent on a task when the module covers every piece of knowledge the
  task needs (per the suite's skill), still slipping with probability ``noise``;
  lucky with probability ``guess`` otherwise;
* evaluator: names the first missing piece of knowledge as its suggestion (vague
  with probability ``critic_noise``);
* optimizer: adds the suggestions it notices — each with probability
  ``min(1, attention / prompt_tokens)`` — and drops a rule with probability ``drift``;
  raises ContextWindowExceededError past ``window``;
* merger: unions the modules' rules, dropping a share ``merge_loss`` per module
  beyond two, and notices less of a long prompt, like the optimizer.

All randomness is seeded from the profile seed, the call's ``seed`` and the prompt.
"""
from __future__ import annotations

import hashlib
import json
import random
import re
import threading
import time
import uuid
from typing import Any

from fgo_engine.llm import tokens
from fgo_engine.prompts import attrs, block, blocks
from fgo_engine.sim.profiles import SimProfile, parse_model
from fgo_engine.sim.skills import find_skill
from fgo_engine.types import normalize_space

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
def agent_reply(profile: SimProfile, messages: list[dict[str, Any]], seed: Any,
                tools: list[dict[str, Any]] | None = None) -> str | dict[str, Any]:
    system = "\n".join(_content(m) for m in messages if m.get("role") == "system")
    if tools:  # a toolbox reaches the model as function schemas; coverage may look at them
        system += "\n<tools>\n" + json.dumps(tools, ensure_ascii=False, sort_keys=True) + "\n</tools>"
    first_user = next((_content(m) for m in messages if m.get("role") == "user"), "")
    skill = find_skill(first_user)
    rng = _rng(profile, seed, "agent", system, first_user)
    if skill is None:
        return "I could not work this out. Answer: unknown"
    needs = skill.needs(first_user)
    missing = [k for k in needs if not skill.covered(system, k)]
    roll = rng.random()
    competent = roll >= profile.noise if not missing else roll < profile.guess
    return skill.act(messages, first_user, competent=competent, missing=missing, rng=rng)


def evaluator_reply(profile: SimProfile, prompt: str, seed: Any) -> str:
    task = block(prompt, "task") or ""
    module = block(prompt, "instruction") or block(prompt, "toolbox") or ""
    outcome = (block(prompt, "outcome") or "").strip()
    rng = _rng(profile, seed, "evaluator", prompt)
    if outcome.startswith("success"):
        return json.dumps({"correct": True, "failure": "", "pattern": "", "suggestion": ""})
    skill = find_skill(task)
    missing = []
    if skill is not None:
        missing = [k for k in skill.needs(task) if not skill.covered(module, k)]
    if not missing or rng.random() < profile.critic_noise:
        return json.dumps({
            "correct": False,
            "failure": "The agent did not reach the expected result.",
            "pattern": "A slip rather than a missing rule." if not missing else "Unclear from this trajectory.",
            "suggestion": rng.choice(VAGUE),
        })
    item = missing[0]
    return json.dumps({
        "correct": False,
        "failure": f"The agent lacked this knowledge: {item.key}.",
        "pattern": f"Tasks like this need guidance on {', '.join(item.cue)}.",
        "suggestion": item.text,
    })


def _notice_prob(profile: SimProfile, prompt_tokens: int) -> float:
    return min(1.0, profile.attention / max(1, prompt_tokens))


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


def optimizer_reply(profile: SimProfile, prompt: str, prompt_tokens: int, seed: Any) -> str:
    rng = _rng(profile, seed, "optimizer", prompt)
    kind = "toolbox" if block(prompt, "toolbox") is not None and "<instruction>" not in prompt else "instruction"
    current = block(prompt, kind) or ""
    p = _notice_prob(profile, prompt_tokens)
    suggestions = []
    for _, crit in blocks(prompt, "critique"):
        m = re.search(r"^suggestion:\s*(.+)$", crit, re.M)
        if m and m.group(1).strip() and rng.random() < p:
            suggestions.append(m.group(1).strip())
    if kind == "toolbox":
        from fgo_engine.sim.skills import skills

        for s in skills():
            writer = getattr(s, "revise_toolbox", None)
            if writer is not None:
                return f"<toolbox>\n{writer(current, suggestions, rng)}\n</toolbox>"
        return f"<toolbox>\n{current}\n</toolbox>"
    head, rules = _rules_and_head(current)
    if rules and rng.random() < profile.drift:
        rules.pop(rng.randrange(len(rules)))
    rules = _dedupe(rules + suggestions)
    return "Here is the improved instruction.\n<instruction>\n" + _render(head, rules) + "\n</instruction>"


def merger_reply(profile: SimProfile, prompt: str, prompt_tokens: int, seed: Any) -> str:
    rng = _rng(profile, seed, "merger", prompt)
    mods = blocks(prompt, "module")
    scored = sorted(((float(attrs(a).get("score", 0) or 0), i, body) for i, (a, body) in enumerate(mods)),
                    key=lambda t: (-t[0], t[1]))
    is_toolbox = "toolbox" in (prompt.split("<modules>")[0])
    if "def " in "".join(b for _, _, b in scored) and is_toolbox:
        from fgo_engine.sim.skills import skills

        for s in skills():
            merger = getattr(s, "merge_toolboxes", None)
            if merger is not None:
                return f"<toolbox>\n{merger([(b, sc) for sc, _, b in scored], rng)}\n</toolbox>"
    keep = max(0.3, 1.0 - profile.merge_loss * max(0, len(mods) - 2)) * _notice_prob(profile, prompt_tokens)
    head = ""
    rules: list[str] = []
    for _, _, body in scored:
        h, rs = _rules_and_head(body)
        head = head or h
        rules.extend(rs)
    rules = _dedupe(rules)
    kept = [r for r in rules if rng.random() < keep]
    return "<instruction>\n" + _render(head, kept) + "\n</instruction>"


# -- fault injection (tests, demos of resilience) ----------------------------------------
_faults: list[tuple[str, str | None, str | None]] = []
_faults_lock = threading.Lock()
_in_flight = 0
max_in_flight = 0


def inject_faults(kind: str, count: int = 1, *, role: str | None = None, match: str | None = None) -> None:
    """Make the next ``count`` calls (of ``role``, whose prompt contains ``match``, if
    given) fail with ``kind``: rate_limit | timeout | connection | server | garbage | empty."""
    with _faults_lock:
        _faults.extend([(kind, role, match)] * count)


def clear_faults() -> None:
    global max_in_flight
    with _faults_lock:
        _faults.clear()
        max_in_flight = 0


def _take_fault(role: str, text: str) -> str | None:
    with _faults_lock:
        for i, (kind, r, match) in enumerate(_faults):
            if (r is None or r == role) and (match is None or match in text):
                _faults.pop(i)
                return kind
    return None


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
        fault = _take_fault(role, "\n".join(_content(m) for m in messages)) if _faults else None
        if fault in ("rate_limit", "timeout", "connection", "server"):
            _raise_fault(fault, model)
        prompt = _content(messages[-1]) if messages else ""
        tool_calls = None
        if fault in ("garbage", "empty"):
            text = "" if fault == "empty" else "<instruction>\nlorem ipsum (cut off"
        elif role == "merger":
            text = merger_reply(profile, prompt, prompt_tokens, seed)
        elif role == "optimizer":
            text = optimizer_reply(profile, prompt, prompt_tokens, seed)
        elif role == "evaluator":
            text = evaluator_reply(profile, prompt, seed)
        else:
            reply = agent_reply(profile, messages, seed, optional.get("tools"))
            if isinstance(reply, dict):
                text = reply.get("content", "") or ""
                tool_calls = reply.get("tool_calls")
            else:
                text = reply
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


def _emulate_latency(profile: SimProfile, prompt_tokens: int, completion_tokens: int) -> None:
    global _in_flight, max_in_flight
    with _faults_lock:
        _in_flight += 1
        max_in_flight = max(max_in_flight, _in_flight)
    try:
        seconds = call_seconds(profile, prompt_tokens, completion_tokens)
        if seconds > 0:
            time.sleep(seconds)
    finally:
        with _faults_lock:
            _in_flight -= 1
