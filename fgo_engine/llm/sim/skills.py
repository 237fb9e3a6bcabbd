"""How the simulated LLM 'understands' a suite's tasks.

Each built-in suite registers a skill. The simulated LLM reads only the messages it is
sent (like a real model); a skill tells it which knowledge a task needs and how an
agent acts, competently or not. The core (``fgo_engine.llm.sim.provider``) decides, with
seeded noise, whether the agent is competent on an episode: competent when the module
covers every needed piece of knowledge (it still slips with probability ``noise``),
and lucky with probability ``guess`` when it does not.
"""
from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, Protocol

from fgo_engine.types import Knowledge


class SimSkill(Protocol):
    name: str

    def recognizes(self, task_text: str) -> bool:
        """True when ``task_text`` (an agent's first user message, or the content of an
        evaluator prompt's ``<task>`` block) is one of this skill's tasks."""
        ...

    def needs(self, task_text: str) -> list[Knowledge]:
        """The knowledge this task needs, deterministic in the text."""
        ...

    def covered(self, module_text: str, item: Knowledge) -> bool:
        """Whether the module (instruction or toolbox source) provides ``item``."""
        ...

    def category(self, task_text: str) -> str | None:
        """The task's category as the text shows it (scoped rules and conflicts use it)."""
        ...

    def scope_labels(self) -> dict[str, str]:
        """Category → the words a scoped rule opens with ("For <label>, …")."""
        ...

    def space(self, fine: bool) -> list[Knowledge]:
        """Every item this skill knows (base, or the fine-grained space when ``fine``)."""
        ...

    def refine(self, task_text: str, items: list[Knowledge]) -> list[Knowledge]:
        """The fine-grained items behind a task's base needs (the knowledge-space mechanism)."""
        ...

    def act(
        self,
        messages: list[dict[str, Any]],
        task_text: str,
        *,
        competent: bool,
        missing: list[Knowledge],
        rng: random.Random,
    ) -> str | dict[str, Any]:
        """The agent's next reply. A string is the assistant content; a dict may carry
        ``{"content": str, "tool_calls": [{"name": str, "arguments": dict}]}``.
        ``rng`` is seeded per episode, so decisions stay consistent across steps."""
        ...


def cue_covered(module_text: str, item: Knowledge) -> bool:
    """Default coverage: one line of the module holds every cue word."""
    for line in module_text.lower().splitlines():
        if all(word in line for word in item.cue):
            return True
    return False


class BaseSkill:
    """Defaults for the optional hooks; subclasses implement ``recognizes``/``needs``/``act``."""

    name = "base"

    def covered(self, module_text: str, item: Knowledge) -> bool:
        return cue_covered(module_text, item)

    def category(self, task_text: str) -> str | None:
        return None

    def scope_labels(self) -> dict[str, str]:
        return {}

    def space(self, fine: bool) -> list[Knowledge]:
        return []

    def refine(self, task_text: str, items: list[Knowledge]) -> list[Knowledge]:
        return items


_SKILLS: list[SimSkill] = []


def register_skill(skill: SimSkill) -> None:
    if all(s.name != skill.name for s in _SKILLS):
        _SKILLS.append(skill)


_LOADERS: list[Callable[[], None]] = []


def add_loader(load: Callable[[], None]) -> None:
    """A way to register more skills on first need: the suites hand theirs in (each suite
    module registers its skill on import), so the simulator never imports the suites."""
    if load not in _LOADERS:
        _LOADERS.append(load)


def skills() -> list[SimSkill]:
    for load in list(_LOADERS):
        load()
    return list(_SKILLS)


def find_skill(task_text: str) -> SimSkill | None:
    for s in skills():
        if s.recognizes(task_text):
            return s
    return None
