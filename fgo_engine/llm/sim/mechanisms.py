"""The simulator's mechanisms as small pure functions (a test bed, not a model).

Each function models one claim of the paper (or one way FGO could lose) and reads a
profile setting whose null value switches it off; ``provider`` wires them into the roles.

Contract with ``fgo_engine.method.prompts`` (kept deliberately loose, so that the optimizer's
prompt policy may change): the optimizer's user message holds ``<example>…</example>``
blocks in prompt order, each with ``<task>``, ``<trajectory>``, ``<outcome>`` and
``<critique>`` blocks (the critique's ``failure:/pattern:/suggestion:`` lines). Any block
may be missing or shortened; an example without a trajectory shows no evidence. Text
outside the example blocks (the module, score history, an overflow note) counts only
towards the prompt's length.
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass

from fgo_engine.llm.blocks import block
from fgo_engine.llm.sim.profiles import SimProfile
from fgo_engine.llm.sim.skills import SimSkill
from fgo_engine.types import Knowledge

_EXAMPLE = re.compile(r"<example(?:\s[^>]*)?>(.*?)</example>", re.S)


@dataclass(frozen=True)
class Example:
    task: str
    trajectory: str
    failed: bool
    critique: str
    position: float  # where the example's middle sits in the prompt, 0 (start) … 1 (end)


def parse_examples(prompt: str) -> list[Example]:
    out = []
    n = max(1, len(prompt))
    for m in _EXAMPLE.finditer(prompt):
        body = m.group(1)
        outcome = (block(body, "outcome") or "").strip().lower()
        out.append(Example(task=block(body, "task") or "", trajectory=(block(body, "trajectory") or "").strip(),
                           failed=not outcome.startswith("success"), critique=block(body, "critique") or "",
                           position=(m.start() + m.end()) / 2 / n))
    return out


# -- (2) lost in the middle --------------------------------------------------------------
def length_factor(profile: SimProfile, prompt_tokens: int) -> float:
    """Share of a long prompt read: 1 up to ``attention`` tokens, then attention / length."""
    if profile.attention <= 0:
        return 1.0
    return min(1.0, profile.attention / max(1, prompt_tokens))


def notice_prob(profile: SimProfile, position: float, prompt_tokens: int) -> float:
    """U-shaped in the example's position (1 at either end, 1 − middle in the centre),
    times the length factor."""
    x = min(1.0, max(0.0, position))
    return (1.0 - profile.middle * 4 * x * (1 - x)) * length_factor(profile, prompt_tokens)


# -- (4) scoped rules ----------------------------------------------------------------------
def _lower_first(s: str) -> str:
    return s[:1].lower() + s[1:]


def scope_of_line(line: str, skill: SimSkill | None) -> str | None:
    """The category a rule line is restricted to ("For Spanish invoices, …"), else None."""
    if skill is None:
        return None
    m = re.match(r"\s*(?:-\s*)?for (.+?)[,:]", line.lower())
    if not m:
        return None
    for cat, label in skill.scope_labels().items():
        if m.group(1).strip() == label.lower():
            return cat
    return None


def scoped_text(item: Knowledge, skill: SimSkill) -> str:
    label = skill.scope_labels().get(item.scope or "", "")
    if not label or scope_of_line(item.text, skill) == item.scope:
        return item.text
    return f"For {label}, {_lower_first(item.text)}"


def general_text(item: Knowledge) -> str:
    return item.general or item.text


def visible_module(module_text: str, skill: SimSkill | None, category: str | None) -> str:
    """The module as it applies to one task: lines scoped to other categories drop out."""
    if skill is None or category is None:
        return module_text
    return "\n".join(ln for ln in module_text.splitlines() if scope_of_line(ln, skill) in (None, category))


def misleading(profile: SimProfile, module_text: str, skill: SimSkill, category: str | None,
               space: list[Knowledge]) -> list[tuple[Knowledge, str]]:
    """Unscoped lines stating another category's rule generally: (item, line)."""
    if profile.conflict <= 0 or category is None:
        return []
    out = []
    scoped = [k for k in space if k.scope and k.scope != category]
    for line in module_text.splitlines():
        if scope_of_line(line, skill) is not None:
            continue
        for k in scoped:
            if skill.covered(line, k):
                out.append((k, line))
                break
    return out


# -- (5) instruction capacity ----------------------------------------------------------------
def rule_count(system: str, tools: list | None) -> int:
    if tools:
        return len(tools)
    return sum(1 for ln in system.splitlines() if ln.lstrip().startswith("- "))


def follow_prob(profile: SimProfile, rules: int) -> float:
    if profile.capacity <= 0 or rules <= profile.capacity:
        return 1.0
    return profile.capacity / rules


# -- (1) evidence: which item a critique points at -----------------------------------------
def item_named(text: str, space: list[Knowledge]) -> Knowledge | None:
    """The most specific item whose cue words all appear in ``text``."""
    low = text.lower()
    best, best_len = None, 0
    for k in space:
        if all(w in low for w in k.cue):
            n = sum(len(w) for w in k.cue)
            if n > best_len:
                best, best_len = k, n
    return best


def paraphrase(item: Knowledge) -> str:
    """How the evaluator states a gap when it must not quote the canonical rule."""
    return f"The agent seems not to know what to do about {' / '.join(item.cue)}; add guidance on that."


def pick_wrong(item: Knowledge, space: list[Knowledge], rng: random.Random) -> Knowledge:
    others = [k for k in space if k.key != item.key]
    return rng.choice(others) if others else item
