"""The ``household`` suite: an ALFWorld-like text environment with the six ALFWorld task
types. Importing this package registers the suite and its simulated-LLM skill."""

from __future__ import annotations

from fgo_engine.llm.sim.skills import register_skill
from fgo_engine.suites.base import register_suite
from fgo_engine.suites.household.skill import KNOWLEDGE, HouseholdSkill
from fgo_engine.suites.household.suite import (
    ACTION_GUIDE,
    INITIAL_INSTRUCTION,
    HouseholdSuite,
    env_from_task,
    make_task,
    oracle_plan,
)
from fgo_engine.suites.household.world import (
    TASK_TYPES,
    Goal,
    HouseholdEnv,
    Layout,
    parse_action,
    parse_goal,
)

register_suite("household", HouseholdSuite)
register_skill(HouseholdSkill())

__all__ = [
    "ACTION_GUIDE",
    "INITIAL_INSTRUCTION",
    "KNOWLEDGE",
    "TASK_TYPES",
    "Goal",
    "HouseholdEnv",
    "HouseholdSkill",
    "HouseholdSuite",
    "Layout",
    "env_from_task",
    "make_task",
    "oracle_plan",
    "parse_action",
    "parse_goal",
]
