"""The ``tools`` suite: GAIA-like questions over local files, answered with a toolbox.
Importing this package registers the suite and its simulated-LLM skill."""
from __future__ import annotations

from fgo_engine.llm.sim.skills import register_skill
from fgo_engine.suites.base import register_suite
from fgo_engine.suites.tools.data import (
    CATEGORIES,
    FILES_MARKER,
    TEMPLATES,
    Generated,
    generate,
    parse_question,
)
from fgo_engine.suites.tools.library import (
    BUGGY,
    INITIAL_TOOLBOX,
    KNOWLEDGE,
    TOOL_NAME,
    TOOL_SOURCE,
)
from fgo_engine.suites.tools.skill import ToolsSkill, has_known_bug
from fgo_engine.suites.tools.suite import AGENT_SYSTEM, ToolRunner, ToolsSuite, default_files_root, ensure_files

register_suite("tools", ToolsSuite, runs_tools=True)
register_skill(ToolsSkill())

__all__ = [
    "AGENT_SYSTEM",
    "BUGGY",
    "CATEGORIES",
    "FILES_MARKER",
    "INITIAL_TOOLBOX",
    "KNOWLEDGE",
    "TEMPLATES",
    "TOOL_NAME",
    "TOOL_SOURCE",
    "Generated",
    "ToolRunner",
    "ToolsSkill",
    "ToolsSuite",
    "default_files_root",
    "ensure_files",
    "generate",
    "has_known_bug",
    "parse_question",
]
