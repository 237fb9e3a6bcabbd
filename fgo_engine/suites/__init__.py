"""Task suites: built-in generators (household, invoices, tools) and user JSONL tasks."""
from __future__ import annotations

from fgo_engine.suites.base import AgentLLM, Suite, load_suite, register_suite
from fgo_engine.types import Completion

__all__ = ["AgentLLM", "Completion", "Suite", "load_suite", "register_suite"]
