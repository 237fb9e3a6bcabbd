"""Toolbox modules are shown as a list of tools above their source, instruction modules literally."""
from __future__ import annotations

from fgo_engine.suites.tools.library import INITIAL_TOOLBOX
from fgo_tui.widgets.render import module_block, toolbox_tools


def test_toolbox_module_lists_its_tools_then_the_code():
    tools = toolbox_tools(INITIAL_TOOLBOX)
    assert tools and all(t.name in INITIAL_TOOLBOX for t in tools)
    plain = module_block(INITIAL_TOOLBOX).plain
    assert plain.startswith(f"Tools ({len(tools)})")
    for t in tools:
        assert f"  {t.name}(" in plain
    assert INITIAL_TOOLBOX.strip().splitlines()[-1].strip() in plain  # the source follows, verbatim


def test_instruction_modules_and_broken_code_stay_literal():
    text = "You answer questions.\n- [/x] literal brackets\n- def is just a word here"
    assert toolbox_tools(text) is None
    assert module_block(text).plain == text
    broken = "def oops(:\n    pass"
    assert module_block(broken).plain == broken
