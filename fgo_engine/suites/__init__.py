"""Task suites: built-in generators (household, invoices, tools) and user JSONL tasks."""
from __future__ import annotations

from fgo_engine.suites.base import AgentLLM, Completion, Suite, load_suite, register_suite

__all__ = ["AgentLLM", "Completion", "Suite", "load_suite", "register_suite"]
